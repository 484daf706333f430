// The observer page. It listens to /events (server-sent events): the node's `history`
// of the last 5 minutes as it connects, then a `snapshot` each second (the node's trees,
// its links, the trees its peers share, and a sample of the node for the charts) and each
// supervisor `report` as it happens. A process clicked in a tree or in the busiest list
// is shown with its charts and its `sys` status (/api/process/<pid>), and can be acted on
// (POST /api/action, with the token). Everything the node sends is put in the page as
// text, never as HTML: names of processes may come from users. The charts are SVG drawn
// here (nothing from elsewhere: the page's Content-Security-Policy allows only its own).
'use strict';

const $ = (selector) => document.querySelector(selector);
const MAX_REPORTS = 200;

/** The process shown in the side panel: where it is in which node's tree. */
let selected = null;
/** The last report shown, by number (a page may get one twice: kept and live). */
let lastReport = 0;
/** The live feed. */
let events = null;

// The token comes in the printed address (#token=...); it is kept for this tab only.
const tokenInput = $('#token');
const fromAddress = location.hash.match(/token=([^&]+)/);
if (fromAddress) {
  sessionStorage.setItem('token', decodeURIComponent(fromAddress[1]));
  history.replaceState(null, '', location.pathname);
}
tokenInput.value = sessionStorage.getItem('token') || '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('token', token());
  connect();
});

function token() {
  return tokenInput.value.trim();
}

/**
 * Whether reads carry the token. An observer on loopback reads without it, so it is not
 * sent there (addresses end up in histories and logs); one that refuses a read without
 * it (it listens beyond loopback, though the page may have been opened as 127.0.0.1)
 * gets it from then on.
 */
let readsNeedToken = !['127.0.0.1', 'localhost', '[::1]'].includes(location.hostname);

function readQuery() {
  return readsNeedToken && token() ? '?token=' + encodeURIComponent(token()) : '';
}

function connect() {
  if (events) events.close();
  events = new EventSource('/events' + readQuery());
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED && !readsNeedToken && token()) {
      readsNeedToken = true;
      connect();
    }
  });
  events.onopen = () => {
    // Each connection starts with the reports the observer kept: the timeline anew.
    $('#timeline').replaceChildren();
    lastReport = 0;
    // Snapshots may have been missed while disconnected: the processes' charts show a gap.
    nextPointsAfterGap = true;
    showConnection('live');
  };
  // EventSource connects again by itself, unless it was refused.
  events.onerror = () => {
    document.body.classList.add('stale');
    document.querySelectorAll('#actions button').forEach((button) => { button.disabled = true; });
    showConnection(events.readyState === EventSource.CLOSED ? 'refused: give the token' : 'reconnecting');
  };
  events.addEventListener('history', (event) => receiveHistory(JSON.parse(event.data)));
  events.addEventListener('snapshot', (event) => render(JSON.parse(event.data)));
  events.addEventListener('report', (event) => addReport(JSON.parse(event.data)));
}

function showConnection(state) {
  const connection = $('#connection');
  connection.textContent = state;
  connection.className = state === 'live' ? 'up' : 'down';
}

// ---- the trees -------------------------------------------------------------------

function render(page) {
  document.body.classList.remove('stale');
  $('#node').textContent = page.local.node;
  document.body.dataset.taken = page.local.taken_ms;
  const rows = document.createElement('tbody');
  page.local.trees.forEach((tree) => addProcess(rows, tree, page.local.node, true, [], null));
  for (const peer of page.peers.filter((peer) => peer.view)) {
    const heading = rows.insertRow();
    heading.className = 'node';
    heading.dataset.node = peer.node;
    text(heading.insertCell(), 'node ' + peer.node).colSpan = 6;
    peer.view.trees.forEach((tree) => addProcess(rows, tree, peer.node, false, [], null));
  }
  // Peers that share no tree (a chat's client nodes, say): one line for all of them.
  const unshared = page.peers.filter((peer) => !peer.view);
  if (unshared.length > 0) {
    const row = rows.insertRow();
    row.className = 'node unshared';
    const cell = text(row.insertCell(), `${unshared.length} more linked node(s)`);
    cell.colSpan = 6;
    const note = document.createElement('span');
    note.className = 'peer-error';
    note.textContent = unshared.map((peer) => `${peer.node}: ${peer.error}`).join('; ');
    cell.append(note);
  }
  $('#trees tbody').replaceWith(rows);
  const places = [...rows.rows].filter((row) => row.place).map((row) => row.place);
  recordProcesses(places, page.local.taken_ms);
  renderBusiest(places);
  renderLinks(page.local.links);
  addNodeSample(page.sample);
  drawNodeCharts();
  if (selected) {
    refreshSelected(rows);
  }
}

