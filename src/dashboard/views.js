// A view's panel on the dashboard: its versions and builds, Replay and Roll back with their answer
// beside the buttons, a table paged and sorted by the server (GET /v1/views/:view?limit&offset&order)
// that always says how many of how many rows it shows, and a chart (charts.js). The page reads the
// rows again when the event stream says they changed (at most once per REFRESH_MS) or were reset.
/* global api, postJson, el, fmt, cell, viewChart, URLSearchParams */
/* exported viewPanel, removePanel, views */
'use strict';

const views = new Map();
/** Rows of a view re-read at most this often while its rows keep changing. */
const REFRESH_MS = 1000;
const PAGE_SIZES = [50, 200, 1000];

/** The panel of view `name`, made on first use. */
function viewPanel(name) {
  let panel = views.get(name);
  if (panel === undefined) views.set(name, (panel = makePanel(name)));
  return panel;
}

/** Takes the panel of view `name` off the page (the view left the running config). */
function removePanel(name) {
  views.get(name)?.remove();
  views.delete(name);
}

function makePanel(name) {
  const ids = { heading: `view-${name}-h`, error: `view-${name}-error` };
  const versions = el('div', { class: 'versions' });
  const progress = el('div', { class: 'progress', 'aria-live': 'polite' });
  const feedback = el('span', { class: 'feedback', role: 'status' });
  const replay = el('button', { type: 'button', class: 'replay', text: 'Replay' });
  const rollback = el('button', { type: 'button', class: 'rollback', text: 'Roll back' });
  const rollbackTo = el('select', { class: 'rollback-to', 'aria-label': `version of ${name} to roll back to` });
  const judge = versionTools(name);
  const table = el('table');
  const error = el('p', { class: 'error', id: ids.error, role: 'alert' });
  const pager = makePager(() => void refresh());
  const chartBox = el('div', { class: 'chart' });
  const chart = viewChart(name, chartBox);
  const article = el(
    'article',
    { class: 'view', id: `view-${name}`, 'aria-labelledby': ids.heading },
    el('h3', { id: ids.heading, text: name }),
    versions,
    el('div', { class: 'actions' }, replay, ' ', rollback, ' to ', rollbackTo, ' ', feedback),
    judge.confirm,
    progress,
    judge.element,
    pager.element,
    error,
    el('div', { class: 'rows' }, table),
    chartBox,
  );
  document.querySelector('#views').append(article);
  replay.addEventListener('click', () =>
    judge.ask(
      `Replay ${name}? A new version is built from the start of the log beside the live one, and goes live once it has caught up.`,
      () => act(name, 'replay', replay, feedback, ''),
    ),
  );
  rollback.addEventListener('click', () => {
    const to = rollbackTo.value;
    if (to === '') {
      feedback.className = 'feedback error';
      feedback.textContent = `${name} keeps no earlier version to roll back to.`;
      return;
    }
    judge.ask(
      `Roll ${name} back to version ${to}? It catches up from its checkpoints with its own logic, then replaces the live version.`,
      () => act(name, 'rollback', rollback, feedback, `?version=${encodeURIComponent(to)}`),
    );
  });

  const state = { live: null, keyColumns: [], total: null, order: null, timer: null, loading: false, again: false };

  /** Reads the page shown (and the chart) now, or once the read in flight is done. */
  async function refresh() {
    if (state.loading) return void (state.again = true);
    state.loading = true;
    try {
      const q = new URLSearchParams({ limit: String(pager.limit), offset: String(pager.offset) });
      if (state.order !== null) q.set('order', state.order);
      const body = await api(`/v1/views/${encodeURIComponent(name)}?${q}`);
      error.textContent = '';
      if (body.rows.length === 0 && pager.offset > 0 && state.total !== null && pager.offset >= state.total) {
        pager.offset = Math.max(0, state.total - pager.limit); // the view shrank under this page
        state.again = true;
      } else {
        renderTable(body.rows);
        pager.show(body.rows.length, state.total, state.order);
        await chart.refresh({ rows: body.rows, keyColumns: state.keyColumns, total: state.total });
      }
    } catch (err) {
      error.textContent = `Could not read the rows of ${name}: ${err.message}`;
    } finally {
      state.loading = false;
      if (state.again) {
        state.again = false;
        schedule(REFRESH_MS);
      }
    }
  }
  function schedule(ms) {
    if (state.timer !== null) return;
    state.timer = window.setTimeout(() => {
      state.timer = null;
      void refresh();
    }, ms);
  }

  function renderTable(rows) {
    if (rows.length === 0 && table.tBodies.length > 0 && state.total !== 0) return; // between versions: keep
    const columns = rows.length > 0 ? Object.keys(rows[0]) : [];
    table.replaceChildren(
      el('thead', {}, el('tr', {}, ...columns.map((c) => sortHeader(c)))),
      el('tbody', {}, ...rows.map((r) => el('tr', {}, ...columns.map((c) => el('td', { text: cell(c, r[c]) }))))),
    );
  }
  /** A column header: a button that sorts by the column, ascending, then descending. */
  function sortHeader(column) {
    const sorted = state.order === column ? 'ascending' : state.order === `-${column}` ? 'descending' : 'none';
    const th = el('th', { scope: 'col', 'aria-sort': sorted });
    th.append(
      el('button', {
        type: 'button',
        class: 'sort',
        title: `Sort by ${column}`,
        text: `${column}${sorted === 'ascending' ? ' ▲' : sorted === 'descending' ? ' ▼' : ''}`,
        onclick: () => {
          state.order = state.order === column ? `-${column}` : column;
          pager.offset = 0;
          void refresh();
        },
      }),
    );
    return th;
  }

  return {
    /** The overview's versions and builds of this view. */
    update(vs, builds) {
      showVersions(versions, vs);
      pickVersions(
        rollbackTo,
        vs.filter((x) => x.state === 'retired'),
      );
      judge.update(vs, builds);
      showBuilds(progress, builds);
      const liveVersion = vs.find((x) => x.state === 'live');
      state.total = liveVersion?.rows ?? null;
      pager.total(state.total);
      if (liveVersion && liveVersion.version !== state.live) {
        state.live = liveVersion.version;
        api('/v1/views')
          .then((b) => {
            state.keyColumns = b.views.find((x) => x.name === name)?.keyColumns ?? [];
            return refresh();
          })
          .catch((err) => (error.textContent = `Could not read the views: ${err.message}`));
      }
    },
    /** Rows changed: read the page again soon. */
    changed: () => schedule(REFRESH_MS),
    /** Everything may have changed (a version went live, the stream reconnected): read again now. */
    reload: () => schedule(0),
    remove() {
      window.clearTimeout(state.timer);
      state.timer = -1; // nothing is scheduled again
      article.remove();
    },
  };
}

