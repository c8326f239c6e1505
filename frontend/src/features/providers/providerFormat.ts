import type { Provider, ProviderCheck, ProviderStats, ProviderType } from '../../api/types.gen';

const NONE = '—';

/**
 * Where the key comes from, never the key: "Key set · from $OPENAI_API_KEY", "Key set · from the config file",
 * "Key set · saved in the app" or "No key".
 */
export function keyStatus({ keySet, keyFrom }: Pick<Provider, 'keySet' | 'keyFrom'>): string {
  if (!keySet) return 'No key';
  if (!keyFrom) return 'Key set';
  if (keyFrom.startsWith('saved')) return `Key set · ${keyFrom}`;
  return `Key set · from ${keyFrom === 'config file' ? 'the config file' : keyFrom}`;
}

const percent = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 });

export function formatSuccessRate(stats: ProviderStats): string {
  return stats.attempts === 0 ? NONE : percent.format(stats.successRate);
}

export function formatMillis(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** "p50 / p95", e.g. "420 ms / 1.30 s". */
export function formatLatency(stats: ProviderStats): string {
  return stats.attempts === 0 ? NONE : `${formatMillis(stats.p50Millis)} / ${formatMillis(stats.p95Millis)}`;
}

export function formatAttempts(stats: ProviderStats): string {
  if (stats.attempts === 0) return 'No requests yet';
  const requests = `${stats.attempts} ${stats.attempts === 1 ? 'request' : 'requests'}`;
  return stats.failures === 0 ? requests : `${requests}, ${stats.failures} failed`;
}

export function formatCheck(check: ProviderCheck): string {
  return check.ok ? `Connected · ${formatMillis(check.latencyMillis)}` : check.message;
}

export const sourceLabels: Record<string, string> = {
  config: 'Config file',
  environment: 'Environment',
  ui: 'Added in the app',
};

/** Only providers added in the app can be edited or removed here. */
export const isEditable = (provider: Provider) => provider.source === 'ui';

/** The help under the Type field: the default endpoint and whether a key is needed. */
export function describeType(type: ProviderType): string {
  const endpoint = type.defaultBaseURL ? `Default base URL ${type.defaultBaseURL}.` : 'Needs a base URL.';
  if (!type.keyRequired) return `${endpoint} No API key needed.`;
  const fromEnv = type.keyEnv ? ` (or $${type.keyEnv} in the server's environment)` : '';
  return `${endpoint} Needs an API key${fromEnv}.`;
}
