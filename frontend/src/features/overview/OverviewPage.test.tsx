import { act, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { TraceBucket, TraceSeries } from '../../api/types.gen';
import { healthyTraceStats, jsonResponse, sampleInfo, stubApi, type FakeRequest } from '../../test/fakeApi';
import { renderApp } from '../../test/renderApp';
import { formatUnit, type ChartSpec } from './chartSpec';
import { LIVE_REFRESH_MS } from './useTraffic';

// Recharts needs real layout, which jsdom lacks; the chart is render-only, so a stand-in shows what it gets.
vi.mock('./charts', () => ({
  TrafficChart: ({ spec }: { spec: ChartSpec }) => (
    <table aria-label={spec.label}>
      <tbody>
        {spec.data.map((row, i) => (
          <tr key={i}>
            {spec.series.map((s) => {
              const value = row[s.name];
              return (
                <td key={s.name}>
                  {s.label}: {typeof value === 'number' ? formatUnit(spec.unit, value) : '—'}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  ),
}));

function bucket(start: string, values: Partial<TraceBucket> = {}): TraceBucket {
  return {
    start,
    requests: 0,
    errors: 0,
    costUsd: 0,
    promptTokens: 0,
    completionTokens: 0,
    latencyP50Ms: 0,
    latencyP95Ms: 0,
    latencyP99Ms: 0,
    ...values,
  };
}

const T1 = '2025-01-02T10:00:00Z';
const T2 = '2025-01-02T11:00:00Z';
const T3 = '2025-01-02T12:00:00Z';

const overall: TraceSeries[] = [
  {
    group: '',
    buckets: [
      bucket(T1, {
        requests: 10,
        errors: 1,
        costUsd: 0.5,
        promptTokens: 1000,
        completionTokens: 200,
        latencyP50Ms: 300,
        latencyP95Ms: 900,
        latencyP99Ms: 1500,
      }),
      bucket(T2),
      bucket(T3, {
        requests: 5,
        costUsd: 0.25,
        promptTokens: 500,
        completionTokens: 100,
        latencyP50Ms: 250,
        latencyP95Ms: 600,
        latencyP99Ms: 800,
      }),
    ],
  },
];

const byModel: TraceSeries[] = [
  {
    group: 'gpt-4o-mini',
    buckets: [bucket(T1, { requests: 10, errors: 1, costUsd: 0.15, promptTokens: 1000 }), bucket(T2), bucket(T3)],
  },
  {
    group: 'gpt-4o',
    buckets: [bucket(T1), bucket(T2), bucket(T3, { requests: 5, costUsd: 0.6, promptTokens: 500 })],
  },
];

const byProvider: TraceSeries[] = [
  { group: 'openai', buckets: [bucket(T1, { requests: 10 }), bucket(T2), bucket(T3, { requests: 5 })] },
];

function stubOverview(series: Record<string, TraceSeries[]> = { '': overall, model: byModel, provider: byProvider }) {
  return stubApi({
    '/api/info': () => jsonResponse(200, sampleInfo),
    'GET /api/traces/aggregate': ({ query }) => jsonResponse(200, { series: series[query.get('groupBy') ?? ''] ?? [] }),
  });
}

const aggregateRequests = (api: ReturnType<typeof stubApi>) => api.sent('GET', '/api/traces/aggregate');
const groupOf = (request: FakeRequest) => request.query.get('groupBy') ?? '';
const total = (traffic: HTMLElement, name: string) =>
  within(traffic).getByText(name, { selector: 'dt' }).nextElementSibling;
const chartRows = (name: string) => within(screen.getByRole('table', { name })).getAllByRole('row');

describe('Overview screen', () => {
  it('charts cost, requests, tokens, latency and errors over the last 24 hours', async () => {
    const api = stubOverview();
    renderApp('/');

    const traffic = await screen.findByRole('region', { name: 'Traffic' });
    expect(await within(traffic).findByText('Requests', { selector: 'dt' })).toBeInTheDocument();
    expect(total(traffic, 'Requests')).toHaveTextContent('15');
    expect(total(traffic, 'Error rate')).toHaveTextContent('6.7%');
    expect(total(traffic, 'Cost')).toHaveTextContent('$0.75');
    expect(total(traffic, 'Tokens')).toHaveTextContent('1,800');

    await screen.findByRole('table', { name: 'Cost over time' });
    expect(chartRows('Cost over time').map((r) => r.textContent)).toEqual(['Cost: $0.50', 'Cost: $0', 'Cost: $0.25']);
    expect(chartRows('Requests over time')[0]).toHaveTextContent('Succeeded: 9Failed: 1');
    expect(chartRows('Tokens over time')[2]).toHaveTextContent('Prompt: 500Completion: 100');
    expect(chartRows('Latency over time')[0]).toHaveTextContent('p50: 300 msp95: 900 msp99: 1,500 ms');
    // An empty bucket has no latency, rather than a latency of zero.
    expect(chartRows('Latency over time')[1]).toHaveTextContent('p50: —');
    expect(chartRows('Error rate over time')[0]).toHaveTextContent('Error rate: 10%');

    const byModelChart = await screen.findByRole('table', { name: 'Cost by model over time' });
    expect(within(byModelChart).getAllByRole('row')[2]).toHaveTextContent('gpt-4o: $0.60gpt-4o-mini: $0');

    const top = screen.getByRole('table', { name: 'Top models by cost' });
    const [, first, second] = within(top).getAllByRole('row');
    expect(first).toHaveTextContent('gpt-4o5');
    expect(first).toHaveTextContent('$0.60');
    expect(second).toHaveTextContent('gpt-4o-mini10');
    expect(second).toHaveTextContent('10%');

    const query = aggregateRequests(api).find((r) => groupOf(r) === '')?.query;
    expect(query?.get('bucket')).toBe('1h');
    expect(Date.now() - Date.parse(query?.get('from') ?? '')).toBeGreaterThanOrEqual(24 * 3600_000);

    // With traffic, the charts come before the connection details.
    const connect = await screen.findByRole('region', { name: 'Connect your app' });
    expect(traffic.compareDocumentPosition(connect) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
  });

  it('switches the range, keeping it in the URL', async () => {
    const api = stubOverview();
    const { user, router } = renderApp('/');
    await screen.findByRole('table', { name: 'Cost over time' });

    await user.click(screen.getByRole('radio', { name: '7d' }));
    await expect
      .poll(() => aggregateRequests(api).some((r) => r.query.get('bucket') === '6h' && groupOf(r) === ''))
      .toBe(true);
    const query = aggregateRequests(api).find((r) => r.query.get('bucket') === '6h')?.query;
    expect(Date.now() - Date.parse(query?.get('from') ?? '')).toBeGreaterThanOrEqual(7 * 24 * 3600_000);
    expect(router.state.location.search).toBe('?range=7d');
  });

  it('groups by provider and measures requests', async () => {
    const api = stubOverview();
    const { user } = renderApp('/?range=30d');
    await screen.findByRole('table', { name: 'Cost by model over time' });
    expect(aggregateRequests(api).every((r) => r.query.get('bucket') === '24h')).toBe(true);

    await user.click(screen.getByRole('radio', { name: 'Provider' }));
    await user.click(screen.getByRole('radio', { name: 'Requests' }));
    const chart = await screen.findByRole('table', { name: 'Requests by provider over time' });
    expect(within(chart).getAllByRole('row').map((r) => r.textContent)).toEqual([
      'openai: 10',
      'openai: 0',
      'openai: 5',
    ]);
    expect(aggregateRequests(api).some((r) => groupOf(r) === 'provider')).toBe(true);
  });

  it('leads with the connection details while there is no traffic', async () => {
    stubOverview({});
    renderApp('/');
    const traffic = await screen.findByRole('region', { name: 'Traffic' });
    expect(await within(traffic).findByText(/No requests in the last 24 hours/)).toBeInTheDocument();
    const connect = await screen.findByRole('region', { name: 'Connect your app' });
    expect(connect.compareDocumentPosition(traffic) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();

    const savings = screen.getByRole('region', { name: 'What you would save' });
    expect(savings).toHaveTextContent('lights up once a distilled student model is behind an alias');
    expect(within(savings).getByRole('link', { name: 'Models & Aliases' })).toHaveAttribute('href', '/models');
  });

  it('refreshes the charts a few seconds after new traces arrive', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
    try {
      const api = stubOverview();
      const { events } = renderApp('/');
      await screen.findByRole('table', { name: 'Cost over time' });
      const before = aggregateRequests(api).length;

      act(() => {
        events.latest().emit('trace', { id: 'a' });
        events.latest().emit('trace', { id: 'b' });
      });
      expect(aggregateRequests(api)).toHaveLength(before);
      act(() => vi.advanceTimersByTime(LIVE_REFRESH_MS));
      // One refetch of each mounted aggregate for the whole burst.
      await expect.poll(() => aggregateRequests(api).length).toBe(before + 2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('warns when traces were dropped', async () => {
    stubApi({
      '/api/info': () => jsonResponse(200, sampleInfo),
      'GET /api/stats': () => jsonResponse(200, { traces: { ...healthyTraceStats, dropped: 1 } }),
    });
    renderApp('/');
    expect(await screen.findByRole('alert')).toHaveTextContent('1 trace was dropped');
  });
});
