// notify demo page: wires NotifyClient (notify-client.js) to the DOM.
// All server-provided text goes through textContent / attributes, never innerHTML.

import { NotifyClient } from '/notify-client.js';

const TOAST_MS = 6000;
const MAX_TOASTS = 4;
const MAX_LOG = 12;

const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
const user = (params.get('user') || '').trim() || 'alice';
// ?transport=ws: WebSocket; anything else: Server-Sent Events.
const transport = params.get('transport') === 'ws' ? 'ws' : 'sse';
// The tabs of one user share one connection (?share=0: one per tab).
const shareConnection = params.get('share') !== '0';
const TRANSPORT_INFO = {
  sse: { name: 'Server-Sent Events', kind: 'EventSource', endpoint: '/api/notifications/stream' },
  ws: { name: 'WebSocket', kind: 'WebSocket', endpoint: '/api/notifications/ws' },
};
const TYPING_CONTEXT = 'demo-chat';
const TYPING_SHOW_MS = 3500; // an indicator lasts this long after the last typing event

// ---- icons (inline SVG built with DOM APIs) -----------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  comment: ['M5 5h14a1.5 1.5 0 0 1 1.5 1.5v9A1.5 1.5 0 0 1 19 17h-8l-4.5 3.5V17H5a1.5 1.5 0 0 1-1.5-1.5v-9A1.5 1.5 0 0 1 5 5z',
            'M8 10h8', 'M8 13h5'],
  mention: ['M15.5 12a3.5 3.5 0 1 1-7 0 3.5 3.5 0 0 1 7 0z',
            'M15.5 12v1.5a2.5 2.5 0 0 0 5 0V12a8.5 8.5 0 1 0-3.3 6.7'],
  order: ['M3.5 7.5L12 3.5l8.5 4v9L12 20.5l-8.5-4z', 'M3.5 7.5L12 11.5l8.5-4', 'M12 11.5v9', 'M7.75 5.5l8.5 4'],
  system: ['M12 3.5a8.5 8.5 0 1 1 0 17 8.5 8.5 0 0 1 0-17z', 'M12 11v5.5', 'M12 7.6v.1'],
  alert: ['M12 3.8L21 19.5H3z', 'M12 10v4.5', 'M12 17v.1'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  arrow: ['M5 12h13', 'M13 6l6 6-6 6'],
};
const TYPE_LABELS = { comment: 'Comment', mention: 'Mention', order: 'Order', system: 'System', alert: 'Alert' };

function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ICONS[name] || ICONS.system) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

function typeOf(n) {
  return Object.prototype.hasOwnProperty.call(TYPE_LABELS, n.type) ? n.type : 'system';
}

function typeIcon(n) {
  const t = typeOf(n);
  const wrap = el('span', `type-icon type-${t}`);
  wrap.title = TYPE_LABELS[t];
  wrap.appendChild(icon(t));
  return wrap;
}

// ---- small DOM helpers ---------------------------------------------------------------------

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = String(text);
  return e;
}

/** Only http(s) and same-site relative links are followed (never javascript: etc.). */
function safeUrl(raw) {
  if (typeof raw !== 'string' || !raw.trim()) return null;
  try {
    const u = new URL(raw.trim(), location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function relTime(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  if (d < 7) return d === 1 ? 'yesterday' : `${d} days ago`;
  return new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: 'numeric' });
}

function absTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : new Date(t).toLocaleString();
}

function hue(s) {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

// ---- header: user, connection --------------------------------------------------------------

const userInput = $('user-input');
userInput.value = user;
const avatar = $('user-avatar');
avatar.textContent = [...user][0].toUpperCase();
avatar.style.setProperty('--h', String(hue(user)));
$('target-me-label').textContent = `Me (${user})`;

/** This page's URL with some query parameters changed (null removes one). */
function pageUrl(changes) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v == null) q.delete(k);
    else q.set(k, v);
  }
  const qs = q.toString();
  return `${location.pathname}${qs ? `?${qs}` : ''}`;
}

