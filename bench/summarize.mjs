// bench/summarize.mjs: turns bench/run's runs.tsv into the markdown of docs/BENCHMARKS.md
// (medians over rounds, notify / peer ratios, the targets) and a gnuplot script for the chart.
//
//   node bench/summarize.mjs --runs OUT/runs.tsv --cdf-dir OUT/cdf --out OUT \
//        --command "bench/run" --rounds 2 --big 10000 --machine "..." --load "..." ...
//   node bench/summarize.mjs --splice OUT/BENCHMARKS.md --into docs/BENCHMARKS.md
//
// No dependencies: Node's standard library only.
import fs from 'node:fs';
import path from 'node:path';

const BEGIN = '<!-- bench:begin (written by bench/run; edit the text around it) -->';
const END = '<!-- bench:end -->';

function args(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  return o;
}
const opt = args(process.argv.slice(2));
const big = opt.big ? Number(opt.big).toLocaleString('en-US') : '';

if (opt.splice) {
  const generated = fs.readFileSync(opt.splice, 'utf8');
  const section = generated.slice(generated.indexOf(BEGIN), generated.indexOf(END) + END.length);
  let doc = fs.existsSync(opt.into) ? fs.readFileSync(opt.into, 'utf8') : '';
  const b = doc.indexOf(BEGIN.slice(0, 20));
  const e = doc.indexOf(END);
  if (b >= 0 && e > b) doc = doc.slice(0, b) + section + doc.slice(e + END.length);
  else doc += '\n' + section + '\n';
  fs.writeFileSync(opt.into, doc);
  process.exit(0);
}

// --- the runs ----------------------------------------------------------------------------
const runs = fs.readFileSync(opt.runs, 'utf8').split('\n').filter(Boolean).map((line) => {
  const [id, server, round, rc, command, json] = line.split('\t');
  let r = {};
  try { r = JSON.parse(json); } catch { /* a run that printed nothing */ }
  return { id, server, round: Number(round), rc: Number(rc), command, r };
});

const get = (obj, key) => key.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const of = (id, server) => runs.filter((x) => x.id === id && x.server === server);
const med = (id, server, key) => median(of(id, server).map((x) => get(x.r, key)));
// The best round of a series: the lowest (or highest) value over its rounds. On a shared
// machine a round can only be slowed down by its neighbours, never sped up.
const best = (id, server, key, pick = Math.min) => {
  const xs = of(id, server).map((x) => get(x.r, key)).filter((v) => typeof v === 'number');
  return xs.length ? pick(...xs) : undefined;
};
const sum = (id, server, key) => of(id, server).reduce((s, x) => s + (get(x.r, key) || 0), 0);

// --- formatting --------------------------------------------------------------------------
const sig = (x, n = 3) => {
  if (x === 0) return '0';
  const d = Math.max(0, n - 1 - Math.floor(Math.log10(Math.abs(x))));
  return x.toFixed(Math.min(d, 3));
};
const f = {
  rate: (x) => (x >= 1e6 ? `${sig(x / 1e6)}M` : x >= 1e3 ? `${sig(x / 1e3)}k` : sig(x)),
  us: (ns) => `${sig(ns / 1e3)} µs`,
  ms: (x) => `${sig(x)} ms`,
  kib: (x) => `${sig(x)} KiB`,
  mib: (kib) => `${sig(kib / 1024)} MiB`,
  s: (x) => `${sig(x)} s`,
  pct: (x) => `${Math.round(x * 100)} %`,
  n: (x) => `${Math.round(x)}`,
  int: (x) => Math.round(x).toLocaleString("en-US"),
};
const show = (v, fmt) => (v === undefined ? '—' : fmt(v));
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? '—' : `${sig(a / b, 2)}×`);

