import {
  Card,
  Group,
  Paper,
  Progress,
  SegmentedControl,
  SimpleGrid,
  Skeleton,
  Stack,
  Table,
  Text,
  Title,
} from '@mantine/core';
import { lazy, Suspense, useId, useState, type ReactNode } from 'react';
import type { TraceSeries } from '../../api/types.gen';
import { DescriptionList } from '../../components/DescriptionList';
import { QueryResult } from '../../components/QueryResult';
import { formatCost, formatCount } from '../traces';
import {
  groupedChart,
  groupTotals,
  OVERVIEW_RANGES,
  overallTotals,
  rangeSpecs,
  timePoints,
  type GroupMetric,
  type OverviewRange,
  type Totals,
} from './aggregates';
import type { ChartSpec } from './chartSpec';
import { useTrafficAggregate } from './useTraffic';

// Recharts is most of the bundle's weight: it loads with the first chart.
const TrafficChart = lazy(() => import('./charts').then((m) => ({ default: m.TrafficChart })));
const CHART_HEIGHT = 200;
const TOP_MODELS = 10;

interface TrafficSectionProps {
  range: OverviewRange;
  onRangeChange: (range: OverviewRange) => void;
}

/** Cost, requests, tokens, latency and errors over the range; by model and provider. */
export function TrafficSection({ range, onRangeChange }: TrafficSectionProps) {
  const titleId = useId();
  const overall = useTrafficAggregate(range, '');
  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <Group justify="space-between" gap="sm">
          <Title order={2} size="h3" id={titleId}>
            Traffic
          </Title>
          <SegmentedControl
            aria-label="Chart range"
            value={range}
            onChange={(value) => onRangeChange(value as OverviewRange)}
            data={OVERVIEW_RANGES.map((r) => ({ value: r, label: r }))}
          />
        </Group>
        <QueryResult query={overall} what="traffic">
          {(aggregates) => <TrafficBody range={range} series={aggregates.series} />}
        </QueryResult>
      </Stack>
    </Card>
  );
}

function TrafficBody({ range, series }: { range: OverviewRange; series: TraceSeries[] }) {
  const points = timePoints(series, range);
  const totals = overallTotals(series);
  if (totals.requests === 0) {
    return (
      <Text c="dimmed">
        No requests in {rangeSpecs[range].words}. Send one through the gateway and it shows up here within seconds.
      </Text>
    );
  }
  const charts: ChartSpec[] = [
    {
      kind: 'area',
      label: 'Cost over time',
      data: points,
      series: [{ name: 'costUsd', label: 'Cost', color: 'teal.6' }],
      unit: 'usd',
    },
    {
      kind: 'bar',
      label: 'Requests over time',
      data: points,
      series: [
        { name: 'succeeded', label: 'Succeeded', color: 'teal.6' },
        { name: 'errors', label: 'Failed', color: 'red.6' },
      ],
      stacked: true,
      unit: 'count',
    },
    {
      kind: 'area',
      label: 'Tokens over time',
      data: points,
      series: [
        { name: 'promptTokens', label: 'Prompt', color: 'blue.6' },
        { name: 'completionTokens', label: 'Completion', color: 'grape.6' },
      ],
      stacked: true,
      unit: 'count',
    },
    {
      kind: 'line',
      label: 'Latency over time',
      data: points,
      series: [
        { name: 'p50', label: 'p50', color: 'teal.6' },
        { name: 'p95', label: 'p95', color: 'orange.6' },
        { name: 'p99', label: 'p99', color: 'red.6' },
      ],
      unit: 'ms',
    },
    {
      kind: 'line',
      label: 'Error rate over time',
      data: points,
      series: [{ name: 'errorRate', label: 'Error rate', color: 'red.6' }],
      unit: 'percent',
    },
  ];
  const titles = ['Cost', 'Requests', 'Tokens', 'Latency (p50 / p95 / p99)', 'Error rate'];
  return (
    <Stack gap="md">
      <TotalsList totals={totals} />
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md">
        {charts.map((spec, i) => (
          <ChartPanel key={spec.label} title={titles[i] ?? spec.label} spec={spec} />
        ))}
        <GroupedPanel range={range} />
      </SimpleGrid>
      <TopModels range={range} />
    </Stack>
  );
}

const percent = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 });

function TotalsList({ totals }: { totals: Totals }) {
  return (
    <DescriptionList
      cols={{ base: 2, sm: 4 }}
      items={[
        { label: 'Requests', value: formatCount(totals.requests) },
        { label: 'Error rate', value: percent.format(totals.errors / totals.requests) },
        { label: 'Cost', value: formatCost(totals.costUsd) },
        { label: 'Tokens', value: formatCount(totals.tokens) },
      ]}
    />
  );
}

