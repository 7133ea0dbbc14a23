#!/usr/bin/env node
// The demo's WebSocket endpoint (GET /api/notifications/ws) against real clients: the `ws`
// package, plain HTTP (an SSE stream, the REST API), raw TCP for what no polite client
// sends, and the demo's own browser client (notify-client.js) over the `ws` package.
//
//   node tests/node/ws.test.mjs [--demo /path/to/notify-demo] [--demo-arg ARG]... [--timeout SECONDS]
//                               [--redis-server /path/to/redis-server] [--nginx /path/to/nginx]
//                               [--beast /path/to/notify-beast] [--openssl /path/to/openssl]
//   NOTIFY_DEMO=/path/to/notify-demo node tests/node/ws.test.mjs
//
// Starts `notify-demo --port 0 --batch-ms 0` (and a second one with --allowed-origin and
// --typing-pairs none, and with --redis-server one on a Redis store whose Redis the test stops
// and starts; with --nginx one with --heartbeat 2, both behind nginx configured as
// docs/DEPLOYMENT.md says; with --beast, examples/beast's host on the same checks of its
// own; with --openssl, one over TLS with a certificate made for the run), waits for its
// "listening on http(s)://ADDR:PORT" line and runs every
// check in order. A failed check is reported and the next one runs (each uses its own users,
// so one failure does not cascade). Prints one line per check and a final `N passed, M failed`;
// exit code 0 only when everything passed. The demo processes are always killed by their
// PID, and the whole run is bounded by a timeout (90 s by default).

import nodeAssert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { makeCertificate } from '../support/certificate.mjs';
import { Nginx } from '../support/nginx.mjs';
import { RedisServer } from '../support/redis-server.mjs';

// ---- arguments --------------------------------------------------------------------------------

function usage(msg) {
  if (msg) console.error(`error: ${msg}`);
  console.error('usage: node ws.test.mjs [--demo PATH] [--demo-arg ARG]... [--timeout SECONDS] ' +
                '[--redis-server PATH] [--nginx PATH] [--beast PATH] [--openssl PATH]   (or NOTIFY_DEMO=PATH)');
  process.exit(2);
}

const opts = { demo: process.env.NOTIFY_DEMO || null, demoArgs: [], timeout: 90, redisServer: null, nginx: null, beast: null, openssl: null };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--demo') opts.demo = val();
    else if (a === '--demo-arg') opts.demoArgs.push(val());
    else if (a === '--timeout') opts.timeout = Number(val());
    else if (a === '--redis-server') opts.redisServer = val();
    else if (a === '--nginx') opts.nginx = val();
    else if (a === '--beast') opts.beast = val();
    else if (a === '--openssl') opts.openssl = val();
    else if (a === '-h' || a === '--help') usage();
    else if (!a.startsWith('-') && !opts.demo) opts.demo = a;
    else usage(`unknown argument ${a}`);
  }
  if (!opts.demo) usage('the path of notify-demo is required (--demo PATH or NOTIFY_DEMO)');
  if (!(opts.timeout > 0)) usage('--timeout must be a positive number of seconds');
}

// ---- bookkeeping ------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
const demos = [];        // {proc, exited, log}
const redisServers = []; // RedisServer, stopped at the end
const proxies = [];      // Nginx, stopped at the end
const sockets = new Set(); // everything to tear down at the end

class CheckFailure extends Error {}

function assert(cond, msg) {
  if (!cond) throw new CheckFailure(msg);
}

/** Deep equality; object keys in any order, arrays in order. */
function assertEqual(actual, expected, what) {
  try {
    nodeAssert.deepStrictEqual(actual, expected);
  } catch {
    throw new CheckFailure(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `done` every 20 ms for up to `ms`; a CheckFailure with `what` when it never holds. */
async function until(done, what, ms = 10000) {
  for (const end = Date.now() + ms; !done(); await sleep(20)) {
    if (Date.now() > end) throw new CheckFailure(what);
  }
}

async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    const msg = err instanceof CheckFailure ? err.message : (err && err.stack) || String(err);
    console.error(`FAIL - ${name}\n       ${msg.split('\n').join('\n       ')}`);
    for (const d of demos) {
      if (d.log.length) console.error(`       --- last output of ${d.name} ---\n         ${d.log.join('\n         ')}`);
    }
  }
}

// ---- the demo processes -----------------------------------------------------------------------

function killDemo(d, signal) {
  if (!d.proc || !d.proc.pid) return;
  try {
    process.kill(-d.proc.pid, signal); // its own process group (detached)
  } catch {
    if (!d.exited) try { process.kill(d.proc.pid, signal); } catch { /* already gone */ }
  }
}

async function stopDemo(d) {
  if (d.exited) return;
  const exited = new Promise((resolve) => d.proc.once('exit', resolve));
  killDemo(d, 'SIGTERM');
  const t = setTimeout(() => killDemo(d, 'SIGKILL'), 3000);
  await Promise.race([exited, sleep(4000)]);
  clearTimeout(t);
  killDemo(d, 'SIGKILL');
}

process.on('exit', () => {
  for (const d of demos) killDemo(d, 'SIGKILL');
  for (const r of redisServers) r.kill();
  for (const n of proxies) n.kill();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\ninterrupted (${sig})`);
    for (const d of demos) killDemo(d, 'SIGKILL');
    for (const r of redisServers) r.kill();
    for (const n of proxies) n.kill();
    process.exit(130);
  });
}

/** Starts `program --port 0 args... extra...` (notify-demo, or another host of the same API). */
function startDemo(name, args, program = opts.demo, extra = opts.demoArgs) {
  return new Promise((resolve, reject) => {
    const d = { name, proc: null, exited: false, log: [], base: null };
    const remember = (line) => {
      d.log.push(line);
      if (d.log.length > 30) d.log.shift();
    };
    try {
      d.proc = spawn(program, ['--port', '0', ...args, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      reject(new CheckFailure(`cannot start ${program}: ${err.message}`));
      return;
    }
    demos.push(d);
    d.proc.on('error', (err) => {
      d.exited = true;
      reject(new CheckFailure(`cannot start ${program}: ${err.message}`));
    });
    d.proc.on('exit', (code, signal) => {
      d.exited = true;
      remember(`(exited: code ${code}, signal ${signal})`);
      if (!d.base) reject(new CheckFailure(`${program} exited (code ${code}, signal ${signal}) before printing its address`));
    });
    createInterface({ input: d.proc.stderr }).on('line', (l) => remember(`[stderr] ${l}`));
    createInterface({ input: d.proc.stdout }).on('line', (l) => {
      remember(l);
      const m = !d.base && /listening on (https?:\/\/\S+)/.exec(l);
      if (!m) return;
      const u = new URL(m[1]);
      if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
      if (u.hostname === '[::]') u.hostname = '[::1]';
      d.base = u.origin;
      d.host = u.hostname.replace(/^\[|\]$/g, '');
      d.port = Number(u.port);
      resolve(d);
    });
  });
}

// ---- clients ----------------------------------------------------------------------------------

/** Messages of one connection, buffered; waits take them in order or by predicate. */
class Inbox {
  constructor(label) {
    this.label = label;
    this.items = [];
    this.waiters = new Set();
    this.ended = null; // why no more items will come
  }

  push(item) {
    this.items.push(item);
    this._wake();
  }

  end(why) {
    if (!this.ended) this.ended = why;
    this._wake();
  }

  _wake() {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Removes and returns the first item matching `pred`, waiting up to `ms` for it (a guard
   * against a hang: sanitizer builds on a loaded machine are slow).
   */
  take(pred, what, ms = 15000) {
    return new Promise((resolve, reject) => {
      const finish = (fn, v) => { clearTimeout(timer); this.waiters.delete(poll); fn(v); };
      const poll = () => {
        const i = this.items.findIndex(pred);
        if (i >= 0) return finish(resolve, this.items.splice(i, 1)[0]);
        if (this.ended) return finish(reject, new CheckFailure(`${this.label}: ${what}: connection ended (${this.ended}); had ${this._dump()}`));
      };
      const timer = setTimeout(() => finish(reject, new CheckFailure(`${this.label}: ${what}: nothing after ${ms} ms; had ${this._dump()}`)), ms);
      this.waiters.add(poll);
      poll();
    });
  }

  /** The next item in order. */
  next(what, ms = 15000) { return this.take(() => true, what, ms); }

  /** Waits `ms` and fails if an item matching `pred` arrived meanwhile (or was there). */
  async none(pred, what, ms = 400) {
    await sleep(ms);
    const found = this.items.find(pred);
    if (found) throw new CheckFailure(`${this.label}: ${what}: got ${JSON.stringify(found)}`);
  }

  _dump() {
    const s = JSON.stringify(this.items);
    return s.length > 600 ? `${s.slice(0, 600)}…` : s;
  }
}

function wsUrl(d, query) {
  return `${d.base.replace(/^http/, 'ws')}/api/notifications/ws?${new URLSearchParams(query)}`;
}

/**
 * Opens a WebSocket with the `ws` package (no compression unless asked). Resolves once open
 * with {ws, inbox, closed: Promise<{code, reason}>, upgrade: response headers}.
 */
function openWs(d, query, { deflate = false, label, headers } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(d, query), { perMessageDeflate: deflate, headers, handshakeTimeout: 5000, ca: d.ca });
    sockets.add(ws);
    const conn = { ws, inbox: new Inbox(label || `ws ${query.user}`), upgrade: null, binary: 0, heartbeats: 0 };
    conn.closed = new Promise((res) => {
      ws.on('close', (code, reason) => {
        conn.inbox.end(`closed with ${code}`);
        res({ code, reason: reason.toString() });
      });
    });
    ws.on('upgrade', (res) => { conn.upgrade = res.headers; });
    ws.on('message', (data, isBinary) => {
      if (isBinary) { conn.binary++; return; }
      let m;
      try {
        m = JSON.parse(data.toString('utf8'));
      } catch {
        m = { unparsable: data.toString('utf8') };
      }
      if (m && m.type === 'heartbeat') { conn.heartbeats++; return; } // counted, not queued
      conn.inbox.push(m);
    });
    ws.on('error', (err) => {
      conn.inbox.end(`error ${err.message}`);
      reject(new CheckFailure(`${conn.inbox.label}: ${err.message}`));
    });
    ws.on('unexpected-response', (req, res) => {
      reject(new CheckFailure(`${conn.inbox.label}: the handshake was answered ${res.statusCode}`));
      req.destroy();
    });
    ws.once('open', () => resolve(conn));
  });
}

function send(conn, obj) {
  conn.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
}

/** An SSE stream read as plain text over HTTP; events go to an Inbox as {event, id, data}. */
function openSse(d, user, headers = {}) {
  return new Promise((resolve, reject) => {
    const inbox = new Inbox(`sse ${user}`);
    const client = d.ca ? https : http;
    const req = client.get(`${d.base}/api/notifications/stream?user=${encodeURIComponent(user)}`, { headers, ca: d.ca }, (res) => {
      if (res.statusCode !== 200) {
        reject(new CheckFailure(`sse ${user}: answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        buf += chunk.replace(/\r\n?/g, '\n');
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const ev = { event: 'message', id: null, data: [] };
          for (const line of block.split('\n')) {
            if (!line || line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'event') ev.event = value;
            else if (field === 'id') ev.id = value;
            else if (field === 'data') ev.data.push(value);
          }
          if (!ev.data.length) continue;
          if (ev.event === 'heartbeat') { inbox.heartbeats = (inbox.heartbeats || 0) + 1; continue; }
          try {
            ev.data = JSON.parse(ev.data.join('\n'));
          } catch {
            ev.data = ev.data.join('\n');
          }
          inbox.push(ev);
        }
      });
      res.on('end', () => inbox.end('stream ended'));
      res.on('error', (err) => inbox.end(err.message));
      resolve({ inbox, close: () => req.destroy() });
    });
    req.on('error', (err) => { inbox.end(err.message); reject(new CheckFailure(`sse ${user}: ${err.message}`)); });
    sockets.add({ terminate: () => req.destroy() });
  });
}

