/**
 * countDistinct(): the number of distinct values per row, exact (a set) or approximate (a
 * HyperLogLog sketch). Both keep their state as JSON text in one custom-merge column (see
 * view/types.ts MergeRule 'custom'): the store reads the stored state, merges the task's delta into
 * it in JS and writes it back, so deltas from any task in any order give the same row, live or
 * replayed, SQLite or PostgreSQL.
 *
 * Values: strings and finite numbers; booleans count as 1 and 0 (as Kappa stores them); null is
 * skipped; anything else (undefined, NaN, an object) sends the event to the dead-letter topic. 1 and
 * "1" are different values, as they are different SQL values.
 *
 * State layout (JSON text). Both forms open with the count as 16 zero-padded digits, `{"n":"…"`, so
 * the public view reads it with one SQL expression both databases run (COUNT_SQL), without JSON
 * functions, whose names differ between them:
 *   exact        {"n":"0000000000000003","v":[1,2,"a"]}     v sorted: numbers, then strings
 *   past limit   {"n":null,"limit":10000}                    the view shows NULL
 *   approximate  {"n":"…","p":14,"s":{"17":3,…}}             sparse registers (index: rank), or
 *                {"n":"…","p":14,"r":"<base64>"}             dense: 2^p bytes, one per register;
 *                a task's delta may also hold "d" (dense, an array of numbers) and "h" (the
 *                histogram of register values it keeps the count with); the merge ignores "h".
 *
 * The exact form's limit: a row keeps at most `limit` distinct values (default 10,000). Its whole set
 * is read, merged and written at every flush that touches the row, so an unbounded set would make
 * flushes grow without end. Past the limit the row holds only the marker and the view shows NULL
 * for it, for good (a row's distinct count never shrinks). Neither an error nor a dead letter
 * would do: a failed merge stops the view, and a task sees only its own delta, not the stored
 * set, so which event crossed the limit depends on flush timing, while "the union of the row's
 * values has more than `limit` of them" does not: live and replay agree on which rows are NULL.
 *
 * The approximate form: HyperLogLog with 2^p registers (p = precision, 4..16, default 14: 16,384
 * registers, a standard error of 1.04 / sqrt(2^p) = 0.81%). A value's register is the top p bits
 * of one 32-bit MurmurHash3 of its text, its rank the leading zeros of a second one (another seed)
 * plus one, so ranks go to 33 and the sketch counts far past 2^40 values without a large-range
 * correction. Registers merge by element-wise max, which is exact: the merge of two sketches is the
 * sketch of the union. The count is Ertl's improved estimator (O. Ertl, "New cardinality estimation
 * algorithms for HyperLogLog sketches", 2017; what Redis uses since 5.0), computed from the
 * histogram of register values in a fixed order, so equal registers give the same count to the bit;
 * it needs no empirical bias tables and is unbiased from 0 up (small counts are as good as linear
 * counting's).
 */
import { type Aggregate, describeValue } from './aggregates.ts';
import type { MergeRule, StateColumn } from '../view/index.ts';

/** Exact form: the default and the largest limit on distinct values per row. */
export const DISTINCT_LIMIT_DEFAULT = 10_000;
export const DISTINCT_LIMIT_MAX = 100_000;
export const PRECISION_DEFAULT = 14;
export const PRECISION_MIN = 4;
export const PRECISION_MAX = 16;
/** Bits of the rank hash: ranks are 1..RANK_BITS + 1. */
const RANK_BITS = 32;
const COUNT_DIGITS = 16;

export interface CountDistinctOptions {
  /** Estimate with a HyperLogLog sketch instead of keeping every value. */
  approximate?: boolean;
  /** Approximate only: 2^precision registers (4..16, default 14: 0.81% standard error, up to 22 KB of JSON per row). */
  precision?: number;
  /** Exact only: the most distinct values a row keeps (default 10,000, at most 100,000); past it the row shows NULL. */
  limit?: number;
}

