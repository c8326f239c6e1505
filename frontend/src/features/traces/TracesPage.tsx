import { Code, Text } from '@mantine/core';
import { IconTimeline } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { useInfo } from '../instance';

export function TracesPage() {
  const info = useInfo();
  return (
    <Page title="Traces" description="Every request that passes through the gateway.">
      <EmptyState
        icon={IconTimeline}
        title="No traces yet — point your OpenAI client at the gateway"
        next={{ label: 'Show connection snippets', to: '/' }}
      >
        <Text>Set your client&apos;s base URL to</Text>
        <QueryResult query={info} what="the gateway URL">
          {(data) => <Code fz="md">{data.gateway.baseURL}</Code>}
        </QueryResult>
        <Text>
          and use the gateway key as its API key. Each request then shows up here with its model, prompt, response
          and latency.
        </Text>
      </EmptyState>
    </Page>
  );
}
