// The charts on one time axis: replica lanes, the request scatter, throughput and
// messages; zooming by dragging, and the view kept in the URL.

// ---- lanes: who leads, elections, faults -------------------------------------------------
const LANE = 30, AXIS = 20, ROW = 22;
function drawLanes(box) {
  const n = R.replicas.length;
  const top = AXIS + ROW * 2;
  const height = top + n * LANE + 4;
  const s = chart('lanes', height);
  box.appendChild(s);
  timeAxis(s, AXIS - 4, height, 13);
  const g = clipTo(s, 'clip-lanes', 0, height);
  text(s, ML - 8, AXIS + 15, 'faults', { 'text-anchor': 'end', class: 'title' });
  text(s, ML - 8, AXIS + ROW + 15, 'kvsim\u2019s leader', { 'text-anchor': 'end', class: 'title' });
  // Each replica's lane: background, label.
  for (let r = 0; r < n; r++) {
    const y = top + r * LANE;
    const lane = svg('g', { class: 'lane', id: 'lane-' + r, 'data-replica': R.replicas[r] }, g);
    svg('rect', { x: ML, y: y, width: plotWidth(), height: LANE - 2, class: 'lane-bg' + (r % 2 ? ' odd' : '') }, lane);
    text(s, ML - 8, y + 19, 'replica ' + R.replicas[r], { 'text-anchor': 'end', class: 'title', fill: replicaColor(r) });
  }
  const laneY = (r) => top + r * LANE;
  // Claims under the fault spans, so that a paused leader shows as paused.
  const claimsBox = svg('g', { class: 'claims' }, g);
  // Fault spans: in the lanes they touch, and labelled in the faults row.
  R.faults.forEach((f, k) => {
    const x0 = xOf(f.from_us), x1 = xOf(f.to_us === null ? R.end_us : f.to_us);
    if (x1 < ML || x0 > ML + plotWidth()) return;
    const w = Math.max(2, x1 - x0);
    let label;
    if (f.kind === 'partition') {
      const maj = new Set(f.majority);
      const a = [], b = [];
      for (let r = 0; r < n; r++) {
        (maj.has(r) ? a : b).push(R.replicas[r]);
        const side = maj.has(r) ? 'majority' : 'minority';
        const rect = svg('rect', { x: x0, y: laneY(r), width: w, height: LANE - 2,
          class: 'span partition ' + side, 'data-kind': 'partition' }, g);
        title(rect, 'partition ' + sec(f.from_us) + ' to ' + (f.to_us === null ? 'the end' : sec(f.to_us)) + ': ' + side + ' side');
      }
      label = 'partition ' + a.join(' ') + ' | ' + b.join(' ');
    } else {
      const r = f.replica;
      const what = { kill: 'killed', died: 'died', pause: 'paused', restart: 'down for a restart',
        one_way: f.from_leader ? 'cut off: its messages are lost' : 'cut off: hears nobody' }[f.kind];
      const rect = svg('rect', { x: x0, y: laneY(r), width: w, height: LANE - 2,
        class: 'span ' + f.kind, 'data-kind': f.kind }, g);
      title(rect, R.replicas[r] + ' ' + what + ' at ' + sec(f.from_us) + (f.to_us === null ? '' : ' until ' + sec(f.to_us)));
      if (w > 60) text(g, x0 + 4, laneY(r) + 11, what, { class: 'span-label' });
      label = what.split(':')[0] + ' ' + R.replicas[r];
    }
    svg('rect', { x: x0, y: AXIS + 2, width: w, height: 6, class: 'fault-mark',
      fill: { partition: '#7b4fbf', kill: '#3a3f4b', died: '#3a3f4b', pause: '#ff9f1c', restart: '#1f77b4', one_way: '#d62728' }[f.kind] }, g);
    // The label runs until the next fault's; too long, it shortens to its kind, or goes
    // (the span's tooltip has it).
    const next = R.faults.slice(k + 1).map((o) => xOf(o.from_us)).find((x) => x > x0 + 2);
    const room = (next === undefined ? ML + plotWidth() : next) - Math.max(x0, ML) - 8;
    for (const l of [label, label.split(' ')[0]]) {
      if (l.length * 6.3 <= room) { text(g, Math.max(x0, ML) + 3, AXIS + 19, l, { class: 'span-label' }); break; }
    }
  });
  // kvsim's own leader, as it changed.
  drawLeaderSegments(claimsBox, R.sim_leader.map((p) => [p[0], -1, p[1]]), AXIS + ROW + 4, 14, -1, R.end_us);
  // Each replica's claims, until it was killed or died (it sends nothing after), and not
  // while it is down for a restart: each process's claims are drawn apart.
  for (let r = 0; r < n; r++) {
    const claims = R.claims.filter((c) => c[1] === r);
    const end = R.faults.find((f) => f.replica === r && (f.kind === 'kill' || f.kind === 'died'));
    const last = end ? end.from_us : R.end_us;
    let from = 0;
    for (const down of R.faults.filter((f) => f.replica === r && f.kind === 'restart')) {
      const mine = claims.filter((c) => c[0] >= from && c[0] < down.from_us);
      drawLeaderSegments(claimsBox, mine, laneY(r) + 4, LANE - 10, r, Math.min(last, down.from_us));
      from = down.to_us === null ? Infinity : down.to_us;
    }
    drawLeaderSegments(claimsBox, claims.filter((c) => c[0] >= from), laneY(r) + 4, LANE - 10, r, last);
  }
  // Vote requests per bucket, as red bars from the lane's foot.
  for (let r = 0; r < n; r++) {
    const votes = R.votes[r];
    const foot = laneY(r) + LANE - 3;
    for (let b = 0; b < votes.length; b++) {
      if (!votes[b]) continue;
      const t = b * R.bucket_us;
      if (t + R.bucket_us < view.t0 || t > view.t1) continue;
      const x = xOf(t), w = Math.max(2.5, xOf(t + R.bucket_us) - x);
      const h = Math.min(LANE - 6, 5 + 3 * Math.log2(1 + votes[b]));
      const bar = svg('rect', { x: x, y: foot - h, width: w, height: h, fill: '#d62728', class: 'votes' }, g);
      title(bar, R.replicas[r] + ': ' + votes[b] + ' vote requests at ' + sec(t) + ' to ' + sec(t + R.bucket_us));
    }
  }
  brush(s, 0, height);
}
// Segments of "who leads" from `changes` ([at, replica, leader]); `self` marks a claim
// to lead (-1: kvsim's row, where every known leader is a claim).
function drawLeaderSegments(g, changes, y, h, self, end) {
  for (let k = 0; k < changes.length; k++) {
    const from = changes[k][0], to = Math.min(end, k + 1 < changes.length ? changes[k + 1][0] : end);
    if (to <= from) continue;
    if (to < view.t0 || from > view.t1) continue;
    const leader = changes[k][2];
    const x0 = clampX(xOf(from)), x1 = clampX(xOf(to));
    const w = Math.max(1, x1 - x0);
    const mid = y + h / 2;
    let e, label = '';
    if (leader === self || (self === -1 && leader >= 0)) {
      const fill = self === -1 ? replicaColor(leader) : '#f0b400';
      e = svg('rect', { x: x0, y: y, width: w, height: h, fill: fill, stroke: self === -1 ? 'none' : '#a77d00',
        class: self === -1 ? 'sim-leader' : 'lead' }, g);
      label = self === -1 ? R.replicas[leader] : 'leader';
      title(e, (self === -1 ? 'kvsim took ' + R.replicas[leader] + ' for the leader' : R.replicas[self] + ' claims to lead') +
        ' from ' + sec(from) + ' to ' + sec(to));
    } else if (leader >= 0) {
      e = svg('line', { x1: x0, x2: x0 + w, y1: mid, y2: mid, stroke: replicaColor(leader), 'stroke-width': 3, class: 'follow' }, g);
      label = '\u2192 ' + R.replicas[leader];
      title(e, R.replicas[self] + ' names ' + R.replicas[leader] + ' as leader from ' + sec(from) + ' to ' + sec(to));
    } else {
      e = svg('line', { x1: x0, x2: x0 + w, y1: mid, y2: mid, stroke: leader === -2 ? '#d62728' : '#9aa1ad',
        'stroke-width': 2, 'stroke-dasharray': '3 2', class: 'noleader' }, g);
      title(e, (self === -1 ? 'kvsim knew no leader' : R.replicas[self] + (leader === -2 ? ' names no replica of this run' : ' knows no leader')) +
        ' from ' + sec(from) + ' to ' + sec(to));
    }
    if (label && w > 46) {
      text(g, x0 + 4, mid + 4, label, { class: 'span-label', fill: self === -1 || leader === self ? '#fff' : '#2a3140',
        'font-weight': 600 });
    }
  }
}

