import { Alert, Badge, Button, Drawer, Group, Paper, Stack, Text } from '@mantine/core';
import type { AliasChange } from '../../api/types.gen';
import { QueryResult } from '../../components/QueryResult';
import { formatAbsoluteTime, formatRelativeTime, formatTargets } from './aliasFormat';
import { useAliasHistory, useRollbackAlias } from './useAliases';

interface AliasHistoryDrawerProps {
  /** The alias whose history is open; null when the drawer is closed. */
  name: string | null;
  onClose: () => void;
}

export function AliasHistoryDrawer({ name, onClose }: AliasHistoryDrawerProps) {
  return (
    <Drawer
      opened={name !== null}
      onClose={onClose}
      position="right"
      size="md"
      title={name ? `History of ${name}` : 'History'}
      closeButtonProps={{ 'aria-label': 'Close' }}
    >
      {name !== null ? <AliasHistory key={name} name={name} /> : null}
    </Drawer>
  );
}

function AliasHistory({ name }: { name: string }) {
  const history = useAliasHistory(name);
  const rollback = useRollbackAlias(name);
  return (
    <Stack gap="sm">
      <Text size="sm" c="dimmed">
        Every change is kept. Restoring a version saves it as a new one, so nothing is lost.
      </Text>
      {rollback.error ? (
        <Alert color="red" role="alert" title="Could not restore">
          {rollback.error.message}
        </Alert>
      ) : null}
      <QueryResult query={history} what="history">
        {(changes) => (
          <Stack component="ol" gap="sm" p={0} m={0} aria-label={`Versions of ${name}`} style={{ listStyle: 'none' }}>
            {changes.map((change, i) => (
              <HistoryEntry
                key={change.version}
                change={change}
                current={i === 0}
                restoring={rollback.isPending && rollback.variables === change.version}
                onRestore={() => rollback.mutate(change.version)}
              />
            ))}
          </Stack>
        )}
      </QueryResult>
    </Stack>
  );
}

interface HistoryEntryProps {
  change: AliasChange;
  /** The newest entry is what the gateway uses now. */
  current: boolean;
  restoring: boolean;
  onRestore: () => void;
}

function describeAction(change: AliasChange): string {
  if (change.action === 'rollback') return change.from ? `Restored version ${change.from}` : 'Restored';
  if (change.action === 'delete') return 'Deleted';
  return 'Set';
}

function HistoryEntry({ change, current, restoring, onRestore }: HistoryEntryProps) {
  const { version, alias, at, by } = change;
  return (
    <Paper component="li" withBorder p="sm" aria-label={`Version ${version}`}>
      <Group justify="space-between" wrap="nowrap" align="flex-start">
        <Stack gap={2}>
          <Group gap="xs">
            <Badge variant="light">v{version}</Badge>
            <Text size="sm" fw={500}>
              {describeAction(change)}
            </Text>
            {current ? (
              <Badge color="teal" variant="outline">
                Current
              </Badge>
            ) : null}
          </Group>
          <Text size="xs" c="dimmed">
            <Text component="time" inherit dateTime={at} title={formatAbsoluteTime(at)}>
              {formatRelativeTime(at)}
            </Text>{' '}
            by {by}
          </Text>
          <Text size="sm" ff="monospace" style={{ overflowWrap: 'anywhere' }}>
            {alias ? `${alias.strategy}: ${formatTargets(alias)}` : 'No alias (deleted)'}
          </Text>
        </Stack>
        {alias && !current ? (
          <Button
            variant="light"
            size="compact-sm"
            aria-label={`Restore version ${version}`}
            loading={restoring}
            onClick={onRestore}
          >
            Restore
          </Button>
        ) : null}
      </Group>
    </Paper>
  );
}
