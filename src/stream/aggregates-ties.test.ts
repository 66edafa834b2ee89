/**
 * first() and last() pick by (event time, partition, offset): the fold of one task and the store's
 * merge of deltas from tasks of different partitions agree on that order, so a row with equal event
 * times across partitions is the same whatever order the deltas are merged in. A table laid out by
 * an older Kappa (value and time only) still merges by time alone.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import { openFileLog } from '../log/index.ts';
import { Type } from '../schema/index.ts';
import type { VersionTable } from '../view/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { createTableSql, upsertSql } from '../view/sqlite/sql.ts';
import { AggInputs, type Aggregate, first, last } from './aggregates.ts';
import { defineApp, from, topic, view } from './dsl.ts';
import { Engine } from './engine.ts';

interface Event {
  value: string;
  timeMs: number;
  partition: number;
  offset: number;
}

const T = 1_000_000;
const quiet = { info() {}, warn() {} };

async function until<V>(what: string, get: () => Promise<V | undefined>): Promise<V> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two devices on partitions 0 and 1 read at the same times; partition 2 has one earlier reading. */
const EVENTS: Event[] = [
  { value: 'p0@T', timeMs: T, partition: 0, offset: 0 },
  { value: 'p0@T+1', timeMs: T + 1, partition: 0, offset: 1 },
  { value: 'p0@T+1 again', timeMs: T + 1, partition: 0, offset: 2 },
  { value: 'p1@T', timeMs: T, partition: 1, offset: 0 },
  { value: 'p1@T+1', timeMs: T + 1, partition: 1, offset: 1 },
  { value: 'p2@T-1', timeMs: T - 1, partition: 2, offset: 0 },
  { value: 'p2@T', timeMs: T, partition: 2, offset: 1 },
];

/** A task's delta: the events of one partition, folded in log order. */
function fold(agg: Aggregate<string>, events: readonly Event[]): unknown[] {
  const state = new Array<unknown>(agg.stateColumns('x').length);
  agg.init(state, 0);
  const inputs = new AggInputs(1);
  for (const e of events) {
    agg.prepare(state, 0, e.value, inputs, 0);
    agg.apply(state, 0, inputs, 0, e.timeMs, e.partition, e.offset);
  }
  return state;
}

function table(agg: Aggregate<string>, version: number): VersionTable {
  return {
    name: 'v',
    version,
    fingerprint: 'f',
    keyColumns: [{ name: 'k', type: 'TEXT' }],
    stateColumns: agg.stateColumns('x'),
    outputColumns: [agg.outputColumn('x')],
  };
}

/** Every order of `items`. */
function orders<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, i) => orders([...items.slice(0, i), ...items.slice(i + 1)]).map((o) => [item, ...o]));
}

/** The row after upserting `deltas` in order. */
function merged(def: VersionTable, deltas: readonly unknown[][]): unknown {
  const db = new Database(':memory:');
  try {
    db.exec(createTableSql(def));
    const upsert = db.prepare(upsertSql(def));
    for (const d of deltas) upsert.run(['k', ...d]);
    return db.prepare('SELECT x FROM v__v1').get();
  } finally {
    db.close();
  }
}

/** last() as an older Kappa made it: value and time, ties to the delta merged last. */
function oldLast<T>(fn: (value: T) => string | number): Aggregate<T> {
  return {
    kind: 'last',
    signature: `last(${fn.toString()})`,
    stateColumns: (name) => [
      { name, type: 'ANY', merge: { kind: 'latest', by: `${name}__time` } },
      { name: `${name}__time`, type: 'INTEGER', merge: { kind: 'max' } },
    ],
    outputColumn: (name) => ({ name, sql: `"${name}"` }),
    init: (state, slot) => {
      state[slot] = null;
      state[slot + 1] = null;
    },
    prepare: (_state, _slot, value, inputs, i) => {
      inputs.any[i] = fn(value);
    },
    apply: (state, slot, inputs, i, timeMs) => {
      const prev = state[slot + 1] as number | null;
      if (prev === null || timeMs >= prev) {
        state[slot] = inputs.any[i];
        state[slot + 1] = timeMs;
      }
    },
  };
}

