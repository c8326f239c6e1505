import { act, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { ImportResult, TraceAggregates, TracePage, TraceStats } from '../../api/types.gen';
import {
  healthyTraceStats,
  jsonResponse,
  sampleInfo,
  sampleTrace,
  sampleTraceDetail,
  sampleTraces,
  stubApi,
  type FakeRequest,
  type FakeRoute,
} from '../../test/fakeApi';
import { scrollTo, useFakeLayout } from '../../test/layout';
import { renderApp } from '../../test/renderApp';

useFakeLayout({ height: 400 });

const facets: TraceAggregates['series'] = [
  { group: 'gpt-4o', buckets: [{ ...emptyBucket(), requests: 3 }] },
  { group: 'gpt-4o-mini', buckets: [{ ...emptyBucket(), requests: 5 }] },
];

function emptyBucket() {
  return {
    start: '2025-01-01T00:00:00Z',
    requests: 0,
    errors: 0,
    costUsd: 0,
    promptTokens: 0,
    completionTokens: 0,
    latencyP50Ms: 0,
    latencyP95Ms: 0,
    latencyP99Ms: 0,
  };
}

function stubTraces(pages: TracePage | ((request: FakeRequest) => TracePage), routes: Record<string, FakeRoute> = {}) {
  return stubApi({
    '/api/info': () => jsonResponse(200, sampleInfo),
    'GET /api/traces': (request) => jsonResponse(200, typeof pages === 'function' ? pages(request) : pages),
    'GET /api/traces/aggregate': ({ query }) =>
      jsonResponse(200, { series: query.get('groupBy') === 'model' ? facets : [] } satisfies TraceAggregates),
    'GET /api/traces/tr_detail': () => jsonResponse(200, sampleTraceDetail),
    ...routes,
  });
}

const table = () => screen.findByRole('table', { name: 'Traces' });
const bodyRows = async () => within(await table()).getAllByRole('row').slice(1);
/** The query of the latest list request. */
const lastListQuery = (api: ReturnType<typeof stubApi>) => api.sent('GET', '/api/traces').at(-1)?.query;

describe('Traces screen', () => {
  it('lists traces newest first with model, provider, status, latency, tokens, cost and prompt', async () => {
    stubTraces({
      traces: [
        sampleTrace({ id: 'a', alias: 'smart', preview: 'What is the capital of France?' }),
        sampleTrace({
          id: 'b',
          model: 'claude-sonnet-4',
          provider: 'anthropic',
          status: 502,
          error: 'upstream timed out',
          latencyMs: 30_000,
          costUsd: 1.5,
          preview: 'Summarise this contract',
        }),
      ],
    });
    renderApp('/traces');

    const [first, second] = await bodyRows();
    expect(first).toHaveTextContent('gpt-4o-mini');
    expect(first).toHaveTextContent('smart');
    expect(first).toHaveTextContent('openai');
    expect(first).toHaveTextContent('200');
    expect(first).toHaveTextContent('420 ms');
    expect(first).toHaveTextContent('150');
    expect(first).toHaveTextContent('$0.000036');
    expect(first).toHaveTextContent('What is the capital of France?');
    expect(second).toHaveTextContent('anthropic');
    expect(second).toHaveTextContent('502');
    expect(second).toHaveTextContent('30.0 s');
    expect(second).toHaveTextContent('$1.50');
    expect(screen.getByRole('status', { name: 'Loaded traces' })).toHaveTextContent('2 traces');
    // Keyboards open a trace through the link in its first cell.
    expect(within(first as HTMLElement).getByRole('link')).toHaveAttribute('href', '/traces?trace=a');
  });

  it('shows how to connect when there are no traces at all', async () => {
    stubTraces({ traces: [] });
    renderApp('/traces');
    const empty = await screen.findByRole('region', { name: 'No traces yet — point your OpenAI client at the gateway' });
    expect(await within(empty).findByText(sampleInfo.gateway.baseURL)).toBeInTheDocument();
    expect(within(empty).getByRole('link', { name: 'Show connection snippets' })).toHaveAttribute('href', '/');
  });

  it('sends the filters in the query string and keeps them in the URL', async () => {
    const api = stubTraces({ traces: sampleTraces(3) });
    const { user, router } = renderApp('/traces');
    await table();

    await user.click(screen.getByRole('textbox', { name: 'Model' }));
    await user.click(await screen.findByRole('option', { name: 'gpt-4o' }));
    await expect.poll(() => lastListQuery(api)?.getAll('model')).toEqual(['gpt-4o']);

    await user.click(screen.getByRole('textbox', { name: 'Status' }));
    await user.click(await screen.findByRole('option', { name: 'Failed' }));
    await expect.poll(() => lastListQuery(api)?.get('status')).toBe('error');

    await user.type(screen.getByRole('searchbox', { name: 'Search' }), 'paris weather');
    await expect.poll(() => lastListQuery(api)?.get('q')).toBe('paris weather');

    const before = Date.now();
    await user.click(screen.getByRole('radio', { name: '24h' }));
    await expect.poll(() => lastListQuery(api)?.get('from')).toBeTruthy();
    const from = Date.parse(lastListQuery(api)?.get('from') ?? '');
    expect(Math.abs(before - 24 * 3600_000 - from)).toBeLessThan(60_000);

    const url = new URLSearchParams(router.state.location.search);
    expect(url.getAll('model')).toEqual(['gpt-4o']);
    expect(url.get('status')).toBe('error');
    expect(url.get('q')).toBe('paris weather');
    expect(url.get('range')).toBe('24h');

    await user.click(screen.getByRole('button', { name: 'Clear filters' }));
    expect(router.state.location.search).toBe('');
    expect(screen.getByRole('searchbox', { name: 'Search' })).toHaveValue('');
    expect(screen.getByRole('radio', { name: 'All' })).toBeChecked();
    expect(screen.getByRole('textbox', { name: 'Status' })).toHaveValue('Any status');
  });

  it('reads the filters from a shared URL', async () => {
    const api = stubTraces({ traces: sampleTraces(1) });
    renderApp('/traces?model=gpt-4o&provider=openai&minCost=0.01&maxLatency=2000&meta=team%3Dsearch&q=hello&range=7d');
    await table();

    const query = lastListQuery(api);
    expect(query?.getAll('model')).toEqual(['gpt-4o']);
    expect(query?.getAll('provider')).toEqual(['openai']);
    expect(query?.get('minCost')).toBe('0.01');
    expect(query?.get('maxLatency')).toBe('2000');
    expect(query?.getAll('meta')).toEqual(['team=search']);
    expect(query?.get('q')).toBe('hello');
    expect(Date.now() - Date.parse(query?.get('from') ?? '')).toBeGreaterThanOrEqual(7 * 24 * 3600_000);

    expect(screen.getByRole('searchbox', { name: 'Search' })).toHaveValue('hello');
    expect(screen.getByRole('radio', { name: '7d' })).toBeChecked();
    expect(screen.getByRole('button', { name: /More filters/ })).toHaveAttribute('aria-expanded', 'true');
    expect(screen.getByRole('textbox', { name: 'Min cost (USD)' })).toHaveValue('0.01');
    expect(screen.getByText('team=search')).toBeInTheDocument();
  });

  it('sends a range filter typed in More filters', async () => {
    const api = stubTraces({ traces: sampleTraces(1) });
    const { user } = renderApp('/traces');
    await table();
    await user.click(screen.getByRole('button', { name: /More filters/ }));
    await user.type(screen.getByRole('textbox', { name: 'Min tokens' }), '1000');
    await expect.poll(() => lastListQuery(api)?.get('minTokens')).toBe('1000');
  });

  it('fetches the next cursor page when the list is scrolled to its end', async () => {
    const api = stubTraces(({ query }) =>
      query.get('cursor') === 'page-2'
        ? { traces: sampleTraces(20, 51) }
        : { traces: sampleTraces(50), nextCursor: 'page-2' },
    );
    renderApp('/traces');
    const traces = await table();
    expect(screen.getByRole('status', { name: 'Loaded traces' })).toHaveTextContent('50 traces loaded');
    // Only the rows in view are rendered.
    expect(within(traces).getAllByRole('row').length).toBeLessThan(50);
    expect(api.sent('GET', '/api/traces')).toHaveLength(1);

    const scroller = traces.parentElement;
    if (!scroller) throw new Error('the table has no scroll container');
    act(() => scrollTo(scroller, 50 * 41 - 400));

    await expect.poll(() => lastListQuery(api)?.get('cursor')).toBe('page-2');
    expect(await screen.findByText('70 traces')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Load older traces' })).not.toBeInTheDocument();
    expect(within(traces).getByText('Question number 50')).toBeInTheDocument();
  });

  it('shows live traces that match the filters behind a "new traces" button', async () => {
    stubTraces({ traces: sampleTraces(2) });
    const { user, events } = renderApp('/traces?status=ok');
    await table();

    act(() => events.latest().emit('trace', sampleTrace({ id: 'failed', status: 500, preview: 'Broken request' })));
    act(() => events.latest().emit('trace', sampleTrace({ id: 'live-1', preview: 'A brand new question' })));
    act(() => events.latest().emit('trace', sampleTrace({ id: 'live-1', preview: 'A brand new question' })));

    const pill = await screen.findByRole('button', { name: '1 new trace' });
    expect(screen.queryByText('A brand new question')).not.toBeInTheDocument();
    await user.click(pill);

    const [first] = await bodyRows();
    expect(first).toHaveTextContent('A brand new question');
    expect(screen.queryByText('Broken request')).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /new trace/ })).not.toBeInTheDocument();
  });

  it('refetches instead when the live trace may match a text filter', async () => {
    let stored = sampleTraces(2);
    const api = stubTraces(() => ({ traces: stored }));
    const { user, events } = renderApp('/traces?q=weather');
    await table();
    const fetches = api.sent('GET', '/api/traces').length;

    stored = [sampleTrace({ id: 'live', preview: 'What is the weather?' }), ...stored];
    act(() => events.latest().emit('trace', stored[0]));
    await user.click(await screen.findByRole('button', { name: '1 new trace' }));

    await expect.poll(() => api.sent('GET', '/api/traces').length).toBe(fetches + 1);
    expect(await screen.findByText('What is the weather?')).toBeInTheDocument();
  });

  it('puts the first live trace straight into an empty list', async () => {
    stubTraces({ traces: [] });
    const { events } = renderApp('/traces');
    await screen.findByRole('region', { name: /No traces yet/ });

    act(() => events.latest().emit('trace', sampleTrace({ id: 'first', preview: 'My very first request' })));
    expect(await screen.findByText('My very first request')).toBeInTheDocument();
    expect(screen.queryByRole('region', { name: /No traces yet/ })).not.toBeInTheDocument();
  });

  it('opens a trace in a drawer with the conversation, tool calls, attempts and cost', async () => {
    stubTraces({ traces: [sampleTrace({ id: 'tr_detail', preview: 'What is the weather in Paris?' })] });
    const { user, router } = renderApp('/traces?status=ok');
    const [row] = await bodyRows();
    if (!row) throw new Error('no row');
    await user.click(row);

    expect(new URLSearchParams(router.state.location.search).get('trace')).toBe('tr_detail');
    expect(new URLSearchParams(router.state.location.search).get('status')).toBe('ok');
    const drawer = await screen.findByRole('dialog', { name: 'Trace details' });
    const request = await within(drawer).findByRole('list', { name: 'Request messages' });

    const [system, user1, assistant, tool] = within(request).getAllByRole('listitem');
    expect(system).toHaveAccessibleName('system message');
    expect(system).toHaveTextContent('You are a weather bot.');
    expect(user1).toHaveAccessibleName('user message');
    expect(user1).toHaveTextContent('What is the weather in Paris?');
    expect(within(user1 as HTMLElement).getByRole('group', { name: 'Attachment' })).toHaveTextContent(
      'Image: image/png',
    );
    const call = within(assistant as HTMLElement).getByRole('group', { name: 'Tool call get_weather' });
    expect(call).toHaveTextContent('"city": "Paris"');
    expect(call).toHaveTextContent('"unit": "celsius"');
    expect(within(tool as HTMLElement).getByRole('group', { name: 'Tool result get_weather (call_1)' })).toHaveTextContent(
      '"temp": 21',
    );
    expect(within(drawer).getByRole('list', { name: 'Response messages' })).toHaveTextContent(
      'It is 21 °C and sunny in Paris.',
    );
    expect(drawer).toHaveTextContent('Tools offered: get_weather');

    const attempts = within(within(drawer).getByRole('table', { name: 'Attempts' })).getAllByRole('row');
    expect(attempts).toHaveLength(3);
    expect(attempts[1]).toHaveTextContent('lab');
    expect(attempts[1]).toHaveTextContent('No answer');
    expect(attempts[1]).toHaveTextContent('connection refused');
    expect(attempts[2]).toHaveTextContent('Fallback');
    expect(attempts[2]).toHaveTextContent('1.80 s');

    const cost = within(drawer).getByRole('table', { name: 'Cost breakdown' });
    expect(within(cost).getByRole('row', { name: /Cached input/ })).toHaveTextContent('$0.0013');
    expect(within(cost).getByRole('row', { name: /Total/ })).toHaveTextContent('$0.0045');
    expect(within(drawer).getByText('Time to first token').nextElementSibling).toHaveTextContent('240 ms');
    expect(within(drawer).getByText('Cached tokens').nextElementSibling).toHaveTextContent('1,024');
    expect(within(drawer).getByText('Reasoning tokens').nextElementSibling).toHaveTextContent('64');
    expect(within(drawer).getByRole('table', { name: 'Metadata' })).toHaveTextContent('teamsearch');
    expect(within(drawer).getByText('User agent').nextElementSibling).toHaveTextContent('OpenAI/Python 1.50.0');

    expect(within(drawer).queryByLabelText('Raw trace JSON')).not.toBeInTheDocument();
    await user.click(within(drawer).getByRole('button', { name: 'Raw JSON' }));
    expect(within(drawer).getByLabelText('Raw trace JSON')).toHaveTextContent('"userAgent": "OpenAI/Python 1.50.0"');

    await user.click(within(drawer).getByRole('button', { name: 'Close' }));
    await expect.poll(() => screen.queryByRole('dialog')).toBeNull();
    expect(router.state.location.search).toBe('?status=ok');
  });

  it('opens the drawer from a shared link and reports an unknown trace', async () => {
    stubTraces({ traces: sampleTraces(1) });
    renderApp('/traces?trace=nope');
    const drawer = await screen.findByRole('dialog', { name: 'Trace details' });
    expect(await within(drawer).findByText(/Could not load the trace/)).toBeInTheDocument();
  });

  it('exports the filtered set', async () => {
    stubTraces({ traces: sampleTraces(1) });
    renderApp('/traces?model=gpt-4o&status=error&meta=team%3Dsearch');
    const link = await screen.findByRole('link', { name: 'Export JSONL' });
    const href = new URL(link.getAttribute('href') ?? '', 'http://x');
    expect(href.pathname).toBe('/api/traces/export');
    expect(href.searchParams.getAll('model')).toEqual(['gpt-4o']);
    expect(href.searchParams.get('status')).toBe('error');
    expect(href.searchParams.getAll('meta')).toEqual(['team=search']);
    expect(link).toHaveAttribute('download');
  });

  it('imports a JSONL file and shows what was imported, skipped and refused', async () => {
    const result: ImportResult = {
      imported: 2,
      skipped: 1,
      errors: [{ line: 4, message: 'not a JSON object: invalid character' }],
    };
    const api = stubTraces({ traces: [] }, { 'POST /api/traces/import': () => jsonResponse(200, result) });
    const { user } = renderApp('/traces');
    await screen.findByRole('region', { name: /No traces yet/ });
    const listFetches = api.sent('GET', '/api/traces').length;

    const jsonl = '{"id":"a","started_at":"2025-01-02T10:00:00Z"}\n{"messages":[]}\n';
    await user.upload(screen.getByLabelText('JSONL file to import'), new File([jsonl], 'traces.jsonl'));

    await expect.poll(() => api.sent('POST', '/api/traces/import').length).toBe(1);
    const summary = await screen.findByText('Imported 2 traces');
    const alert = summary.closest('[role="status"]');
    expect(alert).toHaveTextContent('1 skipped (already present)');
    expect(alert).toHaveTextContent('Line 4: not a JSON object');
    expect(api.sent('POST', '/api/traces/import').map((r) => r.body)).toEqual([jsonl]);
    // The list is refreshed.
    await expect.poll(() => api.sent('GET', '/api/traces').length).toBeGreaterThan(listFetches);
  });

  it('warns when traces were dropped or rejected', async () => {
    const stats: TraceStats = { ...healthyTraceStats, dropped: 3, rejected: 1 };
    stubTraces({ traces: sampleTraces(1) }, { 'GET /api/stats': () => jsonResponse(200, { traces: stats }) });
    renderApp('/traces');
    const banner = await screen.findByRole('alert');
    expect(banner).toHaveTextContent('Some traces were not recorded');
    expect(banner).toHaveTextContent('3 traces were dropped');
    expect(banner).toHaveTextContent('1 trace was rejected');
  });

  it('warns when the trace store is down', async () => {
    const stats: TraceStats = { ...healthyTraceStats, storeDown: true, queued: 12, lastError: 'database is locked' };
    stubTraces({ traces: sampleTraces(1) }, { 'GET /api/stats': () => jsonResponse(200, { traces: stats }) });
    renderApp('/traces');
    const banner = await screen.findByRole('alert');
    expect(banner).toHaveTextContent('The trace store is unavailable');
    expect(banner).toHaveTextContent('12 traces pending');
    expect(banner).toHaveTextContent('database is locked');
  });
});
