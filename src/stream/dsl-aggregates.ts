/**
 * The aggregates as the pipeline DSL types them: the functions of aggregates.ts, the same objects at
 * run time, with the type of the column each one gives in a view's rows. `aggregate()` collects
 * those types into the view's row type (dsl.ts `RowOf`), so `InferRow<typeof v>` needs no
 * hand-written type. The column type is a phantom field: aggregates.ts never sets it.
 *
 * Every row holds at least one event (a row is made by the first event that reaches it, and an
 * event folds into every aggregate of its view or into none), so count, sum, min, max and avg are
 * never NULL in a row (countDistinct's exact form is NULL past its limit).
 */
import * as impl from './aggregates.ts';
import type { Aggregate, CustomAggregate } from './aggregates.ts';
import * as distinct from './aggregates-distinct.ts';
import type { CountDistinctOptions } from './aggregates-distinct.ts';
import * as topn from './aggregates-topn.ts';
import type { TopNOptions } from './aggregates-topn.ts';

/** An aggregate over values of type T that gives a column of type R. */
export type TypedAggregate<T, R> = Aggregate<T> & {
  /** Phantom field carrying the column type; never set at run time. */
  readonly __column?: () => R;
};

/** The column type of an aggregate (unknown for one made outside the DSL's functions). */
export type ColumnOf<A> = A extends { readonly __column?: () => infer R } ? R : unknown;

/** A value as a view's row holds it: the store keeps booleans as 0 and 1. */
export type Stored<V> = V extends boolean ? number : V;

/** What first() and last() take: a string, a finite number, a boolean (stored as 0/1) or null. */
export type Scalar = string | number | boolean | null;

/** Number of events. */
export const count: <T = unknown>() => TypedAggregate<T, number> = impl.count;

/** Sum of a number of each event. */
export const sum: <T>(fn: (value: T) => number) => TypedAggregate<T, number> = impl.sum;

/** Smallest of a number of each event. */
export const min: <T>(fn: (value: T) => number) => TypedAggregate<T, number> = impl.min;

/** Largest of a number of each event. */
export const max: <T>(fn: (value: T) => number) => TypedAggregate<T, number> = impl.max;

/** Mean of a number of each event (kept as sum and count, so deltas merge exactly). */
export const avg: <T>(fn: (value: T) => number) => TypedAggregate<T, number> = impl.avg;

/** The value of the event with the earliest event time. */
export const first: <T, R extends Scalar>(fn: (value: T) => R) => TypedAggregate<T, Stored<R>> = impl.first;

/** The value of the event with the latest event time. */
export const last: <T, R extends Scalar>(fn: (value: T) => R) => TypedAggregate<T, Stored<R>> = impl.last;

/** A user-defined mergeable aggregate; its column holds the state's JSON text (NULL for no state). */
export const aggregate: <T, S>(spec: CustomAggregate<T, S>) => TypedAggregate<T, string | null> = impl.aggregate;

/**
 * The number of distinct values per row (strings, finite numbers, booleans as 1/0; null skipped).
 * Exact, up to `limit` distinct values per row (default 10,000), past which the row shows NULL; with
 * `{ approximate: true }` a HyperLogLog estimate (standard error 1.04 / sqrt(2^precision), 0.81% at
 * the default precision 14), never NULL. See aggregates-distinct.ts.
 */
export const countDistinct: {
  <T>(fn: (value: T) => Scalar, opts: CountDistinctOptions & { approximate: true }): TypedAggregate<T, number>;
  <T>(fn: (value: T) => Scalar, opts?: CountDistinctOptions): TypedAggregate<T, number | null>;
} = distinct.countDistinct;

/**
 * The `n` events with the largest `by` per row, as JSON text: `[{"by":120,"value":"sku-7"},…]`,
 * largest first, ties by value (see aggregates-topn.ts).
 */
export const topN: <T>(n: number, by: (value: T) => number, opts?: TopNOptions<T>) => TypedAggregate<T, string> =
  topn.topN;