/** A request over https trusting `d.ca` (fetch cannot be given a CA): {status, text}. */
function httpsRequest(d, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(`${d.base}${path}`, { method, headers, ca: d.ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (err) => reject(new CheckFailure(`${method} ${path}: ${err.message}`)));
    req.end(body);
  });
}

async function publish(d, notification) {
  const request = { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'comment', ...notification }) };
  const res = d.ca ? await httpsRequest(d, '/api/notifications', request)
    : await fetch(`${d.base}/api/notifications`, request).then(async (r) => ({ status: r.status, text: await r.text() }));
  const { text } = res;
  assert(res.status === 202, `POST /api/notifications answered ${res.status}: ${text}`);
  const body = JSON.parse(text);
  assert(typeof body.id === 'string', `POST /api/notifications returned no id: ${text}`);
  return body.id;
}

// ---- raw TCP ------------------------------------------------------------------------------------

/** A raw TCP connection with a byte buffer. */
function rawConnect(d) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: d.host, port: d.port });
    sockets.add({ terminate: () => sock.destroy() });
    const conn = { sock, buf: Buffer.alloc(0), ended: false, waiters: new Set() };
    const wake = () => { for (const w of [...conn.waiters]) w(); };
    sock.on('data', (chunk) => { conn.buf = Buffer.concat([conn.buf, chunk]); wake(); });
    sock.on('end', () => { conn.ended = true; wake(); });
    sock.on('close', () => { conn.ended = true; wake(); });
    sock.on('error', () => { conn.ended = true; wake(); });
    sock.once('connect', () => resolve(conn));
    sock.once('error', (err) => reject(new CheckFailure(`connect: ${err.message}`)));
  });
}

/** Waits until `done(conn)` returns a value (not undefined), or the connection ends. */
function rawWait(conn, done, what, ms = 15000) {
  return new Promise((resolve, reject) => {
    const finish = (fn, v) => { clearTimeout(timer); conn.waiters.delete(poll); fn(v); };
    const poll = () => {
      const v = done(conn);
      if (v !== undefined) return finish(resolve, v);
      if (conn.ended) return finish(reject, new CheckFailure(`${what}: the connection ended first; got ${conn.buf.length} bytes: ${JSON.stringify(conn.buf.toString('latin1').slice(0, 300))}`));
    };
    const timer = setTimeout(() => finish(reject, new CheckFailure(`${what}: nothing after ${ms} ms; got ${JSON.stringify(conn.buf.toString('latin1').slice(0, 300))}`)), ms);
    conn.waiters.add(poll);
    poll();
  });
}