describe('first() and last() break event-time ties by partition and offset', () => {
  for (const [agg, expected] of [
    [last<string>((v) => v), 'p1@T+1'],
    [first<string>((v) => v), 'p2@T-1'],
  ] as const) {
    test(`${agg.kind}(): one task's fold, and the store's merge of every order and grouping of deltas`, () => {
      const byPartition = [0, 1, 2].map((p) => EVENTS.filter((e) => e.partition === p));
      assert.equal(
        fold(
          agg,
          EVENTS.slice().sort((a, b) => a.timeMs - b.timeMs),
        )[0],
        expected,
      );
      const def = table(agg, 1);
      // One delta per partition, merged in every order.
      for (const order of orders(byPartition)) {
        assert.deepEqual(
          merged(
            def,
            order.map((events) => fold(agg, events)),
          ),
          { x: expected },
        );
      }
      // A partition flushed event by event (a live task), interleaved with the others in every order.
      const single = EVENTS.map((e) => fold(agg, [e]));
      for (const order of orders([0, 1, 3, 4, 5, 6]))
        assert.deepEqual(merged(def, [single[2], ...order.map((i) => single[i])]), { x: expected });
    });
  }

  test('the last event of a tie within one partition is the one with the greater offset', () => {
    const agg = last<string>((v) => v);
    const p0 = EVENTS.filter((e) => e.partition === 0);
    assert.equal(fold(agg, p0)[0], 'p0@T+1 again');
    const def = table(agg, 1);
    assert.deepEqual(merged(def, [fold(agg, [p0[2]]), fold(agg, [p0[1]])]), { x: 'p0@T+1 again' });
    assert.equal(
      fold(
        first<string>((v) => v),
        [p0[1], p0[2]],
      )[0],
      'p0@T+1',
    );
  });

  test('the signature names the tie-break state, so views using first() or last() are rebuilt on upgrade', () => {
    assert.match(last<string>((v) => v).signature, /^last\(.*\) by time,partition,offset$/);
    assert.deepEqual(
      first<string>((v) => v)
        .stateColumns('x')
        .map((c) => c.name),
      ['x', 'x__time', 'x__part', 'x__offset'],
    );
  });

  test('a table without the tie-break columns (an older version) merges by time alone, as before', () => {
    const agg = last<string>((v) => v);
    const def = { ...table(agg, 1), stateColumns: agg.stateColumns('x').slice(0, 2) };
    const delta = (value: string, timeMs: number): unknown[] => [value, timeMs];
    assert.deepEqual(merged(def, [delta('a', T), delta('b', T), delta('c', T - 1)]), { x: 'b' });
  });

  test('a stored row without a tie-break (NULL) loses a tie to the delta for last() and keeps it for first()', () => {
    for (const [agg, expected] of [
      [last<string>((v) => v), 'delta'],
      [first<string>((v) => v), 'stored'],
    ] as const) {
      const def = table(agg, 1);
      const stored = ['stored', T, null, null];
      assert.deepEqual(merged(def, [stored, ['delta', T, 0, 5]]), { x: expected });
    }
  });

  test(
    'a data dir whose view was built with the old last() still starts: it serves on, and the view is rebuilt',
    { timeout: 120_000 },
    async (t) => {
      const dir = tempDir(t, 'kappa-ties-upgrade-');
      const log = await openFileLog({ dir, logger: quiet });
      defer(t, () => log.close());
      const store = await openSqliteStore({ path: join(dir, 'views.db') });
      defer(t, () => store.close());
      await log.createTopic('readings', { partitions: 2 });
      const TICKS = 50;
      for (let k = 0; k < TICKS; k++)
        await log.append(
          'readings',
          [0, 1].map((p) => ({ partition: p, key: `d${p}`, value: JSON.stringify({ c: 10 * p + k, ts: T + k }) })),
        );
      const Reading = Type.Object({ c: Type.Integer(), ts: Type.Integer() });
      const appWith = (agg: Aggregate<{ c: number; ts: number }>) => {
        const readings = topic('readings', { partitions: 2, schema: Reading, time: (r) => r.ts });
        const status = from(readings)
          .groupBy(() => ({ site: 's1' }))
          .aggregate({ last_c: agg });
        return defineApp({ topics: [readings], views: [view('site_status', status)] });
      };
      const shown = async () =>
        (await store.query('SELECT last_c FROM site_status').catch(() => ({ rows: [] }))).rows[0]?.last_c;
      const committed = (engine: Engine, version: number): number =>
        engine
          .status()
          .filter((s) => s.version === version)
          .reduce((n, s) => n + s.committedOffset, 0);

      const old = new Engine({ log, store, control: store, app: appWith(oldLast((r) => r.c)), logger: quiet });
      await old.start();
      await until('version 1 to fold every reading', async () => (committed(old, 1) === 2 * TICKS ? true : undefined));
      await old.stop();
      assert.equal((await store.definition('site_status', 1))?.stateColumns.length, 2);

      const engine = new Engine({ log, store, control: store, app: appWith(last((r) => r.c)), logger: quiet });
      await engine.start();
      defer(t, () => engine.stop());
      assert.notEqual(await shown(), undefined, 'version 1 still serves');
      await until('version 2 to go live', async () =>
        (await store.versions()).find((v) => v.name === 'site_status' && v.version === 2 && v.state === 'live'),
      );
      // Complete as soon as it is live; the tie at the last tick goes to partition 1.
      assert.equal(await shown(), 10 + TICKS - 1);
      assert.equal((await store.definition('site_status', 2))?.stateColumns.length, 4);
    },
  );
});