// A figure: [label, key or [keys], formatter, how] (how: 'median' or 'sum').
// The figures of a 1:1 load: the unicast rows and the store rows.
const oneToOne = [
  ['publishes/s', 'publishes_per_s', f.rate],
  ['delivery latency p50 / p99', ['latency_ms.p50', 'latency_ms.p99'], f.ms],
  ['POST round trip p50 / p99', ['publish_rtt_ms.p50', 'publish_rtt_ms.p99'], f.ms],
  ['server CPU per publish', 'server_cpu.ns_per_delivery', f.us],
  ['… user space', 'server_cpu.user_ns_per_delivery', f.us],
  ['… kernel', 'server_cpu.sys_ns_per_delivery', f.us],
  ['server CPU share', 'server_cpu.cpu_share', f.pct],
  ['load generator CPU share', 'loadgen_cpu_share', f.pct],
  ['lost / duplicates (all rounds)', ['lost', 'duplicates'], f.n, 'sum'],
];
const groups = [
  {
    base: 'idle', title: `Idle connections: ${big} held, RSS from /proc/PID/status before and after`,
    figures: [
      ['RSS per connection', 'rss_kib.per_connection', f.kib],
      ['server RSS, all connected', 'rss_kib.after', f.mib],
      ['time to connect all', 'connect_s', f.s],
    ],
  },
  {
    base: 'fanout-1k', title: 'Fan-out to 1,000 connections, flat out (at most 32 broadcasts in flight)',
    figures: 'flat',
  },
  {
    base: 'fanout-big', title: `Fan-out to ${big} connections, flat out (at most 32 broadcasts in flight)`,
    figures: 'flat',
  },
  {
    base: 'paced-big', title: `Fan-out to ${big} connections, paced at 40,000 deliveries/s`,
    figures: [
      ['latency p50 / p90', ['latency_ms.p50', 'latency_ms.p90'], f.ms],
      ['latency p99 / max', ['latency_ms.p99', 'latency_ms.max'], f.ms],
      ['server CPU per delivery', 'server_cpu.ns_per_delivery', f.us],
      ['… user space', 'server_cpu.user_ns_per_delivery', f.us],
      ['… kernel', 'server_cpu.sys_ns_per_delivery', f.us],
      ['server CPU share', 'server_cpu.cpu_share', f.pct],
      ['deliveries/s reached', 'deliveries_per_s', f.rate],
      ['lost / duplicates / resets (all rounds)', ['lost', 'duplicates', 'resets'], f.n, 'sum'],
    ],
  },
  {
    base: 'unicast-1k', title: '1:1 notifications to random users of 1,000 connections, 8 keep-alive publishers, flat out',
    figures: oneToOne,
  },
];
const flat = [
  ['deliveries/s', 'deliveries_per_s', f.rate],
  ['server CPU per delivery', 'server_cpu.ns_per_delivery', f.us],
  ['… user space', 'server_cpu.user_ns_per_delivery', f.us],
  ['deliveries per server-CPU-second', 'server_cpu.deliveries_per_cpu_s', f.rate],
  ['server CPU share', 'server_cpu.cpu_share', f.pct],
  ['load generator CPU share', 'loadgen_cpu_share', f.pct],
  ['latency p50 / p99', ['latency_ms.p50', 'latency_ms.p99'], f.ms],
  ['bytes per delivery', 'bytes_per_delivery', f.n],
  ['lost / duplicates / resets (all rounds)', ['lost', 'duplicates', 'resets'], f.n, 'sum'],
];

function cell(id, server, fig) {
  const [, key, fmt, how] = fig;
  const keys = Array.isArray(key) ? key : [key];
  if (!of(id, server).length) return { text: '—', values: keys.map(() => undefined) };
  const values = keys.map((k) => (how === 'sum' ? sum(id, server, k) : med(id, server, k)));
  return { text: values.map((v) => show(v, fmt)).join(' / '), values };
}

const lines = [];
const p = (s = '') => lines.push(s);
p(BEGIN);
p();
p(`Produced by \`${opt.command}\` (${opt.rounds} round${opt.rounds === '1' ? '' : 's'}, medians), started ${opt.started}.`);
p();
p(`- machine: ${opt.machine}`);
p(`- ${opt.load}`);
p(`- versions: ${opt.versions}`);
p(`- notify: \`notify-demo --port 0 --batch-ms 0\` (1 thread); peer: \`node bench/peers/node/server.js --port 0\`; `
  + 'each on CPU 0 (`taskset -c 0`), the load generator on CPU 1 (`taskset -c 1`), a fresh server per run.');
p();
p('Ratios are notify / peer: below 1 is better for CPU, latency and memory, above 1 for rates.');
p();

