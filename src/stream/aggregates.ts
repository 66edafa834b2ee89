/**
 * Mergeable aggregates (commutative monoids with init / add / merge). A task folds events into a
 * per-group *delta* that starts at the identity; the store merges the delta into the stored row by
 * each state column's merge rule (see view/types.ts). So deltas from different partitions combine
 * in any order and give the same row: the view *is* the state.
 *
 * State layout: every aggregate owns one or more consecutive slots of a row's state array, and the
 * same number of state columns in the table (`<name>` or `<name>__<part>`).
 */
import type { MergeRule, OutputColumn, StateColumn } from '../view/types.ts';

export interface Aggregate<T> {
  readonly kind: string;
  /** Source text of the extractor (and options): part of the view's fingerprint. */
  readonly signature: string;
  stateColumns(name: string): StateColumn[];
  outputColumn(name: string): OutputColumn;
  /** Writes the identity into `state` at `slot`. */
  init(state: unknown[], slot: number): void;
  /** Folds one event (its value and event time) into `state` at `slot`. */
  add(state: unknown[], slot: number, value: T, timeMs: number): void;
}

type Extract<T> = (value: T) => number;

const q = (name: string): string => `"${name}"`;

function single<T>(kind: string, fn: Extract<T> | null, type: 'INTEGER' | 'REAL', merge: MergeRule, identity: number | null, add: (prev: number | null, v: number) => number): Aggregate<T> {
  return {
    kind,
    signature: `${kind}(${fn ? fn.toString() : ''})`,
    stateColumns: (name) => [{ name, type, merge }],
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = identity;
    },
    add: (state, slot, value) => {
      const v = fn ? fn(value) : 1;
      if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${kind}() got ${JSON.stringify(v)}, not a number`);
      state[slot] = add(state[slot] as number | null, v);
    },
  };
}

/** Number of events. */
export function count<T = unknown>(): Aggregate<T> {
  return single<T>('count', null, 'INTEGER', { kind: 'add' }, 0, (prev) => (prev as number) + 1);
}

export function sum<T>(fn: Extract<T>): Aggregate<T> {
  return single('sum', fn, 'REAL', { kind: 'add' }, 0, (prev, v) => (prev as number) + v);
}

export function min<T>(fn: Extract<T>): Aggregate<T> {
  return single('min', fn, 'REAL', { kind: 'min' }, null, (prev, v) => (prev === null || v < prev ? v : prev));
}

export function max<T>(fn: Extract<T>): Aggregate<T> {
  return single('max', fn, 'REAL', { kind: 'max' }, null, (prev, v) => (prev === null || v > prev ? v : prev));
}

/** Mean, kept as sum and count so deltas merge exactly; the public view divides. */
export function avg<T>(fn: Extract<T>): Aggregate<T> {
  return {
    kind: 'avg',
    signature: `avg(${fn.toString()})`,
    stateColumns: (name) => [
      { name: `${name}__sum`, type: 'REAL', merge: { kind: 'add' } },
      { name: `${name}__count`, type: 'INTEGER', merge: { kind: 'add' } },
    ],
    outputColumn: (name) => ({ name, sql: `${q(`${name}__sum`)} / NULLIF(${q(`${name}__count`)}, 0)` }),
    init: (state, slot) => {
      state[slot] = 0;
      state[slot + 1] = 0;
    },
    add: (state, slot, value) => {
      const v = fn(value);
      if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`avg() got ${JSON.stringify(v)}, not a number`);
      state[slot] = (state[slot] as number) + v;
      state[slot + 1] = (state[slot + 1] as number) + 1;
    },
  };
}

type Scalar = string | number | boolean | null;

function byTime<T>(kind: 'first' | 'last', fn: (value: T) => Scalar): Aggregate<T> {
  const earliest = kind === 'first';
  return {
    kind,
    signature: `${kind}(${fn.toString()})`,
    stateColumns: (name) => [
      // The value column has no type affinity, so it keeps whatever scalar it gets.
      { name, type: 'ANY', merge: earliest ? { kind: 'earliest', by: `${name}__time` } : { kind: 'latest', by: `${name}__time` } },
      { name: `${name}__time`, type: 'INTEGER', merge: earliest ? { kind: 'min' } : { kind: 'max' } },
    ],
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = null;
      state[slot + 1] = null;
    },
    add: (state, slot, value, timeMs) => {
      const prev = state[slot + 1] as number | null;
      // Ties go to the earlier event for first and the later one for last: both follow log order.
      if (prev === null || (earliest ? timeMs < prev : timeMs >= prev)) {
        const v = fn(value);
        state[slot] = typeof v === 'boolean' ? Number(v) : v;
        state[slot + 1] = timeMs;
      }
    },
  };
}

/** The value of the event with the earliest event time. */
export function first<T>(fn: (value: T) => Scalar): Aggregate<T> {
  return byTime('first', fn);
}

/** The value of the event with the latest event time. */
export function last<T>(fn: (value: T) => Scalar): Aggregate<T> {
  return byTime('last', fn);
}

export interface CustomAggregate<T, S> {
  init(): S;
  add(state: S, value: T): S;
  /** Must be commutative and associative, with init() as identity. */
  merge(a: S, b: S): S;
}

/** A user-defined mergeable aggregate. Its state is stored as JSON text; the view shows that JSON. */
export function aggregate<T, S>(spec: CustomAggregate<T, S>): Aggregate<T> {
  return {
    kind: 'custom',
    signature: `custom(${spec.init.toString()}|${spec.add.toString()}|${spec.merge.toString()})`,
    stateColumns: (name) => [{ name, type: 'TEXT', merge: { kind: 'custom', merge: (a, b) => spec.merge(a as S, b as S) } }],
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = spec.init();
    },
    add: (state, slot, value) => {
      state[slot] = spec.add(state[slot] as S, value);
    },
  };
}
