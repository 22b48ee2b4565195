// Browser tests of the web console: Playwright (playwright-core) drives Debian's chromium, headless,
// against the real fastgpu binary (`fastgpu up` on port 0 with a temporary FASTGPU_HOME, started once).
// Environment: FASTGPU_BIN (the binary), CHROMIUM (default /usr/bin/chromium), FASTGPU_WEB_ARTIFACTS
// (where screenshots and the downloaded invoice go; default a temporary directory).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const BIN = process.env.FASTGPU_BIN || join(here, '../../build/fastgpu');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.FASTGPU_WEB_ARTIFACTS || mkdtempSync(join(tmpdir(), 'fastgpu-web-artifacts-'));
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DEADLINE_MS = 20000;

let home, server, url, adminToken, viewerToken, browser;
const problems = [];  // CSP violations and uncaught errors seen by any page

function cli(...args) {
  return execFileSync(BIN, args, { env: { ...process.env, FASTGPU_HOME: home }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function waitFor(what, fn, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function apiCall(method, path, token, body) {
  const res = await fetch(url + path, {
    method, headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function newPage(viewport = { width: 1366, height: 768 }) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  return page;
}

async function login(page, token) {
  await page.goto(url + '/');
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
}

async function axe(page, label) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${label}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
}

async function submitFromForm(page, command, name) {
  await page.getByLabel('Command').fill(command);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('GPUs', { exact: true }).fill('1');
  await page.getByLabel('Runtime limit').fill('10m');
  await page.getByLabel('Priority (0–100)').fill('60');
  await page.getByRole('button', { name: 'Submit job' }).click();
  const link = page.locator('.grid-form .ok a');
  await link.waitFor();
  return (await link.textContent()).trim();
}

const rowState = (page, id) => page.locator(`tr[data-job="${id}"]`).getAttribute('data-state', { timeout: 1000 }).catch(() => null);

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  home = mkdtempSync(join(tmpdir(), 'fastgpu-web-'));
  server = spawn(BIN, ['up', '--home', home, '--listen', '127.0.0.1:0', '--sim-gpus', '2xA100-80GB'],
    { env: { ...process.env, FASTGPU_HOME: home }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor('fastgpu up to write its URL and admin token', () =>
    existsSync(join(home, 'url')) && existsSync(join(home, 'admin.token')), 30000);
  url = readFileSync(join(home, 'url'), 'utf8').trim();
  adminToken = readFileSync(join(home, 'admin.token'), 'utf8').trim();
  cli('project', 'set', 'default', '--budget', '500');
  cli('user', 'create', 'vera');
  cli('member', 'add', 'default', 'vera', '--role', 'viewer');
  viewerToken = cli('token', 'create', '--user', 'vera', '--name', 'console-test').trim();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (home) rmSync(home, { recursive: true, force: true });
});

test('the console and its assets are served with their types and security headers, without a token', async () => {
  const res = await fetch(url + '/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  const js = await fetch(url + '/assets/app.js');
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const again = await fetch(url + '/assets/app.js', { headers: { 'If-None-Match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  // The API behind it still wants a token.
  assert.equal((await fetch(url + '/v1/jobs')).status, 401);
});

test('a wrong token is refused; the admin logs in and sees who they are', async () => {
  const page = await newPage();
  await page.goto(url + '/');
  await axe(page, 'login');
  await page.getByLabel('API token').fill('fgt_wrong');
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  await shot(page, '01-login-refused');
  await login(page, adminToken);
  assert.match(await page.locator('#who-name').textContent(), /admin/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('fastgpu.token')), adminToken);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('API token').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('fastgpu.token')), null);
  await page.context().close();
});

test('a job submitted from the form goes RUNNING then SUCCEEDED live, and its output is followed', async () => {
  const page = await newPage();
  await login(page, adminToken);
  await page.evaluate(() => { window.__noReload = true; });
  const id = await submitFromForm(page, 'echo started; sleep 2; echo hello-from-the-console; sleep 1', 'console-ok');
  await waitFor(`${id} RUNNING in the list`, async () => (await rowState(page, id)) === 'RUNNING');
  await shot(page, '02-jobs-running');
  await waitFor(`${id} SUCCEEDED in the list`, async () => (await rowState(page, id)) === 'SUCCEEDED');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the list updated without a reload');
  await axe(page, 'jobs');
  await page.getByRole('link', { name: id, exact: true }).first().click();
  await page.getByRole('heading', { name: new RegExp(`Job ${id}`) }).waitFor();
  await waitFor('the output', async () => /hello-from-the-console/.test(await page.locator('#job-log').textContent()));
  await page.getByText('End of output').waitFor();
  const timeline = await page.locator('ol.timeline').textContent();
  for (const s of ['QUEUED', 'RUNNING', 'SUCCEEDED']) assert.match(timeline, new RegExp(s));
  const details = await page.locator('dl.props').textContent();
  assert.match(details, /GPU-hours/);
  assert.match(details, /Cost so far\$/);
  await axe(page, 'job detail');
  await shot(page, '03-job-detail');
  await page.context().close();
});

test('a running job is cancelled from the list, after a confirmation', async () => {
  const page = await newPage();
  await login(page, adminToken);
  const id = await submitFromForm(page, 'echo tick-1; sleep 1; echo tick-2; sleep 300', 'console-cancel');
  await waitFor(`${id} RUNNING`, async () => (await rowState(page, id)) === 'RUNNING');
  await page.getByRole('button', { name: `Cancel job ${id}` }).click();
  await page.getByRole('button', { name: `Confirm: cancel job ${id}` }).click();
  await waitFor(`${id} CANCELLED`, async () => (await rowState(page, id)) === 'CANCELLED');
  assert.equal(await page.getByRole('button', { name: `Cancel job ${id}` }).count(), 0);
  await shot(page, '04-job-cancelled');
  await page.context().close();
});

test('a viewer sees jobs but no submit form and no cancel button, and the API refuses the cancel', async () => {
  const sub = await apiCall('POST', '/v1/jobs', adminToken, { command: 'sleep 300', name: 'viewer-sees-this', gpus: '1' });
  assert.equal(sub.status, 201);
  const id = sub.body.id;
  const page = await newPage();
  await login(page, viewerToken);
  assert.match(await page.locator('#who-name').textContent(), /vera/);
  await waitFor(`${id} RUNNING for the viewer`, async () => (await rowState(page, id)) === 'RUNNING');
  assert.equal(await page.getByRole('button', { name: /Cancel job/ }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Submit job' }).count(), 0);
  await page.getByText('your role in every project is viewer').waitFor();
  await shot(page, '05-viewer-jobs');
  await page.goto(url + '/#/jobs/' + id);
  await page.getByRole('heading', { name: new RegExp(`Job ${id}`) }).waitFor();
  assert.equal(await page.getByRole('button', { name: /Cancel/ }).count(), 0);
  // The same call the button would make, from the console's origin with the viewer's token: refused.
  const status = await page.evaluate(async (jobId) => {
    const r = await fetch(`/v1/jobs/${jobId}/cancel`, { method: 'POST', headers: { Authorization: 'Bearer ' + sessionStorage.getItem('fastgpu.token') } });
    return r.status;
  }, id);
  assert.equal(status, 403);
  assert.equal((await apiCall('GET', `/v1/jobs/${id}`, adminToken)).body.state, 'RUNNING');
  await apiCall('POST', `/v1/jobs/${id}/cancel`, adminToken);
  await page.context().close();
});

test('usage and bills: spend by project and GPU type, and the invoice downloads as CSV', async () => {
  const page = await newPage();
  await login(page, adminToken);
  await page.getByRole('link', { name: 'Usage & bills' }).click();
  await page.getByRole('heading', { name: 'Usage and bills' }).waitFor();
  await page.getByRole('table', { name: 'Spend by GPU type' }).waitFor();
  assert.match(await page.getByRole('table', { name: 'Spend by GPU type' }).textContent(), /A100-80GB/);
  // The budget bar: this month's spend against the project's monthly budget.
  const bar = page.locator('meter#budget-default');
  assert.equal(await bar.getAttribute('max'), '500000000');
  assert.match(await page.locator('label[for="budget-default"]').textContent(), /^Budget: \$[\d.,]+ of \$500\.00 a month/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: /Download invoice CSV \(default/ }).click(),
  ]);
  const file = join(ARTIFACTS, download.suggestedFilename());
  await download.saveAs(file);
  const csv = readFileSync(file, 'utf8');
  assert.match(csv, /^project,month,item,gpu_type,gpu_hours,unit_price_usd,gross_usd,discount_usd,total_usd\n/);
  assert.match(csv, /^default,\d{4}-\d\d,usage,A100-80GB,/m);
  await axe(page, 'usage');
  await shot(page, '06-usage');
  await page.context().close();
});

test('GPUs and nodes, projects, tokens and the audit log render and pass the accessibility scan', async () => {
  const page = await newPage();
  await login(page, adminToken);
  await page.getByRole('link', { name: 'GPUs & nodes' }).click();
  await page.getByRole('table', { name: 'GPUs' }).waitFor();
  assert.match(await page.getByRole('table', { name: 'GPUs' }).textContent(), /simulated/);
  assert.match(await page.getByRole('table', { name: 'Nodes' }).textContent(), /healthy/);
  await axe(page, 'gpus');
  await shot(page, '07-gpus');
  await page.getByRole('link', { name: 'Projects' }).click();
  await page.getByRole('link', { name: 'default' }).click();
  await page.getByRole('heading', { name: 'Project default' }).waitFor();
  await page.getByRole('table', { name: 'Members' }).waitFor();
  assert.match(await page.getByRole('table', { name: 'Members' }).textContent(), /vera\s*viewer/);
  await page.getByLabel('Secret name').fill('WANDB_KEY');
  await page.getByLabel('Value').fill('s3cret');
  await page.getByRole('button', { name: 'Set secret' }).click();
  await page.getByRole('table', { name: 'Secrets' }).filter({ hasText: 'WANDB_KEY' }).waitFor();
  await axe(page, 'project');
  await page.getByRole('link', { name: 'Tokens' }).click();
  await page.getByLabel('Name', { exact: true }).fill('from-console');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = await page.locator('#new-token').inputValue();
  assert.equal((await apiCall('GET', '/v1/whoami', token)).status, 200);
  await axe(page, 'tokens');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('table').first().waitFor();
  await page.getByRole('button', { name: 'Verify the hash chain' }).click();
  await page.getByText(/Hash chain intact/).waitFor();
  await axe(page, 'audit');
  await shot(page, '08-audit');
  await page.context().close();
});

test('fits a phone width and is usable from the keyboard', async () => {
  const page = await newPage({ width: 390, height: 844 });
  await login(page, adminToken);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await shot(page, '09-phone-jobs');
  // A reload keeps the session (sessionStorage) and leaves focus at the top of the document.
  await page.reload();
  await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
  // Tab from the top: the skip link, then the navigation, each with a visible focus ring.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Jobs');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'GPUs and nodes' }).waitFor();
  await page.context().close();
});

test('no page broke the Content-Security-Policy or threw', () => {
  assert.deepEqual(problems, []);
});
