// The Kappa dashboard: plain JavaScript, no framework, four files loaded in order: charts.js (a
// view's chart from its rows), views.js (a view's panel: versions, actions, a paged table),
// groups.js (the Kafka consumer groups and their lag) and this one (the server calls, the one live
// event stream, the overview, alerts and the SQL console).
//
// Everything live comes over ONE Server-Sent Events connection, GET /v1/events: the overview once a
// second, the row changes of every view and the records of every alert topic. Browsers allow six
// HTTP/1.1 connections per host; one stream per view or partition used them all up and every other
// request queued forever. Every request has a time limit and shows its failure where the user acted.
/* global viewPanel, removePanel, views, showConsumerGroups, URLSearchParams */
'use strict';

const $ = (sel) => document.querySelector(sel);
/** The longest any request may take before the page says the server does not answer. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Alerts shown, and records per partition of an alert topic asked for when the stream opens. */
const ALERTS_SHOWN = 20;

// With tokens in the server's config, the dashboard needs one (kept for this browser tab only): it
// comes from the address (`/#token=…`, which `kappa demo` may print; the fragment never reaches the
// server or its logs) or from a form. It is sent as a header by fetch, as ?access_token= by the
// event stream (EventSource cannot send headers).
(function tokenFromAddress() {
  const m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (m === null) return;
  window.sessionStorage.setItem('kappa-token', decodeURIComponent(m[1]));
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
})();
const token = window.sessionStorage.getItem('kappa-token');
const withToken = (url) =>
  token ? `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}` : url;

/**
 * A call to the server with a time limit: resolves to the answer's JSON, or throws an Error whose
 * message says what went wrong in words a user can act on (the server's own message for an error).
 */
