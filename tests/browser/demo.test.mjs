#!/usr/bin/env node
// End-to-end test of the notify demo page in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core — no downloaded browser).
//
//   node tests/browser/demo.test.mjs --demo /path/to/notify-demo [--screenshot out.png]
//                                    [--demo-arg ARG]... [--timeout SECONDS] [--headed]
//                                    [--redis-server /path/to/redis-server]
//                                    [--openssl /path/to/openssl]
//
// Starts the demo with `--port 0` (plus any --demo-arg), waits for `listening on http(s)://ADDR:PORT`
// on its stdout, opens /?user=alice in two tabs (and /?user=bob in a separate browser context),
// publishes notifications with fetch and checks that the page reacts; then the same page over
// WebSocket (/?user=alice&transport=ws, and bob's) with the typing indicator between them.
// With --redis-server it starts one on a free loopback port and runs the demo with
// `--store redis://...`, and at the end stops Redis and checks that an EventSource opened
// meanwhile keeps reconnecting (the demo ends its stream instead of answering an error status,
// which would make the browser give up) and gets its `init` once Redis is back.
// With --openssl it makes a certificate for 127.0.0.1 and runs the demo with --tls-cert and
// --tls-key: the page, its EventSource and its WebSocket over https:// and wss://, the bytes
// written by notify inside the TLS session (Chromium told to accept the certificate).
// Prints one line per check and a final `N passed, M failed`; exit code 0 only when everything
// passed. The demo process is always killed (by PID), and the whole run is bounded by a timeout
// (100 s by default).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { makeCertificate } from '../support/certificate.mjs';
import { RedisServer } from '../support/redis-server.mjs';

// ---- arguments --------------------------------------------------------------------------------

function usage(msg) {
  if (msg) console.error(`error: ${msg}`);
  console.error('usage: node demo.test.mjs --demo PATH [--screenshot PNG] [--demo-arg ARG]... ' +
                '[--timeout SECONDS] [--chromium PATH] [--headed] [--redis-server PATH] [--openssl PATH]');
  process.exit(2);
}

const opts = { demo: null, screenshot: null, demoArgs: [], timeout: 100, chromium: '/usr/bin/chromium', headed: false, redisServer: null, openssl: null };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--demo') opts.demo = val();
    else if (a === '--screenshot') opts.screenshot = val();
    else if (a === '--demo-arg') opts.demoArgs.push(val());
    else if (a === '--timeout') opts.timeout = Number(val());
    else if (a === '--chromium') opts.chromium = val();
    else if (a === '--headed') opts.headed = true;
    else if (a === '--redis-server') opts.redisServer = val();
    else if (a === '--openssl') opts.openssl = val();
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!opts.demo) usage('--demo is required');
  if (!(opts.timeout > 0)) usage('--timeout must be a positive number of seconds');
}

// ---- bookkeeping ------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
let demo = null;        // ChildProcess
let demoExited = false;
let quickDemo = null;   // a second demo with one-second heartbeats, for one check
let browser = null;
const demoLog = [];     // last lines of the demo's stdout/stderr, shown on failure
const pageErrors = [];  // uncaught exceptions in the pages

function remember(line) {
  demoLog.push(line);
  if (demoLog.length > 40) demoLog.shift();
}

// The demo runs in its own process group (its PID is the group id), so a wrapper script and
// its children go away together.
function killDemo(signal = 'SIGTERM') {
  if (!demo || !demo.pid) return;
  try {
    process.kill(-demo.pid, signal);
  } catch {
    if (!demoExited) try { process.kill(demo.pid, signal); } catch { /* already gone */ }
  }
}

async function stopDemo() {
  if (!demo || !demo.pid) return;
  if (demoExited) { killDemo('SIGKILL'); return; } // leftovers of its group, if any
  const exited = new Promise((resolve) => demo.once('exit', resolve));
  killDemo('SIGTERM');
  const t = setTimeout(() => killDemo('SIGKILL'), 3000);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 4000))]);
  clearTimeout(t);
  killDemo('SIGKILL');
}

// ---- redis-server (with --redis-server) --------------------------------------------------------

const redis = opts.redisServer ? new RedisServer(opts.redisServer, { onLine: (l) => remember(`[redis] ${l}`) }) : null;