$('new-tab-link').href = pageUrl({ user });

// ---- transport switch (SSE / WS), persisted in the URL ----------------------------------------

const info = TRANSPORT_INFO[transport];
for (const radio of document.querySelectorAll('#transport-switch input[name="transport"]')) {
  radio.checked = radio.value === transport;
  radio.addEventListener('change', () => {
    if (radio.checked && radio.value !== transport) {
      location.assign(pageUrl({ transport: radio.value === 'ws' ? 'ws' : null }));
    }
  });
}
$('conn-kind').textContent = info.kind;
$('conn-endpoint').textContent = info.endpoint;

$('user-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const next = userInput.value.trim();
  if (!next || next === user) return;
  const q = new URLSearchParams(location.search);
  q.set('user', next);
  location.search = q.toString();
});

const CONN_LABELS = {
  idle: 'Offline',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};
let sessionEnded = null; // the reason, while the session is over (click the state to reconnect)

let countdown = null;

function showState(state, info = {}) {
  const box = $('conn-state');
  box.dataset.state = state;
  clearInterval(countdown);
  countdown = null;
  const label = state === 'closed' && sessionEnded ? `Signed out (${sessionEnded}) — reconnect`
    : CONN_LABELS[state] || state;
  $('conn-label').textContent = label;
  box.title = state === 'open' ? `Connected as ${user} over ${info.name} — events arrive in real time` : label;
  if (state === 'reconnecting' && info.delay) {
    const deadline = Date.now() + info.delay;
    const tick = () => {
      const s = Math.ceil((deadline - Date.now()) / 1000);
      $('conn-label').textContent = s > 0 ? `Reconnecting in ${s} s…` : 'Reconnecting…';
      if (s <= 0) { clearInterval(countdown); countdown = null; }
    };
    tick();
    countdown = setInterval(tick, 250);
  }
}

// ---- bell + panel ----------------------------------------------------------------------------

const bell = $('bell');
const panel = $('panel');
const badge = $('unread-badge');
const list = $('notif-list');

function setPanel(open) {
  panel.hidden = !open;
  bell.setAttribute('aria-expanded', String(open));
  bell.classList.toggle('active', open);
  if (open) render();
}

bell.addEventListener('click', (e) => {
  e.stopPropagation();
  setPanel(panel.hidden);
});
document.addEventListener('click', (e) => {
  if (!panel.hidden && !panel.contains(e.target) && !bell.contains(e.target)) setPanel(false);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !panel.hidden) {
    setPanel(false);
    bell.focus();
  }
});

$('mark-all').addEventListener('click', async () => {
  try {
    await client.markAllRead();
  } catch (err) {
    logEvent('error', err.message, 'error');
  }
});

function renderBadge(count) {
  badge.textContent = count > 99 ? '99+' : String(count);
  badge.hidden = count <= 0;
  bell.setAttribute('aria-label', count > 0 ? `Notifications (${count} unread)` : 'Notifications');
  document.title = count > 0 ? `(${count > 99 ? '99+' : count}) notify demo` : 'notify demo';
  $('mark-all').disabled = count <= 0;
}

function notificationItem(n) {
  const li = el('li', 'notif' + (n.readAt ? '' : ' unread'));
  li.dataset.id = n.id;
  const btn = el('button', 'notif-btn');
  btn.type = 'button';
  btn.appendChild(typeIcon(n));

  const main = el('span', 'notif-main');
  main.appendChild(el('span', 'notif-title', n.title || '(untitled)'));
  if (n.body) main.appendChild(el('span', 'notif-body', n.body));
  const meta = el('span', 'notif-meta');
  const time = el('time', 'rel-time', relTime(n.createdAt));
  time.dateTime = n.createdAt || '';
  time.title = absTime(n.createdAt);
  meta.appendChild(time);
  if (n.broadcast) meta.appendChild(el('span', 'tag', 'broadcast'));
  if (n.actorId) meta.appendChild(el('span', 'meta-actor', `from ${n.actorId}`));
  main.appendChild(meta);
  btn.appendChild(main);

  if (!n.readAt) btn.appendChild(el('span', 'unread-dot'));
  const href = safeUrl(n.actionUrl);
  if (href) {
    const go = icon('arrow');
    go.classList.add('notif-go');
    btn.appendChild(go);
  }
  btn.setAttribute('aria-label', `${n.readAt ? '' : 'Unread: '}${n.title || ''}`);
  btn.addEventListener('click', () => openNotification(n.id));
  li.appendChild(btn);
  return li;
}

