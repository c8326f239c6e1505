import { Text } from '@mantine/core';
import { IconChartDots3 } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';

export function ClustersPage() {
  return (
    <Page title="Clusters" description="Groups of similar requests, found in your traces.">
      <EmptyState
        icon={IconChartDots3}
        title="Clusters appear once you have traces"
        next={{ label: 'Go to Traces', to: '/traces' }}
      >
        <Text>
          OpenTracy groups requests that ask for the same kind of work, such as “summarise a support ticket” or
          “extract an invoice total”. Send some traffic through the gateway first; clusters form as traces come in.
        </Text>
      </EmptyState>
    </Page>
  );
}
