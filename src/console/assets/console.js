// The operator console (README "Operator console"): plain JavaScript the browser runs as it is, no build step,
// no dependency. It shows only what the admin API returns for the token the operator gives, which stays in this
// tab (sessionStorage) and is sent as a bearer header, never in a URL. Everything from the API is put into the
// page as text (textContent, Text nodes), never as HTML: the page's Content-Security-Policy has Trusted Types
// with no policy, so writing HTML into the page (an HTML sink) would throw.

const TOKEN_KEY = 'meta-agent-console-token';
/** The list's status filters, after "all": LIST_STATUS_FILTERS of src/admin/dto/list-workflows.query.ts (a unit spec compares them). */
const STATUS_FILTERS = ['open', 'finished', 'pending', 'in_progress', 'waiting_for_agents', 'evaluating', 'completed', 'failed', 'timeout', 'cancelled'];
const FINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);
/** Live decisions kept on the page, and the ids remembered to show a re-published decision once. */
const LIVE_KEEP = 100;
const LIVE_IDS_KEEP = 1000;
const LIVE_RETRY_MAX_MS = 30_000;

const $ = (id) => document.getElementById(id);

/** An element with a class and children (strings become Text nodes). */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

/** `parent.replaceChildren` without the absent ones (replaceChildren would write `null` as text). */
function fill(parent, ...children) {
  parent.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

function button(label, onClick, className = 'link') {
  const b = el('button', className, label);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

/** A <details> with a summary and the value as indented JSON text. */
function json(summary, value, open = false) {
  const d = el('details', 'json', el('summary', '', summary), el('pre', '', JSON.stringify(value, null, 2)));
  d.open = open;
  return d;
}

/** UTC, to the millisecond: `2026-12-07 09:14:03.127`. */
function time(value) {
  if (value === null || value === undefined || value === '') return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace('T', ' ').replace('Z', '');
}

/** A cell with a short time (`12-07 09:14:03`, UTC) and the full one as its tooltip; `prefix` before both. */
function timeCell(value, prefix = '') {
  const full = time(value);
  const td = el('td', 'time', `${prefix}${full.slice(5, 19)}`);
  td.title = `${prefix}${full}`;
  return td;
}

function show(node, on) {
  node.hidden = !on;
}

function say(node, text) {
  node.textContent = text;
  show(node, Boolean(text));
}

// ---- The API -------------------------------------------------------------------------------------------------

let token = sessionStorage.getItem(TOKEN_KEY);

/** One admin API call: `{status, ok, data}` (data: the JSON body, or its text). A 401 ends the session. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  const text = await res.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: kept as text
  }
  if (res.status === 401) signOut('The service refused this token (401 Unauthorized).');
  return { status: res.status, ok: res.ok, data };
}

function message(reply) {
  const m = reply.data && typeof reply.data === 'object' ? reply.data.message : reply.data;
  return `${reply.status}${m ? `: ${Array.isArray(m) ? m.join('; ') : m}` : ''}`;
}

// ---- Signing in ----------------------------------------------------------------------------------------------

async function signIn(candidate) {
  token = candidate;
  say($('sign-in-error'), '');
  let reply;
  try {
    reply = await api('GET', '/workflows?limit=1');
  } catch (error) {
    reply = { status: 0, data: `the service did not answer (${error.message})` };
  }
  if (reply.status === 401) return; // signOut has said so
  if (!reply.ok) {
    token = null;
    say($('sign-in-error'), reply.status === 404 ? 'The admin API is off on this service (404).' : `The service answered ${message(reply)}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  show($('sign-in'), false);
  show($('console'), true);
  show($('sign-out'), true);
  $('who').textContent = 'token kept in this tab only';
  await loadList();
  connectLive();
}

function signOut(why = '') {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopLive();
  show($('console'), false);
  show($('sign-out'), false);
  $('who').textContent = '';
  $('token').value = '';
  show($('sign-in'), true);
  say($('sign-in-error'), why);
}

// ---- The list ------------------------------------------------------------------------------------------------

const list = { status: '', type: '', limit: 25, cursor: null, previous: [], next: null };

async function loadList() {
  const query = new URLSearchParams({ limit: String(list.limit) });
  if (list.status) query.set('status', list.status);
  if (list.type) query.set('type', list.type);
  if (list.cursor) query.set('cursor', list.cursor);
  const reply = await api('GET', `/workflows?${query}`);
  if (!token) return;
  const body = $('workflows').tBodies[0];
  if (!reply.ok) {
    say($('list-error'), `The list failed: ${message(reply)}`);
    fill(body);
    return;
  }
  say($('list-error'), '');
  const { items, next_cursor: next } = reply.data;
  list.next = next;
  fill(
    body,
    ...items.map((w) => {
      const row = el(
        'tr',
        '',
        el(
          'td',
          '',
          button(w.corr_id, () => openWorkflow(w.corr_id)),
        ),
        el('td', '', w.workflow_type),
        el('td', '', statusBadge(w.status)),
        timeCell(w.started_at),
        w.finished_at ? timeCell(w.finished_at) : timeCell(w.deadline_at, 'due '),
        el('td', '', w.decision_published ? 'yes' : 'no'),
        el('td', '', (w.received_agents ?? []).join(', ')),
      );
      row.dataset.corrId = w.corr_id;
      row.dataset.status = w.status;
      return row;
    }),
  );
  show($('list-empty'), items.length === 0);
  $('page-prev').disabled = list.previous.length === 0;
  $('page-first').disabled = list.previous.length === 0;
  $('page-next').disabled = !next;
  const short = next && items.length < list.limit ? ' (a short page: more follow)' : '';
  $('page-info').textContent = `page ${list.previous.length + 1}, ${items.length} shown${short}`;
}

function statusBadge(status) {
  const span = el('span', 'badge', status ?? '');
  if (STATUS_FILTERS.includes(status)) span.classList.add(`status-${status}`);
  return span;
}

function setUpFilters() {
  const select = $('filter-status');
  select.append(el('option', '', 'all'));
  select.options[0].value = '';
  for (const s of STATUS_FILTERS) {
    const option = el('option', '', s);
    option.value = s;
    select.append(option);
  }
  $('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    list.status = select.value;
    list.type = $('filter-type').value.trim();
    list.limit = Number($('filter-limit').value);
    list.cursor = null;
    list.previous = [];
    void loadList();
  });
  $('page-next').addEventListener('click', () => {
    if (!list.next) return;
    list.previous.push(list.cursor);
    list.cursor = list.next;
    void loadList();
  });
  $('page-prev').addEventListener('click', () => {
    if (list.previous.length === 0) return;
    list.cursor = list.previous.pop();
    void loadList();
  });
  $('page-first').addEventListener('click', () => {
    list.cursor = null;
    list.previous = [];
    void loadList();
  });
}

// ---- One workflow --------------------------------------------------------------------------------------------

let current = null;
/**
 * Reads of the history again while it lags (below): tries left, and how many events it must show (after an
 * admin action: one more than before, the action's own).
 */
const catchUp = { timer: null, left: 0, minEvents: 0 };
/** Events the timeline shows now. */
let shownEvents = 0;
const CATCH_UP_TRIES = 10;
const CATCH_UP_MS = 1000;

async function openWorkflow(corrId) {
  current = corrId;
  catchUp.left = CATCH_UP_TRIES;
  catchUp.minEvents = 0;
  $('detail-corr-id').textContent = corrId;
  say($('action-result'), '');
  show($('detail-panel'), true);
  await refreshWorkflow();
  $('detail-panel').scrollIntoView({ block: 'start' });
}

async function refreshWorkflow() {
  const corrId = current;
  const id = encodeURIComponent(corrId);
  const [state, history] = await Promise.all([api('GET', `/workflows/${id}`), api('GET', `/workflows/${id}/history`)]);
  if (!token || corrId !== current) return;
  renderState(state);
  renderHistory(history);
  // The audit trail is written after the step it records (a batch per event-loop turn, then the stream): right
  // after an action or a live decision, the history can lack its last events. Read it again a few times, a
  // second apart, until it has the decision the workflow's state says was published, and the action taken.
  const instances = history.ok ? history.data.instances : [];
  const lagging = (state.ok && state.data.decision_published && !instances.at(-1)?.decision) || shownEvents < catchUp.minEvents;
  clearTimeout(catchUp.timer);
  if (lagging && catchUp.left > 0) {
    catchUp.left--;
    catchUp.timer = setTimeout(() => {
      if (current === corrId && token) void refreshWorkflow();
    }, CATCH_UP_MS);
  }
}

function field(label, value) {
  return el('div', 'field', el('span', 'label', label), el('span', 'value', value === null || value === undefined || value === '' ? '-' : String(value)));
}

function renderState(reply) {
  const box = $('detail-state');
  const open = reply.ok && !FINAL.has(reply.data.status);
  for (const id of ['action-cancel', 'action-decide', 'action-extend']) $(id).disabled = !open;
  if (!reply.ok) {
    const buffered =
      reply.status === 404 && reply.data?.buffered_signals?.length ? ` Signals waiting for their trigger: ${reply.data.buffered_signals.join(', ')}.` : '';
    fill(
      box,
      el(
        'p',
        'muted',
        reply.status === 404
          ? `Not in Redis: never triggered, or finished more than RETENTION_SECONDS ago (the timeline below is the audit trail's).${buffered}`
          : `The workflow could not be read: ${message(reply)}`,
      ),
    );
    return;
  }
  const w = reply.data;
  const frozen = w.frozen_at ? `${time(w.frozen_at)} for ${w.frozen_for}${w.frozen_by ? ` by ${w.frozen_by}` : ''}` : null;
  fill(
    box,
    el(
      'div',
      'fields',
      field('workflow_id', w.workflow_id),
      el('div', 'field', el('span', 'label', 'status'), statusBadge(w.status)),
      field('required agents', w.required_agents?.join(', ')),
      field('received', w.received_agents?.join(', ')),
      field('missing', w.missing_agents?.join(', ')),
      field('started', time(w.started_at)),
      field('deadline', time(w.deadline_at)),
      field('frozen', frozen),
      field('finished', time(w.finished_at)),
      field('decision published', w.decision_published ? 'yes' : 'no'),
    ),
    w.decision ? json('Stored decision', w.decision) : null,
  );
}

/** The time an event happened: when JetStream received its input, else Redis's clock, else the replica's. */
function eventTime(e) {
  return e.input?.received_ms ?? e.redis_ms ?? e.at;
}

/** One line saying what an event is about. */
function eventSummary(e) {
  const parts = [];
  const add = (label, value) => value !== undefined && value !== null && value !== '' && parts.push(`${label} ${value}`);
  if (e.event.startsWith('trigger_')) {
    add('type', e.workflow_type);
    if (e.required_agents) add('requires', e.required_agents.join(', '));
    if (e.deadline_ms) add('deadline', time(e.deadline_ms));
    if (e.early_signals) add('early signals', e.early_signals);
    if (e.status) add('status', e.status);
  } else if (e.event.startsWith('signal_')) {
    add('agent', e.agent);
    add('confidence', e.signal?.confidence);
    if (e.status) add('workflow', e.status);
    if (e.made_ready) parts.push('made it ready');
  } else if (e.event === 'admin_action') {
    parts.push(`${e.action}: ${e.outcome}`);
    add('by', e.token);
    if (e.requested_seconds) add('asked', `${e.requested_seconds} s`);
    if (e.deadline_ms) add('deadline now', time(e.deadline_ms));
    if (e.clamped) parts.push('(clamped)');
  } else if (e.event === 'frozen' || e.event === 'timeout' || e.event === 'takeover') {
    add('for', e.why);
    add('by', e.by);
    if (e.snapshot?.signals) add('signals', Object.keys(e.snapshot.signals).join(', ') || 'none');
  } else if (e.event === 'decision_published') {
    add('status', e.status);
    add('action', e.decision?.decision?.action);
    if (e.duplicate) parts.push('(already published)');
  }
  if (e.input?.seq) add('stream seq', e.input.seq);
  return parts.join(', ');
}

/** A trigger in a few words: its usual fields where it has them (the JSON beside has all of it). */
function triggerSummary(trigger) {
  const parts = ['instrument', 'side', 'strength', 'price'].filter((k) => trigger?.[k] !== undefined).map((k) => `${k} ${trigger[k]}`);
  return parts.length > 0 ? parts.join(', ') : 'see the JSON';
}

/** What the strategy saw: the trigger and each signal, as the frozen, timeout or takeover event holds them. */
function snapshotView(e) {
  const signals = Object.entries(e.snapshot?.signals ?? {});
  return el(
    'div',
    'snapshot',
    el('div', 'label', 'Snapshot the strategy saw'),
    el(
      'ul',
      '',
      el('li', '', `trigger: ${triggerSummary(e.snapshot?.trigger)}`),
      ...signals.map(([agent, s]) => el('li', '', `${agent}: confidence ${s?.confidence ?? '-'}, at ${time(s?.timestamp)}`)),
      signals.length === 0 ? el('li', 'muted', 'no signals') : null,
    ),
    json('snapshot and context (JSON)', { snapshot: e.snapshot, context: e.context }),
  );
}

function eventRow(e) {
  const detail = el('td', 'what', eventSummary(e));
  if (e.snapshot) detail.append(snapshotView(e));
  if (e.event === 'decision_published' && e.decision) detail.append(json('Decision as published', e.decision));
  detail.append(json('event (JSON)', e), el('div', 'muted replica', `replica ${e.replica}`));
  const row = el('tr', '', el('td', 'num', String(e.seq ?? '')), el('td', 'time', time(eventTime(e))), el('td', 'event', e.event), detail);
  row.dataset.event = e.event;
  return row;
}

function eventTable(events) {
  const head = el('tr', '', el('th', '', '#'), el('th', '', 'time (UTC)'), el('th', '', 'event'), el('th', '', 'what'));
  return el('table', 'events', el('thead', '', head), el('tbody', '', ...events.map(eventRow)));
}

function renderHistory(reply) {
  const box = $('timeline');
  const note = $('history-error');
  if (!reply.ok) {
    shownEvents = 0;
    fill(box);
    say(
      note,
      reply.status === 404
        ? 'No audit events for this corr_id (the audit trail is off, or they are older than AUDIT_MAX_AGE_SECONDS).'
        : `The history failed: ${message(reply)}`,
    );
    return;
  }
  const h = reply.data;
  shownEvents = h.instances.reduce((n, i) => n + i.events.length, h.unassigned.length);
  say(note, h.truncated ? 'More events than one read returns: the oldest are shown.' : '');
  fill(
    box,
    ...h.instances.map((i) => {
      const section = el(
        'section',
        'instance',
        el('h4', '', `${i.instance} `, statusBadge(i.status ?? 'open'), ` started ${time(i.started_at)}`),
        i.decision ? el('p', '', `Decision: ${i.decision.status}, action ${i.decision.decision?.action ?? '-'}, at ${time(i.decision.orchestrated_at)}`) : null,
        eventTable(i.events),
      );
      section.dataset.instance = i.instance;
      return section;
    }),
    h.unassigned.length > 0 ? el('section', 'instance', el('h4', '', 'Events of no instance'), eventTable(h.unassigned)) : null,
  );
}

// ---- Admin actions -------------------------------------------------------------------------------------------

async function act(action) {
  if (!current) return;
  const corrId = current;
  let body;
  if (action === 'extend') {
    const seconds = Number($('extend-seconds').value);
    if (!Number.isInteger(seconds) || seconds < 1) {
      showResult(false, 'Extend: a whole number of seconds, 1 or more.', null);
      return;
    }
    body = { seconds };
  } else if (!window.confirm(`${action === 'cancel' ? 'Cancel' : 'Decide now'} workflow ${corrId}? Its decision is published at once.`)) {
    return;
  }
  const before = shownEvents;
  const reply = await api('POST', `/workflows/${encodeURIComponent(corrId)}/${action}`, body);
  if (!token) return;
  showResult(reply.ok, `${action} ${corrId}: ${reply.ok ? `${reply.status} OK` : message(reply)}`, reply.data);
  if (corrId === current) {
    catchUp.left = CATCH_UP_TRIES;
    catchUp.minEvents = before + 1;
  }
  await Promise.all([refreshWorkflow(), loadList()]);
}

function showResult(ok, text, data) {
  const box = $('action-result');
  box.className = ok ? 'result ok' : 'result error';
  fill(box, el('strong', '', text), data && typeof data === 'object' ? json('reply', data, true) : null);
  show(box, true);
}

// ---- Live decisions ------------------------------------------------------------------------------------------

let live = null;
const seen = [];

function setLive(state, text) {
  const badge = $('live-state');
  badge.textContent = text;
  badge.dataset.state = state;
}

/**
 * Reads GET /workflows/decisions/live with fetch() and a stream reader (EventSource cannot send the bearer
 * header), parses its Server-Sent Events, and connects again after a pause when the stream ends.
 */
async function connectLive(attempt = 0) {
  stopLive();
  const controller = new AbortController();
  live = controller;
  setLive('connecting', attempt === 0 ? 'connecting' : 'reconnecting');
  let opened = false;
  try {
    const res = await fetch('/workflows/decisions/live', {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      cache: 'no-store',
      credentials: 'omit',
      signal: controller.signal,
    });
    if (res.status === 401) {
      signOut('The service refused this token (401 Unauthorized).');
      return;
    }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (onFrame(frame)) opened = true;
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    setLive('error', `error: ${error.message}`);
  }
  if (controller.signal.aborted || live !== controller) return;
  const next = opened ? 0 : attempt + 1;
  const wait = Math.min(LIVE_RETRY_MAX_MS, 1000 * 2 ** Math.min(next, 5));
  setLive('waiting', `disconnected; again in ${Math.round(wait / 1000)} s`);
  setTimeout(() => {
    if (live === controller && token) void connectLive(next);
  }, wait);
}

function stopLive() {
  const controller = live;
  live = null;
  controller?.abort();
  setLive('off', 'off');
}

/** One SSE frame; true once the stream said it is subscribed. */
function onFrame(frame) {
  let event = 'message';
  let id = '';
  const data = [];
  for (const line of frame.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'event') event = value;
    else if (name === 'data') data.push(value);
    else if (name === 'id') id = value;
  }
  const text = data.join('\n');
  if (event === 'ready') {
    setLive('live', 'live');
    return true;
  }
  if (event === 'decision') addDecision(text, id);
  else if (event === 'dropped') addNotice(`${safeParse(text)?.count ?? 'some'} decisions skipped: this page did not keep up with the stream.`);
  else if (event === 'error') setLive('error', `error: ${safeParse(text)?.message ?? text}`);
  return false;
}

function safeParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function addDecision(text, id) {
  if (id) {
    if (seen.includes(id)) return;
    seen.push(id);
    if (seen.length > LIVE_IDS_KEEP) seen.shift();
  }
  const d = safeParse(text);
  if (!d || typeof d !== 'object') {
    addNotice(`A message that is not JSON: ${text.slice(0, 200)}`);
    return;
  }
  const decision = d.decision ?? {};
  const extra = ['direction', 'size', 'confidence', 'reason']
    .filter((k) => decision[k] !== undefined && decision[k] !== null)
    .map((k) => `${k} ${typeof decision[k] === 'object' ? JSON.stringify(decision[k]) : decision[k]}`)
    .join(', ');
  const item = el(
    'li',
    '',
    el('span', 'muted', time(d.orchestrated_at)),
    ' ',
    button(String(d.corr_id ?? '?'), () => openWorkflow(String(d.corr_id))),
    ` ${d.workflow_type ?? ''} `,
    statusBadge(d.status),
    ` ${decision.action ?? ''}${extra ? ` (${extra})` : ''}`,
  );
  item.dataset.corrId = String(d.corr_id ?? '');
  item.dataset.status = String(d.status ?? '');
  prepend(item);
  if (d.corr_id === current) {
    catchUp.left = CATCH_UP_TRIES;
    void refreshWorkflow();
  }
}

function addNotice(text) {
  prepend(el('li', 'notice', text));
}

function prepend(item) {
  const ol = $('live');
  ol.prepend(item);
  while (ol.children.length > LIVE_KEEP) ol.lastElementChild.remove();
}

// ---- Start ---------------------------------------------------------------------------------------------------

setUpFilters();
$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void signIn($('token').value.trim());
});
$('sign-out').addEventListener('click', () => signOut());
$('open-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void openWorkflow($('open-corr-id').value.trim());
});
$('detail-refresh').addEventListener('click', () => {
  catchUp.left = CATCH_UP_TRIES;
  void refreshWorkflow();
});
$('action-cancel').addEventListener('click', () => void act('cancel'));
$('action-decide').addEventListener('click', () => void act('decide'));
$('action-extend').addEventListener('click', () => void act('extend'));
if (token) void signIn(token);