async function openNotification(id) {
  const n = client.get(id);
  if (!n) return;
  const href = safeUrl(n.actionUrl);
  const pending = n.readAt ? Promise.resolve() : client.markRead(id);
  try {
    // Let the POST finish before navigating away (bounded, so a slow server can't trap the user).
    await Promise.race([pending, new Promise((r) => setTimeout(r, 1500))]);
  } catch (err) {
    logEvent('error', err.message, 'error');
  }
  if (href) location.assign(href);
}

function render() {
  renderBadge(client.unreadCount);
  const items = client.notifications;
  $('panel-empty').hidden = items.length > 0;
  list.hidden = items.length === 0;
  $('panel-foot-text').textContent = items.length
    ? `${client.unreadCount} unread · ${items.length} shown`
    : `Live over ${info.name}`;
  if (panel.hidden) return; // the list itself is rendered lazily
  const frag = document.createDocumentFragment();
  for (const n of items) frag.appendChild(notificationItem(n));
  list.replaceChildren(frag);
}

// Keep relative times fresh.
setInterval(() => {
  const now = Date.now();
  for (const t of document.querySelectorAll('time.rel-time')) t.textContent = relTime(t.dateTime, now);
}, 30000);

// ---- toasts ----------------------------------------------------------------------------------

const toasts = $('toasts');

function dismissToast(t) {
  if (t.classList.contains('leaving')) return;
  clearTimeout(t._timer);
  t.classList.add('leaving');
  const done = () => t.remove();
  t.addEventListener('animationend', done, { once: true });
  setTimeout(done, 400);
}

function showToast(n) {
  const t = el('div', `toast type-${typeOf(n)}`);
  t.setAttribute('role', 'status');
  t.dataset.id = n.id;
  t.appendChild(typeIcon(n));

  const main = el('div', 'toast-main');
  main.appendChild(el('div', 'toast-title', n.title || '(untitled)'));
  if (n.body) main.appendChild(el('div', 'toast-body', n.body));
  const href = safeUrl(n.actionUrl);
  if (href) {
    const a = el('a', 'toast-action', 'Open');
    a.href = href;
    a.appendChild(icon('arrow'));
    a.addEventListener('click', (e) => {
      e.preventDefault();
      dismissToast(t);
      openNotification(n.id);
    });
    main.appendChild(a);
  }
  t.appendChild(main);

  const close = el('button', 'toast-close');
  close.type = 'button';
  close.setAttribute('aria-label', 'Dismiss');
  close.appendChild(icon('close'));
  close.addEventListener('click', () => dismissToast(t));
  t.appendChild(close);

  const bar = el('div', 'toast-progress');
  bar.style.animationDuration = `${TOAST_MS}ms`;
  t.appendChild(bar);

  // Pause the countdown while hovered.
  let remaining = TOAST_MS;
  let started = Date.now();
  const arm = () => {
    started = Date.now();
    t._timer = setTimeout(() => dismissToast(t), remaining);
  };
  t.addEventListener('mouseenter', () => {
    clearTimeout(t._timer);
    remaining -= Date.now() - started;
    t.classList.add('paused');
  });
  t.addEventListener('mouseleave', () => {
    t.classList.remove('paused');
    arm();
  });

  toasts.appendChild(t);
  const live = toasts.querySelectorAll('.toast:not(.leaving)');
  for (let i = 0; i < live.length - MAX_TOASTS; i++) dismissToast(live[i]);
  arm();
}

