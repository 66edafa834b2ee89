/**
 * The pipeline DSL users write in `kappa.config.ts`: typed topics, streams with filter / map /
 * flatMap / window / groupBy / aggregate, and views. Definitions are plain immutable values; the
 * engine compiles them (plan.ts) into one synchronous function per batch. The same definition
 * drives live processing and replay.
 *
 * Types: the record type flows from a topic's schema through every step, and a view carries the
 * type of its rows (`InferRow<typeof v>`): the group key's fields, `window_start` / `window_end`
 * when the stream is windowed, and one column per aggregate (see dsl-aggregates.ts). Those types
 * are phantoms: fields that are never set at run time, so they change nothing the engine sees.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { Aggregate } from './aggregates.ts';
import type { ColumnOf, Stored } from './dsl-aggregates.ts';
import { type Duration, type WindowSpec, parseDuration } from './windows.ts';
import { type TopicFormat, formatOf } from './dsl-formats.ts';
import { type TableDef, type WindowJoinOptions, checkJoin, windowSide } from './tables.ts';

export type KeyValue = string | number | boolean | null;

/** The columns a windowed view adds to its rows: the window's bounds, in ms since the epoch. */
export interface WindowColumns {
  window_start: number;
  window_end: number;
}

/** The window columns of a stream that has no window: none. */
export type NoColumns = Record<never, never>;

/** `T` with its intersections flattened into one object type, as an editor shows a row. */
export type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The row type of a view grouped by `K`, with window columns `W`, aggregating `A`. */
export type RowOf<K, W, A> = Simplify<{ [F in keyof K]: Stored<K[F]> } & W & { [F in keyof A]: ColumnOf<A[F]> }>;

export interface TopicDef<T> {
  readonly kind: 'topic';
  readonly name: string;
  readonly partitions: number;
  /** JSON Schema (TypeBox or plain) every record must satisfy; records that fail go to `<name>.dlq`. */
  readonly schema: TSchema | object | null;
  /** Avro, Protobuf or JSON Schema records in Confluent's wire format (dsl-formats.ts); null: plain JSON checked by `schema`. */
  readonly format: TopicFormat | null;
  /** Partitioning key of records produced to this topic (murmur2, as Kafka). */
  readonly key: ((value: T) => KeyValue) | null;
  /** Event time of a record in ms; default: the record's log timestamp. */
  readonly time: ((value: T) => number) | null;
  readonly retentionMs: number;
  /** What HTTP ingestion does with records that fail the schema: refuse the whole request (default), or append the valid ones and send the others to `<name>.dlq`. */
  readonly onInvalid: 'reject' | 'dlq';
  /** Phantom field carrying the record type; never set at run time. */
  readonly __type?: T;
}

export interface TopicOptions<T> {
  partitions?: number;
  key?: (value: T) => KeyValue;
  time?: (value: T) => number;
  /** -1 (default) keeps the log forever: in a Kappa architecture the log is the history. */
  retentionMs?: number;
  /** HTTP ingestion of records that fail the schema: 'reject' the request (default) or send them to `<name>.dlq`. */
  onInvalid?: 'reject' | 'dlq';
}

export function topic<T>(name: string, opts: TopicOptions<T> & { format: TopicFormat<T> }): TopicDef<T>;
export function topic<S extends TSchema>(
  name: string,
  opts: TopicOptions<Static<S>> & { schema: S },
): TopicDef<Static<S>>;
export function topic<T>(name: string, opts?: TopicOptions<T> & { schema?: object }): TopicDef<T>;
export function topic<T>(
  name: string,
  opts: TopicOptions<T> & { schema?: object; format?: TopicFormat<T> } = {},
): TopicDef<T> {
  return {
    kind: 'topic',
    name,
    partitions: opts.partitions ?? 1,
    schema: opts.schema ?? null,
    format: formatOf(name, opts.format, opts.schema),
    key: opts.key ?? null,
    time: opts.time ?? null,
    retentionMs: opts.retentionMs ?? -1,
    onInvalid: onInvalidOf(name, opts.onInvalid),
  };
}

