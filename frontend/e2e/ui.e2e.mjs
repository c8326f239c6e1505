// End-to-end: the real `opentracy serve` binary, driven through Chromium.
// Run with `npm run e2e` after building the binary (OPENTRACY_BIN overrides its path).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium } from 'playwright-core';

const frontendDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = path.resolve(frontendDir, '..');
const binary = path.resolve(frontendDir, process.env.OPENTRACY_BIN ?? '../build/bin/opentracy');
const shotsDir = path.join(repoDir, 'build', 'shots');

const STARTUP_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 10_000;

const screens = [
  { link: 'Overview', heading: 'Overview', slug: 'overview' },
  { link: 'Traces', heading: 'Traces', slug: 'traces' },
  { link: 'Clusters', heading: 'Clusters', slug: 'clusters' },
  { link: 'Datasets', heading: 'Datasets', slug: 'datasets' },
  { link: 'Distill', heading: 'Distill', slug: 'distill' },
  // These are shot by their own tests below, once they show a provider, an alias, a form error.
  { link: 'Models & Aliases', heading: 'Models & Aliases', slug: 'models', ownShot: true },
  { link: 'Local models', heading: 'Local models', slug: 'local-models', ownShot: true },
  { link: 'Providers', heading: 'Providers', slug: 'providers', ownShot: true },
  { link: 'Settings', heading: 'Settings', slug: 'settings' },
];

const TOKEN_PAGE_HEADING = 'Open the link printed by opentracy serve';

// A provider added in the UI; nothing listens on port 9, so its connection check fails.
const LAB = { name: 'lab', baseURL: 'http://127.0.0.1:9/v1', key: 'sk-e2e-secret', model: 'qwen3-8b' };

// An OpenAI-type provider whose base URL is the fake upstream below, so prices (and costs) apply.
const ACME = { name: 'acme', key: 'sk-upstream-e2e', models: ['gpt-4o-mini', 'gpt-4o'] };

// The requests the Traces tests send through the gateway with the openai SDK.
const PROMPTS = {
  capital: 'What is the capital of France?',
  haiku: 'Write a haiku about lighthouses',
  weather: 'What is the weather in Paris?',
};

/** Variables that would add providers or a config file from the developer's machine. */
const isHostProviderSetting = (name) =>
  /_API_KEY$|_BASE_URL$/.test(name) || ['AZURE_OPENAI_ENDPOINT', 'OPENTRACY_CONFIG'].includes(name);

/** Starts `opentracy serve` on a free port with a fresh data dir and parses what it prints. */
async function startServer() {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'opentracy-e2e-'));
  const env = { ...process.env };
  delete env.OPENTRACY_GATEWAY_KEY;
  // Only the providers this test adds: none from the environment or a config file.
  for (const name of Object.keys(env)) if (isHostProviderSetting(name)) delete env[name];
  env.XDG_CONFIG_HOME = path.join(dataDir, 'no-config');
  const child = spawn(binary, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dataDir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => (stderr += chunk));

  const patterns = {
    version: /^OpenTracy (\S+) serving/m,
    uiURL: /^\s*UI:\s+(http:\/\/\S+\/\?token=\S+)\s*$/m,
    gatewayURL: /^\s*Gateway URL:\s+(http:\/\/\S+)\s*$/m,
    gatewayKey: /^\s*Gateway key:\s+(\S+)\s*$/m,
  };
  const parse = () => {
    const found = {};
    for (const [name, pattern] of Object.entries(patterns)) {
      const match = pattern.exec(stdout);
      if (!match) return undefined;
      found[name] = match[1];
    }
    return found;
  };

  const printed = await new Promise((resolve, reject) => {
    const onError = (error) => fail(`cannot start ${binary}: ${error.message}`);
    const onExit = (code, signal) => fail(`serve exited early (code ${code}, signal ${signal})`);
    const timer = setTimeout(() => fail(`serve printed no UI link within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
    const stopWaiting = () => {
      clearTimeout(timer);
      child.off('error', onError).off('exit', onExit);
    };
    function fail(why) {
      stopWaiting();
      child.kill('SIGKILL');
      reject(new Error(`${why}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    }
    child.on('error', onError).on('exit', onExit);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const values = parse();
      if (values) {
        stopWaiting();
        resolve(values);
      }
    });
  });

  const origin = new URL(printed.uiURL).origin;
  return { child, exited, dataDir, origin, ...printed, log: () => stderr };
}

