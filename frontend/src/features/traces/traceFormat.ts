import type { TraceSummary } from '../../api/types.gen';

export { formatMillis } from '../providers/providerFormat';

const dollars = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const cents = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 4,
});
const fractions = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 2 });

/** USD with the precision a price needs: "$1.25", "$0.0123", "$0.000036", "$0". */
export function formatCost(usd: number): string {
  if (usd === 0) return '$0';
  if (usd >= 1) return dollars.format(usd);
  if (usd >= 0.01) return cents.format(usd);
  return fractions.format(usd);
}

const integer = new Intl.NumberFormat('en-US');

export function formatCount(n: number): string {
  return integer.format(n);
}

export const totalTokens = (trace: Pick<TraceSummary, 'usage'>) =>
  trace.usage.promptTokens + trace.usage.completionTokens;

const timeOfDay = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** Local date and time to the second, e.g. "Jan 2, 10:00:01". */
export function formatTraceTime(iso: string): string {
  return timeOfDay.format(new Date(iso));
}

export const isSuccess = (status: number) => status >= 200 && status < 300;

/** The HTTP status, or "No answer" when no upstream answered (status 0). */
export function formatStatus(status: number): string {
  return status === 0 ? 'No answer' : String(status);
}
