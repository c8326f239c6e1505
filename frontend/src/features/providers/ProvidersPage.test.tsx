import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Provider } from '../../api/types.gen';
import {
  badRequest,
  jsonResponse,
  sampleInfo,
  sampleLabProvider,
  sampleProviders,
  sampleProviderTypes,
  stubApi,
  type FakeRoute,
} from '../../test/fakeApi';
import { renderApp } from '../../test/renderApp';

const SECRET = 'sk-test-secret-123';

function stubProviders(providers: Provider[], extra: Record<string, FakeRoute> = {}) {
  return stubApi({
    '/api/info': () => jsonResponse(200, sampleInfo),
    'GET /api/providers': () => jsonResponse(200, providers),
    'GET /api/provider-types': () => jsonResponse(200, sampleProviderTypes),
    ...extra,
  });
}

const table = () => screen.findByRole('table', { name: 'Providers' });
const rowOf = async (name: string) => within(await table()).getByRole('row', { name });

async function pickType(user: ReturnType<typeof renderApp>['user'], type: string) {
  await user.click(await screen.findByRole('textbox', { name: 'Type' }));
  await user.click(await screen.findByRole('option', { name: type }));
}

describe('Providers screen', () => {
  it('lists providers with key status, models, stats and source, never a key', async () => {
    stubProviders(sampleProviders);
    renderApp('/providers');

    const openai = await rowOf('openai');
    expect(openai).toHaveTextContent('https://api.openai.com/v1');
    expect(openai).toHaveTextContent('Key set · from $OPENAI_API_KEY');
    expect(within(openai).getByText('gpt-4o')).toBeInTheDocument();
    expect(within(openai).getByText('gpt-4o-mini')).toBeInTheDocument();
    expect(openai).toHaveTextContent('98.5%');
    expect(openai).toHaveTextContent('200 requests, 3 failed');
    expect(openai).toHaveTextContent('420 ms / 1.30 s');
    expect(openai).toHaveTextContent('Environment');
    // Only providers added in the app can be changed here.
    expect(within(openai).queryByRole('button', { name: 'Edit' })).not.toBeInTheDocument();
    expect(within(openai).getByRole('button', { name: 'Check connection' })).toBeInTheDocument();

    const lab = await rowOf('lab');
    expect(lab).toHaveTextContent('No key');
    expect(lab).toHaveTextContent('openai-compatible');
    expect(lab).toHaveTextContent('Added in the app');
    expect(within(lab).getAllByText('—')).toHaveLength(2);
    expect(lab).toHaveTextContent('No requests yet');
    expect(within(lab).getByRole('button', { name: 'Edit' })).toBeInTheDocument();
    expect(within(lab).getByRole('button', { name: 'Delete' })).toBeInTheDocument();
    expect(document.body.innerHTML).not.toMatch(/sk-/);
  });

  it('explains env vars and the config file when there are no providers', async () => {
    stubProviders([]);
    renderApp('/providers');
    const empty = await screen.findByRole('region', { name: 'No providers yet' });
    expect(empty).toHaveTextContent('OPENAI_API_KEY');
    expect(empty).toHaveTextContent('ANTHROPIC_API_KEY');
    expect(empty).toHaveTextContent('OPENAI_BASE_URL');
    expect(within(empty).getByRole('button', { name: 'Add provider' })).toBeInTheDocument();
  });

  it('adds a provider with its key, and never shows the key again', async () => {
    const added: Provider = {
      ...sampleLabProvider,
      name: 'gpu-box',
      baseURL: 'http://gpu:8000/v1',
      keySet: true,
      keyFrom: 'saved in the app',
    };
    let providers: Provider[] = [];
    const api = stubApi({
      '/api/info': () => jsonResponse(200, sampleInfo),
      'GET /api/providers': () => jsonResponse(200, providers),
      'GET /api/provider-types': () => jsonResponse(200, sampleProviderTypes),
      'POST /api/providers': () => {
        providers = [added];
        return jsonResponse(200, providers);
      },
    });
    const { user } = renderApp('/providers');

    await user.click(await screen.findByRole('button', { name: 'Add provider' }));
    const dialog = await screen.findByRole('dialog', { name: 'Add provider' });
    await pickType(user, 'openai-compatible');
    expect(within(dialog).getByLabelText('Name')).toHaveValue('openai-compatible');
    expect(dialog).toHaveTextContent('No API key needed');
    await user.clear(within(dialog).getByLabelText('Name'));
    await user.type(within(dialog).getByLabelText('Name'), 'gpu-box');
    await user.type(within(dialog).getByLabelText('Base URL'), 'http://gpu:8000/v1');
    await user.type(within(dialog).getByLabelText('API key'), SECRET);
    await user.type(within(dialog).getByRole('textbox', { name: 'Models' }), 'qwen3-8b{Enter}');
    await user.click(within(dialog).getByRole('button', { name: 'Save provider' }));

    expect(await rowOf('gpu-box')).toHaveTextContent('Key set · saved in the app');
    expect(api.sent('POST', '/api/providers').map((r) => r.body)).toEqual([
      {
        name: 'gpu-box',
        type: 'openai-compatible',
        baseURL: 'http://gpu:8000/v1',
        apiKey: SECRET,
        models: ['qwen3-8b'],
      },
    ]);
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(document.body.innerHTML).not.toContain(SECRET);
  });

  it('names the provider after its type and shows the server refusal', async () => {
    const api = stubProviders([], {
      'POST /api/providers': () => badRequest('openai: no API key (set OPENAI_API_KEY)', 'invalid_provider'),
    });
    const { user } = renderApp('/providers');

    await user.click(await screen.findByRole('button', { name: 'Add provider' }));
    const dialog = await screen.findByRole('dialog', { name: 'Add provider' });
    await pickType(user, 'openai');
    expect(within(dialog).getByLabelText('Base URL')).toHaveAttribute('placeholder', 'https://api.openai.com/v1');
    expect(dialog).toHaveTextContent('Needs an API key');
    await user.click(within(dialog).getByRole('button', { name: 'Save provider' }));

    expect(await within(dialog).findByRole('alert')).toHaveTextContent('openai: no API key (set OPENAI_API_KEY)');
    expect(api.sent('POST', '/api/providers')[0]?.body).toEqual({ name: 'openai', type: 'openai', models: [] });
    expect(screen.getByRole('dialog', { name: 'Add provider' })).toBeInTheDocument();
  });

  it('edits a provider without sending a key when the field is left empty', async () => {
    const api = stubProviders(sampleProviders, {
      'PUT /api/providers/lab': () => jsonResponse(200, sampleProviders),
    });
    const { user } = renderApp('/providers');

    await user.click(within(await rowOf('lab')).getByRole('button', { name: 'Edit' }));
    const dialog = await screen.findByRole('dialog', { name: 'Edit provider lab' });
    expect(await within(dialog).findByLabelText('Name')).toBeDisabled();
    const key = within(dialog).getByLabelText('API key');
    expect(key).toHaveValue('');
    expect(key).toHaveAttribute('placeholder', 'Leave empty to keep the current key');
    await user.type(within(dialog).getByRole('textbox', { name: 'Models' }), 'llama3{Enter}');
    await user.click(within(dialog).getByRole('button', { name: 'Save changes' }));

    await screen.findByRole('table', { name: 'Providers' });
    expect(api.sent('PUT', '/api/providers/lab').map((r) => r.body)).toEqual([
      { name: 'lab', type: 'openai-compatible', baseURL: 'http://10.0.0.5:8000/v1', models: ['qwen3-8b', 'llama3'] },
    ]);
  });

  it('deletes a provider after confirmation', async () => {
    let providers = sampleProviders;
    const api = stubApi({
      '/api/info': () => jsonResponse(200, sampleInfo),
      'GET /api/providers': () => jsonResponse(200, providers),
      'DELETE /api/providers/lab': () => {
        providers = providers.filter((p) => p.name !== 'lab');
        return jsonResponse(200, providers);
      },
    });
    const { user } = renderApp('/providers');

    await user.click(within(await rowOf('lab')).getByRole('button', { name: 'Delete' }));
    const dialog = await screen.findByRole('dialog', { name: 'Delete provider lab?' });
    expect(api.sent('DELETE', '/api/providers/lab')).toHaveLength(0);
    await user.click(within(dialog).getByRole('button', { name: 'Delete' }));

    await expect.poll(() => api.sent('DELETE', '/api/providers/lab')).toHaveLength(1);
    await expect.poll(() => screen.queryByText('lab', { exact: true })).toBeNull();
  });

  it('checks a connection and shows the latency or the failure', async () => {
    stubProviders(sampleProviders, {
      'POST /api/providers/openai/check': () =>
        jsonResponse(200, { ok: true, latencyMillis: 123.4, message: 'connected' }),
      'POST /api/providers/lab/check': () =>
        jsonResponse(200, { ok: false, latencyMillis: 2, message: 'cannot reach the provider: connection refused' }),
    });
    const { user } = renderApp('/providers');

    await user.click(within(await rowOf('openai')).getByRole('button', { name: 'Check connection' }));
    expect(await screen.findByRole('status', { name: 'Connection check for openai' })).toHaveTextContent(
      'Connected · 123 ms',
    );

    await user.click(within(await rowOf('lab')).getByRole('button', { name: 'Check connection' }));
    expect(await screen.findByRole('status', { name: 'Connection check for lab' })).toHaveTextContent(
      'cannot reach the provider: connection refused',
    );
  });
});