function showVersions(box, vs) {
  box.replaceChildren(
    ...vs.map((x) =>
      el('span', {
        class: `badge ${x.state}`,
        'data-version': x.version,
        'data-state': x.state,
        text: `v${x.version} ${x.state} · ${fmt(x.rows)} rows`,
      }),
    ),
  );
}

function showBuilds(box, builds) {
  box.replaceChildren(
    ...builds.map((b) => {
      const pct = b.offsetsTotal === 0 ? 0 : Math.min(100, (100 * b.offsetsDone) / b.offsetsTotal);
      const what = b.reason === 'rollback' ? 'rolling back' : `building (${b.reason})`;
      const eta = b.etaSeconds === null ? '–' : `${Math.round(b.etaSeconds)} s`;
      return el(
        'div',
        { class: 'build', 'data-version': b.version },
        el('label', {
          text: `v${b.version} ${what}: ${pct.toFixed(0)}% · ${fmt(Math.round(b.eventsPerSecond))} events/s · ETA ${eta}`,
        }),
        el('progress', { max: '100', value: String(pct), 'aria-label': `build of version ${b.version}` }),
      );
    }),
  );
}

/** The pager: "Showing 50 of 300 rows (1–50)", previous and next, and the page size. */
function makePager(onChange) {
  const count = el('p', { class: 'count', 'aria-live': 'polite' });
  const prev = el('button', { type: 'button', class: 'prev', text: '‹ Previous' });
  const next = el('button', { type: 'button', class: 'next', text: 'Next ›' });
  const size = el('select', { class: 'page-size', 'aria-label': 'rows per page' });
  for (const n of PAGE_SIZES) size.append(el('option', { value: String(n), text: `${n} per page` }));
  const pager = {
    element: el('div', { class: 'pager' }, count, prev, next, size),
    limit: PAGE_SIZES[0],
    offset: 0,
    shown: 0,
    all: null,
    /** The rows on this page, the rows of the view (null: not known yet), the order. */
    show(shown, all, order) {
      pager.shown = shown;
      pager.total(all);
      const sortedBy =
        order === null ? '' : `, sorted by ${order.replace(/^-/, '')} ${order.startsWith('-') ? '▼' : '▲'}`;
      const range = shown === 0 ? '' : ` (${pager.offset + 1}–${pager.offset + shown}${sortedBy})`;
      count.textContent =
        pager.all === null
          ? `Showing ${shown} rows${range}`
          : `Showing ${fmt(shown)} of ${fmt(pager.all)} rows${range}`;
    },
    total(all) {
      // The count of rows comes with the overview, the page with its own read: never say fewer than shown.
      pager.all = all === null ? null : Math.max(all, pager.offset + pager.shown);
      prev.disabled = pager.offset === 0;
      next.disabled = pager.all === null ? pager.shown < pager.limit : pager.offset + pager.shown >= pager.all;
    },
  };
  prev.addEventListener('click', () => ((pager.offset = Math.max(0, pager.offset - pager.limit)), onChange()));
  next.addEventListener('click', () => ((pager.offset += pager.limit), onChange()));
  size.addEventListener('change', () => ((pager.limit = Number(size.value)), (pager.offset = 0), onChange()));
  return pager;
}

