/**
 * Reading a flush's deltas whether they come as rows (`RowDelta[]`) or as columns
 * (`DeltaColumns`, what worker threads send): the stores merge columns directly on their hot path
 * and turn them into rows where a path needs whole rows (custom merges, session windows).
 */
import type { DeltaColumns, Deltas, RowDelta } from './types.ts';

export function isDeltaColumns(deltas: Deltas): deltas is DeltaColumns {
  return !Array.isArray(deltas);
}

export function deltaCount(deltas: Deltas): number {
  return isDeltaColumns(deltas) ? deltas.count : deltas.length;
}

/** Row `i` (a new object for columns). */
export function deltaRow(deltas: Deltas, i: number): RowDelta {
  if (!isDeltaColumns(deltas)) return deltas[i];
  return { key: deltas.keys.map((c) => c[i]), state: deltas.states.map((c) => c[i]) };
}

/** The deltas as rows (the same array when they are rows). */
export function deltaRows(deltas: Deltas): RowDelta[] {
  if (!isDeltaColumns(deltas)) return deltas;
  const rows = new Array<RowDelta>(deltas.count);
  for (let i = 0; i < deltas.count; i++) rows[i] = deltaRow(deltas, i);
  return rows;
}

/** Every row's key values, in order. */
export function deltaKeys(deltas: Deltas): RowDelta['key'][] {
  if (!isDeltaColumns(deltas)) return deltas.map((d) => d.key);
  const keys = new Array<RowDelta['key']>(deltas.count);
  for (let i = 0; i < deltas.count; i++) keys[i] = deltas.keys.map((c) => c[i]);
  return keys;
}

/**
 * Writes the rows' keys back into the columns they were made from (`deltaRows`): a session view's
 * flush changes each delta's key to its merged window, and the caller reads the keys it wrote.
 */
export function keysBack(deltas: DeltaColumns, rows: readonly RowDelta[]): void {
  for (let k = 0; k < deltas.keys.length; k++) {
    const column = deltas.keys[k] as (string | number | null)[];
    for (let i = 0; i < rows.length; i++) column[i] = rows[i].key[k];
  }
}

/**
 * Sorts rows by key in place, in the order of SQLite's and PostgreSQL's indexes for the common
 * types (NULL, then numbers, then strings; strings by UTF-16 code unit, which matches byte order
 * for all but a few characters): a flush that merges rows in key order walks the table's B-tree
 * from one end to the other instead of jumping across it. The order is only for speed; any order
 * merges to the same rows.
 */
export function sortByKey(rows: RowDelta[]): RowDelta[] {
  return rows.sort(compareKeys);
}

function compareKeys(a: RowDelta, b: RowDelta): number {
  const ka = a.key;
  const kb = b.key;
  for (let i = 0; i < ka.length; i++) {
    const x = ka[i];
    const y = kb[i];
    if (x === y) continue;
    // Two values of one type (the common case) compare at once; else by type first.
    if (typeof x === typeof y && x !== null && y !== null) return x < y ? -1 : 1;
    const rx = rank(x);
    const ry = rank(y);
    if (rx !== ry) return rx - ry;
    return (x as string | number) < (y as string | number) ? -1 : 1;
  }
  return 0;
}

function rank(v: unknown): number {
  return v === null || v === undefined ? 0 : typeof v === 'string' ? 2 : 1;
}

/**
 * Rows as columns (none as an empty row list). Every row has as many key and state values as the
 * first; a column whose values are all numbers becomes a Float64Array.
 */
export function deltaColumns(rows: readonly RowDelta[]): Deltas {
  if (rows.length === 0) return [];
  const count = rows.length;
  const keys = rows[0].key.map((_, k) => column(rows, count, (r) => r.key[k]));
  const states = rows[0].state.map((_, s) => column(rows, count, (r) => r.state[s]));
  return { count, keys: keys as DeltaColumns['keys'], states };
}

function column(rows: readonly RowDelta[], count: number, value: (row: RowDelta) => unknown): ArrayLike<unknown> {
  const values = new Array<unknown>(count);
  let numbers = true;
  for (let i = 0; i < count; i++) {
    const v = value(rows[i]);
    values[i] = v;
    if (typeof v !== 'number') numbers = false;
  }
  return numbers ? Float64Array.from(values as number[]) : values;
}