/** One row for a process, then rows for its children, indented. */
function addProcess(rows, process, node, local, path, parent) {
  const here = path.concat(process.id);
  const row = rows.insertRow();
  row.className = process.supervisor ? 'supervisor' : 'worker';
  // Where it is: a static child by its id (unique, and kept across restarts); a dynamic
  // one by its name if it has one, else its pid (its id need not be unique).
  const dynamic = parent && parent.dynamic;
  const which = dynamic ? process.name || process.pid || '' : '';
  row.dataset.key = [node, here.join('/'), which].join('|');
  row.dataset.id = process.id;
  row.dataset.state = stateOf(process);
  if (process.pid) row.dataset.pid = process.pid;

  const name = text(row.insertCell(), process.id);
  name.className = 'name';
  name.style.paddingLeft = 0.5 + 1.2 * path.length + 'em';
  if (process.supervisor) {
    const flags = document.createElement('span');
    flags.className = 'flags';
    flags.textContent = describeSupervisor(process.supervisor);
    name.append(flags);
  }
  const state = document.createElement('span');
  state.className = 'state ' + stateOf(process);
  state.textContent = stateOf(process).replace('_', ' ');
  row.insertCell().append(state);
  const protocol = text(row.insertCell(), shortType(process.protocol));
  protocol.title = process.protocol || '';
  text(row.insertCell(), process.restarts).className = 'num';
  text(row.insertCell(), process.mailbox ?? '–').className = 'num';
  text(row.insertCell(), rate(process.per_second)).className = 'num';

  const place = { node, local, process, parent, path: here, key: row.dataset.key };
  row.addEventListener('click', () => select(place));
  row.place = place;

  if (process.supervisor) {
    const me = {
      pid: process.pid,
      dynamic: process.supervisor.dynamic,
      strategy: process.supervisor.strategy,
      path: here,
    };
    process.supervisor.children.forEach((child) => addProcess(rows, child, node, local, here, me));
  }
}

function stateOf(process) {
  if (process.state === 'running' && process.suspended) return 'suspended';
  if (process.state === 'running' && process.busy) return 'busy';
  return process.state;
}

function describeSupervisor(supervisor) {
  const strategy = supervisor.dynamic ? 'dynamic' : supervisor.strategy;
  const period = supervisor.period_ms / 1000;
  return `${strategy} · ${supervisor.restarts_used} of ${supervisor.intensity} restarts per ${period} s`;
}

function shortType(name) {
  return name ? name.split('::').pop() : '';
}

function rate(perSecond) {
  if (perSecond == null) return '–';
  return perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond).toString();
}

// ---- history: the node's, kept by the observer; each process's, kept here -------

/** How far back the charts reach, and how often the node is sampled (the observer says). */
let spanMs = 5 * 60 * 1000;
let everyMs = 1000;
/** The node's samples, oldest first: the observer's history, then one per snapshot. */
let nodeSamples = [];
/** The latest time the observer told, by its own clock: the node's charts end there. */
let observerNowMs = 0;

function receiveHistory(history) {
  spanMs = history.span_ms;
  everyMs = history.every_ms;
  nodeSamples = history.samples;
  observerNowMs = Math.max(observerNowMs, history.now_ms);
  drawNodeCharts();
}