// ---- event log -------------------------------------------------------------------------------

const logList = $('event-log');

function logEvent(name, text, kind = '') {
  const li = el('li', `log-item ${kind}`);
  li.appendChild(el('time', 'log-time', new Date().toLocaleTimeString([], { hour12: false })));
  li.appendChild(el('span', 'log-name', name));
  li.appendChild(el('span', 'log-text', text));
  logList.prepend(li);
  while (logList.children.length > MAX_LOG) logList.lastElementChild.remove();
}

function showCursor() {
  $('cursor').textContent = `cursor ${client.lastEventId ?? '—'}`;
}

// ---- the client ------------------------------------------------------------------------------

let historyLoaded = false;

const client = new NotifyClient({
  transport,
  shareConnection,
  url: '/api/notifications/stream',
  wsUrl: '/api/notifications/ws',
  user,
  onStateChange(state, prev, info) {
    showState(state, info);
    if (state === 'reconnecting') logEvent('reconnecting', `connection lost, retrying in ${(info.delay / 1000).toFixed(1)} s`, 'warn');
  },
  onInit({ notifications, unreadCount }) {
    logEvent('init', `${unreadCount} unread, ${notifications.length} in snapshot`, 'ok');
    showCursor();
    if (!historyLoaded) {
      historyLoaded = true;
      // The stream snapshot holds unread notifications only; show recent read ones too.
      client.loadHistory({ limit: 30 }).catch(() => {});
    }
  },
  onNotification(n, { batch }) {
    logEvent(batch ? 'notifications:batch' : 'notification', n.title || n.id);
    showCursor();
    showToast(n);
    if (n.actorId) stopTyping(n.actorId); // their message arrived: they stopped typing
  },
  onRead({ ids, unreadCount }) {
    logEvent('notification:read', `${ids.length} read, ${unreadCount} unread`);
    for (const id of ids) {
      const t = toasts.querySelector(`.toast[data-id="${CSS.escape(id)}"]`);
      if (t) dismissToast(t);
    }
  },
  onReset({ unreadCount }) {
    logEvent('notifications:reset', `state replaced, ${unreadCount} unread`, 'warn');
    showCursor();
  },
  onChange() {
    render();
  },
  onTyping({ from, context }) {
    if (context === TYPING_CONTEXT) showTyping(from);
  },
  onSessionEnd({ reason }) {
    sessionEnded = reason;
    logEvent('session:end', `the server ended this session (${reason}); not reconnecting`, 'warn');
    showState(client.state);
  },
  onError(err) {
    if (err && err.serverError) logEvent('error', err.message.replace(/^notify: /, ''), 'error');
    console.warn(err);
  },
});

showState(client.state);
render();
window.notifyClient = client; // handy for poking around in devtools
$('conn-state').addEventListener('click', () => {
  if (!sessionEnded) return;
  sessionEnded = null;
  client.connect(); // the demo's auth is ?user=, so the same user is let in again
});

// ---- "send a test notification" form --------------------------------------------------------

const form = $('send-form');
const usersInput = $('f-users');
const curlBox = $('curl');

function payload() {
  const f = new FormData(form);
  const body = { type: f.get('type'), title: String(f.get('title') || '').trim() };
  const text = String(f.get('body') || '').trim();
  if (text) body.body = text;
  const action = String(f.get('actionUrl') || '').trim();
  if (action) body.actionUrl = action;
  body.actorId = user;
  const target = f.get('target');
  if (target === 'broadcast') {
    body.broadcast = true;
  } else if (target === 'user') {
    const ids = String(f.get('users') || '').split(/[\s,]+/).filter(Boolean);
    if (ids.length > 1) body.userIds = ids;
    else body.userId = ids[0] || '';
  } else {
    body.userId = user;
  }
  return body;
}