/** Sends an HTTP request and reads the whole response (the server closes after it). */
async function rawHttp(d, head) {
  const conn = await rawConnect(d);
  conn.sock.write(head);
  await rawWait(conn, (c) => (c.ended ? true : undefined), 'response then close');
  const text = conn.buf.toString('utf8');
  const [headPart, ...rest] = text.split('\r\n\r\n');
  const [statusLine, ...headerLines] = headPart.split('\r\n');
  const headers = {};
  for (const l of headerLines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n'), raw: text };
}

function handshakeHead(d, path, extra = {}) {
  const h = {
    Host: `${d.host}:${d.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    ...extra,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) if (v != null) s += `${k}: ${v}\r\n`;
  return { text: `${s}\r\n`, key: h['Sec-WebSocket-Key'] };
}

/** Frames a server sent (unmasked), parsed from the start of `buf`; stops at a partial one. */
function parseFrames(buf) {
  const frames = [];
  let at = 0;
  while (buf.length - at >= 2) {
    const b0 = buf[at];
    const b1 = buf[at + 1];
    let len = b1 & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - off < 2) break;
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (buf.length - off < 8) break;
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    if (b1 & 0x80) off += 4; // a server never masks; tolerate for parsing
    if (buf.length - off < len) break;
    frames.push({ fin: !!(b0 & 0x80), rsv1: !!(b0 & 0x40), opcode: b0 & 0x0f, masked: !!(b1 & 0x80), payload: buf.subarray(off, off + len) });
    at = off + len;
  }
  return frames;
}

/** One client frame, masked (unless `mask` is false). */
function clientFrame(opcode, payload, { mask = true, fin = true } = {}) {
  const data = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  if (data.length < 126) head.push((mask ? 0x80 : 0) | data.length);
  else throw new Error('clientFrame: short payloads only');
  const parts = [Buffer.from(head)];
  if (mask) {
    const key = randomBytes(4);
    const masked = Buffer.from(data);
    for (let i = 0; i < masked.length; i++) masked[i] ^= key[i % 4];
    parts.push(key, masked);
  } else {
    parts.push(data);
  }
  return Buffer.concat(parts);
}

/** Opens a WebSocket by hand; resolves with the raw connection positioned after the 101. */
async function rawWebSocket(d, user) {
  const conn = await rawConnect(d);
  const { text, key } = handshakeHead(d, `/api/notifications/ws?user=${encodeURIComponent(user)}`);
  conn.sock.write(text);
  const headEnd = await rawWait(conn, (c) => {
    const i = c.buf.indexOf('\r\n\r\n');
    return i >= 0 ? i : undefined;
  }, 'the 101 response');
  const head = conn.buf.subarray(0, headEnd).toString('latin1');
  assert(/^HTTP\/1\.1 101 /.test(head), `handshake answered: ${head.split('\r\n')[0]}`);
  const expectAccept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  assert(head.includes(`Sec-WebSocket-Accept: ${expectAccept}`), `wrong or missing Sec-WebSocket-Accept in:\n${head}`);
  conn.buf = conn.buf.subarray(headEnd + 4);
  return conn;
}

/** Waits for the server's close frame and returns its code (or null without one). */
async function rawCloseCode(conn, what) {
  const frame = await rawWait(conn, (c) => parseFrames(c.buf).find((f) => f.opcode === 0x8), what);
  return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : null;
}

// ---- the checks ---------------------------------------------------------------------------------

/**
 * The next `count` notifications of a socket's or a stream's inbox, whether they came alone
 * (`notification`) or batched (`notifications:batch`), in order.
 */
async function takeNotifications(inbox, count, what) {
  const kind = (x) => x.type || x.event;
  const got = [];
  while (got.length < count) {
    const x = await inbox.take((y) => kind(y) === 'notification' || kind(y) === 'notifications:batch', what);
    if (kind(x) === 'notification') got.push(x.data);
    else got.push(...x.data);
  }
  return got;
}

/** A socket closed after a notification; three more published; resuming replays exactly those. */
async function resumeReplaysMissed(d, user) {
  const conn = await openWs(d, { user });
  await conn.inbox.take((m) => m.type === 'init', 'init');
  const seen = await publish(d, { userId: user, title: 'seen' });
  const m = await conn.inbox.take((x) => x.type === 'notification', 'notification');
  assertEqual(m.id, seen, 'id');
  conn.ws.close(1000);
  const closed = await conn.closed;
  assertEqual(closed.code, 1000, 'close code echoed for a normal close');
  const missed = [];
  for (let i = 1; i <= 3; i++) missed.push(await publish(d, { userId: user, title: `missed ${i}` }));
  await publish(d, { userId: 'someone-else', title: `not for ${user}` });
  const back = await openWs(d, { user, lastEventId: m.id }, { label: `${user} resumed` });
  const first = await back.inbox.next('first message after resume');
  assertEqual(first.type, 'init', 'first message after resume');
  const got = await takeNotifications(back.inbox, missed.length, 'replayed notification');
  assertEqual(got.map((n) => n.id), missed, 'replayed ids, in order');
  await back.inbox.none((x) => x.type !== 'init', 'nothing else after the replay', 300);
  back.ws.close(1000);
}

/** SIGTERM closes an open socket with 1001 and ends an open stream; the process exits with 0. */
/**
 * The demo's browser client (examples/demo/web/notify-client.js) over a real WebSocket (the
 * `ws` package as the page's WebSocket) and the demo's REST API. A notification published
 * after the client's init reaches it twice: live on the socket and in loadHistory()'s list,
 * in either order. The race is made to go the bad way on purpose: the client's live events
 * are held until the history load has come back with the notification in it. The client
 * must still count it unread and announce it (before the fix: merged as history, then taken
 * for one already seen: no badge, no toast).
 */
async function historyBeforeStream(d, user) {
  const source = readFileSync(new URL('../../examples/demo/web/notify-client.js', import.meta.url), 'utf8');
  const { NotifyClient } = await import(`data:text/javascript,${encodeURIComponent(source)}`);
  const pageWebSocket = globalThis.WebSocket;
  globalThis.WebSocket = WebSocket;
  const client = new NotifyClient({ url: `${d.base}/api/notifications/stream`, user, transport: 'ws' });
  globalThis.WebSocket = pageWebSocket;
  try {
    await until(() => client.state === 'open', 'the client never got init');
    const held = [];
    const dispatch = client._dispatch.bind(client);
    client._dispatch = (type, data, id, fromServer) => {
      if (type === 'notification') held.push([type, data, id, fromServer]);
      else dispatch(type, data, id, fromServer);
    };
    const announced = [];
    client.addEventListener('notification', (ev) => announced.push(ev.detail.notification.id));
    const id = await publish(d, { userId: user, title: 'raced' });
    await until(() => held.length === 1, 'the notification never reached the socket');
    const listed = await client.loadHistory({ limit: 30 });
    assertEqual(listed.some((n) => n.id === id), false, 'listed before the stream delivered it');
    client._dispatch = dispatch;
    for (const args of held) dispatch(...args);
    assertEqual(announced, [id], 'notifications announced');
    assertEqual(client.unreadCount, 1, 'unread count');
    assertEqual(client.notifications.filter((n) => n.id === id).length, 1, 'copies in the list');
  } finally {
    client.close();
  }
}

async function shutdownCloses(d, name, user) {
  const last = await openWs(d, { user });
  await last.inbox.take((m) => m.type === 'init', 'init');
  const stream = await openSse(d, user);
  await stream.inbox.take((e) => e.event === 'init', 'SSE init');
  const exited = new Promise((resolve) => d.proc.once('exit', (code, signal) => resolve({ code, signal })));
  killDemo(d, 'SIGTERM');
  const closed = await Promise.race([last.closed, sleep(5000).then(() => null)]);
  assert(closed, 'not closed within 5 s of SIGTERM');
  assertEqual(closed.code, 1001, 'close code on shutdown');
  const ended = await stream.inbox.take(() => false, 'the end', 5000).catch(() => stream.inbox.ended);
  assert(ended, 'the SSE stream did not end within 5 s of SIGTERM');
  const how = await Promise.race([exited, sleep(6000).then(() => null)]);
  assert(how, `${name} did not exit within 6 s of SIGTERM`);
  assertEqual(how, { code: 0, signal: null }, 'exit status');
}

async function main() {
  let d;
  await check('notify-demo starts (--batch-ms 0) and prints its address', async () => {
    d = await startDemo('notify-demo', ['--batch-ms', '0']);
  });
  if (!d) return;

  let alice;   // a plain (uncompressed) alice socket, kept open for later checks
  let alice2;
  let aliceSse;
  let firstId;

  await check('alice connects over WebSocket and gets init first', async () => {
    alice = await openWs(d, { user: 'alice' }, { label: 'alice ws 1' });
    assert(!alice.upgrade['sec-websocket-extensions'], `no compression was offered, yet the server answered ${alice.upgrade['sec-websocket-extensions']}`);
    const first = await alice.inbox.next('init');
    assertEqual(first.type, 'init', 'type of the first message');
    assertEqual(first.data, { notifications: [], unreadCount: 0, heartbeatMs: 30000 }, 'init data of a fresh user');
  });

  await check('a notification POSTed over HTTP arrives as a notification frame with the same id and data', async () => {
    aliceSse = await openSse(d, 'alice');
    await aliceSse.inbox.take((e) => e.event === 'init', 'SSE init');
    alice2 = await openWs(d, { user: 'alice' }, { label: 'alice ws 2' });
    await alice2.inbox.take((m) => m.type === 'init', 'init');
    const body = 'Looks good! ünïcödé ✓ "quoted" \\ back\nslash';
    firstId = await publish(d, { userId: 'alice', title: 'Bob replied', body, actorId: 'bob', actionUrl: '/posts/7', data: { postId: 7 } });
    const m = await alice.inbox.take((x) => x.type === 'notification', 'notification');
    assertEqual(Object.keys(m).sort(), ['data', 'id', 'type'], 'keys of a notification message');
    assertEqual(m.id, firstId, 'message id');
    assertEqual(m.data.id, firstId, 'notification id');
    assertEqual([m.data.userId, m.data.title, m.data.body, m.data.actorId, m.data.actionUrl, m.data.readAt],
      ['alice', 'Bob replied', body, 'bob', '/posts/7', null], 'notification fields');
    assertEqual(m.data.data, { postId: 7 }, 'notification data');
    const m2 = await alice2.inbox.take((x) => x.type === 'notification', 'notification');
    assertEqual(m2, m, 'what the second alice socket got');
    const e = await aliceSse.inbox.take((x) => x.event === 'notification', 'SSE notification');
    assertEqual([e.id, e.data], [m.id, m.data], 'the same notification over SSE');
  });

  await check('notification:read sent on one socket reaches another socket and the SSE stream', async () => {
    send(alice, { type: 'notification:read', id: firstId });
    for (const inbox of [alice.inbox, alice2.inbox]) {
      const r = await inbox.take((x) => x.type === 'notification:read', 'notification:read');
      assertEqual(r.data, { ids: [firstId], unreadCount: 0 }, `${inbox.label}: notification:read data`);
      assert(!('id' in r), `${inbox.label}: notification:read should carry no id: ${JSON.stringify(r)}`);
    }
    const e = await aliceSse.inbox.take((x) => x.event === 'notification:read', 'SSE notification:read');
    assertEqual(e.data, { ids: [firstId], unreadCount: 0 }, 'SSE notification:read data');
    const list = await (await fetch(`${d.base}/api/notifications?user=alice&unread=true`)).json();
    assertEqual(list.unreadCount, 0, 'unread count from the REST API');
  });

  await check('notifications:read_all marks everything read, on every connection', async () => {
    const a = await publish(d, { userId: 'alice', title: 'one' });
    const b = await publish(d, { userId: 'alice', title: 'two' });
    await alice.inbox.take((x) => x.type === 'notification' && x.id === b, 'the second notification');
    send(alice, { type: 'notifications:read_all' });
    for (const inbox of [alice.inbox, alice2.inbox]) {
      const r = await inbox.take((x) => x.type === 'notification:read', 'notification:read');
      assertEqual({ ids: [...r.data.ids].sort(), unreadCount: r.data.unreadCount }, { ids: [a, b].sort(), unreadCount: 0 }, `${inbox.label}: read_all result`);
    }
    const e = await aliceSse.inbox.take((x) => x.event === 'notification:read', 'SSE notification:read');
    assertEqual(e.data.unreadCount, 0, 'SSE unreadCount after read_all');
  });

  await check('resume with ?lastEventId= replays exactly the missed notifications', () => resumeReplaysMissed(d, 'rita'));

  await check('notify-client.js: a notification the history load brings before the stream is still new when the stream brings it', () =>
    historyBeforeStream(d, 'hana'));

  await check('an unknown message type is answered with an error, and the socket stays open', async () => {
    send(alice, { type: 'no-such-type', x: 1 });
    const err = await alice.inbox.take((x) => x.type === 'error', 'error');
    assert(typeof err.data.message === 'string' && err.data.message.includes('no-such-type'), `error message: ${JSON.stringify(err)}`);
    assertEqual(err.data.type, 'no-such-type', 'error data.type');
    await alice2.inbox.none((x) => x.type === 'error', 'the error went to the other socket too', 100);
    const id = await publish(d, { userId: 'alice', title: 'still here' });
    const m = await alice.inbox.take((x) => x.type === 'notification' && x.id === id, 'a later notification');
    assertEqual(m.data.title, 'still here', 'title of the later notification');
  });

  await check('invalid JSON (and a non-object, and a missing type) is answered with an error, and the socket stays open', async () => {
    for (const bad of ['{"type": "notification:read", ', '[1,2]', '{"id":"1"}', 'null']) {
      send(alice, bad);
      const err = await alice.inbox.take((x) => x.type === 'error', `error for ${bad}`);
      assert(typeof err.data.message === 'string' && err.data.message.length > 0, `error for ${bad}: ${JSON.stringify(err)}`);
    }
    send(alice, { type: 'notification:read' });
    const err = await alice.inbox.take((x) => x.type === 'error', 'error for a read without id');
    assertEqual(err.data.type, 'notification:read', 'error data.type');
    const id = await publish(d, { userId: 'alice', title: 'still here 2' });
    const m = await alice.inbox.take((x) => x.type === 'notification' && x.id === id, 'a later notification');
    assertEqual(m.data.title, 'still here 2', 'title of the later notification');
  });

  await check('typing alice -> bob reaches bob (WebSocket and SSE), not carol, and is never stored', async () => {
    const bob = await openWs(d, { user: 'bob' }, { label: 'bob ws' });
    const carol = await openWs(d, { user: 'carol' }, { label: 'carol ws' });
    const bobSse = await openSse(d, 'bob');
    await bob.inbox.take((m) => m.type === 'init', 'init');
    await carol.inbox.take((m) => m.type === 'init', 'init');
    await bobSse.inbox.take((e) => e.event === 'init', 'SSE init');
    send(alice, { type: 'typing', to: 'bob', context: 'conversation-7' });
    const t = await bob.inbox.take((m) => m.type === 'typing', 'typing');
    assertEqual(t, { type: 'typing', data: { from: 'alice', context: 'conversation-7' } }, 'typing message');
    const e = await bobSse.inbox.take((x) => x.event === 'typing', 'SSE typing');
    assertEqual([e.id, e.data], [null, { from: 'alice', context: 'conversation-7' }], 'SSE typing event');
    await carol.inbox.none((m) => m.type === 'typing', 'carol got a typing message', 300);
    await alice.inbox.none((m) => m.type === 'typing' || m.type === 'error', 'alice got something back', 0);
    const list = await (await fetch(`${d.base}/api/notifications?user=bob`)).json();
    assertEqual(list.notifications.length, 0, "bob's stored notifications");
    // Never replayed: a socket resuming from bob's init cursor gets no typing.
    const bob2 = await openWs(d, { user: 'bob' }, { label: 'bob ws 2' });
    await bob2.inbox.take((m) => m.type === 'init', 'init');
    await bob2.inbox.none((m) => m.type === 'typing', 'a new bob socket got an old typing', 200);
    for (const c of [bob, carol, bob2]) c.ws.close(1000);
    bobSse.close();
  });

  await check('typing is rate-limited per (sender, recipient): extra messages are dropped silently', async () => {
    const dave = await openWs(d, { user: 'dave' }, { label: 'dave ws' });
    const erin = await openWs(d, { user: 'erin' }, { label: 'erin ws' });
    await dave.inbox.take((m) => m.type === 'init', 'init');
    await erin.inbox.take((m) => m.type === 'init', 'init');
    for (let i = 0; i < 5; i++) send(erin, { type: 'typing', to: 'dave', context: `c${i}` });
    const t = await dave.inbox.take((m) => m.type === 'typing', 'typing');
    assertEqual(t.data, { from: 'erin', context: 'c0' }, 'the first typing');
    await dave.inbox.none((m) => m.type === 'typing', 'a second typing within 500 ms', 300);
    await erin.inbox.none((m) => m.type === 'error', 'an error for a dropped typing', 0);
    await sleep(400); // the interval is over now
    send(erin, { type: 'typing', to: 'dave', context: 'later' });
    const t2 = await dave.inbox.take((m) => m.type === 'typing', 'typing after the interval');
    assertEqual(t2.data, { from: 'erin', context: 'later' }, 'the typing after the interval');
    dave.ws.close(1000);
    erin.ws.close(1000);
  });

  await check('invalid typing messages are answered with errors of type typing', async () => {
    const cases = [
      [{ type: 'typing', context: 'x' }, /to/],
      [{ type: 'typing', to: 42 }, /to/],
      [{ type: 'typing', to: '' }, /to/],
      [{ type: 'typing', to: 'alice' }, /yourself/],
      [{ type: 'typing', to: 'bob', context: 7 }, /context/],
      [{ type: 'typing', to: 'bob', context: 'x'.repeat(257) }, /context/],
    ];
    for (const [msg, re] of cases) {
      send(alice, msg);
      const err = await alice.inbox.take((x) => x.type === 'error', `error for ${JSON.stringify(msg).slice(0, 60)}`);
      assertEqual(err.data.type, 'typing', 'error data.type');
      assert(re.test(err.data.message), `error for ${JSON.stringify(msg).slice(0, 60)}: ${err.data.message}`);
    }
    send(alice, { type: 'typing', to: 'frank', context: 'y'.repeat(256) });
    await alice.inbox.none((x) => x.type === 'error', 'a 256-byte context was refused', 200);
  });

  await check('a client pinging gets a pong with the same payload', async () => {
    const pong = new Promise((resolve) => alice.ws.once('pong', (data) => resolve(data.toString())));
    alice.ws.ping('are you there');
    const got = await Promise.race([pong, sleep(3000).then(() => null)]);
    assertEqual(got, 'are you there', 'pong payload');
  });

  await check('permessage-deflate: negotiated with server_no_context_takeover; a 2 KiB notification arrives intact and compressed', async () => {
    const zed = await openWs(d, { user: 'zed' }, { deflate: true, label: 'zed ws (deflate)' });
    const ext = zed.upgrade['sec-websocket-extensions'] || '';
    assert(/permessage-deflate/.test(ext) && /server_no_context_takeover/.test(ext), `Sec-WebSocket-Extensions: "${ext}"`);
    assert(/permessage-deflate/.test(zed.ws.extensions), `ws.extensions: "${zed.ws.extensions}"`);
    await zed.inbox.take((m) => m.type === 'init', 'init');
    let body = '';
    for (let i = 0; body.length < 2048; i++) body += `line ${i}: the quick brown fox jumps over the lazy dog. `;
    body = body.slice(0, 2048);
    const before = zed.ws._socket.bytesRead;
    const id = await publish(d, { userId: 'zed', title: 'big one', body });
    const m = await zed.inbox.take((x) => x.type === 'notification', 'notification');
    assertEqual([m.id, m.data.body.length], [id, 2048], 'id and body length');
    assert(m.data.body === body, 'the body arrived changed');
    const wire = zed.ws._socket.bytesRead - before;
    assert(wire < 1500, `the message took ${wire} bytes on the wire: not compressed`);
    // Compressed in the other direction too (the client compresses what it sends).
    send(zed, { type: 'typing', to: 'zed-friend', context: 'z'.repeat(200) });
    send(zed, { type: 'no-such-type', pad: 'p'.repeat(1000) });
    const err = await zed.inbox.take((x) => x.type === 'error', 'error for a compressed message');
    assertEqual(err.data.type, 'no-such-type', 'error data.type');
    zed.ws.close(1000);
    assertEqual((await zed.closed).code, 1000, 'close code');
  });

  await check('POST /api/sessions/end: the user\'s sockets get session:end, then close 4401; the SSE stream gets it and ends', async () => {
    const a = await openWs(d, { user: 'dave' }, { label: 'dave ws' });
    const z = await openWs(d, { user: 'dave' }, { deflate: true, label: 'dave ws (deflate)' });
    const sse = await openSse(d, 'dave');
    const other = await openWs(d, { user: 'erin' }, { label: 'erin ws' });
    for (const c of [a, z, other]) await c.inbox.take((m) => m.type === 'init', 'init');
    await sse.inbox.take((e) => e.event === 'init', 'init');
    const res = await fetch(`${d.base}/api/sessions/end?user=dave`, { method: 'POST', body: '{"reason":"token_expired"}' });
    assertEqual(res.status, 200, 'status of POST /api/sessions/end');
    for (const c of [a, z]) {
      const m = await c.inbox.take((x) => x.type === 'session:end', 'session:end');
      assertEqual(JSON.stringify(m), '{"type":"session:end","data":{"reason":"token_expired"}}', 'the message');
      const closed = await Promise.race([c.closed, sleep(5000).then(() => null)]);
      assert(closed, `${c.inbox.label}: not closed within 5 s`);
      assertEqual(closed.code, 4401, 'close code');
      assertEqual(closed.reason, 'token_expired', 'close reason');
    }
    const ev = await sse.inbox.take((e) => e.event === 'session:end', 'session:end');
    assertEqual(JSON.stringify(ev.data), '{"reason":"token_expired"}', 'the SSE event data');
    assertEqual(ev.id, null, 'the SSE event id');
    for (let waited = 0; !sse.inbox.ended && waited < 5000; waited += 50) await sleep(50);
    assert(sse.inbox.ended === 'stream ended', `the SSE stream did not end: ${sse.inbox.ended}`);
    // erin's socket is untouched.
    await publish(d, { userId: 'erin', type: 'system', title: 'still here' });
    await other.inbox.take((m) => m.type === 'notification', 'a notification after dave\'s end');
    const bad = await fetch(`${d.base}/api/sessions/end?user=dave`, { method: 'POST', body: '{"reason":"Not A Code"}' });
    assertEqual(bad.status, 400, 'status for an invalid reason');
    other.ws.close();
  });

  await check('--session-seconds 1: a socket and a stream end with session:end "expired" after 1 s, long before a heartbeat', async () => {
    // The 30 s heartbeat does not come in this check: the hub's own check of deadlines ends them.
    const e = await startDemo('notify-demo --session-seconds 1', ['--batch-ms', '0', '--session-seconds', '1']);
    const opened = Date.now();
    const c = await openWs(e, { user: 'expiring' }, { label: 'expiring ws' });
    const s = await openSse(e, 'expiring');
    await c.inbox.take((m) => m.type === 'init', 'init');
    await s.inbox.take((x) => x.event === 'init', 'init');
    const m = await c.inbox.take((x) => x.type === 'session:end', 'session:end', 5000);
    assertEqual(m.data, { reason: 'expired' }, 'session:end data');
    assert(Date.now() - opened >= 1000, `ended ${Date.now() - opened} ms after it opened, before its 1 s`);
    const closed = await Promise.race([c.closed, sleep(5000).then(() => null)]);
    assert(closed, 'not closed within 5 s');
    assertEqual([closed.code, closed.reason], [4401, 'expired'], 'close code and reason');
    assertEqual((await s.inbox.take((x) => x.event === 'session:end', 'session:end', 5000)).data, { reason: 'expired' }, 'SSE data');
    await stopDemo(e);
  });

  await check('a flood of 200 messages is closed with 1008', async () => {
    const flood = await openWs(d, { user: 'flooder' }, { label: 'flooder ws' });
    await flood.inbox.take((m) => m.type === 'init', 'init');
    for (let i = 0; i < 200; i++) send(flood, { type: 'notifications:read_all' });
    const closed = await Promise.race([flood.closed, sleep(5000).then(() => null)]);
    assert(closed, 'the flooding socket was not closed within 5 s');
    assertEqual(closed.code, 1008, 'close code');
  });

  await check('a binary message is closed with 1003, an oversized one with 1009', async () => {
    const bin = await openWs(d, { user: 'binary-sender' });
    await bin.inbox.take((m) => m.type === 'init', 'init');
    bin.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const c1 = await Promise.race([bin.closed, sleep(5000).then(() => null)]);
    assert(c1, 'not closed within 5 s after a binary message');
    assertEqual(c1.code, 1003, 'close code for a binary message');

    const big = await openWs(d, { user: 'big-sender' });
    await big.inbox.take((m) => m.type === 'init', 'init');
    big.ws.send(JSON.stringify({ type: 'x', pad: 'a'.repeat((1 << 20) + 16) }));
    const c2 = await Promise.race([big.closed, sleep(5000).then(() => null)]);
    assert(c2, 'not closed within 5 s after a 1 MiB message');
    assertEqual(c2.code, 1009, 'close code for a message over 1 MiB');
  });

  await check('raw TCP: an unmasked frame is closed with 1002', async () => {
    const conn = await rawWebSocket(d, 'raw-unmasked');
    await rawWait(conn, (c) => (parseFrames(c.buf).length ? true : undefined), 'the init frame');
    const [init] = parseFrames(conn.buf);
    assertEqual([init.opcode, init.masked, init.fin], [1, false, true], 'init frame: opcode, masked, fin');
    assertEqual(JSON.parse(init.payload.toString()).type, 'init', 'first frame type');
    conn.sock.write(clientFrame(0x1, '{"type":"notifications:read_all"}', { mask: false }));
    assertEqual(await rawCloseCode(conn, 'close frame'), 1002, 'close code');
    await rawWait(conn, (c) => (c.ended ? true : undefined), 'the server closes the TCP connection');
  });

  await check('raw TCP: invalid UTF-8 in a text frame is closed with 1007', async () => {
    const conn = await rawWebSocket(d, 'raw-utf8');
    conn.sock.write(clientFrame(0x1, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])));
    assertEqual(await rawCloseCode(conn, 'close frame'), 1007, 'close code');
  });

  await check('raw TCP: a fragmented message and a ping between its fragments are handled', async () => {
    const conn = await rawWebSocket(d, 'raw-fragments');
    await rawWait(conn, (c) => (parseFrames(c.buf).length ? true : undefined), 'the init frame');
    conn.buf = Buffer.alloc(0);
    conn.sock.write(clientFrame(0x1, '{"type":"no-', { fin: false }));
    conn.sock.write(clientFrame(0x9, 'mid'));
    conn.sock.write(clientFrame(0x0, 'such"}', { fin: true }));
    const frames = await rawWait(conn, (c) => {
      const f = parseFrames(c.buf);
      return f.length >= 2 ? f : undefined;
    }, 'pong and error');
    assertEqual([frames[0].opcode, frames[0].payload.toString()], [0xa, 'mid'], 'the pong first');
    const err = JSON.parse(frames[1].payload.toString());
    assertEqual([err.type, err.data.type], ['error', 'no-such'], 'the reassembled message was answered');
    conn.sock.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])));
    assertEqual(await rawCloseCode(conn, 'close echo'), 1000, 'close code echoed');
    await rawWait(conn, (c) => (c.ended ? true : undefined), 'the server closes the TCP connection');
  });

  await check('bad handshakes: no key 400, version 12 426, no user 401, POST 405, no Upgrade 400 — all JSON', async () => {
    const path = '/api/notifications/ws?user=alice';
    const cases = [
      [handshakeHead(d, path, { 'Sec-WebSocket-Key': null }).text, 400],
      [handshakeHead(d, path, { 'Sec-WebSocket-Version': '12' }).text, 426],
      [handshakeHead(d, '/api/notifications/ws').text, 401],
      [handshakeHead(d, path).text.replace(/^GET/, 'POST').replace('\r\n\r\n', '\r\nContent-Length: 0\r\n\r\n'), 405],
      [handshakeHead(d, path, { Upgrade: null, Connection: null }).text, 400],
    ];
    for (const [head, status] of cases) {
      const r = await rawHttp(d, head);
      const what = `${head.split('\r\n')[0]} (${status})`;
      assertEqual(r.status, status, `${what}: status`);
      assert(/application\/json/.test(r.headers['content-type'] || ''), `${what}: content-type "${r.headers['content-type']}"`);
      let body;
      try { body = JSON.parse(r.body); } catch { throw new CheckFailure(`${what}: body is not JSON: ${r.body}`); }
      assert(typeof body.error === 'string' && body.error, `${what}: body ${r.body}`);
      if (status === 426) assertEqual(r.headers['sec-websocket-version'], '13', `${what}: Sec-WebSocket-Version`);
    }
  });

  await check('/metrics counts WebSocket connections', async () => {
    const text = await (await fetch(`${d.base}/metrics`)).text();
    assert(/websocket/.test(text), 'no websocket metric in /metrics');
  });

  let other;
  await check('a second demo with --allowed-origin and --typing-pairs none starts', async () => {
    other = await startDemo('notify-demo (origins)', ['--batch-ms', '0', '--allowed-origin', 'http://good.example',
      '--allowed-origin', 'https://also-good.example:8443', '--typing-pairs', 'none']);
  });
  if (other) {
    await check('--allowed-origin: a listed origin or none is accepted, another is refused with 403', async () => {
      for (const origin of ['http://good.example', 'HTTPS://also-good.example:8443', undefined]) {
        const c = await openWs(other, { user: 'alice' }, { headers: origin ? { Origin: origin } : {}, label: `origin ${origin}` });
        await c.inbox.take((m) => m.type === 'init', 'init');
        c.ws.close(1000);
      }
      for (const origin of ['http://evil.example', 'http://good.example:8080', 'null']) {
        const r = await rawHttp(other, handshakeHead(other, '/api/notifications/ws?user=alice', { Origin: origin }).text);
        assertEqual(r.status, 403, `Origin ${origin}: status`);
        assert(JSON.parse(r.body).error, `Origin ${origin}: body ${r.body}`);
      }
    });

    await check('--typing-pairs none: typing is refused with an error', async () => {
      const c = await openWs(other, { user: 'alice' });
      await c.inbox.take((m) => m.type === 'init', 'init');
      send(c, { type: 'typing', to: 'bob', context: 'x' });
      const err = await c.inbox.take((x) => x.type === 'error', 'error');
      assertEqual(err.data.type, 'typing', 'error data.type');
      c.ws.close(1000);
    });
  }

  if (opts.redisServer) {
    const redis = new RedisServer(opts.redisServer);
    redisServers.push(redis);
    let r;
    await check('--store redis://: a socket gets init while Redis is up', async () => {
      await redis.start();
      r = await startDemo('notify-demo --store redis', ['--batch-ms', '0', '--store', redis.url]);
      const c = await openWs(r, { user: 'away' });
      await c.inbox.take((m) => m.type === 'init', 'init');
      c.ws.close(1000);
    });
    if (r) {
      await check('with Redis away, the handshake completes and the socket is closed with 1013 (try again later)', async () => {
        await redis.stop();
        const c = await openWs(r, { user: 'away' }, { label: 'while Redis is away' });
        const closed = await Promise.race([c.closed, sleep(5000).then(() => null)]);
        assert(closed, 'not closed within 5 s');
        assertEqual(closed.code, 1013, 'close code');
        await c.inbox.none(() => true, 'no message before the close', 0);
      });

      await check('once Redis is back, a socket gets its init again', async () => {
        await redis.start();
        let init = null;
        for (let attempt = 0; attempt < 20 && !init; attempt++) { // the store reconnects on use
          const c = await openWs(r, { user: 'away' }, { label: `after Redis, attempt ${attempt + 1}` });
          const got = await Promise.race([
            c.inbox.take((m) => m.type === 'init', 'init').catch(() => null),
            c.closed.then(() => null),
          ]);
          if (got) init = got;
          c.ws.close(1000);
          if (!init) await sleep(250);
        }
        assert(init, 'no init within 20 attempts');
      });
    }
  }

  if (opts.nginx) {
    // nginx as docs/DEPLOYMENT.md configures it, with a proxy_read_timeout of seconds instead of
    // an hour so that it shows in a test: 5 s in front of `d` (heartbeats every 30 s), 8 s in
    // front of a demo that sends them every 2 s (a quiet connection can go almost two intervals
    // without a byte, and a loaded machine delays a sweep: 5 s once cut one under TSan). (A
    // WebSocket client has one heartbeat to answer a ping: 2 s, not 1, leaves room too.)
    const nginx = new Nginx(opts.nginx);
    proxies.push(nginx);
    let viaSlow;
    let viaFast;
    await check('nginx starts in front of the demo (heartbeat 30 s) and of one with --heartbeat 2', async () => {
      const fast = await startDemo('notify-demo --heartbeat 2', ['--batch-ms', '0', '--heartbeat', '2']);
      const recipe = (port, upstream, timeout) => `
  upstream ${upstream.name} { server 127.0.0.1:${upstream.port}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location /api/notifications/stream {
      proxy_pass http://${upstream.name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout ${timeout};
    }
    location /api/notifications/ws {
      proxy_pass http://${upstream.name};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout ${timeout};
    }
    location / {
      proxy_pass http://${upstream.name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`;
      await nginx.start(2, ([p1, p2]) => recipe(p1, { name: 'slow_heartbeat', port: d.port }, '5s') +
                                         recipe(p2, { name: 'fast_heartbeat', port: fast.port }, '8s'));
      viaSlow = { base: `http://127.0.0.1:${nginx.ports[0]}`, port: nginx.ports[0] };
      viaFast = { base: `http://127.0.0.1:${nginx.ports[1]}`, port: nginx.ports[1] };
    });
    if (viaSlow) {
      await check('nginx: an SSE stream gets init and each notification as it is published, not held in a buffer', async () => {
        const s = await openSse(viaSlow, 'proxied');
        await s.inbox.take((e) => e.event === 'init', 'init');
        for (const title of ['first through nginx', 'second through nginx']) {
          const id = await publish(viaSlow, { userId: 'proxied', type: 'comment', title });
          const e = await s.inbox.take((x) => x.event === 'notification', `"${title}"`, 2000);
          assertEqual([e.id, e.data.title], [id, title], 'the notification');
        }
        s.close();
      });

      await check('nginx: a WebSocket gets init, a notification and a read receipt, and session:end then 4401', async () => {
        const c = await openWs(viaSlow, { user: 'proxied-ws' }, { label: 'ws through nginx' });
        await c.inbox.take((m) => m.type === 'init', 'init');
        const id = await publish(viaSlow, { userId: 'proxied-ws', type: 'comment', title: 'over the proxy' });
        assertEqual((await c.inbox.take((m) => m.type === 'notification', 'notification')).id, id, 'notification id');
        send(c, { type: 'notification:read', id });
        assertEqual((await c.inbox.take((m) => m.type === 'notification:read', 'notification:read')).data,
          { ids: [id], unreadCount: 0 }, 'the read receipt');
        const res = await fetch(`${viaSlow.base}/api/sessions/end?user=proxied-ws`, { method: 'POST' });
        assertEqual(res.status, 200, 'status of POST /api/sessions/end through nginx');
        await c.inbox.take((m) => m.type === 'session:end', 'session:end');
        const closed = await Promise.race([c.closed, sleep(5000).then(() => null)]);
        assert(closed, 'not closed within 5 s');
        assertEqual([closed.code, closed.reason], [4401, 'logged_out'], 'close code and reason');
      });

      await check('nginx: with heartbeats (2 s) well below proxy_read_timeout (8 s) a quiet stream and socket stay open', async () => {
        const s = await openSse(viaFast, 'quiet');
        const c = await openWs(viaFast, { user: 'quiet' }, { label: 'quiet ws through nginx' });
        await s.inbox.take((e) => e.event === 'init', 'init');
        await c.inbox.take((m) => m.type === 'init', 'init');
        await sleep(10000);
        assert(!s.inbox.ended, `the stream ended: ${s.inbox.ended}`);
        assert(!c.inbox.ended, `the socket ended: ${c.inbox.ended}`);
        // Heartbeats a page's script sees (a client watches for silence with them).
        assert(s.inbox.heartbeats >= 3 && c.heartbeats >= 3,
          `heartbeats in 10 s: ${s.inbox.heartbeats} on the stream, ${c.heartbeats} on the socket`);
        const id = await publish(viaFast, { userId: 'quiet', type: 'comment', title: 'after 10 s' });
        assertEqual((await s.inbox.take((x) => x.event === 'notification', 'the notification after 10 s')).id, id, 'SSE id');
        assertEqual((await c.inbox.take((m) => m.type === 'notification', 'the notification after 10 s')).id, id, 'WS id');
        s.close();
        c.ws.close(1000);
      });

      await check('nginx: with heartbeats (30 s) above proxy_read_timeout (5 s) nginx cuts a quiet stream, which is why they must be below', async () => {
        const s = await openSse(viaSlow, 'cut');
        await s.inbox.take((e) => e.event === 'init', 'init');
        for (let waited = 0; !s.inbox.ended && waited < 12000; waited += 100) await sleep(100);
        // nginx drops the response without its end (the client sees it aborted).
        assert(s.inbox.ended, 'nginx did not cut the quiet stream within 12 s');
      });
    }
  }

  if (opts.beast) await beastChecks();
  if (opts.openssl) await tlsChecks();

  await check('shutdown (SIGTERM) closes open sockets with 1001', () => shutdownCloses(d, 'notify-demo', 'last'));
}

/** examples/beast: notify inside a Boost.Beast server, which hands it the streams' sockets. */
async function beastChecks() {
  let b;
  await check('notify-beast (notify in a Boost.Beast server) starts and prints its address', async () => {
    b = await startDemo('notify-beast', [], opts.beast, []);
  });
  if (!b) return;

  let ws;
  let wsDeflate;
  let sse;
  let ids = [];
  await check('beast: a stream and two sockets (one with permessage-deflate) get init, then each notification POSTed through Beast', async () => {
    sse = await openSse(b, 'bea');
    await sse.inbox.take((e) => e.event === 'init', 'SSE init');
    ws = await openWs(b, { user: 'bea' }, { label: 'bea ws' });
    await ws.inbox.take((m) => m.type === 'init', 'init');
    wsDeflate = await openWs(b, { user: 'bea' }, { deflate: true, label: 'bea ws deflate' });
    assert(/permessage-deflate/.test(wsDeflate.upgrade['sec-websocket-extensions'] || ''),
      `permessage-deflate not negotiated: ${JSON.stringify(wsDeflate.upgrade)}`);
    await wsDeflate.inbox.take((m) => m.type === 'init', 'init');
    for (let i = 1; i <= 3; i++) ids.push(await publish(b, { userId: 'bea', title: `via Beast ${i}`, data: { n: i } }));
    const expected = ids.map((id, i) => [id, `via Beast ${i + 1}`, i + 1]);
    // notify-beast keeps the hub's default batching window (200 ms): these may come as one batch.
    for (const inbox of [ws.inbox, wsDeflate.inbox, sse.inbox]) {
      const got = await takeNotifications(inbox, ids.length, 'notification');
      assertEqual(got.map((n) => [n.id, n.title, n.data.n]), expected, `${inbox.label}: notifications`);
    }
  });

  await check('beast: a read receipt sent on one socket reaches the other socket and the stream', async () => {
    assert(ids.length === 3, 'needs the notifications of the check before');
    send(ws, { type: 'notification:read', id: ids[0] });
    for (const inbox of [ws.inbox, wsDeflate.inbox]) {
      const r = await inbox.take((x) => x.type === 'notification:read', 'notification:read');
      assertEqual(r.data, { ids: [ids[0]], unreadCount: 2 }, `${inbox.label}: notification:read data`);
    }
    const e = await sse.inbox.take((x) => x.event === 'notification:read', 'SSE notification:read');
    assertEqual(e.data, { ids: [ids[0]], unreadCount: 2 }, 'SSE notification:read data');
  });

  await check('beast: resume with ?lastEventId= replays exactly the missed notifications', () => resumeReplaysMissed(b, 'bert'));

  await check('beast: an SSE stream resumes from its Last-Event-ID header (as EventSource sends it)', async () => {
    const first = await openSse(b, 'bess');
    await first.inbox.take((e) => e.event === 'init', 'SSE init');
    const seen = await publish(b, { userId: 'bess', title: 'seen' });
    await takeNotifications(first.inbox, 1, 'the first notification');
    first.close();
    const missed = [];
    for (let i = 1; i <= 2; i++) missed.push(await publish(b, { userId: 'bess', title: `missed ${i}` }));
    const again = await openSse(b, 'bess', { 'Last-Event-ID': seen });
    await again.inbox.take((e) => e.event === 'init', 'SSE init after resume');
    const got = await takeNotifications(again.inbox, missed.length, 'a replayed notification');
    assertEqual(got.map((n) => n.id), missed, 'replayed ids, in order');
    again.close();
  });

  await check('beast: bad requests get JSON errors: no handshake key 400 (from notify), no user 400, a bad notification 400, an unknown path 404', async () => {
    const noKey = await rawHttp(b, handshakeHead(b, '/api/notifications/ws?user=x', { 'Sec-WebSocket-Key': null }).text);
    assertEqual(noKey.status, 400, 'handshake without Sec-WebSocket-Key');
    assert(/key/i.test(JSON.parse(noKey.body).error), `error: ${noKey.body}`);
    const noUser = await fetch(`${b.base}/api/notifications/stream`);
    assertEqual([noUser.status, typeof (await noUser.json()).error], [400, 'string'], 'stream without a user');
    const bad = await fetch(`${b.base}/api/notifications`, { method: 'POST', body: '{"userId":"x","title":5}' });
    const badBody = await bad.json();
    assertEqual(bad.status, 400, 'a title that is a number');
    assert(/title/.test(badBody.error), `the error names the field: ${JSON.stringify(badBody)}`);
    const notJson = await fetch(`${b.base}/api/notifications`, { method: 'POST', body: '{"userId":' });
    assertEqual(notJson.status, 400, 'a body that is not JSON');
    // The parser's message quotes the bad bytes; the answer must still be JSON (it once
    // threw on them and ended the process).
    const badUtf8 = await fetch(`${b.base}/api/notifications`, { method: 'POST', body: Buffer.from('{"userId":\xff\xfe', 'latin1') });
    assertEqual([badUtf8.status, typeof (await badUtf8.json()).error], [400, 'string'], 'a body with invalid UTF-8');
    assertEqual((await fetch(`${b.base}/nope`)).status, 404, 'the server still answers');
    const none = await fetch(`${b.base}/nope`);
    assertEqual([none.status, typeof (await none.json()).error], [404, 'string'], 'an unknown path');
  });

  await check('beast --max-connections 1: a second stream is refused with 503 and JSON, from the hub through notify\'s socket', async () => {
    const one = await startDemo('notify-beast --max-connections 1', ['--max-connections', '1'], opts.beast, []);
    const first = await openSse(one, 'uno');
    await first.inbox.take((e) => e.event === 'init', 'SSE init');
    const refused = await fetch(`${one.base}/api/notifications/stream?user=dos`);
    const body = await refused.json();
    assertEqual(refused.status, 503, 'a stream over the limit');
    assert(/connections/.test(body.error), `error: ${JSON.stringify(body)}`);
    const ws = await rawHttp(one, handshakeHead(one, '/api/notifications/ws?user=dos').text);
    assertEqual(ws.status, 503, 'a socket over the limit');
    first.close();
    await stopDemo(one);
  });

  await check('beast: SIGTERM closes open sockets with 1001 and ends streams, and notify-beast exits with 0',
    () => shutdownCloses(b, 'notify-beast', 'last-beast'));
}

async function tlsChecks() {
  let t;
  await check('tls: notify-demo with --tls-cert and --tls-key starts and prints an https address', async () => {
    const { cert, key } = makeCertificate(opts.openssl);
    t = await startDemo('notify-demo (tls)', ['--batch-ms', '0', '--tls-cert', cert, '--tls-key', key, '--request-timeout', '1500']);
    assert(t.base.startsWith('https://'), `address: ${t.base}`);
    t.ca = readFileSync(cert);
  });
  if (!t) return;

  await check('tls: a stream (https) and two sockets (wss, one with permessage-deflate) get init, then each notification POSTed over https', async () => {
    const sse = await openSse(t, 'tia');
    await sse.inbox.take((e) => e.event === 'init', 'SSE init');
    const ws = await openWs(t, { user: 'tia' }, { label: 'tia wss' });
    await ws.inbox.take((m) => m.type === 'init', 'init');
    const deflated = await openWs(t, { user: 'tia' }, { deflate: true, label: 'tia wss deflate' });
    assert(/permessage-deflate/.test(deflated.upgrade['sec-websocket-extensions'] || ''),
      `permessage-deflate not negotiated: ${JSON.stringify(deflated.upgrade)}`);
    await deflated.inbox.take((m) => m.type === 'init', 'init');
    const ids = [];
    for (let i = 1; i <= 3; i++) ids.push(await publish(t, { userId: 'tia', title: `over TLS ${i}`, data: { n: i } }));
    const expected = ids.map((id, i) => [id, `over TLS ${i + 1}`, i + 1]);
    for (const inbox of [ws.inbox, deflated.inbox, sse.inbox]) {
      const got = await takeNotifications(inbox, ids.length, 'notification');
      assertEqual(got.map((n) => [n.id, n.title, n.data.n]), expected, `${inbox.label}: notifications`);
    }
    // A read receipt sent over one TLS socket reaches the other socket and the stream.
    send(ws, { type: 'notification:read', id: ids[0] });
    const r = await deflated.inbox.take((x) => x.type === 'notification:read', 'notification:read');
    assertEqual(r.data, { ids: [ids[0]], unreadCount: 2 }, 'notification:read data');
    const e = await sse.inbox.take((x) => x.event === 'notification:read', 'SSE notification:read');
    assertEqual(e.data, { ids: [ids[0]], unreadCount: 2 }, 'SSE notification:read data');
    sse.close();
    ws.ws.close(1000);
    deflated.ws.close(1000);
  });

  await check('tls: resume over wss with ?lastEventId= replays exactly the missed notifications', () => resumeReplaysMissed(t, 'tom'));

  await check('tls: plain HTTP sent to the TLS port gets a 400 with a JSON error, and the server goes on', async () => {
    const plain = await rawHttp(t, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    assertEqual(plain.status, 400, 'plain HTTP on the TLS port');
    assert(/https/.test(JSON.parse(plain.body).error), `error: ${plain.body}`);
    const health = await httpsRequest(t, '/healthz');
    assertEqual(health.status, 200, 'https after it');
  });

  await check('tls: a client that stops in the middle of its handshake is closed after --request-timeout', async () => {
    const conn = await rawConnect(t);
    const started = Date.now();
    conn.sock.write(Buffer.from([0x16, 0x03, 0x01]));  // the start of a ClientHello, then nothing
    await rawWait(conn, (c) => (c.ended ? true : undefined), 'the server to close the stalled handshake', 10000);
    const waited = Date.now() - started;
    assert(waited >= 1000, `closed after ${waited} ms, before the 1.5 s timeout`);
    const health = await httpsRequest(t, '/healthz');
    assertEqual(health.status, 200, 'https after it');
  });

  await check('tls: SIGTERM closes open wss sockets with 1001 and ends https streams, and the demo exits with 0',
    () => shutdownCloses(t, 'notify-demo (tls)', 'last-tls'));
}

const globalTimer = setTimeout(() => {
  console.error(`FAIL - the run exceeded its ${opts.timeout} s timeout`);
  failed++;
  finish();
}, opts.timeout * 1000);

let finishing = false;
async function finish() {
  if (finishing) return;
  finishing = true;
  clearTimeout(globalTimer);
  for (const s of sockets) try { s.terminate(); } catch { /* already gone */ }
  await Promise.all(demos.map(stopDemo));
  await Promise.all(redisServers.map((r) => r.stop()));
  await Promise.all(proxies.map((n) => n.stop()));
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().then(finish, (err) => {
  failed++;
  console.error(`FAIL - unexpected error: ${(err && err.stack) || err}`);
  finish();
});