function addNodeSample(sample) {
  if (!sample || !sample.at_ms) return;
  observerNowMs = Math.max(observerNowMs, sample.at_ms);
  const last = nodeSamples[nodeSamples.length - 1];
  // The first snapshot after connecting may carry the history's last sample again.
  if (last && sample.at_ms <= last.at_ms) return;
  nodeSamples.push(sample);
  dropOlderThanSpan(nodeSamples, (kept) => kept.at_ms, sample.at_ms);
}

/**
 * Each process's last 5 minutes as this page saw them ({at, afterGap, mailbox,
 * perSecond}, oldest first), by its place in a tree (a restarted child keeps its
 * history). Kept here rather than by the observer: the page is sent every process's
 * numbers each second anyway, while the observer does not know which process each page
 * shows, so it would have to keep every process's history for as long as any page might
 * ask, and send it. The price: a process's charts begin when the page opened. Bounded:
 * a process no longer in any tree is forgotten, and at most MAX_TRACKED are followed.
 */
const processHistory = new Map();
const MAX_TRACKED = 5000;
/** The next snapshot follows a gap (the page has just connected, or connected again). */
let nextPointsAfterGap = true;
/** When the first and the last snapshot this page recorded were taken. */
let watchedSinceMs = null;
let lastRecordedMs = null;

function recordProcesses(places, at) {
  if (lastRecordedMs !== null && at <= lastRecordedMs) return; // the same snapshot again
  watchedSinceMs ??= at;
  lastRecordedMs = at;
  const present = new Set();
  for (const place of places) {
    present.add(place.key);
    const points = historyOf(place.key);
    if (!points) continue;
    const running = place.process.state === 'running';
    points.push({
      at,
      afterGap: nextPointsAfterGap,
      mailbox: running ? place.process.mailbox ?? null : null,
      perSecond: running ? place.process.per_second ?? null : null,
    });
    dropOlderThanSpan(points, (point) => point.at, at);
  }
  for (const key of processHistory.keys()) {
    if (!present.has(key)) processHistory.delete(key);
  }
  nextPointsAfterGap = false;
}

/** The points kept for a process, made if there is room for one more process. */
function historyOf(key) {
  if (!processHistory.has(key) && processHistory.size < MAX_TRACKED) {
    processHistory.set(key, []);
  }
  return processHistory.get(key);
}

function dropOlderThanSpan(items, timeOf, now) {
  let stale = 0;
  while (stale < items.length && timeOf(items[stale]) < now - spanMs) stale += 1;
  items.splice(0, stale);
}

// ---- charts ----------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
/** Room around a chart's plot for its axes' labels, in pixels. */
const MARGIN = { left: 46, right: 6, top: 7, bottom: 15 };
const MINUTE_MS = 60 * 1000;

/** How each kind of number is scaled (`top`: the y axis's top, for the largest value
 *  shown) and labelled; `whole`: only whole numbers make sense (no half a message). */
const SCALES = {
  rate: { top: (max) => roundUp(Math.max(max, 1)), label: (value) => compact(value) + '/s' },
  count: { top: (max) => roundUp(Math.max(max, 2)), label: compact, whole: true },
  bytes: { top: roundUpBytes, label: compactBytes },
  share: { top: () => 1, label: percent },
};

const NODE_CHARTS = [
  {
    id: 'chart-messages',
    scale: SCALES.rate,
    value: (sample) => sample.messages_per_second,
    caption: (sample) => (sample.messages_per_second == null
      ? 'no rates yet' : `${rate(sample.messages_per_second)}/s over ${sample.processes} processes`),
  },
  {
    id: 'chart-memory',
    scale: SCALES.bytes,
    value: (sample) => sample.memory_bytes,
    caption: (sample) => (sample.memory_bytes == null
      ? 'not measured on this system' : bytes(sample.memory_bytes) + ' resident'),
  },
  {
    id: 'chart-busy',
    scale: SCALES.share,
    value: (sample) => sample.busy,
    caption: (sample) => `${sample.busy == null ? '–' : percent(sample.busy)} of ${sample.workers} workers · run queue ${sample.run_queue}`,
  },
  {
    id: 'chart-tasks',
    scale: SCALES.count,
    value: (sample) => sample.tasks,
    caption: (sample) => `${sample.tasks} alive`,
  },
];