for (const g of groups) {
  const figures = g.figures === 'flat' ? flat : g.figures;
  const sse = `${g.base}-sse`;
  const ws = `${g.base}-ws`;
  if (!runs.some((x) => x.id === sse || x.id === ws)) continue;
  p(`### ${g.title}`);
  p();
  p('| figure | notify SSE | peer SSE | ratio | notify WS | peer WS | ratio |');
  p('|---|---:|---:|---:|---:|---:|---:|');
  for (const fig of figures) {
    const row = [fig[0]];
    for (const id of [sse, ws]) {
      const a = cell(id, 'notify', fig);
      const b = cell(id, 'node', fig);
      row.push(a.text, b.text, fig[3] === 'sum' ? '' : a.values.map((v, i) => ratio(v, b.values[i])).join(' / '));
    }
    p(`| ${row.join(' | ')} |`);
  }
  p();
}

// --- threads -------------------------------------------------------------------------------
const scale = [
  ['scale-fanout-1k-sse', 'fan-out, 1,000 SSE connections, flat out', [
    ['deliveries/s', 'deliveries_per_s', f.rate],
    ['server CPU per delivery', 'server_cpu.ns_per_delivery', f.us],
    ['latency p99', 'latency_ms.p99', f.ms],
    ['server CPU share (of one CPU)', 'server_cpu.cpu_share', f.pct],
    ['load generator CPU share', 'loadgen_cpu_share', f.pct]]],
  ['scale-unicast-1k-sse', 'unicast, 1,000 SSE connections, 8 publishers', [
    ['publishes/s', 'publishes_per_s', f.rate],
    ['server CPU per publish', 'server_cpu.ns_per_delivery', f.us],
    ['latency p99', 'latency_ms.p99', f.ms],
    ['server CPU share (of one CPU)', 'server_cpu.cpu_share', f.pct],
    ['load generator CPU share', 'loadgen_cpu_share', f.pct]]],
  ...['sse', 'ws'].map((proto) => [`scale-paced-big-${proto}`,
    `fan-out to ${big} ${proto.toUpperCase()} connections paced at 40k/s, deferred reads`, [
      ['latency p50', 'latency_ms.p50', f.ms],
      ['latency p99', 'latency_ms.p99', f.ms],
      ['server CPU per delivery', 'server_cpu.ns_per_delivery', f.us],
      ['load generator CPU share', 'loadgen_cpu_share', f.pct]]]),
];
if (runs.some((x) => x.id.startsWith('scale-'))) {
  p('### notify-demo with `--threads 1` and `--threads 2` (nothing pinned: server and load generator share both CPUs)');
  p();
  p('In the paced fan-outs the load generator defers its reads (`--deferred-reads`): every millisecond it notes which sockets received bytes and how many, and reads them after the phase, so that it takes ≈ 5 % of a CPU instead of a share comparable to the server\'s; latencies then read up to 1 ms high.');
  p();
  p('| scenario | figure | 1 thread | 2 threads | 2 / 1 |');
  p('|---|---|---:|---:|---:|');
  for (const [id, title, figs] of scale) {
    for (const fig of figs) {
      const a = cell(id, 'notify-t1', fig);
      const b = cell(id, 'notify-t2', fig);
      p(`| ${title} | ${fig[0]} | ${a.text} | ${b.text} | ${ratio(b.values[0], a.values[0])} |`);
    }
  }
  p();
}

// --- cluster ---------------------------------------------------------------------------------
if (runs.some((x) => x.id.startsWith('cluster-'))) {
  p('### Two notify-demo instances on one Redis (`--bus`): 1,000 subscribers on the first, 8 publishers on the second');
  p();
  p('| figure | SSE | WS |');
  p('|---|---:|---:|');
  for (const fig of [
    ['publishes/s', 'publishes_per_s', f.rate],
    ['delivery latency p50 / p99', ['latency_ms.p50', 'latency_ms.p99'], f.ms],
    ['CPU per delivery, subscribers\' instance', 'server_cpu.ns_per_delivery', f.us],
    ['CPU per delivery, publishers\' instance', 'publish_server_cpu.ns_per_delivery', f.us],
    ['lost / duplicates (all rounds)', ['lost', 'duplicates'], f.n, 'sum'],
  ]) p(`| ${fig[0]} | ${cell('cluster-1k-sse', 'notify', fig).text} | ${cell('cluster-1k-ws', 'notify', fig).text} |`);
  p();
}

