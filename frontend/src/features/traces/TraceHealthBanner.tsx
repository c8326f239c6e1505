import { Alert, Code, List } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import type { TraceStats } from '../../api/types.gen';
import { formatCount } from './traceFormat';
import { useTraceStats } from './useTraces';

const plural = (n: number, one: string, many: string) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** Shown while the trace writer reports lost or refused traces, or its store is down. */
export function TraceHealthBanner() {
  const stats = useTraceStats().data?.traces;
  if (!stats || !isUnhealthy(stats)) return null;
  const { dropped, rejected, storeDown, queued, spilled, lastError } = stats;
  return (
    <Alert
      color={dropped > 0 || storeDown ? 'red' : 'orange'}
      title={storeDown ? 'The trace store is unavailable' : 'Some traces were not recorded'}
      icon={<IconAlertTriangle aria-hidden />}
    >
      <List size="sm" spacing={2}>
        {storeDown ? (
          <List.Item>
            New traces wait in the journal ({plural(queued + spilled, 'trace', 'traces')} pending) and are written once
            the store is back.
          </List.Item>
        ) : null}
        {dropped > 0 ? (
          <List.Item>
            {plural(dropped, 'trace was', 'traces were')} dropped: the queue was full and the journal could not take
            them, so they are lost.
          </List.Item>
        ) : null}
        {rejected > 0 ? (
          <List.Item>
            {plural(rejected, 'trace was', 'traces were')} rejected by the store as invalid and set aside in the journal
            folder.
          </List.Item>
        ) : null}
        {lastError ? (
          <List.Item>
            Last error: <Code>{lastError}</Code>
          </List.Item>
        ) : null}
      </List>
    </Alert>
  );
}

export const isUnhealthy = (stats: TraceStats) => stats.dropped > 0 || stats.rejected > 0 || stats.storeDown;