function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function renderCurl() {
  const target = new FormData(form).get('target');
  usersInput.hidden = target !== 'user';
  usersInput.required = target === 'user';
  const json = JSON.stringify(payload(), null, 2).replace(/\n/g, '\n  ');
  curlBox.textContent =
    `curl -X POST ${location.origin}/api/notifications \\\n` +
    `  -H 'Content-Type: application/json' \\\n` +
    `  -d ${shellQuote(json)}`;
}

form.addEventListener('input', renderCurl);
form.addEventListener('change', renderCurl);
renderCurl();

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const status = $('send-status');
  const btn = $('send-btn');
  const body = payload();
  btn.disabled = true;
  status.className = 'send-status';
  status.textContent = 'Sending…';
  try {
    const res = await fetch('/api/notifications', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const out = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(out.error || `HTTP ${res.status}`);
    const ids = out.ids || (out.id != null ? [out.id] : []);
    status.classList.add('ok');
    status.textContent = ids.length === 1 ? `Sent — id ${ids[0]}` : `Sent — ${ids.length} notifications`;
  } catch (err) {
    status.classList.add('err');
    status.textContent = `Failed: ${err.message}`;
  } finally {
    btn.disabled = false;
  }
});

$('copy-curl').addEventListener('click', async () => {
  const text = curlBox.textContent;
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    const range = document.createRange();
    range.selectNodeContents(curlBox);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    sel.removeAllRanges();
  }
  $('copy-label').textContent = ok ? 'Copied' : 'Press Ctrl+C';
  setTimeout(() => { $('copy-label').textContent = 'Copy'; }, 1600);
});

// ---- typing indicator ("bob is typing…") ---------------------------------------------------

const chatTo = $('chat-to');
const chatInput = $('chat-input');
const chatStatus = $('chat-status');
const typingBox = $('typing-indicator');
const typers = new Map(); // user -> timer that hides them

$('chat-me').textContent = user;
chatTo.value = (params.get('to') || '').trim() || (user === 'bob' ? 'alice' : 'bob');
if (transport === 'ws') {
  $('chat-chip').textContent = 'over WebSocket';
} else {
  $('chat-chip').textContent = 'receiving only';
  $('chat-chip').title = 'Over SSE the page receives typing events but cannot send them';
  $('chat-hint').hidden = false;
  $('chat-switch').href = pageUrl({ transport: 'ws' });
}

function renderTyping() {
  const names = [...typers.keys()];
  typingBox.hidden = names.length === 0;
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = `${names.length} people are typing…`;
  $('typing-text').textContent = text;
}

function showTyping(from) {
  const known = typers.has(from);
  clearTimeout(typers.get(from));
  typers.set(from, setTimeout(() => stopTyping(from), TYPING_SHOW_MS));
  if (!known) logEvent('typing', `${from} is typing`);
  renderTyping();
}

function stopTyping(from) {
  if (!typers.has(from)) return;
  clearTimeout(typers.get(from));
  typers.delete(from);
  renderTyping();
}

chatInput.addEventListener('input', () => {
  if (!chatInput.value.trim()) return;
  // Throttled by the client (one per second per recipient); a no-op over SSE.
  client.sendTyping(chatTo.value.trim(), TYPING_CONTEXT);
});

$('chat-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const to = chatTo.value.trim();
  const text = chatInput.value.trim();
  if (!to || !text) {
    (to ? chatInput : chatTo).focus();
    return;
  }
  chatStatus.className = 'send-status';
  chatStatus.textContent = 'Sending…';
  try {
    const res = await fetch('/api/notifications', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ userId: to, type: 'comment', title: `Message from ${user}`, body: text, actorId: user }),
    });
    const out = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(out.error || `HTTP ${res.status}`);
    chatInput.value = '';
    chatStatus.classList.add('ok');
    chatStatus.textContent = `Sent to ${to}`;
    clearTimeout(chatStatus._timer);
    chatStatus._timer = setTimeout(() => { chatStatus.textContent = ''; }, 3000);
  } catch (err) {
    chatStatus.classList.add('err');
    chatStatus.textContent = `Failed: ${err.message}`;
  }
});
