/**
 * topN(n, by, { value }): per row, the `n` events with the largest number `by`, as a JSON array
 * `[{"by":120,"value":"sku-7"},…]` sorted by `by`, largest first (without `value`, `[{"by":120},…]`).
 * Entries are events: two events with the same number and value are two entries.
 *
 * Ties: entries with the same `by` are ordered by their value, smaller first (null, then numbers,
 * then strings by UTF-16 code units), and entries equal in both are interchangeable. So the list is
 * a function of the row's events alone, whatever order they were folded or merged in: live and
 * replay agree, on any number of partitions, flushes and worker threads.
 *
 * State: the list itself, JSON text in one custom-merge column (view/types.ts), and the view shows it
 * as it is. A task keeps the top n of its delta; the store merges a delta into the stored list by
 * taking the top n of both, which is exact: an entry of the top n of a union is in the top n of
 * whichever part it came from.
 */
import { type Aggregate, describeValue, scalarProblem } from './aggregates.ts';
import type { MergeRule, StateColumn } from '../view/index.ts';

/** The most entries a row keeps: the list is read, merged and written at every flush touching the row. */
export const TOP_N_MAX = 1000;

export interface TopNOptions<T> {
  /** What each entry shows beside its number: a string, a finite number, a boolean (as 1/0) or null. */
  value?: (event: T) => string | number | boolean | null;
}

type Value = string | number | null;

export interface TopEntry {
  by: number;
  value?: Value;
}

const q = (name: string): string => `"${name}"`;

function rank(v: Value | undefined): number {
  return v === null || v === undefined ? 0 : typeof v === 'number' ? 1 : 2;
}

/** Negative when `a` comes first in the list: larger `by` first, then the smaller value. */
export function compareEntries(a: TopEntry, b: TopEntry): number {
  if (a.by !== b.by) return a.by > b.by ? -1 : 1;
  const ra = rank(a.value);
  const rb = rank(b.value);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  const x = a.value!;
  const y = b.value!;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The first `n` entries of two sorted lists, merged. */
export function mergeTop(a: readonly TopEntry[], b: readonly TopEntry[], n: number): TopEntry[] {
  const out: TopEntry[] = [];
  let i = 0;
  let j = 0;
  while (out.length < n && (i < a.length || j < b.length)) {
    if (j === b.length || (i < a.length && compareEntries(a[i], b[j]) <= 0)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

/** Where `e` goes in the sorted `list`: after every entry that comes before it or ties with it. */
function insertionPoint(list: readonly TopEntry[], e: TopEntry): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareEntries(list[mid], e) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function byOf<T>(by: (event: T) => number, event: T): number {
  const v = by(event);
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new TypeError(`topN() got ${describeValue(v)} as the number to rank by, not a finite number`);
  return v === 0 ? 0 : v; // -0 and 0 are one number (JSON writes both as 0)
}

function valueOf<T>(fn: (event: T) => unknown, event: T): Value {
  const v = fn(event);
  const problem = scalarProblem(v);
  if (problem !== null)
    throw new TypeError(`topN() got a value that ${problem}; it takes strings, finite numbers, booleans or null`);
  return typeof v === 'boolean' ? Number(v) : v === 0 ? 0 : (v as Value);
}

/** The `n` events with the largest `by` per row, as a JSON array (see the file comment). */
export function topN<T>(n: number, by: (event: T) => number, opts: TopNOptions<T> = {}): Aggregate<T> {
  if (!Number.isInteger(n) || n < 1 || n > TOP_N_MAX)
    throw new TypeError(
      `topN() keeps 1 to ${TOP_N_MAX} entries per row; n must be a whole number in that range, not ${n}`,
    );
  if (typeof by !== 'function') throw new TypeError('topN() takes a function that returns the number to rank by');
  const valueFn = opts.value;
  if (valueFn !== undefined && typeof valueFn !== 'function')
    throw new TypeError('topN(): value must be a function that returns what each entry shows');
  const merge: MergeRule = {
    kind: 'custom',
    merge: (stored, delta) => mergeTop(stored as TopEntry[], delta as TopEntry[], n),
  };
  return {
    kind: 'topN',
    signature: `topN(${n}, ${by.toString()}, ${valueFn === undefined ? '' : valueFn.toString()})`,
    stateColumns: (name): StateColumn[] => [{ name, type: 'TEXT', merge }],
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = [];
    },
    prepare: (_state, _slot, event, inputs, i) => {
      inputs.num[i] = byOf(by, event);
      if (valueFn !== undefined) inputs.any[i] = valueOf(valueFn, event);
    },
    apply: (state, slot, inputs, i) => {
      const list = state[slot] as TopEntry[];
      const e: TopEntry =
        valueFn === undefined ? { by: inputs.num[i] } : { by: inputs.num[i], value: inputs.any[i] as Value };
      const at = insertionPoint(list, e);
      if (at >= n) return;
      // A new list, not the row's changed in place: the plan may fold an event into a copy of a row
      // before folding it into the row (plan.ts foldAny, views with a custom aggregate), and an
      // entry added twice would count the event twice.
      const next = list.slice(0, n - 1 < list.length ? n - 1 : list.length);
      next.splice(at, 0, e);
      state[slot] = next;
    },
  };
}