// ---- the request scatter -------------------------------------------------------------------
const SC = { top: 4, band: 16, plot: 300, axis: 22 };
let visible = [];            // [x, y, attempt index] of the points drawn, for hovering
function latencyRange() {
  let lo = Infinity, hi = 0;
  for (const l of A.lat) if (l > 0) { lo = Math.min(lo, l); hi = Math.max(hi, l); }
  if (hi === 0) { lo = 100; hi = 1e6; }
  return [Math.pow(10, Math.floor(Math.log10(Math.max(lo, 1)))), Math.pow(10, Math.ceil(Math.log10(hi * 1.01)))];
}
const [LAT_LO, LAT_HI] = latencyRange();
function yOfLatency(us) {
  const top = SC.top + SC.band + 6, bottom = top + SC.plot;
  const v = Math.log10(Math.max(us, LAT_LO));
  return bottom - (v - Math.log10(LAT_LO)) / (Math.log10(LAT_HI) - Math.log10(LAT_LO)) * SC.plot;
}
function drawScatter(box) {
  const height = SC.top + SC.band + 6 + SC.plot + SC.axis + 4;
  const s = chart('scatter', height);
  box.appendChild(s);
  const plotTop = SC.top + SC.band + 6, plotBottom = plotTop + SC.plot;
  timeAxis(s, SC.top, plotBottom, plotBottom + 16);
  // Latency axis, log scale.
  const axis = svg('g', { class: 'axis' }, s);
  for (let v = LAT_LO; v <= LAT_HI; v *= 10) {
    const y = yOfLatency(v);
    svg('line', { x1: ML, x2: ML + plotWidth(), y1: y, y2: y }, axis);
    const label = v >= 1e6 ? (v / 1e6) + ' s' : (v / 1e3) + ' ms';
    text(axis, ML - 6, y + 4, label, { 'text-anchor': 'end' });
  }
  text(s, 14, plotTop + SC.plot / 2, 'latency (log scale)', { transform: 'rotate(-90 14 ' + (plotTop + SC.plot / 2) + ')',
    'text-anchor': 'middle', class: 'title' });
  text(s, ML - 6, SC.top + SC.band - 3, 'no reply', { 'text-anchor': 'end', class: 'title' });
  svg('rect', { x: ML, y: SC.top, width: plotWidth(), height: SC.band, fill: '#f3f4f7' }, s);
  const g = clipTo(s, 'clip-scatter', SC.top, plotBottom);
  // The request window.
  for (const [t, what] of [[R.requests_from_us, 'requests start'], [R.requests_to_us, 'last request']]) {
    if (t < view.t0 || t > view.t1) continue;
    const x = xOf(t);
    svg('line', { x1: x, x2: x, y1: SC.top, y2: plotBottom, stroke: '#9aa1ad', 'stroke-dasharray': '5 3' }, g);
    text(g, x + 3, plotBottom - 4, what, { class: 'sub' });
  }
  // Points, one path per kind: cheap to draw by the ten thousand.
  const paths = {};
  visible = [];
  for (let i = 0; i < A.t.length; i++) {
    const t = A.t[i];
    if (t < view.t0 || t > view.t1) continue;
    const x = xOf(t), reply = A.reply[i], put = A.put[i];
    const y = reply === 3 ? SC.top + SC.band / 2 : yOfLatency(A.lat[i]);
    const key = reply + '-' + put;
    let d;
    if (reply === 3) d = 'M' + (x - 3) + ' ' + (y - 3) + 'l6 6m0 -6l-6 6';
    else if (put) d = 'M' + (x - 2.2) + ' ' + (y - 2.2) + 'h4.4v4.4h-4.4z';
    else d = 'M' + (x - 2.4) + ' ' + y + 'a2.4 2.4 0 1 0 4.8 0a2.4 2.4 0 1 0 -4.8 0';
    (paths[key] = paths[key] || []).push(d);
    visible.push([x, y, i]);
  }
  const order = ['0-0', '0-1', '1-0', '1-1', '2-0', '2-1', '3-0', '3-1'];
  for (const key of order) {
    if (!paths[key]) continue;
    const [reply, put] = key.split('-').map(Number);
    const color = reply === 0 && put ? PUT_OK_COLOR : REPLY_COLOR[reply];
    const attrs = { d: paths[key].join(''), class: 'points', 'data-reply': REPLY[reply],
      'data-op': put ? 'put' : 'get', 'data-count': paths[key].length };
    if (reply === 3) Object.assign(attrs, { stroke: color, 'stroke-width': 1.6, fill: 'none' });
    else Object.assign(attrs, { fill: color, 'fill-opacity': reply === 0 ? 0.55 : 0.9 });
    svg('path', attrs, g);
  }
  // Percentile lines per bucket, from every attempt.
  for (const [series, attrs] of [[R.latency_p50_us, { stroke: '#444', 'stroke-width': 1.6, class: 'p50' }],
    [R.latency_p99_us, { stroke: '#a0192a', 'stroke-width': 1.6, 'stroke-dasharray': '4 2', class: 'p99' }]]) {
    let d = '', pen = false;
    for (let b = 0; b < series.length; b++) {
      const t = b * R.bucket_us;
      if (series[b] < 0 || t + R.bucket_us < view.t0 || t > view.t1) { pen = false; continue; }
      const y = yOfLatency(series[b]);
      d += (pen ? 'L' : 'M') + xOf(t) + ' ' + y + 'L' + xOf(t + R.bucket_us) + ' ' + y;
      pen = true;
    }
    svg('path', Object.assign({ d: d || 'M0 0', fill: 'none' }, attrs), g);
  }
  s.setAttribute('data-points', visible.length);
  drawSelection(g);
  hover(s);
  brush(s, SC.top, plotBottom);
}
function attemptsOf(req) {
  const out = [];
  for (let i = 0; i < A.req.length; i++) if (A.req[i] === req) out.push(i);
  return out;
}
function drawSelection(g) {
  if (view.req === null) return;
  const idx = attemptsOf(view.req);
  const pts = idx.map((i) => [xOf(A.t[i]), A.reply[i] === 3 ? SC.top + SC.band / 2 : yOfLatency(A.lat[i])]);
  if (pts.length > 1) svg('path', { d: 'M' + pts.map((p) => p[0] + ' ' + p[1]).join('L'), class: 'selected-path' }, g);
  for (const p of pts) svg('circle', { cx: p[0], cy: p[1], r: 6, class: 'selected-ring' }, g);
}
function describeAttempt(i) {
  const dst = A.dst[i] < 0 ? 'nobody alive' : R.replicas[A.dst[i]];
  return (A.put[i] ? 'put' : 'get') + ' ' + REPLY[A.reply[i]] + ' \u00b7 ' + R.clients[A.client[i]] +
    ' \u2192 ' + dst + '\nsent ' + sec(A.t[i]) + (A.lat[i] >= 0 ? ', reply after ' + ms(A.lat[i]) : ', no reply') +
    '\nMID ' + A.mid[i] + ' \u00b7 key ' + A.key[i] + '\u2026 \u00b7 request ' + A.req[i] + '\n(click for all its attempts)';
}
function nearest(s, ev) {
  const box = s.getBoundingClientRect();
  const mx = ev.clientX - box.left, my = ev.clientY - box.top;
  let best = null, bestD = 64;
  for (const p of visible) {
    const d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
    if (d < bestD) { bestD = d; best = p[2]; }
  }
  return best;
}
function hover(s) {
  const tip = document.getElementById('tip');
  s.addEventListener('mousemove', (ev) => {
    if (dragging) { tip.style.display = 'none'; return; }
    const i = nearest(s, ev);
    if (i === null) { tip.style.display = 'none'; return; }
    tip.textContent = describeAttempt(i);
    tip.style.display = 'block';
    tip.style.left = (ev.pageX + 14) + 'px';
    tip.style.top = (ev.pageY + 10) + 'px';
  });
  s.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  s.addEventListener('click', (ev) => {
    if (moved) return;
    const i = nearest(s, ev);
    view.req = i === null ? null : A.req[i];
    update();
  });
}
function drawDetails(box) {
  box.innerHTML = '';
  if (view.req === null) {
    html('span', { class: 'empty' }, box, 'Hover over a request in the scatter for its attempt; click it for all its attempts (MID, replica, times, reply).');
    return;
  }
  const idx = attemptsOf(view.req);
  if (!idx.length) { html('span', { class: 'empty' }, box, 'Request ' + view.req + ' is not among the attempts drawn.'); return; }
  const f = idx[0];
  html('strong', {}, box, 'Request ' + view.req + ': ' + (A.put[f] ? 'put' : 'get') + ' of key ' + A.key[f] +
    '\u2026 by client ' + R.clients[A.client[f]] + ', ' + idx.length + (idx.length > 1 ? ' attempts' : ' attempt'));
  const t = html('table', { class: 'mono', id: 'attempts' }, box);
  const hr = html('tr', {}, t);
  for (const h of ['#', 'MID', 'sent to', 'sent at', 'reply', 'after']) html('th', {}, hr, h);
  idx.forEach((i, k) => {
    const tr = html('tr', { class: 'attempt' }, t);
    for (const v of [k + 1, A.mid[i], A.dst[i] < 0 ? '-' : R.replicas[A.dst[i]], sec(A.t[i]),
      REPLY[A.reply[i]], A.lat[i] >= 0 ? ms(A.lat[i]) : '-']) html('td', {}, tr, String(v));
  });
}

