import type { EnginePlanStatus, Job, JobState } from '../../api/types.gen';

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** Bytes in decimal units, as the Hugging Face Hub shows file sizes: "1.2 GB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes <= 0) return '0 B';
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export const formatRate = (bytesPerSec: number) => `${formatBytes(bytesPerSec)}/s`;

/** A parameter count as model cards write it: "0.6B", "8.0B", "135M"; "" when unknown. */
export function formatParams(params: number): string {
  if (params <= 0) return '';
  if (params >= 1e9) return `${(params / 1e9).toFixed(1)}B`;
  return `${Math.round(params / 1e6)}M`;
}

/** Percent done, or undefined while the total is unknown. */
export function progressPercent(job: Job): number | undefined {
  const { done, total } = job.progress;
  if (job.state === 'done') return 100;
  if (total <= 0) return undefined;
  return Math.min(100, Math.max(0, (done / total) * 100));
}

/** "1.2 GB of 3.4 GB · 25.0 MB/s · model.safetensors (3 of 3)". */
export function describeProgress(job: Job): string {
  const p = job.progress;
  if (job.phase === 'extract') return 'Unpacking the downloaded files…';
  if (p.total <= 0) return job.state === 'running' ? 'Starting…' : '';
  const parts = [`${formatBytes(p.done)} of ${formatBytes(p.total)}`];
  if (job.state === 'running' && p.bytesPerSec > 0) parts.push(formatRate(p.bytesPerSec));
  if (job.state === 'running' && p.file) parts.push(`${p.file} (${p.fileIndex + 1} of ${p.fileCount})`);
  return parts.join(' · ');
}

export const jobStateLabels: Record<JobState, { label: string; color: string }> = {
  running: { label: 'Running', color: 'blue' },
  done: { label: 'Done', color: 'teal' },
  failed: { label: 'Failed', color: 'red' },
  canceled: { label: 'Canceled', color: 'gray' },
  interrupted: { label: 'Interrupted', color: 'orange' },
};

export const planStatusLabels: Record<EnginePlanStatus, { label: string; color: string }> = {
  gpu: { label: 'GPU', color: 'teal' },
  cpu: { label: 'CPU', color: 'gray' },
  'no-gpu': { label: 'CPU (no GPU)', color: 'gray' },
  'needs-runtime': { label: 'GPU runtime needed', color: 'yellow' },
  unusable: { label: 'GPU unusable', color: 'orange' },
  error: { label: 'Misconfigured', color: 'red' },
};

/** The backend in words. */
export function backendLabel(backend: string): string {
  if (backend === 'xla:cuda') return 'GPU (XLA, CUDA)';
  if (backend === 'go') return 'CPU (pure Go)';
  return 'None';
}

/** The basic shape of a repository id (the server checks the Hub's full rules). */
export function repoShapeError(repo: string): string | undefined {
  const value = repo.trim();
  if (!value) return 'Enter a repository id, such as Qwen/Qwen3-0.6B.';
  const parts = value.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return 'A repository id is owner/name, such as Qwen/Qwen3-0.6B.';
  return undefined;
}
