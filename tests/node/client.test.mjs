#!/usr/bin/env node
// The state logic of the browser client (examples/demo/web/notify-client.js) under Node, with
// stand-ins for EventSource, WebSocket, BroadcastChannel, navigator.locks and fetch.
//
//   node tests/node/client.test.mjs --client /path/to/notify-client.js
//
// The browser suite (tests/browser) runs the client in Chromium against the demo; these cases
// need orderings a real browser does not let a test choose (which of two tabs' messages comes
// first, a request that fails after the stream confirmed it), or a host event the demo does
// not send. Prints one line per check and `N passed, M failed`; exit code 0 only when all
// passed. Nothing here opens a socket.

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const at = argv.indexOf('--client');
if (at < 0 || !argv[at + 1]) {
  console.error('usage: node client.test.mjs --client PATH/notify-client.js');
  process.exit(2);
}

// ---- stand-ins for the browser --------------------------------------------------------------

class FakeEventSource extends EventTarget {
  static opened = [];
  constructor(url) {
    super();
    this.url = url;
    this.closed = false;
    FakeEventSource.opened.push(this);
  }
  close() { this.closed = true; }
  // A named event from the server; `id` as its `id:` line.
  emit(name, data, id) {
    const ev = new Event(name);
    ev.data = JSON.stringify(data);
    ev.lastEventId = id == null ? '' : String(id);
    this.dispatchEvent(ev);
  }
}

class FakeWebSocket extends EventTarget {
  static opened = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 1; // open at once
    this.sent = [];
    FakeWebSocket.opened.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  message(obj) {
    const ev = new Event('message');
    ev.data = JSON.stringify(obj);
    this.dispatchEvent(ev);
  }
}

// Tabs of one origin: a channel delivers to the others, later (as a task), never to the sender.
const channels = new Map();
class FakeBroadcastChannel {
  constructor(name) {
    this.name = name;
    this.onmessage = null;
    if (!channels.has(name)) channels.set(name, new Set());
    channels.get(name).add(this);
  }
  postMessage(m) {
    const data = structuredClone(m);
    for (const c of channels.get(this.name)) {
      if (c !== this) setTimeout(() => c.onmessage && c.onmessage({ data }), 0);
    }
  }
  close() { channels.get(this.name).delete(this); }
}

// One exclusive lock per name, granted in order; a holder keeps it until its promise settles.
const locks = new Map();
const fakeLocks = {
  request(name, options, callback) {
    return new Promise((resolve, reject) => {
      const state = locks.get(name) ?? { held: false, queue: [] };
      locks.set(name, state);
      const entry = { callback, resolve, reject };
      options?.signal?.addEventListener('abort', () => {
        const i = state.queue.indexOf(entry);
        if (i >= 0) { state.queue.splice(i, 1); reject(new Error('AbortError')); }
      });
      state.queue.push(entry);
      grant(name);
    });
  },
};
function grant(name) {
  const state = locks.get(name);
  if (state.held || state.queue.length === 0) return;
  const entry = state.queue.shift();
  state.held = true;
  setTimeout(async () => {
    try { entry.resolve(await entry.callback({ name })); } catch (err) { entry.reject(err); }
    state.held = false;
    grant(name);
  }, 0);
}

// fetch: every call is recorded; `fetchAnswer` says how it is answered.
const fetched = [];
let fetchAnswer = () => ({ status: 200, body: { ids: [], unreadCount: 0 } });
globalThis.fetch = async (url, init) => {
  fetched.push({ url: String(url), method: init?.method ?? 'GET' });
  const { status, body } = await fetchAnswer(String(url));
  return { ok: status >= 200 && status < 300, status, json: async () => body };
};
globalThis.EventSource = FakeEventSource;
globalThis.WebSocket = FakeWebSocket;
globalThis.BroadcastChannel = FakeBroadcastChannel;
Object.defineProperty(globalThis, 'navigator', { value: { locks: fakeLocks }, configurable: true });
const reported = [];
globalThis.reportError = (err) => reported.push(err);

