import { AreaChart, BarChart, LineChart } from '@mantine/charts';
import { formatUnit, type ChartSpec } from './chartSpec';

/** Render-only: the data is shaped in aggregates.ts. Loaded lazily with recharts. */
export function TrafficChart({ spec, height }: { spec: ChartSpec; height: number }) {
  const common = {
    h: height,
    data: spec.data,
    dataKey: 'time',
    series: spec.series,
    valueFormatter: (value: number) => formatUnit(spec.unit, value),
    withLegend: spec.series.length > 1,
    legendProps: { verticalAlign: 'bottom' as const, height: 40 },
    gridAxis: 'y' as const,
    tickLine: 'none' as const,
    role: 'img',
    'aria-label': spec.label,
  };
  switch (spec.kind) {
    case 'bar':
      return <BarChart {...common} type={spec.stacked ? 'stacked' : 'default'} maxBarWidth={24} />;
    case 'line':
      // Dots, so that a lone non-empty bucket still shows.
      return <LineChart {...common} curveType="monotone" dotProps={{ r: 2 }} connectNulls={false} />;
    case 'area':
      return (
        <AreaChart
          {...common}
          type={spec.stacked ? 'stacked' : 'default'}
          curveType="monotone"
          withDots={false}
          connectNulls={false}
        />
      );
  }
}