// ---- throughput and messages ---------------------------------------------------------------
function stackedBars(id, titleText, unit, series, height, legendBox) {
  const top = 6, axisH = 20, plotH = height - top - axisH;
  const s = chart(id, height);
  chartTitle(legendBox, titleText);
  const k = binning();
  const binned = series.map((x) => bins(x.counts, k));
  const per = k === 1 ? R.bucket_us : k * R.bucket_us;
  const scale = unit === 'per-second' ? 1e6 / per : 1;
  let max = 1;
  const firstBin = Math.max(0, Math.floor(view.t0 / per)), lastBin = Math.ceil(view.t1 / per);
  for (let b = firstBin; b <= lastBin; b++) {
    let sum = 0;
    for (const x of binned) sum += (x[b] || 0);
    max = Math.max(max, sum * scale);
  }
  const step = Math.max(1, niceStep(max, 4));
  max = Math.ceil(max / step) * step;
  const yOf = (v) => top + plotH - v / max * plotH;
  timeAxis(s, top, top + plotH, top + plotH + 15);
  const axis = svg('g', { class: 'axis' }, s);
  for (let v = 0; v <= max + 1e-9; v += step) {
    svg('line', { x1: ML, x2: ML + plotWidth(), y1: yOf(v), y2: yOf(v) }, axis);
    text(axis, ML - 6, yOf(v) + 4, fmtInt(Math.round(v)), { 'text-anchor': 'end' });
  }
  const yLabel = unit === 'per-second' ? 'per second' : 'per ' + (per / 1e3) + ' ms';
  text(s, 14, top + plotH / 2, yLabel, { transform: 'rotate(-90 14 ' + (top + plotH / 2) + ')', 'text-anchor': 'middle', class: 'title' });
  const g = clipTo(s, 'clip-' + id, top, top + plotH);
  const paths = series.map(() => []);
  for (let b = firstBin; b <= lastBin; b++) {
    let base = 0;
    const x0 = xOf(b * per), x1 = xOf((b + 1) * per);
    const w = Math.max(1, x1 - x0 - (x1 - x0 > 4 ? 1 : 0));
    series.forEach((_, j) => {
      const v = (binned[j][b] || 0) * scale;
      if (v > 0) paths[j].push('M' + x0 + ' ' + yOf(base + v) + 'h' + w + 'V' + yOf(base) + 'h' + (-w) + 'z');
      base += v;
    });
  }
  series.forEach((x, j) => {
    svg('path', { d: paths[j].join('') || 'M0 0', fill: x.color, class: 'bars', 'data-series': x.name }, g);
  });
  const lg = html('div', { class: 'legend', id: id + '-legend' }, legendBox);
  for (const x of series) {
    swatch(lg, x.label, (sw) => svg('rect', { x: 3, y: 2, width: 16, height: 10, fill: x.color }, sw));
  }
  legendBox.appendChild(s);
  brush(s, top, top + plotH);
}
function drawThroughput(box) {
  stackedBars('throughput', 'Throughput: ok replies per second (by reply time)', 'per-second', [
    { name: 'get', label: 'gets ok (' + fmtInt(R.ok_gets.reduce((a, b) => a + b, 0)) + ')', counts: R.ok_gets, color: REPLY_COLOR[0] },
    { name: 'put', label: 'puts ok (' + fmtInt(R.ok_puts.reduce((a, b) => a + b, 0)) + ')', counts: R.ok_puts, color: PUT_OK_COLOR },
  ], 130, box);
}
function drawMessages(box) {
  const series = R.types.map((t, j) => ({ name: t.name, counts: t.counts, color: TYPE_COLORS[j % TYPE_COLORS.length],
    label: t.name + (t.vote_request ? ' (vote requests)' : '') + ': ' + fmtInt(t.total) }));
  const per = binning() * R.bucket_us / 1e3;
  stackedBars('messages', 'Messages between replicas per ' + per + ' ms, by type (a broadcast counts once per recipient)',
    'per-bucket', series, 170, box);
}

