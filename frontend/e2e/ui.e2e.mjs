// End-to-end: the real `opentracy serve` binary, driven through Chromium.
// Run with `npm run e2e` after building the binary (OPENTRACY_BIN overrides its path).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
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
  // These two are shot by their own tests below, once they show a provider and an alias.
  { link: 'Models & Aliases', heading: 'Models & Aliases', slug: 'models', ownShot: true },
  { link: 'Providers', heading: 'Providers', slug: 'providers', ownShot: true },
  { link: 'Settings', heading: 'Settings', slug: 'settings' },
];

const TOKEN_PAGE_HEADING = 'Open the link printed by opentracy serve';

// A provider added in the UI; nothing listens on port 9, so its connection check fails.
const LAB = { name: 'lab', baseURL: 'http://127.0.0.1:9/v1', key: 'sk-e2e-secret', model: 'qwen3-8b' };

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

  test('the gateway lists the new alias and the provider model', async () => {
    const response = await fetch(`${server.gatewayURL}/models`, {
      headers: { Authorization: `Bearer ${server.gatewayKey}` },
    });
    assert.equal(response.status, 200);
    const ids = (await response.json()).data.map((model) => model.id);
    assert.ok(ids.includes('smart'), `no alias in ${ids}`);
    assert.ok(ids.includes(`${LAB.name}/${LAB.model}`), `no provider model in ${ids}`);
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