function Panel({ title, controls, children }: { title: string; controls?: ReactNode; children: ReactNode }) {
  const titleId = useId();
  return (
    <Paper withBorder p="md" component="figure" m={0} aria-labelledby={titleId}>
      <Group justify="space-between" gap="xs" mb="xs">
        <Title order={3} size="h6" id={titleId}>
          {title}
        </Title>
        {controls}
      </Group>
      {children}
    </Paper>
  );
}

function ChartPanel({ title, spec, controls }: { title: string; spec: ChartSpec; controls?: ReactNode }) {
  return (
    <Panel title={title} controls={controls}>
      <Suspense fallback={<Skeleton h={CHART_HEIGHT} />}>
        <TrafficChart spec={spec} height={CHART_HEIGHT} />
      </Suspense>
    </Panel>
  );
}

const metricLabels: Record<GroupMetric, string> = { costUsd: 'Cost', requests: 'Requests', tokens: 'Tokens' };

/** One stacked chart, by model or by provider, of cost, requests or tokens. */
function GroupedPanel({ range }: { range: OverviewRange }) {
  const [groupBy, setGroupBy] = useState<'model' | 'provider'>('model');
  const [metric, setMetric] = useState<GroupMetric>('costUsd');
  const aggregates = useTrafficAggregate(range, groupBy);
  const by = groupBy === 'model' ? 'model' : 'provider';
  const controls = (
    <Group gap={6}>
      <SegmentedControl
        size="xs"
        aria-label="Group by"
        value={groupBy}
        onChange={(value) => setGroupBy(value === 'provider' ? 'provider' : 'model')}
        data={[
          { value: 'model', label: 'Model' },
          { value: 'provider', label: 'Provider' },
        ]}
      />
      <SegmentedControl
        size="xs"
        aria-label="Measure"
        value={metric}
        onChange={(value) => setMetric(value as GroupMetric)}
        data={Object.entries(metricLabels).map(([value, label]) => ({ value, label }))}
      />
    </Group>
  );
  return (
    <QueryResult query={aggregates} what={`traffic by ${by}`}>
      {(data) => {
        const chart = groupedChart(data.series, metric, range, `(no ${by})`);
        return (
          <ChartPanel
            title={`${metricLabels[metric]} by ${by}`}
            controls={controls}
            spec={{
              kind: 'bar',
              label: `${metricLabels[metric]} by ${by} over time`,
              data: chart.data,
              series: chart.series,
              stacked: true,
              unit: metric === 'costUsd' ? 'usd' : 'count',
            }}
          />
        );
      }}
    </QueryResult>
  );
}

function TopModels({ range }: { range: OverviewRange }) {
  const aggregates = useTrafficAggregate(range, 'model');
  const titleId = useId();
  return (
    <Stack gap="xs" component="section" aria-labelledby={titleId}>
      <Title order={3} size="h5" id={titleId}>
        Top models by cost
      </Title>
      <QueryResult query={aggregates} what="traffic by model">
        {(data) => {
          const groups = groupTotals(data.series).slice(0, TOP_MODELS);
          const total = groups.reduce((sum, g) => sum + g.costUsd, 0);
          return (
            <Table.ScrollContainer minWidth={560}>
              <Table aria-label="Top models by cost" withTableBorder verticalSpacing="xs">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Model</Table.Th>
                    <Table.Th ta="right">Requests</Table.Th>
                    <Table.Th ta="right">Error rate</Table.Th>
                    <Table.Th ta="right">Tokens</Table.Th>
                    <Table.Th ta="right">Cost</Table.Th>
                    <Table.Th w={140}>Share of cost</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {groups.map((g) => {
                    const share = total > 0 ? g.costUsd / total : 0;
                    return (
                      <Table.Tr key={g.group}>
                        <Table.Td ff="monospace">{g.group || '(no model)'}</Table.Td>
                        <Table.Td ta="right">{formatCount(g.requests)}</Table.Td>
                        <Table.Td ta="right">{percent.format(g.errors / g.requests)}</Table.Td>
                        <Table.Td ta="right">{formatCount(g.tokens)}</Table.Td>
                        <Table.Td ta="right">{formatCost(g.costUsd)}</Table.Td>
                        <Table.Td>
                          <Progress
                            value={share * 100}
                            aria-label={`${g.group || 'No model'}: share of cost`}
                            size="sm"
                          />
                        </Table.Td>
                      </Table.Tr>
                    );
                  })}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          );
        }}
      </QueryResult>
    </Stack>
  );
}
