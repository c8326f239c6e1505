import type { ErrorResponse, Info } from './types.gen';

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

// Relative URLs only: the same UI is served by `opentracy serve` and inside the desktop window.
async function getJSON<T>(path: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(NETWORK_ERROR_STATUS, 'Cannot reach the OpenTracy server.', 'network_error');
  }
  if (!response.ok) throw await toApiError(response);
  return (await response.json()) as T;
}

export const api = {
  info: (signal?: AbortSignal) => getJSON<Info>('/api/info', signal),
};

/** Relative so it works in both the browser and the desktop window. */
export const EVENTS_URL = '/api/events';