type Distinct = string | number;

const q = (name: string): string => `"${name}"`;

/** The count the state opens with, read by both SQLite and PostgreSQL; NULL when it holds none. */
export function countSql(name: string): string {
  return `CAST(CASE WHEN substr(${q(name)}, 1, 6) = '{"n":"' THEN substr(${q(name)}, 7, ${COUNT_DIGITS}) END AS BIGINT)`;
}

function padCount(n: number): string {
  return String(n).padStart(COUNT_DIGITS, '0');
}

/**
 * The row array a state object belongs to, under a hidden symbol key (JSON, structured clone and
 * deep equality skip it).
 * apply() changes a state in place only in its own row: the plan folds an event into a shallow copy
 * of a row first when the view has a custom aggregate (plan.ts foldAny) and may then dead-letter the
 * event, so a fold into such a copy works on a copy of the state, and the row is left as it was.
 */
const OWNER = Symbol('kappa.row');

type Owned = { [OWNER]?: unknown[] };

/** `state[slot]`, copied by `copy` first unless it belongs to `state`. */
function own<S extends object>(state: unknown[], slot: number, copy: (s: S) => S): S {
  let s = state[slot] as S & Owned;
  if (s[OWNER] !== state) {
    s = owned(state, copy(s));
    state[slot] = s;
  }
  return s;
}

function owned<S extends object>(state: unknown[], s: S): S {
  return Object.defineProperty(s, OWNER, { value: state, enumerable: false });
}

/** The value as countDistinct counts it (booleans as 1/0, -0 as 0), null to skip; throws the dead-letter reason. */
function distinctValue(v: unknown): Distinct | null {
  if (typeof v === 'string' || v === null) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v === 0 ? 0 : v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new TypeError(
    `countDistinct() got ${describeValue(v)}; it counts strings, finite numbers and booleans, and skips null`,
  );
}

