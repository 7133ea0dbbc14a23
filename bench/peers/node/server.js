'use strict';
// The benchmark's reference peer: the seed's Node.js design, serving the same endpoints
// and event shapes as notify-demo (docs/PROTOCOL.md) so that bench/run can drive both
// with one load generator.
//
//   - Express; SSE responses kept in a Map user -> Set of responses
//   - one 30 s heartbeat timer per connection
//   - an in-memory store: per-user arrays (and one array of broadcasts), ids increasing
//   - `init` snapshot on connect: unread notifications, newest first, and the unread count
//   - `ws` for the WebSocket endpoint, messages {"type":T,"id":ID,"data":D}
//   - a publish serializes the notification for each user it goes to, then writes it to
//     each of that user's connections (res.write / ws.send)
//
// Usage: node server.js [--port N] [--bind ADDR] [--heartbeat SECONDS]
// Prints "listening on http://ADDR:PORT" once it accepts connections.

const http = require('http');
const express = require('express');
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
  const opts = { port: 8080, bind: '127.0.0.1', heartbeat: 30 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = inline !== undefined ? inline : argv[++i];
    if (flag === '--port') opts.port = Number(value);
    else if (flag === '--bind') opts.bind = value;
    else if (flag === '--heartbeat') opts.heartbeat = Number(value);
    else if (flag === '--batch-ms' || flag === '--threads') { /* accepted, ignored: no batching, one thread */ }
    else {
      console.error(`unknown option ${argv[i]}`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const TYPES = new Set(['comment', 'mention', 'order', 'system', 'alert']);
const SNAPSHOT_LIMIT = 50;

// --- the store -------------------------------------------------------------------------
let nextId = 1;
const byUser = new Map();   // user -> [notification], oldest first
const broadcasts = [];      // broadcast notifications, oldest first

function str(v) { return typeof v === 'string' && v !== '' ? v : null; }

// The same fields, in the same (sorted) order as notify's JSON.
function makeNotification(body, userId, broadcast) {
  const n = {
    actionUrl: str(body.actionUrl),
    actorId: str(body.actorId),
    body: str(body.body),
  };
  if (broadcast) n.broadcast = true;
  n.createdAt = new Date().toISOString();
  n.data = body.data && typeof body.data === 'object' ? body.data : {};
  n.entityId = str(body.entityId);
  n.entityType = str(body.entityType);
  n.id = String(nextId++);
  n.imageUrl = str(body.imageUrl);
  n.readAt = null;
  n.title = body.title;
  n.type = body.type;
  if (!broadcast) n.userId = userId;
  return n;
}

function store(n) {
  if (n.broadcast) {
    broadcasts.push(n);
  } else {
    let list = byUser.get(n.userId);
    if (!list) byUser.set(n.userId, (list = []));
    list.push(n);
  }
}

function snapshot(userId) {
  const own = byUser.get(userId) || [];
  const unread = [];
  let i = own.length - 1;
  let j = broadcasts.length - 1;
  let count = 0;
  // Merge newest first (ids increase).
  while (i >= 0 || j >= 0) {
    let n;
    if (j < 0 || (i >= 0 && Number(own[i].id) > Number(broadcasts[j].id))) n = own[i--];
    else n = broadcasts[j--];
    if (n.readAt !== null) continue;
    count++;
    if (unread.length < SNAPSHOT_LIMIT) unread.push(n);
  }
  return { notifications: unread, unreadCount: count };
}

// --- connections -----------------------------------------------------------------------
const sseClients = new Map();  // user -> Set<res>
const wsClients = new Map();   // user -> Set<ws>

function add(map, user, conn) {
  let set = map.get(user);
  if (!set) map.set(user, (set = new Set()));
  set.add(conn);
}

function remove(map, user, conn) {
  const set = map.get(user);
  if (!set) return;
  set.delete(conn);
  if (set.size === 0) map.delete(user);
}

function sendToUser(userId, event, n) {
  const sse = sseClients.get(userId);
  if (sse) {
    const payload = `id: ${n.id}\nevent: ${event}\ndata: ${JSON.stringify(n)}\n\n`;
    for (const res of sse) res.write(payload);
  }
  const ws = wsClients.get(userId);
  if (ws) {
    const message = JSON.stringify({ type: event, id: n.id, data: n });
    for (const socket of ws) socket.send(message);
  }
}

function broadcast(event, n) {
  const users = new Set([...sseClients.keys(), ...wsClients.keys()]);
  for (const userId of users) sendToUser(userId, event, n);
}

// --- HTTP ------------------------------------------------------------------------------
const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.json({ limit: '128kb' }));

function userOf(req) {
  const u = req.query.user || req.get('x-user-id');
  return typeof u === 'string' && u !== '' ? u : null;
}

app.get('/api/notifications/stream', (req, res) => {
  const userId = userOf(req);
  if (!userId) return res.status(401).json({ error: 'user: missing (pass ?user= or an X-User-Id header)' });
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 3000\n\n');
  res.write(`event: init\ndata: ${JSON.stringify(snapshot(userId))}\n\n`);
  add(sseClients, userId, res);
  const heartbeat = setInterval(() => res.write(': hb\n\n'), opts.heartbeat * 1000);
  req.on('close', () => {
    clearInterval(heartbeat);
    remove(sseClients, userId, res);
  });
});

app.post('/api/notifications', (req, res) => {
  const body = req.body;
  if (!body || typeof body !== 'object' || Array.isArray(body))
    return res.status(400).json({ error: 'body: must be a JSON object' });
  if (!TYPES.has(body.type)) return res.status(400).json({ error: 'type: missing or not allowed' });
  if (typeof body.title !== 'string' || body.title === '')
    return res.status(400).json({ error: 'title: missing' });
  if (Array.isArray(body.userIds)) {
    const ids = [];
    for (const userId of body.userIds) {
      const n = makeNotification(body, userId, false);
      store(n);
      sendToUser(userId, 'notification', n);
      ids.push(n.id);
    }
    return res.status(202).json({ ids });
  }
  if (body.broadcast === true) {
    const n = makeNotification(body, null, true);
    store(n);
    broadcast('notification', n);
    return res.status(202).json({ id: n.id });
  }
  if (typeof body.userId === 'string' && body.userId !== '') {
    const n = makeNotification(body, body.userId, false);
    store(n);
    sendToUser(body.userId, 'notification', n);
    return res.status(202).json({ id: n.id });
  }
  return res.status(400).json({ error: 'userId: missing (or userIds, or broadcast)' });
});

app.get('/api/notifications', (req, res) => {
  const userId = userOf(req);
  if (!userId) return res.status(401).json({ error: 'user: missing' });
  res.json(snapshot(userId));
});

app.get('/healthz', (req, res) => res.json({ status: 'ok' }));

const server = http.createServer(app);

// --- WebSocket -------------------------------------------------------------------------
const wss = new WebSocketServer({ noServer: true });

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  const userId = url.searchParams.get('user') || req.headers['x-user-id'];
  if (url.pathname !== '/api/notifications/ws' || !userId) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(JSON.stringify({ type: 'init', data: snapshot(userId) }));
    add(wsClients, userId, ws);
    const heartbeat = setInterval(() => ws.ping(), opts.heartbeat * 1000);
    ws.on('close', () => {
      clearInterval(heartbeat);
      remove(wsClients, userId, ws);
    });
    ws.on('error', () => {});
  });
});

server.keepAliveTimeout = 60000;
server.listen(opts.port, opts.bind, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on http://${address}:${port}\n`);
});

function shutdown() {
  for (const set of sseClients.values()) for (const res of set) res.end();
  for (const set of wsClients.values()) for (const ws of set) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
