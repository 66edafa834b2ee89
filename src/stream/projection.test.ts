import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { aggregate, avg, count, last, sum } from './aggregates.ts';
import { from, topic, view } from './dsl.ts';
import { fieldsRead, viewFields } from './projection.ts';

const names = (f: unknown): string[] | null => {
  const r = fieldsRead(f);
  return r === null ? null : [...r].sort();
};

test('fieldsRead names the plain property reads of the parameter', () => {
  assert.deepEqual(names((s: { region: string }) => s.region), ['region']);
  assert.deepEqual(names((s: { region: string; ts: number }) => ({ region: s.region, day: Math.floor(s.ts / 864e5) })), ['region', 'ts']);
  assert.deepEqual(names(function (s: { a: number; b: number }) {
    return s.a + s.b;
  }), ['a', 'b']);
  assert.deepEqual(names((s: { a: number }) => s.a.toFixed(2)), ['a']);
  assert.deepEqual(names((s: { a?: number }) => s?.a), ['a']);
  assert.deepEqual(names(({ a, b }: { a: number; b: number }) => a + b), ['a', 'b']);
  assert.deepEqual(names(() => 1), []);
});

test('fieldsRead gives up whenever the value escapes or is read another way', () => {
  const f = (x: unknown): unknown => x;
  for (const fn of [
    (s: unknown) => f(s),
    (s: Record<string, unknown>) => s['a'],
    (s: Record<string, unknown>) => ({ ...s }),
    new Function('s', 'return { ... s }'),
    (s: Record<string, unknown>) => Object.keys(s),
    // eslint-disable-next-line no-prototype-builtins
    (s: { hasOwnProperty(k: string): boolean }) => s.hasOwnProperty('a'),
    (s: { a: string }) => 's' + s.a,
    (s: number[]) => s.map((s) => s * 2),
    (s: { a: number }) => {
      const { a } = s;
      return a;
    },
    function (this: unknown, s: { a: number }) {
      return this ?? s.a;
    },
    ({ a: renamed }: { a: number }) => renamed,
    'not a function',
  ]) {
    assert.equal(fieldsRead(fn), null, String(fn));
  }
});

test('viewFields: source time, steps before the first map, the key and the aggregates; null when any of them cannot be told', () => {
  const Sale = Type.Object({ region: Type.String(), amount: Type.Number(), ts: Type.Integer(), sku: Type.String(), orderId: Type.String() });
  const sales = topic('sales', { schema: Sale, time: (s) => s.ts });
  const fields = (v: ReturnType<typeof view>): string[] | null => {
    const r = viewFields(v);
    return r === null ? null : [...r].sort();
  };
  assert.deepEqual(fields(view('a', from(sales).filter((s) => s.amount > 0).groupBy((s) => ({ region: s.region })).aggregate({ total: sum((s) => s.amount), n: count(), last: last((s) => s.sku) }))), ['amount', 'region', 'sku', 'ts']);
  // After a map, later functions see the mapped value: only the map's reads count.
  assert.deepEqual(fields(view('b', from(sales).map((s) => ({ r: s.region, x: 1 })).groupBy((m) => ({ r: m.r })).aggregate({ n: count(), x: avg((m) => m.x) }))), ['region', 'ts']);
  assert.equal(fields(view('c', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ custom: aggregate({ init: () => 0, add: (a: number, s) => a + s.amount, merge: (a, b) => a + b }) }))), null);
});
