/** Every React Query key in one place, so invalidation targets are explicit. */
export const queryKeys = {
  info: ['info'] as const,
  providers: ['providers'] as const,
  providerTypes: ['provider-types'] as const,
  /** Prefix of every alias query: invalidating it refreshes the list and all histories. */
  aliases: ['aliases'] as const,
  aliasHistory: (name: string) => ['aliases', name, 'history'] as const,
};
