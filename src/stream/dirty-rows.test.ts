import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KeyValue } from './dsl.ts';
import { DirtyRows } from './dirty-rows.ts';

function row(key: KeyValue[]): { key: KeyValue[]; state: unknown[] } {
  return { key, state: [0] };
}

test('finds rows by their key values at any depth, telling 1 from "1" and null from "null", and 0 from nothing but -0', () => {
  for (const keys of [
    [[1], ['1'], [null], ['null'], [0], [-0]],
    [
      [1, 'a'],
      ['1', 'a'],
      [1, 'b'],
      [null, null],
      [0, 'a'],
      [-0, 'a'],
    ],
  ] as KeyValue[][][]) {
    const rows = new DirtyRows();
    // JSON.stringify writes -0 as 0: the same row, as SQL has it.
    const distinct = new Map(keys.map((k) => [JSON.stringify(k.map((v) => [typeof v, v])), k]));
    for (const k of distinct.values()) {
      assert.equal(rows.get(k, k.length), undefined);
      rows.insert(k, k.length, row(k));
    }
    assert.equal(rows.size, distinct.size);
    for (const k of distinct.values()) assert.deepEqual(rows.get(k, k.length)?.key, k);
    assert.deepEqual(
      new Set(rows.values().map((r) => JSON.stringify(r.key))),
      new Set([...distinct.values()].map((k) => JSON.stringify(k))),
    );
  }
});

test('keeps the single row of a key with no values', () => {
  const rows = new DirtyRows();
  rows.insert([], 0, row([]));
  assert.deepEqual(rows.get([], 0)?.key, []);
  assert.equal(rows.values().length, 1);
});

test('refuses rows of different key lengths in one task', () => {
  const rows = new DirtyRows();
  rows.insert(['a'], 1, row(['a']));
  assert.throws(() => rows.insert(['a', 'b'], 2, row(['a', 'b'])), /invariant/);
});