const dir = mkdtempSync(path.join(tmpdir(), 'notify-client-test-'));
const copy = path.join(dir, 'notify-client.mjs'); // an ES module whatever package.json says
copyFileSync(argv[at + 1], copy);
const { NotifyClient, backoffDelay } = await import(pathToFileURL(copy).href);
rmSync(dir, { recursive: true, force: true });

// ---- checks -----------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}\n     ${err && err.message ? err.message : err}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
const settle = (ms = 5) => new Promise((r) => setTimeout(r, ms));

let nextId = 1796000000000000n; // ids of the demo's size: beyond 2^53
function notification(extra = {}) {
  const id = String(nextId++);
  return { id, userId: 'u', type: 'comment', title: `n${id}`, readAt: null,
           createdAt: new Date(1700000000000 + Number(nextId % 100000n)).toISOString(), data: {}, ...extra };
}
let users = 0;
function client(options = {}) {
  return new NotifyClient({ user: `user${++users}`, ...options });
}

await check('the reconnect backoff doubles from 1 s, jitters by 30 %, and never passes 30 s', async () => {
  const low = () => 0;
  const high = () => 0.999999;
  assert(backoffDelay(0, low) === 700 && backoffDelay(0, high) === 1300, `first: ${backoffDelay(0, low)}..${backoffDelay(0, high)}`);
  assert(backoffDelay(4, low) === 11200 && backoffDelay(4, high) === 20800, `fifth: ${backoffDelay(4, low)}..${backoffDelay(4, high)}`);
  for (const attempt of [5, 6, 20, 1000]) {
    const [a, b] = [backoffDelay(attempt, low), backoffDelay(attempt, high)];
    assert(a <= 30000 && b <= 30000 && b >= 21000, `attempt ${attempt}: ${a}..${b}`);
  }
});

await check('a tab whose first event was notifications:reset gives its state to a tab that joins', async () => {
  const user = `tabs${++users}`;
  const a = client({ user, shareConnection: true, lastEventId: '1' });
  await settle();
  const es = FakeEventSource.opened.at(-1);
  const [n1, n2] = [notification(), notification()];
  es.emit('notifications:reset', { notifications: [n2, n1], unreadCount: 2 }, n2.id);
  assert(a.unreadCount === 2, `leader: unreadCount ${a.unreadCount}`);
  const b = client({ user, shareConnection: true });
  await settle(20);
  assert(b.state === 'open', `the joining tab is ${b.state}, not open`);
  assert(b.unreadCount === 2 && b.notifications.length === 2,
    `the joining tab has ${b.notifications.length} notifications, unreadCount ${b.unreadCount}`);
  const n3 = notification();
  es.emit('notification', n3, n3.id);
  await settle(20);
  assert(b.unreadCount === 3 && a.unreadCount === 3, `unread: leader ${a.unreadCount}, other ${b.unreadCount}`);
  a.close();
  b.close();
});

// A client holding two unread notifications whose markAllRead() over HTTP fails when the
// test says so, with `answer`: what happens meanwhile is up to the test.
function failingMarkAllRead(answer) {
  const c = client();
  const es = FakeEventSource.opened.at(-1);
  const [n1, n2] = [notification(), notification()];
  es.emit('init', { notifications: [n2, n1], unreadCount: 2 }, n2.id);
  let fail;
  fetchAnswer = () => new Promise((resolve) => { fail = () => resolve(answer); });
  const call = c.markAllRead().catch(() => 'failed');
  const finish = async () => {
    fail();
    assert(await call === 'failed', 'markAllRead did not fail');
    return c.notifications.filter((n) => !n.readAt).length;
  };
  return { c, es, ids: [n1.id, n2.id], finish };
}

await check('markAllRead that fails over HTTP: what arrived meanwhile stays counted', async () => {
  const { c, es, finish } = failingMarkAllRead({ status: 503, body: { error: 'busy' } });
  assert(c.unreadCount === 0, `optimistic count ${c.unreadCount}`);
  const n3 = notification();
  es.emit('notification', n3, n3.id);
  const unread = await finish();
  assert(unread === 3 && c.unreadCount === 3, `${unread} unread items, unreadCount ${c.unreadCount}`);
  c.close();
});

