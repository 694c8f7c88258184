// skydns status page: polls GET /skydns/stats/live, keeps the last minutes of
// history here (the server sends cumulative counters; rates are deltas), draws
// the graphs on canvas, and fills the tables. No library, no other origin: the
// server's CSP allows nothing but 'self'. Data goes into the DOM as text only.
(() => {
'use strict';

const POLL_MS = 1000;
const HISTORY_MS = 10 * 60 * 1000;
const NAMES_EVERY = 5; // ask for the names that use each address every 5th poll
const COLORS = ['#2f6fdf', '#e8833a', '#1a7f37', '#cf222e', '#8250df', '#6b7280', '#b08800'];
const TOKEN_KEY = 'skydns-api-token';

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let prev = null; // previous live reply
let polls = 0;
let namesByIp = {};
let namesNote = '';
const series = {}; // chart id -> {name -> [[t, v], ...]}

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

class HttpError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// Same origin only; the token goes in a header, never in the URL.
async function api(path) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new HttpError(r.status, (body && body.error) || ('HTTP ' + r.status));
  return body;
}

// ---- history and charts ----

function push(chart, name, t, v) {
  const s = series[chart] || (series[chart] = {});
  const arr = s[name] || (s[name] = []);
  arr.push([t, v]);
  while (arr.length && arr[0][0] < t - HISTORY_MS) arr.shift();
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}

function draw(chart, fixedMax) {
  const cv = $('c-' + chart);
  const s = series[chart] || {};
  const names = Object.keys(s);
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth || cv.width, h = cv.clientHeight || cv.height;
  if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  // The time axis grows with the history, from one minute up to HISTORY_MS.
  let max = 0, points = 0, first = Date.now();
  for (const n of names) for (const [t, v] of s[n]) { if (v > max) max = v; if (t < first) first = t; points++; }
  const now = Date.now();
  const span = Math.min(HISTORY_MS, Math.max(60000, Math.ceil((now - first) / 60000) * 60000));
  const t0 = now - span;
  max = fixedMax || niceMax(max);
  const left = 44, bottom = h - 16, top = 6, right = w - 6;
  g.strokeStyle = '#e3e6eb'; g.fillStyle = '#6b7280'; g.font = '10px system-ui, sans-serif';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - (bottom - top) * i / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
    g.fillText(fmt(max * i / 4), 2, y + 3);
  }
  const mins = span / 60000, stepS = mins <= 1 ? 15 : mins <= 4 ? 60 : 120;
  for (let sec = 0; sec <= span / 1000; sec += stepS) {
    const x = right - (right - left) * sec * 1000 / span;
    const label = sec === 0 ? 'now' : sec < 60 ? '-' + sec + 's' : '-' + sec / 60 + 'm';
    g.fillText(label, Math.min(x - 8, right - 18), h - 3);
  }
  const legend = $('l-' + chart);
  legend.textContent = '';
  names.forEach((n, i) => {
    const pts = s[n], color = COLORS[i % COLORS.length];
    g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
    pts.forEach(([t, v], k) => {
      const x = left + (right - left) * (t - t0) / span;
      const y = bottom - (bottom - top) * Math.min(v, max) / max;
      if (k === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    const last = pts.length ? pts[pts.length - 1][1] : null;
    const item = el('span');
    const sw = el('i'); sw.style.background = color; // CSSOM, allowed by the CSP
    item.append(sw, n + ' ');
    const val = el('b', fmt(last));
    val.dataset.series = n;
    val.dataset.value = last === null ? '' : String(last);
    item.append(val);
    legend.append(item);
  });
  cv.dataset.points = String(points);
}

// Quantile of the answers counted between two snapshots (histogram_quantile's interpolation).
function quantile(q, le, counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return null;
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    const lo = i ? le[i - 1] : 0;
    if (cum + counts[i] >= q * total) {
      if (i >= le.length) return lo; // +Inf bucket: its lower bound
      return lo + (le[i] - lo) * (q * total - cum) / counts[i];
    }
    cum += counts[i];
  }
  return le[le.length - 1];
}

function record(cur) {
  if (!prev) return;
  const dt = (cur.time_ms - prev.time_ms) / 1000;
  if (dt <= 0) return;
  const t = cur.time_ms, a = cur.counters, b = prev.counters;
  const rate = (x, y) => Math.max(0, (x - y) / dt);
  push('qps', 'udp', t, rate(a.udp, b.udp));
  push('qps', 'tcp', t, rate(a.tcp, b.tcp));
  push('qps', 'total', t, rate(a.queries, b.queries));
  const main = ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED'];
  let other = 0;
  for (const k of Object.keys(a.rcode)) {
    const r = rate(a.rcode[k], b.rcode[k] || 0);
    if (main.includes(k)) push('rcode', k, t, r); else other += r;
  }
  push('rcode', 'other', t, other);
  const fwd = rate(a.forwarded, b.forwarded);
  push('fwd', 'forwarded', t, fwd);
  push('fwd', 'local', t, Math.max(0, rate(a.queries, b.queries) - fwd));
  const hits = a.cache.hits - b.cache.hits, miss = a.cache.misses - b.cache.misses;
  if (hits + miss > 0) push('cache', 'hit rate', t, 100 * hits / (hits + miss));
  const d = a.latency.count.map((v, i) => v - (b.latency.count[i] || 0));
  const p50 = quantile(0.5, a.latency.le_us, d), p99 = quantile(0.99, a.latency.le_us, d);
  if (p50 !== null) { push('lat', 'p50', t, p50); push('lat', 'p99', t, p99); }
}

// ---- tables ----

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function fill(tbodyParent, rows) {
  const tb = tbodyParent.tBodies[0];
  tb.textContent = '';
  for (const r of rows) tb.append(r);
}

function row(cells) {
  const tr = el('tr');
  for (const c of cells) tr.append(c instanceof Node ? c : el('td', c));
  return tr;
}

function health(cur) {
  const list = (cur.health || []).slice();
  if (cur.health && list.length && list[0].names !== undefined) {
    namesByIp = {};
    for (const h of list) namesByIp[h.ip] = { names: h.names || [], total: h.names_total || 0 };
    namesNote = cur.names_truncated
      ? 'Names: only the first ' + cur.names_scanned + ' records were looked at.' : '';
  }
  list.sort((x, y) => (x.status === 'DOWN' ? 0 : 1) - (y.status === 'DOWN' ? 0 : 1) ||
    (x.ip < y.ip ? -1 : 1));
  fill($('health'), list.map((h) => {
    const st = el('td', h.status, h.status === 'DOWN' ? 'down' : h.status === 'UP' ? 'up' : '');
    // Older records (and older skydns) may lack since/source: show a dash.
    const since = h.since_ms ? new Date(h.since_ms).toLocaleString() + ' (' + ago(h.since_ms) + ')' : '–';
    const n = namesByIp[h.ip];
    let names = n === undefined ? '…' : n.names.join(', ') || '(none)';
    if (n && n.total > n.names.length) names += ' and ' + (n.total - n.names.length) + ' more';
    const tr = row([h.ip, st, since, h.source || '–', names]);
    tr.dataset.ip = h.ip;
    tr.dataset.status = h.status;
    return tr;
  }));
  let note = list.length ? '' : 'No health records: every address counts as UP.';
  if (cur.health_truncated) note = 'Only the first ' + list.length + ' records are shown.';
  $('health-note').textContent = [note, namesNote].filter(Boolean).join(' ');
}

function kvRows(table, pairs) {
  fill(table, pairs.map(([k, v]) => row([k, v])));
}

function bytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + ' GiB';
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
  return (n / 1024).toFixed(0) + ' KiB';
}

function store(cur) {
  const s = cur.store || {};
  kvRows($('store'), [
    ['generation (SOA serial)', s.generation],
    ['names', s.names],
    ['map size', s.map_bytes !== undefined ? bytes(s.map_bytes) : '–'],
    ['map grown by another process', s.map_resizes],
    ['ready', cur.ready ? 'yes' : 'no (draining)'],
  ].concat(cur.store_error ? [['error', cur.store_error]] : []));
}

const WATCHER_TITLES = { etcd: 'etcd watcher', k8s: 'Kubernetes watcher', probe: 'probe' };

function etcdPairs(g) {
  const pairs = [];
  const rev = g.rev || 0, seen = g.seen_rev || 0;
  pairs.push(['state', rev > 0 ? 'synced' : 'not synced yet (no full read committed)']);
  pairs.push(['applied revision', rev]);
  pairs.push(['highest revision seen', seen]);
  pairs.push(['behind by', Math.max(0, seen - rev) + ' revisions']);
  for (const [k, label] of [['events', 'keys applied'], ['rereads', 'full reads'],
    ['errors', 'failed reads/watches'], ['bad_keys', 'invalid values skipped']])
    if (g[k] !== undefined) pairs.push([label, g[k]]);
  // Event -> commit latency from the per-bucket batch counts (not cumulative).
  const le = Object.keys(g).filter((k) => /^lat_le_\d+ms$/.test(k))
    .map((k) => +k.match(/\d+/)[0]).sort((x, y) => x - y);
  if (le.length) {
    const counts = le.map((b) => (g['lat_le_' + b + 'ms'] || 0) - ((prevWatch.etcd || {})['lat_le_' + b + 'ms'] || 0));
    counts.push((g.lat_le_inf || 0) - ((prevWatch.etcd || {}).lat_le_inf || 0));
    const all = le.map((b) => g['lat_le_' + b + 'ms'] || 0).concat([g.lat_le_inf || 0]);
    const p = quantile(0.5, le, counts.some((c) => c > 0) ? counts : all);
    pairs.push(['event → commit p50', p === null ? '–' : fmt(p) + ' ms']);
  }
  return pairs;
}

let prevWatch = {};

const PROCESS_OF = { etcd: 'skydns-watch-etcd', k8s: 'skydns-watch-k8s', probe: 'skydns-probe' };

// The supervised process behind a data source: running, or since when it is not.
function processText(p) {
  const since = p.since_ms ? ' since ' + new Date(p.since_ms).toLocaleTimeString() + ' (' + ago(p.since_ms) + ')' : '';
  const exit = p.last_exit === undefined ? '' : p.last_exit < 0 ? 'killed by signal ' + -p.last_exit : 'exit status ' + p.last_exit;
  const restarts = p.restarts ? ', ' + p.restarts + ' restart' + (p.restarts > 1 ? 's' : '') : '';
  if (p.running) return 'running (pid ' + p.pid + ')' + since + restarts + (exit ? '; last ' + exit : '');
  return 'NOT running' + since + (exit ? ' (' + exit + ')' : '') + restarts + '; skydns restarts it';
}

function watchers(cur) {
  const box = $('watchers');
  box.textContent = '';
  const w = Object.assign({}, cur.watchers || {});
  const procs = {};
  for (const p of cur.processes || []) procs[p.name] = p;
  for (const name of Object.keys(procs))
    if (!Object.values(PROCESS_OF).includes(name)) w[name] = { enabled: true };
  const keys = Object.keys(w);
  if (!keys.length) box.append(el('p', 'No watcher or probe is configured.', 'muted'));
  for (const name of keys) {
    const g = w[name];
    const card = el('div', null, 'watcher');
    card.dataset.source = name;
    const title = el('h3', (WATCHER_TITLES[name] || name) + (g.enabled === false ? ' (not enabled now)' : ''));
    card.append(title);
    const t = el('table', null, 'kv');
    t.append(el('tbody'));
    let pairs;
    if (name === 'etcd') pairs = etcdPairs(g);
    else pairs = Object.keys(g).filter((k) => k !== 'enabled').sort().map((k) => [k, g[k]]);
    if (!pairs.length) pairs = [['state', 'publishes no state in the store (not in this build)']];
    const proc = procs[PROCESS_OF[name] || name];
    if (proc) pairs.unshift(['process', processText(proc)]);
    kvRows(t, pairs);
    card.append(t);
    box.append(card);
  }
  prevWatch = w;
}

function wide(text, span) {
  const td = el('td', text, 'muted');
  td.colSpan = span;
  return td;
}

function upstreams(cur) {
  const list = cur.upstreams || [];
  fill($('upstreams'), list.length ? list.map((u) => {
    const tr = row([u.server, el('td', u.healthy ? 'healthy' : 'taken out', u.healthy ? 'up' : 'down'),
      u.srtt_ms + ' ms', u.queries, u.timeouts, u.errors]);
    tr.dataset.server = u.server;
    return tr;
  }) : [row([wide('No upstream servers (forwarding off, or none asked yet).', 6)])]);
}

function top(cur) {
  const list = cur.top || [];
  fill($('top'), list.length ? list.map((t) => row([t.name, t.count])) : [row(['–', '–'])]);
}

// ---- lookup ----

function valueText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return v.map(valueText).join(' ');
  return Object.keys(v).map((k) => k + '=' + v[k]).join(' ');
}

