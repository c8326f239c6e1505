import type { TraceBucket, TraceSeries } from '../../api/types.gen';

export const OVERVIEW_RANGES = ['24h', '7d', '30d'] as const;
export type OverviewRange = (typeof OVERVIEW_RANGES)[number];

const HOUR_MS = 3600_000;

interface RangeSpec {
  /** The range's length. */
  ms: number;
  /** The bucket, as the Go duration the API takes. */
  bucket: string;
  /** How a bucket's start is labelled on the time axis. */
  label: Intl.DateTimeFormat;
  /** Read out in sentences: "in the last 24 hours". */
  words: string;
}

export const rangeSpecs: Record<OverviewRange, RangeSpec> = {
  '24h': {
    ms: 24 * HOUR_MS,
    bucket: '1h',
    label: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
    words: 'the last 24 hours',
  },
  '7d': {
    ms: 7 * 24 * HOUR_MS,
    bucket: '6h',
    label: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit' }),
    words: 'the last 7 days',
  },
  '30d': {
    ms: 30 * 24 * HOUR_MS,
    bucket: '24h',
    label: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' }),
    words: 'the last 30 days',
  },
};

export const isOverviewRange = (value: string | null): value is OverviewRange =>
  OVERVIEW_RANGES.some((r) => r === value);

/** One point of the time charts; latencies and the error rate are null where a bucket is empty. */
export interface TimePoint {
  [key: string]: string | number | null;
  time: string;
  requests: number;
  succeeded: number;
  errors: number;
  costUsd: number;
  promptTokens: number;
  completionTokens: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  errorRate: number | null;
}

/** The buckets of an ungrouped answer (its one series, group ""). */
const overallBuckets = (series: TraceSeries[]): TraceBucket[] =>
  series.find((s) => s.group === '')?.buckets ?? series[0]?.buckets ?? [];

/** The ungrouped series as chart points, oldest first. */
export function timePoints(series: TraceSeries[], range: OverviewRange): TimePoint[] {
  return overallBuckets(series).map((b) => {
    const empty = b.requests === 0;
    return {
      time: rangeSpecs[range].label.format(new Date(b.start)),
      requests: b.requests,
      succeeded: b.requests - b.errors,
      errors: b.errors,
      costUsd: b.costUsd,
      promptTokens: b.promptTokens,
      completionTokens: b.completionTokens,
      p50: empty ? null : Math.round(b.latencyP50Ms),
      p95: empty ? null : Math.round(b.latencyP95Ms),
      p99: empty ? null : Math.round(b.latencyP99Ms),
      errorRate: empty ? null : Math.round((b.errors / b.requests) * 1000) / 10,
    };
  });
}

export interface Totals {
  requests: number;
  errors: number;
  costUsd: number;
  tokens: number;
}

const addBucket = (t: Totals, b: TraceBucket): Totals => ({
  requests: t.requests + b.requests,
  errors: t.errors + b.errors,
  costUsd: t.costUsd + b.costUsd,
  tokens: t.tokens + b.promptTokens + b.completionTokens,
});

const zero: Totals = { requests: 0, errors: 0, costUsd: 0, tokens: 0 };

export function totalsOf(buckets: TraceBucket[]): Totals {
  return buckets.reduce(addBucket, zero);
}

/** The totals of an ungrouped answer. */
export const overallTotals = (series: TraceSeries[]): Totals => totalsOf(overallBuckets(series));

export interface GroupTotals extends Totals {
  group: string;
}

/** Each group's totals over the range, most expensive first (then by requests). */
export function groupTotals(series: TraceSeries[]): GroupTotals[] {
  return series
    .map((s) => ({ group: s.group, ...totalsOf(s.buckets) }))
    .filter((g) => g.requests > 0)
    .sort((a, b) => b.costUsd - a.costUsd || b.requests - a.requests || a.group.localeCompare(b.group));
}

export type GroupMetric = 'costUsd' | 'requests' | 'tokens';

const metricOf = (b: TraceBucket, metric: GroupMetric) =>
  metric === 'tokens' ? b.promptTokens + b.completionTokens : b[metric];

export const GROUP_COLORS = ['teal.6', 'blue.6', 'grape.6', 'orange.6', 'pink.6', 'cyan.6'];
export const OTHER_COLOR = 'gray.5';

export interface GroupedChart {
  data: Record<string, string | number>[];
  /** `name` is a safe data key (g0, g1…: model names contain dots); `label` the group. */
  series: { name: string; label: string; color: string }[];
}

/**
 * Stacked per-bucket values of `metric`, one series per group: the `top` largest groups by name,
 * the rest summed as "Other".
 */
export function groupedChart(
  series: TraceSeries[],
  metric: GroupMetric,
  range: OverviewRange,
  emptyLabel: string,
  top = 5,
): GroupedChart {
  const ranked = series
    .map((s) => ({ s, total: s.buckets.reduce((sum, b) => sum + metricOf(b, metric), 0) }))
    .filter(({ total }) => total > 0)
    .sort((a, b) => b.total - a.total);
  const shown = ranked.slice(0, top);
  const rest = ranked.slice(top);
  const chartSeries = shown.map(({ s }, i) => ({
    name: `g${i}`,
    label: s.group || emptyLabel,
    color: GROUP_COLORS[i % GROUP_COLORS.length] ?? OTHER_COLOR,
  }));
  if (rest.length > 0) chartSeries.push({ name: 'other', label: 'Other', color: OTHER_COLOR });

  const starts = series[0]?.buckets.map((b) => b.start) ?? [];
  const data = starts.map((start, i) => {
    const point: Record<string, string | number> = { time: rangeSpecs[range].label.format(new Date(start)) };
    shown.forEach(({ s }, g) => {
      const bucket = s.buckets[i];
      point[`g${g}`] = bucket ? metricOf(bucket, metric) : 0;
    });
    if (rest.length > 0) {
      point.other = rest.reduce((sum, { s }) => {
        const bucket = s.buckets[i];
        return sum + (bucket ? metricOf(bucket, metric) : 0);
      }, 0);
    }
    return point;
  });
  return { data, series: chartSeries };
}
