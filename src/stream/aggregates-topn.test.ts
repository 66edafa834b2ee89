/**
 * topN(): the n largest entries per row, ties by value, the same from one fold and from the store's
 * merge of deltas in any grouping and order; bad numbers and values are dead-letter reasons.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggInputs, type Aggregate } from './aggregates.ts';
import { TOP_N_MAX, topN } from './aggregates-topn.ts';
import { seededRandom } from '../random.ts';
import { type InferRow, Type, countDistinct, from, topN as kappaTopN, topic, view } from 'kappa';

interface Sale {
  sku: string | number | boolean | null;
  amount: number;
}

type Merge = (stored: unknown, delta: unknown) => unknown;

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

function storeMerge<T>(agg: Aggregate<T>, deltas: unknown[]): unknown {
  const merge = (agg.stateColumns('x')[0].merge as { merge: Merge }).merge;
  let stored: unknown = null;
  for (const d of deltas) stored = JSON.parse(JSON.stringify(stored === null ? d : merge(stored, d)));
  return stored;
}

const top3 = topN<Sale>(3, (s) => s.amount, { value: (s) => s.sku });

describe('topN()', () => {
  test('keeps the n largest, largest first; equal numbers by value, smaller first; every event is an entry', () => {
    const sales: Sale[] = [
      { sku: 'b', amount: 5 },
      { sku: 'a', amount: 9 },
      { sku: 'c', amount: 5 },
      { sku: 'a', amount: 5 },
      { sku: 'z', amount: 1 },
    ];
    assert.deepEqual(fold(top3, sales), [
      { by: 9, value: 'a' },
      { by: 5, value: 'a' },
      { by: 5, value: 'b' },
    ]);
    assert.deepEqual(fold(top3, [...sales, { sku: 'a', amount: 9 }]), [
      { by: 9, value: 'a' },
      { by: 9, value: 'a' },
      { by: 5, value: 'a' },
    ]);
    // Values of every kind, booleans as 1/0: null, then numbers, then strings.
    assert.deepEqual(
      fold(
        topN<Sale>(5, (s) => s.amount, { value: (s) => s.sku }),
        [
          { sku: 'x', amount: 1 },
          { sku: 2, amount: 1 },
          { sku: null, amount: 1 },
          { sku: true, amount: 1 },
          { sku: 'a', amount: -0 },
        ],
      ),
      [
        { by: 1, value: null },
        { by: 1, value: 1 },
        { by: 1, value: 2 },
        { by: 1, value: 'x' },
        { by: 0, value: 'a' },
      ],
    );
    assert.deepEqual(
      fold(
        topN<number>(2, (v) => v),
        [3, 8, 1, 8],
      ),
      [{ by: 8 }, { by: 8 }],
    );
  });

  test('deltas merged in any grouping and order give the list of one fold', () => {
    const random = seededRandom(7);
    const sales: Sale[] = Array.from({ length: 5000 }, () => ({
      sku: `s${Math.floor(random() * 30)}`,
      amount: Math.floor(random() * 200),
    }));
    for (const agg of [top3, topN<Sale>(50, (s) => s.amount, { value: (s) => s.sku })]) {
      const whole = fold(agg, sales);
      for (const parts of [2, 7, 100]) {
        const cuts = Array.from({ length: parts - 1 }, () => Math.floor(random() * sales.length)).sort((a, b) => a - b);
        const deltas = [0, ...cuts].map((from, k) =>
          fold(agg, sales.slice(from, k < cuts.length ? cuts[k] : sales.length)),
        );
        assert.deepEqual(storeMerge(agg, deltas), whole);
        assert.deepEqual(storeMerge(agg, deltas.reverse()), whole);
      }
    }
  });

  test("folding an event into a copy of a row leaves the row's list as it was", () => {
    // The plan folds into a shallow copy of a row first when the view has a custom aggregate.
    const state: unknown[] = [null];
    top3.init(state, 0);
    const inputs = new AggInputs(1);
    top3.prepare(state, 0, { sku: 'a', amount: 1 }, inputs, 0);
    const copy = state.slice();
    top3.apply(copy, 0, inputs, 0, 0, 0, 0);
    assert.deepEqual(state[0], []);
    top3.apply(state, 0, inputs, 0, 0, 0, 0);
    assert.deepEqual(state[0], [{ by: 1, value: 'a' }]);
  });

  test('a number or value it cannot take is a dead-letter reason', () => {
    for (const [sale, reason] of [
      [{ sku: 'a', amount: Number.NaN }, 'topN() got NaN as the number to rank by, not a finite number'],
      [{ sku: 'a', amount: '5' }, 'topN() got "5" as the number to rank by, not a finite number'],
      [{ sku: 'a' }, 'topN() got undefined as the number to rank by, not a finite number'],
      [{ sku: { id: 1 }, amount: 1 }, 'topN() got a value that is an object {"id":1}; it takes strings'],
    ] as const) {
      assert.throws(
        () => top3.prepare(null, 0, sale as unknown as Sale, new AggInputs(1), 0),
        (err: Error) => err instanceof TypeError && err.message.startsWith(reason),
      );
    }
  });

  test('n and the functions are checked when the view is declared', () => {
    for (const n of [0, 1.5, TOP_N_MAX + 1, Number.NaN])
      assert.throws(() => topN(n, (v: number) => v), /topN\(\) keeps 1 to 1000 entries per row/);
    assert.throws(() => topN(3, 'amount' as never), /takes a function/);
    assert.notEqual(topN(3, (v: number) => v).signature, topN(4, (v: number) => v).signature);
  });
});

// The column types a view's rows get, as a config imports the aggregates (from 'kappa').
type Equal<X, Y> = (<G>() => G extends X ? 1 : 2) extends <G>() => G extends Y ? 1 : 2 ? true : false;
const Bid = Type.Object({ auction: Type.String(), bidder: Type.String(), price: Type.Number() });
const bidsTopic = topic('bids', { partitions: 1, schema: Bid });
const bidsView = view(
  'by_auction',
  from(bidsTopic)
    .groupBy((b) => ({ auction: b.auction }))
    .aggregate({
      exact: countDistinct((b) => b.bidder),
      approx: countDistinct((b) => b.bidder, { approximate: true }),
      top: kappaTopN(3, (b) => b.price, { value: (b) => b.bidder }),
    }),
);
const _rowType: Equal<
  InferRow<typeof bidsView>,
  { auction: string; exact: number | null; approx: number; top: string }
> = true;

test('countDistinct is number | null exact (NULL past its limit) and number approximate; topN is JSON text', () => {
  assert.equal(_rowType, true);
  assert.deepEqual(Object.keys(bidsView.aggregation.aggregates), ['exact', 'approx', 'top']);
});
