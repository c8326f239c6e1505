import { describe, expect, it } from 'vitest';
import type { Job } from '../../api/types.gen';
import { describeProgress, formatBytes, formatParams, progressPercent, repoShapeError } from './format';

const job = (overrides: Partial<Job> = {}): Job => ({
  id: 'job_1',
  kind: 'model.download',
  state: 'running',
  repo: 'Qwen/Qwen3-0.6B',
  progress: {
    file: 'model.safetensors',
    fileIndex: 2,
    fileCount: 3,
    fileDone: 0,
    fileTotal: 0,
    done: 0,
    total: 0,
    bytesPerSec: 0,
  },
  createdAt: '2026-01-02T10:00:00Z',
  updatedAt: '2026-01-02T10:00:00Z',
  ...overrides,
});

describe('formatting', () => {
  it('writes sizes in decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_500_000)).toBe('1.5 MB');
    expect(formatBytes(1_503_238_553)).toBe('1.5 GB');
    expect(formatBytes(250_000_000_000)).toBe('250 GB');
  });

  it('writes parameter counts as model cards do', () => {
    expect(formatParams(0)).toBe('');
    expect(formatParams(596_049_920)).toBe('596M');
    expect(formatParams(8_030_261_248)).toBe('8.0B');
  });

  it('describes download progress', () => {
    const running = job({
      progress: { ...job().progress, done: 1_200_000_000, total: 3_400_000_000, bytesPerSec: 25_000_000 },
    });
    expect(describeProgress(running)).toBe('1.2 GB of 3.4 GB · 25.0 MB/s · model.safetensors (3 of 3)');
    expect(progressPercent(running)).toBeCloseTo(35.29, 1);
    expect(describeProgress(job())).toBe('Starting…');
    expect(progressPercent(job())).toBeUndefined();
    expect(describeProgress({ ...running, state: 'interrupted' })).toBe('1.2 GB of 3.4 GB');
    expect(describeProgress(job({ kind: 'runtime.install', phase: 'extract' }))).toBe(
      'Unpacking the downloaded files…',
    );
  });

  it('checks the shape of a repository id', () => {
    expect(repoShapeError('Qwen/Qwen3-0.6B')).toBeUndefined();
    expect(repoShapeError('  ')).toMatch(/Enter a repository id/);
    expect(repoShapeError('qwen3')).toMatch(/owner\/name/);
    expect(repoShapeError('a/b/c')).toMatch(/owner\/name/);
  });
});
