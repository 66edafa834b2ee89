// A view's chart, drawn from the view's own rows (never sampled by the browser, so it survives a
// reload and a version swap, and shows what the view holds):
// - a windowed view (a `window_start` key): the measure per window, one line per group, for the
//   CHART_GROUPS_MAX groups with the largest total over the windows read;
// - a grouped view without windows: the measure per group as bars, the BARS_MAX largest;
// - a view of one row (no group): no chart, its table says it all.
// The measure is any numeric column that is not a key; the user picks it. A read that returns no
// rows (a swap in progress) keeps the chart as it was rather than drawing zeros.
/* global api, el, fmt, cell, isTimeColumn, URLSearchParams */
/* exported viewChart */
'use strict';

const CHART_GROUPS_MAX = 5;
const CHART_ROWS_MAX = 5000;
const BARS_MAX = 20;
/** A chart is read again at most this often while its view keeps changing. */
const CHART_REFRESH_MS = 3000;
const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#57606a'];

/** Points drawn at most per line; a longer run of windows is drawn as the windows that have rows. */
const CHART_POINTS_MAX = 2000;

/**
 * The window starts from the first to the last, with the windows that have no row at all put back
 * (the step is the window's size, or the smallest gap between two starts when windows overlap), so a
 * line breaks over a quiet hour instead of joining its two ends.
 */
function everyWindow(starts, size) {
  let step = Number.isFinite(size) && size > 0 ? size : Infinity;
  for (let i = 1; i < starts.length; i++) step = Math.min(step, starts[i] - starts[i - 1]);
  const first = starts[0];
  const last = starts[starts.length - 1];
  if (!Number.isFinite(step) || step <= 0 || (last - first) / step > CHART_POINTS_MAX) return starts;
  const all = [];
  for (let x = first; x <= last; x += step) all.push(x);
  return all.length >= starts.length && starts.every((s) => (s - first) % step === 0) ? all : starts;
}