function showLookup(r) {
  const box = $('lk-result');
  box.textContent = '';
  if (r.forwarded) {
    const p = el('p', r.name + ' is not in a local domain: a worker would forward it');
    p.id = 'lk-forwarded';
    box.append(p);
    const ups = (r.upstreams || []).map((u) => u.server + (u.healthy ? '' : ' (taken out)'));
    box.append(el('p', ups.length ? 'to ' + ups.join(', ') : '(no upstream asked yet)', 'muted'));
    return;
  }
  const head = el('p');
  head.append(r.name + ' ' + r.type + ': ');
  const rc = el('b', r.rcode);
  rc.id = 'lk-rcode';
  head.append(rc, r.aa ? ' (authoritative)' : '', r.tc ? ' (truncated)' : '',
    ' — store generation ' + r.generation);
  box.append(head);
  const t = el('table');
  t.id = 'lk-table';
  const th = el('thead');
  th.append(row(['Section', 'Name', 'Type', 'TTL', 'Value', 'Source'].map((h) => el('th', h))));
  t.append(th, el('tbody'));
  const rows = [];
  for (const sec of ['answer', 'authority', 'additional']) {
    for (const rr of r[sec] || []) {
      const src = rr.sources && rr.sources.length ? rr.sources.join(', ') : 'synthesized or wildcard';
      const tr = row([sec, rr.name, rr.type, rr.ttl, valueText(rr.value), src]);
      tr.dataset.section = sec;
      rows.push(tr);
    }
  }
  if (!rows.length) rows.push(row(['', '(no records)', '', '', '', '']));
  fill(t, rows);
  box.append(t);
}