const PROCESS_CHARTS = [
  {
    id: 'chart-process-rate',
    scale: SCALES.rate,
    value: (point) => point.perSecond,
    caption: (point) => (point.perSecond == null ? '–' : rate(point.perSecond) + '/s'),
  },
  {
    id: 'chart-process-mailbox',
    scale: SCALES.count,
    value: (point) => point.mailbox,
    caption: (point) => (point.mailbox == null ? '–' : String(point.mailbox)),
  },
];

function drawNodeCharts() {
  const end = observerNowMs;
  const last = nodeSamples[nodeSamples.length - 1];
  const since = nodeSamples.length > 0 ? nodeSamples[0].at_ms : end;
  let gaps = 0;
  for (const chart of NODE_CHARTS) {
    const points = nodeSamples.map((sample) => ({
      at: sample.at_ms,
      afterGap: sample.after_gap,
      value: chart.value(sample),
    }));
    const caption = last ? chart.caption(last) : '';
    gaps = drawChart($('#' + chart.id), points, { end, since, scale: chart.scale, caption });
  }
  $('#history-note').hidden = gaps === 0;
}

function drawProcessCharts() {
  const points = processHistory.get(selected.key) || [];
  const last = points[points.length - 1];
  const end = lastRecordedMs ?? observerNowMs;
  const since = watchedSinceMs ?? end;
  for (const chart of PROCESS_CHARTS) {
    const values = points.map((point) => ({ ...point, value: chart.value(point) }));
    const caption = last ? chart.caption(last) : '–';
    drawChart($('#' + chart.id), values, { end, since, scale: chart.scale, caption });
  }
}

/**
 * Draws a line chart in `figure`'s <svg>: `points` ({at, value, afterGap}, oldest first;
 * a null value is none) over the span that ends at `end`, the y axis from 0 to a round
 * number above the largest value. Time not sampled (before `since`, and before a point
 * that follows a gap) is a grey band. The figure tells what it shows in data attributes
 * (points, last, top, gaps, end). Returns the number of grey bands.
 */
function drawChart(figure, points, { end, since, scale, caption }) {
  const start = end - spanMs;
  const shown = points.filter((point) => point.at >= start && point.at <= end);
  const values = shown.map((point) => point.value).filter((value) => value != null);
  const top = scale.top(Math.max(0, ...values));
  const bands = unsampled(shown, start, end, since);
  const last = shown.length > 0 ? shown[shown.length - 1].value : null;
  Object.assign(figure.dataset, {
    points: values.length, last: last ?? '', top, gaps: bands.length, end,
  });
  const shownCaption = figure.querySelector('.value');
  shownCaption.textContent = caption;
  shownCaption.title = caption; // in full, where the chart is too narrow for it

  const svg = figure.querySelector('svg');
  const width = svg.clientWidth;
  const height = svg.clientHeight;
  if (width === 0 || height === 0) return bands.length; // not on the page now
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: width - MARGIN.left - MARGIN.right,
    height: height - MARGIN.top - MARGIN.bottom,
  };
  plot.bottom = plot.top + plot.height;
  const x = (at) => plot.left + ((at - start) / spanMs) * plot.width;
  const y = (value) => plot.top + plot.height * (1 - Math.min(value, top) / top);
  svg.replaceChildren(
    ...bands.map(([from, to]) => unsampledBand(x(from), x(to), plot)),
    ...valueAxis(plot, top, scale, y),
    ...timeAxis(plot, end, x),
    ...runsOf(shown).flatMap((run) => lineAndArea(run, x, y, plot)),
  );
  return bands.length;
}

