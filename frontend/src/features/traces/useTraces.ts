import {
  useInfiniteQuery,
  useMutation,
  useQuery,
  useQueryClient,
  type InfiniteData,
  type QueryClient,
} from '@tanstack/react-query';
import { api, type AggregateGroup, type TraceQuery } from '../../api/client';
import { queryKeys } from '../../api/queryKeys';
import type { TracePage, TraceSummary } from '../../api/types.gen';
import { rangeStart, toTraceQuery, type TraceFilters, type TraceRange } from './filters';

export const TRACE_PAGE_SIZE = 50;

/** A page, with the `from` time its range resolved to: later pages keep the first page's window. */
export interface ListedPage extends TracePage {
  from?: string;
}

export interface PageParam {
  cursor: string;
  from?: string;
}

export type TraceListData = InfiniteData<ListedPage, PageParam | null>;

/** The filtered list, newest first, a cursor page at a time. */
export function useTraceList(filters: TraceFilters) {
  return useInfiniteQuery({
    queryKey: queryKeys.traceList(filters),
    initialPageParam: null as PageParam | null,
    queryFn: async ({ pageParam, signal }): Promise<ListedPage> => {
      const query = toTraceQuery(filters, Date.now());
      const from = pageParam ? pageParam.from : query.from;
      const page = await api.traces(
        { ...query, from },
        { cursor: pageParam?.cursor, limit: TRACE_PAGE_SIZE },
        signal,
      );
      return { ...page, from };
    },
    getNextPageParam: (last): PageParam | undefined =>
      last.nextCursor ? { cursor: last.nextCursor, from: last.from } : undefined,
  });
}

/** Puts live traces on top of the cached list, skipping any it already holds. */
export function prependTraces(queryClient: QueryClient, filters: TraceFilters, traces: TraceSummary[]) {
  queryClient.setQueryData<TraceListData>(queryKeys.traceList(filters), (data) => {
    const [first, ...rest] = data?.pages ?? [];
    if (!data || !first) return data;
    const known = new Set(data.pages.flatMap((page) => page.traces.map((t) => t.id)));
    const fresh = traces.filter((t) => !known.has(t.id));
    return { ...data, pages: [{ ...first, traces: [...fresh, ...first.traces] }, ...rest] };
  });
}

/** Refetches the list from its first page, keeping the rows on screen until the answer arrives. */
export function reloadTraceList(queryClient: QueryClient, filters: TraceFilters) {
  const key = queryKeys.traceList(filters);
  queryClient.setQueryData<TraceListData>(key, (data) =>
    data ? { pages: data.pages.slice(0, 1), pageParams: data.pageParams.slice(0, 1) } : data,
  );
  return queryClient.invalidateQueries({ queryKey: key, exact: true });
}

export function useTrace(id: string) {
  return useQuery({
    queryKey: queryKeys.trace(id),
    queryFn: ({ signal }) => api.trace(id, signal),
    // A stored trace never changes.
    staleTime: Infinity,
  });
}

/** Ten years: one bucket holds the whole range, when only the groups matter. */
const WHOLE_RANGE_BUCKET = '87600h';
const EPOCH = '2000-01-01T00:00:00Z';

/** The models, providers and aliases seen in `range`, for the filter pickers. */
export function useTraceFacets(range: TraceRange) {
  const facet = (groupBy: Exclude<AggregateGroup, ''>) => ({
    queryKey: queryKeys.traceAggregate({ facet: groupBy, range }),
    queryFn: async ({ signal }: { signal: AbortSignal }) => {
      const query: TraceQuery = { from: rangeStart(range, Date.now()) ?? EPOCH };
      const aggregates = await api.traceAggregates(query, { bucket: WHOLE_RANGE_BUCKET, groupBy }, signal);
      return aggregates.series
        .filter((s) => s.group !== '' && s.buckets.some((b) => b.requests > 0))
        .map((s) => s.group)
        .sort();
    },
  });
  const models = useQuery(facet('model'));
  const providers = useQuery(facet('provider'));
  const aliases = useQuery(facet('alias'));
  return { model: models.data ?? [], provider: providers.data ?? [], alias: aliases.data ?? [] };
}

/** A file's text, through FileReader, which every browser and webview (and jsdom) has. */
function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(typeof reader.result === 'string' ? reader.result : '');
    reader.onerror = () => reject(reader.error ?? new Error(`cannot read ${file.name}`));
    reader.readAsText(file);
  });
}

export function useImportTraces() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (file: File) => api.importTraces(await readText(file)),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.traces }),
  });
}

/** The trace writer's counters; polled so that drops show up without a reload. */
export function useTraceStats() {
  return useQuery({
    queryKey: queryKeys.stats,
    queryFn: ({ signal }) => api.stats(signal),
    refetchInterval: 10_000,
  });
}
