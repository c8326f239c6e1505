import { describe, expect, it, vi } from 'vitest';
import { jsonResponse, sampleInfo, stubApi, unauthorized } from '../test/fakeApi';
import { api, ApiError, isUnauthorized } from './client';

describe('api client', () => {
  it('fetches relative URLs with same-origin credentials and returns the JSON body', async () => {
    const fetchMock = stubApi({ '/api/info': () => jsonResponse(200, sampleInfo) });
    await expect(api.info()).resolves.toEqual(sampleInfo);
    expect(fetchMock).toHaveBeenCalledWith('/api/info', expect.objectContaining({ credentials: 'same-origin' }));
  });

  it('parses an ErrorResponse into an ApiError', async () => {
    stubApi({ '/api/info': () => jsonResponse(401, unauthorized) });
    const error: unknown = await api.info().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({
      status: 401,
      code: 'ui_token_required',
      type: 'authentication_error',
      message: 'UI token required',
    });
    expect(isUnauthorized(error)).toBe(true);
  });

  it('still gives an ApiError when the error body is not an ErrorResponse', async () => {
    stubApi({ '/api/info': () => new Response('upstream exploded', { status: 502, statusText: 'Bad Gateway' }) });
    const error: unknown = await api.info().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 502, code: undefined, message: 'Request failed: 502 Bad Gateway' });
    expect(isUnauthorized(error)).toBe(false);
  });

  it('turns a network failure into an ApiError with status 0', async () => {
    vi.stubGlobal('fetch', vi.fn().mockRejectedValue(new TypeError('Failed to fetch')));
    await expect(api.info()).rejects.toMatchObject({ status: 0, type: 'network_error' });
  });
});