/** The stretches of [start, end] nothing was sampled in, as [from, to] pairs. */
function unsampled(points, start, end, since) {
  const slack = 2.5 * everyMs;
  const bands = [];
  const add = (from, to) => {
    if (to - from > slack) bands.push([Math.max(from, start), Math.min(to, end)]);
  };
  add(start, since);
  points.forEach((point, i) => {
    if (point.afterGap) add(i > 0 ? points[i - 1].at : start, point.at);
  });
  if (points.length > 0) add(points[points.length - 1].at, end);
  return mergeOverlapping(bands);
}

function mergeOverlapping(bands) {
  const merged = [];
  for (const band of bands.sort((a, b) => a[0] - b[0])) {
    const previous = merged[merged.length - 1];
    if (previous && band[0] <= previous[1]) previous[1] = Math.max(previous[1], band[1]);
    else merged.push([...band]);
  }
  return merged;
}

/** The points as runs to draw as one line each: a gap, or a point without a value, ends one. */
function runsOf(points) {
  const runs = [];
  let run = [];
  for (const point of points) {
    if ((point.afterGap || point.value == null) && run.length > 0) {
      runs.push(run);
      run = [];
    }
    if (point.value != null) run.push(point);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

function lineAndArea(run, x, y, plot) {
  const corners = run.map((point) => `${x(point.at).toFixed(1)},${y(point.value).toFixed(1)}`);
  // A run of one point is drawn as a dot (a line of no length, with round ends).
  const line = 'M' + corners.join(' L') + (run.length === 1 ? ' l0,0' : '');
  const first = x(run[0].at).toFixed(1);
  const last = x(run[run.length - 1].at).toFixed(1);
  const area = `M${first},${plot.bottom} L${corners.join(' L')} L${last},${plot.bottom} Z`;
  return [svgElement('path', { class: 'area', d: area }), svgElement('path', { class: 'line', d: line })];
}

/** Lines at 0, half the top and the top, labelled with the scale's unit. */
function valueAxis(plot, top, scale, y) {
  const ticks = [0, top / 2, top].filter((value) => !scale.whole || Number.isInteger(value));
  return ticks.flatMap((value) => {
    const at = y(value);
    return [
      svgElement('line', { class: value === 0 ? 'baseline' : 'grid', x1: plot.left, x2: plot.left + plot.width, y1: at, y2: at }),
      svgElement('text', { class: 'label', x: plot.left - 4, y: at + 3.5, 'text-anchor': 'end' },
        value === 0 ? '0' : scale.label(value)),
    ];
  });
}

/** A mark each minute back from `end`, labelled (now, −1 min, …) as often as they fit. */
function timeAxis(plot, end, x) {
  const minuteWidth = (plot.width * MINUTE_MS) / spanMs;
  const labelEvery = [1, 2, 5, 10].find((minutes) => minutes * minuteWidth >= 55) ?? 10;
  const elements = [];
  for (let back = 0; back * MINUTE_MS <= spanMs; back += 1) {
    const at = x(end - back * MINUTE_MS);
    elements.push(svgElement('line', { class: 'tick', x1: at, x2: at, y1: plot.bottom, y2: plot.bottom + 3 }));
    if (back % labelEvery !== 0) continue;
    const anchor = back === 0 ? 'end' : back * MINUTE_MS === spanMs ? 'start' : 'middle';
    elements.push(svgElement('text', { class: 'label', x: at, y: plot.bottom + 12, 'text-anchor': anchor },
      back === 0 ? 'now' : `−${back} min`));
  }
  return elements;
}

function unsampledBand(from, to, plot) {
  const band = svgElement('g', { class: 'unsampled' });
  band.append(
    svgElement('title', {}, 'not sampled: no page of this observer was open'),
    svgElement('rect', { x: from, y: plot.top, width: Math.max(to - from, 1), height: plot.height }),
  );
  if (to - from > 70) {
    band.append(svgElement('text', { x: (from + to) / 2, y: plot.top + plot.height / 2 + 3.5, 'text-anchor': 'middle' }, 'not sampled'));
  }
  return band;
}

function svgElement(name, attributes, content) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (content !== undefined) element.textContent = content;
  return element;
}

/** The smallest 1, 2 or 5 times a power of ten that is at least `value` (> 0). */
function roundUp(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((top) => top >= value * (1 - 1e-9));
}

/** As roundUp, in the unit (KiB, MiB, GiB) the largest value reads best in. */
function roundUpBytes(max) {
  const unit = 1024 ** byteUnitOf(max);
  return roundUp(Math.max(max / unit, 1)) * unit;
}

function byteUnitOf(count) {
  return Math.min(4, Math.max(0, Math.floor(Math.log(Math.max(count, 1)) / Math.log(1024))));
}

function compactBytes(count) {
  const unit = byteUnitOf(count);
  return short(count / 1024 ** unit) + ' ' + ['B', 'KiB', 'MiB', 'GiB', 'TiB'][unit];
}

/** 950, 1.2k, 3M: a number in a few characters. */
function compact(value) {
  for (const [size, suffix] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (value >= size) return short(value / size) + suffix;
  }
  return short(value);
}

function short(value) {
  return value >= 100 ? String(Math.round(value)) : String(Number(value.toFixed(1)));
}

function percent(share) {
  return Math.round(share * 100) + ' %';
}

// ---- the busiest processes ------------------------------------------------------

const BUSIEST_SHOWN = 15;
/** The column the busiest list is sorted by, busiest first: `mailbox` or `per_second`. */
let busiestSort = 'per_second';
/** Every process of the last snapshot, where it is: the list is sorted again from these. */
let shownPlaces = [];

function renderBusiest(places) {
  shownPlaces = places;
  const running = places.filter((place) => place.process.state === 'running' && place.process.pid);
  running.sort(busierFirst(busiestSort));
  const rows = document.createElement('tbody');
  running.slice(0, BUSIEST_SHOWN).forEach((place) => addBusiestRow(rows, place));
  $('#busiest tbody').replaceWith(rows);
  showBusiestSort();
}

/** By `column`, then by the other column, then by id: the busiest first. */
function busierFirst(column) {
  const other = column === 'mailbox' ? 'per_second' : 'mailbox';
  const number = (place, key) => place.process[key] ?? -1;
  return (a, b) => number(b, column) - number(a, column)
    || number(b, other) - number(a, other)
    || a.process.id.localeCompare(b.process.id);
}

function addBusiestRow(rows, place) {
  const { process } = place;
  const row = rows.insertRow();
  row.dataset.key = place.key;
  row.dataset.id = process.id;
  row.dataset.pid = process.pid;
  row.dataset.mailbox = process.mailbox ?? '';
  row.dataset.perSecond = process.per_second ?? '';
  const name = text(row.insertCell(), process.id);
  const where = document.createElement('span');
  where.className = 'flags';
  const above = place.path.slice(0, -1).join(' / ');
  where.textContent = place.local ? above : `${above} · ${place.node}`;
  name.append(where);
  text(row.insertCell(), process.mailbox ?? '–').className = 'num';
  text(row.insertCell(), rate(process.per_second)).className = 'num';
  row.addEventListener('click', () => select(place));
}

function showBusiestSort() {
  $('#busiest').dataset.sort = busiestSort;
  for (const header of document.querySelectorAll('#busiest th[data-sort]')) {
    if (header.dataset.sort === busiestSort) header.setAttribute('aria-sort', 'descending');
    else header.removeAttribute('aria-sort');
  }
}

document.querySelectorAll('#busiest th[data-sort]').forEach((header) => {
  header.addEventListener('click', () => {
    busiestSort = header.dataset.sort;
    renderBusiest(shownPlaces);
    if (selected) markSelected();
  });
});

// ---- the selected process -------------------------------------------------------

function select(place) {
  selected = place;
  markSelected();
  $('#action-result').textContent = '';
  showSelected();
}

/** The selected process's rows, in the tree and in the busiest list. */
function markSelected() {
  for (const row of document.querySelectorAll('#trees tbody tr, #busiest tbody tr')) {
    row.classList.toggle('selected', selected !== null && row.dataset.key === selected.key);
  }
}

/** After a new snapshot: the same place in the tree (a restarted child has a new pid). */
function refreshSelected(rows) {
  const row = [...rows.rows].find((r) => r.dataset.key === selected.key);
  if (!row) {
    selected = { ...selected, process: { ...selected.process, state: 'not_running', pid: null } };
  } else {
    selected = row.place;
  }
  markSelected();
  showSelected();
}

async function showSelected() {
  const { process, node, local } = selected;
  $('#process-none').hidden = true;
  $('#process-detail').hidden = false;
  drawProcessCharts();
  const fields = $('#process-fields');
  fields.replaceChildren();
  const facts = [
    ['node', node],
    ['id', process.id],
    ['pid', process.pid || '–'],
    ['name', process.name || '–'],
    ['protocol', process.protocol || '–'],
    ['behaviour', process.behaviour || '–'],
    ['state', stateOf(process)],
    ['restarts', process.restarts],
    ['handled', process.handled ?? '–'],
    ['tracing', process.tracing ? 'on' : 'off'],
  ];
  for (const [term, value] of facts) {
    text(fields.appendChild(document.createElement('dt')), term);
    text(fields.appendChild(document.createElement('dd')), value);
  }
  const running = process.state === 'running';
  const buttons = document.querySelectorAll('#actions button');
  buttons.forEach((button) => {
    const action = button.dataset.action;
    const needsParent = action === 'terminate_child' || action === 'restart_child';
    const possible = action === 'restart_child'
      ? process.state === 'not_running' && selected.parent && !selected.parent.dynamic
      : running && (!needsParent || selected.parent);
    button.disabled = !local || !possible;
  });
  const state = $('#process-state');
  if (!local) {
    state.textContent = 'Actions and status are on that node\'s own observer.';
  } else if (running && process.pid) {
    try {
      const response = await fetch('/api/process/' + encodeURIComponent(process.pid) + readQuery());
      const answer = await response.text();
      if (selected.process.pid !== process.pid) return;
      state.textContent = response.ok ? JSON.parse(answer).state || '(its format_status shows nothing)' : answer;
    } catch (error) {
      state.textContent = `(the observer did not answer: ${error.message})`;
    }
  } else {
    state.textContent = '(not running)';
  }
}

/**
 * Whether acting on the selected process may take this page down: it is the observer, a
 * supervisor above it, or a sibling of one of those whose supervisor restarts them
 * together (one_for_all; rest_for_one, if it comes first). Also when the observer is
 * not on the page (its supervisor did not answer): then nobody knows.
 */
/** The observer's own protocol, as `sys` names it (`otp::observer::Agent`). */
const OBSERVER_PROTOCOL = 'otp::observer::Agent';

function holdsThisPage() {
  if (!selected.local) return false;
  const observer = [...document.querySelectorAll('#trees tr')]
    .find((row) => row.place && row.place.local
      && row.place.process.protocol === OBSERVER_PROTOCOL);
  if (!observer) return true;
  const mine = observer.place.path;
  const target = selected.path;
  const above = target.every((id, i) => mine[i] === id);
  if (above) return true;
  // A sibling of something on the observer's path, under the same supervisor.
  const parent = selected.parent;
  const depth = target.length - 1;
  const shared = target.slice(0, depth).every((id, i) => mine[i] === id) && mine.length > depth;
  if (!shared || !parent || parent.dynamic) return false;
  if (parent.strategy === 'one_for_all') return true;
  if (parent.strategy === 'rest_for_one') {
    const siblings = [...document.querySelectorAll('#trees tr')]
      .filter((row) => row.place && row.place.parent === parent)
      .map((row) => row.place.process.id);
    return siblings.indexOf(target[depth]) < siblings.indexOf(mine[depth]);
  }
  return false;
}

async function act(action) {
  const { process, parent } = selected;
  const risky = ['kill', 'terminate_child'].includes(action);
  if (risky && holdsThisPage()
      && !confirm(`${action} ${process.id}: this may stop the observer, and this page with it. Go on?`)) {
    return;
  }
  const bodies = {
    kill: { action, pid: process.pid },
    terminate_child: { action, pid: process.pid },
    restart_child: { action, supervisor: parent && parent.pid, child: process.id },
    suspend: { action, pid: process.pid },
    resume: { action, pid: process.pid },
    trace_on: { action: 'trace', pid: process.pid, on: true },
    trace_off: { action: 'trace', pid: process.pid, on: false },
  };
  const response = await fetch('/api/action', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token() },
    body: JSON.stringify(bodies[action]),
  });
  const answer = (await response.text()).trim();
  const result = $('#action-result');
  result.className = response.ok ? 'done' : 'refused';
  result.textContent = response.ok ? answer : `refused (${response.status}): ${answer}`;
}

