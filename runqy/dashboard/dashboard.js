// The runqy monitoring dashboard: one page routed in the browser (every view has its own URL
// under /monitoring), calling the admin API with the session cookie the sign-in opens.
// No library and no build step, so that what the browser runs is what is read here.

// Behind a proxy that serves runqy under a path prefix (/ops/monitoring), the prefix is what
// comes before /monitoring in the page's own URL, and the API is under the same prefix.
const ROOT = location.pathname.replace(/\/monitoring(\/.*)?$/, '');
const BASE = ROOT + '/monitoring';
const SESSION_URL = '/monitoring/session';
const REFRESH_MS = 3000;
const TASK_REFRESH_MS = 2000;
const PAGE_SIZE = 20;
const LIVE_POINTS = 60;          // about three minutes of samples at one per refresh
const QUEUE_PAGE = 1000;         // the most queues GET /api/cli/queues answers at once
const JSON_SHOWN = 200000;       // characters of a payload or result shown: more would stall the tab
const STATES = ['pending', 'held', 'active', 'scheduled', 'retry', 'archived', 'completed'];
const COUNTED = [...STATES, 'processed_today', 'failed_today'];
const LIVE_SERIES = ['pending', 'held', 'active', 'scheduled', 'retry', 'archived'];
const FINAL = new Set(['completed', 'archived']);
const CANCELABLE = new Set(['pending', 'held', 'active', 'scheduled', 'retry']);
const RUNNABLE = new Set(['scheduled', 'retry', 'archived']);

const app = {
  session: null,   // {csrf_token, read_only, expires_in} while signed in
  ctx: null,       // the view shown: its route, parameters and last data
  timer: 0,
  health: 'ok',
  redisVersion: '',
};
const liveSamples = [];

// --- markup: every text goes through esc(), html`` escapes whatever it interpolates -------------

class Html {
  constructor(text) { this.text = text; }
}

const ESCAPES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};

function esc(value) {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(esc).join('');
  if (value === null || value === undefined || value === false) return '';
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += esc(values[i]) + strings[i + 1];
  return new Html(out);
}

const $ = (selector, root = document) => root.querySelector(selector);
const enc = encodeURIComponent;

/** Replace an element's content only when it changed, keeping focus, scroll and text selection. */
function patch(target, content) {
  const el = typeof target === 'string' ? document.getElementById(target) : target;
  if (!el) return false;
  const text = esc(content);
  if (el.renderedHtml === text) return false;
  const selection = document.getSelection();
  if (el.renderedHtml !== undefined && selection && !selection.isCollapsed && el.contains(selection.anchorNode)) {
    return false;  // the user is selecting text: the next refresh brings the news
  }
  const focusKey = el.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  const scrolled = [...el.querySelectorAll('.table-wrap, .logs')].map((s) => [s.scrollLeft, s.scrollTop]);
  el.innerHTML = text;
  el.renderedHtml = text;
  el.querySelectorAll('.table-wrap, .logs').forEach((s, i) => {
    if (scrolled[i]) [s.scrollLeft, s.scrollTop] = scrolled[i];
  });
  if (focusKey) $(`[data-key="${CSS.escape(focusKey)}"]`, el)?.focus({preventScroll: true});
  return true;
}

/** Replace a table body's rows, only those that changed when the rows are the same ones in the
 * same order: with a thousand queues a full rebuild costs a third of a second of layout, the few
 * rows a refresh changes a few milliseconds. ``rows`` are [key, Html] pairs. True when rebuilt. */
function patchRows(id, rows) {
  const body = document.getElementById(id);
  const keys = rows.map(([key]) => key);
  const texts = rows.map(([, content]) => esc(content));
  const old = body.rowTexts;
  if (!old || old.length !== texts.length || body.rowKeys.some((key, i) => key !== keys[i])) {
    const joined = texts.join('');
    patch(body, new Html(joined));
    Object.assign(body, body.renderedHtml === joined ? {rowKeys: keys, rowTexts: texts} : {rowTexts: undefined});
    return true;
  }
  const selection = document.getSelection();
  if (selection && !selection.isCollapsed && body.contains(selection.anchorNode)) return false;
  const template = document.createElement('template');
  texts.forEach((text, i) => {
    if (text === old[i]) return;
    const tr = body.rows[i];
    const focusKey = tr.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
    template.innerHTML = text;
    tr.replaceWith(template.content);
    if (focusKey) $(`[data-key="${CSS.escape(focusKey)}"]`, body.rows[i])?.focus({preventScroll: true});
  });
  body.rowTexts = texts;
  body.renderedHtml = undefined;  // patch() must not take the row-wise state for its own
  return false;
}

// --- formatting ---------------------------------------------------------------------------------

const NUMBER = new Intl.NumberFormat('en-US');
const RELATIVE = new Intl.RelativeTimeFormat('en', {numeric: 'auto'});
const num = (n) => NUMBER.format(n ?? 0);
const plural = (n, word, words = word + 's') => `${num(n)} ${n === 1 ? word : words}`;

function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const i = units.findIndex(([, size]) => seconds >= size);
  if (i < 0) return '0s';
  const [name, size] = units[i];
  const whole = Math.floor(seconds / size);
  const next = units[i + 1];
  const rest = next ? Math.floor((seconds % size) / next[1]) : 0;
  return rest ? `${whole}${name} ${rest}${next[0]}` : `${whole}${name}`;
}

function relative(iso, now = Date.now()) {
  const diff = (Date.parse(iso) - now) / 1000;
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (Math.abs(diff) >= size) return RELATIVE.format(Math.round(diff / size), unit);
  }
  return RELATIVE.format(Math.round(diff), 'second');
}

function localTime(iso) {
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A time as local date and time, with "(3 minutes ago)" kept current by updateClocks(). */
function when(iso) {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}" title="${iso} (UTC)">${localTime(iso)}</time> <span class="rel" data-rel="${iso}"></span>`;
}

/** Relative times and uptimes change every second; they are written here, not in the markup, so
 * that an unchanged answer leaves the DOM alone. */
function updateClocks() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-rel]')) {
    const text = `(${relative(el.dataset.rel, now)})`;
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of document.querySelectorAll('[data-since]')) {
    const text = duration((now - Date.parse(el.dataset.since)) / 1000);
    if (el.textContent !== text) el.textContent = text;
  }
}

function truncate(text, max) {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

function compactJson(value) {
  return value === undefined ? '' : JSON.stringify(value) ?? '';
}

const JSON_TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|\b(?:true|false)\b|\bnull\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** Formatted JSON with its keys, strings, numbers and literals in spans; every piece escaped. */
function jsonHtml(value) {
  let text = JSON.stringify(value, null, 2) ?? 'null';
  let note = '';
  if (text.length > JSON_SHOWN) {
    note = `\n… ${num(text.length - JSON_SHOWN)} more characters not shown`;
    text = text.slice(0, JSON_SHOWN);
  }
  let out = '';
  let last = 0;
  for (const m of text.matchAll(JSON_TOKEN)) {
    out += esc(text.slice(last, m.index));
    if (m[2]) out += `<span class="j-key">${esc(m[1])}</span>${esc(m[2])}`;
    else {
      const kind = m[1] ? 'str' : m[0] === 'null' ? 'null' : /^[tf]/.test(m[0]) ? 'bool' : 'num';
      out += `<span class="j-${kind}">${esc(m[0])}</span>`;
    }
    last = m.index + m[0].length;
  }
  return new Html(out + esc(text.slice(last)) + (note ? `<span class="muted">${esc(note)}</span>` : ''));
}

// --- JSON as YAML (the queue configs are YAML files) ---------------------------------------------

const YAML_RESERVED = /^(?:true|false|yes|no|on|off|y|n|null|~)$/i;

function yamlScalar(value) {
  if (value === null || value === undefined) return {text: 'null', kind: 'null'};
  if (typeof value === 'boolean') return {text: String(value), kind: 'bool'};
  if (typeof value === 'number') return {text: String(value), kind: 'num'};
  const s = String(value);
  const plain = /^[A-Za-z0-9_./@+-][A-Za-z0-9 _./@:+=-]*$/.test(s) && !YAML_RESERVED.test(s)
    && !/^[-+]?\.?\d/.test(s) && !/[ :]$/.test(s) && !s.includes(': ') && !s.includes(' #') && !/^-(\s|$)/.test(s);
  return {text: plain ? s : JSON.stringify(s), kind: 'str'};
}

const isBlock = (v) => v !== null && typeof v === 'object' && Object.keys(v).length > 0;

/** YAML text for a JSON value; with ``highlight`` HTML with the keys and scalars in spans. */
function toYaml(value, highlight = false) {
  const key = (k) => {
    const {text} = typeof k === 'string' && yamlScalar(k).text === k ? {text: k} : {text: JSON.stringify(String(k))};
    return highlight ? `<span class="y-key">${esc(text)}</span>` : text;
  };
  const inline = (v) => {
    if (Array.isArray(v)) return '[]';
    if (v !== null && typeof v === 'object') return '{}';
    const {text, kind} = yamlScalar(v);
    return highlight ? `<span class="j-${kind}">${esc(text)}</span>` : text;
  };
  const block = (v, indent) => {
    const pad = ' '.repeat(indent);
    const lines = [];
    if (Array.isArray(v)) {
      for (const item of v) {
        if (isBlock(item)) {
          const inner = block(item, indent + 2);
          lines.push(pad + '- ' + inner[0].slice(indent + 2), ...inner.slice(1));
        } else lines.push(pad + '- ' + inline(item));
      }
    } else {
      for (const [k, item] of Object.entries(v)) {
        if (isBlock(item)) lines.push(pad + key(k) + ':', ...block(item, indent + 2));
        else lines.push(pad + key(k) + ': ' + inline(item));
      }
    }
    return lines;
  };
  return isBlock(value) ? block(value, 0).join('\n') : inline(value);
}

// --- the API --------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, messages) {
    super(messages.join(' '));
    this.status = status;
    this.messages = messages;
  }

  /** Unreachable server or Redis down: the banner says it, not the page. */
  get outage() {
    return this.status === 0 || (this.status === 503 && this.messages.some((m) => /redis/i.test(m)));
  }
}