describe('OpenTracy UI against the real server', () => {
  let server;
  let browser;
  let context;
  let page;
  let upstream;
  const pageErrors = [];

  before(async () => {
    await mkdir(shotsDir, { recursive: true });
    server = await startServer();
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    page = await context.newPage();
    watch(page, 'ui', pageErrors);
  });

  after(async () => {
    await browser?.close();
    await upstream?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    if (server) await rm(server.dataDir, { recursive: true, force: true });
  });

  test('the gateway needs the gateway key', async () => {
    const anonymous = await fetch(`${server.gatewayURL}/models`);
    assert.equal(anonymous.status, 401);
    const keyed = await fetch(`${server.gatewayURL}/models`, {
      headers: { Authorization: `Bearer ${server.gatewayKey}` },
    });
    assert.equal(keyed.status, 200);
  });

  test('the login link sets the cookie and leaves no token in the URL', async () => {
    await page.goto(server.uiURL);
    await page.waitForURL((url) => !url.search.includes('token'));
    assert.ok(!page.url().includes(server.uiURL.split('token=')[1]), `token still in ${page.url()}`);
    assert.equal(new URL(page.url()).pathname, '/');

    const cookies = await context.cookies(server.origin);
    assert.ok(cookies.some((c) => c.httpOnly), 'expected an HttpOnly UI cookie');
  });

  test('the frame renders with version, live indicator and all links', async () => {
    const nav = page.getByRole('navigation', { name: 'Main navigation' });
    await nav.waitFor();
    assert.deepEqual(
      (await nav.getByRole('link').allTextContents()).map((t) => t.trim()),
      screens.map((s) => s.link),
    );
    await page.getByLabel('Version').filter({ hasText: server.version }).waitFor();
    await page.getByRole('status', { name: 'Server connection: Live' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Overview', exact: true }).waitFor();
  });

  test('Overview shows the gateway URL and, on request, the exact key', async () => {
    const baseURL = page.getByLabel('Gateway base URL');
    await baseURL.waitFor();
    assert.equal(await baseURL.inputValue(), server.gatewayURL);

    const key = page.getByLabel('Gateway key');
    assert.notEqual(await key.inputValue(), server.gatewayKey);
    await page.getByRole('button', { name: 'Show key' }).click();
    assert.equal(await key.inputValue(), server.gatewayKey);
    await page.getByRole('button', { name: 'Hide key' }).click();
  });

  test('Settings charts live server.stats samples', async () => {
    await page.getByRole('navigation', { name: 'Main navigation' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    await page.getByText('Goroutines', { exact: true }).waitFor({ timeout: 10_000 });
    await page.getByRole('img', { name: /Memory \(RSS\)/ }).locator('svg.recharts-surface').first().waitFor();
  });

  test('every screen is reachable from the sidebar', async () => {
    const nav = page.getByRole('navigation', { name: 'Main navigation' });
    for (const screen of screens) {
      const link = nav.getByRole('link', { name: screen.link, exact: true });
      await link.click();
      await page.getByRole('heading', { level: 1, name: screen.heading, exact: true }).waitFor();
      assert.equal(await link.getAttribute('aria-current'), 'page', `${screen.link} is not marked current`);
      await settle(page);
      if (!screen.ownShot) await page.screenshot({ path: path.join(shotsDir, `${screen.slug}.png`), fullPage: true });
    }
  });

  test('Providers adds a provider whose key is never sent back', async () => {
    await goTo(page, 'Providers');
    await page.getByRole('button', { name: 'Add provider' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add provider' });
    await dialog.getByRole('textbox', { name: 'Type' }).click();
    await dialog.getByRole('option', { name: 'openai-compatible', exact: true }).click();
    await dialog.getByLabel('Name', { exact: true }).fill(LAB.name);
    await dialog.getByLabel('Base URL', { exact: true }).fill(LAB.baseURL);
    await dialog.getByLabel('API key', { exact: true }).fill(LAB.key);
    const models = dialog.getByRole('textbox', { name: 'Models' });
    await models.fill(LAB.model);
    await models.press('Enter');
    await page.screenshot({ path: path.join(shotsDir, 'providers-add.png'), fullPage: true });
    await dialog.getByRole('button', { name: 'Save provider' }).click();
    await dialog.waitFor({ state: 'detached' });

    const row = labRow(page);
    await row.getByText('Key set · saved in the app').waitFor();
    await row.getByText(LAB.baseURL).waitFor();
    await row.getByText(LAB.model, { exact: true }).waitFor();
    assert.ok(!(await page.content()).includes(LAB.key), 'the page shows the API key');
    const listed = await fetch(`${server.origin}/api/providers`, {
      headers: { Cookie: await uiCookie(context, server) },
    });
    assert.equal(listed.status, 200);
    assert.ok(!(await listed.text()).includes(LAB.key), 'GET /api/providers returns the API key');
  });

  test('Providers checks the connection and reports the failure', async () => {
    await labRow(page).getByRole('button', { name: 'Check connection' }).click();
    const result = page.getByRole('status', { name: `Connection check for ${LAB.name}` });
    await result.waitFor({ timeout: 20_000 });
    assert.match(await result.innerText(), /cannot reach/i);
    assert.ok(!(await page.content()).includes(LAB.key), 'the page shows the API key');
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'providers.png'), fullPage: true });
  });

  test('Models & Aliases creates an alias and shows its history', async () => {
    await goTo(page, 'Models & Aliases');
    await page.getByRole('button', { name: 'New alias' }).click();
    const dialog = page.getByRole('dialog', { name: 'New alias' });
    await dialog.getByLabel('Name', { exact: true }).fill('smart');
    // The provider's model is offered as a suggestion.
    await dialog.getByRole('textbox', { name: 'Target 1 model' }).click();
    await dialog.getByRole('option', { name: `${LAB.name}/${LAB.model}`, exact: true }).click();
    await dialog.getByRole('button', { name: 'Create alias' }).click();
    await dialog.waitFor({ state: 'detached' });

    const row = page.getByRole('table', { name: 'Aliases' }).getByRole('row', { name: 'smart', exact: true });
    await row.getByText(`${LAB.name}/${LAB.model}`).waitFor();
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'models.png'), fullPage: true });

    await row.getByRole('button', { name: 'History' }).click();
    const drawer = page.getByRole('dialog', { name: 'History of smart' });
    const v1 = drawer.getByRole('listitem', { name: 'Version 1' });
    await v1.waitFor();
    assert.match(await v1.textContent(), /Current/);
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'models-history.png'), fullPage: true });
    await drawer.getByRole('button', { name: 'Close' }).click();
    await drawer.waitFor({ state: 'detached' });
  });

  test('Local models shows the engine, no models yet, and the server refusing a bad repository id', async () => {
    await goTo(page, 'Local models');
    const engine = page.getByRole('region', { name: 'Engine', exact: true });
    await engine.getByLabel(/^Engine status: /).waitFor();
    // Without a GPU (CI) Install is off and says why; with one it needs a wheel mirror first.
    assert.equal(await engine.getByRole('button', { name: 'Install GPU runtime' }).isDisabled(), true);
    await page.getByRole('region', { name: 'No local models yet' }).waitFor();

    // Shaped like owner/name, so only the server's check (the Hub's rules) refuses it: nothing is downloaded.
    const form = page.getByRole('region', { name: 'Download a model' });
    const repo = form.getByRole('textbox', { name: 'Repository' });
    await repo.fill('bad--owner/model');
    await form.getByRole('button', { name: 'Download' }).click();
    await form.getByText('is not a Hugging Face repository id').waitFor();
    assert.equal(await repo.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByRole('region', { name: 'Downloads', exact: true }).count(), 0);
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'local-models.png'), fullPage: true });
  });

  test('the gateway lists the new alias and the provider model', async () => {
    const response = await fetch(`${server.gatewayURL}/models`, {
      headers: { Authorization: `Bearer ${server.gatewayKey}` },
    });
    assert.equal(response.status, 200);
    const ids = (await response.json()).data.map((model) => model.id);
    assert.ok(ids.includes('smart'), `no alias in ${ids}`);
    assert.ok(ids.includes(`${LAB.name}/${LAB.model}`), `no provider model in ${ids}`);
  });

  test('requests sent with the openai SDK appear live in Traces', async () => {
    upstream = await startFakeUpstream();
    const added = await fetch(`${server.origin}/api/providers`, {
      method: 'POST',
      headers: { Cookie: await uiCookie(context, server), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: ACME.name, type: 'openai', baseURL: upstream.url, apiKey: ACME.key, models: ACME.models }),
    });
    assert.equal(added.status, 200, await added.text());
    await goTo(page, 'Traces');
    const table = page.getByRole('table', { name: 'Traces' });

    const client = new OpenAI({ baseURL: server.gatewayURL, apiKey: server.gatewayKey, maxRetries: 0 });
    const plain = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPTS.capital }] },
      { headers: { 'X-OpenTracy-Metadata': JSON.stringify({ team: 'e2e' }) } },
    );
    assert.match(plain.choices[0].message.content, /capital of France/);
    // The first trace lands in the empty list as soon as it is stored.
    await rowWith(table, PROMPTS.capital).waitFor({ timeout: 15_000 });

    let streamed = '';
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are a poet.' },
        { role: 'user', content: PROMPTS.haiku },
      ],
      stream: true,
    });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.match(streamed, /lighthouses/);
    const tools = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: PROMPTS.weather }],
      tools: [
        {
          type: 'function',
          function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
        },
      ],
    });
    assert.equal(tools.choices[0].message.tool_calls[0].function.name, 'get_weather');
    // The alias points at the provider nothing listens for: a failed request, traced all the same.
    await assert.rejects(
      client.chat.completions.create({ model: 'smart', messages: [{ role: 'user', content: 'Nobody will answer this' }] }),
    );

    // Later traces wait behind the "new traces" button, so the rows do not move while read.
    const pill = page.getByRole('button', { name: /^\d+ new traces?$/ });
    await page.waitForFunction(() => /^3 new traces$/.test(document.querySelector('[aria-label="Live traces"]')?.textContent ?? ''), null, { timeout: 15_000 });
    await pill.click();
    for (const prompt of [PROMPTS.haiku, PROMPTS.weather, 'Nobody will answer this']) await rowWith(table, prompt).waitFor();
    const failed = rowWith(table, 'Nobody will answer this');
    assert.match(await failed.innerText(), /\b5\d\d\b|No answer/);
    assert.match(await rowWith(table, PROMPTS.capital).innerText(), /acme/);
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'traces-list.png') });
  });

  test('a trace opens in a drawer with its conversation, and the URL keeps it', async () => {
    const table = page.getByRole('table', { name: 'Traces' });
    await rowWith(table, PROMPTS.weather).click();
    const drawer = page.getByRole('dialog', { name: 'Trace details' });
    const request = drawer.getByRole('list', { name: 'Request messages' });
    await request.getByText(PROMPTS.weather).waitFor();
    const call = drawer.getByRole('group', { name: 'Tool call get_weather' });
    await call.waitFor();
    assert.match(await call.innerText(), /"city": "Paris"/);
    await drawer.getByRole('table', { name: 'Attempts' }).getByText(ACME.name).waitFor();
    assert.match(new URL(page.url()).search, /trace=/);
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'traces-drawer-tools.png') });

    // A shared link opens the same trace.
    await page.reload();
    await drawer.getByRole('list', { name: 'Request messages' }).getByText(PROMPTS.weather).waitFor();
    await drawer.getByRole('button', { name: 'Close' }).click();
    await drawer.waitFor({ state: 'detached' });

    await rowWith(table, PROMPTS.capital).click();
    await drawer.getByRole('list', { name: 'Response messages' }).getByText(/capital of France/).waitFor();
    await drawer.getByRole('table', { name: 'Metadata' }).getByText('e2e').waitFor();
    await drawer.getByRole('table', { name: 'Cost breakdown' }).waitFor();
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'traces-drawer.png') });
    await drawer.getByRole('button', { name: 'Close' }).click();
    await drawer.waitFor({ state: 'detached' });
  });

  test('Traces filters by model, text and status, and exports what it shows', async () => {
    const table = page.getByRole('table', { name: 'Traces' });
    await page.getByRole('textbox', { name: 'Model' }).click();
    await page.getByRole('option', { name: 'gpt-4o', exact: true }).click();
    await page.keyboard.press('Escape');
    await rowWith(table, PROMPTS.capital).waitFor({ state: 'detached' });
    await rowWith(table, PROMPTS.haiku).waitFor();
    assert.deepEqual(new URL(page.url()).searchParams.getAll('model'), ['gpt-4o']);
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'traces-filtered.png') });
    await page.getByRole('button', { name: 'Clear filters' }).first().click();

    // Clearing the model filter refetches the whole list: wait for it before searching, or the
    // rows still filtered by model would pass for search results.
    await rowWith(table, PROMPTS.weather).waitFor();
    await page.getByRole('searchbox', { name: 'Search' }).fill('lighthouses');
    // The search is committed to the address after a pause in typing; the rows follow it.
    await page.waitForURL((url) => url.searchParams.get('q') === 'lighthouses');
    await rowWith(table, PROMPTS.weather).waitFor({ state: 'detached' });
    await rowWith(table, PROMPTS.haiku).waitFor();

    // The export link carries the filters: it downloads exactly the rows shown.
    const href = await page.getByRole('link', { name: 'Export JSONL' }).getAttribute('href');
    const exported = await fetch(new URL(href, server.origin), { headers: { Cookie: await uiCookie(context, server) } });
    assert.equal(exported.status, 200);
    const lines = (await exported.text()).trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(lines.length, 1);
    assert.match(JSON.stringify(lines[0].input), /lighthouses/);
    await page.getByRole('button', { name: 'Clear filters' }).first().click();

    await page.getByRole('textbox', { name: 'Status' }).click();
    await page.getByRole('option', { name: 'Failed' }).click();
    await rowWith(table, 'Nobody will answer this').waitFor();
    await rowWith(table, PROMPTS.capital).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Clear filters' }).first().click();
    await rowWith(table, PROMPTS.capital).waitFor();
  });

  test('Traces imports a JSONL file of chat records', async () => {
    const record = { messages: [{ role: 'user', content: 'An imported question' }, { role: 'assistant', content: 'An imported answer' }] };
    await page.getByLabel('JSONL file to import').setInputFiles({
      name: 'chats.jsonl',
      mimeType: 'application/x-ndjson',
      buffer: Buffer.from(`${JSON.stringify(record)}\nnot json\n`),
    });
    const outcome = page.getByRole('status').filter({ hasText: 'Imported 1 trace' });
    await outcome.waitFor();
    assert.match(await outcome.innerText(), /Line 2/);
    await rowWith(page.getByRole('table', { name: 'Traces' }), 'An imported question').waitFor();
    await outcome.getByRole('button', { name: 'Dismiss' }).click();
  });

  test('Overview charts the traffic', async () => {
    await goTo(page, 'Overview');
    const traffic = page.getByRole('region', { name: 'Traffic' });
    await traffic.getByRole('img', { name: 'Cost over time' }).locator('svg.recharts-surface').first().waitFor();
    await traffic.getByRole('img', { name: 'Latency over time' }).locator('svg.recharts-surface').first().waitFor();
    const top = traffic.getByRole('table', { name: 'Top models by cost' });
    await top.getByText('gpt-4o-mini', { exact: true }).waitFor();
    await page.getByRole('region', { name: 'What you would save' }).waitFor();
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'overview-traffic.png'), fullPage: true });
  });

  test('the theme toggle switches Overview to dark mode', async () => {
    await page.getByRole('navigation', { name: 'Main navigation' }).getByRole('link', { name: 'Overview' }).click();
    await page.getByLabel('Gateway base URL').waitFor();
    await page.getByRole('button', { name: 'Toggle color scheme' }).click();
    await page.locator('html[data-mantine-color-scheme="dark"]').waitFor({ state: 'attached' });
    await settle(page);
    await page.screenshot({ path: path.join(shotsDir, 'overview-dark.png'), fullPage: true });
  });

  test('the management API refuses other origins', async () => {
    const cookie = await uiCookie(context, server);
    const sameOrigin = await fetch(`${server.origin}/api/info`, { headers: { Cookie: cookie } });
    assert.equal(sameOrigin.status, 200, 'the cookie alone should be enough');
    const foreign = await fetch(`${server.origin}/api/info`, {
      headers: { Cookie: cookie, Origin: 'http://evil.example' },
    });
    assert.equal(foreign.status, 403);
  });

  test('a browser without the UI cookie is told to open the printed link', async () => {
    const stranger = await browser.newContext();
    try {
      const strangerPage = await stranger.newPage();
      const strangerErrors = [];
      watch(strangerPage, 'no-cookie', strangerErrors);
      await strangerPage.goto(`${server.origin}/`);
      await strangerPage.getByRole('heading', { level: 1, name: TOKEN_PAGE_HEADING }).waitFor();
      assert.equal(await strangerPage.getByRole('navigation', { name: 'Main navigation' }).count(), 0);
      await strangerPage.screenshot({ path: path.join(shotsDir, 'token-required.png') });
      assert.deepEqual(strangerErrors, []);
    } finally {
      await stranger.close();
    }
  });

  test('the page raised no uncaught errors', () => {
    assert.deepEqual(pageErrors, []);
  });

  test('the server exits on SIGTERM', async () => {
    server.child.kill('SIGTERM');
    const exit = await Promise.race([
      server.exited,
      new Promise((resolve) => setTimeout(() => resolve('timeout'), EXIT_TIMEOUT_MS)),
    ]);
    assert.notEqual(exit, 'timeout', `serve did not exit within ${EXIT_TIMEOUT_MS} ms of SIGTERM`);
    const [code] = exit;
    assert.equal(code, 0, `serve exited with ${code}\n${server.log()}`);
  });
});

