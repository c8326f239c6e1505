import { render } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { ReactNode } from 'react';
import { createMemoryRouter, RouterProvider } from 'react-router-dom';
import { AppProviders } from '../app/AppProviders';
import { createQueryClient } from '../app/queryClient';
import { routes } from '../app/routes';
import { fakeEvents } from './fakeEventSource';

/** Renders `ui` inside the app's providers, with a fake event stream. */
export function renderWithProviders(ui: ReactNode) {
  const events = fakeEvents();
  const queryClient = createQueryClient();
  const user = userEvent.setup();
  const view = render(
    <AppProviders queryClient={queryClient} connectEvents={events.connect} mantineEnv="test">
      {ui}
    </AppProviders>,
  );
  return { ...view, user, events, queryClient };
}

/** The whole app at `path`, as main.tsx mounts it but with an in-memory router. */
export function renderApp(path = '/') {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  return { ...renderWithProviders(<RouterProvider router={router} />), router };
}