/** Every call of the page: the session cookie, the CSRF token on anything but GET, JSON errors. */
async function api(path, {method = 'GET', body, signingIn = false} = {}) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET' && app.session) headers['X-CSRF-Token'] = app.session.csrf_token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(ROOT + path, {method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body)});
  } catch {
    setHealth('offline');
    throw new ApiError(0, ['The server cannot be reached.']);
  }
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  const messages = Array.isArray(data?.errors) ? data.errors.map(String) : [`${resp.status} ${resp.statusText}`];
  const error = resp.ok ? null : new ApiError(resp.status, messages);
  setHealth(error?.outage ? 'redis' : 'ok', messages[0]);
  if (resp.status === 401 && !signingIn) signedOut('Your session has ended: sign in again.');
  if (error) throw error;
  return {status: resp.status, data};
}

/** A promise's outcome without throwing: one failing part of a view leaves the others shown. */
const settle = (promise) => promise.then((r) => ({value: r.data}), (error) => ({error}));

async function allQueues() {
  const queues = [];
  for (let offset = 0; ; offset += QUEUE_PAGE) {
    const {data} = await api(`/api/cli/queues?limit=${QUEUE_PAGE}&offset=${offset}`);
    queues.push(...data.queues);
    if (!data.queues.length || queues.length >= data.total) return queues;
  }
}

const writable = () => Boolean(app.session && !app.session.read_only);

// --- links ----------------------------------------------------------------------------------------

const link = {
  overview: () => BASE,
  queue: (q, state, page) => `${BASE}/queues/${enc(q)}` + (state ? `?state=${enc(state)}&page=${page || 1}` : ''),
  task: (q, id) => `${BASE}/queues/${enc(q)}/tasks/${enc(id)}`,
  workers: () => `${BASE}/workers`,
  worker: (id) => `${BASE}/workers/${enc(id)}`,
  configs: () => `${BASE}/configs`,
  config: (name) => `${BASE}/configs/${enc(name)}`,
  vaults: () => `${BASE}/vaults`,
  vault: (name) => `${BASE}/vaults/${enc(name)}`,
};

const parentOf = (name) => name.split('.')[0];

// --- banner, health, toast, confirmation --------------------------------------------------------

function setHealth(health, message = '') {
  const banner = $('#banner');
  const text = health === 'offline' ? 'The server cannot be reached. The page keeps trying every few seconds.'
    : health === 'redis' ? `Redis is down: ${message}. The page keeps trying every few seconds.` : '';
  if (banner.textContent !== text) banner.textContent = text;  // unchanged text: screen readers stay quiet
  banner.hidden = !text;
  app.health = health;
  $('#health').dataset.health = health;
  const status = health === 'offline' ? 'Server unreachable'
    : health === 'redis' ? 'Redis down' : app.redisVersion ? `Redis ${app.redisVersion}` : 'Connected';
  if ($('#health-text').textContent !== status) $('#health-text').textContent = status;
}

let toastTimer = 0;

function notify(message, kind = 'ok') {
  const toast = $('#toast');
  $('#toast-text').textContent = message;
  toast.dataset.kind = kind;
  toast.hidden = false;
  clearTimeout(toastTimer);
  if (kind === 'ok') toastTimer = setTimeout(() => { toast.hidden = true; }, 8000);
}

const notifyError = (err) => notify(err instanceof ApiError ? err.messages.join(' ') : String(err), 'error');

/** Ask in the modal dialog; resolves true when confirmed. Escape and "Go back" resolve false. */
function confirmAction(title, message, okLabel) {
  const dialog = $('#confirm');
  const opener = document.activeElement?.dataset?.key;
  $('#confirm-title').textContent = title;
  $('#confirm-message').textContent = message;
  $('#confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      // the button that opened the dialog may have been re-rendered meanwhile
      if (opener && (document.activeElement === document.body || !document.activeElement)) {
        $(`[data-key="${CSS.escape(opener)}"]`)?.focus();
      }
      resolve(dialog.returnValue === 'ok');
    }, {once: true});
  });
}

// --- charts: hand-written SVG, sized to their box, coloured by CSS -----------------------------

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function axis(max, width, pad, y) {
  return [0, max / 2, max].map((v) => html`
    <line class="grid-line" x1="${pad.l}" x2="${width - pad.r}" y1="${y(v)}" y2="${y(v)}"></line>
    <text class="tick" x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end">${compactNumber(v)}</text>`);
}

function compactNumber(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return num(Math.round(v * 10) / 10);
}

function barChart(history, width) {
  const height = 190;
  const pad = {l: 44, r: 8, t: 10, b: 26};
  const max = niceMax(Math.max(0, ...history.flatMap((d) => [d.processed, d.failed])));
  const innerH = height - pad.t - pad.b;
  const band = (width - pad.l - pad.r) / Math.max(1, history.length);
  const bar = Math.max(3, Math.min(22, band * 0.32));
  const y = (v) => pad.t + innerH - (v / max) * innerH;
  const bars = history.map((d, i) => {
    const mid = pad.l + band * i + band / 2;
    const label = d.date.slice(5);
    return html`
      <rect class="bar processed" x="${mid - bar - 1}" y="${y(d.processed)}" width="${bar}" height="${Math.max(0, innerH + pad.t - y(d.processed))}"><title>${d.date}: ${num(d.processed)} processed</title></rect>
      <rect class="bar failed" x="${mid + 1}" y="${y(d.failed)}" width="${bar}" height="${Math.max(0, innerH + pad.t - y(d.failed))}"><title>${d.date}: ${num(d.failed)} failed</title></rect>
      <text class="tick" x="${mid}" y="${height - 8}" text-anchor="middle">${label}</text>`;
  });
  const summary = history.map((d) => `${d.date}: ${d.processed} processed, ${d.failed} failed`).join('; ');
  return html`<svg class="chart-svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Tasks per day. ${summary}">
    ${axis(max, width, pad, y)}${bars}</svg>`;
}

function lineChart(samples, width) {
  const height = 190;
  const pad = {l: 44, r: 8, t: 10, b: 26};
  const max = niceMax(Math.max(0, ...samples.flatMap((s) => LIVE_SERIES.map((k) => s[k]))));
  const innerH = height - pad.t - pad.b;
  const step = (width - pad.l - pad.r) / Math.max(1, samples.length - 1);
  const x = (i) => pad.l + i * step;
  const y = (v) => pad.t + innerH - (v / max) * innerH;
  const lines = LIVE_SERIES.map((k) => html`<polyline class="line s-${k}" points="${samples.map((s, i) => `${x(i).toFixed(1)},${y(s[k]).toFixed(1)}`).join(' ')}"><title>${k}</title></polyline>`);
  const last = samples[samples.length - 1];
  const seconds = samples.length > 1 ? Math.round((last.t - samples[0].t) / 1000) : 0;
  const label = LIVE_SERIES.map((k) => `${k} ${last[k]}`).join(', ');
  return html`<svg class="chart-svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Queue sizes now: ${label}">
    ${axis(max, width, pad, y)}${lines}
    <text class="tick" x="${pad.l}" y="${height - 8}" text-anchor="start">${duration(seconds)} ago</text>
    <text class="tick" x="${width - pad.r}" y="${height - 8}" text-anchor="end">now</text></svg>`;
}

