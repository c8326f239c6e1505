/** Every React Query key in one place, so invalidation targets are explicit. */
export const queryKeys = {
  info: ['info'] as const,
};
