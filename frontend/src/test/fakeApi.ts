import { vi } from 'vitest';
import type {
  Alias,
  Engine,
  ErrorResponse,
  Info,
  Job,
  LocalModels,
  Provider,
  ProviderType,
  Stats,
  TraceAggregates,
  TraceDetail,
  TracePage,
  TraceStats,
  TraceSummary,
} from '../api/types.gen';

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

/** A request as a fake route sees it; `body` is the parsed JSON body (or the raw text), if any. */
export interface FakeRequest {
  method: string;
  /** As fetched, query string included. */
  path: string;
  pathname: string;
  query: URLSearchParams;
  body: unknown;
}

export type FakeRoute = (request: FakeRequest) => Response | Promise<Response>;

function parseBody(body: RequestInit['body']): unknown {
  if (typeof body !== 'string') return undefined;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

export const healthyTraceStats: TraceStats = {
  durable: true,
  recorded: 0,
  written: 0,
  replayed: 0,
  queued: 0,
  spilled: 0,
  journalBytes: 0,
  retries: 0,
  dropped: 0,
  rejected: 0,
  storeDown: false,
};

/** The engine on a machine without a GPU (as in CI). */
export const sampleEngineNoGPU: Engine = {
  gpu: { present: false, reason: 'NVIDIA driver not available: ERROR_LIBRARY_NOT_FOUND', devices: [] },
  plan: {
    backend: 'go',
    status: 'no-gpu',
    message: 'no NVIDIA GPU: training runs on the CPU backend, slowly',
    warnings: [],
  },
  configBackend: 'auto',
  runtimeVersion: 'cuda12-jax0.8.1-1',
  runtimeDownloadBytes: 1_500_000_000,
  wheelMirror: false,
  installBlocked:
    'No NVIDIA GPU was found (NVIDIA driver not available: ERROR_LIBRARY_NOT_FOUND): the engine runs on the CPU, which needs no GPU runtime.',
};

/** An H100 with a wheel mirror configured and no GPU runtime yet: Install can run. */
export const sampleEngineGPU: Engine = {
  gpu: {
    present: true,
    driver: '550.54.15',
    cuda: '12.4',
    devices: [
      {
        index: 0,
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotal: 85_899_345_920,
        memoryFree: 84_825_604_096,
        computeCapability: '9.0',
      },
    ],
  },
  plan: {
    backend: 'go',
    status: 'needs-runtime',
    message: 'GPU found but the GPU runtime is not installed: click Install GPU runtime',
    warnings: [],
  },
  configBackend: 'auto',
  runtimeVersion: 'cuda12-jax0.8.1-1',
  runtimeDownloadBytes: 1_500_000_000,
  wheelMirror: true,
};

export const noLocalModels: LocalModels = { models: [], students: [], downloads: [], provider: 'local' };

/** A job; `overrides` change any field. */
export function sampleJob(overrides: Partial<Job> = {}): Job {
  return {
    id: 'job_1',
    kind: 'model.download',
    state: 'running',
    repo: 'Qwen/Qwen3-0.6B',
    model: 'Qwen--Qwen3-0.6B',
    phase: 'download',
    progress: { fileIndex: 0, fileCount: 0, fileDone: 0, fileTotal: 0, done: 0, total: 0, bytesPerSec: 0 },
    createdAt: '2026-01-02T10:00:00Z',
    updatedAt: '2026-01-02T10:00:00Z',
    ...overrides,
  };
}

/** What every screen may ask for, answered as an instance with no traffic; tests override them. */
const defaultRoutes: Record<string, FakeRoute> = {
  'GET /api/engine': () => jsonResponse(200, sampleEngineNoGPU),
  'GET /api/local-models': () => jsonResponse(200, noLocalModels),
  'GET /api/stats': () => jsonResponse(200, { traces: healthyTraceStats } satisfies Stats),
  'GET /api/traces': () => jsonResponse(200, { traces: [] } satisfies TracePage),
  'GET /api/traces/aggregate': () => jsonResponse(200, { series: [] } satisfies TraceAggregates),
};

/**
 * Replaces fetch with a fake that answers by "METHOD /path?query", "/path?query", "METHOD /path",
 * then "/path"; unknown routes get a 404 ErrorResponse. `requests` records every call, bodies parsed.
 */
export function stubApi(routes: Record<string, FakeRoute>) {
  const requests: FakeRequest[] = [];
  const all = { ...defaultRoutes, ...routes };
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = String(input);
    const url = new URL(path, 'http://opentracy.test');
    const method = init?.method ?? 'GET';
    const request = { method, path, pathname: url.pathname, query: url.searchParams, body: parseBody(init?.body) };
    requests.push(request);
    const route =
      all[`${method} ${path}`] ?? all[path] ?? all[`${method} ${url.pathname}`] ?? all[url.pathname];
    return route
      ? route(request)
      : jsonResponse(404, { error: { message: `no fake for ${method} ${path}`, type: 'not_found' } });
  });
  vi.stubGlobal('fetch', fetchMock);
  return Object.assign(fetchMock, {
    requests,
    /** The requests sent as `method` to `path` (query string included when it has one). */
    sent: (method: string, path: string) =>
      requests.filter((r) => r.method === method && (r.path === path || (!path.includes('?') && r.pathname === path))),
  });
}

