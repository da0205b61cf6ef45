// Puts the page together, and draws it again when the view or the window changes.

// ---- the whole page ------------------------------------------------------------------------------
let timelineBox, detailsBox;
function drawTimeline() {
  timelineBox.innerHTML = '';
  const bar = html('div', { class: 'toolbar' }, timelineBox);
  html('span', { id: 'range' }, bar, 'Showing ' + sec(view.t0) + ' to ' + sec(view.t1));
  const reset = html('button', { id: 'reset' }, bar, 'Whole run');
  reset.addEventListener('click', () => { view.t0 = 0; view.t1 = R.end_us; update(); });
  const out = html('button', { id: 'zoom-out' }, bar, 'Zoom out');
  out.addEventListener('click', () => {
    const span = view.t1 - view.t0;
    zoomTo(view.t0 - span / 2, view.t1 + span / 2);
  });
  html('span', { class: 'hint' }, bar, 'Drag across any chart to zoom into that time range.');
  chartTitle(timelineBox, 'Replicas: who each one names as leader, its elections, and the faults it met');
  laneLegend(timelineBox);
  drawLanes(timelineBox);
  chartTitle(timelineBox, 'Client requests: each attempt at its send time, by its latency to a reply');
  scatterLegend(timelineBox);
  drawScatter(timelineBox);
  timelineBox.appendChild(detailsBox);
  if (R.sampling.method) html('p', { class: 'sampling', id: 'sampling' }, timelineBox, R.sampling.method);
  drawThroughput(timelineBox);
  drawMessages(timelineBox);
}
function update() {
  writeHash();
  drawTimeline();
  drawDetails(detailsBox);
}
function main() {
  const began = performance.now();
  const app = document.getElementById('app');
  app.innerHTML = '';
  width = Math.max(1000, document.documentElement.clientWidth - 40);
  readHash();
  drawSummary(app);
  html('h2', {}, app, 'Timeline');
  timelineBox = html('div', { id: 'timeline' }, app);
  detailsBox = html('div', { id: 'details' });
  html('div', { id: 'tip' }, document.body);
  patterns();
  drawTimeline();
  drawDetails(detailsBox);
  drawViolations(app);
  drawNotes(app);
  document.body.setAttribute('data-rendered', 'yes');
  // How long drawing took, for whoever measures the page's cost.
  document.body.setAttribute('data-draw-ms', Math.round(performance.now() - began));
}
main();
let resizing = null;
window.addEventListener('resize', () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => {
    const w = Math.max(1000, document.documentElement.clientWidth - 40);
    if (w !== width) { width = w; update(); }
  }, 150);
});
