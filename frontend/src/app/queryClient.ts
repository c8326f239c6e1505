import { QueryClient } from '@tanstack/react-query';
import { ApiError } from '../api/client';

/** 4xx answers (bad token, bad request) will not change on retry; network and 5xx errors may. */
function shouldRetry(failureCount: number, error: Error): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 2;
}

export function createQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: shouldRetry, staleTime: 30_000 },
    },
  });
}
