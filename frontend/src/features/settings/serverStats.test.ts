import { describe, expect, it } from 'vitest';
import type { ServerStats } from '../../api/types.gen';
import { bytesToMB, formatUptime, prepareMemorySeries } from './serverStats';

function sample(second: number, rssBytes: number): ServerStats {
  return {
    time: new Date(2025, 0, 2, 13, 4, second).toISOString(),
    uptimeSeconds: second,
    rssBytes,
    heapBytes: 0,
    goroutines: 10,
    eventClients: 1,
    eventsEvicted: 0,
  };
}

describe('prepareMemorySeries', () => {
  it('returns an empty series for no samples', () => {
    expect(prepareMemorySeries([])).toEqual([]);
  });

  it('converts RSS bytes to MB and formats the local time', () => {
    expect(prepareMemorySeries([sample(5, 52_428_800)])).toEqual([{ time: '13:04:05', rssMB: 50 }]);
  });

  it('keeps only the last N samples, oldest first', () => {
    const samples = Array.from({ length: 10 }, (_, i) => sample(i, (i + 1) * 1024 * 1024));
    const series = prepareMemorySeries(samples, 3);
    expect(series.map((p) => p.rssMB)).toEqual([8, 9, 10]);
    expect(series[0]?.time).toBe('13:04:07');
  });

  it('windows to 60 samples by default', () => {
    const samples = Array.from({ length: 75 }, (_, i) => sample(i % 60, 1024 * 1024));
    expect(prepareMemorySeries(samples)).toHaveLength(60);
  });
});

describe('bytesToMB', () => {
  it('rounds to one decimal', () => {
    expect(bytesToMB(1_572_864)).toBe(1.5);
    expect(bytesToMB(1_000_000)).toBe(1);
    expect(bytesToMB(0)).toBe(0);
  });
});

describe('formatUptime', () => {
  it.each([
    [42, '42s'],
    [185, '3m 05s'],
    [7620, '2h 07m'],
  ])('formats %i seconds as %s', (seconds, text) => {
    expect(formatUptime(seconds)).toBe(text);
  });
});
