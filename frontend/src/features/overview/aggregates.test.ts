import { describe, expect, it } from 'vitest';
import type { TraceSeries } from '../../api/types.gen';
import { groupedChart, groupTotals, overallTotals, timePoints } from './aggregates';

const empty = {
  requests: 0,
  errors: 0,
  costUsd: 0,
  promptTokens: 0,
  completionTokens: 0,
  latencyP50Ms: 0,
  latencyP95Ms: 0,
  latencyP99Ms: 0,
};
const at = (hour: number) => `2025-01-02T${String(hour).padStart(2, '0')}:00:00Z`;
const series = (group: string, costs: number[]): TraceSeries => ({
  group,
  buckets: costs.map((costUsd, i) => ({ ...empty, start: at(i), costUsd, requests: costUsd > 0 ? 1 : 0 })),
});

describe('overview aggregates', () => {
  it('sums an ungrouped answer and leaves empty buckets without latency', () => {
    const answer = [series('', [0.5, 0, 0.25])];
    expect(overallTotals(answer)).toEqual({ requests: 2, errors: 0, costUsd: 0.75, tokens: 0 });
    expect(timePoints(answer, '24h').map((p) => [p.costUsd, p.p50, p.errorRate])).toEqual([
      [0.5, 0, 0],
      [0, null, null],
      [0.25, 0, 0],
    ]);
    expect(overallTotals([])).toEqual({ requests: 0, errors: 0, costUsd: 0, tokens: 0 });
  });

  it('keeps the largest groups and sums the rest as Other, with safe data keys', () => {
    const answer = [series('a.1', [1, 1]), series('b', [5, 0]), series('c', [0, 0.5]), series('', [0, 0.1])];
    const chart = groupedChart(answer, 'costUsd', '24h', '(no alias)', 2);
    expect(chart.series.map((s) => [s.name, s.label])).toEqual([
      ['g0', 'b'],
      ['g1', 'a.1'],
      ['other', 'Other'],
    ]);
    expect(chart.data.map(({ g0, g1, other }) => [g0, g1, other])).toEqual([
      [5, 1, 0],
      [0, 1, 0.6],
    ]);
  });

  it('ranks groups by cost', () => {
    const ranked = groupTotals([series('cheap', [0.1, 0.1]), series('dear', [2]), series('idle', [0])]);
    expect(ranked.map((g) => [g.group, g.requests])).toEqual([
      ['dear', 1],
      ['cheap', 2],
    ]);
  });
});