function legend(items) {
  return html`<ul class="legend">${items.map(([cls, label, value]) => html`<li><span class="swatch ${cls}" aria-hidden="true"></span>${label}${value !== undefined ? html` <strong>${value}</strong>` : ''}</li>`)}</ul>`;
}

const chartWidth = (id) => Math.max(240, Math.floor(document.getElementById(id)?.clientWidth || 480));

// --- shared pieces of views ------------------------------------------------------------------------

function badge(text, kind = '') {
  return html`<span class="badge ${kind}">${text}</span>`;
}

const STATE_KIND = {pending: 'info', held: 'muted', active: 'ok', scheduled: 'info', retry: 'warn', archived: 'danger', completed: 'ok'};
const stateBadge = (state) => html`<span class="badge ${STATE_KIND[state] || ''}" data-testid="state-badge">${state}</span>`;

function crumbs(...items) {
  return html`<nav class="crumbs" aria-label="Breadcrumb"><ol>${items.map(([label, href], i) => (
    i === items.length - 1 ? html`<li><span aria-current="page">${label}</span></li>` : html`<li><a href="${href}">${label}</a></li>`))}</ol></nav>`;
}

function table(testid, head, rows, empty) {
  return html`<div class="table-wrap"><table class="grid" data-testid="${testid}">
    <thead><tr>${head.map((h) => (h instanceof Html ? h : html`<th scope="col">${h}</th>`))}</tr></thead>
    <tbody>${rows.length ? rows : html`<tr><td class="empty" colspan="${head.length}">${empty}</td></tr>`}</tbody></table></div>`;
}

function dl(items) {
  return html`<dl class="facts">${items.map(([term, value]) => html`<div><dt>${term}</dt><dd>${value}</dd></div>`)}</dl>`;
}

