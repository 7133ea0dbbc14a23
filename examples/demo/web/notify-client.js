/**
 * notify-client.js — dependency-free browser client for the notify protocol over Server-Sent
 * Events or WebSocket (see docs/PROTOCOL.md).
 *
 * Usage
 * -----
 *   import { NotifyClient } from '/notify-client.js';
 *
 *   const client = new NotifyClient({
 *     transport: 'sse',                  // 'sse' (EventSource, default) or 'ws' (WebSocket)
 *     url: '/api/notifications/stream',  // SSE endpoint (default shown)
 *     wsUrl: '/api/notifications/ws',    // WebSocket endpoint (default: apiBase + '/ws'); a
 *                                        // relative one gets ws: or wss: from the page's location
 *     apiBase: '/api/notifications',     // base of the REST endpoints (default: url without /stream)
 *     user: 'alice',                     // sent as ?user=U on every request (optional)
 *     withCredentials: false,            // EventSource/fetch credentials mode (optional)
 *     shareConnection: false,            // one connection for all tabs of this origin, user
 *                                        // and transport (see "Tabs" below)
 *     onInit(snapshot)        {},        // {notifications, unreadCount} — first (or resumed) snapshot
 *     onNotification(n, meta) {},        // a NEW notification (live, or an item of a batch); meta = {batch}
 *     onRead({ids, unreadCount}) {},     // ids that became read (from any tab/device)
 *     onReset(snapshot)       {},        // the server replaced our state (cursor too old / queue collapsed)
 *     onStateChange(state, prev) {},     // 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'
 *     onSessionEnd({reason})  {},        // the server ended the session (logout, expired token):
 *                                        // the client is 'closed' and does not reconnect; call
 *                                        // connect() once the user has authenticated again
 *     onChange(client)        {},        // anything in the list / unread count changed: re-render
 *     onTyping({from, context}) {},      // someone is typing to us (ephemeral; see sendTyping)
 *     onMessage({type, data, id}) {},    // any other event type the host sends (send_to / reply)
 *     eventTypes: ['chat'],              // over SSE, the names of those other events: an
 *                                        // EventSource hands a named event only to listeners of
 *                                        // that name (over WebSocket every type arrives anyway)
 *     heartbeatTimeoutMs: undefined,     // silence after which the connection counts as dead
 *                                        // (default: from the server's heartbeat interval,
 *                                        // see "Connection behaviour"); 0 turns the check off
 *     onError(err)            {},        // malformed event, failed request, server error message...
 *   });
 *   client.connect();            // (also done by the constructor unless {autoConnect:false})
 *   client.notifications;        // copy of the list, newest first
 *   client.unreadCount;          // authoritative unread count (from the server)
 *   client.state;                // connection state, see above
 *   client.transport;            // 'sse' or 'ws' (what is actually used)
 *   await client.markRead(id);   // ws open: {"type":"notification:read","id":ID} on the socket,
 *                                // else POST {apiBase}/{id}/read?user=U (also when the socket's
 *                                // message rate, 20/s and 40 at once on the server, is used up)
 *   await client.markAllRead();  // ws open: {"type":"notifications:read_all"}, else
 *                                // POST {apiBase}/read-all?user=U
 *   client.sendTyping(to, context); // ws only: {"type":"typing","to":to,"context":context},
 *                                // throttled to one per second per (to, context); call it on
 *                                // every keystroke. Returns true when a message went out.
 *   await client.loadHistory({limit: 30}); // GET {apiBase}?user=U&limit=N, merges read items too
 *                                // (not those past the stream, which brings them itself)
 *   client.close();
 *
 * NotifyClient is also an EventTarget, so several parts of a page can listen with
 * addEventListener. The same hooks are dispatched as CustomEvents (payload in event.detail):
 *   'init' / 'reset'  {notifications, unreadCount}
 *   'notification'    {notification, batch}
 *   'read'            {ids, unreadCount}
 *   'statechange'     {state, prev, delay?}      (fires again for every reconnect attempt while
 *                                                 'reconnecting'; delay: ms until that attempt)
 *   'change'          {notifications, unreadCount}
 *   'typing'          {from, context}
 *   'sessionend'      {reason}
 *   'message'         {type, data, id}              (event types the client does not know)
 *   'error'           Error (a server {"type":"error"} message has err.serverError = true and
 *                           err.messageType = the type of the message it answers; with
 *                           shareConnection, only the tab that sent that message gets it)
 *
 * Connection behaviour (the same for both transports)
 * --------------------
 * - The state is 'connecting' until the first `init` event arrives, then 'open'; after an error
 *   it is 'reconnecting' until the next `init` (or `notifications:reset`).
 * - On any EventSource error, or when the WebSocket closes, the client drops the connection and
 *   opens a new one after an exponential backoff (1 s, 2 s, 4 s … each jittered by ±30%, and
 *   never above 30 s: 21 to 30 s once there); the backoff resets when the server has brought a connection up to date (`init`
 *   or `notifications:reset`), not when it opens. The browser's own fixed EventSource retry is
 *   never used.
 * - It remembers the last event id it saw (init / notification / notifications:batch /
 *   notifications:reset) and resumes with `?lastEventId=ID` on the new connection, so no event
 *   is lost or repeated across reconnects. When the browser comes back online, a pending
 *   reconnect happens immediately.
 * - `session:end` (over WebSocket also close code 4401) means the server ended the session:
 *   reconnecting with the same credentials would be refused, so the client closes, keeps its
 *   list and cursor, and reports onSessionEnd; connect() later resumes from the cursor.
 * - Over WebSocket every message is `{"type":T,"id":ID?,"data":D}` and T is routed exactly like
 *   the SSE event name T. The server pings on every heartbeat; the browser answers by itself.
 * - A connection that is silent for too long is taken for dead and replaced (resuming, as
 *   above): a network that went away without a word (a laptop that slept, a NAT that forgot
 *   the connection) leaves an EventSource or a WebSocket open for many minutes otherwise. The
 *   server sends a `heartbeat` event (WebSocket: {"type":"heartbeat"}) when it had nothing
 *   else to send for an interval, and says the interval in `init` (`heartbeatMs`, 30 s by
 *   default); the connection is replaced after twice that and a margin (half of it, at least
 *   5 s) without any event, or after `heartbeatTimeoutMs`.
 * - Notifications are de-duplicated by id; `notification:read` carries the authoritative unread
 *   count, `notifications:reset` replaces the whole state.
 *
 * Tabs (shareConnection: true)
 * ----
 * Browsers allow 6 HTTP/1.1 connections per origin, and each tab's EventSource holds one. With
 * shareConnection the tabs of one origin elect a leader (the Web Locks API): only the leader
 * connects, and it relays every event and state change to the others over a BroadcastChannel;
 * a tab that joins gets the leader's list and count at once. When the leader tab closes, the
 * next tab takes the lock and connects, resuming from the last id it was relayed, so nothing is
 * lost in the hand-over; meanwhile every tab is 'reconnecting'. An error the server answers to
 * one tab's message reaches that tab only. Read receipts from any tab go over HTTP (or the leader's socket, for
 * typing). Without the Web Locks API (a page not served over https or from localhost) each tab
 * connects on its own, as without the option. `client.leader` says which this tab is.
 */

