/**
 * Mergeable aggregates (commutative monoids with init / add / merge). A task folds events into a
 * per-group *delta* that starts at the identity; the store merges the delta into the stored row by
 * each state column's merge rule (see view/types.ts). So deltas from different partitions combine
 * in any order and give the same row: the view *is* the state.
 *
 * State layout: every aggregate owns one or more consecutive slots of a row's state array, and the
 * same number of state columns in the table (`<name>` or `<name>__<part>`).
 *
 * Exact sums: sum() and avg() keep a total as two numbers, a high part on a grid of 2^-12 and a
 * low part of at most half a grid step (`<name>` and `<name>__lo`; avg: `__sum` and `__sum_lo`),
 * and the view shows their sum. Both parts merge with the store's plain `add`, deltas from any
 * task in any order: adding high parts is exact (every one is a whole number of grid steps, and
 * their sum stays below 2^53 steps while the total's magnitude stays below 2^41, about 2.2e12),
 * and the low parts are so small that their rounding errors stay far below the total's last
 * digit. So a sum of a million cents amounts is the correctly rounded total (945504.36, not
 * 945504.3599999986), and live and replay (whose flushes split the events differently) agree. A
 * low part that is NULL (no such value stored) counts as 0. Past 2^41 the high parts round as a
 * plain float sum would. Integer sums are as before: exact up to 2^53, with a low part of 0.
 *
 * All or nothing per event: a task folds an event in two steps. `prepare` runs the user's function
 * of every aggregate of the view and checks what it returns, changing nothing; only when all of them
 * passed does `apply` fold the results into the row, and `apply` cannot fail. So an event whose
 * extractor throws or gives a value the aggregate cannot take (NaN for a sum, an object for last())
 * goes to the dead-letter topic and leaves no row half-updated, and every value a row holds is one
 * the store accepts (view/definition.ts checks that again at flush, as an invariant).
 */
import type { MergeRule, OutputColumn, StateColumn } from '../view/index.ts';

export interface Aggregate<T> {
  readonly kind: string;
  /** Source text of the extractor (and options): part of the view's fingerprint. */
  readonly signature: string;
  stateColumns(name: string): StateColumn[];
  outputColumn(name: string): OutputColumn;
  /** Writes the identity into `state` at `slot`. */
  init(state: unknown[], slot: number): void;
  /**
   * Runs the user's function on one event and checks what it returns, leaving it in `inputs` at
   * `i`; changes nothing else. `state` is the row the event will fold into, or null when the task
   * has no such row yet (only a custom aggregate reads it). Throws a TypeError whose message is the
   * dead-letter reason, so a value the aggregate cannot take never reaches a row.
   */
  prepare(state: readonly unknown[] | null, slot: number, value: T, inputs: AggInputs, i: number): void;
  /**
   * Folds the input `prepare` left at `i` into `state` at `slot`. The event's time, partition and
   * offset place it in the total order first() and last() pick by (see byTime). Never throws.
   */
  apply(
    state: unknown[],
    slot: number,
    inputs: AggInputs,
    i: number,
    timeMs: number,
    partition: number,
    offset: number,
  ): void;
}

/**
 * Where one event's aggregate inputs wait between `prepare` and `apply`: entry `i` per aggregate of
 * a view, reused for every event. Numbers sit in a Float64Array, so a prepared sum is not boxed.
 */
export class AggInputs {
  readonly num: Float64Array;
  readonly any: unknown[];
  constructor(n: number) {
    this.num = new Float64Array(n);
    this.any = new Array<unknown>(n).fill(null);
  }
}

/**
 * A value as a dead-letter reason shows it: NaN, Infinity, undefined, 5n and symbols by name
 * (JSON.stringify would turn the first three into null or nothing), other values as short JSON.
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return typeof v === 'bigint' ? `the bigint ${v}n` : String(v);
    case 'symbol':
      return `a symbol (${String(v.description)})`;
    case 'function':
      return 'a function';
    case 'string':
      return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}...` : JSON.stringify(v);
    default: {
      if (v === null) return 'null';
      const what = Array.isArray(v) ? 'an array' : 'an object';
      let json: string | undefined;
      try {
        json = JSON.stringify(v);
      } catch {
        json = undefined;
      }
      return json === undefined ? what : `${what} ${json.length > 60 ? `${json.slice(0, 60)}...` : json}`;
    }
  }
}

/**
 * Why `v` cannot be a value of a row (a group key, a first/last value), or null if it can: a
 * string, a finite number, a boolean (stored as 0/1) or null. NaN would make SQLite store NULL,
 * Infinity is no number JSON or the views' clients can carry, a bigint beyond 64 bits is refused by
 * SQLite, and undefined, objects, arrays, symbols and functions have no SQL form.
 */
