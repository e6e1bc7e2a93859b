// Real-browser tests of `hearth bridge`: Debian's chromium, headless, driven by playwright-core.
// A hearthd (HEARTHD) runs on a temporary socket and `$HEARTH bridge` in front of it on a free
// loopback port. The demo page must load through the printed token URL, drop the token from
// the address bar, show $/hello and $/stats, and complete as text is typed — or, when the
// daemon does not serve `complete`, say -32601 (the assertion follows what hearthd's $/hello
// lists at test time). A page from another origin (another loopback port, served here) tries
// fetch and a WebSocket against the bridge, with the bridge's cookie in the browser, and is
// refused; nothing reaches the daemon. Every wait is for an event or an element, bounded by
// the test runner's timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const HEARTH = process.env.HEARTH;
const HEARTHD = process.env.HEARTHD;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(HEARTH && HEARTHD, 'set HEARTH (the hearth CLI with `bridge`) and HEARTHD');

let dir, daemon, bridge, browser, url, origin, token;
const children = [];

/** Resolves with the first line of `stream` matching `re`. */
function lineMatching(stream, re, what) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stream });
    const seen = [];
    lines.on('line', (line) => {
      seen.push(line);
      if (re.test(line)) { lines.removeAllListeners('line'); resolve(line); }
    });
    lines.on('close', () => reject(new Error(`${what} ended without ${re}: ${seen.join('\n')}`)));
  });
}

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.on('error', (e) => { throw new Error(`cannot start ${cmd}: ${e.message}`); });
  children.push(child);
  return child;
}

/** The daemon's counters, over the bridge's own API with the bearer token. */
async function stats() {
  const r = await fetch(`${origin}/v2/call/$/stats`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: 'null',
  });
  assert.equal(r.status, 200);
  return (await r.json()).result;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-bridge-browser-'));
  const socket = join(dir, 'run', 'hearthd.sock');
  daemon = start(HEARTHD, ['--socket', socket], { RUST_LOG: 'info', NO_COLOR: '1' });
  await lineMatching(daemon.stderr, /ready on/, 'hearthd');
  bridge = start(HEARTH, ['bridge', '--socket', socket, '--listen', '127.0.0.1:0']);
  url = (await lineMatching(bridge.stdout, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/, 'hearth bridge')).trim();
  origin = new URL(url).origin;
  token = new URL(url).searchParams.get('token');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) child.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the demo page loads through the token URL, drops the token and shows the daemon', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(url);
  assert.equal(response.status(), 200);
  assert.equal(page.url(), `${origin}/`, 'the token left the address bar');
  await page.locator('#status', { hasText: 'open' }).waitFor();
  await page.locator('#hello', { hasText: 'hearthd' }).waitFor();
  assert.match(await page.locator('#hello').textContent(), /protocol 2/);
  await page.waitForFunction(() => /"requests_total"/.test(document.getElementById('stats').textContent));
  const html = await page.content();
  assert.ok(!html.includes(token), 'the page never holds the token');
  const cookies = await context.cookies(origin);
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the cookie');
  await context.close();
});

test('typing completes, or says -32601 when hearthd does not serve complete', async () => {
  const hello = await (await fetch(`${origin}/v2/hello`, { headers: { authorization: `Bearer ${token}` } })).json();
  const servesComplete = hello.methods.includes('complete');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#hello', { hasText: 'hearthd' }).waitFor();
  const editor = page.locator('#editor');
  await editor.click();
  await editor.pressSequentially('fn main() {\n    let counter = 0;\n    cou');
  if (servesComplete) {
    await page.locator('#completions li', { hasText: 'counter' }).first().waitFor();
    assert.match(await page.locator('#latency').textContent(), /^\d+(\.\d+)? ms$/);
  } else {
    await page.locator('#complete-status', { hasText: '-32601' }).waitFor();
  }
  console.log(`# complete served by hearthd: ${servesComplete}`);
  await context.close();
});

test('without the token the page is 401 and shows nothing', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(`${origin}/`);
  assert.equal(response.status(), 401);
  assert.equal(await page.locator('#editor').count(), 0);
  await context.close();
});

test('a page from another origin cannot call the bridge by fetch or WebSocket', async () => {
  // The evil page lives on another loopback port: same site as the bridge for cookies, so
  // the browser does attach the bridge's SameSite=Strict cookie — the Origin check must hold.
  const evil = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>evil</title><p>evil</p>');
  });
  await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
  const evilOrigin = `http://127.0.0.1:${evil.address().port}`;
  const before = await stats();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url); // logs in: the cookie is in this browser context
    await page.locator('#hello', { hasText: 'hearthd' }).waitFor();
    await page.goto(`${evilOrigin}/`);
    const results = await page.evaluate(async (bridge) => {
      const out = {};
      const attempt = async (name, f) => {
        try { out[name] = await f(); } catch (e) { out[name] = `refused: ${e.name}`; }
      };
      await attempt('cors_json', async () => {
        const r = await fetch(`${bridge}/v2/call/echo`, {
          method: 'POST', credentials: 'include',
          headers: { 'content-type': 'application/json' }, body: '"evil"',
        });
        return `status ${r.status}: ${await r.text()}`;
      });
      await attempt('simple_text_plain', async () => {
        const r = await fetch(`${bridge}/v2/call/echo`, {
          method: 'POST', credentials: 'include', mode: 'no-cors',
          headers: { 'content-type': 'text/plain' }, body: '"evil"',
        });
        return `opaque ${r.type}`;
      });
      await attempt('read_hello', async () => {
        const r = await fetch(`${bridge}/v2/hello`, { credentials: 'include' });
        return `status ${r.status}: ${await r.text()}`;
      });
      out.websocket = await new Promise((resolve) => {
        const ws = new WebSocket(bridge.replace('http', 'ws') + '/v2/ws');
        ws.onopen = () => { resolve('OPENED'); ws.close(); };
        ws.onclose = (e) => resolve(`closed ${e.code} before opening`);
      });
      return out;
    }, origin);
    console.log('# from another origin:', JSON.stringify(results));
    assert.match(results.cors_json, /^refused: TypeError$/, 'no readable answer');
    assert.equal(results.simple_text_plain, 'opaque opaque', 'no-cors gives nothing back');
    assert.match(results.read_hello, /^refused: TypeError$/);
    assert.match(results.websocket, /^closed 1006 before opening$/);
    await context.close();
  } finally {
    evil.close();
  }
  const afterStats = await stats();
  assert.equal(afterStats.methods.echo ?? 0, before.methods.echo ?? 0, 'no echo reached the daemon');
});
