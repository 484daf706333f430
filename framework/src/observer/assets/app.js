// The observer page. It listens to /events (server-sent events): a `snapshot` of the
// node each second (its trees, its links, and the trees its peers share) and each
// supervisor `report` as it happens. A process clicked in a tree is shown with its `sys`
// status (/api/process/<pid>), and can be acted on (POST /api/action, with the token).
// Everything the node sends is put in the page as text, never as HTML: names of
// processes may come from users.
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
    showConnection('live');
  };
  // EventSource connects again by itself, unless it was refused.
  events.onerror = () => {
    document.body.classList.add('stale');
    document.querySelectorAll('#actions button').forEach((button) => { button.disabled = true; });
    showConnection(events.readyState === EventSource.CLOSED ? 'refused: give the token' : 'reconnecting');
  };
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
  renderLinks(page.local.links);
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
  row.addEventListener('click', () => select(place, row));
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

// ---- the selected process -------------------------------------------------------

function select(place, row) {
  selected = place;
  document.querySelectorAll('#trees tr.selected').forEach((r) => r.classList.remove('selected'));
  row.classList.add('selected');
  $('#action-result').textContent = '';
  showSelected();
}

/** After a new snapshot: the same place in the tree (a restarted child has a new pid). */
function refreshSelected(rows) {
  const row = [...rows.rows].find((r) => r.dataset.key === selected.key);
  if (!row) {
    selected = { ...selected, process: { ...selected.process, state: 'not_running', pid: null } };
  } else {
    row.classList.add('selected');
    selected = row.place;
  }
  showSelected();
}

async function showSelected() {
  const { process, node, local } = selected;
  $('#process-none').hidden = true;
  $('#process-detail').hidden = false;
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
function holdsThisPage() {
  if (!selected.local) return false;
  const observer = [...document.querySelectorAll('#trees tr')]
    .find((row) => row.place && row.place.local
      && (row.place.process.protocol || '').endsWith('::ObserverServer'));
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
  if (count < 1024 * 1024) return (count / 1024).toFixed(1) + ' KiB';
  return (count / 1024 / 1024).toFixed(1) + ' MiB';
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

connect();
