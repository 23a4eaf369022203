// The customer connect page in a real browser: Debian's Chromium, driven by playwright-core,
// against the compiled hub-local. Each check prints one line; the first failure ends the run
// with a non-zero exit. Screenshots of each state go to target/browser/, and axe-core checks
// accessibility (no serious or critical violation) on each of them.
//
//   node tests/browser/connect.mjs        (HUB_LOCAL_BIN, default target/debug/hub-local)

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const bin = process.env.HUB_LOCAL_BIN || path.join(root, 'target', 'debug', 'hub-local');
const shots = path.join(root, 'target', 'browser');
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DEMO_KEY = 'demo-ashby-api-key';
const PARTNER = 'Assessment Hub';

mkdirSync(shots, { recursive: true });
const cleanups = [];
let checks = 0;

async function check(name, fn) {
  try {
    await fn();
  } catch (e) {
    console.error(`FAIL ${name}\n${e && e.stack ? e.stack : e}`);
    throw e;
  }
  checks += 1;
  console.log(`ok   ${name}`);
}

/// Starts hub-local on a free port; resolves with its base URL and the demo's connect link.
function startHub(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--port', '0', ...extraArgs], {
      env: { ...process.env, HUB_PARTNER_NAME: PARTNER, RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => child.kill('SIGTERM'));
    let out = '';
    let base = null;
    let link = null;
    const timeout = setTimeout(() => reject(new Error(`hub-local did not start:\n${out}`)), 30000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      base = base || (out.match(/hub running at (\S+)/) || [])[1];
      link = link || (out.match(/^ {2}connect page: (\S+)$/m) || [])[1];
      if (base && link) {
        clearTimeout(timeout);
        resolve({ base, link, child });
      }
    });
    child.stderr.on('data', () => {});
    child.on('exit', (code) => reject(new Error(`hub-local exited with ${code}:\n${out}`)));
  });
}

/// A tiny server on another loopback port: another site, whose form posts to the hub.
function startForger(target) {
  const page = `<!doctype html><html lang="en"><head><title>Win a prize</title></head><body>
<main><h1>Win a prize</h1><form method="post" action="${target}">
<input type="hidden" name="csrf" value="guess"><button type="submit" id="go">Claim</button>
</form></main></body></html>`;
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    server.listen(0, '127.0.0.1', () => {
      cleanups.push(() => server.close());
      resolve(`http://127.0.0.1:${server.address().port}/`);
    });
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/// axe-core on the page as it stands. DevTools evaluation is not subject to the page's CSP, so
/// the page's own policy stays enforced for everything else.
async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `${name}: serious or critical accessibility violations`,
  );
}

async function statusOf(link) {
  const resp = await fetch(`${link}/status`);
  assert.equal(resp.status, 200);
  return resp.json();
}

