import { act, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { renderWithProviders } from '../../test/renderApp';
import type { MemoryPoint } from './serverStats';
import { ServerCard } from './ServerCard';

// Recharts needs real layout, which jsdom lacks; the chart is render-only, so a stand-in shows what it gets.
vi.mock('./MemoryChart', () => ({
  MemoryChart: ({ points }: { points: MemoryPoint[] }) => (
    <ul aria-label="Memory chart">
      {points.map((p) => (
        <li key={p.time}>{p.rssMB}</li>
      ))}
    </ul>
  ),
}));

describe('ServerCard', () => {
  it('waits for the first sample, then shows the live numbers', async () => {
    const { events } = renderWithProviders(<ServerCard />);
    expect(screen.getByRole('status')).toHaveTextContent('Waiting for the first live sample');

    act(() =>
      events.latest().emit('server.stats', {
        time: '2025-01-02T10:00:00Z',
        uptimeSeconds: 185,
        rssBytes: 52_428_800,
        heapBytes: 10_485_760,
        goroutines: 17,
        eventClients: 2,
        eventsEvicted: 0,
      }),
    );

    expect(screen.getByText('Memory (RSS)').nextElementSibling).toHaveTextContent('50 MB');
    expect(screen.getByText('Goroutines').nextElementSibling).toHaveTextContent('17');
    expect(screen.getByText('Event clients').nextElementSibling).toHaveTextContent('2');
    expect(await screen.findByRole('list', { name: 'Memory chart' })).toHaveTextContent('50');
    expect(screen.getByText(/Up 3m 05s/)).toBeInTheDocument();
  });
});