document.querySelectorAll('#actions button').forEach((button) => {
  button.addEventListener('click', () => act(button.dataset.action));
});

// ---- links and timeline ---------------------------------------------------------

function renderLinks(links) {
  const rows = document.createElement('tbody');
  for (const link of links) {
    const row = rows.insertRow();
    row.dataset.peer = link.peer;
    text(row.insertCell(), link.peer);
    text(row.insertCell(), new Date(link.up_since_ms).toLocaleTimeString(undefined, { hour12: false }));
    text(row.insertCell(), (link.silent_ms / 1000).toFixed(1) + ' s').className = 'num';
    const traffic = link.traffic;
    text(row.insertCell(), traffic ? `${traffic.messages_in}/${traffic.messages_out}` : '–');
    text(row.insertCell(), traffic ? `${bytes(traffic.bytes_in)}/${bytes(traffic.bytes_out)}` : '–');
  }
  $('#links tbody').replaceWith(rows);
}

function bytes(count) {
  if (count < 1024) return count + ' B';
  if (count < 1024 ** 2) return (count / 1024).toFixed(1) + ' KiB';
  if (count < 1024 ** 3) return (count / 1024 ** 2).toFixed(1) + ' MiB';
  return (count / 1024 ** 3).toFixed(1) + ' GiB';
}

