// A run's page: reads the JSON kvsim embedded (#kvsim-data) and draws the summary, the
// timeline charts on one time axis, and the linearizability violations, all as SVG.
// No library and no network: everything is in the page. The view (time range, selected
// request) lives in the URL's hash, `#t=2.5-4&req=17`, so a view can be shared and a
// headless browser can open one.
//
// The page's script is this file, timeline.js, violations.js and main.js, in that order,
// in one function scope (html.rs puts them together). This one: the data, the helpers,
// the summary and the legends.

const DATA = JSON.parse(document.getElementById('kvsim-data').textContent);
const S = DATA.summary, R = DATA.run, A = R.attempts;
const SVGNS = 'http://www.w3.org/2000/svg';
const ML = 128, MR = 18;                 // chart margins: labels left, a little right
const REPLY = ['ok', 'redirect', 'fail', 'no reply'];
const REPLY_COLOR = ['#1f77b4', '#ff9f1c', '#d62728', '#222'];
const PUT_OK_COLOR = '#2ca02c';
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2',
  '#17becf', '#bcbd22', '#7f7f7f', '#ff7f0e'];
const TYPE_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948',
  '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const view = { t0: 0, t1: R.end_us, req: null };
let width = 1000;

// ---- small helpers -------------------------------------------------------------------
function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function html(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function text(parent, x, y, s, attrs) {
  const t = svg('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
  t.textContent = s;
  return t;
}
function title(parent, s) { svg('title', {}, parent).textContent = s; }
const sec = (us) => (us / 1e6).toFixed(3) + ' s';
// Operations in a violation are often shorter than a millisecond: their times to the µs.
const secFine = (us) => (us / 1e6).toFixed(6) + ' s';
const ms = (us) => us < 0 ? 'none' : (us / 1e3).toFixed(3) + ' ms';
const fmtInt = (n) => n.toLocaleString('en-US');
const replicaColor = (r) => PALETTE[r % PALETTE.length];
const plotWidth = () => width - ML - MR;
const xOf = (us) => ML + (us - view.t0) / (view.t1 - view.t0) * plotWidth();
const usOf = (x) => view.t0 + (x - ML) / plotWidth() * (view.t1 - view.t0);
const clampX = (x) => Math.max(ML, Math.min(ML + plotWidth(), x));

// Round steps for an axis: about `target` ticks over `span`.
function niceStep(span, target) {
  const raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
function timeTicks() {
  const step = niceStep(view.t1 - view.t0, 12);
  const out = [];
  for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) out.push(t);
  return { ticks: out, step: step };
}
function timeLabel(us, step) {
  const digits = step >= 1e6 ? 0 : step >= 1e5 ? 1 : step >= 1e4 ? 2 : 3;
  return (us / 1e6).toFixed(digits) + ' s';
}
// Vertical grid lines, and tick labels at `labelY` when given.
function timeAxis(g, top, bottom, labelY) {
  const { ticks, step } = timeTicks();
  const grid = svg('g', { class: 'grid' }, g);
  for (const t of ticks) {
    const x = xOf(t);
    svg('line', { x1: x, x2: x, y1: top, y2: bottom }, grid);
    if (labelY !== undefined) {
      text(grid, x, labelY, timeLabel(t, step), { 'text-anchor': 'middle', class: 'sub' });
    }
  }
}
// The hatches of the fault spans, defined once for every chart of the page.
function patterns() {
  const holder = svg('svg', { width: 0, height: 0, id: 'patterns', 'aria-hidden': 'true' });
  holder.style.position = 'absolute';
  document.body.insertBefore(holder, document.body.firstChild);
  const defs = svg('defs', {}, holder);
  const kill = svg('pattern', { id: 'hatch-kill', width: 6, height: 6,
    patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }, defs);
  svg('rect', { width: 6, height: 6, fill: '#3a3f4b', 'fill-opacity': 0.55 }, kill);
  svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#111', 'stroke-width': 2 }, kill);
  const part = svg('pattern', { id: 'hatch-part', width: 7, height: 7,
    patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(-45)' }, defs);
  svg('rect', { width: 7, height: 7, fill: '#7b4fbf', 'fill-opacity': 0.22 }, part);
  svg('line', { x1: 0, y1: 0, x2: 0, y2: 7, stroke: '#7b4fbf', 'stroke-width': 2.2 }, part);
}
function clipTo(s, id, top, bottom) {
  const cp = svg('clipPath', { id: id }, s);
  svg('rect', { x: ML, y: top, width: plotWidth(), height: bottom - top }, cp);
  return svg('g', { 'clip-path': 'url(#' + id + ')' }, s);
}
function chartTitle(box, s) { html('div', { class: 'chart-title' }, box, s); }
function chart(id, height) {
  const s = svg('svg', { id: id, class: 'chart', width: width, height: height,
    viewBox: '0 0 ' + width + ' ' + height });
  return s;
}
// Buckets merged so that each bar is at least 2 px wide.
function binning() {
  const buckets = Math.ceil((view.t1 - view.t0) / R.bucket_us);
  return Math.max(1, Math.ceil(buckets * 2 / plotWidth()));
}
function bins(counts, k) {
  const out = [];
  for (let b = 0; b < counts.length; b += k) {
    let s = 0;
    for (let j = b; j < Math.min(b + k, counts.length); j++) s += counts[j];
    out.push(s);
  }
  return out;
}

// ---- the summary -----------------------------------------------------------------------
function drawSummary(app) {
  const head = html('header', { id: 'summary' }, app);
  const h1 = html('h1', {}, head, 'kvsim: ' + S.scenario);
  html('span', { class: 'badge ' + (S.passed ? 'pass' : 'fail') }, h1, S.passed ? 'PASS' : 'FAIL');
  html('p', { class: 'desc' }, head, S.description + ' \u00b7 seed ' + S.seed +
    ' \u00b7 ' + R.replicas.length + ' replicas, ' + R.clients.length + ' clients, ' +
    sec(R.end_us) + ' run');
  if (R.stand_in) html('div', { class: 'notice', id: 'stand-in' }, head, R.stand_in);
  const cols = html('div', { class: 'cols' }, head);
  const left = html('div', {}, cols);
  const checksBox = html('div', {}, left);
  html('h3', {}, checksBox, 'Correctness checks');
  const ul = html('ul', { class: 'checks', id: 'checks' }, checksBox);
  for (const c of S.checks) {
    if (c.skipped) {
      html('li', { class: 'ok', title: c.skipped }, ul,
        c.name + ': not held against a stand-in (' + (c.passed ? 'passed' : 'failed') + '), ' + c.skipped);
    } else {
      html('li', { class: c.passed ? 'ok' : 'no', title: c.message }, ul,
        c.passed ? c.name : c.name + ': ' + c.message);
    }
  }
  const tierBox = html('div', {}, left);
  html('h3', {}, tierBox, S.passed ? 'Performance tiers' : 'Performance tiers (not scored: a check failed)');
  const tt = html('table', { class: 'tiers', id: 'tiers' }, tierBox);
  for (const t of S.tiers) {
    const tr = html('tr', {}, tt);
    const td = html('td', {}, tr);
    const word = ['bonus', 'full', 'partial', 'none'][Math.min(t.tier, 3)];
    html('span', { class: 'tier ' + (S.passed ? 't' + Math.min(t.tier, 3) : 'unscored') }, td,
      S.passed ? word : '-');
    html('td', {}, tr, t.line);
  }
  const figBox = html('div', {}, cols);
  html('h3', {}, figBox, 'Figures');
  const ft = html('table', { class: 'figures', id: 'figures' }, figBox);
  for (const [k, v] of S.figures) {
    const tr = html('tr', {}, ft);
    html('td', {}, tr, k);
    html('td', {}, tr, v);
  }
}

// ---- legends -------------------------------------------------------------------------------
function swatch(parent, label, draw) {
  const item = html('span', { class: 'item' }, parent);
  const s = svg('svg', { width: 22, height: 14 }, item);
  draw(s);
  html('span', {}, item, label);
}
function laneLegend(box) {
  const lg = html('div', { class: 'legend', id: 'lane-legend' }, box);
  swatch(lg, 'claims to lead (its own ID in "leader")', (s) =>
    svg('rect', { x: 1, y: 3, width: 20, height: 8, fill: '#f0b400', stroke: '#a77d00' }, s));
  swatch(lg, 'follows a leader (line in that leader\u2019s colour)', (s) =>
    svg('line', { x1: 1, x2: 21, y1: 7, y2: 7, stroke: PALETTE[2], 'stroke-width': 3 }, s));
  swatch(lg, 'knows no leader', (s) =>
    svg('line', { x1: 1, x2: 21, y1: 7, y2: 7, stroke: '#9aa1ad', 'stroke-width': 2, 'stroke-dasharray': '3 2' }, s));
  swatch(lg, 'vote requests (an election; taller: more per 100 ms)', (s) =>
    svg('rect', { x: 8, y: 2, width: 5, height: 11, fill: '#d62728' }, s));
  swatch(lg, 'killed / died', (s) => svg('rect', { x: 1, y: 1, width: 20, height: 12, class: 'span kill' }, s));
  swatch(lg, 'down for a restart (until its hello)', (s) => svg('rect', { x: 1, y: 1, width: 20, height: 12, class: 'span restart' }, s));
  swatch(lg, 'paused', (s) => svg('rect', { x: 1, y: 1, width: 20, height: 12, class: 'span pause' }, s));
  swatch(lg, 'partition: majority side', (s) => svg('rect', { x: 1, y: 1, width: 20, height: 12, class: 'span partition majority' }, s));
  swatch(lg, 'minority side', (s) => svg('rect', { x: 1, y: 1, width: 20, height: 12, class: 'span partition minority' }, s));
  swatch(lg, 'one-way cut', (s) => svg('rect', { x: 1, y: 1, width: 20, height: 12, class: 'span one_way' }, s));
}
function scatterLegend(box) {
  const lg = html('div', { class: 'legend', id: 'scatter-legend' }, box);
  swatch(lg, 'get, ok', (s) => svg('circle', { cx: 11, cy: 7, r: 3.2, fill: REPLY_COLOR[0] }, s));
  swatch(lg, 'put, ok', (s) => svg('rect', { x: 8, y: 4, width: 6, height: 6, fill: PUT_OK_COLOR }, s));
  swatch(lg, 'redirect (\u25cf get, \u25a0 put)', (s) => svg('circle', { cx: 11, cy: 7, r: 3.2, fill: REPLY_COLOR[1] }, s));
  swatch(lg, 'fail', (s) => svg('circle', { cx: 11, cy: 7, r: 3.2, fill: REPLY_COLOR[2] }, s));
  swatch(lg, 'no reply by the end (top band, at its send time)', (s) => svg('path', { d: 'M7 3 L15 11 M15 3 L7 11', stroke: REPLY_COLOR[3], 'stroke-width': 2 }, s));
  swatch(lg, 'median per 100 ms', (s) => svg('line', { x1: 1, x2: 21, y1: 7, y2: 7, stroke: '#444', 'stroke-width': 1.6 }, s));
  swatch(lg, '99th percentile', (s) => svg('line', { x1: 1, x2: 21, y1: 7, y2: 7, stroke: '#a0192a', 'stroke-width': 1.6, 'stroke-dasharray': '4 2' }, s));
}
