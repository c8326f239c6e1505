import { describe, expect, it, vi } from 'vitest';
import type { ServerStats } from '../../api/types.gen';
import { fakeEvents } from '../../test/fakeEventSource';
import { createEventStream, STATS_HISTORY } from './eventStream';

function stats(goroutines: number): ServerStats {
  return {
    time: '2025-01-02T10:00:00Z',
    uptimeSeconds: 1,
    rssBytes: 1,
    heapBytes: 1,
    goroutines,
    eventClients: 1,
    eventsEvicted: 0,
  };
}

describe('createEventStream', () => {
  it('connects on the first subscriber and closes after the last', () => {
    const events = fakeEvents();
    const stream = createEventStream(() => events.connect('/api/events'), vi.fn());
    expect(events.sources).toHaveLength(0);

    const unsubscribeA = stream.subscribe(vi.fn());
    const unsubscribeB = stream.subscribe(vi.fn());
    expect(events.sources).toHaveLength(1);

    unsubscribeA();
    expect(events.latest().readyState).not.toBe(2);
    unsubscribeB();
    expect(events.latest().readyState).toBe(2);
  });

  it('tracks the connection status', () => {
    const events = fakeEvents();
    const stream = createEventStream(() => events.connect('/api/events'), vi.fn());
    stream.subscribe(vi.fn());
    expect(stream.getSnapshot().status).toBe('connecting');

    events.latest().open();
    expect(stream.getSnapshot().status).toBe('open');
    events.latest().fail({ permanently: false });
    expect(stream.getSnapshot().status).toBe('connecting');
    events.latest().fail({ permanently: true });
    expect(stream.getSnapshot().status).toBe('closed');
  });

  it('counts the hello event as live when the webview never fires open', () => {
    const events = fakeEvents();
    const stream = createEventStream(() => events.connect('/api/events'), vi.fn());
    stream.subscribe(vi.fn());
    events.latest().emit('hello', { version: 'v', startedAt: '2026-01-01T00:00:00Z' });
    expect(stream.getSnapshot().status).toBe('open');
  });

  it(`keeps the last ${STATS_HISTORY} server.stats samples and notifies subscribers`, () => {
    const events = fakeEvents();
    const listener = vi.fn();
    const stream = createEventStream(() => events.connect('/api/events'), vi.fn());
    stream.subscribe(listener);

    for (let i = 0; i < STATS_HISTORY + 5; i++) events.latest().emit('server.stats', stats(i));

    const kept = stream.getSnapshot().stats;
    expect(kept).toHaveLength(STATS_HISTORY);
    expect(kept[0]?.goroutines).toBe(5);
    expect(kept.at(-1)?.goroutines).toBe(STATS_HISTORY + 4);
    expect(listener).toHaveBeenCalledTimes(STATS_HISTORY + 5);
  });

  it('calls onReset when the server says events were missed', () => {
    const events = fakeEvents();
    const onReset = vi.fn();
    const stream = createEventStream(() => events.connect('/api/events'), onReset);
    stream.subscribe(vi.fn());

    events.latest().emit('reset', {});
    expect(onReset).toHaveBeenCalledOnce();
  });

  it('hands trace events to trace listeners and keeps the stream open for them', () => {
    const events = fakeEvents();
    const stream = createEventStream(() => events.connect('/api/events'), vi.fn());
    const listener = vi.fn();
    const stop = stream.onTrace(listener);
    expect(events.sources).toHaveLength(1);

    events.latest().emit('trace', { id: 't1', preview: 'hi' });
    expect(listener).toHaveBeenCalledWith({ id: 't1', preview: 'hi' });

    stop();
    expect(events.latest().readyState).toBe(2);
    events.latest().emit('trace', { id: 't2' });
    expect(listener).toHaveBeenCalledOnce();
  });

  it('hands job events to job listeners and keeps the stream open for them', () => {
    const events = fakeEvents();
    const stream = createEventStream(() => events.connect('/api/events'), vi.fn());
    const listener = vi.fn();
    const stop = stream.onJob(listener);
    expect(events.sources).toHaveLength(1);

    events.latest().emit('job', { id: 'job_1', state: 'running' });
    expect(listener).toHaveBeenCalledWith({ id: 'job_1', state: 'running' });

    stop();
    expect(events.latest().readyState).toBe(2);
  });
});