export function scalarProblem(v: unknown): string | null {
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? null : `is ${describeValue(v)}`;
  return `is ${describeValue(v)}`;
}

type Extract<T> = (value: T) => number;

const q = (name: string): string => `"${name}"`;

/** The number `fn` gives for `value`, checked finite; throws the dead-letter reason. */
function numberOf<T>(kind: string, fn: Extract<T>, value: T): number {
  const v = fn(value);
  // NaN or a non-number would poison the row (SQLite stores NaN as NULL; 'a' + 1 is a string), and
  // an infinity turns a sum into NaN as soon as the other infinity arrives.
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new TypeError(`${kind}() got ${describeValue(v)}, not a finite number`);
  return v;
}

function single<T>(
  kind: string,
  fn: Extract<T> | null,
  type: 'INTEGER' | 'REAL',
  merge: MergeRule,
  identity: number | null,
  add: (prev: number | null, v: number) => number,
): Aggregate<T> {
  return {
    kind,
    signature: `${kind}(${fn ? fn.toString() : ''})`,
    stateColumns: (name) => [{ name, type, merge }],
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = identity;
    },
    prepare: (_state, _slot, value, inputs, i) => {
      inputs.num[i] = fn ? numberOf(kind, fn, value) : 1;
    },
    apply: (state, slot, inputs, i) => {
      state[slot] = add(state[slot] as number | null, inputs.num[i]);
    },
  };
}

/** Number of events. */
export function count<T = unknown>(): Aggregate<T> {
  return single<T>('count', null, 'INTEGER', { kind: 'add' }, 0, (prev) => (prev as number) + 1);
}

/** The grid of a sum's high part (see the file comment), and half a step, the bound of its low part. */
const GRID = 2 ** -12;
const PER_GRID = 2 ** 12;
const HALF_GRID = GRID / 2;
/** From this magnitude every double is a whole number of grid steps (its last bit is worth 2^-12 or more). */
const ON_GRID = 2 ** 40;

/**
 * Adds `v` to the exact sum whose high part is at `hi` and low part at `lo` of `state`. Scaling by
 * a power of two and subtracting a value's nearest grid point are exact, so only the low part's
 * addition rounds, by at most 2^-66; a low part that outgrows half a step gives its grid part to the
 * high part. No allocation: a few float operations on two slots.
 */
function addExact(state: unknown[], hi: number, lo: number, v: number): void {
  const onGrid = v >= ON_GRID || v <= -ON_GRID ? v : Math.round(v * PER_GRID) * GRID;
  let low = (state[lo] as number) + (v - onGrid);
  let high = (state[hi] as number) + onGrid;
  if (low > HALF_GRID || low < -HALF_GRID) {
    const carry = Math.round(low * PER_GRID) * GRID;
    high += carry;
    low -= carry;
  }
  state[hi] = high;
  state[lo] = low;
}

/**
 * Sum of a number of each event, exact as the file comment says. The signature names the two-part
 * state: a version built by an older Kappa (one column) has another fingerprint, so it keeps
 * serving with its own stored code while the view is rebuilt with this one.
 */
export function sum<T>(fn: Extract<T>): Aggregate<T> {
  return {
    kind: 'sum',
    signature: `sum(${fn.toString()}) hi+lo`,
    stateColumns: (name) => [
      { name, type: 'REAL', merge: { kind: 'add' } },
      { name: `${name}__lo`, type: 'REAL', merge: { kind: 'add' } },
    ],
    // CAST keeps the column's REAL type in the public view (an expression has none), so filters on it
    // (GET /v1/views/:view?total=12.5) compare numbers.
    outputColumn: (name) => ({ name, sql: `CAST(${q(name)} + coalesce(${q(`${name}__lo`)}, 0) AS REAL)` }),
    init: (state, slot) => {
      state[slot] = 0;
      state[slot + 1] = 0;
    },
    prepare: (_state, _slot, value, inputs, i) => {
      inputs.num[i] = numberOf('sum', fn, value);
    },
    apply: (state, slot, inputs, i) => {
      addExact(state, slot, slot + 1, inputs.num[i]);
    },
  };
}