async function lookup(ev) {
  ev.preventDefault();
  const name = $('lk-name').value.trim(), type = $('lk-type').value;
  try {
    showLookup(await api('/skydns/lookup/' + encodeURIComponent(name) + '?type=' + encodeURIComponent(type)));
  } catch (e) {
    $('lk-result').textContent = 'lookup failed: ' + e.message;
  }
}

// ---- polling ----

function setState(text, cls) {
  const s = $('state');
  s.textContent = text;
  s.className = 'pill ' + (cls || '');
}

function needToken(msg) {
  $('login').hidden = false;
  $('logout').hidden = !token;
  setState(msg, 'bad');
}

async function poll() {
  const names = polls % NAMES_EVERY === 0;
  try {
    const cur = await api('/skydns/stats/live' + (names ? '?names=1' : ''));
    polls++;
    record(cur);
    prev = cur;
    for (const [c, max] of [['qps'], ['rcode'], ['fwd'], ['cache', 100], ['lat']]) draw(c, max);
    health(cur);
    store(cur);
    watchers(cur);
    upstreams(cur);
    top(cur);
    $('error').hidden = true;
    $('login').hidden = true;
    $('logout').hidden = !token;
    setState(cur.ready ? 'serving' : 'draining', cur.ready ? 'ok' : 'bad');
    $('updated').textContent = 'updated ' + new Date(cur.time_ms).toLocaleTimeString();
    document.body.dataset.polls = String(polls);
  } catch (e) {
    if (e.status === 401) needToken(token ? 'token refused' : 'token needed');
    else {
      setState('unreachable', 'bad');
      $('error').textContent = 'Cannot read /skydns/stats/live: ' + e.message;
      $('error').hidden = false;
    }
  }
  setTimeout(poll, POLL_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
  });
  $('logout').addEventListener('click', () => {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
  });
  $('lookup').addEventListener('submit', lookup);
  poll();
});
})();
