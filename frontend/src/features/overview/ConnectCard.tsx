import { Button, Card, Stack, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { IconEye, IconEyeOff } from '@tabler/icons-react';
import { useId } from 'react';
import type { GatewayInfo, KeySource } from '../../api/types.gen';
import { CopyField } from '../../components/CopyField';
import { SnippetTabs } from './SnippetTabs';
import { buildSnippets, maskKey } from './snippets';

const keyOrigin: Record<KeySource, string> = {
  generated: 'Generated on first run and kept in the data directory. Send it as the API key.',
  config: 'Set in the config file. Send it as the API key.',
  flag: 'Set by the --gateway-key flag. Send it as the API key.',
  env: 'Set by the OPENTRACY_GATEWAY_KEY environment variable. Send it as the API key.',
};

/** The primary empty state: everything needed to send the first request through the gateway. */
export function ConnectCard({ gateway }: { gateway: GatewayInfo }) {
  const [keyShown, { toggle: toggleKey }] = useDisclosure(false);
  const titleId = useId();
  const visibleKey = keyShown ? gateway.key : maskKey(gateway.key);

  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <div>
          <Title order={2} size="h3" id={titleId}>
            Connect your app
          </Title>
          <Text c="dimmed">
            Point any OpenAI-compatible client at the gateway. Every request that passes through it is traced.
          </Text>
        </div>
        <CopyField
          label="Gateway base URL"
          description="OpenAI-compatible: use it as base_url"
          value={gateway.baseURL}
          copyLabel="Copy base URL"
        />
        <CopyField
          label="Gateway key"
          description={keyOrigin[gateway.keySource]}
          value={gateway.key}
          shown={visibleKey}
          copyLabel="Copy key"
          actions={
            <Button
              variant="default"
              leftSection={keyShown ? <IconEyeOff size={16} aria-hidden /> : <IconEye size={16} aria-hidden />}
              onClick={toggleKey}
            >
              {keyShown ? 'Hide key' : 'Show key'}
            </Button>
          }
        />
        <CopyField
          label="Anthropic base URL"
          description="For Anthropic SDKs and tools that speak the Messages API"
          value={gateway.anthropicBaseURL}
          copyLabel="Copy Anthropic base URL"
        />
        <SnippetTabs
          shown={buildSnippets(gateway.baseURL, visibleKey)}
          copied={buildSnippets(gateway.baseURL, gateway.key)}
        />
      </Stack>
    </Card>
  );
}
