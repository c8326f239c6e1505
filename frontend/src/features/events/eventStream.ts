import type { EventType, Job, ServerStats, TraceSummary } from '../../api/types.gen';

export type ConnectionStatus = 'connecting' | 'open' | 'closed';

/** The part of the browser EventSource this module uses; tests pass a fake. */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
  close(): void;
}

interface LiveSnapshot {
  status: ConnectionStatus;
  /** Most recent `server.stats` samples, oldest first. */
  stats: readonly ServerStats[];
}

export type TraceListener = (trace: TraceSummary) => void;
export type JobListener = (job: Job) => void;

export interface EventStream {
  subscribe(listener: () => void): () => void;
  getSnapshot(): LiveSnapshot;
  /** Calls `listener` with each stored trace (the "trace" event); keeps the stream open meanwhile. */
  onTrace(listener: TraceListener): () => void;
  /** Calls `listener` with each job change (the "job" event); keeps the stream open meanwhile. */
  onJob(listener: JobListener): () => void;
}

/** About two minutes of samples at the server's ~2 s cadence. */
export const STATS_HISTORY = 60;

const CLOSED = 2; // EventSource.CLOSED; the constant is absent where EventSource is faked.

/**
 * A push-only store over one EventSource, shaped for useSyncExternalStore.
 * It connects on the first subscriber and disconnects after the last, so the
 * stream is only open while some mounted component shows live data.
 */
export function createEventStream(connect: () => EventSourceLike, onReset: () => void): EventStream {
  let snapshot: LiveSnapshot = { status: 'connecting', stats: [] };
  let source: EventSourceLike | null = null;
  const listeners = new Set<() => void>();
  const traceListeners = new Set<TraceListener>();
  const jobListeners = new Set<JobListener>();

  function update(next: Partial<LiveSnapshot>) {
    snapshot = { ...snapshot, ...next };
    listeners.forEach((listener) => listener());
  }

  function open() {
    const es = connect();
    const on = (type: EventType, handler: (event: MessageEvent<string>) => void) =>
      es.addEventListener(type, handler);

    es.addEventListener('open', () => update({ status: 'open' }));
    // Some webviews (WebKitGTK's custom scheme in the desktop window) deliver events without an
    // 'open' event: the server's hello is proof enough that the stream is live.
    on('hello', () => update({ status: 'open' }));
    // EventSource retries by itself unless the server refused the stream outright.
    es.addEventListener('error', () => update({ status: es.readyState === CLOSED ? 'closed' : 'connecting' }));
    on('server.stats', (event) => {
      const sample = JSON.parse(event.data) as ServerStats;
      update({ stats: [...snapshot.stats, sample].slice(-STATS_HISTORY) });
    });
    on('reset', onReset);
    on('trace', (event) => {
      const trace = JSON.parse(event.data) as TraceSummary;
      traceListeners.forEach((listener) => listener(trace));
    });
    on('job', (event) => {
      const job = JSON.parse(event.data) as Job;
      jobListeners.forEach((listener) => listener(job));
    });
    source = es;
  }

  /** Adds a listener to `set` and holds the stream open until it is removed. */
  function listen<L>(set: Set<L>, listener: L) {
    set.add(listener);
    // These events only arrive while the stream is open; subscribing holds it open.
    const release = stream.subscribe(() => undefined);
    return () => {
      set.delete(listener);
      release();
    };
  }

  const stream: EventStream = {
    subscribe(listener) {
      listeners.add(listener);
      if (!source) open();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && source) {
          source.close();
          source = null;
          snapshot = { ...snapshot, status: 'connecting' };
        }
      };
    },
    getSnapshot: () => snapshot,
    onTrace: (listener) => listen(traceListeners, listener),
    onJob: (listener) => listen(jobListeners, listener),
  };
  return stream;
}