// --- what the Redis hop adds ------------------------------------------------------------------
// hop-<R/1000>k-<proto>: the same paced 1:1 load on one instance with the in-process bus
// (inproc), on one instance with the Redis bus (redis1: every message goes publish → Redis →
// back, with no second instance on the core), and across two instances on Redis (redis, both
// on CPU 0). Two readings: the medians, and the best round of each series (lowest latency,
// highest rate), which the target's verdict uses: a disturbed in-process round would
// otherwise make the hop look free or even negative. A rate counts as reached when the best
// round of each series got 90 % of it.
const hopRates = [...new Set(runs.map((x) => /^hop-(\d+)k-(sse|ws)$/.exec(x.id)).filter(Boolean).map((m) => Number(m[1]) * 1000))]
  .sort((a, b) => a - b);
const hopId = (rate, proto) => `hop-${rate / 1000}k-${proto}`;
const hop = (rate, proto, server = 'redis1') => {
  const id = hopId(rate, proto);
  const rates = ['inproc', server].map((s) => best(id, s, 'publishes_per_s', Math.max));
  const d = (key, of_) => {
    const a = of_(id, 'inproc', key);
    const b = of_(id, server, key);
    return a === undefined || b === undefined ? undefined : b - a;
  };
  return {
    id,
    server,
    ran: of(id, 'inproc').length > 0 && of(id, server).length > 0,
    reached: rates.every((v) => v !== undefined && v >= 0.9 * rate),
    p50: d('latency_ms.p50', med),
    p99: d('latency_ms.p99', med),
    bestP50: d('latency_ms.p50', best),
    bestP99: d('latency_ms.p99', best),
  };
};
const signed = (x) => (x === undefined ? '—' : `${x < 0 ? '−' : '+'}${f.ms(Math.abs(x))}`);
if (hopRates.length) {
  p('### What the Redis hop adds: 1:1 notifications at a fixed rate, in-process bus vs Redis bus');
  p();
  p('1,000 connections, 8 keep-alive publishers, publishes paced at the rate. **In-process**: one notify-demo without `--bus` '
    + '(`--scenario unicast`). **Redis, one instance**: one notify-demo with `--bus`, so every notification goes publish → '
    + 'Redis `PUBLISH` → back to it (the hop, alone on CPU 0). **Redis, two instances**: the two instances above, '
    + 'publishes to the second, subscribers on the first (`--scenario cluster`); here both share CPU 0, so their '
    + 'difference also holds the time one instance waits for the other to leave the core. Each difference is to the in-process run.');
  p();
  p('Medians, then the difference of the best rounds (the lowest p50 and p99 of each series over the rounds): '
    + 'on a shared machine a disturbed in-process round makes the median difference meaningless, even negative.');
  p();
  p('| rate | protocol | publishes/s reached: in-process / one / two | in-process p50 / p99 | Redis, one instance p50 / p99 | difference p50 / p99 | best rounds: difference p50 / p99 | Redis, two instances p50 / p99 | difference p50 / p99 | best rounds: difference p50 / p99 | lost / duplicates (all) |');
  p('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const lat = ['latency', ['latency_ms.p50', 'latency_ms.p99'], f.ms];
  const rateOf = (id, s) => cell(id, s, ['', 'publishes_per_s', f.rate]).text;
  const allSeries = (id, key) => ['inproc', 'redis1', 'redis1-own', 'redis'].reduce((t, s) => t + sum(id, s, key), 0);
  for (const rate of hopRates) {
    for (const proto of ['sse', 'ws']) {
      const one = hop(rate, proto, 'redis1');
      const two = hop(rate, proto, 'redis');
      if (!runs.some((x) => x.id === one.id)) continue;
      const mark = (h) => (h.ran && !h.reached ? ' (rate not reached)' : '');
      p(`| ${f.int(rate)}/s | ${proto.toUpperCase()} | ${rateOf(one.id, 'inproc')} / ${rateOf(one.id, 'redis1')} / ${rateOf(one.id, 'redis')} `
        + `| ${cell(one.id, 'inproc', lat).text} | ${cell(one.id, 'redis1', lat).text} | ${signed(one.p50)} / ${signed(one.p99)} `
        + `| ${signed(one.bestP50)} / ${signed(one.bestP99)}${mark(one)} `
        + `| ${cell(one.id, 'redis', lat).text} | ${signed(two.p50)} / ${signed(two.p99)} `
        + `| ${signed(two.bestP50)} / ${signed(two.bestP99)}${mark(two)} `
        + `| ${f.n(allSeries(one.id, 'lost'))} / ${f.n(allSeries(one.id, 'duplicates'))} |`);
    }
  }
  p();
  // The same instance with the bus on a thread of its own (redis1-own), when the run has it.
  if (runs.some((x) => x.server === 'redis1-own')) {
    p('#### Where the bus runs: one instance, the bus on its io thread (the default) or on a thread of its own (`--bus-thread own`)');
    p();
    p('Medians, best rounds in brackets. CPU per publish is the whole instance\'s (`/proc/PID/stat`), for one publish and its one delivery.');
    p();
    p('| rate | protocol | publishes/s: io thread / own thread | io thread p50 / p99 | own thread p50 / p99 | CPU per publish: io / own | own ÷ io |');
    p('|---:|---|---:|---:|---:|---:|---:|');
    const cpu = 'server_cpu.ns_per_delivery';
    for (const rate of hopRates) {
      for (const proto of ['sse', 'ws']) {
        const id = hopId(rate, proto);
        if (!of(id, 'redis1-own').length) continue;
        const bracket = (s) => `${cell(id, s, lat).text} (${show(best(id, s, 'latency_ms.p50'), f.ms)} / ${show(best(id, s, 'latency_ms.p99'), f.ms)})`;
        p(`| ${f.int(rate)}/s | ${proto.toUpperCase()} | ${rateOf(id, 'redis1')} / ${rateOf(id, 'redis1-own')} | ${bracket('redis1')} | ${bracket('redis1-own')} `
          + `| ${show(med(id, 'redis1', cpu), f.us)} / ${show(med(id, 'redis1-own', cpu), f.us)} | ${ratio(med(id, 'redis1-own', cpu), med(id, 'redis1', cpu))} |`);
      }
    }
    p();
  }
}

// --- where notifications are kept ----------------------------------------------------------
// store-flat-sse and store-5k-sse: the same 1:1 load on notify-demo with --store memory (the
// default), sqlite:PATH, and redis:// (with --bus on the same Redis, as a fleet runs it).
const stores = [['memory', 'memory'], ['sqlite', 'SQLite file'], ['redis', 'Redis (store and bus)']];
const storeCases = [
  ['store-flat-sse', 'flat out'],
  ['store-5k-sse', 'paced at 5,000 publishes/s'],
].filter(([id]) => runs.some((x) => x.id === id));
if (storeCases.length) {
  p('### Where notifications are kept (`--store`): 1:1 notifications to 1,000 SSE connections, 8 keep-alive publishers');
  p();
  p('notify-demo with `--store memory` (the default), `--store sqlite:PATH` (a fresh file per run) and `--store redis://…` '
    + 'with `--bus` on the same Redis (a fresh database per run; Redis on CPU 1 with the load generator). A publish is '
    + 'answered once the store has it. CPU per publish is notify-demo\'s alone: Redis\'s own CPU is not in it.');
  p();
  p(`| load | figure | ${stores.map(([, t]) => t).join(' | ')} |`);
  p(`|---|---|${stores.map(() => '---:').join('|')}|`);
  for (const [id, load] of storeCases) {
    for (const fig of oneToOne)
      p(`| ${load} | ${fig[0]} | ${stores.map(([s]) => cell(id, s, fig).text).join(' | ')} |`);
  }
  p();
}

// --- the floor -----------------------------------------------------------------------------
const floors = [...new Set(runs.filter((x) => x.server === 'floor').map((x) => x.id))];
if (floors.length) {
  p('### The floor: one write per delivery (`notify-bench-floor`: loopback connections, writer on CPU 0, reader on CPU 1; paced: the reader sleeps between rounds)');
  p();
  p('| connections | pace | events per writev | writes per system call | event size | writer CPU per event | … user | … kernel | events/s |');
  p('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const id of floors) {
    const m = (k) => med(id, 'floor', k);
    const rate = m('rate');
    const uring = m('uring');
    p(`| ${show(m('sockets'), f.int)} | ${rate ? f.rate(rate) + '/s' : 'flat out'} | ${m('batch')} | ${uring ? `${uring} (io_uring)` : 1} | ${m('size')} B | ${show(m('ns_per_event'), f.us)} | ${show(m('user_ns_per_event'), f.us)} | ${show(m('sys_ns_per_event'), f.us)} | ${show(m('events_per_s'), f.rate)} |`);
  }
  p();
}

// --- targets -------------------------------------------------------------------------------
const floor150 = med('floor-b1-s150', 'floor', 'ns_per_event');
const floorEvent = med('floor-b1-s270', 'floor', 'ns_per_event');
// The paced fan-out wakes a sleeping reader with every write; its fair floor does too.
const floorPaced = med('floor-paced-b1-s270', 'floor', 'ns_per_event');
const floorPacedSockets = med('floor-paced-b1-s270', 'floor', 'sockets');
// notify's lane writes 64 connections per io_uring submission: the floor of that way.
const floorPacedUring = med('floor-paced-uring64-b1-s270', 'floor', 'ns_per_event');
const verdict = (ok) => (ok === undefined ? '—' : ok ? '**met**' : '**missed**');
const targets = [];
for (const proto of ['sse', 'ws']) {
  const P = proto.toUpperCase();
  const user = med(`paced-big-${proto}`, 'notify', 'server_cpu.user_ns_per_delivery');
  targets.push([`paced fan-out (${P}): user-space CPU per delivery ≤ 0.3 µs`, show(user, f.us), verdict(user === undefined ? undefined : user <= 300)]);
  const total = med(`paced-big-${proto}`, 'notify', 'server_cpu.ns_per_delivery');
  const floorFor = floorPaced ?? floor150;
  targets.push([`paced fan-out (${P}): total CPU per delivery ≤ 1.25 × the floor`,
    total === undefined || floorFor === undefined ? '—'
      : (floorPaced !== undefined
        ? `${f.us(total)} = ${sig(total / floorPaced, 2)} × the paced floor (${f.int(floorPacedSockets)} connections, 270 B, 40k/s); `
        : '') + (floorPacedUring !== undefined ? `${sig(total / floorPacedUring, 2)} × the same floor with 64 writes per io_uring submission; ` : '')
        + `${sig(total / floor150, 2)} × the flat-out 150 B floor`,
    verdict(total === undefined || floorFor === undefined ? undefined : total <= 1.25 * floorFor)]);
}
for (const base of ['fanout-1k', 'fanout-big']) {
  for (const proto of ['sse', 'ws']) {
    const a = med(`${base}-${proto}`, 'notify', 'server_cpu.deliveries_per_cpu_s');
    const b = med(`${base}-${proto}`, 'node', 'server_cpu.deliveries_per_cpu_s');
    targets.push([`${base} flat out (${proto.toUpperCase()}): deliveries per server-CPU-second ≥ 3 × the peer's`,
      a === undefined || b === undefined ? '—' : `${f.rate(a)} vs ${f.rate(b)}: ${sig(a / b, 2)}×`,
      verdict(a === undefined || b === undefined ? undefined : a >= 3 * b)]);
  }
}
for (const proto of ['sse', 'ws']) {
  const kib = med(`idle-${proto}`, 'notify', 'rss_kib.per_connection');
  targets.push([`RSS per idle connection (${proto.toUpperCase()}) ≤ 2 KiB`, show(kib, f.kib), verdict(kib === undefined ? undefined : kib <= 2)]);
}
for (const proto of ['sse', 'ws']) {
  const p99 = med(`paced-big-${proto}`, 'notify', 'latency_ms.p99');
  targets.push([`fan-out to ${big} paced at 40k/s (${proto.toUpperCase()}): p99 ≤ 5 ms`, show(p99, f.ms), verdict(p99 === undefined ? undefined : p99 <= 5)]);
}
for (const proto of ['sse', 'ws']) {
  const a = med(`unicast-1k-${proto}`, 'notify', 'publishes_per_s');
  const b = med(`unicast-1k-${proto}`, 'node', 'publishes_per_s');
  const p99 = med(`unicast-1k-${proto}`, 'notify', 'latency_ms.p99');
  targets.push([`unicast (${proto.toUpperCase()}): ≥ 10 × the peer's publishes/s at p99 ≤ 2 ms`,
    a === undefined || b === undefined ? '—' : `${f.rate(a)}/s vs ${f.rate(b)}/s = ${sig(a / b, 2)}×, p99 ${show(p99, f.ms)}`,
    verdict(a === undefined || b === undefined ? undefined : a >= 10 * b && p99 <= 2)]);
}
{
  const a = med('scale-unicast-1k-sse', 'notify-t1', 'publishes_per_s');
  const b = med('scale-unicast-1k-sse', 'notify-t2', 'publishes_per_s');
  const c = med('scale-fanout-1k-sse', 'notify-t1', 'deliveries_per_s');
  const d = med('scale-fanout-1k-sse', 'notify-t2', 'deliveries_per_s');
  if (a !== undefined || c !== undefined)
    targets.push(['scaling from 1 to 2 threads (unpinned), flat out', `unicast ${ratio(b, a)}, fan-out ${ratio(d, c)} (the load generator needs a CPU of its own)`, 'reported']);
  // Paced, with a load generator that needs little CPU: a fan-out written by two threads
  // should reach its last connection sooner.
  const paced = ['sse', 'ws'].map((proto) => {
    const id = `scale-paced-big-${proto}`;
    return [proto, med(id, 'notify-t1', 'latency_ms.p99'), med(id, 'notify-t2', 'latency_ms.p99'),
      med(id, 'notify-t1', 'latency_ms.p50'), med(id, 'notify-t2', 'latency_ms.p50')];
  }).filter(([, t1, t2]) => t1 !== undefined && t2 !== undefined);
  if (paced.length)
    targets.push([`scaling from 1 to 2 threads (unpinned): paced fan-out to ${big}, latency with 2 threads ÷ with 1`,
      paced.map(([proto, t1, t2, m1, m2]) => `${proto.toUpperCase()} p50 ${ratio(m2, m1)}, p99 ${ratio(t2, t1)}`).join('; '),
      verdict(paced.every(([, t1, t2]) => t2 <= 0.8 * t1))]);
}
for (const proto of ['sse', 'ws']) {
  const at = [10000, 5000].find((rate) => hop(rate, proto).ran && hop(rate, proto).reached)
    ?? [10000, 5000].find((rate) => hop(rate, proto).ran);
  if (at === undefined) continue;
  const h = hop(at, proto);
  const two = hop(at, proto, 'redis');
  const where = at === 10000 ? 'at 10,000/s' : `at ${f.int(at)}/s (10,000/s not reached)`;
  targets.push([`Redis hop adds < 1 ms at p99 at 10k publishes/s (${proto.toUpperCase()})`,
    h.bestP99 === undefined ? '—'
      : `${signed(h.bestP99)} ${where} (best rounds: p99 ${show(best(h.id, 'redis1', 'latency_ms.p99'), f.ms)} through Redis vs `
        + `${show(best(h.id, 'inproc', 'latency_ms.p99'), f.ms)} in-process; medians ${signed(h.p99)})`
        + (two.bestP99 === undefined ? '' : `; two instances on one core: ${signed(two.bestP99)}${two.reached ? '' : ' (rate not reached)'}`),
    !h.reached ? '**rate not reached**' : h.bestP99 === undefined ? '—' : verdict(h.bestP99 < 1) + (at === 10000 ? '' : ` (at ${f.int(at)}/s)`)]);
}
p('### Targets');
p();
p('| target | measured (notify) | |');
p('|---|---|---|');
for (const t of targets) p(`| ${t.join(' | ')} |`);
p();
p('![latency CDF and CPU per delivery](benchmarks.png)');
p();

// --- commands and raw runs --------------------------------------------------------------------
p('<details><summary>The exact command of every figure</summary>');
p();
const seen = new Set();
for (const x of runs) {
  const key = `${x.id} ${x.server}`;
  if (seen.has(key)) continue;
  seen.add(key);
  p(`- \`${x.id}\` ${x.server}: \`${x.command}\``);
}
p();
p('</details>');
p();
p('<details><summary>Every run</summary>');
p();
p('| scenario | server | round | exit | deliveries/s | publishes/s | CPU/delivery | user/delivery | p50 | p99 | lost | RSS/conn |');
p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const x of runs) {
  const g = (k, fmt) => show(get(x.r, k), fmt);
  if (x.server === 'floor') {
    p(`| ${x.id} | floor | ${x.round} | ${x.rc} | ${g('events_per_s', f.rate)} | | ${g('ns_per_event', f.us)} | ${g('user_ns_per_event', f.us)} | | | | |`);
    continue;
  }
  p(`| ${x.id} | ${x.server} | ${x.round} | ${x.rc} | ${g('deliveries_per_s', f.rate)} | ${g('publishes_per_s', f.rate)} | ${g('server_cpu.ns_per_delivery', f.us)} | ${g('server_cpu.user_ns_per_delivery', f.us)} | ${g('latency_ms.p50', f.ms)} | ${g('latency_ms.p99', f.ms)} | ${g('lost', f.n)} | ${g('rss_kib.per_connection', f.kib)} |`);
}
p();
p('</details>');
p();
p(END);
fs.writeFileSync(path.join(opt.out, 'BENCHMARKS.md'), `${lines.join('\n')}\n`);

