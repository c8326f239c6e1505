import type { ServerStats } from '../../api/types.gen';
import { STATS_HISTORY } from '../events';

export interface MemoryPoint {
  /** Local wall-clock time of the sample, HH:MM:SS. */
  time: string;
  rssMB: number;
}

const BYTES_PER_MB = 1024 * 1024;

/** Bytes to megabytes, rounded to one decimal for display. */
export function bytesToMB(bytes: number): number {
  return Math.round((bytes / BYTES_PER_MB) * 10) / 10;
}

const pad = (n: number) => String(n).padStart(2, '0');

function clockTime(iso: string): string {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The memory chart's data: the last `limit` samples, oldest first, in MB. */
export function prepareMemorySeries(samples: readonly ServerStats[], limit = STATS_HISTORY): MemoryPoint[] {
  return samples.slice(-limit).map((s) => ({ time: clockTime(s.time), rssMB: bytesToMB(s.rssBytes) }));
}

/** Compact uptime such as "42s", "3m 05s" or "2h 07m". */
export function formatUptime(totalSeconds: number): string {
  const s = Math.floor(totalSeconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours > 0) return `${hours}h ${pad(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${pad(s % 60)}s`;
  return `${s}s`;
}