function onInvalidOf(name: string, v: unknown): 'reject' | 'dlq' {
  if (v === undefined || v === 'reject' || v === 'dlq') return v ?? 'reject';
  throw new TypeError(`onInvalid of topic "${name}" must be 'reject' or 'dlq', not ${JSON.stringify(v)}`);
}

/**
 * A step of a stream. `stateful` (alerts and detectors, see alerts.ts) keeps state per task
 * between events: `fn` gets that state, the event and its event time, and returns what it emits.
 * Its state lives only in memory, so a pipeline with one replays its source from the start at
 * every start (OutputDef.fromStart) and rebuilds the same state from the same events.
 */
export type Op =
  | { kind: 'filter'; fn: (v: unknown) => boolean }
  | { kind: 'map'; fn: (v: unknown) => unknown }
  | { kind: 'flatMap'; fn: (v: unknown) => Iterable<unknown> }
  | { kind: 'stateful'; fn: (state: Map<unknown, unknown>, v: unknown, eventTimeMs: number) => Iterable<unknown> }
  | JoinOp;

/**
 * A join (`Stream.join`, `Stream.leftJoin`): `key` gives an event's key in `table`, `fn` makes the
 * joined value from the event and the table's value at the event's time (undefined for a left join
 * that found none; an inner join drops the event instead). With `table.window` set (a stream–stream
 * join), `fn` runs once per event of the other stream within the window.
 */
export interface JoinOp {
  kind: 'join';
  table: TableDef<unknown>;
  key: (v: unknown) => KeyValue | undefined;
  fn: (v: unknown, row: unknown) => unknown;
  left: boolean;
}

/**
 * A stream of values of type T. `W` is the columns a view of it adds for its window: none
 * (`NoColumns`), or `WindowColumns` once `window()` was called. A windowed stream is still
 * accepted wherever a `Stream<T>` is (alerts and detectors take either).
 */
export class Stream<T, W = NoColumns> {
  constructor(
    readonly source: TopicDef<unknown>,
    readonly ops: readonly Op[],
    readonly windowSpec: WindowSpec | null,
  ) {}

  filter(fn: (value: T) => boolean): Stream<T, W> {
    const op: Op = { kind: 'filter', fn: fn as (v: unknown) => boolean };
    return new Stream<T, W>(this.source, [...this.ops, op], this.windowSpec);
  }

  map<U>(fn: (value: T) => U): Stream<U, W> {
    const op: Op = { kind: 'map', fn: fn as (v: unknown) => unknown };
    return new Stream<U, W>(this.source, [...this.ops, op], this.windowSpec);
  }

  flatMap<U>(fn: (value: T) => Iterable<U>): Stream<U, W> {
    const op: Op = { kind: 'flatMap', fn: fn as (v: unknown) => Iterable<unknown> };
    return new Stream<U, W>(this.source, [...this.ops, op], this.windowSpec);
  }

  /**
   * Enriches each event with the value `table` held under `key(event)` at the event's time, as
   * `fn(event, value)` makes it; an event whose key the table does not hold is dropped (see
   * leftJoin). The table's versions are kept by event time, so a replay joins the same versions
   * (the rule is in tables.ts and docs/joins.md).
   *
   * With a topic and `{ within, key }` instead: a stream–stream join, `fn(event, other)` once for
   * every event of `other` with the same key at most `within` from the event in event time.
   */
  join<V, U>(table: TableDef<V>, key: (value: T) => KeyValue | undefined, fn: (value: T, row: V) => U): Stream<U, W>;
  join<O, U>(other: TopicDef<O>, opts: WindowJoinOptions<T, O>, fn: (value: T, other: O) => U): Stream<U, W>;
  join(
    side: TableDef<unknown> | TopicDef<unknown>,
    key: ((value: T) => KeyValue | undefined) | WindowJoinOptions<T, unknown>,
    fn: (value: T, row: unknown) => unknown,
  ): Stream<unknown, W> {
    return this.joinOp(side, key, fn, false);
  }

