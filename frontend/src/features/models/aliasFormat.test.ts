import { describe, expect, it } from 'vitest';
import { formatRelativeTime, formatTargets, sharePercents } from './aliasFormat';

describe('alias formatting', () => {
  it('chains fallback targets', () => {
    expect(formatTargets({ strategy: 'fallback', targets: [{ model: 'a' }, { model: 'b' }, { model: 'c' }] })).toBe(
      'a → b → c',
    );
  });

  it('shows weighted targets as shares of the total', () => {
    const targets = [
      { model: 'openai/gpt-4o', weight: 9 },
      { model: 'local/student', weight: 1 },
    ];
    expect(formatTargets({ strategy: 'weighted', targets })).toBe('openai/gpt-4o 90% → local/student 10%');
    expect(sharePercents([{ weight: 1 }, { weight: 2 }, {}])).toEqual([33, 67, 0]);
    expect(sharePercents([{ weight: 0 }])).toEqual([0]);
  });

  it('says how long ago a change was made', () => {
    const now = Date.parse('2025-01-02T10:00:00Z');
    expect(formatRelativeTime('2025-01-02T09:59:50Z', now)).toBe('just now');
    expect(formatRelativeTime('2025-01-02T09:55:00Z', now)).toBe('5 minutes ago');
    expect(formatRelativeTime('2025-01-02T07:00:00Z', now)).toBe('3 hours ago');
    expect(formatRelativeTime('2025-01-01T10:00:00Z', now)).toBe('yesterday');
  });
});
