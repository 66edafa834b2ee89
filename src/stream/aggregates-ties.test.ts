/**
 * first() and last() pick by (event time, partition, offset): the fold of one task and the store's
 * merge of deltas from tasks of different partitions agree on that order, so a row with equal event
 * times across partitions is the same whatever order the deltas are merged in. A table laid out by
 * an older Kappa (value and time only) still merges by time alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { VersionTable } from '../view/index.ts';
import { createTableSql, upsertSql } from '../view/sqlite/sql.ts';
import { AggInputs, type Aggregate, first, last } from './aggregates.ts';

interface Event {
  value: string;
  timeMs: number;
  partition: number;
  offset: number;
}

const T = 1_000_000;

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
});
