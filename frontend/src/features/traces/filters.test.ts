import { describe, expect, it } from 'vitest';
import { sampleTrace } from '../../test/fakeApi';
import { countActiveFilters, matchesFilters, noFilters, parseFilters, toTraceQuery, writeFilters } from './filters';

const NOW = Date.parse('2025-01-02T12:00:00Z');

describe('trace filters in the URL', () => {
  it('round-trips every filter and leaves other parameters alone', () => {
    const params = new URLSearchParams(
      'trace=tr_1&range=7d&model=a&model=b&provider=openai&alias=smart&status=error&minCost=0.5&maxTokens=900&meta=team%3Dsearch&q=hello',
    );
    const filters = parseFilters(params);
    expect(filters).toEqual({
      range: '7d',
      model: ['a', 'b'],
      provider: ['openai'],
      alias: ['smart'],
      status: 'error',
      minCost: 0.5,
      maxTokens: 900,
      meta: ['team=search'],
      q: 'hello',
    });
    expect(countActiveFilters(filters)).toBe(10);
    const written = writeFilters(new URLSearchParams('trace=tr_1'), filters);
    expect(parseFilters(written)).toEqual(filters);
    expect(written.get('trace')).toBe('tr_1');
  });

  it('ignores values it cannot use and writes nothing for the defaults', () => {
    const filters = parseFilters(new URLSearchParams('range=2y&status=maybe&minCost=lots&maxLatency=&meta=novalue&q=%20'));
    expect(filters).toEqual(noFilters);
    expect(countActiveFilters(filters)).toBe(0);
    expect(writeFilters(new URLSearchParams('trace=x'), filters).toString()).toBe('trace=x');
  });

  it('turns the range into a from time only for the API', () => {
    expect(toTraceQuery({ ...noFilters, range: '1h' }, NOW).from).toBe('2025-01-02T11:00:00.000Z');
    expect(toTraceQuery(noFilters, NOW).from).toBeUndefined();
  });
});

describe('matchesFilters', () => {
  const trace = sampleTrace({ startedAt: '2025-01-02T11:59:00Z', provider: 'openai', model: 'gpt-4o', alias: 'smart' });

  it('matches on what a summary carries', () => {
    expect(matchesFilters(trace, noFilters, NOW)).toBe('yes');
    expect(matchesFilters(trace, { ...noFilters, model: ['gpt-4o'], provider: ['openai'], alias: ['smart'] }, NOW)).toBe(
      'yes',
    );
    expect(matchesFilters(trace, { ...noFilters, model: ['other'] }, NOW)).toBe('no');
    expect(matchesFilters(trace, { ...noFilters, status: 'error' }, NOW)).toBe('no');
    expect(matchesFilters({ ...trace, status: 429 }, { ...noFilters, status: 'error' }, NOW)).toBe('yes');
    expect(matchesFilters(trace, { ...noFilters, minLatency: 1000 }, NOW)).toBe('no');
    expect(matchesFilters(trace, { ...noFilters, maxTokens: 100 }, NOW)).toBe('no');
    expect(matchesFilters(trace, { ...noFilters, minCost: 0.01 }, NOW)).toBe('no');
    expect(matchesFilters({ ...trace, startedAt: '2025-01-02T10:00:00Z' }, { ...noFilters, range: '1h' }, NOW)).toBe(
      'no',
    );
  });

  it('cannot tell for metadata or text filters', () => {
    expect(matchesFilters(trace, { ...noFilters, q: 'paris' }, NOW)).toBe('unknown');
    expect(matchesFilters(trace, { ...noFilters, meta: ['team=a'] }, NOW)).toBe('unknown');
    expect(matchesFilters(trace, { ...noFilters, q: 'paris', model: ['x'] }, NOW)).toBe('no');
  });
});