export function min<T>(fn: Extract<T>): Aggregate<T> {
  return single('min', fn, 'REAL', { kind: 'min' }, null, (prev, v) => (prev === null || v < prev ? v : prev));
}

export function max<T>(fn: Extract<T>): Aggregate<T> {
  return single('max', fn, 'REAL', { kind: 'max' }, null, (prev, v) => (prev === null || v > prev ? v : prev));
}

/** Mean, kept as an exact sum (high and low part) and a count so deltas merge exactly; the public view divides. */
export function avg<T>(fn: Extract<T>): Aggregate<T> {
  return {
    kind: 'avg',
    signature: `avg(${fn.toString()}) hi+lo`,
    stateColumns: (name) => [
      { name: `${name}__sum`, type: 'REAL', merge: { kind: 'add' } },
      { name: `${name}__count`, type: 'INTEGER', merge: { kind: 'add' } },
      { name: `${name}__sum_lo`, type: 'REAL', merge: { kind: 'add' } },
    ],
    outputColumn: (name) => ({
      name,
      sql: `CAST((${q(`${name}__sum`)} + coalesce(${q(`${name}__sum_lo`)}, 0)) / NULLIF(${q(`${name}__count`)}, 0) AS REAL)`,
    }),
    init: (state, slot) => {
      state[slot] = 0;
      state[slot + 1] = 0;
      state[slot + 2] = 0;
    },
    prepare: (_state, _slot, value, inputs, i) => {
      inputs.num[i] = numberOf('avg', fn, value);
    },
    apply: (state, slot, inputs, i) => {
      addExact(state, slot, slot + 2, inputs.num[i]);
      state[slot + 1] = (state[slot + 1] as number) + 1;
    },
  };
}

type Scalar = string | number | boolean | null;

/**
 * first() and last(): the value of the event that comes first (last) in the order (event time,
 * partition, offset). Event time alone leaves ties: the readings of one tick share a timestamp, and
 * two keys of one group may sit on different partitions, whose flushes reach the store in whatever
 * order the tasks (or worker threads) run. Breaking ties by write order made the row depend on that
 * order, so a replay could differ from the live version. (partition, offset) names each event once
 * and does not depend on when it was processed, so the row is the same live or replayed, for any
 * flush grouping and any number of worker threads.
 *
 * State: `<name>` (the value; no type affinity, so it keeps whatever scalar it gets), `<name>__time`
 * (merged with min / max) and the tie-break `<name>__part` and `<name>__offset`. The value and the
 * tie-break merge "earliest" / "latest" by `<name>__time`, and the store compares (time, partition,
 * offset) whenever a table has those two columns beside the time (see view/sqlite/sql.ts); a table
 * built by an older Kappa has only `<name>` and `<name>__time` and merges by time alone, as it did.
 * The signature names the new layout, so such a version keeps serving with its stored code while
 * the view is rebuilt with this one.
 */
function byTime<T>(kind: 'first' | 'last', fn: (value: T) => Scalar): Aggregate<T> {
  const earliest = kind === 'first';
  return {
    kind,
    signature: `${kind}(${fn.toString()}) by time,partition,offset`,
    stateColumns: (name) => {
      const merge: MergeRule = earliest
        ? { kind: 'earliest', by: `${name}__time` }
        : { kind: 'latest', by: `${name}__time` };
      return [
        { name, type: 'ANY', merge },
        { name: `${name}__time`, type: 'INTEGER', merge: earliest ? { kind: 'min' } : { kind: 'max' } },
        { name: `${name}__part`, type: 'INTEGER', merge },
        { name: `${name}__offset`, type: 'INTEGER', merge },
      ];
    },
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = null;
      state[slot + 1] = null;
      state[slot + 2] = null;
      state[slot + 3] = null;
    },
    prepare: (_state, _slot, value, inputs, i) => {
      // Evaluated for every event, not only for one that wins: whether an event wins depends on the
      // task's dirty row, so a throw here must not, or dead letters would depend on flush timing.
      const v = fn(value);
      const problem = scalarProblem(v);
      if (problem !== null)
        throw new TypeError(
          `${kind}() got a value that ${problem}; it takes strings, finite numbers, booleans or null`,
        );
      inputs.any[i] = typeof v === 'boolean' ? Number(v) : v;
    },
    apply: (state, slot, inputs, i, timeMs, partition, offset) => {
      if (state[slot + 1] === null || wins(earliest, state, slot, timeMs, partition, offset)) {
        state[slot] = inputs.any[i];
        state[slot + 1] = timeMs;
        state[slot + 2] = partition;
        state[slot + 3] = offset;
      }
    },
  };
}