// --- the chart (gnuplot) ----------------------------------------------------------------------
const cdfDir = opt['cdf-dir'];
const cdfs = [];
for (const [id, server, title] of [
  ['paced-big-sse', 'notify', 'notify SSE'], ['paced-big-ws', 'notify', 'notify WS'],
  ['paced-big-sse', 'node', 'peer SSE'], ['paced-big-ws', 'node', 'peer WS'],
]) {
  const file = path.join(cdfDir, `${id}-${server}.txt`);
  if (fs.existsSync(file) && fs.statSync(file).size > 0) cdfs.push([file, title]);
}
const bars = [];
for (const id of ['fanout-1k-sse', 'fanout-1k-ws', 'fanout-big-sse', 'fanout-big-ws', 'paced-big-sse', 'paced-big-ws', 'unicast-1k-sse', 'unicast-1k-ws']) {
  const v = [med(id, 'notify', 'server_cpu.user_ns_per_delivery'), med(id, 'notify', 'server_cpu.sys_ns_per_delivery'),
    med(id, 'node', 'server_cpu.user_ns_per_delivery'), med(id, 'node', 'server_cpu.sys_ns_per_delivery')];
  if (v.every((x) => x === undefined)) continue;
  bars.push(`"${id}" ${v.map((x) => (x === undefined ? 0 : (x / 1e3).toFixed(4))).join(' ')}`);
}
fs.writeFileSync(path.join(opt.out, 'cpu.dat'), `${bars.join('\n')}\n`);
const gp = [
  `set terminal pngcairo size 1400,560 font "sans,10"`,
  `set output "${path.join(opt.out, 'benchmarks.png')}"`,
  `set multiplot layout 1,2 title "notify-demo vs the Node peer (server on one core) — ${opt.command}, ${opt.load}"`,
  `set title "Latency CDF, fan-out to ${big} paced at 40k deliveries/s"`,
  'set logscale x', 'set xlabel "latency (ms)"', 'set ylabel "fraction of deliveries"', 'set key bottom right', 'set grid',
  cdfs.length ? `plot ${cdfs.map(([file, title]) => `"${file}" using 1:2 with lines lw 2 title "${title}"`).join(', ')}`
    : 'set label 1 "no paced run" at graph 0.4,0.5\nplot 2 notitle',
  'unset logscale x', 'unset label 1',
  'set title "Server CPU per delivery (µs; user + kernel)"', 'set xlabel ""', 'set ylabel "µs per delivery"',
  'set style fill solid 0.8 border -1', 'set boxwidth 0.35',
  'set xtics rotate by -30', 'set key top left', 'set logscale y', 'set yrange [0.1:*]',
  floor150 !== undefined ? `set arrow 1 from graph 0, first ${(floor150 / 1e3).toFixed(4)} to graph 1, first ${(floor150 / 1e3).toFixed(4)} nohead dt 2 lw 2 lc rgb "black" front` : '',
  'set style textbox opaque noborder',
  floor150 !== undefined ? `set label 2 "floor: one 150 B write (${sig(floor150 / 1e3)} µs)" at graph 0.02, first ${(floor150 / 1e3 * 0.8).toFixed(4)} front boxed` : '',
  bars.length
    ? `plot "${path.join(opt.out, 'cpu.dat')}" using ($0-0.2):($2+$3):(0.35) with boxes lc rgb "#1f77b4" title "notify (user+kernel)", `
      + `"" using ($0-0.2):2:(0.35) with boxes lc rgb "#9ecae1" title "notify user", `
      + `"" using ($0+0.2):($4+$5):(0.35):xtic(1) with boxes lc rgb "#d62728" title "peer (user+kernel)", `
      + `"" using ($0+0.2):4:(0.35) with boxes lc rgb "#fc9272" title "peer user"`
    : 'plot 1 notitle',
  'unset multiplot',
];
fs.writeFileSync(path.join(opt.out, 'benchmarks.gp'), `${gp.filter(Boolean).join('\n')}\n`);