/** Opens a screen from the sidebar and waits for its heading. */
async function goTo(page, link) {
  const nav = page.getByRole('navigation', { name: 'Main navigation' });
  await nav.getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: link, exact: true }).waitFor();
}

/** The Traces table's row that shows `text` (its prompt). */
function rowWith(table, text) {
  return table.getByRole('row').filter({ hasText: text });
}

/**
 * A fake OpenAI upstream on loopback: answers chat completions (plain, streamed, or with a tool
 * call when the request offers tools) with a reply that quotes the prompt, and usage.
 */
async function startFakeUpstream() {
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: ACME.models.map((id) => ({ id, object: 'model' })) }));
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } }));
      return;
    }
    const request = JSON.parse(body);
    const prompt = request.messages.findLast((m) => m.role === 'user')?.content ?? '';
    const usage = { prompt_tokens: 20 + prompt.length, completion_tokens: 12, total_tokens: 32 + prompt.length };
    const base = { id: 'chatcmpl-e2e', created: Math.floor(Date.now() / 1000), model: request.model };
    const message = request.tools
      ? {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_e2e', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          ],
        }
      : { role: 'assistant', content: `Here is my answer to "${prompt}": it is Paris.` };
    const finish = request.tools ? 'tool_calls' : 'stop';
    if (!request.stream) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: finish }], usage }));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const send = (choices, extra = {}) =>
      res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`);
    send([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    for (const word of (message.content ?? '').split(/(?<= )/)) send([{ index: 0, delta: { content: word }, finish_reason: null }]);
    send([{ index: 0, delta: {}, finish_reason: finish }]);
    if (request.stream_options?.include_usage) send([], { usage });
    res.end('data: [DONE]\n\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function labRow(page) {
  return page.getByRole('table', { name: 'Providers' }).getByRole('row', { name: LAB.name, exact: true });
}

/** The browser's UI cookie, for calling the management API from node. */
async function uiCookie(context, server) {
  return (await context.cookies(server.origin)).map((c) => `${c.name}=${c.value}`).join('; ');
}

/** Prints the page's console errors and collects uncaught exceptions. */
function watch(page, name, errors) {
  page.on('console', (message) => {
    if (message.type() === 'error') console.error(`[${name} console] ${message.text()}`);
  });
  page.on('pageerror', (error) => {
    console.error(`[${name} pageerror] ${error.stack ?? error.message}`);
    errors.push(error.message);
  });
}

/** Waits until no query is loading and transitions have finished, so screenshots are stable. */
async function settle(page) {
  await page.waitForFunction(() => !document.body.innerText.includes('Loading '));
  await page.waitForTimeout(300);
}
