import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { api, type AggregateGroup } from '../../api/client';
import { queryKeys } from '../../api/queryKeys';
import { useTraceEvents } from '../events';
import { rangeSpecs, type OverviewRange } from './aggregates';

/** The range's chart series, grouped or not; the range ends when it is fetched. */
export function useTrafficAggregate(range: OverviewRange, groupBy: AggregateGroup, enabled = true) {
  return useQuery({
    queryKey: queryKeys.traceAggregate({ range, groupBy }),
    queryFn: ({ signal }) => {
      const { ms, bucket } = rangeSpecs[range];
      const from = new Date(Date.now() - ms).toISOString();
      return api.traceAggregates({ from }, { bucket, groupBy }, signal);
    },
    enabled,
  });
}

/** At most this often, new traces refresh the charts. */
export const LIVE_REFRESH_MS = 5_000;

/** Refreshes the charts a little after new traces arrive, batching a burst into one refetch. */
export function useRefreshOnNewTraces() {
  const queryClient = useQueryClient();
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  useTraceEvents(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      void queryClient.invalidateQueries({ queryKey: queryKeys.traceAggregates });
    }, LIVE_REFRESH_MS);
  });
}