function button(label, action, {kind = '', data = {}, testid = action, key, disabled = false} = {}) {
  const attrs = Object.entries(data).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<button type="button" class="${kind}" data-action="${action}" data-key="${key || action}" data-testid="${testid}"${attrs}${disabled ? ' disabled' : ''}>${label}</button>`;
}

// --- overview ------------------------------------------------------------------------------------

function sumQueues(name, subs) {
  const sum = {name, subs};
  for (const k of COUNTED) sum[k] = subs.reduce((n, s) => n + (s[k] || 0), 0);
  sum.paused = subs.length > 0 && subs.every((s) => s.paused);
  sum.partlyPaused = !sum.paused && subs.some((s) => s.paused);
  sum.latency_seconds = subs.reduce((m, s) => Math.max(m, s.latency_seconds || 0), 0);
  return sum;
}

/** Sub-queues under their parent (``inference`` over ``inference.high``, ``inference.low``). */
function groupQueues(queues) {
  const groups = new Map();
  for (const q of queues) {
    const parent = parentOf(q.name);
    if (!groups.has(parent)) groups.set(parent, []);
    groups.get(parent).push(q);
  }
  return [...groups].map(([name, subs]) => sumQueues(name, subs));
}

function countCells(q) {
  const cells = STATES.map((k) => html`<td class="num${q[k] ? '' : ' zero'}" data-col="${k}" data-value="${q[k]}">${num(q[k])}</td>`);
  const paused = q.paused ? badge('paused', 'warn') : q.partlyPaused ? badge('partly paused', 'warn') : '';
  const waiting = q.pending + q.held > 0;
  return html`${cells}<td data-col="paused" data-value="${q.paused}">${paused}</td>
    <td class="num" data-col="latency" data-value="${q.latency_seconds}">${waiting ? duration(q.latency_seconds) : html`<span class="muted">—</span>`}</td>
    <td class="num${q.processed_today ? '' : ' zero'}" data-col="processed_today" data-value="${q.processed_today}">${num(q.processed_today)}</td>
    <td class="num${q.failed_today ? ' bad' : ' zero'}" data-col="failed_today" data-value="${q.failed_today}">${num(q.failed_today)}</td>`;
}

function queueRows(groups, filter) {
  const rows = [];
  for (const g of groups) {
    const subs = filter ? g.subs.filter((s) => s.name.toLowerCase().includes(filter)) : g.subs;
    if (!subs.length) continue;
    if (g.subs.length === 1) {
      const q = g.subs[0];
      const sub = q.name.slice(g.name.length);
      rows.push([q.name, html`<tr data-testid="queue-row" data-queue="${q.name}"><th scope="row"><a href="${link.queue(q.name)}" data-key="queue:${q.name}">${g.name}<span class="muted">${sub}</span></a></th>${countCells(q)}</tr>`]);
      continue;
    }
    rows.push([`${g.name}/`, html`<tr class="parent" data-testid="queue-parent-row" data-queue="${g.name}"><th scope="row"><a href="${link.queue(g.name)}" data-key="queue:${g.name}">${g.name}</a> <span class="muted small">${g.subs.length} sub-queues</span></th>${countCells(g)}</tr>`]);
    for (const q of subs) {
      rows.push([q.name, html`<tr class="sub" data-testid="queue-row" data-queue="${q.name}"><th scope="row"><a href="${link.queue(q.name)}" data-key="queue:${q.name}"><span class="muted">${g.name}.</span>${q.name.slice(g.name.length + 1)}</a></th>${countCells(q)}</tr>`]);
    }
  }
  return rows;
}

/** A column heading of numbers: right-aligned like its cells. */
const numHead = (label) => html`<th scope="col" class="num">${label}</th>`;

const QUEUE_HEAD = ['Queue', ...STATES.map(numHead), 'Paused',
  html`<th scope="col" class="num"><abbr title="Age of the oldest pending task">Latency</abbr></th>`,
  numHead('Processed today'), numHead('Failed today')];

function redisCards(stats, totals, queueCount) {
  const cards = [['Queues', num(queueCount)], ['Processed today', num(totals.processed_today)],
    ['Failed today', num(totals.failed_today)]];
  if (stats.value) {
    const r = stats.value.redis;
    cards.unshift([`Redis (${r.mode})`, r.version],
      ['Memory', html`${r.used_memory_human}${r.maxmemory ? html` <span class="muted small">of ${(r.maxmemory / 1048576).toFixed(0)}M</span>` : ''}`],
      ['Clients', num(r.connected_clients)], ['Uptime', duration(r.uptime_seconds)]);
  }
  return cards.map(([label, value]) => html`<div class="card"><span class="card-label">${label}</span><span class="card-value">${value}</span></div>`);
}

const overviewPage = {
  title: () => 'Overview',
  view: () => html`
    <div class="page-head"><h1 tabindex="-1">Overview</h1></div>
    <section class="cards" id="overview-cards" data-testid="redis-info" aria-label="Redis and totals"></section>
    <div class="chart-row">
      <section class="panel"><h2>Processed and failed, last 7 days</h2>
        <div class="chart" id="history-chart" data-testid="history-chart"></div></section>
      <section class="panel"><h2>Queue sizes, live</h2>
        <div class="chart" id="live-chart" data-testid="live-chart"></div></section>
    </div>
    <section class="panel">
      <div class="panel-head"><h2 id="queues-heading">Queues</h2>
        <label class="filter">Filter <input type="search" id="queue-filter" data-key="queue-filter" data-testid="queue-filter" placeholder="queue name" autocomplete="off" spellcheck="false"></label></div>
      <div class="table-wrap"><table class="grid queues" data-testid="queue-table" aria-labelledby="queues-heading">
        <thead><tr>${QUEUE_HEAD.map((h) => (h instanceof Html ? h : html`<th scope="col">${h}</th>`))}</tr></thead>
        <tbody id="queue-rows"><tr><td colspan="${QUEUE_HEAD.length}" class="empty">Loading…</td></tr></tbody>
        <tfoot id="queue-totals"></tfoot></table></div>
    </section>`,

  async load() {
    const [queues, stats] = await Promise.all([allQueues(), settle(api('/api/cli/stats?days=7'))]);
    const arrived = performance.now();
    const totals = sumQueues('all', queues);
    liveSamples.push({t: Date.now(), ...Object.fromEntries(LIVE_SERIES.map((k) => [k, totals[k]]))});
    if (liveSamples.length > LIVE_POINTS) liveSamples.shift();
    if (stats.value) app.redisVersion = stats.value.redis.version;
    return {queues, stats, totals, arrived};
  },

  render(ctx, data) {
    const started = data.arrived ?? performance.now();
    delete data.arrived;
    const groups = groupQueues(data.queues);
    const filter = ($('#queue-filter')?.value || '').trim().toLowerCase();
    const rows = queueRows(groups, filter);
    const rebuilt = patchRows('queue-rows', rows.length ? rows
      : [['', html`<tr><td colspan="${QUEUE_HEAD.length}" class="empty">${filter ? 'No queue matches the filter.' : 'No queues yet.'}</td></tr>`]]);
    patch('queue-totals', html`<tr data-testid="queue-totals"><th scope="row">All ${plural(data.queues.length, 'queue')}</th>${countCells(data.totals)}</tr>`);
    const tableEl = $('[data-testid="queue-table"]');
    tableEl.getBoundingClientRect();  // layout is part of the cost measured
    tableEl.dataset.renderMs = (performance.now() - started).toFixed(1);
    if (rebuilt) tableEl.dataset.rebuildMs = tableEl.dataset.renderMs;
    tableEl.dataset.rows = String(data.queues.length);
    overviewPage.renderCharts(data);
  },

  renderCharts(data) {
    patch('overview-cards', redisCards(data.stats, data.totals, data.queues.length));
    if (data.stats.value) {
      const {history} = data.stats.value;
      const idle = history.every((d) => !d.processed && !d.failed);
      patch('history-chart', html`${barChart(history, chartWidth('history-chart'))}
        ${legend([['processed', 'processed'], ['failed', 'failed']])}
        ${idle && html`<p class="muted small">No task was processed or failed in these days.</p>`}`);
    } else if (!data.stats.error.outage) {
      patch('history-chart', html`<p class="form-error">${data.stats.error.message}</p>`);
    }
    const last = liveSamples[liveSamples.length - 1];
    patch('live-chart', liveSamples.length < 2
      ? html`<p class="muted chart-wait">Sampling every ${REFRESH_MS / 1000} s while this page is open…</p>${legend(LIVE_SERIES.map((k) => [`s-${k}`, k, num(last?.[k])]))}`
      : html`${lineChart(liveSamples, chartWidth('live-chart'))}${legend(LIVE_SERIES.map((k) => [`s-${k}`, k, num(last[k])]))}`);
  },

  input(event, ctx) {
    if (event.target.id === 'queue-filter' && ctx.data) overviewPage.render(ctx, ctx.data);
  },
};

// --- queue ---------------------------------------------------------------------------------------

/** The API's pending listing holds the held tasks first; the pending tab shows the rest of it. */
function taskWindow(state, detail, pageNo) {
  const start = (pageNo - 1) * PAGE_SIZE;
  if (state === 'pending') return {api: 'pending', offset: detail.held + start, limit: PAGE_SIZE, total: detail.pending};
  return {api: state, offset: start, limit: PAGE_SIZE, total: detail[state]};
}

function stateTime(state) {
  return {scheduled: ['Runs at', 'next_process_at'], retry: ['Next retry', 'next_process_at'],
    archived: ['Failed at', 'last_failed_at'], completed: ['Completed at', 'completed_at']}[state];
}

function taskActions(state) {
  return {cancel: CANCELABLE.has(state), delete: state !== 'active', run: RUNNABLE.has(state)};
}

function taskRow(t, ctx, can) {
  const payload = compactJson(t.payload);
  const extra = stateTime(ctx.state);
  const checked = ctx.selected.has(t.id);
  const buttons = [
    can.cancel && button('Cancel', 'task-cancel', {kind: 'small', data: {id: t.id}, key: `cancel:${t.id}`}),
    can.run && button('Run now', 'task-run', {kind: 'small', data: {id: t.id}, key: `run:${t.id}`}),
    can.delete && button('Delete', 'task-delete', {kind: 'small danger', data: {id: t.id}, key: `delete:${t.id}`}),
  ];
  return html`<tr data-testid="task-row" data-task="${t.id}"${checked ? html` class="selected"` : ''}>
    ${writable() && html`<td class="check"><input type="checkbox" data-select="${t.id}" data-key="select:${t.id}" aria-label="Select task ${t.id}"${checked ? ' checked' : ''}></td>`}
    <td class="id"><a href="${link.task(t.queue, t.id)}" data-key="task:${t.id}" data-testid="task-link">${t.id}</a></td>
    <td class="payload"><code title="${truncate(payload, 1000)}">${truncate(payload, 120)}</code></td>
    <td class="time">${when(t.enqueued_at)}</td>
    ${extra && html`<td class="time">${when(t[extra[1]])}</td>`}
    <td class="num">${t.retried}/${t.max_retry}</td>
    <td class="err" title="${t.last_err || ''}">${t.last_err ? truncate(t.last_err, 120) : html`<span class="muted">—</span>`}</td>
    ${writable() && html`<td class="row-actions">${buttons}</td>`}
  </tr>`;
}

function bulkBar(ctx, can, total) {
  if (!writable()) return '';
  const n = ctx.selected.size;
  return html`<div class="bulk" data-testid="bulk-bar" role="group" aria-label="Actions on tasks">
    <span class="bulk-count" data-testid="selected-count">${plural(n, 'task')} selected</span>
    ${can.cancel && button('Cancel selected', 'bulk-cancel', {kind: 'small', disabled: !n})}
    ${can.run && button('Run selected now', 'bulk-run', {kind: 'small', disabled: !n})}
    ${can.delete && button('Delete selected', 'bulk-delete', {kind: 'small danger', disabled: !n})}
    <span class="bulk-sep" aria-hidden="true"></span>
    ${can.run && button(`Run all ${num(total)} now`, 'all-run', {kind: 'small', disabled: !total})}
    ${can.delete && button(`Delete all ${num(ctx.state === 'pending' ? ctx.data.detail.pending + ctx.data.detail.held : total)}`, 'all-delete', {kind: 'small danger', disabled: !total})}
  </div>`;
}

function pager(ctx, total) {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const first = total ? (ctx.pageNo - 1) * PAGE_SIZE + 1 : 0;
  const last = Math.min(total, ctx.pageNo * PAGE_SIZE);
  const q = ctx.params.queue;
  const prev = ctx.pageNo > 1 ? html`<a href="${link.queue(q, ctx.state, ctx.pageNo - 1)}" rel="prev" data-testid="page-prev">← Previous</a>` : html`<span class="disabled">← Previous</span>`;
  const next = ctx.pageNo < pages ? html`<a href="${link.queue(q, ctx.state, ctx.pageNo + 1)}" rel="next" data-testid="page-next">Next →</a>` : html`<span class="disabled">Next →</span>`;
  return html`<nav class="pager" aria-label="Pages" data-testid="pager">${prev}<span>${num(first)}–${num(last)} of ${num(total)} · page ${num(ctx.pageNo)} of ${num(pages)}</span>${next}</nav>`;
}

function queueTabs(ctx, detail) {
  return html`<nav class="tabs" aria-label="Task states" data-testid="state-tabs"><ul>${STATES.map((s) => html`<li><a href="${link.queue(ctx.params.queue, s, 1)}" data-testid="tab-${s}"${s === ctx.state ? html` aria-current="page"` : ''}>${s} <span class="count">${num(detail[s])}</span></a></li>`)}</ul></nav>`;
}

function subQueueTable(detail) {
  const rows = detail.sub_queues.map((q) => html`<tr data-testid="queue-row" data-queue="${q.name}"><th scope="row"><a href="${link.queue(q.name)}">${q.name}</a></th>${countCells(q)}</tr>`);
  return html`<section class="panel"><h2>Sub-queues</h2><p class="muted">Tasks are listed per sub-queue: open one.</p>${table('subqueue-table', QUEUE_HEAD, rows, 'No sub-queues.')}</section>`;
}

const queuePage = {
  title: (ctx) => `${ctx.params.queue} · ${ctx.state}`,
  init(ctx) {
    const state = ctx.query.get('state');
    ctx.state = STATES.includes(state) ? state : 'pending';
    ctx.pageNo = Math.max(1, parseInt(ctx.query.get('page'), 10) || 1);
    ctx.selected = new Set();
  },
  view: (ctx) => {
    const q = ctx.params.queue;
    const parent = parentOf(q);
    const trail = q.includes('.') ? [['Overview', link.overview()], [parent, link.queue(parent)], [q]] : [['Overview', link.overview()], [q]];
    return html`${crumbs(...trail)}
      <div class="page-head"><h1 tabindex="-1" data-testid="queue-name">${q}</h1><span id="queue-status" data-testid="queue-status"></span>
        <div class="actions" id="queue-actions"></div></div>
      <section class="cards" id="queue-counts" data-testid="queue-counts" aria-label="Counts"></section>
      <div id="queue-body"></div>`;
  },

  async load(ctx) {
    const {data: detail} = await api(`/api/cli/queues/${enc(ctx.params.queue)}`);
    if (detail.sub_queues.length > 1) return {detail, tasks: null};
    const w = taskWindow(ctx.state, detail, ctx.pageNo);
    const tasks = w.limit > 0
      ? (await api(`/api/cli/queues/${enc(ctx.params.queue)}/tasks?state=${w.api}&limit=${w.limit}&offset=${w.offset}`)).data.tasks
      : [];
    return {detail, tasks, total: w.total};
  },

  render(ctx, data) {
    const {detail} = data;
    if (!data.tasks) document.title = `${ctx.params.queue} · runqy`;  // a parent: no task state shown
    patch('queue-status', detail.paused ? badge('paused', 'warn') : badge('running', 'ok'));
    patch('queue-actions', writable() && (detail.paused
      ? button('Unpause', 'queue-unpause', {kind: 'primary', key: 'pause-toggle'})
      : button('Pause', 'queue-pause', {key: 'pause-toggle'})));
    patch('queue-counts', STATES.map((s) => html`<a class="card" href="${link.queue(ctx.params.queue, detail.sub_queues.length > 1 ? '' : s, 1)}" data-testid="count-${s}" data-value="${detail[s]}"><span class="card-label">${s}</span><span class="card-value">${num(detail[s])}</span></a>`));
    if (!data.tasks) {
      patch('queue-body', subQueueTable(detail));
      return;
    }
    const visible = new Set(data.tasks.map((t) => t.id));
    for (const id of ctx.selected) if (!visible.has(id)) ctx.selected.delete(id);
    const can = taskActions(ctx.state);
    const extra = stateTime(ctx.state);
    const allChecked = data.tasks.length > 0 && data.tasks.every((t) => ctx.selected.has(t.id));
    const head = [
      writable() && html`<th scope="col" class="check"><input type="checkbox" data-select="*" data-key="select:*" aria-label="Select every task on this page"${allChecked ? ' checked' : ''}></th>`,
      'ID', 'Payload', 'Enqueued', extra && extra[0], numHead('Retried'), 'Last error', writable() && 'Actions'].filter(Boolean);
    patch('queue-body', html`${queueTabs(ctx, detail)}
      <section class="panel" aria-label="${ctx.state} tasks">
        ${bulkBar(ctx, can, data.total)}
        ${table('task-table', head, data.tasks.map((t) => taskRow(t, ctx, can)), `No ${ctx.state} tasks${ctx.pageNo > 1 ? ' on this page' : ''}.`)}
        ${pager(ctx, data.total)}
      </section>`);
    const all = $('[data-select="*"]');
    if (all) all.indeterminate = !allChecked && ctx.selected.size > 0;
  },

  change(event, ctx) {
    const id = event.target.dataset.select;
    if (id === undefined || !ctx.data?.tasks) return;
    const ids = id === '*' ? ctx.data.tasks.map((t) => t.id) : [id];
    for (const i of ids) event.target.checked ? ctx.selected.add(i) : ctx.selected.delete(i);
    queuePage.render(ctx, ctx.data);
  },

  actions: {
    'queue-pause': (el, ctx) => pauseQueue(ctx, true),
    'queue-unpause': (el, ctx) => pauseQueue(ctx, false),
    'task-cancel': (el, ctx) => taskCommand(ctx, 'cancel', [el.dataset.id]),
    'task-delete': (el, ctx) => taskCommand(ctx, 'delete', [el.dataset.id]),
    'task-run': (el, ctx) => taskCommand(ctx, 'run', [el.dataset.id]),
    'bulk-cancel': (el, ctx) => taskCommand(ctx, 'cancel', [...ctx.selected]),
    'bulk-delete': (el, ctx) => taskCommand(ctx, 'delete', [...ctx.selected]),
    'bulk-run': (el, ctx) => taskCommand(ctx, 'run', [...ctx.selected]),
    'all-run': (el, ctx) => stateCommand(ctx, 'run'),
    'all-delete': (el, ctx) => stateCommand(ctx, 'delete'),
  },
};

async function pauseQueue(ctx, paused) {
  const q = ctx.params.queue;
  const {data} = await api(`/api/cli/queues/${enc(q)}/${paused ? 'pause' : 'unpause'}`, {method: 'POST'});
  const moved = data.sub_queues.reduce((n, s) => n + s.moved, 0);
  notify(`${q} ${paused ? 'paused' : 'unpaused'}${moved ? `: ${plural(moved, 'task')} ${paused ? 'held back' : 'back to pending'}` : ''}.`);
  await refresh();
}

/** One task call: what it did, or why not. */
const TASK_COMMANDS = {
  cancel: {verb: 'Cancel', done: 'canceled', call: (q, id) => api(`/api/cli/tasks/${enc(id)}`, {method: 'DELETE'})},
  delete: {verb: 'Delete', done: 'deleted', call: (q, id) => api(`/api/cli/queues/${enc(q)}/tasks/${enc(id)}`, {method: 'DELETE'})},
  run: {verb: 'Run', done: 'moved to pending', call: (q, id) => api(`/api/cli/queues/${enc(q)}/tasks/${enc(id)}/run`, {method: 'POST'})},
};

/** Cancel, delete or run tasks of the queue view one by one; confirm the destructive ones first. */
async function taskCommand(ctx, command, ids) {
  const c = TASK_COMMANDS[command];
  const q = ctx.params.queue;
  if (!ids.length) return;
  const what = ids.length === 1 ? `task ${ids[0]}` : `${num(ids.length)} selected ${ctx.state} tasks`;
  if (command !== 'run' || ids.length > 1) {
    const consequence = {cancel: 'Canceled tasks are archived with the error "canceled"; a running task cannot be interrupted.',
      delete: 'Deleted tasks are gone for good.', run: 'They move to pending now.'}[command];
    if (!await confirmAction(`${c.verb} ${ids.length === 1 ? 'task' : 'tasks'}?`, `${c.verb} ${what} of ${q}? ${consequence}`, `${c.verb} ${ids.length === 1 ? 'task' : plural(ids.length, 'task')}`)) return;
  }
  const {done, notes, failures} = await runEach(ids, (id) => c.call(q, id));
  for (const id of done) ctx.selected.delete(id);
  report(`${plural(done.length, 'task')} ${c.done}`, notes, failures);
  await refresh();
}

async function runEach(ids, call) {
  const done = [];
  const notes = [];
  const failures = [];
  for (const id of ids) {
    try {
      const {status, data} = await call(id);
      if (status === 202) notes.push(data.message || `task ${id} is running`);
      else done.push(id);
    } catch (err) {
      if (err.status === 401) throw err;
      failures.push(err.messages ? err.messages.join(' ') : String(err));
    }
  }
  return {done, notes, failures};
}

function report(summary, notes, failures) {
  const more = [...notes, ...failures];
  notify(`${summary}.${more.length ? ' ' + more.slice(0, 3).join(' ') + (more.length > 3 ? ` (and ${more.length - 3} more)` : '') : ''}`,
    failures.length ? 'error' : 'ok');
}

/** Run or delete every task of the shown state, after saying how many that is. */
async function stateCommand(ctx, command) {
  const q = ctx.params.queue;
  const {detail} = ctx.data;
  const state = ctx.state;
  const count = state === 'pending' ? detail.pending + detail.held : detail[state];
  const label = state === 'pending' && detail.held ? 'pending and held' : state;
  if (command === 'run') {
    if (!await confirmAction('Run every task again?', `Run all ${num(count)} ${label} tasks of ${q} now? They move to pending.`, `Run ${plural(count, 'task')}`)) return;
    const {data} = await api(`/api/cli/queues/${enc(q)}/run?state=${state}`, {method: 'POST'});
    notify(`${plural(data.moved, 'task')} of ${q} moved to pending.`);
  } else {
    if (!await confirmAction('Delete every task?', `Delete ${num(count)} ${label} tasks of ${q}? They are gone for good.`, `Delete ${plural(count, 'task')}`)) return;
    const {data} = await api(`/api/cli/queues/${enc(q)}/tasks?state=${state}`, {method: 'DELETE'});
    notify(`${plural(data.deleted, 'task')} of ${q} deleted.`);
  }
  ctx.selected.clear();
  await refresh();
}

// --- task ----------------------------------------------------------------------------------------

const taskPage = {
  title: (ctx) => `Task ${ctx.params.id}`,
  view: (ctx) => {
    const {queue, id} = ctx.params;
    return html`${crumbs(['Overview', link.overview()], [queue, link.queue(queue)], [id])}
      <div class="page-head"><h1 tabindex="-1" class="task-id">Task <code>${id}</code></h1><span id="task-state"></span>
        <div class="actions" id="task-actions"></div></div>
      <div id="task-body"><p class="loading">Loading…</p></div>`;
  },

  async load(ctx) {
    return (await api(`/api/cli/queues/${enc(ctx.params.queue)}/tasks/${enc(ctx.params.id)}`)).data.task;
  },

  render(ctx, t) {
    const can = taskActions(t.state);
    patch('task-state', html`<span data-testid="task-state" data-state="${t.state}">${stateBadge(t.state)}</span>
      ${FINAL.has(t.state) ? '' : html`<span class="muted small">refreshing every ${TASK_REFRESH_MS / 1000} s</span>`}`);
    patch('task-actions', writable() && html`
      ${can.cancel && button('Cancel', 'task-cancel')}
      ${can.run && button('Run now', 'task-run', {kind: 'primary'})}
      ${can.delete && button('Delete', 'task-delete', {kind: 'danger'})}`);
    patch('task-body', html`
      <section class="panel">${dl([
        ['Queue', html`<a href="${link.queue(t.queue, t.state, 1)}">${t.queue}</a>`],
        ['Type', t.type],
        ['State', t.state],
        ['Retried', html`<span data-testid="task-retried">${t.retried} of ${t.max_retry}</span>`],
        ['Timeout', t.timeout ? duration(t.timeout) : html`<span class="muted">—</span>`],
        ['Enqueued', when(t.enqueued_at)],
        ['Next run', when(t.next_process_at)],
        ['Completed', when(t.completed_at)],
        ['Last failed', when(t.last_failed_at)],
      ])}</section>
      ${t.last_err && html`<section class="panel"><h2>Last error</h2><pre class="error-text" data-testid="task-error">${t.last_err}</pre></section>`}
      <section class="panel"><h2>Payload</h2><pre class="json" data-testid="task-payload">${jsonHtml(t.payload)}</pre></section>
      <section class="panel"><h2>Result</h2>${t.result === null || t.result === undefined
        ? html`<p class="muted" data-testid="task-result">No result.</p>`
        : html`<pre class="json" data-testid="task-result">${jsonHtml(t.result)}</pre>`}</section>`);
  },

  interval: (ctx, t) => (FINAL.has(t.state) ? 0 : TASK_REFRESH_MS),

  actions: {
    async 'task-cancel'(el, ctx) {
      const {id} = ctx.params;
      if (!await confirmAction('Cancel task?', `Cancel task ${id}? It is archived with the error "canceled"; a running task cannot be interrupted.`, 'Cancel task')) return;
      const {status, data} = await api(`/api/cli/tasks/${enc(id)}`, {method: 'DELETE'});
      notify(status === 202 ? data.message : `Task ${id} canceled.`);
      await refresh();
    },
    async 'task-delete'(el, ctx) {
      const {queue, id} = ctx.params;
      if (!await confirmAction('Delete task?', `Delete task ${id} of ${queue}? It is gone for good.`, 'Delete task')) return;
      await api(`/api/cli/queues/${enc(queue)}/tasks/${enc(id)}`, {method: 'DELETE'});
      notify(`Task ${id} deleted.`);
      navigate(link.queue(queue, ctx.data?.state, 1));
    },
    async 'task-run'(el, ctx) {
      const {queue, id} = ctx.params;
      const {data} = await api(`/api/cli/queues/${enc(queue)}/tasks/${enc(id)}/run`, {method: 'POST'});
      notify(`Task ${id} moved from ${data.was} to pending.`);
      await refresh();
    },
  },
};

// --- workers -------------------------------------------------------------------------------------

function workerQueues(queues) {
  if (!queues.length) return html`<span class="muted">—</span>`;
  return queues.map((q) => html`<span class="chip" title="priority ${q.priority}">${q.name}<span class="muted"> ${q.priority}</span></span>`);
}

function workerStatus(w) {
  return html`${badge(w.status, w.status === 'running' ? 'ok' : w.status === 'offline' ? 'danger' : 'info')}`;
}

const yesNo = (value, good) => (value ? badge('yes', good ? 'ok' : 'warn') : badge('no', good ? 'danger' : 'muted'));

const workersPage = {
  title: () => 'Workers',
  view: () => html`<div class="page-head"><h1 tabindex="-1">Workers</h1><span id="worker-count" class="muted"></span></div>
    <section class="panel" id="workers"></section>`,
  load: async () => (await api('/api/cli/workers')).data,
  render(ctx, data) {
    patch('worker-count', plural(data.count, 'worker'));
    const rows = data.workers.map((w) => html`<tr data-testid="worker-row" data-worker="${w.worker_id}">
      <th scope="row"><a href="${link.worker(w.worker_id)}">${w.worker_id}</a></th>
      <td>${workerStatus(w)}</td><td>${yesNo(w.healthy, true)}</td><td>${yesNo(w.is_stale, false)}</td>
      <td class="chips">${workerQueues(w.queues)}</td><td class="num">${w.concurrency}</td>
      <td class="num">${w.started_at ? html`<span data-since="${w.started_at}" title="since ${w.started_at}"></span>` : html`<span class="muted">—</span>`}</td>
      <td class="time">${when(w.last_beat)}</td></tr>`);
    patch('workers', table('worker-table', ['Worker', 'Status', 'Healthy', 'Stale', 'Queues', numHead('Concurrency'), numHead('Uptime'), 'Last heartbeat'], rows,
      'No worker has sent a heartbeat in the last 30 minutes.'));
  },
};

function logLine(line) {
  if (line && typeof line === 'object' && 'text' in line) {
    const ts = typeof line.ts === 'number' ? localTime(new Date(line.ts).toISOString()) : '';
    return html`<span class="log-line${line.src === 'stderr' ? ' stderr' : ''}"><span class="muted">${ts}</span> <span class="log-src">${line.src || ''}</span> ${line.text}</span>\n`;
  }
  return html`<span class="log-line">${typeof line === 'string' ? line : compactJson(line)}</span>\n`;
}

const workerPage = {
  title: (ctx) => `Worker ${ctx.params.id}`,
  view: (ctx) => html`${crumbs(['Workers', link.workers()], [ctx.params.id])}
    <div class="page-head"><h1 tabindex="-1">Worker <code>${ctx.params.id}</code></h1><span id="worker-status"></span></div>
    <div id="worker-facts"></div>
    <section class="panel"><h2>Recent log lines</h2><div id="worker-logs"></div></section>
    <div class="two-col"><section class="panel"><h2>Metrics</h2><div id="worker-metrics"></div></section>
      <section class="panel"><h2>Recovery</h2><div id="worker-recovery"></div></section></div>`,
  load: async (ctx) => (await api(`/api/cli/workers/${enc(ctx.params.id)}`)).data,
  render(ctx, w) {
    patch('worker-status', workerStatus(w));
    patch('worker-facts', html`<section class="panel">${dl([
      ['Healthy', yesNo(w.healthy, true)], ['Stale', yesNo(w.is_stale, false)],
      ['Queues', html`<span class="chips">${workerQueues(w.queues)}</span>`], ['Concurrency', w.concurrency],
      ['Started', when(w.started_at)], ['Uptime', w.started_at ? html`<span data-since="${w.started_at}"></span>` : '—'],
      ['Last heartbeat', when(w.last_beat)]])}</section>`);
    const box = $('.logs', $('#worker-logs'));
    const atEnd = !box || box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    patch('worker-logs', w.logs.length
      ? html`<pre class="logs" data-testid="worker-logs" tabindex="0">${w.logs.map(logLine)}</pre>`
      : html`<p class="muted" data-testid="worker-logs">No log lines.</p>`);
    const logs = $('.logs', $('#worker-logs'));
    if (logs && atEnd) logs.scrollTop = logs.scrollHeight;  // follow new lines unless scrolled up
    patch('worker-metrics', w.metrics === null ? html`<p class="muted">None reported.</p>` : html`<pre class="json">${jsonHtml(w.metrics)}</pre>`);
    patch('worker-recovery', w.recovery === null ? html`<p class="muted">None reported.</p>` : html`<pre class="json">${jsonHtml(w.recovery)}</pre>`);
  },
};

// --- queue configs -------------------------------------------------------------------------------

function subQueueNames(c) {
  return (c.sub_queues || []).map((s) => html`<span class="chip"${typeof s === 'object' && s.priority !== undefined ? html` title="priority ${s.priority}"` : ''}>${typeof s === 'string' ? s : s.name}${typeof s === 'object' && s.priority !== undefined ? html`<span class="muted"> ${s.priority}</span>` : ''}</span>`);
}

const configsPage = {
  title: () => 'Queue configs',
  view: () => html`<div class="page-head"><h1 tabindex="-1">Queue configs</h1><span id="config-count" class="muted"></span>
      <div class="actions">${writable() && button('Reload from files', 'configs-reload')}</div></div>
    <div id="reload-result" aria-live="polite"></div>
    <section class="panel" id="configs"></section>`,
  load: async () => (await api('/api/cli/configs')).data,
  render(ctx, data) {
    patch('config-count', plural(data.count, 'config'));
    const rows = data.configs.map((c) => html`<tr data-testid="config-row" data-config="${c.name}">
      <th scope="row"><a href="${link.config(c.name)}">${c.name}</a></th>
      <td>${badge(c.source, c.source === 'yaml' ? 'info' : 'warn')}</td><td class="num">${c.priority}</td><td>${c.mode}</td>
      <td class="chips">${subQueueNames(c)}</td><td class="num">${c.max_retry}</td><td class="num">${duration(c.timeout)}</td></tr>`);
    patch('configs', table('config-table', ['Name', 'Source', numHead('Priority'), 'Mode', 'Sub-queues', numHead('Max retry'), numHead('Timeout')], rows, 'No queue configs.'));
  },
  actions: {
    async 'configs-reload'() {
      if (!await confirmAction('Reload the queue configs?', 'Read every YAML file of the server\'s config directory again and replace the configs of the same names. A file with an error changes nothing.', 'Reload')) return;
      const {data} = await api('/api/cli/configs/reload', {method: 'POST'});
      const errors = Object.entries(data.errors);
      patch('reload-result', html`<div class="notice${errors.length ? ' bad' : ''}" data-testid="reload-result">
        <p>Loaded ${plural(data.count, 'config')}${data.loaded.length ? `: ${data.loaded.join(', ')}` : ''}.</p>
        ${errors.map(([file, messages]) => html`<p><strong>${file}</strong>: ${messages.join('; ')}</p>`)}</div>`);
      await refresh();
    },
  },
};

const CONFIG_ORDER = ['priority', 'mode', 'max_retry', 'timeout', 'result_ttl', 'failed_ttl', 'pending_timeout', 'sub_queues', 'deployment'];

const configPage = {
  title: (ctx) => `Config ${ctx.params.name}`,
  view: (ctx) => html`${crumbs(['Queue configs', link.configs()], [ctx.params.name])}
    <div class="page-head"><h1 tabindex="-1">${ctx.params.name}</h1><span id="config-source"></span>
      <div class="actions"><a class="button" href="${link.queue(ctx.params.name)}">Open the queue</a></div></div>
    <section class="panel"><h2>As YAML</h2><div id="config-yaml"></div></section>`,
  async load(ctx) {
    const {data} = await api('/api/cli/configs');
    const found = data.configs.find((c) => c.name === ctx.params.name);
    if (!found) throw new ApiError(404, [`queue config not found: ${ctx.params.name}`]);
    return found;
  },
  render(ctx, c) {
    patch('config-source', badge(c.source === 'yaml' ? 'from the YAML files' : 'made through the API', c.source === 'yaml' ? 'info' : 'warn'));
    const {name, source, ...rest} = c;
    // the order of the YAML files' own example rather than the API's alphabetical one
    const ordered = Object.fromEntries([...CONFIG_ORDER.filter((k) => k in rest), ...Object.keys(rest).filter((k) => !CONFIG_ORDER.includes(k))].map((k) => [k, rest[k]]));
    patch('config-yaml', html`<pre class="yaml" data-testid="config-yaml">${new Html(toYaml({queues: {[name]: ordered}}, true))}</pre>`);
  },
};

// --- vaults --------------------------------------------------------------------------------------

const vaultsPage = {
  title: () => 'Vaults',
  view: () => html`<div class="page-head"><h1 tabindex="-1">Vaults</h1><span id="vault-count" class="muted"></span></div>
    <section class="panel" id="vaults"></section>`,
  load: async () => (await api('/api/vaults')).data,
  render(ctx, data) {
    patch('vault-count', plural(data.count, 'vault'));
    const rows = data.vaults.map((v) => html`<tr data-testid="vault-row" data-vault="${v.name}">
      <th scope="row"><a href="${link.vault(v.name)}">${v.name}</a></th><td>${v.description}</td>
      <td class="num">${num(v.entry_count)}</td><td class="time">${when(v.created_at)}</td></tr>`);
    patch('vaults', table('vault-table', ['Name', 'Description', numHead('Entries'), 'Created'], rows, 'No vaults.'));
  },
};

const vaultPage = {
  title: (ctx) => `Vault ${ctx.params.name}`,
  view: (ctx) => html`${crumbs(['Vaults', link.vaults()], [ctx.params.name])}
    <div class="page-head"><h1 tabindex="-1">${ctx.params.name}</h1><span id="vault-description" class="muted"></span></div>
    <section class="panel" id="vault-entries"></section>
    ${writable() && html`<section class="panel"><h2>Add or replace an entry</h2>
      <form class="entry-form" data-form="add-entry" data-testid="entry-form" autocomplete="off">
        <label>Key <input name="key" required maxlength="128" pattern="[A-Za-z_][A-Za-z0-9_]*" spellcheck="false" data-testid="entry-key" placeholder="e.g. OPENAI_API_KEY"></label>
        <label>Value <input name="value" type="password" maxlength="65536" autocomplete="new-password" data-testid="entry-value"></label>
        <label class="check-label"><input name="is_secret" type="checkbox" checked data-testid="entry-secret"> Secret (shown masked)</label>
        <button type="submit" class="primary" data-testid="entry-submit">Save entry</button>
        <p class="muted small">The value is encrypted on the server and never shown here again; a secret one only masked.</p>
      </form></section>`}`,
  load: async (ctx) => (await api(`/api/vaults/${enc(ctx.params.name)}`)).data,
  render(ctx, v) {
    patch('vault-description', v.description);
    const rows = v.entries.map((e) => html`<tr data-testid="entry-row" data-entry="${e.key}">
      <th scope="row"><code>${e.key}</code></th><td><code data-testid="entry-value-shown">${e.value}</code></td>
      <td>${e.is_secret ? badge('secret', 'warn') : badge('plain', 'muted')}</td><td class="time">${when(e.updated_at)}</td>
      ${writable() && html`<td>${button('Remove', 'entry-remove', {kind: 'small danger', data: {entry: e.key}, key: `remove:${e.key}`})}</td>`}</tr>`);
    patch('vault-entries', html`<h2>${plural(v.entry_count, 'entry', 'entries')}</h2>
      ${table('entry-table', ['Key', 'Value', 'Kind', 'Updated', writable() && 'Actions'].filter(Boolean), rows, 'No entries.')}`);
  },
  actions: {
    async 'entry-remove'(el, ctx) {
      const key = el.dataset.entry;
      const vault = ctx.params.name;
      if (!await confirmAction('Remove entry?', `Remove ${key} from vault ${vault}? Workers stop getting it at their next registration.`, 'Remove entry')) return;
      await api(`/api/vaults/${enc(vault)}/entries/${enc(key)}`, {method: 'DELETE'});
      notify(`${key} removed from ${vault}.`);
      await refresh();
    },
  },
  forms: {
    async 'add-entry'(form, ctx) {
      const fields = form.elements;
      const body = {key: fields.key.value.trim(), value: fields.value.value, is_secret: fields.is_secret.checked};
      fields.value.value = '';  // write-only: the value leaves the page with this request
      const {status} = await api(`/api/vaults/${enc(ctx.params.name)}/entries`, {method: 'POST', body});
      notify(`${body.key} ${status === 201 ? 'added to' : 'replaced in'} ${ctx.params.name}.`);
      fields.key.value = '';
      await refresh();
    },
  },
};

const notFoundPage = {
  title: () => 'Not found',
  view: () => html`<div class="page-head"><h1 tabindex="-1">Not found</h1></div>
    <p>There is no such page. <a href="${link.overview()}">Go to the overview</a>.</p>`,
  load: async () => null,
  render() {},
  interval: () => 0,
};

// --- routing -------------------------------------------------------------------------------------

const ROUTES = [
  [/^\/monitoring$/, overviewPage, [], 'overview'],
  [/^\/monitoring\/queues\/([^/]+)$/, queuePage, ['queue'], 'overview'],
  [/^\/monitoring\/queues\/([^/]+)\/tasks\/([^/]+)$/, taskPage, ['queue', 'id'], 'overview'],
  [/^\/monitoring\/workers$/, workersPage, [], 'workers'],
  [/^\/monitoring\/workers\/([^/]+)$/, workerPage, ['id'], 'workers'],
  [/^\/monitoring\/configs$/, configsPage, [], 'configs'],
  [/^\/monitoring\/configs\/([^/]+)$/, configPage, ['name'], 'configs'],
  [/^\/monitoring\/vaults$/, vaultsPage, [], 'vaults'],
  [/^\/monitoring\/vaults\/([^/]+)$/, vaultPage, ['name'], 'vaults'],
];

function route(location) {
  const path = location.pathname.slice(ROOT.length).replace(/\/+$/, '') || '/';
  for (const [pattern, page, names, section] of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    try {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(m[i + 1])]));
      return {page, params, section};
    } catch {
      break;  // a malformed escape in the path
    }
  }
  return {page: notFoundPage, params: {}, section: ''};
}

function navigate(url, {replace = false} = {}) {
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  show({moved: true});
}

/** Render the view of the current URL: its frame now, its data when it arrives. */
function show({moved = false} = {}) {
  if (!app.session) return;
  clearTimeout(app.timer);
  const {page, params, section} = route(window.location);
  const ctx = {page, params, query: new URLSearchParams(window.location.search), data: null, seq: 0, shown: 0};
  page.init?.(ctx);
  app.ctx = ctx;
  document.title = `${page.title(ctx)} · runqy`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  showPageError(null);
  if ($('#confirm').open) $('#confirm').close();  // a question about the view left behind
  const view = $('#view');
  view.renderedHtml = undefined;
  view.innerHTML = esc(page.view(ctx));
  if (moved) {
    window.scrollTo(0, 0);
    $('h1', view)?.focus({preventScroll: true});  // screen readers hear the new page's name
  }
  refresh();
}

function showPageError(err) {
  const box = $('#page-error');
  const shown = err && !(err instanceof ApiError && (err.outage || err.status === 401));
  box.hidden = !shown;
  box.textContent = shown ? (err instanceof ApiError ? err.messages.join(' ') : `The page failed: ${err.message}`) : '';
}

// --- refreshing ----------------------------------------------------------------------------------

/** Load the view's data and render it; then schedule the next refresh (none while hidden). */
async function refresh() {
  const ctx = app.ctx;
  if (!ctx || !app.session) return;
  clearTimeout(app.timer);
  const seq = ++ctx.seq;
  let next = REFRESH_MS;
  try {
    const data = await ctx.page.load(ctx);
    if (ctx !== app.ctx || seq < ctx.shown) return;  // navigated away, or a newer answer is shown
    ctx.shown = seq;
    ctx.data = data;
    showPageError(null);
    ctx.page.render(ctx, data);
    if (ctx.page.interval) next = ctx.page.interval(ctx, data);
  } catch (err) {
    if (ctx !== app.ctx || seq < ctx.shown) return;
    if (!(err instanceof ApiError)) console.error(err);
    showPageError(err);
  }
  updateClocks();
  if (seq === ctx.seq) schedule(next);
}

function schedule(ms) {
  clearTimeout(app.timer);
  if (ms && app.session && !document.hidden) app.timer = setTimeout(refresh, ms);
}

// --- signing in and out --------------------------------------------------------------------------

function showSignIn(message = '') {
  clearTimeout(app.timer);
  app.ctx = null;
  if ($('#confirm').open) $('#confirm').close();
  $('[data-testid="nav"]').hidden = true;
  showPageError(null);
  document.title = 'Sign in · runqy';
  const view = $('#view');
  view.renderedHtml = undefined;
  view.innerHTML = esc(html`<section class="signin" data-testid="signin">
    <h1 tabindex="-1">runqy monitoring</h1>
    <form data-form="sign-in" data-testid="signin-form" novalidate>
      <label for="signin-key">Admin API key</label>
      <input id="signin-key" name="api_key" type="password" autocomplete="off" spellcheck="false" required data-testid="signin-key">
      <button type="submit" class="primary" data-testid="signin-submit">Sign in</button>
      <p class="form-error" id="signin-error" data-testid="signin-error" role="alert">${message}</p>
    </form>
    <p class="muted small">The key is sent once to open a session; the page does not keep it.</p>
  </section>`);
  $('#signin-key').focus();
}

function signedOut(message) {
  if (!app.session) return;
  app.session = null;
  showSignIn(message);
}

async function signIn(form) {
  const input = form.elements.api_key;
  const key = input.value;
  input.value = '';  // the key lives only in this request
  const error = $('#signin-error');
  if (!key) {
    error.textContent = 'Enter the admin API key.';
    input.focus();
    return;
  }
  const submit = $('button[type="submit"]', form);
  submit.disabled = true;
  error.textContent = '';
  try {
    const {data} = await api(SESSION_URL, {method: 'POST', body: {api_key: key}, signingIn: true});
    startSession(data);
  } catch (err) {
    error.textContent = err instanceof ApiError ? err.messages.join(' ') : String(err);
    submit.disabled = false;
    input.focus();
  }
}

function startSession(session) {
  app.session = session;
  $('[data-testid="nav"]').hidden = false;
  $('#read-only-badge').hidden = !session.read_only;
  document.body.classList.toggle('read-only', Boolean(session.read_only));
  show();
}

async function signOut() {
  try {
    await api(SESSION_URL, {method: 'DELETE'});
  } catch (err) {
    if (err.status !== 401) throw err;
  }
  app.session = null;
  showSignIn('You are signed out.');
}

async function boot() {
  try {
    const {data} = await api(SESSION_URL, {signingIn: true});
    startSession(data);
  } catch (err) {
    if (err.status === 401) showSignIn();
    else {
      if (!err.outage) showPageError(err);
      setTimeout(boot, REFRESH_MS);  // unreachable or Redis down: the banner says so; try again
    }
  }
}

// --- events: links, actions, forms, visibility -------------------------------------------------

const GLOBAL_ACTIONS = {
  'sign-out': signOut,
  'dismiss-toast': () => { $('#toast').hidden = true; },
};

async function runAction(el) {
  const name = el.dataset.action;
  const ctx = app.ctx;
  const handler = GLOBAL_ACTIONS[name] || ctx?.page.actions?.[name];
  if (!handler || el.busy) return;
  // not disabled meanwhile: a disabled button loses focus, which the dialog should give back to it
  el.busy = true;
  el.setAttribute('aria-busy', 'true');
  try {
    await handler(el, ctx);
  } catch (err) {
    if (err.status !== 401) notifyError(err);
    if (!(err instanceof ApiError)) console.error(err);
  } finally {
    el.busy = false;
    el.removeAttribute('aria-busy');
  }
}

document.addEventListener('click', (event) => {
  const actionEl = event.target.closest('[data-action]');
  if (actionEl) {
    event.preventDefault();
    runAction(actionEl);
    return;
  }
  const a = event.target.closest('a[href]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (a.target || a.hasAttribute('download') || a.origin !== window.location.origin) return;
  if (a.pathname !== BASE && !a.pathname.startsWith(BASE + '/')) return;
  event.preventDefault();
  if (a.href !== window.location.href) navigate(a.href);
});

document.addEventListener('submit', async (event) => {
  const form = event.target.closest('[data-form]');
  if (!form) return;
  event.preventDefault();
  if (form.dataset.form === 'sign-in') {
    signIn(form);
    return;
  }
  const handler = app.ctx?.page.forms?.[form.dataset.form];
  if (!handler) return;
  const submit = $('button[type="submit"]', form);
  submit.disabled = true;
  try {
    await handler(form, app.ctx);
  } catch (err) {
    if (err.status !== 401) notifyError(err);
  } finally {
    submit.disabled = false;
  }
});

document.addEventListener('change', (event) => app.ctx?.page.change?.(event, app.ctx));
document.addEventListener('input', (event) => app.ctx?.page.input?.(event, app.ctx));
window.addEventListener('popstate', () => show());
document.addEventListener('visibilitychange', () => {
  if (document.hidden) clearTimeout(app.timer);
  else refresh();
});

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    const ctx = app.ctx;
    if (ctx?.data && ctx.page === overviewPage) overviewPage.renderCharts(ctx.data);
  }, 150);
});

setInterval(updateClocks, 1000);
boot();
