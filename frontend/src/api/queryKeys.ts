/** Every React Query key in one place, so invalidation targets are explicit. */
export const queryKeys = {
  info: ['info'] as const,
  stats: ['stats'] as const,
  providers: ['providers'] as const,
  providerTypes: ['provider-types'] as const,
  /** Prefix of every alias query: invalidating it refreshes the list and all histories. */
  aliases: ['aliases'] as const,
  aliasHistory: (name: string) => ['aliases', name, 'history'] as const,
  /** Prefix of every trace query: an import invalidates it. */
  traces: ['traces'] as const,
  /** `filters` is the screen's filter state (a plain, serialisable object). */
  traceList: (filters: object) => ['traces', 'list', filters] as const,
  trace: (id: string) => ['traces', 'detail', id] as const,
  /** Prefix of the chart and filter-option queries, refreshed as new traces arrive. */
  traceAggregates: ['traces', 'aggregate'] as const,
  traceAggregate: (params: object) => ['traces', 'aggregate', params] as const,
  /** The GPU, the engine's plan and the GPU runtime (with its install job). */
  engine: ['engine'] as const,
  /** Downloaded models, students and the downloads that run or did not finish. */
  localModels: ['local-models'] as const,
};
