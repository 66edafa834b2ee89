// The Kappa dashboard: plain JavaScript, no framework. Everything live comes over Server-Sent
// Events: the overview (topics, pipelines, versions, builds) once a second from
// /v1/overview/stream, and each view's row changes from /v1/views/:view/changes.
'use strict';

const $ = (sel) => document.querySelector(sel);

// With tokens in the server's config, the dashboard asks for one (kept for this browser tab only)
// and sends it with every call: a header for fetch, ?access_token= for event streams.
const token = window.sessionStorage.getItem('kappa-token');
const withToken = (url) =>
  token ? `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}` : url;
async function api(url, init = {}) {
  const res = await fetch(url, {
    ...init,
    headers: { ...(init.headers ?? {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  if (res.status === 401) askForToken();
  return res;
}
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
const events = (url) => new EventSource(withToken(url));
const fmt = (n) =>
  typeof n === 'number'
    ? n.toLocaleString('en-US', { maximumFractionDigits: 2 })
    : n === null || n === undefined
      ? '–'
      : String(n);
/** A view cell: window bounds and other epoch-millisecond times as ISO times, small whole numbers (years) ungrouped. */
const cell = (column, v) =>
  typeof v === 'number' && /(^|_)(start|end|ts|time|at)$/.test(column) && v > 1e11
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

// ---- overview ---------------------------------------------------------------------------------

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
    ]),
  );
  const names = [...new Set(o.versions.map((v) => v.name).concat(o.builds.map((b) => b.name)))].sort();
  for (const name of names)
    view(name).update(
      o.versions.filter((v) => v.name === name),
      o.builds.filter((b) => b.name === name),
    );
  for (const name of o.alertTopics ?? []) {
    const t = o.topics.find((x) => x.name === name);
    if (t) t.ends.forEach((end, p) => followAlerts(name, p, Math.max(0, end - 20)));
  }
  $('#status').textContent = `live · ${new Date(o.atMs).toLocaleTimeString()}`;
  previous = o;
}

// ---- alerts -----------------------------------------------------------------------------------

const following = new Set();
const recentAlerts = [];

/** Tails one partition of an alerts topic over SSE, from a little before its end. */
function followAlerts(topic, partition, from) {
  const id = `${topic}/${partition}`;
  if (following.has(id)) return;
  following.add(id);
  const source = events(`/v1/topics/${encodeURIComponent(topic)}/records?partition=${partition}&from=${from}`);
  source.addEventListener('record', (e) => {
    const a = JSON.parse(e.data).value;
    if (!a || typeof a !== 'object') return;
    recentAlerts.push(a);
    recentAlerts.sort((x, y) => y.atMs - x.atMs);
    recentAlerts.length = Math.min(recentAlerts.length, 20);
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
  });
}

function connectOverview() {
  const source = events('/v1/overview/stream');
  source.addEventListener('overview', (e) => showOverview(JSON.parse(e.data)));
  source.onerror = () => {
    $('#status').textContent = 'reconnecting…';
    void api('/v1/overview'); // asks for a token if that is why
  };
}

// ---- views ------------------------------------------------------------------------------------

const views = new Map();

/** One view's panel: versions with replay/rollback, build progress, a live table and a chart. */
function view(name) {
  let v = views.get(name);
  if (v) return v;
  const panel = el('article', { class: 'view', id: `view-${name}`, 'aria-labelledby': `view-${name}-h` });
  const versions = el('div', { class: 'versions' });
  const progress = el('div', { class: 'progress', 'aria-live': 'polite' });
  const table = el('table');
  const chartBox = el('div', { class: 'chart' });
  panel.append(
    el('h3', { id: `view-${name}-h`, text: name }),
    versions,
    el(
      'div',
      {},
      el('button', { type: 'button', class: 'replay', onclick: () => act(name, 'replay'), text: 'Replay' }),
      ' ',
      el('button', { type: 'button', class: 'rollback', onclick: () => act(name, 'rollback'), text: 'Roll back' }),
    ),
    progress,
    el('div', { class: 'rows' }, table),
    chartBox,
  );
  $('#views').append(panel);
  const rows = new Map();
  let columns = [];
  let keyColumns = [];
  let live = null;
  const series = [[], []];
  let chart = null;

  const keyOf = (row) => JSON.stringify(keyColumns.map((c) => row[c]));
  function render() {
    const sorted = [...rows.values()].slice(0, 200);
    table.replaceChildren(
      el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col', text: c })))),
      el('tbody', {}, ...sorted.map((r) => el('tr', {}, ...columns.map((c) => el('td', { text: cell(c, r[c]) }))))),
    );
  }
  /** The chart: the sum of the view's first numeric non-key column over time. */
  function sample() {
    const measure = columns.find(
      (c) => !keyColumns.includes(c) && [...rows.values()].some((r) => typeof r[c] === 'number'),
    );
    if (!measure || !window.uPlot || rows.size === 0) return; // empty while reloading after a swap
    const total = [...rows.values()].reduce((s, r) => s + (typeof r[measure] === 'number' ? r[measure] : 0), 0);
    series[0].push(Date.now() / 1000);
    series[1].push(total);
    if (series[0].length > 600) series.forEach((s) => s.shift());
    if (chart === null) {
      chart = new window.uPlot(
        {
          width: Math.min(1100, chartBox.clientWidth || 800),
          height: 180,
          series: [{}, { label: `sum of ${measure}`, stroke: '#0969da' }],
          axes: [{}, { size: 110 }],
        },
        series,
        chartBox,
      );
    } else chart.setData(series);
  }
  async function load() {
    const res = await api(`/v1/views/${name}?limit=1000`);
    if (!res.ok) return;
    const body = await res.json();
    rows.clear();
    if (body.rows.length > 0) columns = Object.keys(body.rows[0]);
    for (const r of body.rows) rows.set(keyOf(r), r);
    render();
  }
  function subscribe() {
    const source = events(`/v1/views/${name}/changes`);
    source.addEventListener('row', (e) => {
      const { row } = JSON.parse(e.data);
      if (columns.length === 0) columns = Object.keys(row);
      rows.set(keyOf(row), row);
      render();
    });
    source.addEventListener('reset', () => void load());
    source.onerror = () => {
      // EventSource retries by itself, sending Last-Event-ID.
    };
  }
  v = {
    update(vs, builds) {
      const liveVersion = vs.find((x) => x.state === 'live');
      versions.replaceChildren(
        ...vs.map((x) =>
          el('span', {
            class: `badge ${x.state}`,
            'data-version': x.version,
            'data-state': x.state,
            text: `v${x.version} ${x.state} · ${fmt(x.rows)} rows`,
          }),
        ),
      );
      progress.replaceChildren(
        ...builds.map((b) => {
          const pct = b.offsetsTotal === 0 ? 0 : Math.min(100, (100 * b.offsetsDone) / b.offsetsTotal);
          return el(
            'div',
            { class: 'build', 'data-version': b.version },
            el('label', {
              text: `v${b.version} ${b.reason === 'rollback' ? 'rolling back' : `building (${b.reason})`}: ${pct.toFixed(0)}% · ${fmt(Math.round(b.eventsPerSecond))} events/s · ETA ${b.etaSeconds === null ? '–' : `${Math.round(b.etaSeconds)} s`}`,
            }),
            el('progress', { max: '100', value: String(pct), 'aria-label': `build of version ${b.version}` }),
          );
        }),
      );
      if (liveVersion && liveVersion.version !== live) {
        live = liveVersion.version;
        keyColumns = [];
        void api('/v1/views')
          .then((r) => r.json())
          .then((b) => {
            keyColumns = b.views.find((x) => x.name === name)?.keyColumns ?? [];
            return load();
          });
      }
      sample();
    },
  };
  subscribe();
  views.set(name, v);
  return v;
}

async function act(name, action) {
  const res = await api(`/v1/views/${name}/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  const body = await res.json();
  $('#status').textContent = res.ok ? body.message : body.error.message;
}

// ---- SQL console --------------------------------------------------------------------------------

$('#sql-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('#sql-error').textContent = '';
  const res = await api('/v1/sql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: $('#sql').value }),
  });
  const body = await res.json();
  if (!res.ok) {
    $('#sql-error').textContent = body.error.message;
    $('#sql-result').replaceChildren();
    return;
  }
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
});

connectOverview();
