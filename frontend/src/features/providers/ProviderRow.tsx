import { Badge, Button, Group, Stack, Table, Text } from '@mantine/core';
import type { Provider } from '../../api/types.gen';
import { ConfirmButton } from '../../components/ConfirmButton';
import { CheckButton, CheckResult } from './ProviderCheck';
import {
  formatAttempts,
  formatLatency,
  formatSuccessRate,
  isEditable,
  keyStatus,
  sourceLabels,
} from './providerFormat';
import { useCheckProvider, useDeleteProvider } from './useProviders';

/** The table's column headers, in order; the last one (the actions) is only read out. */
export const PROVIDER_COLUMNS = ['Provider', 'Base URL', 'Key', 'Models', 'Success', 'Latency p50 / p95', 'Actions'];

/** Badges keep their full text instead of shrinking to an ellipsis in a narrow column. */
const noShrink = { minWidth: 'max-content' } as const;

interface ProviderRowProps {
  provider: Provider;
  onEdit: (provider: Provider) => void;
}

export function ProviderRow({ provider, onEdit }: ProviderRowProps) {
  const { name, stats } = provider;
  const check = useCheckProvider(name);
  return (
    <>
      <Table.Tr aria-label={name}>
        <Table.Td>
          <Text fw={600}>{name}</Text>
          <Text size="xs" c="dimmed">
            {provider.type}
          </Text>
          <Badge variant="light" size="sm" mt={4} color={isEditable(provider) ? 'teal' : 'gray'} style={noShrink}>
            {sourceLabels[provider.source] ?? provider.source}
          </Badge>
        </Table.Td>
        <Table.Td>
          <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
            {provider.baseURL || '—'}
          </Text>
        </Table.Td>
        <Table.Td>
          <Text size="sm" c={provider.keySet ? undefined : 'dimmed'}>
            {keyStatus(provider)}
          </Text>
        </Table.Td>
        <Table.Td>
          <ModelBadges name={name} models={provider.models} />
        </Table.Td>
        <Table.Td>
          <Text size="sm">{formatSuccessRate(stats)}</Text>
          <Text size="xs" c="dimmed">
            {formatAttempts(stats)}
          </Text>
        </Table.Td>
        <Table.Td>
          <Text size="sm" style={{ whiteSpace: 'nowrap' }}>
            {formatLatency(stats)}
          </Text>
        </Table.Td>
        <Table.Td>
          <ProviderActions provider={provider} check={check} onEdit={onEdit} />
        </Table.Td>
      </Table.Tr>
      {check.isSuccess || check.isError ? (
        <Table.Tr>
          <Table.Td colSpan={PROVIDER_COLUMNS.length} pt={0}>
            <CheckResult name={name} check={check} />
          </Table.Td>
        </Table.Tr>
      ) : null}
    </>
  );
}

function ModelBadges({ name, models }: { name: string; models: string[] }) {
  if (models.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        Any, as {name}/<i>model</i>
      </Text>
    );
  }
  return (
    <Group gap={4}>
      {models.map((model) => (
        <Badge key={model} variant="outline" color="gray" tt="none" style={noShrink}>
          {model}
        </Badge>
      ))}
    </Group>
  );
}

interface ProviderActionsProps extends ProviderRowProps {
  check: ReturnType<typeof useCheckProvider>;
}

function ProviderActions({ provider, check, onEdit }: ProviderActionsProps) {
  const remove = useDeleteProvider();
  return (
    <Stack gap={4} align="flex-start">
      <CheckButton check={check} />
      {isEditable(provider) ? (
        <Group gap={4} wrap="nowrap">
          <Button variant="subtle" size="compact-sm" onClick={() => onEdit(provider)}>
            Edit
          </Button>
          <ConfirmButton
            label="Delete"
            title={`Delete provider ${provider.name}?`}
            onConfirm={() => remove.mutateAsync(provider.name)}
            onOpen={remove.reset}
            pending={remove.isPending}
            error={remove.error}
          >
            Requests for its models stop being routed to it, and its saved key is removed from the app.
          </ConfirmButton>
        </Group>
      ) : null}
    </Stack>
  );
}
