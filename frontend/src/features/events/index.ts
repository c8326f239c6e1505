export { ConnectionIndicator } from './ConnectionIndicator';
export { EventStreamProvider, useJobEvents, useServerStats, useTraceEvents } from './EventStreamProvider';
export type { ConnectEvents } from './EventStreamProvider';
export { STATS_HISTORY } from './eventStream';
export type { EventSourceLike } from './eventStream';
