// Linearizability violations, drawn as Porcupine draws a history, and the notes on how
// the page is made.

// ---- violations ---------------------------------------------------------------------------------
function drawViolations(app) {
  const sec0 = html('section', { id: 'violations' }, app);
  if (!R.violations.length) {
    html('h2', {}, sec0, 'Linearizability');
    html('p', {}, sec0, 'No violation: every key\u2019s history has an order that fits every operation\u2019s window. ' +
      (S.figures.find((f) => f[0] === 'linearizability') || ['', ''])[1] + '.');
    return;
  }
  html('h2', {}, sec0, 'Linearizability violations: ' + R.violations_total + (R.violations_total === 1 ? ' key' : ' keys') +
    (R.violations_total > R.violations.length ? ' (the first ' + R.violations.length + ' drawn; all are in --json)' : ''));
  html('p', { class: 'hint' }, sec0, 'Each bar is one operation on the key, from its request to its reply, in its client\u2019s row. ' +
    'Outlined in red: the smallest set of operations that no order can satisfy (every operation must take effect at one instant ' +
    'inside its bar, and every get must return the latest put before it). Dashed bars are puts that got no ok: they may take effect at any time after they began, or never.');
  R.violations.forEach((v, k) => drawViolation(sec0, v, k));
}
function drawViolation(parent, v, k) {
  const box = html('div', { class: 'violation', id: 'violation-' + k }, parent);
  html('h3', {}, box, 'Key ' + v.key);
  html('p', { class: 'sentence' }, box, v.sentence);
  const clients = [...new Set(v.ops.map((o) => o.client))].sort((a, b) => a - b);
  const rowH = 46, top = 10, axisH = 24;
  const height = top + clients.length * rowH + axisH;
  const w = width;
  const s = svg('svg', { class: 'chart porcupine', width: w, height: height }, box);
  // As Porcupine draws histories: x is the order of the calls and replies, not their
  // time, so that a 0.1 ms operation among gaps of seconds is as wide as any other.
  const events = [];
  v.ops.forEach((o, i) => {
    events.push([o.invoke_us, 0, i]);
    if (o.response_us !== null) events.push([o.response_us, 1, i]);
  });
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const slots = events.length + 1;
  const slotW = (w - ML - MR) / slots;
  const x = (rank) => ML + (rank + 0.5) * slotW;
  const callAt = [], returnAt = [];
  events.forEach((e, rank) => { (e[1] ? returnAt : callAt)[e[2]] = rank; });
  const bottom = top + clients.length * rowH;
  const axis = svg('g', { class: 'grid' }, s);
  const every = Math.max(1, Math.ceil(90 / slotW));
  events.forEach((e, rank) => {
    if (rank % every) return;
    svg('line', { x1: x(rank), x2: x(rank), y1: top, y2: bottom }, axis);
    text(axis, x(rank), bottom + 16, (e[0] / 1e6).toFixed(4) + ' s', { 'text-anchor': 'middle', class: 'sub' });
  });
  clients.forEach((c, row) => {
    text(s, ML - 8, top + row * rowH + rowH / 2 + 4, 'client ' + R.clients[c], { 'text-anchor': 'end', class: 'title' });
  });
  // Others first, the offending ones on top.
  const order = v.ops.map((o, i) => i).sort((a, b) => v.ops[a].minimal - v.ops[b].minimal);
  // Where the last label above and below each row's bars ends, so labels never overlap:
  // one that would goes below its bar, or is left to the tooltip.
  const above = clients.map(() => -Infinity), below = clients.map(() => -Infinity);
  for (const i of order) {
    const o = v.ops[i];
    const row = clients.indexOf(o.client);
    const y = top + row * rowH + 13, h = rowH - 28;
    const x0 = x(callAt[i]) - slotW * 0.35;
    const x1 = o.response_us === null ? w - MR : x(returnAt[i]) + slotW * 0.35;
    const cls = 'op ' + (o.put ? 'put' : 'get') + (o.response_us === null ? ' unknown' : '') + (o.minimal ? ' minimal' : ' other');
    const bar = svg('rect', { x: x0, y: y, width: x1 - x0, height: h, rx: 2, class: cls }, s);
    const label = (o.put ? 'put ' : 'get \u2192 ') + (o.value === '' ? '"" (never written)' : o.value.slice(0, 8)) +
      (o.put && o.response_us === null ? ' (no ok)' : '');
    title(bar, 'client ' + R.clients[o.client] + (o.put ? ' put ' : ' get \u2192 ') + JSON.stringify(o.value) + ', ' +
      secFine(o.invoke_us) + ' to ' + (o.response_us === null ? '? (no ok)' : secFine(o.response_us)));
    if (o.minimal || x1 - x0 > 70) {
      const len = label.length * (o.minimal ? 7 : 6.4);
      const attrs = { class: 'op-label' + (o.minimal ? ' minimal' : '') };
      if (x0 > above[row]) { text(s, x0 + 2, y - 3, label, attrs); above[row] = x0 + len; }
      else if (x0 > below[row]) { text(s, x0 + 2, y + h + 12, label, attrs); below[row] = x0 + len; }
    }
  }
  html('p', { class: 'hint' }, box, 'Across: the order in which these operations were called and answered (not to scale); ' +
    'the time of every few events is written below.');
  const note = v.ops.length < v.key_ops ? 'Drawn: ' + v.ops.length + ' of the key\u2019s ' + v.key_ops +
    ' operations, the highlighted ones and those nearest them in time.' : 'Drawn: all ' + v.key_ops + ' operations on this key.';
  html('p', { class: 'hint' }, box, note);
  const ol = html('ol', { class: 'minimal-ops mono' }, box);
  for (const o of v.ops.filter((o) => o.minimal)) {
    html('li', {}, ol, 'client ' + R.clients[o.client] + (o.put ? ' put ' : ' get \u2192 ') + JSON.stringify(o.value) + '  ' +
      secFine(o.invoke_us) + ' to ' + (o.response_us === null ? '? (no ok)' : secFine(o.response_us)));
  }
}

function drawNotes(app) {
  const sec0 = html('section', { class: 'notes', id: 'notes' }, app);
  html('h2', {}, sec0, 'How this page is made');
  const ul = html('ul', {}, sec0);
  const items = [
    'Times are seconds since kvsim started; requests begin after the start wait (' + sec(R.requests_from_us) + ').',
    'Replica lanes come from the "leader" field of every datagram each replica sent (its own ID: it claims to lead). kvsim\u2019s leader is the one it would kill for kill_leader.',
    'Vote requests are messages whose type is "rv" or names a vote and is no answer; kvsim does not read inside a replica\u2019s messages.',
    'Message counts and throughput are per 100 ms bucket (merged when zoomed out so bars stay 2 px wide), from every message and every reply.',
    R.sampling.method ? R.sampling.method + ' (' + fmtInt(R.sampling.attempts_shown) + ' of ' + fmtInt(R.sampling.attempts_total) + ' attempts drawn.)'
      : 'Every attempt is drawn (' + fmtInt(R.sampling.attempts_total) + ').',
  ];
  for (const s of items) html('li', {}, ul, s);
}
