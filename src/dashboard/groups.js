// The dashboard's Kafka consumer groups: consumers that read Kappa's topics over the Kafka API and
// commit their offsets. One row per group and topic (its state, members and total lag), and a
// button that shows the topic's partitions (committed offset, log end, lag, the consumer that owns
// it). Redrawn from every overview (`consumerGroups`, GET /v1/pipelines' list); the section stays
// hidden while there is no group, which is most apps.
/* global el, fmt */
/* exported showConsumerGroups */
'use strict';

/** `group\0topic` of the rows whose partitions are shown, kept across redraws. */
const expandedGroupTopics = new Set();
/** The groups drawn last, drawn again when a row is expanded or collapsed. */
let shownGroups = [];

/** What a group's state means, for the cell's tooltip. */
const GROUP_STATE_HELP = {
  Stable: 'every member has its partitions and is consuming',
  PreparingRebalance: 'members are joining or leaving: consumption pauses until the partitions are reassigned',
  CompletingRebalance: 'waiting for the group leader to assign the partitions',
  Empty: 'no consumer is connected; the committed offsets are kept',
  Dead: 'the group is being removed',
};

function showConsumerGroups(groups) {
  shownGroups = groups;
  const section = document.getElementById('consumer-groups-section');
  section.hidden = groups.length === 0;
  // A redraw replaces the buttons: the one that had the focus gets it back.
  const focused = document.activeElement?.closest?.('#consumer-groups')
    ? document.activeElement.dataset.key
    : undefined;
  const rows = groups.flatMap(groupRows);
  document.querySelector('#consumer-groups tbody').replaceChildren(...rows);
  if (focused !== undefined)
    [...document.querySelectorAll('#consumer-groups button')].find((b) => b.dataset.key === focused)?.focus();
}

/** A group's rows: one per topic it committed offsets in (each followed by its partitions when expanded). */
function groupRows(g) {
  const topics = new Map();
  for (const p of g.partitions) {
    const list = topics.get(p.topic) ?? [];
    list.push(p);
    topics.set(p.topic, list);
  }
  const state = el('td', {
    class: `group-state state-${g.state ?? 'unknown'}`,
    text: g.state ?? 'unknown',
    title:
      g.state === null
        ? 'Kappa’s Kafka listener is not running in this process: these offsets were read from disk'
        : (GROUP_STATE_HELP[g.state] ?? ''),
  });
  const members = el('td', {
    text: String(g.members.length),
    title: g.members.map((m) => `${m.clientId} (${m.clientHost})`).join('\n') || 'no consumer connected',
  });
  if (topics.size === 0)
    return [
      el(
        'tr',
        { 'data-group': g.groupId },
        el('td', { text: g.groupId }),
        state,
        members,
        el('td', { class: 'muted', text: 'no offsets committed yet' }),
        el('td', { text: '–' }),
        el('td', { text: '–' }),
      ),
    ];
  return [...topics].flatMap(([topic, partitions], i) => {
    const key = `${g.groupId}\u0000${topic}`;
    const open = expandedGroupTopics.has(key);
    const toggle = el('button', {
      type: 'button',
      class: 'expand',
      'data-key': key,
      'aria-expanded': String(open),
      title: open ? 'Hide the partitions' : 'Show the partitions',
      text: `${open ? '▾' : '▸'} ${g.groupId}`,
      onclick: () => {
        if (expandedGroupTopics.has(key)) expandedGroupTopics.delete(key);
        else expandedGroupTopics.add(key);
        showConsumerGroups(shownGroups);
      },
    });
    const lag = partitions.reduce((sum, p) => sum + p.lag, 0);
    const row = el(
      'tr',
      { 'data-group': g.groupId, 'data-topic': topic },
      el('td', {}, toggle),
      i === 0 ? state : el('td', { text: '' }),
      i === 0 ? members : el('td', { text: '' }),
      el('td', { text: topic }),
      el('td', { text: String(partitions.length) }),
      el('td', { class: 'group-lag', text: fmt(lag) }),
    );
    return open ? [row, partitionsRow(g, topic, partitions)] : [row];
  });
}

/** The partitions of one group's topic: committed offset, log end, lag and owner. */
function partitionsRow(g, topic, partitions) {
  const table = el(
    'table',
    { class: 'group-partitions', 'aria-label': `partitions of ${topic} read by group ${g.groupId}` },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...['Partition', 'Committed offset', 'Log end', 'Lag', 'Consumer'].map((h) =>
          el('th', { scope: 'col', text: h }),
        ),
      ),
    ),
    el(
      'tbody',
      {},
      ...partitions.map((p) =>
        el(
          'tr',
          { 'data-partition': String(p.partition) },
          el('td', { text: String(p.partition) }),
          el('td', { text: String(p.committedOffset) }),
          el('td', { text: String(p.logEndOffset) }),
          el('td', { text: fmt(p.lag) }),
          el('td', { text: p.owner === null ? '–' : `${p.owner.clientId} (${p.owner.clientHost})` }),
        ),
      ),
    ),
  );
  return el('tr', { class: 'partitions-of' }, el('td', { colspan: '6' }, table));
}
