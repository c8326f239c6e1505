import { act, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { jsonResponse, sampleInfo, stubApi, unauthorized } from '../test/fakeApi';
import { renderApp } from '../test/renderApp';

const screensByLink = [
  ['Overview', 'Overview'],
  ['Traces', 'Traces'],
  ['Clusters', 'Clusters'],
  ['Datasets', 'Datasets'],
  ['Distill', 'Distill'],
  ['Models & Aliases', 'Models & Aliases'],
  ['Local models', 'Local models'],
  ['Providers', 'Providers'],
  ['Settings', 'Settings'],
] as const;

const mainNav = () => screen.getByRole('navigation', { name: 'Main navigation' });

describe('app frame', () => {
  it('renders the header and all nine navigation links', async () => {
    stubApi({ '/api/info': () => jsonResponse(200, sampleInfo) });
    renderApp('/');

    expect(await screen.findByLabelText('Version')).toHaveTextContent(sampleInfo.version);
    expect(screen.getByText('OpenTracy')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Toggle color scheme' })).toBeInTheDocument();
    const links = within(mainNav()).getAllByRole('link');
    expect(links.map((link) => link.textContent)).toEqual(screensByLink.map(([name]) => name));
    expect(within(mainNav()).getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');
  });

  it('navigates between screens from the sidebar', async () => {
    stubApi({ '/api/info': () => jsonResponse(200, sampleInfo) });
    const { user, router } = renderApp('/');
    await screen.findByRole('navigation', { name: 'Main navigation' });

    for (const [name, heading] of [...screensByLink.slice(1), screensByLink[0]]) {
      const link = within(mainNav()).getByRole('link', { name });
      await user.click(link);
      expect(await screen.findByRole('heading', { level: 1, name: heading })).toBeInTheDocument();
      expect(link).toHaveAttribute('aria-current', 'page');
      const others = within(mainNav())
        .getAllByRole('link')
        .filter((other) => other !== link);
      others.forEach((other) => expect(other).not.toHaveAttribute('aria-current'));
    }
    expect(router.state.location.pathname).toBe('/');
  });

  it('shows the open-the-link page when the UI token is missing', async () => {
    stubApi({ '/api/info': () => jsonResponse(401, unauthorized) });
    const { events } = renderApp('/traces');

    expect(
      await screen.findByRole('heading', { level: 1, name: 'Open the link printed by opentracy serve' }),
    ).toBeInTheDocument();
    expect(screen.queryByRole('navigation', { name: 'Main navigation' })).not.toBeInTheDocument();
    // Without the token the event stream would only be refused too.
    expect(events.sources).toHaveLength(0);
  });

  it('shows the live connection state from the event stream', async () => {
    stubApi({ '/api/info': () => jsonResponse(200, sampleInfo) });
    const { events } = renderApp('/');

    expect(await screen.findByRole('status', { name: /Server connection/ })).toHaveTextContent('Connecting…');
    expect(events.latest().url).toBe('/api/events');
    act(() => events.latest().open());
    expect(screen.getByRole('status', { name: /Server connection/ })).toHaveTextContent('Live');
    act(() => events.latest().fail({ permanently: true }));
    expect(screen.getByRole('status', { name: /Server connection/ })).toHaveTextContent('Disconnected');
  });

  it('refetches server data when the stream reports missed events', async () => {
    const fetchMock = stubApi({ '/api/info': () => jsonResponse(200, sampleInfo) });
    const { events } = renderApp('/');
    await screen.findByLabelText('Version');
    const before = fetchMock.mock.calls.length;

    await act(async () => events.latest().emit('reset', {}));
    expect(fetchMock.mock.calls.length).toBeGreaterThan(before);
  });

  it('shows an error alert when a request is refused', async () => {
    stubApi({
      '/api/info': () => jsonResponse(403, { error: { message: 'origin not allowed', type: 'permission_error' } }),
    });
    renderApp('/');
    expect(await screen.findByRole('alert')).toHaveTextContent('origin not allowed');
    expect(screen.getByRole('navigation', { name: 'Main navigation' })).toBeInTheDocument();
  });

  it('shows a not-found page for unknown paths', async () => {
    stubApi({ '/api/info': () => jsonResponse(200, sampleInfo) });
    renderApp('/nope');
    expect(await screen.findByRole('heading', { level: 1, name: 'Page not found' })).toBeInTheDocument();
  });
});
