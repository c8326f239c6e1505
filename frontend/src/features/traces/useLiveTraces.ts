import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { TraceSummary } from '../../api/types.gen';
import { useTraceEvents } from '../events';
import { matchesFilters, type TraceFilters } from './filters';
import { prependTraces, reloadTraceList } from './useTraces';

interface Pending {
  /** The filters the traces were matched against; a change of filters drops them. */
  filtersKey: string;
  traces: TraceSummary[];
  /** Some traces may or may not match (metadata or text filters): the list must be refetched. */
  needsReload: boolean;
}

const none = (filtersKey: string): Pending => ({ filtersKey, traces: [], needsReload: false });

/**
 * Live traces for the list: those that match the filters wait behind a "N new traces" button,
 * so rows do not move under the reader; an empty list takes them at once.
 */
export function useLiveTraces(filters: TraceFilters, shown: { ids: ReadonlySet<string>; empty: boolean }) {
  const queryClient = useQueryClient();
  const filtersKey = JSON.stringify(filters);
  const [pending, setPending] = useState<Pending>(() => none(filtersKey));
  const current = pending.filtersKey === filtersKey ? pending : none(filtersKey);

  useTraceEvents((trace) => {
    const match = matchesFilters(trace, filters, Date.now());
    if (match === 'no') return;
    if (shown.empty) {
      if (match === 'yes') prependTraces(queryClient, filters, [trace]);
      else void reloadTraceList(queryClient, filters);
      return;
    }
    setPending((prev) => {
      const base = prev.filtersKey === filtersKey ? prev : none(filtersKey);
      if (base.traces.some((t) => t.id === trace.id)) return base;
      return { filtersKey, traces: [trace, ...base.traces], needsReload: base.needsReload || match === 'unknown' };
    });
  });

  const fresh = current.traces.filter((t) => !shown.ids.has(t.id));

  const show = () => {
    if (current.needsReload) void reloadTraceList(queryClient, filters);
    else prependTraces(queryClient, filters, fresh);
    setPending(none(filtersKey));
  };

  return { count: fresh.length, show };
}