/**
 * Whether the event at (timeMs, partition, offset) comes before (first) or after (last) the one
 * `state` holds at `slot`. An equal position is the same event (a flatMap's outputs): last takes
 * the later output, first keeps the earlier one, as the store's merge does.
 */
function wins(
  earliest: boolean,
  state: readonly unknown[],
  slot: number,
  timeMs: number,
  partition: number,
  offset: number,
): boolean {
  const t = state[slot + 1] as number;
  if (timeMs !== t) return earliest ? timeMs < t : timeMs > t;
  const p = state[slot + 2] as number;
  if (partition !== p) return earliest ? partition < p : partition > p;
  const o = state[slot + 3] as number;
  return earliest ? offset < o : offset >= o;
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
  /**
   * The state after one more event. It gets a copy of the state (the state's JSON form, as the
   * store keeps it), so it may change that copy and return it; if it throws, the event goes to the
   * dead-letter topic and the row is left as it was.
   */
  add(state: S, value: T): S;
  /** Must be commutative and associative, with init() as identity. */
  merge(a: S, b: S): S;
}

/**
 * A user-defined mergeable aggregate. Its state is stored as JSON text; the view shows that JSON.
 *
 * `prepare` runs the user's `add` on a JSON copy of the row's state and keeps the result's JSON form
 * (what the store will hold), so an `add` that throws, changes its argument in place and then
 * throws, or returns something JSON cannot hold (a bigint, a cycle, undefined) leaves the row
 * untouched and sends the event to the dead-letter topic; such a state would otherwise stop the
 * view at its next flush. That costs four JSON passes (two each way) over the state per event: a
 * custom aggregate should keep its state small (a sketch, not every value seen).
 */
export function aggregate<T, S>(spec: CustomAggregate<T, S>): Aggregate<T> {
  return {
    kind: 'custom',
    signature: `custom(${spec.init.toString()}|${spec.add.toString()}|${spec.merge.toString()})`,
    stateColumns: (name) => [
      { name, type: 'TEXT', merge: { kind: 'custom', merge: (a, b) => spec.merge(a as S, b as S) } },
    ],
    outputColumn: (name) => ({ name, sql: q(name) }),
    init: (state, slot) => {
      state[slot] = spec.init();
    },
    prepare: (state, slot, value, inputs, i) => {
      // The row's state is plain JSON data (see below), so its copy cannot fail.
      const base = state === null ? spec.init() : jsonCopy(state[slot]);
      const next = spec.add(base as S, value);
      // The row keeps the state's JSON form, as the store will: what JSON drops (a nested function,
      // a symbol) would otherwise stay in memory and fail the copy to the engine's thread at flush.
      inputs.any[i] = storableState(next);
    },
    apply: (state, slot, inputs, i) => {
      state[slot] = inputs.any[i];
    },
  };
}

function jsonCopy(v: unknown): unknown {
  return v === null || typeof v !== 'object' ? v : JSON.parse(JSON.stringify(v));
}

/**
 * `v` as the store will hold it (its JSON form, parsed back; null means "no state"), or throws the
 * dead-letter reason when it has none: undefined, a function, a symbol, a bigint, a cycle, a
 * non-finite number (JSON would store null).
 */
function storableState(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      if (Number.isFinite(v)) return v;
      throw new TypeError(
        `the custom aggregate's add() returned a state that is ${describeValue(v)}, which JSON stores as null`,
      );
    case 'object':
      break;
    default:
      throw new TypeError(
        `the custom aggregate's add() returned a state that is ${describeValue(v)}, which has no JSON form`,
      );
  }
  if (v === null) return null;
  let json: string | undefined;
  try {
    json = JSON.stringify(v);
  } catch (err) {
    throw new TypeError(
      `the custom aggregate's add() returned a state that cannot be stored as JSON (${(err as Error).message})`,
      { cause: err },
    );
  }
  // A toJSON() that returns undefined leaves nothing to store.
  if (json === undefined) throw new TypeError("the custom aggregate's add() returned a state that has no JSON form");
  return JSON.parse(json) as unknown;
}
