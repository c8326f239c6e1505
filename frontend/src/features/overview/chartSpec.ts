import { formatCost, formatCount } from '../traces';

export type ChartUnit = 'usd' | 'ms' | 'percent' | 'count';

/** What a chart shows, as plain data, so that tests can check it without drawing. */
export interface ChartSpec {
  kind: 'area' | 'bar' | 'line';
  /** The chart's accessible name, e.g. "Cost over time". */
  label: string;
  /** One row a bucket; "time" is the axis label. */
  data: Record<string, string | number | null>[];
  series: { name: string; label: string; color: string }[];
  stacked?: boolean;
  unit: ChartUnit;
}

export function formatUnit(unit: ChartUnit, value: number): string {
  switch (unit) {
    case 'usd':
      return formatCost(value);
    case 'ms':
      return `${formatCount(Math.round(value))} ms`;
    case 'percent':
      return `${value}%`;
    case 'count':
      return formatCount(value);
  }
}