const DEFAULT_STREAM_URL = '/api/notifications/stream';
const TYPING_THROTTLE_MS = 1000;
/** WebSocket close codes that mean the client did something wrong (worth an onError). */
const WS_ERROR_CODES = new Map([
  [1002, 'protocol error'],
  [1003, 'unsupported data'],
  [1007, 'invalid payload'],
  [1008, 'policy violation (too many messages, or too slow)'],
  [1009, 'message too big'],
  [1011, 'server error'],
]);
/** The WebSocket close code of a session the server ended (after a `session:end` message). */
const WS_SESSION_ENDED = 4401;
const SESSION_END_LOCK_HOLD_MS = 1000;
// What the client sends on its WebSocket stays under the server's limit (20 messages a second,
// 40 at once, then close 1008), with a margin: past it a read receipt goes over HTTP instead.
const WS_MESSAGES_PER_SECOND = 15;
const WS_MESSAGE_BURST = 30;
const BACKOFF_INITIAL_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const BACKOFF_JITTER = 0.3; // ±30%
// The server's heartbeat interval until its `init` says otherwise (the demo's default).
const DEFAULT_HEARTBEAT_MS = 30000;
const WATCHDOG_MARGIN_MS = 5000;

export const ConnectionState = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  OPEN: 'open',
  RECONNECTING: 'reconnecting',
  CLOSED: 'closed',
});

/**
 * Delay before reconnect attempt number `attempt` (0-based), jittered by ±30 %; once the
 * doubling reaches the cap, only downwards (21 to 30 s), so that the cap holds.
 */
export function backoffDelay(attempt, random = Math.random) {
  const base = BACKOFF_INITIAL_MS * 2 ** Math.min(attempt, 16);
  if (base >= BACKOFF_MAX_MS) return Math.round(BACKOFF_MAX_MS * (1 - random() * BACKOFF_JITTER));
  const factor = 1 + (random() * 2 - 1) * BACKOFF_JITTER;
  return Math.round(Math.min(BACKOFF_MAX_MS, base * factor));
}

