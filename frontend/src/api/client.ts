import type {
  Alias,
  AliasChange,
  AliasStrategy,
  AliasTarget,
  DownloadRequest,
  Engine,
  ErrorResponse,
  ImportResult,
  Info,
  Job,
  LocalModels,
  Provider,
  ProviderCheck,
  ProviderInput,
  ProviderType,
  RollbackRequest,
  Stats,
  TraceAggregates,
  TraceDetail,
  TracePage,
} from './types.gen';

/** Every failed API call surfaces as an ApiError, parsed from the backend's ErrorResponse when present. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | undefined;

  constructor(status: number, message: string, type: string, code?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

/** Status 0 marks a request that never got an HTTP answer. */
const NETWORK_ERROR_STATUS = 0;

export function isUnauthorized(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401;
}

function isErrorResponse(body: unknown): body is ErrorResponse {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const inner: unknown = body.error;
  return (
    typeof inner === 'object' &&
    inner !== null &&
    'message' in inner &&
    typeof inner.message === 'string' &&
    'type' in inner &&
    typeof inner.type === 'string'
  );
}

async function toApiError(response: Response): Promise<ApiError> {
  const body: unknown = await response.json().catch(() => undefined);
  if (isErrorResponse(body)) {
    const { message, type, code } = body.error;
    return new ApiError(response.status, message, type, code);
  }
  const message = `${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, `Request failed: ${message}`, 'http_error');
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A request body: JSON (any value), or text sent as is with its content type. */
type Body = { json: unknown } | { text: string; contentType: string };

// Relative URLs only: the same UI is served by `opentracy serve` and inside the desktop window.
async function request<T>(method: Method, path: string, body?: Body, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  let payload: string | undefined;
  if (body && 'json' in body) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body.json);
  } else if (body) {
    headers['Content-Type'] = body.contentType;
    payload = body.text;
  }
  let response: Response;
  try {
    response = await fetch(path, { method, credentials: 'same-origin', headers, body: payload, signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(NETWORK_ERROR_STATUS, 'Cannot reach the OpenTracy server.', 'network_error');
  }
  if (!response.ok) throw await toApiError(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

function requestJSON<T>(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>(method, path, body === undefined ? undefined : { json: body }, signal);
}

const getJSON = <T>(path: string, signal?: AbortSignal) => requestJSON<T>('GET', path, undefined, signal);

/** What PUT /api/aliases/{name} takes: the alias without its name, which is in the path. */
export interface AliasInput {
  strategy: AliasStrategy;
  targets: AliasTarget[];
}

/**
 * The filters that GET /api/traces, /api/traces/aggregate and /api/traces/export share (see
 * backend/api/traces.go); absent fields do not filter.
 */
export interface TraceQuery {
  /** RFC 3339; traces that started in [from, to). */
  from?: string;
  to?: string;
  /** Repeatable: any of the values matches. `model` is the resolved model. */
  model?: string[];
  provider?: string[];
  alias?: string[];
  endpoint?: string[];
  status?: 'ok' | 'error';
  /** USD. */
  minCost?: number;
  maxCost?: number;
  /** Milliseconds. */
  minLatency?: number;
  maxLatency?: number;
  /** Prompt + completion tokens. */
  minTokens?: number;
  maxTokens?: number;
  /** "key=value" pairs; every one must match. */
  meta?: string[];
  /** Full-text search over the prompt and the answer. */
  q?: string;
}

export type AggregateGroup = 'model' | 'provider' | 'alias' | '';

/** The query string of a trace request, in the parameter names the server reads. */
export function traceSearchParams(query: TraceQuery, extra: Record<string, string | number | undefined> = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...query, ...extra })) {
    const values: unknown[] = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v === undefined || v === null || v === '') continue;
      params.append(name, String(v));
    }
  }
  return params;
}

const withQuery = (path: string, params: URLSearchParams) => {
  const query = params.toString();
  return query ? `${path}?${query}` : path;
};

/** The download link of every trace that matches `query`, one JSON object a line. */
export const traceExportURL = (query: TraceQuery) => withQuery('/api/traces/export', traceSearchParams(query));

const providerPath = (name: string) => `/api/providers/${encodeURIComponent(name)}`;
const aliasPath = (name: string) => `/api/aliases/${encodeURIComponent(name)}`;
const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`;

export const api = {
  info: (signal?: AbortSignal) => getJSON<Info>('/api/info', signal),

  providers: (signal?: AbortSignal) => getJSON<Provider[]>('/api/providers', signal),
  providerTypes: async (signal?: AbortSignal) =>
    (await getJSON<ProviderType[] | null>('/api/provider-types', signal)) ?? [],
  /** Answers the new provider list. */
  createProvider: (input: ProviderInput) => requestJSON<Provider[]>('POST', '/api/providers', input),
  /** An absent apiKey keeps the stored key. Answers the new provider list. */
  updateProvider: (name: string, input: ProviderInput) => requestJSON<Provider[]>('PUT', providerPath(name), input),
  deleteProvider: (name: string) => requestJSON<Provider[]>('DELETE', providerPath(name)),
  checkProvider: (name: string) => requestJSON<ProviderCheck>('POST', `${providerPath(name)}/check`),

  aliases: (signal?: AbortSignal) => getJSON<Alias[]>('/api/aliases', signal),
  putAlias: (name: string, input: AliasInput) => requestJSON<AliasChange>('PUT', aliasPath(name), input),
  deleteAlias: (name: string) => requestJSON<AliasChange>('DELETE', aliasPath(name)),
  aliasHistory: (name: string, signal?: AbortSignal) => getJSON<AliasChange[]>(`${aliasPath(name)}/history`, signal),
  rollbackAlias: (name: string, version: number) =>
    requestJSON<AliasChange>('POST', `${aliasPath(name)}/rollback`, { version } satisfies RollbackRequest),

  stats: (signal?: AbortSignal) => getJSON<Stats>('/api/stats', signal),

  /** One page, newest first; `cursor` is the previous page's nextCursor. */
  traces: (query: TraceQuery, page: { cursor?: string; limit?: number }, signal?: AbortSignal) =>
    getJSON<TracePage>(withQuery('/api/traces', traceSearchParams(query, page)), signal),
  trace: (id: string, signal?: AbortSignal) => getJSON<TraceDetail>(`/api/traces/${encodeURIComponent(id)}`, signal),
  /** `bucket` is a Go duration such as "1h". */
  traceAggregates: (
    query: TraceQuery,
    options: { bucket: string; groupBy: AggregateGroup },
    signal?: AbortSignal,
  ) => getJSON<TraceAggregates>(withQuery('/api/traces/aggregate', traceSearchParams(query, options)), signal),
  /** `jsonl`: exported traces or chat fine-tuning records, one JSON object a line. */
  importTraces: (jsonl: string) =>
    request<ImportResult>('POST', '/api/traces/import', { text: jsonl, contentType: 'application/x-ndjson' }),

  /** The GPU, the backend the student engine uses, and the GPU runtime. */
  engine: (signal?: AbortSignal) => getJSON<Engine>('/api/engine', signal),
  /** Starts the GPU runtime install; answers its job (progress comes as "job" events). */
  installRuntime: () => requestJSON<Job>('POST', '/api/engine/runtime/install'),
  /** Answers the engine without the runtime. */
  removeRuntime: () => requestJSON<Engine>('DELETE', '/api/engine/runtime'),
  localModels: (signal?: AbortSignal) => getJSON<LocalModels>('/api/local-models', signal),
  /** Starts (or resumes) a download from the Hugging Face Hub; answers its job. */
  downloadModel: (input: DownloadRequest) => requestJSON<Job>('POST', '/api/local-models/download', input),
  /** Stops a download, keeping what was fetched; answers the job as it ended. */
  cancelDownload: (id: string) => requestJSON<Job>('DELETE', `/api/local-models/download/${encodeURIComponent(id)}`),
  /** Deletes a downloaded model or a student; answers the new list. */
  deleteLocalModel: (name: string) =>
    requestJSON<LocalModels>('DELETE', `/api/local-models/${encodeURIComponent(name)}`),
  cancelJob: (id: string) => requestJSON<Job>('POST', `${jobPath(id)}/cancel`),
  /** Forgets a finished job. */
  dismissJob: (id: string) => requestJSON<void>('DELETE', jobPath(id)),
};

/** Relative so it works in both the browser and the desktop window. */
export const EVENTS_URL = '/api/events';