await check('markAllRead that fails after the stream confirmed it: the server\'s count stands', async () => {
  const { c, es, ids, finish } = failingMarkAllRead({ status: 504, body: null });
  es.emit('notification:read', { ids, unreadCount: 0 });
  const unread = await finish();
  assert(unread === 0 && c.unreadCount === 0, `${unread} unread items, unreadCount ${c.unreadCount}`);
  c.close();
});

await check('over SSE, an event type the host adds (eventTypes) reaches onMessage', async () => {
  const got = [];
  const c = client({ eventTypes: ['chat'], onMessage: (m) => got.push(m) });
  const es = FakeEventSource.opened.at(-1);
  es.emit('init', { notifications: [], unreadCount: 0 });
  es.emit('chat', { text: 'hi' });
  assert(got.length === 1 && got[0].type === 'chat' && got[0].data.text === 'hi',
    `onMessage got ${JSON.stringify(got)}`);
  c.close();
});

// Waits up to `ms` for `cond`, polling: timers run late on a loaded machine.
async function waitFor(cond, ms) {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await settle(20);
  return cond();
}

await check('a connection silent for heartbeatTimeoutMs is replaced and resumes; heartbeats keep it', async () => {
  const got = [];
  const c = client({ heartbeatTimeoutMs: 1000, onMessage: (m) => got.push(m) });
  const es = FakeEventSource.opened.at(-1);
  const n1 = notification();
  es.emit('init', { notifications: [n1], unreadCount: 1, heartbeatMs: 30000 }, n1.id);
  for (let i = 0; i < 15; ++i) { // 1.5 s of heartbeats only, each well within the limit
    await settle(100);
    es.emit('heartbeat', {});
  }
  assert(!es.closed && FakeEventSource.opened.at(-1) === es, 'a connection with heartbeats was replaced');
  assert(got.length === 0, `onMessage got ${JSON.stringify(got)}`);
  assert(await waitFor(() => es.closed, 4000), 'a silent connection was kept');
  assert(c.state === 'reconnecting', `state ${c.state}`);
  // The first reconnect waits 0.7 to 1.3 s.
  assert(await waitFor(() => FakeEventSource.opened.at(-1) !== es, 4000), 'no new connection');
  const next = FakeEventSource.opened.at(-1);
  assert(next.url.includes(`lastEventId=${n1.id}`), `the new connection does not resume: ${next.url}`);
  c.close();
});

await check('over the WebSocket too, and heartbeatTimeoutMs: 0 turns the check off', async () => {
  const c = client({ transport: 'ws', heartbeatTimeoutMs: 1000 });
  const ws = FakeWebSocket.opened.at(-1);
  ws.message({ type: 'init', data: { notifications: [], unreadCount: 0, heartbeatMs: 30000 } });
  for (let i = 0; i < 6; ++i) {
    await settle(200);
    ws.message({ type: 'heartbeat', data: {} });
  }
  assert(ws.readyState === 1, 'a WebSocket with heartbeats was closed');
  assert(await waitFor(() => ws.readyState === 3, 4000) && c.state === 'reconnecting',
    `readyState ${ws.readyState}, state ${c.state}`);
  c.close();
  const off = client({ heartbeatTimeoutMs: 0 });
  const es = FakeEventSource.opened.at(-1);
  es.emit('init', { notifications: [], unreadCount: 0, heartbeatMs: 1000 });
  await settle(1500);
  assert(!es.closed && off.state === 'open', `state ${off.state}`);
  off.close();
});

