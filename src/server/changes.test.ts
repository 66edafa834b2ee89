/**
 * The change hub's cost: nothing when a view has no subscriber, a primary-key lookup per changed
 * row when it has one, and never the event loop held for a whole large flush. (Reading every
 * changed row back through the public view, 200 keys per full scan, chained as microtasks, held
 * `kappa start`'s event loop for minutes during a backfill: no HTTP answer, no worker message, no
 * timer, so views that depended on them looked stalled.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Engine, ViewChange } from '../stream/index.ts';
import { type VersionTable, type ViewStore } from '../view/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { type ChangeEvent, ChangeHub } from './changes.ts';

const DEF: VersionTable = {
  name: 'per_minute',
  version: 1,
  fingerprint: 'fp',
  keyColumns: [
    { name: 'region', type: 'TEXT' },
    { name: 'window_start', type: 'INTEGER' },
  ],
  stateColumns: [{ name: 'n', type: 'INTEGER', merge: { kind: 'add' } }],
  outputColumns: [{ name: 'n', sql: 'n' }],
};

/**
 * A store holding `rows` rows, an engine stand-in whose changes the test emits, a hub over both,
 * and `subscribe`, which subscribes to the view and collects its events.
 */
async function setUp(
  t: { after(fn: () => unknown): void },
  rows: number,
): Promise<{
  store: ViewStore;
  hub: ChangeHub;
  emit: (c: ViewChange) => void;
  lookups: () => number;
  subscribe: (lastEventId: string | null) => { events: ChangeEvent[]; off: () => void };
}> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-changes-'));
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.ensureVersion(DEF);
  await store.flush(
    'per_minute',
    1,
    Array.from({ length: rows }, (_, i) => ({ key: ['eu', i * 60_000], state: [1] })),
    [],
  );
  let keysLookedUp = 0;
  const rowsByKey = store.rowsByKey.bind(store);
  store.rowsByKey = (name, version, keys) => {
    keysLookedUp += keys.length;
    return rowsByKey(name, version, keys);
  };
  let listener: ((c: ViewChange) => void) | null = null;
  const engine = {
    onChange: (l: (c: ViewChange) => void) => ((listener = l), () => (listener = null)),
  } as unknown as Engine;
  const hub = new ChangeHub(engine, store, (err) => assert.fail(err));
  t.after(() => hub.close());
  const subscribe = (lastEventId: string | null) => {
    const events: ChangeEvent[] = [];
    return { events, off: hub.subscribe('per_minute', lastEventId, (e) => events.push(e)) };
  };
  return { store, hub, emit: (c) => listener!(c), lookups: () => keysLookedUp, subscribe };
}

const changeOf = (keys: number): ViewChange => ({
  kind: 'rows',
  view: 'per_minute',
  version: 1,
  keyNames: ['region', 'window_start'],
  keys: Array.from({ length: keys }, (_, i) => ['eu', i * 60_000]),
});
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test(
  'a flush of a view nobody subscribes to reads nothing back, and a later subscriber with an old id is told to reload',
  { timeout: 30_000 },
  async (t) => {
    const { emit, lookups, subscribe } = await setUp(t, 100);
    const { events: first, off } = subscribe(null);
    emit(changeOf(3));
    await settle();
    off();
    assert.equal(first.length, 3);
    assert.equal(lookups(), 3);
    for (let i = 0; i < 50; i++) emit(changeOf(100));
    await settle();
    assert.equal(lookups(), 3, 'no row was read back for a view without subscribers');
    const { events: late } = subscribe(first[2].id);
    assert.deepEqual(
      late.map((e) => e.event),
      ['reset'],
      'the changes missed are not kept, so the client reads the view again',
    );
  },
);

test(
  'a subscriber gets every changed row by primary key, while timers and I/O keep running between steps',
  { timeout: 30_000 },
  async (t) => {
    const { emit, lookups, subscribe } = await setUp(t, 20_000);
    const { events } = subscribe(null);
    // A timer due at once must run before the whole 20,000-row change has been read back.
    let timerAt = -1;
    setTimeout(() => (timerAt = events.length), 0);
    emit(changeOf(20_000));
    while (events.length < 20_000) await settle();
    assert.equal(lookups(), 20_000);
    assert.ok(
      timerAt >= 0 && timerAt < 20_000,
      `a timer waited for the whole read-back (it ran after ${timerAt} events)`,
    );
    assert.deepEqual(JSON.parse(events[19_999].data), {
      view: 'per_minute',
      version: 1,
      row: { region: 'eu', window_start: 19_999 * 60_000, n: 1 },
    });
  },
);

test(
  'a changed key that has no row any more is told as a delete event with the key by column name',
  { timeout: 30_000 },
  async (t) => {
    const { emit, subscribe } = await setUp(t, 2);
    const { events } = subscribe(null);
    // Key 1 exists; key 5 does not (a session merged into a wider one, say).
    emit({
      kind: 'rows',
      view: 'per_minute',
      version: 1,
      keyNames: ['region'],
      keys: [
        ['eu', 60_000],
        ['eu', 300_000],
      ],
    });
    await settle();
    assert.deepEqual(
      events.map((e) => [e.event, JSON.parse(e.data)]),
      [
        ['row', { view: 'per_minute', version: 1, row: { region: 'eu', window_start: 60_000, n: 1 } }],
        ['delete', { view: 'per_minute', version: 1, key: { region: 'eu', window_start: 300_000 } }],
      ],
    );
  },
);
