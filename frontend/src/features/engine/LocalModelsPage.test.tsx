import { act, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Engine, LocalModel, LocalModels } from '../../api/types.gen';
import {
  badRequest,
  jsonResponse,
  noLocalModels,
  sampleEngineGPU,
  sampleInfo,
  sampleJob,
  stubApi,
  type FakeRoute,
} from '../../test/fakeApi';
import { renderApp } from '../../test/renderApp';

function stubLocal(routes: Record<string, FakeRoute> = {}) {
  return stubApi({ '/api/info': () => jsonResponse(200, sampleInfo), ...routes });
}

const qwen: LocalModel = {
  name: 'Qwen--Qwen3-0.6B',
  repo: 'Qwen/Qwen3-0.6B',
  revision: 'main',
  commit: 'c'.repeat(40),
  family: 'qwen3',
  params: 596_049_920,
  sizeBytes: 1_503_238_553,
  complete: true,
  ready: true,
  downloading: false,
  loaded: true,
  downloadedAt: '2026-01-02T10:00:00Z',
};

const partial: LocalModel = {
  name: 'meta-llama--Llama-3.2-1B',
  repo: 'meta-llama/Llama-3.2-1B',
  family: 'llama',
  params: 1_235_814_400,
  sizeBytes: 400_000_000,
  complete: false,
  ready: false,
  problem: 'download not finished',
  downloading: false,
  loaded: false,
};

const twoModels: LocalModels = {
  ...noLocalModels,
  models: [qwen, partial],
  students: [
    { name: 'helper-v1', base: 'Qwen--Qwen3-0.6B', adapter: '/data/students/helper-v1', ready: true, loaded: false },
  ],
};

const engineCard = () => screen.findByRole('region', { name: 'Engine' });
const modelsTable = () => screen.findByRole('table', { name: 'Local models' });