function viewChart(name, box) {
  const select = el('select', { class: 'measure', 'aria-label': `The measure charted for ${name}` });
  const caption = el('p', { class: 'chart-caption' });
  const area = el('div', { class: 'chart-area' });
  box.append(el('label', { class: 'measure-label' }, 'Chart ', select), caption, area);
  const state = { measure: null, measures: [], readAtMs: 0, plot: null, plotKey: '', last: null, trailing: null };
  select.addEventListener('change', () => {
    state.measure = select.value;
    if (state.last !== null) void draw(state.last, true);
  });

  function setMeasures(measures) {
    if (measures.join() === state.measures.join()) return;
    state.measures = measures;
    if (!measures.includes(state.measure)) state.measure = measures[0] ?? null;
    select.replaceChildren(...measures.map((m) => el('option', { value: m, text: m })));
    if (state.measure !== null) select.value = state.measure;
  }

  async function draw(info, now) {
    state.last = info;
    const columns = info.rows.length > 0 ? Object.keys(info.rows[0]) : [];
    if (columns.length === 0) return; // no rows to learn the columns from: keep what is drawn
    const keys = new Set(info.keyColumns);
    setMeasures(
      columns.filter((c) => !keys.has(c) && !isTimeColumn(c) && info.rows.some((r) => typeof r[c] === 'number')),
    );
    const groups = info.keyColumns.filter((c) => c !== 'window_start' && c !== 'window_end');
    box.hidden = state.measure === null || (groups.length === 0 && !keys.has('window_start'));
    if (box.hidden) return;
    const wait = state.readAtMs + CHART_REFRESH_MS - Date.now();
    if (!now && wait > 0) {
      // Read recently: read once more when the interval is over, so the last change is always drawn.
      if (state.trailing === null)
        state.trailing = window.setTimeout(() => {
          state.trailing = null;
          void draw(state.last, true);
        }, wait);
      return;
    }
    state.readAtMs = Date.now();
    try {
      if (keys.has('window_start')) await drawWindows(groups);
      else await drawBars(groups, info.total);
    } catch (err) {
      caption.textContent = `Could not read the rows to chart: ${err.message}`;
    }
  }

  async function read(query) {
    return (await api(`/v1/views/${encodeURIComponent(name)}?${new URLSearchParams(query)}`)).rows;
  }

  async function drawWindows(groups) {
    const measure = state.measure;
    const rows = await read({ order: '-window_start', limit: String(CHART_ROWS_MAX) });
    if (rows.length === 0 || measure !== state.measure) return;
    const label = (r) => (groups.length === 0 ? measure : groups.map((g) => cell(g, r[g])).join(' · '));
    const totals = new Map();
    for (const r of rows) totals.set(label(r), (totals.get(label(r)) ?? 0) + (Number(r[measure]) || 0));
    const top = [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, CHART_GROUPS_MAX)
      .map(([g]) => g);
    const size = Number(rows[0].window_end) - Number(rows[0].window_start);
    const xs = everyWindow(
      [...new Set(rows.map((r) => r.window_start))].sort((a, b) => a - b),
      size,
    );
    const at = new Map(xs.map((x, i) => [x, i]));
    // A window without a row for a group is a gap in its line, not a zero.
    const ys = top.map(() => xs.map(() => null));
    for (const r of rows) {
      const s = top.indexOf(label(r));
      if (s >= 0) ys[s][at.get(r.window_start)] = r[measure];
    }
    const windows = `${xs.length} window${xs.length === 1 ? '' : 's'}`;
    caption.textContent =
      groups.length === 0
        ? `${measure} per window, the last ${windows}`
        : `${measure} per window by ${groups.join(', ')}: the ${top.length} largest of ${totals.size} groups, the last ${windows}${rows.length === CHART_ROWS_MAX ? ` (the newest ${CHART_ROWS_MAX} rows)` : ''}`;
    plot(top, [xs.map((x) => x / 1000), ...ys], size / 1000);
  }

  /** Lines over window starts (s); the x axis spans the windows with half a window each side, so one window is not drawn across years. */
  function plot(labels, data, windowSeconds) {
    area.querySelector('.bars')?.remove();
    const key = `${state.measure}|${labels.join('|')}`;
    if (state.plot !== null && state.plotKey === key) return state.plot.setData(data);
    state.plot?.destroy();
    state.plotKey = key;
    if (!window.uPlot) return;
    state.plot = new window.uPlot(
      {
        width: Math.min(1100, area.clientWidth || 800),
        height: 220,
        scales: {
          // From the data, not uPlot's min and max: for one point uPlot stretches the axis over ~1000 days.
          x: {
            time: true,
            range: (u) => {
              const xs = u.data[0];
              return xs.length === 0
                ? [null, null]
                : [xs[0] - windowSeconds / 2, xs[xs.length - 1] + windowSeconds / 2];
            },
          },
        },
        series: [
          {},
          ...labels.map((l, i) => ({
            label: l,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            spanGaps: false,
            points: { show: true },
          })),
        ],
        axes: [{}, { size: 90, values: (_u, ticks) => ticks.map((t) => fmt(t)) }],
      },
      data,
      area,
    );
  }

  async function drawBars(groups, total) {
    const measure = state.measure;
    const rows = await read({ order: `-${measure}`, limit: String(BARS_MAX) });
    if (rows.length === 0 || measure !== state.measure) return;
    state.plot?.destroy();
    state.plot = null;
    state.plotKey = '';
    const max = Math.max(...rows.map((r) => Math.abs(Number(r[measure]) || 0)), 1e-9);
    caption.textContent = `${measure} by ${groups.join(', ')}: the ${rows.length} largest${total === null ? '' : ` of ${fmt(total)}`}`;
    area.replaceChildren(
      el(
        'div',
        { class: 'bars', role: 'list' },
        ...rows.map((r) =>
          el(
            'div',
            { class: 'bar', role: 'listitem' },
            el('span', { class: 'bar-label', text: groups.map((g) => cell(g, r[g])).join(' · ') }),
            el(
              'span',
              { class: 'bar-track' },
              el('span', { class: 'bar-fill', style: `width:${(100 * Math.abs(Number(r[measure]) || 0)) / max}%` }),
            ),
            el('span', { class: 'bar-value', text: fmt(r[measure]) }),
          ),
        ),
      ),
    );
  }

  return {
    /** The table's rows (to learn the columns), the key columns and the row count; reads its own rows. */
    refresh: (info) => draw(info, false),
  };
}
