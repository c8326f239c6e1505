import type { TraceQuery } from '../../api/client';
import type { TraceSummary } from '../../api/types.gen';

export const TRACE_RANGES = ['1h', '24h', '7d', '30d', 'all'] as const;
export type TraceRange = (typeof TRACE_RANGES)[number];

const HOUR_MS = 3600_000;
const RANGE_MS: Record<Exclude<TraceRange, 'all'>, number> = {
  '1h': HOUR_MS,
  '24h': 24 * HOUR_MS,
  '7d': 7 * 24 * HOUR_MS,
  '30d': 30 * 24 * HOUR_MS,
};

/** The start of `range` as an RFC 3339 time, or undefined for "all". */
export function rangeStart(range: TraceRange, now: number): string | undefined {
  return range === 'all' ? undefined : new Date(now - RANGE_MS[range]).toISOString();
}

export type TraceStatusFilter = 'ok' | 'error';

/**
 * The Traces screen's filters, as the URL holds them. A plain object (no Dates), so it is also the
 * list's query key; the time range stays a preset and becomes a `from` time only when fetching.
 */
export interface TraceFilters {
  range: TraceRange;
  model: string[];
  provider: string[];
  alias: string[];
  status?: TraceStatusFilter;
  minCost?: number;
  maxCost?: number;
  minLatency?: number;
  maxLatency?: number;
  minTokens?: number;
  maxTokens?: number;
  /** "key=value" pairs. */
  meta: string[];
  q?: string;
}

export const NUMBER_FILTERS = ['minCost', 'maxCost', 'minLatency', 'maxLatency', 'minTokens', 'maxTokens'] as const;
export type NumberFilter = (typeof NUMBER_FILTERS)[number];
const LIST_FILTERS = ['model', 'provider', 'alias', 'meta'] as const;

/** Every URL parameter the filters own; others (such as the open trace) are left alone. */
const FILTER_PARAMS = ['range', 'status', 'q', ...NUMBER_FILTERS, ...LIST_FILTERS];

export const noFilters: TraceFilters = { range: 'all', model: [], provider: [], alias: [], meta: [] };

const isRange = (value: string | null): value is TraceRange => TRACE_RANGES.some((r) => r === value);

export function parseFilters(params: URLSearchParams): TraceFilters {
  const range = params.get('range');
  const filters: TraceFilters = {
    range: isRange(range) ? range : 'all',
    model: params.getAll('model'),
    provider: params.getAll('provider'),
    alias: params.getAll('alias'),
    meta: params.getAll('meta').filter(isMetaPair),
  };
  const status = params.get('status');
  if (status === 'ok' || status === 'error') filters.status = status;
  const q = params.get('q')?.trim();
  if (q) filters.q = q;
  for (const name of NUMBER_FILTERS) {
    const raw = params.get(name);
    const value = raw === null || raw.trim() === '' ? NaN : Number(raw);
    if (Number.isFinite(value)) filters[name] = value;
  }
  return filters;
}

/** `params` with the filter parameters replaced by `filters` (defaults left out of the URL). */
export function writeFilters(params: URLSearchParams, filters: TraceFilters): URLSearchParams {
  const next = new URLSearchParams(params);
  FILTER_PARAMS.forEach((name) => next.delete(name));
  if (filters.range !== 'all') next.set('range', filters.range);
  for (const name of LIST_FILTERS) filters[name].forEach((value) => next.append(name, value));
  if (filters.status) next.set('status', filters.status);
  if (filters.q) next.set('q', filters.q);
  for (const name of NUMBER_FILTERS) {
    const value = filters[name];
    if (value !== undefined) next.set(name, String(value));
  }
  return next;
}

/** How many filters narrow the list, the time range included. */
export function countActiveFilters(filters: TraceFilters): number {
  let count = filters.range === 'all' ? 0 : 1;
  count += filters.model.length + filters.provider.length + filters.alias.length + filters.meta.length;
  if (filters.status) count++;
  if (filters.q) count++;
  count += NUMBER_FILTERS.filter((name) => filters[name] !== undefined).length;
  return count;
}

export const isMetaPair = (value: string) => /^[^=]+=/.test(value);

/** The API query for `filters`, with the range resolved against `now`. */
export function toTraceQuery(filters: TraceFilters, now: number): TraceQuery {
  const { range, ...rest } = filters;
  return { ...rest, from: rangeStart(range, now) };
}

const inRange = (value: number, min: number | undefined, max: number | undefined) =>
  (min === undefined || value >= min) && (max === undefined || value <= max);

/**
 * Whether a live trace belongs in the filtered list: "yes", "no", or "unknown" when it hangs on
 * what a summary does not carry (metadata, the full text).
 */
export function matchesFilters(trace: TraceSummary, filters: TraceFilters, now: number): 'yes' | 'no' | 'unknown' {
  const from = rangeStart(filters.range, now);
  const ok = trace.status >= 200 && trace.status < 300;
  const tokens = trace.usage.promptTokens + trace.usage.completionTokens;
  const matches =
    (from === undefined || Date.parse(trace.startedAt) >= Date.parse(from)) &&
    (filters.model.length === 0 || filters.model.includes(trace.model)) &&
    (filters.provider.length === 0 || filters.provider.includes(trace.provider)) &&
    (filters.alias.length === 0 || filters.alias.includes(trace.alias ?? '')) &&
    (filters.status === undefined || (filters.status === 'ok') === ok) &&
    inRange(trace.costUsd, filters.minCost, filters.maxCost) &&
    inRange(trace.latencyMs, filters.minLatency, filters.maxLatency) &&
    inRange(tokens, filters.minTokens, filters.maxTokens);
  if (!matches) return 'no';
  return filters.meta.length > 0 || filters.q ? 'unknown' : 'yes';
}
