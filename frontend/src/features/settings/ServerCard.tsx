import { Card, Group, Loader, Skeleton, Stack, Text, Title } from '@mantine/core';
import { lazy, Suspense, useId } from 'react';
import { DescriptionList } from '../../components/DescriptionList';
import { useServerStats } from '../events';
import { bytesToMB, formatUptime, prepareMemorySeries } from './serverStats';

// Recharts is most of the bundle's weight and only this card needs it.
const MemoryChart = lazy(() => import('./MemoryChart').then((m) => ({ default: m.MemoryChart })));
const CHART_HEIGHT = 160;

/** Live process numbers from the `server.stats` events. */
export function ServerCard() {
  const samples = useServerStats();
  const latest = samples.at(-1);
  const titleId = useId();

  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <Title order={2} size="h4" id={titleId}>
          Server
        </Title>
        {latest ? (
          <>
            <DescriptionList
              cols={{ base: 2, sm: 4 }}
              items={[
                { label: 'Memory (RSS)', value: `${bytesToMB(latest.rssBytes)} MB` },
                { label: 'Go heap', value: `${bytesToMB(latest.heapBytes)} MB` },
                { label: 'Goroutines', value: latest.goroutines },
                { label: 'Event clients', value: latest.eventClients },
              ]}
            />
            <Suspense fallback={<Skeleton h={CHART_HEIGHT} />}>
              <MemoryChart points={prepareMemorySeries(samples)} height={CHART_HEIGHT} />
            </Suspense>
            <Text size="xs" c="dimmed">
              Up {formatUptime(latest.uptimeSeconds)} · memory over the last {samples.length} samples
            </Text>
          </>
        ) : (
          <Group gap="xs" role="status">
            <Loader size="xs" />
            <Text c="dimmed">Waiting for the first live sample from the server…</Text>
          </Group>
        )}
      </Stack>
    </Card>
  );
}