// Last resort: whatever happens, never leave the demo (or Redis) running.
process.on('exit', () => { killDemo('SIGKILL'); killQuickDemo(); redis?.kill(); });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\ninterrupted (${sig})`);
    killDemo('SIGKILL');
    killQuickDemo();
    redis?.kill();
    process.exit(130);
  });
}

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  clearTimeout(globalTimer);
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  await stopDemo();
  killQuickDemo();
  redis?.kill();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

const globalTimer = setTimeout(() => {
  console.error(`FAIL: test run exceeded the ${opts.timeout} s timeout`);
  failed++;
  dumpDemoLog();
  finish(1);
}, opts.timeout * 1000);

function dumpDemoLog() {
  if (demoLog.length) {
    console.error('--- last demo output ---');
    for (const l of demoLog) console.error(`  ${l}`);
  }
  if (pageErrors.length) {
    console.error('--- page errors ---');
    for (const e of pageErrors) console.error(`  ${e}`);
  }
}

class CheckFailure extends Error {}

/** Runs one named check; a failure stops the run (later checks depend on earlier ones). */
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    if (finishing) return;
    passed++;
    console.log(`ok   - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    if (finishing) throw new CheckFailure(name); // the global timeout already reported
    failed++;
    const msg = err instanceof CheckFailure ? err.message : (err && err.stack) || String(err);
    console.error(`FAIL - ${name}\n       ${msg.split('\n').join('\n       ')}`);
    throw new CheckFailure(name);
  }
}

function assert(cond, msg) {
  if (!cond) throw new CheckFailure(msg);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the demo server --------------------------------------------------------------------------

function startDemo() {
  return new Promise((resolve, reject) => {
    const args = ['--port', '0', ...opts.demoArgs];
    try {
      demo = spawn(opts.demo, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      reject(new CheckFailure(`cannot start ${opts.demo}: ${err.message}`));
      return;
    }
    let found = false;
    demo.on('error', (err) => {
      demoExited = true;
      reject(new CheckFailure(`cannot start ${opts.demo}: ${err.message}`));
    });
    demo.on('exit', (code, signal) => {
      demoExited = true;
      if (!found) reject(new CheckFailure(`${opts.demo} exited (code ${code}, signal ${signal}) before printing "listening on http://..."`));
      else if (!finishing) console.error(`note: demo exited early (code ${code}, signal ${signal})`);
    });
    createInterface({ input: demo.stderr }).on('line', (l) => remember(`[stderr] ${l}`));
    createInterface({ input: demo.stdout }).on('line', (l) => {
      remember(l);
      const m = !found && /listening on (https?:\/\/\S+)/.exec(l);
      if (!m) return;
      found = true;
      const u = new URL(m[1]);
      // A wildcard bind address is not something to connect to.
      if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
      if (u.hostname === '[::]') u.hostname = '[::1]';
      resolve(u.origin);
    });
  });
}

// Another demo with the same options and heartbeats every second (its own process group).
// Resolves with its origin once it listens.
function startQuickDemo() {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.demo, ['--port', '0', ...opts.demoArgs, '--heartbeat', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    quickDemo = child;
    child.on('error', (err) => reject(new CheckFailure(`cannot start a second demo: ${err.message}`)));
    child.on('exit', (code, signal) => reject(new CheckFailure(`the second demo exited (code ${code}, signal ${signal})`)));
    createInterface({ input: child.stderr }).on('line', (l) => remember(`[quick stderr] ${l}`));
    createInterface({ input: child.stdout }).on('line', (l) => {
      remember(`[quick] ${l}`);
      const m = /listening on (https?:\/\/\S+)/.exec(l);
      if (m) resolve(new URL(m[1]).origin.replace('0.0.0.0', '127.0.0.1'));
    });
  });
}

function killQuickDemo() {
  if (!quickDemo || quickDemo.exitCode !== null || quickDemo.signalCode !== null) return;
  try { process.kill(-quickDemo.pid, 'SIGCONT'); process.kill(-quickDemo.pid, 'SIGKILL'); } catch { /* gone */ }
}

// ---- helpers on pages -------------------------------------------------------------------------

async function waitIn(page, label, description, fn, arg, timeout = 10000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => ({
      conn: document.getElementById('conn-state')?.dataset.state,
      badge: document.getElementById('unread-badge')?.hidden ? '(hidden)' : document.getElementById('unread-badge')?.textContent,
      toasts: [...document.querySelectorAll('.toast')].map((t) => t.textContent),
      // What the client holds, to tell an event that never came from one that was not shown.
      client: window.notifyClient ? {
        state: window.notifyClient.state, leader: window.notifyClient.leader,
        transport: window.notifyClient.transport, lastEventId: window.notifyClient.lastEventId,
        unread: window.notifyClient.unreadCount,
        newest: window.notifyClient.notifications.slice(0, 3).map((n) => `${n.id} ${n.title}`),
      } : null,
    })).catch(() => ({}));
    throw new CheckFailure(`${label}: ${description} (waited ${timeout} ms; page state ${JSON.stringify(state)})`);
  }
}

