import { Code, Text } from '@mantine/core';
import { IconPlugConnected } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';
import { useInfo } from '../instance';

export function ProvidersPage() {
  const configFile = useInfo().data?.configFile;
  return (
    <Page title="Providers" description="The upstream APIs the gateway forwards requests to.">
      <EmptyState icon={IconPlugConnected} title="No providers yet">
        <Text>
          This build does not forward requests to providers yet: the gateway answers <Code>/v1/models</Code> with an
          empty list. Provider support reads keys from the usual environment variables (<Code>OPENAI_API_KEY</Code>,{' '}
          <Code>ANTHROPIC_API_KEY</Code>, …) or from the YAML config file
          {configFile ? (
            <>
              {' '}
              <Code>{configFile}</Code>
            </>
          ) : null}
          ; this screen will list them with their success rate and latency.
        </Text>
      </EmptyState>
    </Page>
  );
}