/** A 400 answer in the backend's error shape. */
export function badRequest(message: string, code = 'invalid_request'): Response {
  return jsonResponse(400, { error: { message, type: 'invalid_request_error', code } });
}

/** A successful chat trace; `overrides` change any field. */
export function sampleTrace(overrides: Partial<TraceSummary> = {}): TraceSummary {
  return {
    id: 'tr_1',
    startedAt: '2025-01-02T10:00:00Z',
    endpoint: 'chat.completions',
    requestedModel: 'gpt-4o-mini',
    model: 'gpt-4o-mini',
    provider: 'openai',
    status: 200,
    stream: false,
    latencyMs: 420,
    ttftMs: 0,
    usage: { promptTokens: 120, completionTokens: 30, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    costUsd: 0.000036,
    preview: 'What is the capital of France?',
    ...overrides,
  };
}

/** `count` traces, newest first, numbered from `first`. */
export function sampleTraces(count: number, first = 1): TraceSummary[] {
  return Array.from({ length: count }, (_, i) => {
    const n = first + i;
    return sampleTrace({
      id: `tr_${n}`,
      startedAt: new Date(Date.UTC(2025, 0, 2, 10, 0, 0) - n * 1000).toISOString(),
      preview: `Question number ${n}`,
    });
  });
}

/** A fallback chat with a system prompt, an image, a tool call, its result and a final answer. */
export const sampleTraceDetail: TraceDetail = {
  ...sampleTrace({
    id: 'tr_detail',
    alias: 'smart',
    requestedModel: 'smart',
    model: 'gpt-4o',
    stream: true,
    latencyMs: 1830,
    ttftMs: 240,
    usage: { promptTokens: 1200, completionTokens: 300, cachedTokens: 1024, cacheWriteTokens: 0, reasoningTokens: 64 },
    costUsd: 0.00451,
    preview: 'What is the weather in Paris?',
  }),
  finishReason: 'stop',
  attempts: [
    {
      provider: 'lab',
      model: 'qwen3-8b',
      startedAt: '2025-01-02T10:00:00Z',
      latencyMs: 12,
      status: 0,
      error: 'cannot reach upstream: connection refused',
    },
    { provider: 'openai', model: 'gpt-4o', startedAt: '2025-01-02T10:00:00.1Z', latencyMs: 1800, status: 200 },
  ],
  input: [
    { role: 'system', content: 'You are a weather bot.' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is the weather in Paris?' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      ],
    },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: 'call_1',
          type: 'function',
          function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
        },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
  ],
  output: [
    { index: 0, message: { role: 'assistant', content: 'It is 21 °C and sunny in Paris.' }, finish_reason: 'stop' },
  ],
  tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
  metadata: { team: 'search', env: 'prod' },
  user: 'user-42',
  userAgent: 'OpenAI/Python 1.50.0',
  costBreakdown: { input: 0.0004, cachedInput: 0.00128, cacheWrite: 0, output: 0.0024, reasoning: 0.00043, total: 0.00451 },
};