  /** As join(), but an event that finds nothing to join is kept: `fn` gets undefined for the other side. */
  leftJoin<V, U>(
    table: TableDef<V>,
    key: (value: T) => KeyValue | undefined,
    fn: (value: T, row: V | undefined) => U,
  ): Stream<U, W>;
  leftJoin<O, U>(
    other: TopicDef<O>,
    opts: WindowJoinOptions<T, O>,
    fn: (value: T, other: O | undefined) => U,
  ): Stream<U, W>;
  leftJoin(
    side: TableDef<unknown> | TopicDef<unknown>,
    key: ((value: T) => KeyValue | undefined) | WindowJoinOptions<T, unknown>,
    fn: (value: T, row: unknown) => unknown,
  ): Stream<unknown, W> {
    return this.joinOp(side, key, fn, true);
  }

  private joinOp(
    side: TableDef<unknown> | TopicDef<unknown>,
    key: ((value: T) => KeyValue | undefined) | WindowJoinOptions<T, unknown>,
    fn: (value: T, row: unknown) => unknown,
    left: boolean,
  ): Stream<unknown, W> {
    let table: TableDef<unknown>;
    let keyFn: (value: T) => KeyValue | undefined;
    if (side?.kind === 'table' && typeof key === 'function') {
      table = side;
      keyFn = key;
    } else if (side?.kind === 'topic' && typeof key === 'object' && key !== null) {
      table = windowSide(side, key as WindowJoinOptions<never, unknown>);
      keyFn = key.key;
    } else
      throw new TypeError(
        'join() takes a table and a key function (join(table(topic), (e) => e.id, fn)), or a topic and { within, key } (join(other, { within: "10m", key: (e) => e.id }, fn))',
      );
    if (typeof keyFn !== 'function' || typeof fn !== 'function')
      throw new TypeError(
        `the join with "${table.topic.name}" needs a key function and a function making the joined value`,
      );
    checkJoin(table, this.source);
    const op: JoinOp = { kind: 'join', table, key: keyFn as (v: unknown) => KeyValue, fn: fn as JoinOp['fn'], left };
    return new Stream<unknown, W>(this.source, [...this.ops, op], this.windowSpec);
  }

  /** Groups events into event-time windows; rows of the view then carry window_start and window_end. */
  window(spec: WindowSpec): Stream<T, WindowColumns> {
    if (this.windowSpec) throw new TypeError('a stream can be windowed once');
    return new Stream<T, WindowColumns>(this.source, this.ops, spec);
  }

  groupBy<K extends Record<string, KeyValue>>(fn: (value: T) => K): GroupedStream<T, K, W> {
    return new GroupedStream<T, K, W>(this, fn);
  }

