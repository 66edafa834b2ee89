/**
 * The pipeline DSL users write in `kappa.config.ts`: typed topics, streams with filter / map /
 * flatMap / window / groupBy / aggregate, and views. Definitions are plain immutable values; the
 * engine compiles them (plan.ts) into one synchronous function per batch. The same definition
 * drives live processing and replay.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { Aggregate } from './aggregates.ts';
import { type Duration, type WindowSpec, parseDuration } from './windows.ts';

export type KeyValue = string | number | boolean | null;

export interface TopicDef<T> {
  readonly kind: 'topic';
  readonly name: string;
  readonly partitions: number;
  /** JSON Schema (TypeBox or plain) every record must satisfy; records that fail go to `<name>.dlq`. */
  readonly schema: TSchema | object | null;
  /** Partitioning key of records produced to this topic (murmur2, as Kafka). */
  readonly key: ((value: T) => KeyValue) | null;
  /** Event time of a record in ms; default: the record's log timestamp. */
  readonly time: ((value: T) => number) | null;
  readonly retentionMs: number;
  /** Phantom field carrying the record type; never set at run time. */
  readonly __type?: T;
}

export interface TopicOptions<T> {
  partitions?: number;
  key?: (value: T) => KeyValue;
  time?: (value: T) => number;
  /** -1 (default) keeps the log forever: in a Kappa architecture the log is the history. */
  retentionMs?: number;
}

export function topic<S extends TSchema>(name: string, opts: TopicOptions<Static<S>> & { schema: S }): TopicDef<Static<S>>;
export function topic<T>(name: string, opts?: TopicOptions<T> & { schema?: object }): TopicDef<T>;
export function topic<T>(name: string, opts: TopicOptions<T> & { schema?: object } = {}): TopicDef<T> {
  return {
    kind: 'topic',
    name,
    partitions: opts.partitions ?? 1,
    schema: opts.schema ?? null,
    key: opts.key ?? null,
    time: opts.time ?? null,
    retentionMs: opts.retentionMs ?? -1,
  };
}

export type Op = { kind: 'filter'; fn: (v: unknown) => boolean } | { kind: 'map'; fn: (v: unknown) => unknown } | { kind: 'flatMap'; fn: (v: unknown) => Iterable<unknown> };

export class Stream<T> {
  constructor(
    readonly source: TopicDef<unknown>,
    readonly ops: readonly Op[],
    readonly windowSpec: WindowSpec | null,
  ) {}

  filter(fn: (value: T) => boolean): Stream<T> {
    return new Stream(this.source, [...this.ops, { kind: 'filter', fn: fn as (v: unknown) => boolean }], this.windowSpec);
  }

  map<U>(fn: (value: T) => U): Stream<U> {
    return new Stream<U>(this.source, [...this.ops, { kind: 'map', fn: fn as (v: unknown) => unknown }], this.windowSpec);
  }

  flatMap<U>(fn: (value: T) => Iterable<U>): Stream<U> {
    return new Stream<U>(this.source, [...this.ops, { kind: 'flatMap', fn: fn as (v: unknown) => Iterable<unknown> }], this.windowSpec);
  }

  /** Groups events into event-time windows; rows of the view then carry window_start and window_end. */
  window(spec: WindowSpec): Stream<T> {
    if (this.windowSpec) throw new TypeError('a stream can be windowed once');
    return new Stream<T>(this.source, this.ops, spec);
  }

  groupBy<K extends Record<string, KeyValue>>(fn: (value: T) => K): GroupedStream<T, K> {
    return new GroupedStream<T, K>(this, fn);
  }

  /** Aggregates windows without group keys (one row per window). */
  aggregate<A extends Record<string, Aggregate<T>>>(aggregates: A): Aggregation<T> {
    if (!this.windowSpec) throw new TypeError('aggregate() without groupBy() needs a window(); use groupBy() to aggregate by key');
    return new GroupedStream<T, Record<string, never>>(this, () => ({})).aggregate(aggregates);
  }
}

export class GroupedStream<T, K extends Record<string, KeyValue>> {
  constructor(
    readonly stream: Stream<T>,
    readonly keyFn: (value: T) => K,
  ) {}

  aggregate<A extends Record<string, Aggregate<T>>>(aggregates: A): Aggregation<T> {
    if (Object.keys(aggregates).length === 0) throw new TypeError('aggregate() needs at least one aggregate');
    return { kind: 'aggregation', stream: this.stream as Stream<unknown>, keyFn: this.keyFn as (v: unknown) => Record<string, KeyValue>, aggregates: aggregates as Record<string, Aggregate<unknown>> };
  }
}

export interface Aggregation<_T> {
  kind: 'aggregation';
  stream: Stream<unknown>;
  keyFn: (value: unknown) => Record<string, KeyValue>;
  aggregates: Record<string, Aggregate<unknown>>;
}

export function from<T>(source: TopicDef<T>): Stream<T> {
  return new Stream<T>(source as TopicDef<unknown>, [], null);
}

export interface ViewOptions {
  /** Events may arrive this much out of order (watermark = newest event time - this). Windowed views only. */
  outOfOrderness?: Duration;
  /** A window keeps accepting events until the watermark passes its end by this much. Later events go to the late topic. */
  allowedLateness?: Duration;
  /** Where events later than allowed go; default `<source>.late`. */
  lateTopic?: string;
}

export interface ViewDef {
  kind: 'view';
  name: string;
  aggregation: Aggregation<unknown>;
  outOfOrdernessMs: number;
  allowedLatenessMs: number;
  lateTopic: string;
}

const VIEW_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function view<T>(name: string, aggregation: Aggregation<T>, opts: ViewOptions = {}): ViewDef {
  if (!VIEW_NAME.test(name)) throw new TypeError(`view name "${name}" must be a SQL name: lower-case letters, digits and _, starting with a letter or _`);
  const w = aggregation.stream.windowSpec;
  return {
    kind: 'view',
    name,
    aggregation: aggregation as Aggregation<unknown>,
    outOfOrdernessMs: opts.outOfOrderness !== undefined ? parseDuration(opts.outOfOrderness, 'outOfOrderness') : (w?.outOfOrdernessMs ?? 0),
    allowedLatenessMs: opts.allowedLateness !== undefined ? parseDuration(opts.allowedLateness, 'allowedLateness') : (w?.allowedLatenessMs ?? 0),
    lateTopic: opts.lateTopic ?? `${aggregation.stream.source.name}.late`,
  };
}

export interface AppDef {
  topics: TopicDef<unknown>[];
  views: ViewDef[];
}

/** Any topic, whatever its record type (a TopicDef's extractors make it invariant in T). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTopic = TopicDef<any>;

export function defineApp(app: { topics: readonly AnyTopic[]; views: readonly ViewDef[] }): AppDef {
  return { topics: [...app.topics] as TopicDef<unknown>[], views: [...app.views] };
}
