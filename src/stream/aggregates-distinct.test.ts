/**
 * countDistinct(), exact and approximate: what a task folds, what the store's merge makes of deltas
 * in any grouping and order (through a real SQLite store, and the count its public view shows), the
 * exact form's limit, the HyperLogLog's error over cardinalities from 10 to 1M, and that merging
 * sketches is exact.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import type { VersionTable } from '../view/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { AggInputs, type Aggregate } from './aggregates.ts';
import { countDistinct, mergeHll, registersOf, sketchOf } from './aggregates-distinct.ts';
import { seededRandom } from '../random.ts';

type Merge = (stored: unknown, delta: unknown) => unknown;

/** A task's delta: `values` folded in order (prepare, then apply, as the plan does). */
function fold<T>(agg: Aggregate<T>, values: readonly T[]): unknown {
  const state: unknown[] = [null];
  agg.init(state, 0);
  const inputs = new AggInputs(1);
  values.forEach((v, i) => {
    agg.prepare(state, 0, v, inputs, 0);
    agg.apply(state, 0, inputs, 0, 0, 0, i);
  });
  return state[0];
}

/** What the store does with deltas of one row, in order: the first stored as is, the others merged in. */
function storeMerge<T>(agg: Aggregate<T>, deltas: unknown[]): unknown {
  const merge = (agg.stateColumns('x')[0].merge as { merge: Merge }).merge;
  let stored: unknown = null;
  for (const d of deltas) stored = JSON.parse(JSON.stringify(stored === null ? d : merge(stored, d)));
  return stored;
}

const countOf = (state: unknown): number | null => {
  const n = (state as { n: string | null }).n;
  return n === null ? null : Number(n);
};

/** Splits `values` into `parts` deltas at random points. */
function split<T>(values: readonly T[], parts: number, seed: number): T[][] {
  const random = seededRandom(seed);
  const cuts = Array.from({ length: parts - 1 }, () => Math.floor(random() * values.length)).sort((a, b) => a - b);
  return [0, ...cuts].map((from, k) => values.slice(from, k < cuts.length ? cuts[k] : values.length));
}

/** Rows through a real SQLite store: one delta per flush, then the view's count for each key. */
async function throughStore<T>(t: test.TestContext, agg: Aggregate<T>, deltas: [string, unknown][]): Promise<unknown> {
  const dir = tempDir(t, 'kappa-distinct-');
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  defer(t, () => store.close());
  const def: VersionTable = {
    name: 'v',
    version: 1,
    fingerprint: 'f',
    keyColumns: [{ name: 'k', type: 'TEXT' }],
    stateColumns: agg.stateColumns('x'),
    outputColumns: [agg.outputColumn('x')],
  };
  await store.ensureVersion(def);
  for (const [k, state] of deltas) await store.flush('v', 1, [{ key: [k], state: [state] }], []);
  await store.makeLive('v', 1);
  return (await store.query('SELECT k, x FROM v ORDER BY k')).rows;
}

