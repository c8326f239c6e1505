import { vi } from 'vitest';
import type { ErrorResponse, Info } from '../api/types.gen';

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

export const unauthorized: ErrorResponse = {
  error: { message: 'UI token required', type: 'authentication_error', code: 'ui_token_required' },
};

export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** Replaces fetch with a fake that answers by path; unknown paths get a 404 ErrorResponse. */
export function stubApi(routes: Record<string, () => Response>) {
  const fetchMock = vi.fn(async (input: RequestInfo | URL) => {
    const path = String(input);
    const route = routes[path];
    return route
      ? route()
      : jsonResponse(404, { error: { message: `no fake for ${path}`, type: 'not_found' } });
  });
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}