/** Replay or roll back a view: the button waits for the answer, which is shown beside it. */
async function act(name, action, button, feedback, query) {
  button.disabled = true;
  feedback.className = 'feedback';
  feedback.textContent = action === 'replay' ? 'asking for a replay…' : 'asking for a rollback…';
  try {
    const body = await postJson(`/v1/views/${encodeURIComponent(name)}/${action}${query}`, {});
    feedback.textContent = body.message;
  } catch (err) {
    feedback.className = 'feedback error';
    feedback.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

// ---- judging versions: the inline confirm, compare two versions, the build history ---------------

/** Fills a version picker with `vs` (newest first), keeping the choice when it is still there. */
function pickVersions(select, vs) {
  const chosen = select.value;
  const options = [...vs].sort((a, b) => b.version - a.version).map((x) => String(x.version));
  if (options.join() === [...select.options].map((o) => o.value).join()) return;
  select.replaceChildren(...options.map((v) => el('option', { value: v, text: `v${v}` })));
  if (options.includes(chosen)) select.value = chosen;
  select.disabled = options.length === 0;
}

/**
 * A view's tools for judging its versions: an inline confirm for Replay and Roll back (in the page,
 * not window.confirm, which a browser may block or a test dismisses), "compare vA with vB" (the
 * server's diff: row counts, totals, the rows that differ) and the build history.
 */
function versionTools(name) {
  const path = `/v1/views/${encodeURIComponent(name)}`;
  const question = el('span', { class: 'question' });
  const yes = el('button', { type: 'button', class: 'confirm-yes', text: 'Yes, go ahead' });
  const no = el('button', { type: 'button', class: 'confirm-no', text: 'Cancel' });
  const confirm = el('div', { class: 'confirm', role: 'alertdialog', hidden: '' }, question, ' ', yes, ' ', no);
  let pending = null;
  yes.addEventListener('click', () => {
    confirm.hidden = true;
    const go = pending;
    pending = null;
    if (go !== null) void go();
  });
  no.addEventListener('click', () => ((confirm.hidden = true), (pending = null)));

  const a = el('select', { class: 'compare-a', 'aria-label': `first version of ${name} to compare` });
  const b = el('select', { class: 'compare-b', 'aria-label': `second version of ${name} to compare` });
  const compare = el('button', { type: 'button', class: 'compare', text: 'Compare' });
  let picked = false;
  for (const select of [a, b]) select.addEventListener('change', () => (picked = true));
  const diff = el('div', { class: 'diff', 'aria-live': 'polite' });
  const list = el('ol', { class: 'history-list' });
  const history = el('details', { class: 'history' }, el('summary', { text: 'Build history' }), list);
  compare.addEventListener('click', async () => {
    compare.disabled = true;
    diff.replaceChildren(el('p', { class: 'feedback', text: `comparing v${a.value} with v${b.value}…` }));
    try {
      const d = await api(`${path}/diff?a=${encodeURIComponent(a.value)}&b=${encodeURIComponent(b.value)}&limit=10`);
      diff.replaceChildren(...diffView(d));
    } catch (err) {
      diff.replaceChildren(el('p', { class: 'error', text: `Could not compare: ${err.message}` }));
    } finally {
      compare.disabled = false;
    }
  });

  let seen = '';
  async function readHistory() {
    try {
      const body = await api(`${path}/builds`);
      list.replaceChildren(...body.history.map(historyItem));
      if (body.history.length === 0) list.replaceChildren(el('li', { text: 'No finished builds yet.' }));
    } catch (err) {
      list.replaceChildren(el('li', { class: 'error', text: `Could not read the build history: ${err.message}` }));
    }
  }
  return {
    confirm,
    element: el(
      'div',
      { class: 'judge' },
      el('div', { class: 'compare-tools' }, 'Compare ', a, ' with ', b, ' ', compare),
      diff,
      history,
    ),
    /** Asks `text` beside the buttons; `go` runs only on "Yes". */
    ask(text, go) {
      question.textContent = text;
      pending = go;
      confirm.hidden = false;
      yes.focus();
    },
    /** The overview's versions and builds: refresh the pickers, and the history when a build started or ended. */
    update(vs, builds) {
      pickVersions(a, vs);
      pickVersions(b, vs);
      const live = vs.find((x) => x.state === 'live');
      // Until the user picks, the pickers follow the versions: the newest other version against the
      // live one (during a replay the new build against the live one; after its swap the previous
      // version against the new live one).
      if ((!picked || a.value === b.value) && vs.length > 1) {
        a.value = String(vs.filter((x) => x !== live).sort((x, y) => y.version - x.version)[0].version);
        if (live) b.value = String(live.version);
      }
      compare.disabled = vs.length === 0;
      const now = `${live?.version}|${builds.map((x) => x.version).join()}|${vs.length}`;
      if (now !== seen) {
        seen = now;
        void readHistory();
      }
    },
  };
}

function historyItem(e) {
  const took = `${(e.durationMs / 1000).toFixed(1)} s`;
  const when = new Date(e.endedAtMs).toLocaleString();
  const change = e.change ? `; ${e.change}` : '';
  return el('li', {
    class: `build-${e.result}`,
    'data-version': e.version,
    'data-result': e.result,
    text: `v${e.version} ${e.reason}: ${e.result} after ${took}, ${fmt(e.events)} records read${change} (${when})`,
  });
}

/** The diff of two versions: a summary of rows and totals, then the rows that differ by key. */
function diffView(d) {
  const change = (x, y) => {
    const v = Number((y - x).toPrecision(12));
    return v > 0 ? `+${fmt(v)}` : fmt(v);
  };
  const rows = [['rows', d.a.rows, d.b.rows], ...d.measures.map((m) => [`total ${m}`, d.a.totals[m], d.b.totals[m]])];
  const out = [
    el(
      'table',
      { class: 'diff-summary' },
      el(
        'thead',
        {},
        el('tr', {}, ...['', `v${d.a.version}`, `v${d.b.version}`, 'change'].map((t) => el('th', { text: t }))),
      ),
      el(
        'tbody',
        {},
        ...rows.map(([label, x, y]) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row', text: label }),
            el('td', { text: fmt(x) }),
            el('td', { text: fmt(y) }),
            el('td', { text: change(x, y) }),
          ),
        ),
      ),
    ),
  ];
  if (d.same)
    return [...out, el('p', { class: 'same', text: 'Both versions hold the same rows with the same values.' })];
  const part = (title, p, rowsOf) => {
    const more = p.more > 0 ? ` (first ${p.rows.length}; ${fmt(p.more)} more)` : '';
    const section = [el('h4', { text: `${title}: ${fmt(p.count)} row${p.count === 1 ? '' : 's'}${more}` })];
    if (p.rows.length > 0) section.push(el('ul', {}, ...p.rows.map((r) => el('li', { text: rowsOf(r) }))));
    return section;
  };
  const show = (r) =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${cell(k, v)}`)
      .join(', ');
  const changed = (c) => {
    const key =
      Object.values(c.key)
        .map((v) => String(v))
        .join(', ') || 'the row';
    const cols = Object.keys(c.b).filter((k) => !(k in c.key) && c.a[k] !== c.b[k]);
    return `${key}: ${cols.map((k) => `${k} ${cell(k, c.a[k])} → ${cell(k, c.b[k])}`).join(', ')}`;
  };
  return [
    ...out,
    ...part(`only in v${d.a.version}`, d.onlyInA, show),
    ...part(`only in v${d.b.version}`, d.onlyInB, show),
    ...part('changed', d.changed, changed),
  ];
}
