import { Button, Text } from '@mantine/core';
import { IconMapPinOff } from '@tabler/icons-react';
import { Link } from 'react-router-dom';
import { EmptyState } from '../components/EmptyState';
import { Page } from '../components/Page';

export function NotFoundPage() {
  return (
    <Page title="Page not found">
      <EmptyState
        icon={IconMapPinOff}
        title="There is nothing at this address"
        action={
          <Button component={Link} to="/" variant="light">
            Go to Overview
          </Button>
        }
      >
        <Text>Pick a screen from the sidebar.</Text>
      </EmptyState>
    </Page>
  );
}
