import type {
  Alias,
  AliasChange,
  AliasStrategy,
  AliasTarget,
  ErrorResponse,
  Info,
  Provider,
  ProviderCheck,
  ProviderInput,
  ProviderType,
  RollbackRequest,
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

// Relative URLs only: the same UI is served by `opentracy serve` and inside the desktop window.
async function requestJSON<T>(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(NETWORK_ERROR_STATUS, 'Cannot reach the OpenTracy server.', 'network_error');
  }
  if (!response.ok) throw await toApiError(response);
  return (await response.json()) as T;
}

const getJSON = <T>(path: string, signal?: AbortSignal) => requestJSON<T>('GET', path, undefined, signal);

/** What PUT /api/aliases/{name} takes: the alias without its name, which is in the path. */
export interface AliasInput {
  strategy: AliasStrategy;
  targets: AliasTarget[];
}

const providerPath = (name: string) => `/api/providers/${encodeURIComponent(name)}`;
const aliasPath = (name: string) => `/api/aliases/${encodeURIComponent(name)}`;

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
};

/** Relative so it works in both the browser and the desktop window. */
export const EVENTS_URL = '/api/events';
