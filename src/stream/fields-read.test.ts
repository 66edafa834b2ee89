import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aggregate, avg, count, first, last, max, min, sum } from './aggregates.ts';
import { countDistinct } from './aggregates-distinct.ts';
import { topN } from './aggregates-topn.ts';
import type { Op } from './dsl.ts';
import { extractorText, propertiesRead, sourceFieldsRead } from './fields-read.ts';

interface Sale {
  region: string;
  amount: number;
  ts: number;
  sku: string;
}
const text = (fn: (s: Sale) => unknown): string => fn.toString();
const read = (fn: (s: Sale) => unknown): string[] | null => {
  const found = propertiesRead(text(fn));
  return found === null ? null : [...found].sort();
};

describe('fields read by a pipeline (which properties of a record the decoder must make)', () => {
  test('member reads, in every function form, are found', () => {
    assert.deepEqual(
      read((s) => ({ region: s.region, day: Math.floor(s.ts / 86_400_000) })),
      ['region', 'ts'],
    );
    assert.deepEqual(
      read((s) => s?.amount ?? 0),
      ['amount'],
    );
    assert.deepEqual(
      read(function (s) {
        return s.sku.length > 3 && s.region !== 'eu';
      }),
      ['region', 'sku'],
    );
    assert.deepEqual(
      read(({ region, amount: a }) => region + a),
      ['amount', 'region'],
    );
    assert.deepEqual(
      read(() => 1),
      [],
    );
    // `other.s` is another object's property, not the parameter.
    const other = { s: 1 };
    assert.deepEqual(
      read((s) => other.s + s.amount),
      ['amount'],
    );
  });

  test('any other use of the value makes the answer unknown (the record is decoded whole)', () => {
    const keep: unknown[] = [];
    for (const fn of [
      (s: Sale) => s,
      (s: Sale) => ({ ...s, x: 1 }),
      (s: Sale) => ({ s }),
      (s: Sale) => JSON.stringify(s),
      (s: Sale) => s['region'],
      (s: Sale) => keep.push(s),
      // Shadowed (written as text: a bundler would rename the inner one).
      new Function('s', 'return [1].map((s) => s.region)') as (s: Sale) => unknown,
      (s: Sale) => Object.keys(s).length,
      ({ region, ...rest }: Sale) => region + JSON.stringify(rest),
      (s: Sale, t: Sale = s) => t.region,
      function () {
        // eslint-disable-next-line prefer-rest-params -- what the test is about
        return (arguments[0] as Sale).region;
      },
      function (s: Sale) {
        // eslint-disable-next-line prefer-rest-params -- what the test is about
        return (arguments[0] as Sale).region + s.sku;
      },
      ({ region: { length } }: { region: { length: number } }) => length,
    ] as ((s: Sale) => unknown)[])
      assert.equal(read(fn), null, fn.toString());
  });

  test("built-in aggregates' extractors are read from their signatures; custom and topN are not followed", () => {
    const e = (s: Sale): number => s.amount;
    for (const agg of [sum(e), avg(e), min(e), max(e), first(e), last(e), countDistinct(e)])
      assert.deepEqual([...propertiesRead(extractorText(agg)!)!], ['amount'], agg.kind);
    assert.deepEqual([...propertiesRead(extractorText(count())!)!], []);
    assert.equal(extractorText(topN(3, e)), null);
    assert.equal(extractorText(aggregate({ init: () => 0, add: (a: number) => a, merge: (a, b) => a + b })), null);
  });

  test('a chain: reads until a map makes a new value; filters, identity maps and casts pass it on', () => {
    const ops: Op[] = [
      { kind: 'filter', fn: (s) => (s as Sale).region !== 'x' },
      { kind: 'map', fn: (s) => s as Sale },
      { kind: 'map', fn: (s) => ({ a: (s as Sale).amount }) },
    ];
    const time = (s: never): number => (s as Sale).ts;
    const found = sourceFieldsRead({ time, ops, then: null });
    assert.deepEqual([...found!].sort(), ['amount', 'region', 'ts']);
    // No map: what comes next reads the record; `then: null` (written on whole) or an unknown function: all.
    const filterOnly = ops.slice(0, 2);
    assert.equal(sourceFieldsRead({ time: null, ops: filterOnly, then: null }), null);
    assert.equal(sourceFieldsRead({ time: null, ops: filterOnly, then: [null] }), null);
    assert.deepEqual([...sourceFieldsRead({ time: null, ops: filterOnly, then: [text((s) => s.sku)] })!].sort(), [
      'region',
      'sku',
    ]);
    // A join reads with its key and its function's first argument, and makes a new value.
    const join = (fn: (s: Sale, row: unknown) => unknown): Op =>
      ({ kind: 'join', key: (s: Sale) => s.sku, fn, left: false }) as unknown as Op;
    const joined = sourceFieldsRead({ time: null, ops: [join((s, row) => ({ row, r: s.region }))], then: null });
    assert.deepEqual([...joined!].sort(), ['region', 'sku']);
    assert.equal(sourceFieldsRead({ time: null, ops: [join((s, row) => ({ s, row }))], then: null }), null);
    // Stateful steps are not followed.
    const stateful = { kind: 'stateful', fn: () => [] } as unknown as Op;
    assert.equal(sourceFieldsRead({ time: null, ops: [stateful], then: [] }), null);
  });
});