describe('countDistinct(), exact', () => {
  const agg = countDistinct<unknown>((v) => v);

  test('counts each string and number once, booleans as 1 and 0, skips null; 1 and "1" differ', () => {
    const state = fold(agg, ['a', 'b', 'a', 1, '1', 1.5, true, 1, false, 0, -0, null, null, 'b']);
    assert.deepEqual(state, { n: '0000000000000006', v: [0, 1, 1.5, '1', 'a', 'b'] });
    assert.deepEqual(fold(agg, [null]), { n: '0000000000000000', v: [] });
  });

  test('a value it cannot count is a dead-letter reason, and changes nothing', () => {
    for (const [bad, shown] of [
      [undefined, 'undefined'],
      [Number.NaN, 'NaN'],
      [Infinity, 'Infinity'],
      [{ id: 1 }, 'an object {"id":1}'],
      [[1], 'an array [1]'],
      [5n, 'the bigint 5n'],
    ] as const) {
      const state: unknown[] = [null];
      agg.init(state, 0);
      assert.throws(
        () => agg.prepare(state, 0, bad, new AggInputs(1), 0),
        (err: Error) => err instanceof TypeError && err.message.startsWith(`countDistinct() got ${shown};`),
      );
      assert.deepEqual(state[0], { n: '0000000000000000', v: [] });
    }
  });

  test('deltas merged in any grouping and order give the count of the whole', () => {
    const random = seededRandom(4);
    const values = Array.from({ length: 3000 }, () =>
      random() < 0.5 ? `u${Math.floor(random() * 700)}` : Math.floor(random() * 700),
    );
    const whole = fold(agg, values);
    assert.equal(countOf(whole), new Set(values).size);
    for (const parts of [2, 5, 40]) {
      const deltas = split(values, parts, parts).map((vs) => fold(agg, vs));
      assert.deepEqual(storeMerge(agg, deltas), whole);
      assert.deepEqual(storeMerge(agg, deltas.reverse()), whole);
    }
  });

  test('past its limit a row holds a marker and shows NULL, however its deltas were split', async (t) => {
    const limited = countDistinct<number>((v) => v, { limit: 10 });
    const ten = Array.from({ length: 10 }, (_, i) => i);
    assert.equal(countOf(fold(limited, [...ten, 3, 4])), 10);
    assert.deepEqual(fold(limited, [...ten, 10]), { n: null, limit: 10 });
    // Two deltas of 6 and 5 values, each under the limit; their union is over it.
    const over = [fold(limited, [0, 1, 2, 3, 4, 5]), fold(limited, [5, 6, 7, 8, 9, 10])];
    assert.deepEqual(storeMerge(limited, over), { n: null, limit: 10 });
    assert.deepEqual(storeMerge(limited, [...over, fold(limited, [1])]), { n: null, limit: 10 });
    const rows = await throughStore(t, limited, [
      ['a', over[0]],
      ['b', fold(limited, [1, 2])],
      ['a', over[1]],
      ['b', fold(limited, [2, 3])],
    ]);
    assert.deepEqual(rows, [
      { k: 'a', x: null },
      { k: 'b', x: 3 },
    ]);
  });

  test('options are checked when the view is declared', () => {
    assert.throws(() => countDistinct((v) => v, { limit: 0 }), /limit must be a whole number from 1 to 100000, not 0/);
    assert.throws(() => countDistinct((v) => v, { limit: 1e6 }), /limit must be/);
    assert.throws(() => countDistinct((v) => v, { precision: 12 }), /add approximate: true/);
    assert.throws(() => countDistinct((v) => v, { approximate: true, limit: 5 }), /needs none/);
    assert.throws(() => countDistinct((v) => v, { approximate: true, precision: 17 }), /from 4 to 16, not 17/);
    assert.notEqual(countDistinct((v) => v).signature, countDistinct((v) => v, { limit: 5 }).signature);
  });
});

