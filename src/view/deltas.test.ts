/**
 * Deltas as rows or columns (./deltas.ts): a round trip keeps every value, numbers travel as
 * Float64Array, and a structured clone (what crosses to the engine's thread) keeps the columns.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  deltaColumns,
  deltaCount,
  deltaKeys,
  deltaRow,
  deltaRows,
  isDeltaColumns,
  keysBack,
  sortByKey,
} from './deltas.ts';
import type { DeltaColumns, RowDelta } from './types.ts';

const rows: RowDelta[] = [
  { key: ['eu', 2024], state: [10.5, 1, { tags: ['a'] }] },
  { key: [null, 2023], state: [-0, 2, null] },
  { key: ['us', 2024], state: [Number.POSITIVE_INFINITY, 3, null] },
];

test('rows to columns and back keep every value; a column of numbers only is a Float64Array', () => {
  const columns = deltaColumns(rows);
  assert.ok(isDeltaColumns(columns));
  assert.equal(deltaCount(columns), 3);
  assert.ok(Array.isArray(columns.keys[0]), 'strings and null stay an array');
  assert.ok(columns.keys[1] instanceof Float64Array);
  assert.ok(columns.states[0] instanceof Float64Array);
  assert.ok(Array.isArray(columns.states[2]), 'objects stay an array');
  assert.deepEqual(deltaRows(columns), rows);
  assert.ok(Object.is(deltaRow(columns, 1).state[0], -0), '-0 is kept');
  assert.deepEqual(deltaKeys(columns), [
    ['eu', 2024],
    [null, 2023],
    ['us', 2024],
  ]);
  assert.deepEqual(deltaRows(structuredClone(columns)), rows);
});

test('no rows stay an empty row list; rows are read as they are', () => {
  assert.deepEqual(deltaColumns([]), []);
  assert.equal(deltaRows(rows), rows);
  assert.equal(deltaCount(rows), 3);
  assert.deepEqual(deltaKeys(rows), deltaKeys(deltaColumns(rows)));
});

test("keysBack writes rows' changed keys into the columns they came from", () => {
  const columns = deltaColumns([
    { key: ['ada', 45, 75], state: [1] },
    { key: ['bob', 0, 10], state: [1] },
  ]) as DeltaColumns;
  const asRows = deltaRows(columns);
  asRows[0].key = ['ada', 0, 120];
  keysBack(columns, asRows);
  assert.deepEqual(deltaKeys(columns), [
    ['ada', 0, 120],
    ['bob', 0, 10],
  ]);
});

test('sortByKey orders rows as an index does: NULL, numbers, strings, column by column', () => {
  const keys: RowDelta['key'][] = [
    ['b', 2],
    ['a', 10],
    [null, 5],
    [3, 1],
    ['a', 9],
    ['a', null],
    [-1, 0],
    ['B', 0],
  ];
  const sorted = sortByKey(keys.map((key) => ({ key, state: [] })));
  assert.deepEqual(
    sorted.map((r) => r.key),
    [
      [null, 5],
      [-1, 0],
      [3, 1],
      ['B', 0],
      ['a', null],
      ['a', 9],
      ['a', 10],
      ['b', 2],
    ],
  );
});
