import { afterEach, beforeEach } from 'vitest';

/**
 * jsdom lays nothing out: every element is 0×0, so a virtualized list would show no rows. This
 * gives every element the client size of a desktop viewport while the calling suite runs.
 */
export function useFakeLayout({ width = 1200, height = 800 } = {}) {
  const saved = {
    clientWidth: Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientWidth'),
    clientHeight: Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientHeight'),
  };
  beforeEach(() => {
    Object.defineProperty(HTMLElement.prototype, 'clientWidth', { configurable: true, get: () => width });
    Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => height });
  });
  afterEach(() => {
    for (const [name, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(HTMLElement.prototype, name, descriptor);
      else delete (HTMLElement.prototype as unknown as Record<string, unknown>)[name];
    }
  });
}

/** Scrolls `element` to `top` as a user would: jsdom keeps no scroll position, so it is set by hand. */
export function scrollTo(element: HTMLElement, top: number) {
  Object.defineProperty(element, 'scrollTop', { configurable: true, value: top });
  element.dispatchEvent(new Event('scroll'));
}