// ---- zoom: drag across any chart --------------------------------------------------------------
let dragging = null, moved = false;
function brush(s, top, bottom) {
  s.addEventListener('mousedown', (ev) => {
    const box = s.getBoundingClientRect();
    const x = ev.clientX - box.left;
    if (x < ML || x > ML + plotWidth()) return;
    dragging = { s: s, x: x, rect: svg('rect', { x: x, y: top, width: 0, height: bottom - top, class: 'brush' }, s) };
    moved = false;
    ev.preventDefault();
  });
}
window.addEventListener('mousemove', (ev) => {
  if (!dragging) return;
  const box = dragging.s.getBoundingClientRect();
  const x = clampX(ev.clientX - box.left);
  if (Math.abs(x - dragging.x) > 3) moved = true;
  dragging.rect.setAttribute('x', Math.min(x, dragging.x));
  dragging.rect.setAttribute('width', Math.abs(x - dragging.x));
});
window.addEventListener('mouseup', (ev) => {
  if (!dragging) return;
  const box = dragging.s.getBoundingClientRect();
  const x = clampX(ev.clientX - box.left);
  const a = usOf(Math.min(x, dragging.x)), b = usOf(Math.max(x, dragging.x));
  dragging.rect.remove();
  dragging = null;
  if (moved && b - a > 1000) zoomTo(a, b);
  setTimeout(() => { moved = false; }, 0);
});
function zoomTo(a, b) {
  view.t0 = Math.max(0, a);
  view.t1 = Math.min(R.end_us, Math.max(b, view.t0 + 1000));
  update();
}

// ---- the view in the URL --------------------------------------------------------------------------
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const t = params.get('t');
  if (t && /^[0-9.]+-[0-9.]+$/.test(t)) {
    const [a, b] = t.split('-').map((v) => parseFloat(v) * 1e6);
    if (b > a) { view.t0 = Math.max(0, a); view.t1 = Math.min(R.end_us, b); }
  }
  const req = params.get('req');
  if (req !== null && /^[0-9]+$/.test(req)) view.req = Number(req);
}
function writeHash() {
  const parts = [];
  if (view.t0 > 0 || view.t1 < R.end_us) parts.push('t=' + (view.t0 / 1e6).toFixed(4) + '-' + (view.t1 / 1e6).toFixed(4));
  if (view.req !== null) parts.push('req=' + view.req);
  const hash = parts.length ? '#' + parts.join('&') : '';
  if (location.hash !== hash) history.replaceState(null, '', hash || location.pathname + location.search);
}