describe('Local models screen', () => {
  it('explains that the engine runs on the CPU without a GPU, and why Install is off', async () => {
    stubLocal();
    renderApp('/local-models');

    const card = await engineCard();
    expect(within(card).getByLabelText('Engine status: CPU (no GPU)')).toBeInTheDocument();
    expect(card).toHaveTextContent('no NVIDIA GPU: training runs on the CPU backend, slowly');
    expect(card).toHaveTextContent('None found (NVIDIA driver not available');
    const install = within(card).getByRole('button', { name: 'Install GPU runtime' });
    expect(install).toBeDisabled();
    expect(install).toHaveAccessibleDescription(/No NVIDIA GPU was found/);

    const empty = await screen.findByRole('region', { name: 'No local models yet' });
    expect(empty).toHaveTextContent('local/owner--name');
    expect(screen.getByRole('heading', { level: 1, name: 'Local models' })).toBeInTheDocument();
  });

  it('says which setting is missing when there is a GPU but no wheel mirror', async () => {
    const blocked: Engine = {
      ...sampleEngineGPU,
      wheelMirror: false,
      installBlocked:
        'No wheel mirror is configured: set engine.wheel_mirror in the config file, then restart OpenTracy.',
    };
    stubLocal({ 'GET /api/engine': () => jsonResponse(200, blocked) });
    renderApp('/local-models');

    const card = await engineCard();
    expect(card).toHaveTextContent('NVIDIA H100 80GB HBM3');
    expect(card).toHaveTextContent('84.8 GB free of 85.9 GB');
    expect(within(card).getByLabelText('Engine status: GPU runtime needed')).toBeInTheDocument();
    const install = within(card).getByRole('button', { name: 'Install GPU runtime' });
    expect(install).toBeDisabled();
    expect(install).toHaveAccessibleDescription(/engine\.wheel_mirror/);
  });

  it('installs the GPU runtime with live progress, then offers to remove it', async () => {
    let engine: Engine = sampleEngineGPU;
    const running = sampleJob({
      id: 'job_rt',
      kind: 'runtime.install',
      version: 'cuda12-jax0.8.1-1',
      repo: undefined,
      model: undefined,
    });
    const api = stubLocal({
      'GET /api/engine': () => jsonResponse(200, engine),
      'POST /api/engine/runtime/install': () => jsonResponse(202, running),
    });
    const { user, events } = renderApp('/local-models');

    const card = await engineCard();
    await user.click(within(card).getByRole('button', { name: 'Install GPU runtime' }));
    expect(api.sent('POST', '/api/engine/runtime/install')).toHaveLength(1);
    await within(card).findByRole('progressbar', { name: 'GPU runtime install progress' });

    act(() =>
      events.latest().emit('job', {
        ...running,
        progress: {
          ...running.progress,
          file: 'nvidia-cublas-cu12 12.9.2.10',
          fileIndex: 2,
          fileCount: 8,
          done: 600_000_000,
          total: 1_500_000_000,
          bytesPerSec: 40_000_000,
        },
      }),
    );
    // Query caches notify their observers on the next tick.
    const bar = within(card).getByRole('progressbar', { name: 'GPU runtime install progress' });
    await expect.poll(() => bar.getAttribute('aria-valuenow')).toBe('40');
    expect(card).toHaveTextContent('600 MB of 1.5 GB · 40.0 MB/s · nvidia-cublas-cu12 12.9.2.10 (3 of 8)');

    engine = {
      ...sampleEngineGPU,
      plan: { backend: 'xla:cuda', status: 'gpu', message: 'GPU: NVIDIA H100 80GB HBM3 (80 GiB)', warnings: [] },
      runtime: {
        version: 'cuda12-jax0.8.1-1',
        path: '/data/gpu-runtime/cuda12-jax0.8.1-1',
        cudaMajor: 12,
        installedAt: '2026-01-02T10:05:00Z',
        wheels: [],
      },
      installBlocked: 'GPU runtime cuda12-jax0.8.1-1 is installed; remove it first to install it again.',
    };
    act(() => events.latest().emit('job', { ...running, state: 'done', phase: 'done' }));
    expect(await within(card).findByRole('button', { name: 'Remove GPU runtime' })).toBeInTheDocument();
    expect(within(card).getByLabelText('Engine status: GPU')).toBeInTheDocument();
    expect(within(card).queryByRole('progressbar')).not.toBeInTheDocument();
  });

  it('lists models with size, status and whether they are loaded, and deletes one after confirming', async () => {
    let list = twoModels;
    const api = stubLocal({
      'GET /api/local-models': () => jsonResponse(200, list),
      'DELETE /api/local-models/Qwen--Qwen3-0.6B': () => {
        list = { ...twoModels, models: [partial] };
        return jsonResponse(200, list);
      },
    });
    const { user } = renderApp('/local-models');

    const table = await modelsTable();
    const row = within(table).getByRole('row', { name: 'Qwen--Qwen3-0.6B' });
    expect(row).toHaveTextContent('Qwen/Qwen3-0.6B');
    expect(row).toHaveTextContent('local/Qwen--Qwen3-0.6B');
    expect(row).toHaveTextContent('qwen3 · 596M');
    expect(row).toHaveTextContent('1.5 GB');
    expect(row).toHaveTextContent('Ready');
    expect(row).toHaveTextContent('Loaded');
    const incomplete = within(table).getByRole('row', { name: 'meta-llama--Llama-3.2-1B' });
    expect(incomplete).toHaveTextContent('Incomplete');
    expect(incomplete).toHaveTextContent('download not finished');
    expect(
      within(screen.getByRole('table', { name: 'Students' })).getByRole('row', { name: 'helper-v1' }),
    ).toHaveTextContent('Qwen--Qwen3-0.6B');

    await user.click(within(row).getByRole('button', { name: 'Delete Qwen--Qwen3-0.6B' }));
    const dialog = await screen.findByRole('dialog', { name: 'Delete Qwen/Qwen3-0.6B?' });
    expect(dialog).toHaveTextContent('unloaded from memory first');
    await user.click(within(dialog).getByRole('button', { name: 'Delete' }));

    await expect.poll(() => screen.queryByRole('dialog')).toBeNull();
    expect(api.sent('DELETE', '/api/local-models/Qwen--Qwen3-0.6B')).toHaveLength(1);
    await expect
      .poll(() =>
        within(screen.getByRole('table', { name: 'Local models' })).queryByRole('row', { name: 'Qwen--Qwen3-0.6B' }),
      )
      .toBeNull();
  });

  it('resumes an incomplete model from its row', async () => {
    const api = stubLocal({
      'GET /api/local-models': () => jsonResponse(200, { ...noLocalModels, models: [partial] }),
      'POST /api/local-models/download': () =>
        jsonResponse(202, sampleJob({ repo: partial.repo, model: partial.name })),
    });
    const { user } = renderApp('/local-models');
    const row = within(await modelsTable()).getByRole('row', { name: partial.name });
    await user.click(within(row).getByRole('button', { name: 'Resume download of meta-llama/Llama-3.2-1B' }));
    await expect
      .poll(() => api.sent('POST', '/api/local-models/download').map((r) => r.body))
      .toEqual([{ repo: 'meta-llama/Llama-3.2-1B' }]);
  });

  it('checks the repository id, then downloads with live progress and can cancel', async () => {
    const started = sampleJob({ id: 'job_dl', repo: 'acme/Tiny', model: 'acme--Tiny', revision: 'v1' });
    let list = noLocalModels;
    const api = stubLocal({
      'GET /api/local-models': () => jsonResponse(200, list),
      'POST /api/local-models/download': ({ body }) => {
        if (JSON.stringify(body).includes('bad--name')) {
          return badRequest('"bad--name/x" is not a Hugging Face repository id (owner/name)', 'invalid_repo');
        }
        list = { ...noLocalModels, downloads: [started] };
        return jsonResponse(202, started);
      },
      'DELETE /api/local-models/download/job_dl': () => {
        const canceled = {
          ...started,
          state: 'canceled' as const,
          error: 'canceled: what was downloaded is kept, start it again to resume',
        };
        list = { ...noLocalModels, downloads: [canceled] };
        return jsonResponse(200, canceled);
      },
    });
    const { user, events } = renderApp('/local-models');
    const form = await screen.findByRole('region', { name: 'Download a model' });
    const repo = within(form).getByRole('textbox', { name: 'Repository' });

    await user.type(repo, 'no-slash');
    await user.click(within(form).getByRole('button', { name: 'Download' }));
    expect(repo).toHaveAccessibleDescription(/owner\/name/);
    expect(api.sent('POST', '/api/local-models/download')).toHaveLength(0);

    await user.clear(repo);
    await user.type(repo, 'bad--name/x');
    await user.click(within(form).getByRole('button', { name: 'Download' }));
    await expect.poll(() => repo.getAttribute('aria-invalid')).toBe('true');
    expect(repo).toHaveAccessibleDescription(/is not a Hugging Face repository id/);

    await user.clear(repo);
    await user.type(repo, 'acme/Tiny');
    await user.type(within(form).getByRole('textbox', { name: 'Revision' }), 'v1');
    await user.click(within(form).getByRole('button', { name: 'Download' }));
    await expect
      .poll(() => api.sent('POST', '/api/local-models/download').map((r) => r.body))
      .toContainEqual({
        repo: 'acme/Tiny',
        revision: 'v1',
      });
    expect(repo).toHaveValue('');

    const item = await screen.findByRole('group', { name: 'Download of acme/Tiny' });
    act(() =>
      events.latest().emit('job', {
        ...started,
        progress: {
          file: 'model.safetensors',
          fileIndex: 2,
          fileCount: 3,
          fileDone: 1_000_000,
          fileTotal: 3_000_000,
          done: 1_000_000,
          total: 4_000_000,
          bytesPerSec: 2_000_000,
        },
      }),
    );
    const bar = within(item).getByRole('progressbar', { name: 'Download progress of acme/Tiny' });
    await expect.poll(() => bar.getAttribute('aria-valuenow')).toBe('25');
    expect(item).toHaveTextContent('1.0 MB of 4.0 MB · 2.0 MB/s · model.safetensors (3 of 3)');

    await user.click(within(item).getByRole('button', { name: 'Cancel download of acme/Tiny' }));
    expect(api.sent('DELETE', '/api/local-models/download/job_dl')).toHaveLength(1);
    expect(await within(item).findByRole('button', { name: 'Resume download of acme/Tiny' })).toBeInTheDocument();
    expect(item).toHaveTextContent('Canceled');
  });

  it('offers to resume a download that a restart interrupted', async () => {
    const interrupted = sampleJob({
      id: 'job_old',
      state: 'interrupted',
      error: 'OpenTracy stopped while this job ran; start it again to resume',
      progress: {
        fileIndex: 2,
        fileCount: 3,
        fileDone: 0,
        fileTotal: 0,
        done: 500_000_000,
        total: 1_500_000_000,
        bytesPerSec: 0,
      },
    });
    const api = stubLocal({
      'GET /api/local-models': () => jsonResponse(200, { ...noLocalModels, downloads: [interrupted] }),
      'POST /api/local-models/download': () => jsonResponse(202, sampleJob({ id: 'job_new' })),
    });
    const { user } = renderApp('/local-models');

    const item = await screen.findByRole('group', { name: 'Download of Qwen/Qwen3-0.6B' });
    expect(item).toHaveTextContent('Interrupted');
    expect(item).toHaveTextContent('500 MB of 1.5 GB');
    expect(item).toHaveTextContent('start it again to resume');
    await user.click(within(item).getByRole('button', { name: 'Resume download of Qwen/Qwen3-0.6B' }));
    await expect
      .poll(() => api.sent('POST', '/api/local-models/download').map((r) => r.body))
      .toEqual([{ repo: 'Qwen/Qwen3-0.6B' }]);
  });
});