/** The total order of the exact set: numbers (by value) before strings (by UTF-16 code units). */
function compare(a: Distinct, b: Distinct): number {
  if (typeof a === 'number') return typeof b === 'number' ? a - b : -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Where `v` is in the sorted `set`, or -(insertion point) - 1. */
function search(set: readonly Distinct[], v: Distinct): number {
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compare(set[mid], v);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

interface ExactState {
  n: string | null;
  v?: Distinct[];
  limit?: number;
}

function validLimit(limit: number | undefined): number {
  const l = limit ?? DISTINCT_LIMIT_DEFAULT;
  if (!Number.isInteger(l) || l < 1 || l > DISTINCT_LIMIT_MAX)
    throw new TypeError(`countDistinct(): limit must be a whole number from 1 to ${DISTINCT_LIMIT_MAX}, not ${l}`);
  return l;
}

const overflow = (limit: number): ExactState => ({ n: null, limit });

/** The union of two exact states, or the marker when it holds more than `limit` values. */
export function mergeExact(a: ExactState, b: ExactState, limit: number): ExactState {
  if (a.n === null || a.v === undefined) return overflow(limit);
  if (b.n === null || b.v === undefined) return overflow(limit);
  const x = a.v;
  const y = b.v;
  const out: Distinct[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    const c = i === x.length ? 1 : j === y.length ? -1 : compare(x[i], y[j]);
    if (c <= 0) out.push(x[i++]);
    else out.push(y[j++]);
    if (c === 0) j++;
    if (out.length > limit) return overflow(limit);
  }
  return { n: padCount(out.length), v: out };
}

function exact<T>(fn: (value: T) => unknown, limit: number): Aggregate<T> {
  const merge: MergeRule = {
    kind: 'custom',
    merge: (stored, delta) => mergeExact(stored as ExactState, delta as ExactState, limit),
  };
  return {
    kind: 'countDistinct',
    signature: `countDistinct(${fn.toString()}) exact limit=${limit}`,
    stateColumns: (name): StateColumn[] => [{ name, type: 'TEXT', merge }],
    outputColumn: (name) => ({ name, sql: countSql(name) }),
    init: (state, slot) => {
      state[slot] = owned(state, { n: padCount(0), v: [] } satisfies ExactState);
    },
    prepare: (_state, _slot, value, inputs, i) => {
      inputs.any[i] = distinctValue(fn(value));
    },
    apply: (state, slot, inputs, i) => {
      const v = inputs.any[i] as Distinct | null;
      if (v === null || (state[slot] as ExactState).v === undefined) return;
      const at = search((state[slot] as ExactState).v!, v);
      if (at >= 0) return;
      const s = own<ExactState>(state, slot, (x) => ({ n: x.n, v: x.v!.slice() }));
      if (s.v!.length === limit) {
        state[slot] = overflow(limit);
        return;
      }
      s.v!.splice(-at - 1, 0, v);
      s.n = padCount(s.v!.length);
    },
  };
}

// ---- HyperLogLog ---------------------------------------------------------------------------------

/** MurmurHash3 (x86, 32-bit) of the UTF-16 code units of `s`, two per 4-byte block. */
export function murmur3(s: string, seed: number): number {
  let h = seed | 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = Math.imul(s.charCodeAt(i), 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED_INDEX = 0x6b617070;
const SEED_RANK = 0x2f484c4c;

/** A value's (register, rank) as one number, register * 64 + rank: no object per event. */
export function hllSlot(v: Distinct, p: number): number {
  // A type tag, so the number 1 and the string "1" are different values.
  const text = typeof v === 'number' ? `#${v}` : `'${v}`;
  const index = murmur3(text, SEED_INDEX) >>> (32 - p);
  return index * 64 + Math.clz32(murmur3(text, SEED_RANK)) + 1;
}

/** σ and τ of Ertl's estimator (Algorithm 6 of the paper). */
function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  for (;;) {
    x *= x;
    const before = z;
    z += x * y;
    y += y;
    if (z === before) return z;
  }
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  for (;;) {
    x = Math.sqrt(x);
    const before = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
    if (z === before) return z / 3;
  }
}

/** The estimated count from the histogram `h` of register values (h[0] = registers at 0). */
export function estimate(h: readonly number[], m: number): number {
  let z = m * tau(1 - h[RANK_BITS + 1] / m);
  for (let k = RANK_BITS; k >= 1; k--) z = 0.5 * (z + h[k]);
  z += m * sigma(h[0] / m);
  return Math.round((m * m) / (2 * Math.LN2 * z));
}

interface HllState {
  n: string;
  p: number;
  /** Sparse registers (index: rank), dense ones as numbers (a task's delta) or as base64 bytes (stored). */
  s?: Record<string, number>;
  d?: number[];
  r?: string;
  /** A task's histogram of register values, kept so the count costs O(ranks) per change. */
  h?: number[];
}

/** A register array of the state (any of its forms). */
export function registersOf(state: HllState, m: number): Uint8Array {
  if (state.r !== undefined) {
    const bytes = Buffer.from(state.r, 'base64');
    if (bytes.length !== m) throw new Error(`invariant: a sketch of ${m} registers holds ${bytes.length}`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  const regs = new Uint8Array(m);
  if (state.d !== undefined) regs.set(state.d);
  else for (const k of Object.keys(state.s ?? {})) regs[Number(k)] = state.s![k];
  return regs;
}

/** The canonical stored form of `regs`: sparse while few registers are set, else base64. */
export function sketchOf(regs: Uint8Array, p: number): HllState {
  const m = regs.length;
  const h = new Array<number>(RANK_BITS + 2).fill(0);
  for (let j = 0; j < m; j++) h[regs[j]]++;
  const n = padCount(estimate(h, m));
  if (m - h[0] > m / 16) return { n, p, r: Buffer.from(regs.buffer, regs.byteOffset, m).toString('base64') };
  const s: Record<string, number> = {};
  for (let j = 0; j < m; j++) if (regs[j] !== 0) s[j] = regs[j];
  return { n, p, s };
}

export function mergeHll(a: HllState, b: HllState, p: number): HllState {
  const m = 2 ** p;
  const x = registersOf(a, m);
  const y = registersOf(b, m);
  for (let j = 0; j < m; j++) if (y[j] > x[j]) x[j] = y[j];
  return sketchOf(x, p);
}

function emptySketch(p: number): HllState {
  const h = new Array<number>(RANK_BITS + 2).fill(0);
  h[0] = 2 ** p;
  return { n: padCount(0), p, s: {}, h };
}

function copySketch(st: HllState): HllState {
  const copy: HllState = { n: st.n, p: st.p, h: st.h!.slice() };
  if (st.d !== undefined) copy.d = st.d.slice();
  else copy.s = { ...st.s };
  return copy;
}

/** Raises register `index` of a task's delta to `rank`, keeping its histogram and count. */
function raise(st: HllState, index: number, rank: number, m: number): void {
  const regs: Record<number, number> = st.d ?? st.s!;
  const prev = regs[index] ?? 0;
  if (rank <= prev) return;
  regs[index] = rank;
  const h = st.h!;
  h[prev]--;
  h[rank]++;
  st.n = padCount(estimate(h, m));
  // Past m/16 set registers, an array of m numbers is smaller (and faster) than the object.
  if (st.s !== undefined && m - h[0] > m / 16) {
    st.d = Array.from(registersOf(st, m));
    delete st.s;
  }
}

function approximate<T>(fn: (value: T) => unknown, p: number): Aggregate<T> {
  const m = 2 ** p;
  const merge: MergeRule = {
    kind: 'custom',
    merge: (stored, delta) => mergeHll(stored as HllState, delta as HllState, p),
  };
  return {
    kind: 'countDistinct',
    signature: `countDistinct(${fn.toString()}) hll p=${p} murmur3x2 ertl`,
    stateColumns: (name): StateColumn[] => [{ name, type: 'TEXT', merge }],
    outputColumn: (name) => ({ name, sql: countSql(name) }),
    init: (state, slot) => {
      state[slot] = owned(state, emptySketch(p));
    },
    prepare: (_state, _slot, value, inputs, i) => {
      const v = distinctValue(fn(value));
      inputs.num[i] = v === null ? -1 : hllSlot(v, p);
    },
    apply: (state, slot, inputs, i) => {
      const at = inputs.num[i];
      if (at < 0) return;
      const index = Math.floor(at / 64);
      const rank = at % 64;
      const st = state[slot] as HllState;
      if (rank <= ((st.d ?? st.s!) as Record<number, number>)[index]) return;
      raise(own<HllState>(state, slot, copySketch), index, rank, m);
    },
  };
}

/** The number of distinct values per row: exact, or a HyperLogLog estimate with `{ approximate: true }`. */
export function countDistinct<T>(fn: (value: T) => unknown, opts: CountDistinctOptions = {}): Aggregate<T> {
  if (typeof fn !== 'function') throw new TypeError('countDistinct() takes a function that returns the value to count');
  if (opts.approximate === true) {
    if (opts.limit !== undefined)
      throw new TypeError('countDistinct(): limit is for the exact count; an approximate count needs none');
    const p = opts.precision ?? PRECISION_DEFAULT;
    if (!Number.isInteger(p) || p < PRECISION_MIN || p > PRECISION_MAX)
      throw new TypeError(
        `countDistinct(): precision must be a whole number from ${PRECISION_MIN} to ${PRECISION_MAX}, not ${p}`,
      );
    return approximate(fn, p);
  }
  if (opts.precision !== undefined)
    throw new TypeError('countDistinct(): precision is for the approximate count; add approximate: true');
  return exact(fn, validLimit(opts.limit));
}
