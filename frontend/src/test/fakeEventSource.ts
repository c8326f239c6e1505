import type { EventType } from '../api/types.gen';
import type { EventSourceLike } from '../features/events';

/** Stands in for EventSource, which jsdom does not have; tests drive it by hand. */
class FakeEventSource implements EventSourceLike {
  readyState = 0;
  private readonly listeners = new Map<string, ((event: MessageEvent<string>) => void)[]>();

  constructor(readonly url: string) {}

  addEventListener(type: string, listener: (event: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close() {
    this.readyState = 2;
  }

  open() {
    this.readyState = 1;
    this.dispatch('open', new MessageEvent('open'));
  }

  fail({ permanently }: { permanently: boolean }) {
    this.readyState = permanently ? 2 : 0;
    this.dispatch('error', new MessageEvent('error'));
  }

  emit(type: EventType, data: unknown) {
    this.dispatch(type, new MessageEvent(type, { data: JSON.stringify(data) }));
  }

  private dispatch(type: string, event: MessageEvent<string>) {
    if (this.readyState === 2 && type !== 'error') return;
    this.listeners.get(type)?.forEach((listener) => listener(event));
  }
}

/** A `connect` function for EventStreamProvider that records every source it opens. */
export function fakeEvents() {
  const sources: FakeEventSource[] = [];
  return {
    sources,
    connect: (url: string) => {
      const source = new FakeEventSource(url);
      sources.push(source);
      return source;
    },
    latest(): FakeEventSource {
      const source = sources.at(-1);
      if (!source) throw new Error('no event stream was opened');
      return source;
    },
  };
}