  /**
   * Writes every value of the stream to `target`, a derived topic (the feedback loop): other views
   * and pipelines read it like any topic. Exactly once: after a crash the task re-sends from its
   * checkpoint and the log drops what it already has (idempotent producer). Each value is
   * checked against the target's schema; its key and event time come from the target's
   * extractors (a record without a key stays on the partition number of its source record).
   * `name` identifies the pipeline's checkpoints; default `<source>_to_<target>`.
   */
  to(target: TopicDef<T> | TopicDef<unknown>, opts: { name?: string } = {}): OutputDef {
    if (this.windowSpec)
      throw new TypeError('to() writes events as they come; a windowed stream can only be aggregated');
    const name = opts.name ?? `${this.source.name}_to_${target.name}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
    if (!PIPELINE_NAME.test(name))
      throw new TypeError(
        `output name "${name}" must be lower-case letters, digits and _, starting with a letter or _`,
      );
    return { kind: 'output', name, stream: this as Stream<unknown>, target: target as TopicDef<unknown> };
  }

  /** Aggregates windows without group keys (one row per window). */
  aggregate<A extends Record<string, Aggregate<T>>>(aggregates: A): Aggregation<RowOf<NoColumns, W, A>> {
    if (!this.windowSpec)
      throw new TypeError('aggregate() without groupBy() needs a window(); use groupBy() to aggregate by key');
    return new GroupedStream<T, NoColumns, W>(this, () => ({})).aggregate(aggregates);
  }
}

export class GroupedStream<T, K extends Record<string, KeyValue>, W = NoColumns> {
  constructor(
    readonly stream: Stream<T, W>,
    readonly keyFn: (value: T) => K,
  ) {}

  aggregate<A extends Record<string, Aggregate<T>>>(aggregates: A): Aggregation<RowOf<K, W, A>> {
    if (Object.keys(aggregates).length === 0) throw new TypeError('aggregate() needs at least one aggregate');
    return {
      kind: 'aggregation',
      stream: this.stream as Stream<unknown>,
      keyFn: this.keyFn as (v: unknown) => Record<string, KeyValue>,
      aggregates: aggregates as Record<string, Aggregate<unknown>>,
    };
  }
}

/** What `aggregate()` returns: the input of `view()`. `Row` is the type of the view's rows. */
export interface Aggregation<Row = unknown> {
  kind: 'aggregation';
  stream: Stream<unknown>;
  keyFn: (value: unknown) => Record<string, KeyValue>;
  aggregates: Record<string, Aggregate<unknown>>;
  /** Phantom field carrying the row type; never set at run time. */
  readonly __row?: Row;
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
  /** Retired versions kept (for rollback) when a new version goes live; older ones are dropped. Default 1. */
  keepVersions?: number;
  /**
   * When to build a new version by replaying the log. 'auto' (the default): when `kappa start`
   * finds the view's logic changed. 'manual': only on `kappa replay` (the live version keeps its
   * logic until then). `{ every: '24h' }`: also on a schedule, counted from when the live version
   * went live (`onChange` says what a logic change does; default 'auto').
   */
  rebuild?: 'auto' | 'manual' | { every: Duration; onChange?: 'auto' | 'manual' };
}

/** `ViewOptions.rebuild`, normalized. */
export interface RebuildPolicy {
  onChange: 'auto' | 'manual';
  /** Rebuild when the live version has been live this long; null: no schedule. */
  everyMs: number | null;
}

/** A view: its name, its aggregation and its options, as `view()` made them. `Row` is the type of its rows. */
export interface ViewDef<Row = unknown> {
  kind: 'view';
  name: string;
  aggregation: Aggregation<unknown>;
  outOfOrdernessMs: number;
  allowedLatenessMs: number;
  lateTopic: string;
  keepVersions: number;
  rebuild: RebuildPolicy;
  /** Phantom field carrying the row type (what a query of the view returns); never set at run time. */
  readonly __row?: Row;
}

/**
 * The type of a view's rows, inferred from its definition: `InferRow<typeof byRegion>` types what a
 * query of `by_region` returns. Takes a view or an aggregation.
 */
export type InferRow<V> = V extends ViewDef<infer R> ? R : V extends Aggregation<infer R> ? R : never;

const PIPELINE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A pipeline writing a stream to a derived topic (`Stream.to`). */
export interface OutputDef {
  kind: 'output';
  name: string;
  stream: Stream<unknown>;
  target: TopicDef<unknown>;
  /**
   * Reads its source from the start at every start instead of from a checkpoint (a pipeline with a
   * stateful step: its state is rebuilt from the same events). What it writes again is dropped by
   * the log as duplicates (same producer, same sequences), so each record is still written once.
   */
  fromStart?: boolean;
}

function rebuildPolicy(name: string, r: ViewOptions['rebuild']): RebuildPolicy {
  if (r === undefined || r === 'auto' || r === 'manual') return { onChange: r ?? 'auto', everyMs: null };
  const bad = (why: string): TypeError =>
    new TypeError(
      `rebuild of view "${name}" ${why}: use 'auto', 'manual' or { every: '24h' } (optionally with onChange: 'auto' | 'manual')`,
    );
  if (typeof r !== 'object' || r === null) throw bad(`is ${JSON.stringify(r)}`);
  const onChange = r.onChange ?? 'auto';
  if (onChange !== 'auto' && onChange !== 'manual') throw bad(`has onChange ${JSON.stringify(r.onChange)}`);
  const everyMs = parseDuration(r.every, `rebuild.every of view "${name}"`);
  if (everyMs < 1000) throw bad(`has every ${JSON.stringify(r.every)}, under a second`);
  return { onChange, everyMs };
}

export function view<Row>(name: string, aggregation: Aggregation<Row>, opts: ViewOptions = {}): ViewDef<Row> {
  if (!PIPELINE_NAME.test(name))
    throw new TypeError(
      `view name "${name}" must be a SQL name: lower-case letters, digits and _, starting with a letter or _`,
    );
  const keepVersions = opts.keepVersions ?? 1;
  if (!Number.isInteger(keepVersions) || keepVersions < 0)
    throw new TypeError(`keepVersions of view "${name}" must be a whole number (0 or more), not ${opts.keepVersions}`);
  const w = aggregation.stream.windowSpec;
  return {
    kind: 'view',
    rebuild: rebuildPolicy(name, opts.rebuild),
    name,
    aggregation: aggregation as Aggregation<unknown>,
    outOfOrdernessMs:
      opts.outOfOrderness !== undefined
        ? parseDuration(opts.outOfOrderness, 'outOfOrderness')
        : (w?.outOfOrdernessMs ?? 0),
    allowedLatenessMs:
      opts.allowedLateness !== undefined
        ? parseDuration(opts.allowedLateness, 'allowedLateness')
        : (w?.allowedLatenessMs ?? 0),
    lateTopic: opts.lateTopic ?? `${aggregation.stream.source.name}.late`,
    keepVersions,
  };
}

/** A bearer token of the HTTP server: its name, the SHA-256 of the token (never the token), and its scopes. */
export interface TokenConfig {
  name: string;
  /** Hex SHA-256 of the token; `kappa token <name> --scopes …` prints a token and this digest. */
  sha256: string;
  /** `produce:<topic>`, `consume:<topic>`, `query`, `admin`; `*` matches any characters. */
  scopes: string[];
}

/** The HTTP server's settings (`kappa start` flags override host and port). */
export interface ServerConfig {
  /** Default 127.0.0.1. Any other address needs tokens. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** With none, the server binds to the loopback address only and every route is open. */
  tokens?: TokenConfig[];
  /** Largest request body accepted, in bytes (default 1 GiB; an NDJSON body streams, it is never held whole). */
  bodyLimitBytes?: number;
  /** The Kafka listener (on by default, port 9092); false turns it off (as `kappa start --no-kafka`). */
  kafka?: KafkaConfig | false;
}

/**
 * Kafka's wire protocol on Kappa's log: any Kafka client (kcat, librdkafka, kafkajs, the Java
 * client) produces to and consumes from Kappa's topics, with consumer groups. Authentication is
 * the server's tokens over SASL/PLAIN (user = token name, password = token), with the same scopes.
 */
export interface KafkaConfig {
  /** Default: the HTTP server's host (127.0.0.1). Any other address needs tokens. */
  host?: string;
  /** Default 9092; 0 picks a free port. `kappa start --kafka-port` overrides it. */
  port?: number;
  /** The address clients are told to connect to (in Metadata answers), when they reach Kappa by another name than `host` (a container, NAT). */
  advertisedHost?: string;
  /** TLS for the listener: paths of PEM files (so tokens never cross a network in clear). */
  tls?: { cert: string; key: string };
}

/** Where `kappa start` POSTs each record of a topic (alerts, typically); see src/app/webhooks.ts. */
export interface WebhookConfig {
  /** Names its delivery checkpoint and its dead letters. */
  name: string;
  url: string;
  /** The topic whose records are sent (default 'alerts'). */
  topic?: string;
  /** Tries per record before it goes to `<topic>.webhook-dlq` (default 5). */
  maxAttempts?: number;
  /** Wait before the first retry; doubled at each one (default 500 ms). */
  backoffMs?: number;
  /** Longest wait for an answer (default 5000 ms). */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface AppDef {
  topics: TopicDef<unknown>[];
  views: ViewDef[];
  outputs: OutputDef[];
  server: ServerConfig;
  webhooks: WebhookConfig[];
}

/** Any topic, whatever its record type (a TopicDef's extractors make it invariant in T). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTopic = TopicDef<any>;

/**
 * The app a config file exports: its topics, its views, and its derived-topic pipelines
 * (`from(a)....to(b)`). Names must be unique among views and outputs (they key the checkpoints),
 * and outputs may not form a cycle (a → b → a would feed itself forever).
 */
export function defineApp(app: {
  topics: readonly AnyTopic[];
  views?: readonly ViewDef[];
  outputs?: readonly OutputDef[];
  server?: ServerConfig;
  webhooks?: readonly WebhookConfig[];
}): AppDef {
  const views = [...(app.views ?? [])];
  const outputs = [...(app.outputs ?? [])];
  const names = new Set<string>();
  for (const p of [...views, ...outputs]) {
    if (names.has(p.name))
      throw new TypeError(
        `two pipelines are named "${p.name}"; view and output names must be unique${p.kind === 'output' ? ' (give to() a name: .to(topic, { name: "..." }))' : ''}`,
      );
    names.add(p.name);
  }
  const declared = new Set(app.topics.map((t) => t.name));
  for (const p of [...views, ...outputs]) {
    const stream = p.kind === 'view' ? p.aggregation.stream : p.stream;
    for (const op of stream.ops)
      if (op.kind === 'join' && !declared.has(op.table.topic.name))
        throw new TypeError(
          `${p.kind} "${p.name}" joins a table of topic "${op.table.topic.name}", which is not among the app's topics; add it to defineApp({ topics })`,
        );
  }
  const cycle = findCycle(outputs);
  if (cycle)
    throw new TypeError(`outputs form a cycle: ${cycle.join(' → ')}; each event would be written again forever`);
  const webhooks = [...(app.webhooks ?? [])];
  for (const w of webhooks) {
    if (!PIPELINE_NAME.test(w.name))
      throw new TypeError(
        `webhook name "${w.name}" must be lower-case letters, digits and _, starting with a letter or _`,
      );
    let url: URL;
    try {
      url = new URL(w.url);
    } catch {
      throw new TypeError(`webhook "${w.name}" has url ${JSON.stringify(w.url)}, which is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`webhook "${w.name}" must use http: or https:, not ${url.protocol}`);
  }
  return {
    topics: [...app.topics] as TopicDef<unknown>[],
    views,
    outputs,
    server: { ...(app.server ?? {}) },
    webhooks,
  };
}

/** A cycle among the topics outputs write (source → target edges), as topic names, or null. */
function findCycle(outputs: readonly OutputDef[]): string[] | null {
  const edges = new Map<string, string[]>();
  for (const o of outputs) {
    const from = o.stream.source.name;
    edges.set(from, [...(edges.get(from) ?? []), o.target.name]);
  }
  const done = new Set<string>();
  const walk = (topic: string, path: string[]): string[] | null => {
    const at = path.indexOf(topic);
    if (at !== -1) return [...path.slice(at), topic];
    if (done.has(topic)) return null;
    for (const next of edges.get(topic) ?? []) {
      const found = walk(next, [...path, topic]);
      if (found) return found;
    }
    done.add(topic);
    return null;
  };
  for (const topic of edges.keys()) {
    const found = walk(topic, []);
    if (found) return found;
  }
  return null;
}