describe('countDistinct(), approximate (HyperLogLog)', () => {
  for (const p of [14, 10]) {
    test(`p=${p}: the estimate is within 3 standard errors at 10, 1k, 100k and 1M values`, () => {
      const agg = countDistinct<string>((v) => v, { approximate: true, precision: p });
      const se = 1.04 / Math.sqrt(2 ** p);
      for (const n of [10, 1000, 100_000, 1_000_000]) {
        const values = Array.from({ length: n }, (_, i) => `user-${p}-${i}`);
        // Each value twice: repeats change nothing.
        const got = countOf(fold(agg, [...values, ...values.slice(0, n >> 1)]))!;
        assert.ok(Math.abs(got - n) <= 3 * se * n, `${got} for ${n} distinct values (3 SE: ${3 * se * n})`);
        if (n === 10) assert.equal(got, 10, 'small counts are exact in practice');
      }
    });
  }

  test('the merge of two sketches is the sketch of the union: disjoint, overlapping, in any order', () => {
    const agg = countDistinct<string>((v) => v, { approximate: true, precision: 12 });
    const all = Array.from({ length: 40_000 }, (_, i) => `k${i}`);
    const whole = registersOf(fold(agg, all) as never, 4096);
    for (const [a, b] of [
      [all.slice(0, 20_000), all.slice(20_000)],
      [all.slice(0, 30_000), all.slice(10_000)],
      [all.slice(0, 100), all],
    ]) {
      const merged = storeMerge(agg, [fold(agg, a), fold(agg, b)]);
      assert.deepEqual(registersOf(merged as never, 4096), whole);
      assert.deepEqual(storeMerge(agg, [fold(agg, b), fold(agg, a)]), merged);
      assert.equal(countOf(merged), countOf(sketchOf(whole, 12)));
    }
  });

  test('the count is the same from every form of a sketch: a task delta, sparse, dense (base64)', () => {
    const agg = countDistinct<number>((v) => v, { approximate: true, precision: 8 });
    for (const n of [0, 5, 15, 16, 17, 300]) {
      const delta = fold(
        agg,
        Array.from({ length: n }, (_, i) => i),
      ) as { n: string };
      const stored = storeMerge(agg, [delta, fold(agg, [])]) as Record<string, unknown>;
      assert.equal(stored.n, delta.n, `${n} values`);
      assert.equal('h' in stored, false);
      // Sparse while at most m/16 = 16 registers are set.
      if (n <= 16 || n === 300) assert.ok(n <= 16 ? 's' in stored : 'r' in stored, `${n}: ${JSON.stringify(stored)}`);
      assert.deepEqual(mergeHll(stored as never, stored as never, 8), stored);
    }
  });

  test('deltas from many tasks give the view the same count as one fold', async (t) => {
    const agg = countDistinct<string>((v) => v, { approximate: true });
    const random = seededRandom(11);
    const values = Array.from({ length: 20_000 }, () => `s${Math.floor(random() * 5000)}`);
    const expected = countOf(fold(agg, values));
    const deltas = split(values, 30, 1).map((vs, i): [string, unknown] => [i % 2 === 0 ? 'a' : 'b', fold(agg, vs)]);
    const rows = (await throughStore(t, agg, [
      ...deltas.map(([, d]): [string, unknown] => ['a', d]),
      ...deltas.map(([, d]): [string, unknown] => ['b', d]).reverse(),
    ])) as { x: number }[];
    assert.deepEqual(
      rows.map((r) => r.x),
      [expected, expected],
    );
    assert.ok(Math.abs(expected! - new Set(values).size) < 100, `${expected} for ${new Set(values).size}`);
  });
});

test("countDistinct(): folding an event into a copy of a row leaves the row's state as it was", () => {
  // The plan folds into a shallow copy of a row first when the view has a custom aggregate, and may
  // then send the event to the dead-letter topic: the row must not hold its value.
  for (const agg of [
    countDistinct<string>((v) => v),
    countDistinct<string>((v) => v, { limit: 2 }),
    countDistinct<string>((v) => v, { approximate: true, precision: 4 }),
  ]) {
    const state: unknown[] = [null];
    agg.init(state, 0);
    const inputs = new AggInputs(1);
    for (const v of ['a', 'b']) {
      agg.prepare(state, 0, v, inputs, 0);
      agg.apply(state, 0, inputs, 0, 0, 0, 0);
    }
    const before = JSON.stringify(state[0]);
    for (const v of ['c', 'd', 'e', 'f', 'g', 'h']) {
      agg.prepare(state, 0, v, inputs, 0);
      const copy = state.slice();
      agg.apply(copy, 0, inputs, 0, 0, 0, 0);
      assert.notEqual(JSON.stringify(copy[0]), before, `${agg.signature}: the copy took ${v}`);
      assert.equal(JSON.stringify(state[0]), before, `${agg.signature}: the row did not take ${v}`);
      // The copy is folded into further, in place, as the plan does for a second output of one event.
      agg.apply(copy, 0, inputs, 0, 0, 0, 0);
    }
  }
});
