import { Alert, Button, Code, Group, Loader, Text } from '@mantine/core';
import { IconArrowUp, IconFilterOff, IconTimeline } from '@tabler/icons-react';
import { useCallback, useMemo } from 'react';
import { useSearchParams } from 'react-router-dom';
import type { TraceSummary } from '../../api/types.gen';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { useInfo } from '../instance';
import { countActiveFilters, noFilters, parseFilters, writeFilters, type TraceFilters } from './filters';
import { TraceDrawer } from './TraceDrawer';
import { TraceFilterBar, type FilterOptions } from './TraceFilterBar';
import { TraceHealthBanner } from './TraceHealthBanner';
import { TracesTable } from './TracesTable';
import { ExportButton, ImportButton, ImportOutcome } from './TraceTransfer';
import { formatCount } from './traceFormat';
import { useLiveTraces } from './useLiveTraces';
import { useImportTraces, useTraceFacets, useTraceList } from './useTraces';

/** The URL parameter that holds the open trace. */
const TRACE_PARAM = 'trace';

export function TracesPage() {
  const [params, setParams] = useSearchParams();
  const paramsKey = params.toString();
  // Parsed again only when the query string changes, so the filters keep their identity.
  const filters = useMemo(() => parseFilters(new URLSearchParams(paramsKey)), [paramsKey]);
  const openId = params.get(TRACE_PARAM);

  const list = useTraceList(filters);
  const traces = useMemo(() => list.data?.pages.flatMap((page) => page.traces) ?? [], [list.data]);
  const ids = useMemo(() => new Set(traces.map((t) => t.id)), [traces]);
  const live = useLiveTraces(filters, { ids, empty: list.isSuccess && traces.length === 0 });
  const options = useFilterOptions(filters, traces);
  const importer = useImportTraces();

  const update = useCallback(
    (patch: Partial<TraceFilters>) =>
      setParams((prev) => writeFilters(prev, { ...parseFilters(prev), ...patch }), { replace: true }),
    [setParams],
  );
  const clear = useCallback(() => setParams((prev) => writeFilters(prev, noFilters), { replace: true }), [setParams]);
  const withTrace = useCallback(
    (id: string | null) => {
      const next = new URLSearchParams(params);
      if (id === null) next.delete(TRACE_PARAM);
      else next.set(TRACE_PARAM, id);
      return next;
    },
    [params],
  );
  const linkTo = useCallback((id: string) => `?${withTrace(id).toString()}`, [withTrace]);
  const open = useCallback((id: string) => setParams(withTrace(id)), [setParams, withTrace]);
  const close = () => setParams(withTrace(null), { replace: true });
  const { fetchNextPage } = list;
  const loadMore = useCallback(() => void fetchNextPage(), [fetchNextPage]);
  const filtered = countActiveFilters(filters) > 0;

  return (
    <Page
      fill
      title="Traces"
      description="Every request that passes through the gateway."
      actions={
        <Group gap="xs">
          <ExportButton filters={filters} />
          <ImportButton importer={importer} />
        </Group>
      }
    >
      <TraceHealthBanner />
      <ImportOutcome importer={importer} />
      <TraceFilterBar filters={filters} options={options} onChange={update} onClear={clear} />
      <Group justify="space-between" gap="xs" mih={30}>
        <Text size="sm" c="dimmed" role="status" aria-label="Loaded traces">
          {traces.length > 0 ? describeLoaded(traces.length, list.hasNextPage) : null}
        </Text>
        <div role="status" aria-label="Live traces">
          {live.count > 0 ? (
            <Button
              size="compact-sm"
              radius="xl"
              leftSection={<IconArrowUp size={14} aria-hidden />}
              onClick={live.show}
            >
              {formatCount(live.count)} new {live.count === 1 ? 'trace' : 'traces'}
            </Button>
          ) : null}
        </div>
      </Group>
      {list.isPending ? (
        <Group gap="xs" role="status">
          <Loader size="sm" />
          <Text c="dimmed">Loading traces…</Text>
        </Group>
      ) : list.isError && traces.length === 0 ? (
        <Alert color="red" title="Could not load traces">
          {list.error.message}
        </Alert>
      ) : traces.length === 0 ? (
        filtered ? (
          <NoMatches onClear={clear} />
        ) : (
          <NoTraces />
        )
      ) : (
        <>
          <TracesTable
            traces={traces}
            hasMore={list.hasNextPage}
            loadingMore={list.isFetchingNextPage}
            onLoadMore={loadMore}
            linkTo={linkTo}
            onOpen={open}
            openId={openId}
          />
          {list.hasNextPage || list.isFetchNextPageError ? (
            <Group justify="center">
              <Button variant="subtle" size="compact-sm" loading={list.isFetchingNextPage} onClick={loadMore}>
                {list.isFetchNextPageError ? 'Retry loading older traces' : 'Load older traces'}
              </Button>
            </Group>
          ) : null}
        </>
      )}
      <TraceDrawer id={openId} onClose={close} />
    </Page>
  );
}

function describeLoaded(count: number, more: boolean): string {
  const traces = `${formatCount(count)} ${count === 1 ? 'trace' : 'traces'}`;
  return more ? `${traces} loaded; scroll for older ones` : `${traces}`;
}

/** Filter choices: what the server saw in the range, plus what the loaded rows show. */
function useFilterOptions(filters: TraceFilters, traces: TraceSummary[]): FilterOptions {
  const facets = useTraceFacets(filters.range);
  return useMemo(() => {
    const seen = (pick: (t: TraceSummary) => string | undefined, known: string[]) =>
      [...new Set([...known, ...traces.map(pick).filter((v): v is string => Boolean(v))])].sort();
    return {
      model: seen((t) => t.model, facets.model),
      provider: seen((t) => t.provider, facets.provider),
      alias: seen((t) => t.alias, facets.alias),
    };
  }, [facets.model, facets.provider, facets.alias, traces]);
}

function NoTraces() {
  const info = useInfo();
  return (
    <EmptyState
      icon={IconTimeline}
      title="No traces yet — point your OpenAI client at the gateway"
      next={{ label: 'Show connection snippets', to: '/' }}
    >
      <Text>Set your client&apos;s base URL to</Text>
      <QueryResult query={info} what="the gateway URL">
        {(data) => <Code fz="md">{data.gateway.baseURL}</Code>}
      </QueryResult>
      <Text>
        and use the gateway key as its API key. Each request then shows up here, live, with its model, prompt, response
        and latency.
      </Text>
    </EmptyState>
  );
}

function NoMatches({ onClear }: { onClear: () => void }) {
  return (
    <EmptyState
      icon={IconFilterOff}
      title="No traces match these filters"
      action={
        <Button variant="light" onClick={onClear}>
          Clear filters
        </Button>
      }
    >
      <Text>Widen the time range or remove a filter.</Text>
    </EmptyState>
  );
}