const badgeIs = ([n]) => {
  const b = document.getElementById('unread-badge');
  if (!b) return false;
  const visible = !b.hidden && getComputedStyle(b).display !== 'none';
  return n === 0 ? (!visible || b.textContent.trim() === '0') : visible && b.textContent.trim() === String(n);
};
const hasToast = ([title]) =>
  [...document.querySelectorAll('.toast')].some((t) => t.textContent.includes(title) && t.getClientRects().length > 0);
const isOpen = () => document.getElementById('conn-state')?.dataset.state === 'open';

async function badgeText(page) {
  return page.evaluate(() => {
    const b = document.getElementById('unread-badge');
    return b ? (b.hidden ? 'hidden' : b.textContent.trim()) : 'missing';
  });
}

function watchPage(page, label) {
  page.on('pageerror', (err) => pageErrors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') remember(`[${label} console] ${msg.text()}`);
  });
}

// ---- the test ---------------------------------------------------------------------------------

async function publish(base, notification) {
  const res = await fetch(`${base}/api/notifications`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(notification),
  });
  const text = await res.text();
  assert(res.status === 202 || res.status === 200 || res.status === 201,
    `POST /api/notifications answered ${res.status}: ${text}`);
  let body;
  try { body = JSON.parse(text); } catch { throw new CheckFailure(`POST /api/notifications: body is not JSON: ${text}`); }
  return body;
}

