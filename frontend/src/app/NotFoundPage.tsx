import { Text } from '@mantine/core';
import { IconMapPinOff } from '@tabler/icons-react';
import { EmptyState } from '../components/EmptyState';
import { Page } from '../components/Page';

export function NotFoundPage() {
  return (
    <Page title="Page not found">
      <EmptyState
        icon={IconMapPinOff}
        title="There is nothing at this address"
        next={{ label: 'Go to Overview', to: '/' }}
      >
        <Text>Pick a screen from the sidebar.</Text>
      </EmptyState>
    </Page>
  );
}
