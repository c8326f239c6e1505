import { vi } from 'vitest';
import type { Alias, ErrorResponse, Info, Provider, ProviderType } from '../api/types.gen';

export const sampleInfo: Info = {
  version: '0.1.0-test',
  shell: 'server',
  gateway: {
    baseURL: 'http://127.0.0.1:8787/v1',
    anthropicBaseURL: 'http://127.0.0.1:8787/anthropic',
    key: 'ot-abcdef0123456789',
    keySource: 'generated',
  },
  dataDir: '/home/user/.local/share/opentracy',
  startedAt: '2025-01-02T10:00:00Z',
};

const noStats = { attempts: 0, failures: 0, p50Millis: 0, p95Millis: 0, successRate: 0 };

/** From the environment, with traffic. */
export const sampleOpenAIProvider: Provider = {
  name: 'openai',
  type: 'openai',
  baseURL: 'https://api.openai.com/v1',
  keySet: true,
  keyFrom: '$OPENAI_API_KEY',
  models: ['gpt-4o', 'gpt-4o-mini'],
  source: 'environment',
  stats: { attempts: 200, failures: 3, p50Millis: 420, p95Millis: 1300, successRate: 0.985 },
};

/** Added in the app, without a key or traffic. */
export const sampleLabProvider: Provider = {
  name: 'lab',
  type: 'openai-compatible',
  baseURL: 'http://10.0.0.5:8000/v1',
  keySet: false,
  keyFrom: '',
  models: ['qwen3-8b'],
  source: 'ui',
  stats: noStats,
};

export const sampleProviders: Provider[] = [sampleOpenAIProvider, sampleLabProvider];

export const sampleProviderTypes: ProviderType[] = [
  { type: 'openai', defaultBaseURL: 'https://api.openai.com/v1', keyEnv: 'OPENAI_API_KEY', keyRequired: true },
  { type: 'anthropic', defaultBaseURL: 'https://api.anthropic.com', keyEnv: 'ANTHROPIC_API_KEY', keyRequired: true },
  { type: 'ollama', defaultBaseURL: 'http://127.0.0.1:11434/v1', keyRequired: false },
  { type: 'openai-compatible', keyRequired: false },
];

export const sampleAliases: Alias[] = [
  {
    name: 'canary',
    strategy: 'weighted',
    targets: [
      { model: 'openai/gpt-4o', weight: 90 },
      { model: 'lab/qwen3-8b', weight: 10 },
    ],
  },
  { name: 'smart', strategy: 'fallback', targets: [{ model: 'openai/gpt-4o' }, { model: 'lab/qwen3-8b' }] },
];

export const unauthorized: ErrorResponse = {
  error: { message: 'UI token required', type: 'authentication_error', code: 'ui_token_required' },
};

export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** A request as a fake route sees it; `body` is the parsed JSON body, if any. */
export interface FakeRequest {
  method: string;
  path: string;
  body: unknown;
}

export type FakeRoute = (request: FakeRequest) => Response | Promise<Response>;

/**
 * Replaces fetch with a fake that answers by "METHOD /path" first, then by bare path (any method);
 * unknown routes get a 404 ErrorResponse. `requests` records every call, bodies parsed.
 */
export function stubApi(routes: Record<string, FakeRoute>) {
  const requests: FakeRequest[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = String(input);
    const method = init?.method ?? 'GET';
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    const request = { method, path, body };
    requests.push(request);
    const route = routes[`${method} ${path}`] ?? routes[path];
    return route
      ? route(request)
      : jsonResponse(404, { error: { message: `no fake for ${method} ${path}`, type: 'not_found' } });
  });
  vi.stubGlobal('fetch', fetchMock);
  return Object.assign(fetchMock, {
    requests,
    /** The requests sent as `method` to `path`. */
    sent: (method: string, path: string) => requests.filter((r) => r.method === method && r.path === path),
  });
}

/** A 400 answer in the backend's error shape. */
export function badRequest(message: string, code = 'invalid_request'): Response {
  return jsonResponse(400, { error: { message, type: 'invalid_request_error', code } });
}