function addReport(report) {
  if (report.seq <= lastReport) return;
  lastReport = report.seq;
  const event = report.event;
  const item = document.createElement('li');
  item.className = event.kind;
  item.dataset.kind = event.kind;
  item.dataset.child = report.child;
  if (event.kind === 'exited') item.dataset.restart = event.restart;
  const time = document.createElement('time');
  time.textContent = new Date(report.at_ms).toLocaleTimeString(undefined, { hour12: false })
    + '.' + String(report.at_ms % 1000).padStart(3, '0');
  item.append(time, `${report.supervisor} / ${report.child}: ${describeReport(event)}`);
  const timeline = $('#timeline');
  timeline.prepend(item);
  while (timeline.children.length > MAX_REPORTS) timeline.lastChild.remove();
}

function describeReport(event) {
  switch (event.kind) {
    case 'started': return `started as ${event.pid}`;
    case 'ignored': return 'ignored its start';
    case 'start_failed': return `failed to start: ${event.reason}`;
    case 'exited': return `exited (${event.reason}), ${event.restart ? 'restarting' : 'not restarted'}`;
    case 'gave_up': return 'too many restarts: the supervisor gives up';
    case 'shutdown_error': return `did not stop within ${event.budget_ms} ms: killed`;
    default: return event.kind;
  }
}

function text(element, value) {
  element.textContent = String(value);
  return element;
}

window.addEventListener('resize', () => {
  drawNodeCharts();
  if (selected) drawProcessCharts();
});

connect();