async function main() {
  const { base, link } = await startHub();
  const userData = mkdtempSync(path.join(tmpdir(), 'hub-chromium-'));
  cleanups.push(() => rmSync(userData, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userData, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 1100 },
  });
  cleanups.unshift(() => context.close());
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = context.pages()[0] || await context.newPage();
  const cspViolations = [];
  const offsite = [];
  // The hubs this test starts: the page may ask them and nothing else.
  const own = [base];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('request', (r) => {
    if (!own.some((o) => r.url().startsWith(o)) && !r.url().startsWith('data:')) {
      offsite.push(r.url());
    }
  });

  await check('a plain GET of the link (a mail scanner) issues nothing', async () => {
    const resp = await fetch(link);
    assert.equal(resp.status, 200);
    const h = resp.headers;
    assert.match(h.get('content-security-policy'), /frame-ancestors 'none'/);
    assert.match(h.get('content-security-policy'), /script-src 'self'/);
    assert.doesNotMatch(h.get('content-security-policy'), /unsafe-inline/);
    assert.equal(h.get('cache-control'), 'no-store');
    assert.equal(h.get('referrer-policy'), 'no-referrer');
    assert.equal(h.get('x-content-type-options'), 'nosniff');
    assert.equal((await statusOf(link)).token_shown, false);
  });

  await check('the link opens on the four steps with no token in it', async () => {
    await page.goto(link);
    await page.getByTestId('reveal-token').waitFor();
    assert.equal(await page.getByTestId('trigger-token').isVisible(), false);
    const text = await page.textContent('main');
    assert.match(text, new RegExp(`Search for ${PARTNER} and click Enable`));
    assert.match(text, new RegExp(`${PARTNER} API Key`));
    assert.doesNotMatch(await page.content(), /ahub_/);
    assert.equal(
      (await page.getByTestId('connection-status').textContent()).includes('Waiting for Ashby'),
      true,
    );
    await shot(page, '01-opened');
    await accessible(page, 'opened');
  });

  let token;
  await check('Show token reveals it once, and Copy puts it on the clipboard', async () => {
    await page.getByTestId('reveal-token').click();
    await page.getByTestId('trigger-token').waitFor({ state: 'visible' });
    token = await page.getByTestId('trigger-token').inputValue();
    assert.match(token, /^ahub_[A-Za-z0-9_-]{43}$/);
    await page.getByTestId('copy-token').click();
    await page.getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
    assert.equal((await statusOf(link)).token_shown, true);
    await shot(page, '02-token-shown');
    await accessible(page, 'token shown');
  });

  await check('Ashby calls with the token: the status changes without a reload', async () => {
    const resp = await fetch(`${base}/assessment.list`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${token}:`).toString('base64')}` },
      body: '{}',
    });
    assert.equal(resp.status, 200);
    await page.getByTestId('connection-status')
      .getByText('Waiting for your Ashby API key').waitFor({ timeout: 10000 });
    await shot(page, '03-waiting-for-key');
  });

  await check('a bad key is not stored, and the field is emptied', async () => {
    await page.getByTestId('ashby-key').fill('not-a-working-key');
    await page.getByTestId('save-ashby-key').click();
    await page.getByTestId('key-status').getByText('Not saved').waitFor();
    assert.equal(await page.getByTestId('ashby-key').inputValue(), '');
    assert.equal((await statusOf(link)).key_stored, false);
    await shot(page, '04-bad-key');
    await accessible(page, 'bad key');
  });

  await check('a good key is stored and the status says Connected', async () => {
    await page.getByTestId('ashby-key').fill(DEMO_KEY);
    await page.getByTestId('save-ashby-key').click();
    await page.getByTestId('key-status').getByText('Saved.').waitFor();
    assert.equal(await page.getByTestId('ashby-key').inputValue(), '');
    assert.doesNotMatch(await page.content(), new RegExp(DEMO_KEY));
    await page.getByTestId('connection-status').getByText('Connected').waitFor({ timeout: 10000 });
    await shot(page, '05-connected');
    await accessible(page, 'connected');
  });

  await check('a reload shows no token, and offers a new one', async () => {
    await page.reload();
    await page.getByTestId('rotate-token').waitFor({ state: 'visible' });
    assert.doesNotMatch(await page.content(), new RegExp(token));
    assert.equal(await page.getByTestId('reveal-token').isVisible(), false);
    assert.equal(await page.getByTestId('trigger-token').isVisible(), false);
    assert.match(await page.getByTestId('connection-status').textContent(), /Connected/);
    await shot(page, '06-reloaded');
  });

  await check('a forged POST from another site is refused and changes nothing', async () => {
    const forger = await startForger(`${link}/token/rotate`);
    own.push(forger);
    const other = await context.newPage();
    await other.goto(forger);
    const [resp] = await Promise.all([
      other.waitForResponse((r) => r.url().endsWith('/token/rotate')),
      other.click('#go'),
    ]);
    assert.equal(resp.status(), 403);
    await other.close();
    assert.equal((await statusOf(link)).rotation_pending, false);
  });

  await check('a same-origin request without the anti-forgery token is refused', async () => {
    const status = await page.evaluate(async (url) => {
      const r = await fetch(url, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
      });
      return r.status;
    }, `${link}/token/rotate`);
    assert.equal(status, 403);
    assert.equal((await statusOf(link)).rotation_pending, false);
  });

  await check('Issue a new token shows a new one; the old keeps working until Ashby uses it', async () => {
    await page.getByTestId('rotate-token').click();
    await page.getByTestId('trigger-token').waitFor({ state: 'visible' });
    const fresh = await page.getByTestId('trigger-token').inputValue();
    assert.notEqual(fresh, token);
    assert.equal((await statusOf(link)).rotation_pending, true);
    const list = (t) => fetch(`${base}/assessment.list`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${t}:`).toString('base64')}` },
      body: '{}',
    }).then((r) => r.status);
    assert.equal(await list(token), 200);
    assert.equal(await list(fresh), 200);
    assert.equal(await list(token), 401);
  });

  await check('an unknown link is a plain 404 page', async () => {
    const resp = await page.goto(`${base}/connect/${'A'.repeat(43)}`);
    assert.equal(resp.status(), 404);
    assert.match(await page.textContent('h1'), /Link not found/);
    await shot(page, '07-unknown');
    await accessible(page, 'unknown link');
  });

  await check('an expired link is a plain 410 page', async () => {
    const short = await startHub(['--connect-link-valid-secs', '1']);
    own.push(short.base);
    await new Promise((r) => setTimeout(r, 1500));
    const resp = await page.goto(short.link);
    assert.equal(resp.status(), 410);
    assert.match(await page.textContent('h1'), /expired/);
    await shot(page, '08-expired');
    await accessible(page, 'expired link');
  });

  await check('the page broke no Content Security Policy rule and asked nothing of elsewhere',
    async () => {
      assert.deepEqual(cspViolations, []);
      assert.deepEqual(offsite, []);
    });

  console.log(`browser: ${checks} checks passed (screenshots in ${path.relative(root, shots)})`);
}

let failed = false;
try {
  await main();
} catch {
  failed = true;
} finally {
  for (const c of cleanups) {
    try { await c(); } catch { /* already gone */ }
  }
}
process.exit(failed ? 1 : 0);
