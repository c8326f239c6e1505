import { Code, Text } from '@mantine/core';
import { IconPlugConnected } from '@tabler/icons-react';
import type { ReactNode } from 'react';
import { EmptyState } from '../../components/EmptyState';
import { useInfo } from '../instance';

/** No providers: the three ways to add one. */
export function ProvidersEmptyState({ action }: { action: ReactNode }) {
  const configFile = useInfo().data?.configFile;
  return (
    <EmptyState icon={IconPlugConnected} title="No providers yet" action={action}>
      <Text>
        The gateway forwards each request to a provider. Set the usual key variables before starting OpenTracy (
        <Code>OPENAI_API_KEY</Code>, <Code>ANTHROPIC_API_KEY</Code>, <Code>GEMINI_API_KEY</Code>, …) and each becomes a
        provider; <Code>OPENAI_BASE_URL</Code> points the openai one at another endpoint.
      </Text>
      <Text>
        Or list providers in the YAML config file
        {configFile ? (
          <>
            {' '}
            <Code>{configFile}</Code>
          </>
        ) : null}
        , or add one here: a cloud API, or a local server such as Ollama or vLLM.
      </Text>
    </EmptyState>
  );
}
