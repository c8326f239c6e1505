import { AreaChart } from '@mantine/charts';
import type { MemoryPoint } from './serverStats';

/** Render-only: shape the data with prepareMemorySeries. */
export function MemoryChart({ points, height }: { points: MemoryPoint[]; height: number }) {
  return (
    <AreaChart
      h={height}
      data={points}
      dataKey="time"
      series={[{ name: 'rssMB', label: 'Memory (RSS, MB)', color: 'teal.6' }]}
      curveType="monotone"
      withDots={false}
      unit=" MB"
      gridAxis="y"
      tickLine="none"
      // Redrawing every 2 s; animating each new sample only makes the line wobble.
      areaProps={{ isAnimationActive: false }}
      role="img"
      aria-label="Memory (RSS) over the last samples"
    />
  );
}