async function main() {
  let base;
  let tab1;
  let tab2;
  let bobPage;
  const helloTitle = 'Hello from the test';
  const bobTitle = `For bob only ${Date.now()}`;
  let helloId;

  if (opts.redisServer) {
    await check('redis-server starts (the demo keeps its notifications there)', async () => {
      await redis.start();
      opts.demoArgs.push('--store', redis.url);
    });
  }

  if (opts.openssl) {
    await check('a certificate for 127.0.0.1 is made (the demo serves https:// and wss://)', async () => {
      const { cert, key } = makeCertificate(opts.openssl);
      opts.demoArgs.push('--tls-cert', cert, '--tls-key', key);
      // This process's own requests (fetch) accept the certificate made above.
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    });
  }

  await check('demo server starts and prints its address', async () => {
    base = await startDemo();
    const scheme = opts.openssl ? 'https:' : 'http:';
    assert(new URL(base).protocol === scheme, `the demo listens on ${base}, expected ${scheme}//`);
    const res = await fetch(`${base}/`);
    assert(res.ok, `GET / answered ${res.status}`);
    const ct = res.headers.get('content-type') || '';
    assert(/text\/html/.test(ct), `GET / content-type is "${ct}", expected text/html`);
    for (const [p, type] of [['/app.js', /javascript/], ['/notify-client.js', /javascript/], ['/style.css', /text\/css/]]) {
      const r = await fetch(base + p);
      assert(r.ok, `GET ${p} answered ${r.status}`);
      const c = r.headers.get('content-type') || '';
      assert(type.test(c), `GET ${p} content-type is "${c}"`);
      await r.arrayBuffer();
    }
  });

  await check('two alice tabs (and one bob tab) connect and receive init', async () => {
    try {
      browser = await chromium.launch({
        executablePath: opts.chromium,
        headless: !opts.headed,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync',
               ...(opts.openssl ? ['--ignore-certificate-errors'] : [])]
          .filter((a) => !(opts.headed && a === '--headless')),
      });
    } catch (err) {
      throw new CheckFailure(`cannot launch ${opts.chromium}: ${err.message.split('\n')[0]}`);
    }
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    tab1 = await ctx.newPage();
    tab2 = await ctx.newPage();
    const bobCtx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    bobPage = await bobCtx.newPage();
    watchPage(tab1, 'alice tab 1');
    watchPage(tab2, 'alice tab 2');
    watchPage(bobPage, 'bob tab');
    await Promise.all([
      tab1.goto(`${base}/?user=alice`),
      tab2.goto(`${base}/?user=alice`),
      bobPage.goto(`${base}/?user=bob`),
    ]);
    await Promise.all([
      waitIn(tab1, 'alice tab 1', '#conn-state never got data-state="open"', isOpen),
      waitIn(tab2, 'alice tab 2', '#conn-state never got data-state="open"', isOpen),
      waitIn(bobPage, 'bob tab', '#conn-state never got data-state="open"', isOpen),
    ]);
    for (const [p, label] of [[tab1, 'alice tab 1'], [tab2, 'alice tab 2']]) {
      const b = await badgeText(p);
      assert(b === 'hidden' || b === '0', `${label}: fresh user should have no unread badge, got "${b}"`);
    }
  });

  await check('a notification for alice shows a toast and badge 1 in both tabs', async () => {
    const out = await publish(base, {
      userId: 'alice', type: 'comment', title: helloTitle,
      body: 'Bob commented on your post: "Looks great!"', actorId: 'bob',
    });
    helloId = out.id ?? (out.ids && out.ids[0]);
    assert(helloId != null, `POST /api/notifications returned no id: ${JSON.stringify(out)}`);
    await Promise.all([tab1, tab2].map((p, i) => waitIn(p, `alice tab ${i + 1}`,
      `no visible .toast containing "${helloTitle}"`, hasToast, [helloTitle])));
    await Promise.all([tab1, tab2].map((p, i) => waitIn(p, `alice tab ${i + 1}`,
      '#unread-badge does not show 1', badgeIs, [1])));
  });

  await check("a notification for bob reaches bob's tab but not alice's tabs", async () => {
    await publish(base, { userId: 'bob', type: 'mention', title: bobTitle, body: 'only bob may see this' });
    await waitIn(bobPage, 'bob tab', `no visible .toast containing "${bobTitle}"`, hasToast, [bobTitle]);
    await sleep(500); // give a misrouted event time to show up
    for (const [p, label] of [[tab1, 'alice tab 1'], [tab2, 'alice tab 2']]) {
      const leaked = await p.evaluate((t) => document.body.textContent.includes(t) ||
        (window.notifyClient ? window.notifyClient.notifications.some((n) => n.title === t) : false), bobTitle);
      assert(!leaked, `${label}: bob's notification "${bobTitle}" is visible to alice`);
      const b = await badgeText(p);
      assert(b === '1', `${label}: badge should still be 1 after bob's notification, got "${b}"`);
    }
  });

  await check('marking it read in tab 1 (click) clears the badge in tab 2', async () => {
    await tab1.click('#bell');
    await tab1.waitForSelector('#panel:not([hidden])', { timeout: 5000 });
    const item = tab1.locator('#notif-list li', { hasText: helloTitle }).first();
    await item.waitFor({ state: 'visible', timeout: 5000 });
    await item.locator('button').first().click();
    await waitIn(tab2, 'alice tab 2', '#unread-badge did not drop to hidden/0 after the read in tab 1', badgeIs, [0]);
    await waitIn(tab1, 'alice tab 1', '#unread-badge did not drop to hidden/0 after clicking the notification', badgeIs, [0]);
    const stillUnread = await tab1.evaluate((t) => [...document.querySelectorAll('#notif-list li.unread')]
      .some((li) => li.textContent.includes(t)), helloTitle);
    assert(!stillUnread, 'alice tab 1: the clicked notification is still shown as unread');
  });

  if (opts.screenshot) {
    await check(`screenshot saved to ${opts.screenshot}`, async () => {
      // A few more notifications so the panel has some variety, then a live toast.
      await publish(base, { userId: 'alice', type: 'order', title: 'Order #1042 has shipped',
        body: 'Your package is on its way and should arrive Thursday.', actionUrl: '/orders/1042' });
      await publish(base, { broadcast: true, type: 'system', title: 'Scheduled maintenance tonight',
        body: 'The service will be read-only from 02:00 to 02:30 UTC.' });
      // Dismiss their toasts with the close button, so the picture shows a single toast.
      for (const t of ['Order #1042 has shipped', 'Scheduled maintenance tonight']) {
        await waitIn(tab1, 'alice tab 1', `no toast for "${t}"`, hasToast, [t]);
        // On a loaded machine the toast may time out and go while the click waits for it
        // to stand still: gone is what the click was for.
        const close = tab1.locator('.toast', { hasText: t }).locator('.toast-close');
        await close.click({ timeout: 5000 }).catch(async (err) => { if (await close.count() > 0) throw err; });
      }
      await waitIn(tab1, 'alice tab 1', 'toasts did not go away after clicking their close button',
        () => document.querySelectorAll('.toast').length === 0, undefined, 3000);
      const mention = 'Carol mentioned you in #design';
      await publish(base, { userId: 'alice', type: 'mention', title: mention,
        body: '“@alice can you review the new onboarding flow?”', actorId: 'carol', actionUrl: '/threads/12' });
      await waitIn(tab1, 'alice tab 1', `no toast for "${mention}"`, hasToast, [mention]);
      if (await tab1.locator('#panel').isHidden()) await tab1.click('#bell');
      await tab1.waitForSelector('#panel:not([hidden])', { timeout: 5000 });
      await tab1.mouse.move(640, 500); // no hover effects in the picture
      await sleep(450); // let entry animations settle
      mkdirSync(path.dirname(path.resolve(opts.screenshot)), { recursive: true });
      await tab1.screenshot({ path: opts.screenshot });
    });
  }

  // ---- WebSocket mode (?transport=ws) ----------------------------------------------------------
  let aliceWs;
  let bobWs;
  const wsTitle = `Over the WebSocket ${Date.now()}`;
  const readPosts = []; // POST .../read requests of the WS pages (there should be none)

  await check('?transport=ws: alice and bob pages connect over WebSocket', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    aliceWs = await ctx.newPage();
    bobWs = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    watchPage(aliceWs, 'alice ws page');
    watchPage(bobWs, 'bob ws page');
    const sockets = [];
    for (const p of [aliceWs, bobWs]) {
      p.on('websocket', (ws) => sockets.push(ws.url()));
      p.on('request', (r) => { if (r.method() === 'POST' && /\/read(-all)?(\?|$)/.test(new URL(r.url()).pathname + '?')) readPosts.push(r.url()); });
    }
    await Promise.all([
      aliceWs.goto(`${base}/?user=alice&transport=ws`),
      bobWs.goto(`${base}/?user=bob&transport=ws`),
    ]);
    await Promise.all([
      waitIn(aliceWs, 'alice ws page', '#conn-state never got data-state="open"', isOpen),
      waitIn(bobWs, 'bob ws page', '#conn-state never got data-state="open"', isOpen),
    ]);
    for (const [p, label] of [[aliceWs, 'alice ws page'], [bobWs, 'bob ws page']]) {
      const state = await p.evaluate(() => ({
        transport: window.notifyClient && window.notifyClient.transport,
        checked: document.querySelector('#transport-switch input:checked')?.value,
        endpoint: document.getElementById('conn-endpoint')?.textContent,
      }));
      assert(state.transport === 'ws', `${label}: the client uses "${state.transport}", expected ws`);
      assert(state.checked === 'ws', `${label}: the switch shows "${state.checked}", expected ws`);
      assert(state.endpoint === '/api/notifications/ws', `${label}: the page names "${state.endpoint}"`);
    }
    const scheme = opts.openssl ? 'wss' : 'ws';  // the page's scheme, mapped
    assert(sockets.length >= 2 &&
           sockets.every((u) => u.startsWith(`${scheme}://`) && /\/api\/notifications\/ws\?user=/.test(u)),
      `WebSocket URLs opened: ${JSON.stringify(sockets)}, expected ${scheme}://`);
  });

  await check('?transport=ws: a notification for alice shows a toast, and clicking it marks it read over the socket', async () => {
    const before = Number(await badgeText(aliceWs)) || 0;
    await publish(base, { userId: 'alice', type: 'alert', title: wsTitle, body: 'delivered as a WebSocket text frame' });
    await waitIn(aliceWs, 'alice ws page', `no visible .toast containing "${wsTitle}"`, hasToast, [wsTitle]);
    await waitIn(aliceWs, 'alice ws page', `#unread-badge does not show ${before + 1}`, badgeIs, [before + 1]);
    await aliceWs.click('#bell');
    await aliceWs.waitForSelector('#panel:not([hidden])', { timeout: 5000 });
    const item = aliceWs.locator('#notif-list li', { hasText: wsTitle }).first();
    await item.waitFor({ state: 'visible', timeout: 5000 });
    await item.locator('button').first().click();
    await waitIn(aliceWs, 'alice ws page', `#unread-badge did not drop to ${before}`, badgeIs, [before]);
    // The SSE tabs of alice get the notification:read the socket caused.
    await waitIn(tab1, 'alice tab 1', `#unread-badge did not drop to ${before} after the read over the WebSocket`, badgeIs, [before]);
    assert(readPosts.length === 0, `the WS page marked it read over HTTP: ${readPosts.join(', ')}`);
    await aliceWs.keyboard.press('Escape');
  });

  await check('?transport=ws: typing in alice\'s chat box shows "alice is typing…" on bob\'s page', async () => {
    const visibleTyping = ([who]) => {
      const box = document.getElementById('typing-indicator');
      return !!box && !box.hidden && box.getClientRects().length > 0 &&
        document.getElementById('typing-text').textContent.includes(`${who} is typing`);
    };
    await aliceWs.fill('#chat-to', 'bob');
    await aliceWs.locator('#chat-input').pressSequentially('Are we still on for', { delay: 30 });
    await waitIn(bobWs, 'bob ws page', 'no visible "alice is typing…" indicator', visibleTyping, ['alice']);
    const aliceSees = await aliceWs.evaluate(() => !document.getElementById('typing-indicator').hidden);
    assert(!aliceSees, 'alice sees a typing indicator for her own typing');
    // Sending the message delivers it as a notification, and the indicator goes away.
    await aliceWs.click('#chat-send');
    await waitIn(bobWs, 'bob ws page', 'no toast with alice\'s message', hasToast, ['Are we still on for']);
    await waitIn(bobWs, 'bob ws page', 'the typing indicator did not go away after the message arrived',
      () => document.getElementById('typing-indicator').hidden);
  });

  for (const [query, kind] of [['', 'SSE'], ['&transport=ws', 'WS']]) {
    await check(`${kind}: two tabs of dana share one connection, and the second takes over when the first closes, missing nothing`, async () => {
      const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const opened = []; // the connection URLs the tabs opened, in order
      const track = (p) => {
        p.on('request', (r) => { if (/\/api\/notifications\/stream\?/.test(r.url())) opened.push(r.url()); });
        p.on('websocket', (ws) => opened.push(ws.url()));
      };
      const pages = [await ctx.newPage(), await ctx.newPage()];
      pages.forEach((p, i) => { watchPage(p, `dana ${kind} tab ${i + 1}`); track(p); });
      await pages[0].goto(`${base}/?user=dana${query}`);
      await waitIn(pages[0], 'dana tab 1', '#conn-state never got data-state="open"', isOpen);
      await pages[1].goto(`${base}/?user=dana${query}`);
      await waitIn(pages[1], 'dana tab 2', '#conn-state never got data-state="open" (from the leader\'s snapshot)', isOpen);
      const leaders = await Promise.all(pages.map((p) => p.evaluate(() => window.notifyClient.leader)));
      assert(leaders[0] === true && leaders[1] === false, `leaders: ${JSON.stringify(leaders)}`);
      await sleep(300);
      assert(opened.length === 1, `the two tabs opened ${opened.length} connections: ${JSON.stringify(opened)}`);

      const before = Number(await badgeText(pages[0])) || 0; // earlier checks broadcast to everyone
      assert((Number(await badgeText(pages[1])) || 0) === before, 'the tabs start with different badges');
      const first = `Shared ${kind} ${Date.now()}`;
      await publish(base, { userId: 'dana', type: 'comment', title: first });
      for (const [i, p] of pages.entries()) {
        await waitIn(p, `dana tab ${i + 1}`, `no visible .toast containing "${first}"`, hasToast, [first]);
        await waitIn(p, `dana tab ${i + 1}`, `#unread-badge does not show ${before + 1}`, badgeIs, [before + 1]);
      }

      if (kind === 'WS' && bobWs) {
        // The follower has no socket: its typing goes out on the leader's.
        await pages[1].fill('#chat-to', 'bob');
        await pages[1].locator('#chat-input').pressSequentially('Hello from the second tab', { delay: 30 });
        await waitIn(bobWs, 'bob ws page', 'no visible "dana is typing…" indicator from the follower tab', ([who]) => {
          const box = document.getElementById('typing-indicator');
          return !!box && !box.hidden && document.getElementById('typing-text').textContent.includes(`${who} is typing`);
        }, ['dana']);

        // The server's error answers one message: the tab that sent it hears of it, the other not.
        for (const p of pages) {
          await p.evaluate(() => {
            window.errorsHeard = [];
            window.notifyClient.addEventListener('error', (e) => window.errorsHeard.push(e.detail.message));
          });
        }
        const heard = () => Promise.all(pages.map((p) => p.evaluate(() => window.errorsHeard.slice())));
        for (const [sender, expected] of [[1, [0, 1]], [0, [1, 1]]]) {
          const sent = await pages[sender].evaluate((to) => window.notifyClient.sendTyping(to), 'x'.repeat(300));
          assert(sent, `tab ${sender + 1} did not send its typing message`);
          await waitIn(pages[sender], `dana tab ${sender + 1}`, 'no error answering the typing message it sent',
            ([n]) => window.errorsHeard.length === n, [expected[sender]]);
          await sleep(500);
          const got = await heard();
          assert(got.every((errors, i) => errors.length === expected[i]),
            `after tab ${sender + 1}'s refused message the tabs heard ${JSON.stringify(got)}`);
          assert(got[sender].at(-1).includes('to: must be a user id'), `tab ${sender + 1} heard ${got[sender].at(-1)}`);
        }
      }

      // The leader goes; what is published before the other tab connects comes on its connection.
      await pages[0].close();
      const during = `During the hand-over ${kind} ${Date.now()}`;
      await publish(base, { userId: 'dana', type: 'comment', title: during });
      await waitIn(pages[1], 'dana tab 2', `no visible .toast containing "${during}"`, hasToast, [during], 15000);
      await waitIn(pages[1], 'dana tab 2', `#unread-badge does not show ${before + 2}`, badgeIs, [before + 2]);
      assert(await pages[1].evaluate(() => window.notifyClient.leader), 'tab 2 did not become the leader');
      assert(opened.length === 2 && /[?&]lastEventId=/.test(opened[1]),
        `after the hand-over the connections were ${JSON.stringify(opened)} (the second must resume with lastEventId)`);
      await ctx.close();
    });
  }

  await check('ending carol\'s sessions: her two SSE tabs (one connection) and WS tab say so, do not reconnect, and come back on a click', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const pages = [[await ctx.newPage(), 'carol sse tab 1', ''], [await ctx.newPage(), 'carol sse tab 2', ''],
                   [await ctx.newPage(), 'carol ws tab', '&transport=ws']];
    const opened = []; // the connections the three tabs opened
    for (const [p, label, query] of pages) {
      watchPage(p, label);
      p.on('request', (r) => { if (/\/api\/notifications\/stream\?/.test(r.url())) opened.push(label); });
      p.on('websocket', () => opened.push(label));
      await p.goto(`${base}/?user=carol${query}`);
      await waitIn(p, label, '#conn-state never got data-state="open"', isOpen);
    }
    await sleep(300);
    assert(opened.length === 2, `carol's tabs opened ${JSON.stringify(opened)}, expected one SSE and one WS connection`);

    const res = await fetch(`${base}/api/sessions/end?user=carol`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"reason":"logged_out"}',
    });
    const text = await res.text();
    assert(res.status === 200, `POST /api/sessions/end answered ${res.status}: ${text}`);
    const signedOut = () => document.getElementById('conn-state')?.dataset.state === 'closed' &&
      document.getElementById('conn-label')?.textContent.includes('Signed out (logged_out)');
    for (const [p, label] of pages) await waitIn(p, label, '#conn-state does not say "Signed out (logged_out)"', signedOut);
    // The first reconnect of a dropped connection would come after 0.7-1.3 s; a follower tab
    // that took the lock over would connect at once.
    await sleep(2500);
    assert(opened.length === 2, `after the end carol's tabs opened ${JSON.stringify(opened.slice(2))}`);
    for (const [p, label] of pages)
      assert(await p.evaluate(() => window.notifyClient.state) === 'closed', `${label}: the client is not closed`);
    // bob, whose session goes on, still gets his notifications.
    const stillTitle = `Still here ${Date.now()}`;
    await publish(base, { userId: 'bob', type: 'system', title: stillTitle });
    await waitIn(bobPage, 'bob tab', `no visible .toast containing "${stillTitle}"`, hasToast, [stillTitle]);

    for (const [p, label] of pages) {
      await p.click('#conn-state');
      await waitIn(p, label, '#conn-state never got data-state="open" after the click', isOpen);
    }
    await sleep(300);
    assert(opened.length === 4, `after the clicks carol's tabs opened ${JSON.stringify(opened.slice(2))}, expected one SSE and one WS connection`);
    await ctx.close();
  });

  if (opts.redisServer) {
    await check('with Redis away, an EventSource keeps reconnecting, the page\'s client backs off, and both get their init once Redis is back', async () => {
      await redis.stop();
      // The demo page's client, from its first attempt: each is answered and ends at once.
      const client = await (await browser.newContext()).newPage();
      watchPage(client, 'erin page');
      const attempts = [];
      client.on('request', (r) => { if (r.url().includes('/api/notifications/stream')) attempts.push(Date.now()); });
      const clientFrom = Date.now();
      await client.goto(`${base}/?user=erin`);
      const page = await (await browser.newContext()).newPage();
      watchPage(page, 'outage page');
      await page.goto(`${base}/healthz`); // any page of the demo's origin
      await page.evaluate(() => {
        window.outage = { log: [], es: new EventSource('/api/notifications/stream?user=dave') };
        const { log, es } = window.outage;
        es.addEventListener('open', () => log.push('open'));
        es.addEventListener('error', () => log.push(`error:${es.readyState}`));
        es.addEventListener('init', () => log.push('init'));
      });
      // Two attempts ended, each followed by another (readyState 0, CONNECTING), none closed.
      await waitIn(page, 'outage page', 'the EventSource did not retry twice while Redis was away',
        () => window.outage.log.filter((e) => e === 'error:0').length >= 2, undefined, 15000);
      let log = await page.evaluate(() => window.outage.log);
      assert(!log.includes('init'), `an init came while Redis was away: ${log.join(', ')}`);
      assert(!log.includes('error:2'), `the EventSource gave up (closed): ${log.join(', ')}`);
      // Each attempt was answered: a stream that opened (200, text/event-stream) and ended,
      // not a connection dropped without a response.
      assert(log.filter((e) => e === 'open').length >= 2, `attempts without an answer: ${log.join(', ')}`);
      // The client backs off although each attempt opened (1, 2, 4 s, ± 30 %): at most 4
      // attempts in the 6 s from its first. Were it to start over on every open, 1 s apart, 5
      // or more. (From the first attempt, not from the page's load: on a loaded machine the
      // load alone took seconds.)
      assert(attempts.length >= 1, `the page's client made no attempt in ${Date.now() - clientFrom} ms`);
      await sleep(Math.max(0, attempts[0] + 6000 - Date.now()));
      const early = attempts.filter((t) => t - attempts[0] <= 6000).length;
      assert(early >= 2 && early <= 4, `the page's client made ${early} attempts in the 6 s from its first`);
      await redis.start();
      await waitIn(page, 'outage page', 'no init after Redis came back',
        () => window.outage.log.includes('init') && window.outage.es.readyState === 1, undefined, 15000);
      await waitIn(client, 'erin page', '#conn-state never got data-state="open" after Redis came back', isOpen,
        undefined, 20000);
      log = await page.evaluate(() => window.outage.log);
      assert(!log.includes('error:2'), `the EventSource closed: ${log.join(', ')}`);
      await page.evaluate(() => window.outage.es.close());
    });
  }

  await check('a page\'s client whose connection goes silent (the server stopped) replaces it, and resumes once the server answers', async () => {
    // Its own demo, with heartbeats every second: the client's limit can then be short.
    const quick = await startQuickDemo();
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    watchPage(page, 'silent page');
    await page.goto(`${quick}/healthz`); // any page of the demo's origin
    await page.evaluate(async () => {
      const { NotifyClient } = await import('/notify-client.js');
      window.silent = { states: [], got: [] };
      // The demo here sends a heartbeat after each idle second: 4 s of silence means trouble.
      window.silent.client = new NotifyClient({
        user: 'frank', heartbeatTimeoutMs: 4000,
        onStateChange: (state) => window.silent.states.push(state),
        onNotification: (n) => window.silent.got.push(n.title),
      });
    });
    await waitIn(page, 'silent page', 'the client never opened', () => window.silent.client.state === 'open');
    await publish(quick, { userId: 'frank', type: 'comment', title: 'before the silence' });
    await waitIn(page, 'silent page', 'no notification before the silence',
      () => window.silent.got.includes('before the silence'));
    const before = await page.evaluate(() => window.silent.states.length);
    // The process stops; its sockets stay open and say nothing, as over a network that went
    // away without a word.
    process.kill(quickDemo.pid, 'SIGSTOP');
    try {
      await waitIn(page, 'silent page', 'the client kept a silent connection',
        (n) => window.silent.states.slice(n).includes('reconnecting'), before, 15000);
    } finally {
      process.kill(quickDemo.pid, 'SIGCONT');
    }
    await waitIn(page, 'silent page', 'the client did not open again once the server answered',
      () => window.silent.client.state === 'open', undefined, 20000);
    await publish(quick, { userId: 'frank', type: 'comment', title: 'after the silence' });
    await waitIn(page, 'silent page', 'no notification after the silence',
      () => window.silent.got.includes('after the silence'));
    const got = await page.evaluate(() => window.silent.got);
    assert(got.length === 2, `notifications: ${JSON.stringify(got)} (one of them twice?)`);
    await page.evaluate(() => window.silent.client.close());
    await ctx.close();
    killQuickDemo();
  });

  await check('no uncaught JavaScript errors in the pages', async () => {
    assert(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
  });
}

main().then(
  () => finish(failed ? 1 : 0),
  (err) => {
    if (!(err instanceof CheckFailure)) {
      failed++;
      console.error(`FAIL - unexpected error: ${(err && err.stack) || err}`);
    }
    dumpDemoLog();
    finish(1);
  },
);