async function api(url, init = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
  let res;
  try {
    res = await fetch(url, {
      ...init,
      headers: { ...(init.headers ?? {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new Error(
      err.name === 'TimeoutError'
        ? `The server did not answer within ${timeoutMs / 1000} s. Is it overloaded or stopped? Try again.`
        : `Cannot reach the server: is \`kappa start\` still running? (${err.message})`,
      { cause: err },
    );
  }
  if (res.status === 401) askForToken();
  let body;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new Error(body?.error?.message ?? `The server answered ${res.status} ${res.statusText}.`);
  return body;
}
const postJson = (url, value) =>
  api(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });

function askForToken() {
  if ($('#token-form')) return;
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'off' });
  const form = el(
    'form',
    {
      id: 'token-form',
      onsubmit: (e) => (
        e.preventDefault(),
        window.sessionStorage.setItem('kappa-token', input.value),
        window.location.reload()
      ),
    },
    el('label', {
      for: 'token',
      text: 'This server needs a token with the query scope (admin for replay and rollback):',
    }),
    input,
    el('button', { type: 'submit', text: 'Use token' }),
  );
  document.querySelector('header').after(form);
  input.focus();
}

const fmt = (n) =>
  typeof n === 'number'
    ? n.toLocaleString('en-US', { maximumFractionDigits: 2 })
    : n === null || n === undefined
      ? '–'
      : String(n);
/** Window bounds and other epoch-millisecond times. */
const isTimeColumn = (column) => /(^|_)(start|end|ts|time|at)$/.test(column);
/** A view cell: times as ISO times, small whole numbers (years) ungrouped. */
const cell = (column, v) =>
  typeof v === 'number' && isTimeColumn(column) && v > 1e11
    ? new Date(v).toISOString().replace('T', ' ').slice(0, 19)
    : typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 10000
      ? String(v)
      : fmt(v);
const bytes = (b) =>
  b >= 1 << 30
    ? `${(b / (1 << 30)).toFixed(1)} GiB`
    : b >= 1 << 20
      ? `${(b / (1 << 20)).toFixed(1)} MiB`
      : `${(b / 1024).toFixed(0)} KiB`;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fillTable(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', { text: fmt(c) })))));
}

// ---- the one event stream -----------------------------------------------------------------------

const live = {
  /** The server's id of the open stream (null until its hello). */
  stream: null,
  views: new Set(),
  topics: new Set(),
  /** A subscription request in flight: the next overview tries again once it is done. */
  syncing: false,
};

function connect() {
  const source = new EventSource(withToken('/v1/events?overview=1'));
  source.addEventListener('hello', (e) => {
    // A new stream (first, or after a reconnect): it follows only the overview, and what the page
    // shows may have changed while it was away, so every view reads its rows again.
    live.stream = JSON.parse(e.data).stream;
    live.views.clear();
    live.topics.clear();
    for (const v of views.values()) v.reload();
  });
  source.addEventListener('overview', (e) => showOverview(JSON.parse(e.data)));
  source.addEventListener('row', (e) => views.get(JSON.parse(e.data).view)?.changed());
  source.addEventListener('delete', (e) => views.get(JSON.parse(e.data).view)?.changed());
  source.addEventListener('reset', (e) => views.get(JSON.parse(e.data).view)?.reload());
  source.addEventListener('record', (e) => showAlert(JSON.parse(e.data)));
  source.addEventListener('dropped', (e) => live.topics.delete(JSON.parse(e.data).topic));
  source.onerror = () => {
    live.stream = null;
    $('#status').textContent = 'connection lost · reconnecting…';
    // EventSource retries by itself, except after an answer that is not a stream (401, 403, 503).
    if (source.readyState === EventSource.CLOSED) {
      api('/v1/overview').catch((err) => ($('#status').textContent = `cannot connect: ${err.message}`));
      window.setTimeout(connect, 3000);
    }
  };
}

/** Subscribes the stream to every view shown and every alert topic it does not follow yet. */
async function follow(viewNames, topics) {
  const stream = live.stream;
  if (stream === null || live.syncing) return;
  const newViews = viewNames.filter((v) => !live.views.has(v));
  const newTopics = topics.filter((t) => !live.topics.has(t));
  if (newViews.length === 0 && newTopics.length === 0) return;
  live.syncing = true;
  try {
    // A view with no version yet cannot be followed: it is asked for again at the next overview.
    for (let i = 0; i < Math.max(newViews.length, newTopics.length); i += 50) {
      const q = new URLSearchParams({ recent: String(ALERTS_SHOWN) });
      if (newViews.length > i) q.set('views', newViews.slice(i, i + 50).join(','));
      if (newTopics.length > i) q.set('topics', newTopics.slice(i, i + 50).join(','));
      const now = await api(`/v1/events/${stream}/subscriptions?${q}`, { method: 'POST' });
      if (live.stream !== stream) return;
      for (const v of now.views) live.views.add(v);
      for (const t of now.topics) live.topics.add(t);
    }
  } catch (err) {
    $('#status').textContent = `live updates incomplete: ${err.message}`;
  } finally {
    live.syncing = false;
  }
}

// ---- overview -----------------------------------------------------------------------------------

let previous = null;

function showOverview(o) {
  const dt = previous ? (o.atMs - previous.atMs) / 1000 : 0;
  const rate = (now, before) => (before === undefined || dt <= 0 ? null : Math.max(0, (now - before) / dt));
  const prevTopic = new Map((previous?.topics ?? []).map((t) => [t.name, t]));
  fillTable(
    $('#topics tbody'),
    o.topics.map((t) => [
      t.name,
      t.partitions,
      t.records,
      rate(t.records, prevTopic.get(t.name)?.records),
      bytes(t.bytes),
      t.ends.join(' · '),
    ]),
  );
  const taskKey = (t) => `${t.view}/${t.version}/${t.topic}/${t.partition}`;
  const prevTask = new Map((previous?.tasks ?? []).map((t) => [taskKey(t), t]));
  $('#pipelines').classList.toggle('cluster', cluster !== null);
  fillTable(
    $('#pipelines tbody'),
    o.tasks.map((t) => [
      `${t.view}${t.kind === 'output' ? ' (output)' : ''}${t.building ? ' (building)' : ''}`,
      t.kind === 'output' ? '–' : t.version,
      `${t.topic}/${t.partition}`,
      t.offset,
      t.lag,
      rate(t.eventsProcessed, prevTask.get(taskKey(t))?.eventsProcessed),
      t.watermarkMs > 0 ? new Date(t.watermarkMs).toISOString().slice(11, 19) : '–',
      t.checkpointAgeSeconds === null ? '–' : `${t.checkpointAgeSeconds.toFixed(1)} s`,
      ...(cluster === null ? [] : [ownerText(cluster.owners.get(leaseId(t)))]),
    ]),
  );
  if (cluster !== null) showTasksElsewhere(o.tasks);
  void refreshCluster();
  showDeadLetters(o.deadLetters ?? []);
  showConsumerGroups(o.consumerGroups ?? []);
  // Views in the store that the running config does not declare (left by an earlier config) are
  // listed by name, not shown as panels: nothing updates them any more.
  const all = [...new Set(o.versions.map((v) => v.name).concat(o.builds.map((b) => b.name)))].sort();
  const inConfig = o.configViews === undefined ? null : new Set(o.configViews);
  const names = all.filter((n) => inConfig === null || inConfig.has(n));
  showOrphans(all.filter((n) => !names.includes(n)));
  for (const name of names)
    viewPanel(name).update(
      o.versions.filter((v) => v.name === name),
      o.builds.filter((b) => b.name === name),
    );
  const withVersions = names.filter((n) => o.versions.some((v) => v.name === n));
  suggestQuery(withVersions);
  void follow(
    withVersions,
    (o.alertTopics ?? []).filter((t) => o.topics.some((x) => x.name === t)),
  );
  if (!live.syncing) $('#status').textContent = `live · ${new Date(o.atMs).toLocaleTimeString()}`;
  previous = o;
}

// ---- a cluster: the processes sharing the work ------------------------------------------------

/**
 * What GET /v1/pipelines says of the cluster (its `cluster` section, plus `owners`: task id →
 * owner), asked for at most every CLUSTER_INTERVAL_MS; null while unknown, and for a process that
 * runs alone (it said so once: a process cannot join a cluster while it runs, so it is not asked again).
 */
let cluster = null;
let maybeCluster = true;
let clusterAskedAtMs = 0;
const CLUSTER_INTERVAL_MS = 2000;

async function refreshCluster() {
  if (!maybeCluster || Date.now() - clusterAskedAtMs < CLUSTER_INTERVAL_MS) return;
  clusterAskedAtMs = Date.now();
  try {
    const answer = await api('/v1/pipelines');
    if (answer.cluster === undefined) {
      maybeCluster = false;
      return;
    }
    cluster = { ...answer.cluster, owners: new Map(answer.cluster.leases.map((l) => [l.task, l.owner])) };
    showProcesses(cluster);
    $('#processes-status').textContent = '';
  } catch (err) {
    if (cluster !== null) $('#processes-status').textContent = `not updated: ${err.message}`;
  }
}

/** A task's lease id, as the server names it: an output's has no version. */
const leaseId = (t) =>
  t.kind === 'output'
    ? `output:${t.view}:${t.topic}:${t.partition}`
    : `view:${t.view}:${t.version}:${t.topic}:${t.partition}`;

/** A task's owner for the Owner column: its process id, marked when it is this one or dead. */
function ownerText(id) {
  if (id === null || id === undefined) return 'none';
  const member = cluster.members.find((m) => m.id === id);
  return `${id}${member?.self ? ' (this process)' : member !== undefined && !member.live ? ' (dead)' : ''}`;
}

/** The tasks other processes run, after this process's own: their owner, their progress on their own dashboard. */
function showTasksElsewhere(local) {
  const here = new Set(local.map(leaseId));
  const rows = cluster.leases
    .filter((l) => !here.has(l.task))
    .map((l) =>
      el(
        'tr',
        { class: 'elsewhere', title: 'Run by another process: its own dashboard shows its offsets and rate.' },
        ...[
          `${l.name}${l.kind === 'output' ? ' (output)' : ''}`,
          l.version ?? '–',
          `${l.topic}/${l.partition}`,
          '–',
          '–',
          '–',
          '–',
          '–',
          ownerText(l.owner),
        ].map((c) => el('td', { text: fmt(c) })),
      ),
    );
  $('#pipelines tbody').append(...rows);
}

/** The Processes section: each process, its health, how many tasks it owns, which one coordinates. */
function showProcesses(c) {
  $('#processes-section').hidden = false;
  $('#processes tbody').replaceChildren(
    ...c.members.map((m) => {
      const link =
        m.httpUrl === null ? el('span', { text: '–' }) : el('a', { href: m.httpUrl, text: m.httpUrl, rel: 'noopener' });
      return el(
        'tr',
        { 'data-member': m.id },
        el('td', { text: m.self ? `${m.id} (this process)` : m.id }),
        el('td', { text: `${m.host}:${m.pid}` }),
        el('td', {}, link),
        el('td', { text: `${(m.heartbeatAgeMs / 1000).toFixed(1)} s ago` }),
        el('td', {
          class: m.live ? 'process-live' : 'process-dead',
          text: m.live ? 'live' : 'dead',
          title: m.live
            ? `a heartbeat within the session timeout (${c.sessionTimeoutMs / 1000} s)`
            : `no heartbeat for longer than the session timeout (${c.sessionTimeoutMs / 1000} s): its tasks go to the others`,
        }),
        el('td', { text: String(m.tasks) }),
        el('td', {
          text: m.coordinator ? 'yes' : '',
          title: m.coordinator ? 'decides the builds, swaps and rollbacks of new view versions' : '',
        }),
      );
    }),
  );
}

function showOrphans(orphans) {
  for (const name of orphans) removePanel(name);
  $('#orphans').hidden = orphans.length === 0;
  $('#orphans').textContent =
    orphans.length === 0
      ? ''
      : `Not in the running config (left by an earlier one, no longer updated): ${orphans.join(', ')}. ` +
        `\`kappa views drop <view>\` removes one; its rows stay queryable until then.`;
}

/** A badge per dead-letter topic that holds records: how many, and why the first one was refused. */
function showDeadLetters(topics) {
  $('#dead-letters').replaceChildren(
    ...topics.map((d) =>
      el('span', {
        class: 'badge dead-letter',
        'data-topic': d.topic,
        title: `The oldest one kept: ${d.firstReason ?? 'no reason recorded'}. Read them with: kappa consume ${d.topic}`,
        text:
          `${fmt(d.count)} record${d.count === 1 ? '' : 's'} of ${d.source} went to ${d.topic}` +
          `${d.firstView ? ` (from ${d.firstView})` : ''}: ${d.firstReason ?? 'no reason recorded'}`,
      }),
    ),
  );
}

// ---- alerts -------------------------------------------------------------------------------------

const recentAlerts = [];
const alertIds = new Set();

/** A record of an alert topic: kept among the ALERTS_SHOWN newest, once (a reconnect sends recent ones again). */
function showAlert(record) {
  const a = record.value;
  const id = `${record.topic}/${record.partition}/${record.offset}`;
  if (!a || typeof a !== 'object' || alertIds.has(id)) return;
  alertIds.add(id);
  recentAlerts.push({ ...a, id });
  recentAlerts.sort((x, y) => y.atMs - x.atMs);
  for (const gone of recentAlerts.splice(ALERTS_SHOWN)) alertIds.delete(gone.id);
  $('#alerts tbody').replaceChildren(
    ...recentAlerts.map((x) =>
      el(
        'tr',
        { class: `severity-${x.severity}` },
        el('td', { text: new Date(x.atMs).toISOString().replace('T', ' ').slice(0, 19) }),
        el('td', { text: x.rule }),
        el('td', { text: x.key }),
        el('td', { text: x.severity }),
        el('td', { text: x.message }),
      ),
    ),
  );
}

let suggested = false;
/** The console's first query names a view this app has (the page's default names the demo's). */
function suggestQuery(viewNames) {
  if (suggested || viewNames.length === 0) return;
  suggested = true;
  const sql = $('#sql');
  if (sql.value === sql.defaultValue && !viewNames.includes('aggregated_sales'))
    sql.value = `SELECT * FROM ${viewNames[0]} LIMIT 10`;
}

// ---- SQL console --------------------------------------------------------------------------------

$('#sql-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const button = $('#sql-form button[type=submit]');
  $('#sql-error').textContent = '';
  button.disabled = true;
  $('#sql-result').replaceChildren(el('p', { class: 'muted', text: 'running…' }));
  try {
    const body = await postJson('/v1/sql', { sql: $('#sql').value });
    $('#sql-result').replaceChildren(
      el(
        'table',
        { id: 'sql-table' },
        el('thead', {}, el('tr', {}, ...body.columns.map((c) => el('th', { scope: 'col', text: c })))),
        el(
          'tbody',
          {},
          ...body.rows.map((r) => el('tr', {}, ...body.columns.map((c) => el('td', { text: cell(c, r[c]) })))),
        ),
      ),
      el('p', { text: `${body.rows.length} row${body.rows.length === 1 ? '' : 's'}` }),
    );
  } catch (err) {
    $('#sql-error').textContent = err.message;
    $('#sql-result').replaceChildren();
  } finally {
    button.disabled = false;
  }
});

connect();