/**
 * Appends params (skipping null/undefined) to url's query string. Values are encoded with
 * encodeURIComponent (so a space is %20, never '+').
 */
function withQuery(url, params) {
  const hashAt = url.indexOf('#');
  const hash = hashAt >= 0 ? url.slice(hashAt) : '';
  let base = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v != null) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  if (parts.length) base += (base.includes('?') ? (/[?&]$/.test(base) ? '' : '&') : '?') + parts.join('&');
  return base + hash;
}

/** An absolute ws:/wss: URL for `url` (relative to the page, http(s) mapped to ws(s)). */
function toWebSocketUrl(url) {
  const base = typeof location !== 'undefined' ? location.href : 'http://localhost/';
  const u = new URL(url, base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.href;
}

/** Whether id `a` comes after `cursor` (the demo's ids are increasing decimal numbers). */
function isAfter(a, cursor) {
  if (cursor == null) return false;
  try {
    return BigInt(String(a)) > BigInt(String(cursor));
  } catch {
    return false; // not numbers: nothing to compare
  }
}

function timeOf(n) {
  const t = Date.parse(n && n.createdAt);
  return Number.isNaN(t) ? 0 : t;
}

export class NotifyClient extends EventTarget {
  constructor(options = {}) {
    super();
    this._opts = { ...options };
    this._url = options.url || DEFAULT_STREAM_URL;
    this._apiBase = (options.apiBase || this._url.replace(/\/stream\/?(\?.*)?$/, '')).replace(/\/+$/, '');
    this._wsUrl = options.wsUrl || `${this._apiBase}/ws`;
    this._user = options.user != null && options.user !== '' ? String(options.user) : null;
    this._withCredentials = !!options.withCredentials;
    const wanted = options.transport === 'ws' ? 'ws' : 'sse';
    // Without WebSocket support (very old browsers) the SSE transport is used.
    this._transport = wanted === 'ws' && typeof WebSocket === 'undefined' ? 'sse' : wanted;

    this._es = null;
    this._ws = null;
    this._share = !!options.shareConnection && typeof BroadcastChannel !== 'undefined' &&
      typeof navigator !== 'undefined' && !!navigator.locks &&
      typeof navigator.locks.request === 'function';
    this._channel = null;       // the BroadcastChannel of the tabs sharing one connection
    this._leader = false;       // this tab holds the lock and the connection
    this._lockAbort = null;     // aborts our place in the lock's queue
    this._releaseLock = null;   // gives the lock up (the leader's)
    this._tabId = Math.random().toString(36).slice(2);
    this._sent = 0;             // messages this tab sent on a socket: each one's "ref" is tabId.n
    /** (to, context) -> time of the last typing message sent */
    this._typingSentAt = new Map();
    this._timer = null;
    this._attempt = 0;
    this._lastEventId = options.lastEventId != null ? String(options.lastEventId) : null;
    this._state = ConnectionState.IDLE;
    this._hadInit = false;

    /** @type {Map<string, object>} id -> notification */
    this._byId = new Map();
    /** @type {object[]} newest first */
    this._list = [];
    this._unread = 0;
    /** ids marked read optimistically, waiting for the server's confirmation */
    this._pendingRead = new Set();
    /** bumped whenever the server says what the unread count is (read events, snapshots) */
    this._countEpoch = 0;
    this._wsTokens = WS_MESSAGE_BURST;
    this._wsRefilledAt = 0;
    this._eventTypes = Array.isArray(options.eventTypes) ? options.eventTypes.map(String) : [];
    this._heartbeatMs = DEFAULT_HEARTBEAT_MS; // the server's, from its init
    this._lastTraffic = 0;   // when the connection last said anything (or opened)
    this._watchdog = null;   // the interval timer that looks for a silent connection

    this._onOnline = () => {
      if (this._state === ConnectionState.RECONNECTING && this._timer) {
        clearTimeout(this._timer);
        this._timer = null;
        this._open();
      }
    };
    if (options.autoConnect !== false) this.connect();
  }

  // ---- public read-only state --------------------------------------------------------------

  get state() { return this._state; }
  get unreadCount() { return this._unread; }
  get lastEventId() { return this._lastEventId; }
  get user() { return this._user; }
  /** True when this tab holds the connection the tabs share (or shares nothing). */
  get leader() { return !this._share || this._leader; }
  /** 'sse' or 'ws'. */
  get transport() { return this._transport; }
  /** Copy of the notification list, newest first. */
  get notifications() { return this._list.slice(); }
  get(id) { return this._byId.get(String(id)); }

  // ---- connection -------------------------------------------------------------------------

  connect() {
    if (this._es || this._ws || this._timer || this._channel) return;
    this._attempt = 0;
    if (typeof window !== 'undefined' && window.addEventListener) {
      window.addEventListener('online', this._onOnline);
    }
    this._setState(ConnectionState.CONNECTING);
    if (this._share) this._joinTabs();
    else this._open();
  }

  /** Joins the tabs that share one connection: waits for the lock, and follows meanwhile. */
  _joinTabs() {
    const endpoint = this._transport === 'ws' ? this._wsUrl : this._url;
    const name = `notify-client:${this._transport}:${endpoint}:${this._user || ''}`;
    const channel = new BroadcastChannel(name);
    this._channel = channel;
    channel.onmessage = (ev) => { if (this._channel === channel) this._onTabMessage(ev.data); };
    const abort = new AbortController();
    this._lockAbort = abort;
    navigator.locks.request(name, { signal: abort.signal }, () => {
      if (this._channel !== channel) return undefined; // closed meanwhile: give it up at once
      this._lockAbort = null;
      this._leader = true;
      // Until this tab's own connection is up to date, neither it nor the tabs that follow it
      // are connected: say so to all of them (the old leader's last word was 'open').
      if (this._hadInit) this._setState(ConnectionState.RECONNECTING, { delay: 0 });
      this._open();
      return new Promise((resolve) => { this._releaseLock = resolve; });
    }).catch(() => { /* aborted by close() */ });
    this._post({ kind: 'hello', from: this._tabId });
  }

  _post(message) {
    if (!this._channel) return;
    try {
      this._channel.postMessage(message);
    } catch (err) {
      this._emitError(err);
    }
  }

  /** What another tab of the same connection said. */
  _onTabMessage(m) {
    if (!m || typeof m !== 'object') return;
    if (m.kind === 'hello') {
      if (this._leader && this._hadInit) {
        this._post({ kind: 'snapshot', to: m.from, notifications: this._list, unreadCount: this._unread,
                     lastEventId: this._lastEventId, state: this._state });
      }
    } else if (m.kind === 'snapshot') {
      if (this._leader || m.to !== this._tabId) return;
      this._onInit({ notifications: m.notifications, unreadCount: m.unreadCount }, m.lastEventId);
      if (m.state !== ConnectionState.OPEN) this._setState(m.state);
    } else if (m.kind === 'event') {
      if (m.to != null && m.to !== this._tabId) return; // an error answering another tab
      // session:end ends every tab, a tab that has just become the leader too.
      if (!this._leader || m.type === 'session:end') this._dispatch(m.type, m.data, m.id, false);
    } else if (m.kind === 'state') {
      if (!this._leader) this._setState(m.state, m.extra);
    } else if (m.kind === 'send') {
      if (this._leader) this._wsSend(m.message);
    }
  }

  close() {
    this._leaveTabs(0);
    this._closeConnection();
  }

  /**
   * Leaves the tabs that share a connection; the lock goes to the next tab after `delayMs`.
   */
  _leaveTabs(delayMs) {
    if (this._lockAbort) { this._lockAbort.abort(); this._lockAbort = null; }
    if (this._releaseLock) {
      const release = this._releaseLock;
      this._releaseLock = null;
      if (delayMs > 0) setTimeout(release, delayMs);
      else release();
    }
    this._leader = false;
    if (this._channel) { this._channel.close(); this._channel = null; }
  }

  /** How long a connection may stay silent before it is taken for dead; 0: never. */
  _silenceLimit() {
    const option = this._opts.heartbeatTimeoutMs;
    if (typeof option === 'number' && option >= 0) return option;
    return 2 * this._heartbeatMs + Math.max(this._heartbeatMs / 2, WATCHDOG_MARGIN_MS);
  }

  /** One check a little more often than the limit allows; it runs while a connection is up. */
  _armWatchdog() {
    const limit = this._silenceLimit();
    if (this._watchdog || limit <= 0) return;
    this._watchdog = setInterval(() => {
      if (!this._es && !this._ws) return;
      const silence = Date.now() - this._lastTraffic;
      if (silence <= this._silenceLimit()) return;
      // Nothing, not even a heartbeat: the connection is dead though nothing said so.
      if (this._es) { this._es.close(); this._es = null; }
      if (this._ws) {
        const ws = this._ws;
        this._ws = null;
        try { ws.close(4000, 'silent'); } catch { /* already closing */ }
      }
      this._scheduleReconnect();
    }, Math.max(50, Math.min(limit / 4, WATCHDOG_MARGIN_MS)));
  }

  _closeConnection() {
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    if (this._watchdog) { clearInterval(this._watchdog); this._watchdog = null; }
    if (this._es) { this._es.close(); this._es = null; }
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try { ws.close(1000); } catch { /* already closing */ }
    }
    if (typeof window !== 'undefined' && window.removeEventListener) {
      window.removeEventListener('online', this._onOnline);
    }
    this._setState(ConnectionState.CLOSED);
  }

  _streamUrl() {
    return withQuery(this._url, { user: this._user, lastEventId: this._lastEventId || null });
  }

  _open() {
    this._timer = null;
    if (this._state === ConnectionState.CLOSED) return;
    this._lastTraffic = Date.now();
    this._armWatchdog();
    if (this._transport === 'ws') this._openWebSocket();
    else this._openEventSource();
  }

  _openEventSource() {
    const es = new EventSource(this._streamUrl(), { withCredentials: this._withCredentials });
    this._es = es;

    es.addEventListener('error', () => {
      if (this._es !== es) return;
      // Take over reconnection: close the browser's EventSource and retry with our backoff.
      es.close();
      this._es = null;
      this._scheduleReconnect();
    });

    // Named SSE events are only delivered to listeners of their name.
    es.addEventListener('open', () => { if (this._es === es) this._lastTraffic = Date.now(); });
    const names = new Set(['init', 'notification', 'notifications:batch', 'notification:read',
                           'notifications:reset', 'typing', 'session:end', 'heartbeat',
                           ...this._eventTypes]);
    for (const name of names) {
      es.addEventListener(name, (ev) => {
        if (this._es !== es) return;
        this._lastTraffic = Date.now();
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (err) {
          this._emitError(new Error(`notify: malformed "${name}" event: ${err.message}`));
          return;
        }
        // ev.lastEventId is the stream's last id, which an event without `id:` inherits;
        // _dispatch only remembers it for the events that carry one.
        this._dispatch(name, data, ev.lastEventId || null);
      });
    }
  }

  _openWebSocket() {
    const url = toWebSocketUrl(withQuery(this._wsUrl, { user: this._user, lastEventId: this._lastEventId || null }));
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this._emitError(err);
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;

    ws.addEventListener('close', (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      if (ev.code === WS_SESSION_ENDED) { // without its message (it comes first): the same end
        this._dispatch('session:end', { reason: ev.reason || 'ended' }, null);
        return;
      }
      const why = WS_ERROR_CODES.get(ev.code);
      if (why) {
        const err = new Error(`notify: the server closed the WebSocket: ${ev.code} ${why}${ev.reason ? ` (${ev.reason})` : ''}`);
        err.code = ev.code;
        this._emitError(err);
      }
      this._scheduleReconnect();
    });
    // 'error' is always followed by 'close', which reconnects.
    ws.addEventListener('open', () => { if (this._ws === ws) this._lastTraffic = Date.now(); });
    ws.addEventListener('message', (ev) => {
      if (this._ws !== ws) return;
      this._lastTraffic = Date.now();
      if (typeof ev.data !== 'string') {
        this._emitError(new Error('notify: unexpected binary WebSocket message'));
        return;
      }
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        this._emitError(new Error(`notify: malformed WebSocket message: ${err.message}`));
        return;
      }
      if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
        this._emitError(new Error('notify: WebSocket message without a "type"'));
        return;
      }
      this._dispatch(msg.type, msg.data, msg.id != null ? String(msg.id) : null);
    });
  }

  /**
   * Sends a JSON message over the WebSocket when it is open. Returns true when sent. A tab that
   * follows another hands it to the leader when `relay` (no answer comes back to it).
   */
  _wsSend(message, relay = false) {
    // The server's `error` answering a message carries its ref: the leader of shared tabs
    // gives it to the tab that sent the message, and to no other.
    if (message.ref == null) message = { ...message, ref: `${this._tabId}.${++this._sent}` };
    if (relay && this._share && this._channel && !this._leader && this._transport === 'ws') {
      this._post({ kind: 'send', message });
      return true;
    }
    const ws = this._ws;
    if (!ws || ws.readyState !== 1 /* OPEN */ || !this._takeWsToken()) return false;
    try {
      ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** One message of the socket's budget (see WS_MESSAGES_PER_SECOND); false when used up. */
  _takeWsToken() {
    const now = Date.now();
    if (this._wsRefilledAt) {
      this._wsTokens = Math.min(WS_MESSAGE_BURST,
        this._wsTokens + ((now - this._wsRefilledAt) / 1000) * WS_MESSAGES_PER_SECOND);
    }
    this._wsRefilledAt = now;
    if (this._wsTokens < 1) return false;
    this._wsTokens -= 1;
    return true;
  }

  /**
   * Routes one event (an SSE event name or a WebSocket message type) to its handler; the
   * leader of shared tabs relays what its connection received (`fromServer`) to the others.
   */
  _dispatch(type, data, id, fromServer = true) {
    if (type === 'heartbeat') return; // counted as traffic where it arrived; nothing else
    if (fromServer && this._leader) {
      if (type !== 'error') {
        this._post({ kind: 'event', type, data, id });
      } else {
        // An error answers one message: another tab's, relayed here, goes to that tab only.
        const ref = data && typeof data.ref === 'string' ? data.ref : '';
        const tab = ref.slice(0, ref.lastIndexOf('.'));
        if (tab && tab !== this._tabId) {
          this._post({ kind: 'event', type, data, id, to: tab });
          return;
        }
      }
    }
    const handler = Object.prototype.hasOwnProperty.call(this._handlers, type) ? this._handlers[type] : null;
    try {
      if (handler) handler.call(this, data, id);
      else this._emit('message', { type, data, id }, 'onMessage', { type, data, id });
    } catch (err) {
      this._emitError(err);
    }
  }

  // ---- event handlers (one per event type, see _handlers below) ------------------------------

  _onInit(data, id) {
    // The backoff resets once the server has brought the connection up to date, not when it
    // opens: a server that cannot read its store answers each attempt and ends it at once
    // (an SSE stream with a comment, WebSocket close 1013), and those attempts must back off.
    this._attempt = 0;
    this._rememberId(id);
    this._applySnapshot(data, /* keepRead */ true, id);
    this._hadInit = true;
    this._setState(ConnectionState.OPEN);
    this._emit('init', this._snapshot(), 'onInit', this._snapshot());
    this._changed();
  }

  _onNotification(data, id) {
    this._rememberId(id);
    if (this._add(data, true)) {
      this._emitNotification(this._byId.get(String(data.id)), false);
      this._changed();
    }
  }

  _onBatch(data, id) {
    this._rememberId(id);
    const items = Array.isArray(data) ? data : [];
    const added = [];
    for (const n of items) if (this._add(n, true)) added.push(n); // oldest first
    for (const n of added) this._emitNotification(this._byId.get(String(n.id)), true);
    if (added.length) this._changed();
  }

  _onRead(data) {
    data = data || {};
    const ids = Array.isArray(data.ids) ? data.ids.map(String) : [];
    const now = new Date().toISOString();
    for (const id of ids) {
      this._pendingRead.delete(id);
      const n = this._byId.get(id);
      if (n && !n.readAt) n.readAt = now;
    }
    if (typeof data.unreadCount === 'number') {
      this._unread = data.unreadCount;
      this._countEpoch++;
    }
    this._emit('read', { ids, unreadCount: this._unread }, 'onRead', { ids, unreadCount: this._unread });
    this._changed();
  }

  _onReset(data, id) {
    this._attempt = 0;
    this._rememberId(id);
    this._applySnapshot(data, /* keepRead */ false);
    this._hadInit = true; // a state to hand to a tab that joins, as after an init
    this._setState(ConnectionState.OPEN);
    this._emit('reset', this._snapshot(), 'onReset', this._snapshot());
    this._changed();
  }

  _onTyping(data) {
    if (!data || typeof data.from !== 'string') return;
    const info = { from: data.from, context: typeof data.context === 'string' ? data.context : '' };
    this._emit('typing', info, 'onTyping', info);
  }

  _onSessionEnd(data) {
    const reason = data && typeof data.reason === 'string' ? data.reason : 'ended';
    // The leader keeps the lock a moment, so that the other tabs read the session:end it
    // relayed before one of them could take the lock and connect with the old credentials.
    this._leaveTabs(SESSION_END_LOCK_HOLD_MS);
    this._closeConnection();
    this._emit('sessionend', { reason }, 'onSessionEnd', { reason });
  }

  _onServerError(data) {
    const message = data && typeof data.message === 'string' ? data.message : 'unknown error';
    const err = new Error(`notify: the server answered: ${message}`);
    err.serverError = true;
    err.messageType = data && typeof data.type === 'string' ? data.type : null;
    this._emitError(err);
  }

  _emitNotification(n, batch) {
    this._emit('notification', { notification: n, batch }, 'onNotification', n, { batch });
  }

  _scheduleReconnect() {
    if (this._state === ConnectionState.CLOSED || this._timer) return;
    const delay = backoffDelay(this._attempt++);
    this._setState(ConnectionState.RECONNECTING, { delay });
    this._timer = setTimeout(() => this._open(), delay);
  }

  _rememberId(id) {
    if (id) this._lastEventId = String(id);
  }

  // ---- state ------------------------------------------------------------------------------

  _normalize(n) {
    return { ...n, id: String(n.id), readAt: n.readAt || null };
  }

  /** Adds a notification if its id is new. Returns true when added. */
  _add(raw, live) {
    if (!raw || raw.id == null) return false;
    const n = this._normalize(raw);
    if (this._byId.has(n.id)) return false;
    this._byId.set(n.id, n);
    if (live) {
      this._list.unshift(n);
      if (!n.readAt) this._unread += 1;
    } else {
      this._insertSorted(n);
    }
    return true;
  }

  _insertSorted(n) {
    const t = timeOf(n);
    let i = 0;
    while (i < this._list.length && timeOf(this._list[i]) >= t) i++;
    this._list.splice(i, 0, n);
  }

  /**
   * Applies an init / reset snapshot. With keepRead (a resumed init) notifications already read
   * locally stay in the list; unread ones missing from a complete snapshot were read elsewhere
   * while we were away, unless they are newer than the snapshot's `cursor` (a tab that takes
   * over the shared connection resumes from an older id than another tab has seen): those stay
   * unread and counted, and their replay, which follows, is a duplicate. Without keepRead
   * (reset) the state is replaced entirely.
   */
  _applySnapshot(data, keepRead, cursor = null) {
    const heartbeat = data && data.heartbeatMs;
    if (typeof heartbeat === 'number' && heartbeat >= 1000 && heartbeat !== this._heartbeatMs) {
      this._heartbeatMs = heartbeat;
      if (this._watchdog) { // checks as often as the new limit needs
        clearInterval(this._watchdog);
        this._watchdog = null;
        this._armWatchdog();
      }
    }
    const items = Array.isArray(data && data.notifications) ? data.notifications : [];
    const count = typeof (data && data.unreadCount) === 'number' ? data.unreadCount : items.length;
    const snap = items.filter((n) => n && n.id != null).map((n) => this._normalize(n));
    const snapIds = new Set(snap.map((n) => n.id));

    let keep = [];
    let newer = 0; // unread, past the cursor: not in the snapshot's count
    if (keepRead && this._hadInit) {
      const complete = snap.length >= count;
      const now = new Date().toISOString();
      for (const n of this._list) {
        if (snapIds.has(n.id)) continue;
        if (!n.readAt && isAfter(n.id, cursor)) {
          keep.push(n);
          newer++;
          continue;
        }
        if (!n.readAt && complete) n.readAt = now;
        if (n.readAt) keep.push(n);
      }
    }
    this._byId = new Map();
    this._list = [];
    this._pendingRead.clear();
    for (const n of snap) { this._byId.set(n.id, n); this._list.push(n); } // newest first
    for (const n of keep) { this._byId.set(n.id, n); this._insertSorted(n); }
    this._unread = count + newer;
    this._countEpoch++;
  }

  _snapshot() {
    return { notifications: this.notifications, unreadCount: this._unread };
  }

  // ---- REST actions -----------------------------------------------------------------------

  _apiUrl(path, params = {}) {
    return withQuery(this._apiBase + path, { user: this._user, ...params });
  }

  async _request(method, path, params) {
    const res = await fetch(this._apiUrl(path, params), {
      method,
      headers: { Accept: 'application/json' },
      credentials: this._withCredentials ? 'include' : 'same-origin',
    });
    let body = null;
    try { body = await res.json(); } catch { /* empty or non-JSON body */ }
    if (!res.ok) {
      const msg = body && body.error ? body.error : `HTTP ${res.status}`;
      const err = new Error(`notify: ${method} ${path} failed: ${msg}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  /** Marks one notification read (optimistically, then confirmed by the stream). */
  async markRead(id) {
    id = String(id);
    const n = this._byId.get(id);
    const optimistic = !!(n && !n.readAt);
    const epoch = this._countEpoch;
    if (optimistic) {
      n.readAt = new Date().toISOString();
      this._unread = Math.max(0, this._unread - 1);
      this._pendingRead.add(id);
      this._changed();
    }
    // Over an open WebSocket the read receipt is a message; the server's notification:read
    // (to every connection of the user, this one included) confirms it.
    if (this._wsSend({ type: 'notification:read', id })) return { ids: optimistic ? [id] : [], sent: 'ws' };
    try {
      const res = await this._request('POST', `/${encodeURIComponent(id)}/read`);
      this._pendingRead.delete(id);
      return res;
    } catch (err) {
      if (optimistic && this._pendingRead.delete(id) && n.readAt) {
        n.readAt = null;
        // A count the server sent meanwhile already has it unread.
        if (this._countEpoch === epoch) this._unread += 1;
        this._changed();
      }
      this._emitError(err);
      throw err;
    }
  }

  /** Marks every notification of the user read. */
  async markAllRead() {
    const changed = [];
    const now = new Date().toISOString();
    for (const n of this._list) {
      if (n.readAt) continue;
      n.readAt = now;
      changed.push(n);
      this._pendingRead.add(n.id);
    }
    this._unread = 0;
    const epoch = this._countEpoch;
    this._changed();
    if (this._wsSend({ type: 'notifications:read_all' })) return { ids: changed.map((n) => n.id), sent: 'ws' };
    try {
      const res = await this._request('POST', '/read-all');
      for (const n of changed) this._pendingRead.delete(n.id);
      return res;
    } catch (err) {
      // Undo what the stream has not confirmed meanwhile (its notification:read, or a
      // snapshot, settles those); the count goes back up only while it is still ours: one the
      // server sent since counts them unread already, and what arrived since is counted.
      let undone = 0;
      for (const n of changed) {
        if (this._pendingRead.delete(n.id) && n.readAt === now) {
          n.readAt = null;
          undone++;
        }
      }
      if (this._countEpoch === epoch) this._unread += undone;
      this._changed();
      this._emitError(err);
      throw err;
    }
  }

  /**
   * Tells `to` that this user is typing in `context` (WebSocket only: returns false, sending
   * nothing, over SSE or while the socket is not open). Throttled: at most one message per
   * second for each (to, context), so call it on every keystroke; the server relays at most
   * one per 500 ms and the receiving page shows its indicator for a few seconds.
   */
  sendTyping(to, context = '') {
    to = to == null ? '' : String(to).trim();
    context = String(context);
    if (!to || to === this._user) return false;
    const key = `${to}\u0000${context}`;
    const now = Date.now();
    const last = this._typingSentAt.get(key);
    if (last != null && now - last < TYPING_THROTTLE_MS) return false;
    if (!this._wsSend({ type: 'typing', to, context }, true)) return false;
    this._typingSentAt.set(key, now);
    if (this._typingSentAt.size > 64) {
      for (const [k, t] of this._typingSentAt) if (now - t >= TYPING_THROTTLE_MS) this._typingSentAt.delete(k);
    }
    return true;
  }

  /**
   * Loads recent history (read ones included) with the REST API and merges it into the list.
   * The unread count stays the stream's.
   */
  async loadHistory({ limit = 30 } = {}) {
    const body = await this._request('GET', '', { limit });
    const items = Array.isArray(body && body.notifications) ? body.notifications : [];
    let added = 0;
    // One past the stream's position is still on its way: the stream brings it as a new one
    // (counted, announced). Merged here first, it would be taken for one already seen.
    for (const n of items) if (!this._beyondStream(n) && this._add(n, false)) added++;
    if (added) this._changed();
    return this.notifications;
  }

  /** Whether `n` is past the last event the stream brought. */
  _beyondStream(n) {
    return !!n && n.id != null && isAfter(n.id, this._lastEventId);
  }

  // ---- events -----------------------------------------------------------------------------

  _setState(state, extra) {
    const prev = this._state;
    // Same state again is only reported for a new reconnect attempt (it carries a new delay).
    if (prev === state && !(extra && extra.delay != null)) return;
    this._state = state;
    const info = { state, prev, ...(extra || {}) };
    if (this._leader) this._post({ kind: 'state', state, extra: extra || null });
    this.dispatchEvent(new CustomEvent('statechange', { detail: info }));
    this._call('onStateChange', state, prev, info);
  }

  _changed() {
    this.dispatchEvent(new CustomEvent('change', { detail: this._snapshot() }));
    this._call('onChange', this);
  }

  _emitError(err) {
    this.dispatchEvent(new CustomEvent('error', { detail: err }));
    this._call('onError', err);
  }

  /** Dispatches `type` with `detail` and calls the option callback with `args`. */
  _emit(type, detail, callbackName, ...args) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
    this._call(callbackName, ...args);
  }

  _call(name, ...args) {
    const cb = this._opts[name];
    if (typeof cb !== 'function') return;
    try {
      cb.apply(this, args);
    } catch (err) {
      reportError(err); // a broken callback must not break the stream handling
    }
  }
}

NotifyClient.prototype._handlers = Object.freeze({
  init: NotifyClient.prototype._onInit,
  notification: NotifyClient.prototype._onNotification,
  'notifications:batch': NotifyClient.prototype._onBatch,
  'notification:read': NotifyClient.prototype._onRead,
  'notifications:reset': NotifyClient.prototype._onReset,
  typing: NotifyClient.prototype._onTyping,
  'session:end': NotifyClient.prototype._onSessionEnd,
  error: NotifyClient.prototype._onServerError,
});

function reportError(err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}

export default NotifyClient;
