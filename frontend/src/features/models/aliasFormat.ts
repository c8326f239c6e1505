import type { Alias, AliasTarget } from '../../api/types.gen';

/** Each target's share of requests in percent, rounded; all zero when no weight is set. */
export function sharePercents(targets: Pick<AliasTarget, 'weight'>[]): number[] {
  const total = targets.reduce((sum, t) => sum + (t.weight ?? 0), 0);
  return targets.map((t) => (total > 0 ? Math.round(((t.weight ?? 0) / total) * 100) : 0));
}

/** "a → b" for a fallback chain, "a 90% → b 10%" for a weighted split. */
export function formatTargets(alias: Pick<Alias, 'strategy' | 'targets'>): string {
  if (alias.strategy !== 'weighted') return alias.targets.map((t) => t.model).join(' → ');
  const shares = sharePercents(alias.targets);
  return alias.targets.map((t, i) => `${t.model} ${shares[i]}%`).join(' → ');
}

export const strategyLabels: Record<Alias['strategy'], string> = {
  fallback: 'Fallback',
  weighted: 'Weighted',
};

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];
const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "just now", "5 minutes ago", "yesterday", … */
export function formatRelativeTime(at: string, now: number = Date.now()): string {
  const seconds = (new Date(at).getTime() - now) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

export function formatAbsoluteTime(at: string): string {
  return new Date(at).toLocaleString();
}
