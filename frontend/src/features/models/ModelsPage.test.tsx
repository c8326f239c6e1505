import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { AliasChange } from '../../api/types.gen';
import {
  badRequest,
  jsonResponse,
  sampleAliases,
  sampleInfo,
  sampleProviders,
  stubApi,
  type FakeRoute,
} from '../../test/fakeApi';
import { renderApp } from '../../test/renderApp';

function stubModels(routes: Record<string, FakeRoute> = {}) {
  return stubApi({
    '/api/info': () => jsonResponse(200, sampleInfo),
    'GET /api/providers': () => jsonResponse(200, sampleProviders),
    'GET /api/aliases': () => jsonResponse(200, sampleAliases),
    ...routes,
  });
}

const change = (version: number, at: string): AliasChange => ({ version, name: 'smart', at, by: 'ui', action: 'set' });

const table = () => screen.findByRole('table', { name: 'Aliases' });
const rowOf = async (name: string) => within(await table()).getByRole('row', { name });

describe('Models & Aliases screen', () => {
  it('lists aliases with fallback chains and weighted splits', async () => {
    stubModels();
    renderApp('/models');

    const canary = await rowOf('canary');
    expect(canary).toHaveTextContent('Weighted');
    expect(canary).toHaveTextContent('openai/gpt-4o 90% → lab/qwen3-8b 10%');
    const smart = await rowOf('smart');
    expect(smart).toHaveTextContent('Fallback');
    expect(smart).toHaveTextContent('openai/gpt-4o → lab/qwen3-8b');
    expect(screen.getByRole('heading', { level: 1, name: 'Models & Aliases' })).toBeInTheDocument();
  });

  it('explains aliases when there are none', async () => {
    stubModels({ 'GET /api/aliases': () => jsonResponse(200, []) });
    renderApp('/models');
    const empty = await screen.findByRole('region', { name: 'Call an alias, swap the model behind it' });
    expect(empty).toHaveTextContent('model="smart"');
    expect(within(empty).getByRole('button', { name: 'New alias' })).toBeInTheDocument();
  });

  it('creates a weighted alias from suggested provider models', async () => {
    const api = stubModels({
      'GET /api/aliases': () => jsonResponse(200, []),
      'PUT /api/aliases/canary': () => jsonResponse(200, change(1, '2025-01-02T10:00:00Z')),
    });
    const { user } = renderApp('/models');

    await user.click(await screen.findByRole('button', { name: 'New alias' }));
    const dialog = await screen.findByRole('dialog', { name: 'New alias' });
    await user.type(await within(dialog).findByLabelText('Name'), 'canary');
    await user.click(within(dialog).getByRole('radio', { name: 'Weighted' }));

    await user.click(within(dialog).getByRole('textbox', { name: 'Target 1 model' }));
    await user.click(await within(dialog).findByRole('option', { name: 'openai/gpt-4o' }));
    await user.clear(within(dialog).getByRole('textbox', { name: 'Target 1 weight' }));
    await user.type(within(dialog).getByRole('textbox', { name: 'Target 1 weight' }), '90');

    await user.click(within(dialog).getByRole('button', { name: 'Add target' }));
    await user.type(within(dialog).getByRole('textbox', { name: 'Target 2 model' }), 'lab/qwen3-8b');
    await user.clear(within(dialog).getByRole('textbox', { name: 'Target 2 weight' }));
    await user.type(within(dialog).getByRole('textbox', { name: 'Target 2 weight' }), '10');
    expect(dialog).toHaveTextContent('90% of requests');
    await user.click(within(dialog).getByRole('button', { name: 'Create alias' }));

    await expect.poll(() => screen.queryByRole('dialog')).toBeNull();
    expect(api.sent('PUT', '/api/aliases/canary').map((r) => r.body)).toEqual([
      {
        strategy: 'weighted',
        targets: [
          { model: 'openai/gpt-4o', weight: 90 },
          { model: 'lab/qwen3-8b', weight: 10 },
        ],
      },
    ]);
  });

  it('creates a fallback alias and shows the server validation error inline', async () => {
    const api = stubModels({
      'PUT /api/aliases/smart': ({ body }) =>
        JSON.stringify(body).includes('"model":""')
          ? badRequest('alias "smart": target 2 has no model', 'invalid_alias')
          : jsonResponse(200, change(3, '2025-01-02T10:00:00Z')),
    });
    const { user } = renderApp('/models');

    await user.click(await screen.findByRole('button', { name: 'New alias' }));
    const dialog = await screen.findByRole('dialog', { name: 'New alias' });
    await user.type(await within(dialog).findByLabelText('Name'), 'smart');
    await user.type(within(dialog).getByRole('textbox', { name: 'Target 1 model' }), 'openai/gpt-4o');
    await user.click(within(dialog).getByRole('button', { name: 'Add target' }));
    expect(within(dialog).queryByRole('textbox', { name: 'Target 1 weight' })).not.toBeInTheDocument();
    await user.click(within(dialog).getByRole('button', { name: 'Create alias' }));

    expect(await within(dialog).findByRole('alert')).toHaveTextContent('target 2 has no model');
    await user.click(within(dialog).getByRole('button', { name: 'Remove target 2' }));
    await user.click(within(dialog).getByRole('button', { name: 'Create alias' }));

    await expect.poll(() => screen.queryByRole('dialog')).toBeNull();
    expect(api.sent('PUT', '/api/aliases/smart').map((r) => r.body)).toEqual([
      { strategy: 'fallback', targets: [{ model: 'openai/gpt-4o' }, { model: '' }] },
      { strategy: 'fallback', targets: [{ model: 'openai/gpt-4o' }] },
    ]);
  });

  it('edits an alias with its name fixed', async () => {
    stubModels();
    const { user } = renderApp('/models');
    await user.click(within(await rowOf('canary')).getByRole('button', { name: 'Edit' }));
    const dialog = await screen.findByRole('dialog', { name: 'Edit alias canary' });
    expect(await within(dialog).findByLabelText('Name')).toBeDisabled();
    expect(within(dialog).getByRole('textbox', { name: 'Target 2 model' })).toHaveValue('lab/qwen3-8b');
    expect(within(dialog).getByRole('textbox', { name: 'Target 2 weight' })).toHaveValue('10');
  });

  it('lists the history and restores a version', async () => {
    const hourAgo = new Date(Date.now() - 3600_000).toISOString();
    const history: AliasChange[] = [
      { ...change(2, new Date().toISOString()), alias: sampleAliases[1] },
      {
        ...change(1, hourAgo),
        by: 'config',
        alias: { name: 'smart', strategy: 'fallback', targets: [{ model: 'openai/gpt-4o-mini' }] },
      },
    ];
    const api = stubModels({
      'GET /api/aliases/smart/history': () => jsonResponse(200, history),
      'POST /api/aliases/smart/rollback': () =>
        jsonResponse(200, { ...change(3, new Date().toISOString()), action: 'rollback', from: 1 }),
    });
    const { user } = renderApp('/models');

    await user.click(within(await rowOf('smart')).getByRole('button', { name: 'History' }));
    const drawer = await screen.findByRole('dialog', { name: 'History of smart' });
    const v2 = await within(drawer).findByRole('listitem', { name: 'Version 2' });
    expect(v2).toHaveTextContent('Current');
    expect(v2).toHaveTextContent('openai/gpt-4o → lab/qwen3-8b');
    expect(within(v2).queryByRole('button', { name: /Restore/ })).not.toBeInTheDocument();
    const v1 = within(drawer).getByRole('listitem', { name: 'Version 1' });
    expect(v1).toHaveTextContent('1 hour ago by config');
    expect(v1).toHaveTextContent('openai/gpt-4o-mini');
    expect(within(v1).getByText('1 hour ago')).toHaveAttribute('title', new Date(hourAgo).toLocaleString());

    const historyFetches = api.sent('GET', '/api/aliases/smart/history').length;
    await user.click(within(v1).getByRole('button', { name: 'Restore version 1' }));
    await expect
      .poll(() => api.sent('POST', '/api/aliases/smart/rollback').map((r) => r.body))
      .toEqual([{ version: 1 }]);
    // The list and the history are refetched.
    await expect.poll(() => api.sent('GET', '/api/aliases/smart/history').length).toBeGreaterThan(historyFetches);
  });

  it('deletes an alias after confirmation', async () => {
    const api = stubModels({
      'DELETE /api/aliases/canary': () => jsonResponse(200, { ...change(2, '2025-01-02T10:00:00Z'), action: 'delete' }),
    });
    const { user } = renderApp('/models');
    await user.click(within(await rowOf('canary')).getByRole('button', { name: 'Delete' }));
    const dialog = await screen.findByRole('dialog', { name: 'Delete alias canary?' });
    await user.click(within(dialog).getByRole('button', { name: 'Delete' }));
    await expect.poll(() => api.sent('DELETE', '/api/aliases/canary')).toHaveLength(1);
  });
});