await check('read receipts over the WebSocket stay within its message rate; the rest go over HTTP', async () => {
  const c = client({ transport: 'ws' });
  const ws = FakeWebSocket.opened.at(-1);
  const items = Array.from({ length: 60 }, () => notification());
  ws.message({ type: 'init', id: items.at(-1).id, data: { notifications: items.slice().reverse(), unreadCount: 60 } });
  fetchAnswer = () => ({ status: 200, body: { ids: [], unreadCount: 0 } });
  fetched.length = 0;
  await Promise.all(items.map((n) => c.markRead(n.id)));
  const overWs = ws.sent.filter((m) => m.type === 'notification:read').map((m) => m.id);
  const overHttp = fetched.map((f) => decodeURIComponent(f.url.split('/').at(-2)));
  assert(overWs.length <= 40, `${overWs.length} read receipts on the socket at once (the server closes past 40)`);
  const all = [...overWs, ...overHttp].sort();
  assert(all.length === 60 && new Set(all).size === 60 && all.every((id, i) => id === items.map((n) => n.id).sort()[i]),
    `receipts: ${overWs.length} on the socket, ${overHttp.length} over HTTP, ${new Set(all).size} distinct`);
  c.close();
});

await check('a tab that takes over from an older cursor leaves a newer notification unread in another tab', async () => {
  const user = `handover${++users}`;
  const a = client({ user, shareConnection: true });
  await settle();
  const es = FakeEventSource.opened.at(-1);
  const n1 = notification();
  es.emit('init', { notifications: [n1], unreadCount: 1 }, n1.id);
  const b = client({ user, shareConnection: true });
  const c = client({ user, shareConnection: true });
  await settle(20);
  const n2 = notification();
  es.emit('notification', n2, n2.id); // relayed to b and c, later
  a.close(); // the lock goes to b: it may take it before the relay reaches it
  await settle(20);
  const leader = [b, c].find((t) => t.leader);
  const other = leader === b ? c : b;
  assert(leader, 'no tab took over');
  // Whatever the new leader's cursor, its init is a snapshot as of that cursor: n2 is not in
  // a snapshot as of n1.
  const next = FakeEventSource.opened.at(-1);
  next.emit('init', { notifications: [n1], unreadCount: 1 }, n1.id);
  await settle(20);
  const n2There = other.get(n2.id);
  assert(n2There && !n2There.readAt, `the other tab has n2 ${n2There ? 'marked read' : 'missing'}`);
  assert(other.unreadCount === 2, `the other tab counts ${other.unreadCount} unread, not 2`);
  next.emit('notification', n2, n2.id); // the replay after the snapshot: a duplicate
  await settle(20);
  assert(other.unreadCount === 2 && leader.unreadCount === 2,
    `after the replay: leader ${leader.unreadCount}, other ${other.unreadCount}`);
  b.close();
  c.close();
});

await check('a tab taking over says it is reconnecting, to itself and to the tabs that follow it', async () => {
  const user = `takeover${++users}`;
  const a = client({ user, shareConnection: true });
  await settle();
  const es = FakeEventSource.opened.at(-1);
  const n1 = notification();
  es.emit('init', { notifications: [n1], unreadCount: 1 }, n1.id);
  const b = client({ user, shareConnection: true });
  const c = client({ user, shareConnection: true });
  await settle(20);
  assert(b.state === 'open' && c.state === 'open', `followers: ${b.state}, ${c.state}`);
  const opened = FakeEventSource.opened.length;
  a.close();
  await settle(20);
  const leader = [b, c].find((t) => t.leader);
  const other = leader === b ? c : b;
  assert(leader, 'no tab took over');
  assert(FakeEventSource.opened.length === opened + 1, 'the new leader did not connect');
  assert(leader.state === 'reconnecting' && other.state === 'reconnecting',
    `while the new leader connects: leader ${leader.state}, other ${other.state}`);
  FakeEventSource.opened.at(-1).emit('init', { notifications: [n1], unreadCount: 1 }, n1.id);
  await settle(20);
  assert(leader.state === 'open' && other.state === 'open',
    `once it is up to date: leader ${leader.state}, other ${other.state}`);
  b.close();
  c.close();
});

await check('no callback error was reported', async () => {
  assert(reported.length === 0, reported.map(String).join('; '));
});

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
