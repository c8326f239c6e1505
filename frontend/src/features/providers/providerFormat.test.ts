import { describe, expect, it } from 'vitest';
import { describeType, formatCheck, formatLatency, formatSuccessRate, keyStatus } from './providerFormat';

const stats = { attempts: 0, failures: 0, p50Millis: 0, p95Millis: 0, successRate: 0 };

describe('provider formatting', () => {
  it('says where a key comes from, never what it is', () => {
    expect(keyStatus({ keySet: true, keyFrom: '$OPENAI_API_KEY' })).toBe('Key set · from $OPENAI_API_KEY');
    expect(keyStatus({ keySet: true, keyFrom: 'config file' })).toBe('Key set · from the config file');
    expect(keyStatus({ keySet: true, keyFrom: 'saved in the app' })).toBe('Key set · saved in the app');
    expect(keyStatus({ keySet: true, keyFrom: '' })).toBe('Key set');
    expect(keyStatus({ keySet: false, keyFrom: '' })).toBe('No key');
  });

  it('shows a dash until a provider has traffic', () => {
    expect(formatSuccessRate(stats)).toBe('—');
    expect(formatLatency(stats)).toBe('—');
    const busy = { attempts: 3, failures: 1, p50Millis: 85.4, p95Millis: 12_345, successRate: 2 / 3 };
    expect(formatSuccessRate(busy)).toBe('66.7%');
    expect(formatLatency(busy)).toBe('85 ms / 12.3 s');
  });

  it('formats a connection check', () => {
    expect(formatCheck({ ok: true, latencyMillis: 1520, message: 'connected' })).toBe('Connected · 1.52 s');
    expect(formatCheck({ ok: false, latencyMillis: 3, message: 'the key was refused (HTTP 401)' })).toBe(
      'the key was refused (HTTP 401)',
    );
  });

  it('describes a provider type', () => {
    expect(
      describeType({
        type: 'openai',
        defaultBaseURL: 'https://api.openai.com/v1',
        keyEnv: 'OPENAI_API_KEY',
        keyRequired: true,
      }),
    ).toBe(
      "Default base URL https://api.openai.com/v1. Needs an API key (or $OPENAI_API_KEY in the server's environment).",
    );
    expect(describeType({ type: 'openai-compatible', keyRequired: false })).toBe(
      'Needs a base URL. No API key needed.',
    );
  });
});
