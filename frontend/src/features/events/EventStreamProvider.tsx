import { useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { EVENTS_URL } from '../../api/client';
import {
  createEventStream,
  type EventSourceLike,
  type EventStream,
  type JobListener,
  type TraceListener,
} from './eventStream';

export type ConnectEvents = (url: string) => EventSourceLike;

const openEventSource: ConnectEvents = (url) => new EventSource(url);

const EventStreamContext = createContext<EventStream | null>(null);

interface EventStreamProviderProps {
  /** Injectable because jsdom has no EventSource. */
  connect?: ConnectEvents;
  children: ReactNode;
}

export function EventStreamProvider({ connect = openEventSource, children }: EventStreamProviderProps) {
  const queryClient = useQueryClient();
  const [stream] = useState(() =>
    // `reset` means the server dropped events we never saw, so cached data may be stale.
    createEventStream(() => connect(EVENTS_URL), () => void queryClient.invalidateQueries()),
  );
  return <EventStreamContext.Provider value={stream}>{children}</EventStreamContext.Provider>;
}

function useEventStream() {
  const stream = useContext(EventStreamContext);
  if (!stream) throw new Error('the event stream hooks must be used inside <EventStreamProvider>');
  return stream;
}

function useLiveSnapshot() {
  const stream = useEventStream();
  return useSyncExternalStore(stream.subscribe, stream.getSnapshot);
}

/** Calls `listener` (its latest version) with every trace the server stores while mounted. */
export function useTraceEvents(listener: TraceListener) {
  const stream = useEventStream();
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => stream.onTrace((trace) => latest.current(trace)), [stream]);
}

/** Calls `listener` (its latest version) with every job change while mounted. */
export function useJobEvents(listener: JobListener) {
  const stream = useEventStream();
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => stream.onJob((job) => latest.current(job)), [stream]);
}

export function useConnectionStatus() {
  return useLiveSnapshot().status;
}

export function useServerStats() {
  return useLiveSnapshot().stats;
}
