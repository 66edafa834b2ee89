/**
 * Tables from topics, and what a stream–table join reads them with.
 *
 * `table(topic, { key })` is the latest value per key of a topic (a changelog, as Kafka Streams'
 * KTable): each record sets its key's value, a record with a null value (a tombstone) deletes it.
 * Every version is kept with the event time it took effect at (for `retention` behind the table's
 * watermark when one is set; forever by default), so a join looks up the version that was current
 * at the joining event's time: a payment made before a card's limit changed joins the old limit,
 * even when it arrives after the change, and a rebuild from offset 0 finds the same versions.
 *
 * The event-time rule. A join at event time t waits until the table can no longer get a version
 * from at or before t: every partition the task reads of the table has a watermark past t (newest
 * table event time minus the table's out-of-orderness), or has been read to its end since the
 * stream's current batch began. A table update later than its out-of-orderness takes effect from
 * the table's watermark, not from its own (older) time. Replayed from offset 0, the table is read
 * just ahead of the stream, so a rebuild joins what live processing joined whenever the table's
 * updates reach the log before the stream events after them in event time; an update that reaches
 * the log after stream events later than it was missed by those events live, and is seen on replay.
 *
 * Where the table lives: each thread that runs a joining task reads the table from the log into
 * memory once (`SharedTable`, shared by the thread's tasks) at its start, then follows it. A
 * broadcast table (the default) is read whole by every such thread, and refuses more than `maxKeys`
 * keys; a partitioned one (`partitioned: true`) must have as many partitions as the stream and the
 * same keys (co-partitioned: the join key of an event is the table's key in the event's partition),
 * and each task reads only its own partition.
 *
 * A stream–stream join (`join(otherTopic, { within, key })`) reads the other topic the same way but
 * keeps its events (`TableDef.window`), and waits harder: an event at t is joined only once the other
 * topic's watermark passes t + within (a partition read to its end does not count), so every event
 * that can match it has been read, live and in a replay alike.
 */
import { createHash } from 'node:crypto';
import { KappaError, isKappaError } from '../errors.ts';
import type { Log, LogRecord } from '../log/index.ts';
import type { StoredTable, TableStateChange } from '../view/index.ts';
import type { KeyValue, TopicDef } from './dsl.ts';
import { FoldPause, NO_WATERMARK, type TaskState } from './task-plan.ts';
import { SchemaCatalog, SchemaRefreshNeeded, pauseIn } from './topic-schemas.ts';
import { sourceFieldsRead } from './fields-read.ts';
import { valueDecoder } from './value-decoder.ts';
import { type Duration, parseDuration } from './windows.ts';

export interface TableOptions<V> {
  /** The table's key of a value; default: the topic's key extractor, else the record key. A tombstone is keyed by its record key. */
  key?: (value: V) => KeyValue;
  /** Co-partitioned with the stream that joins it (same key, same partition count); default false: broadcast. */
  partitioned?: boolean;
  /** Most keys a table may hold in one thread; past it the task stops with an error saying so. Default 100,000 (broadcast), 1,000,000 (partitioned). */
  maxKeys?: number;
  /**
   * How long a superseded version is kept behind the table's watermark; default: forever, so a
   * rebuild from offset 0 joins every event with the version of its time. With a retention, an
   * event older than that (a replay of old history) finds no version and joins nothing.
   */
  retention?: Duration;
  /** How far out of event-time order the table's updates may arrive (default 0). */
  outOfOrderness?: Duration;
}

/** A table: what `table()` made. `V` is the type of its values. */
/** Records a table's key probe is tried on before it is kept or dropped (SharedTable.keyless). */
const PROBE_TRIAL = 1000;

export interface TableDef<V> {
  readonly kind: 'table';
  readonly topic: TopicDef<V>;
  readonly key: ((value: V) => KeyValue) | null;
  readonly partitioned: boolean;
  readonly maxKeys: number;
  readonly retentionMs: number;
  readonly outOfOrdernessMs: number;
  /**
   * Set for the other side of a stream–stream join (`join(topic, { within })`): every record is
   * kept (by key and event time) instead of the latest per key, for as long as a join can still
   * match it; a join finds those within `withinMs` of its event. Null for a table.
   */
  readonly window: { withinMs: number; allowedLatenessMs: number; idleAfterMs: number | null } | null;
}

/** The other side of a stream–stream join: `join(other, { within, key }, fn)`. */
export interface WindowJoinOptions<T, O> {
  /** An event joins the other stream's events of the same key at most this far from it in event time, either way. */
  within: Duration;
  /** The event's join key. */
  key: (value: T) => KeyValue | undefined;
  /** The other event's join key; default: the other topic's key extractor, else its record key. */
  otherKey?: (other: O) => KeyValue | undefined;
  /** How far behind the newest event of its partition an event may be and still join (later ones go to `<source>.late`); default 0. */
  allowedLateness?: Duration;
  /** How far out of event-time order the other stream's events may arrive (later ones join nothing); default: `within`. */
  outOfOrderness?: Duration;
  /** Co-partitioned with the stream (same key, same partition count); default false: every thread reads all of it. */
  partitioned?: boolean;
  /** Most keys held at once (as table()'s); default 100,000 (1,000,000 partitioned). */
  maxKeys?: number;
  /**
   * A partition of the other topic read to its end that has had nothing new for this long (wall
   * clock) stops holding the join back: events are joined with what was read. Default: never (the
   * join waits for the other topic's event time, which makes it deterministic). Trades that for
   * latency when the other topic can go quiet, as Flink's source idle timeout does.
   */
  idleAfter?: Duration;
}

/** The TableDef a stream–stream join reads its other side with. */
export function windowSide<O>(other: TopicDef<O>, opts: WindowJoinOptions<never, O>): TableDef<O> {
  const withinMs = parseDuration(opts.within, `within of the join with "${other.name}"`);
  if (withinMs <= 0) throw new TypeError(`within of the join with "${other.name}" must be more than 0`);
  const side = table(other, {
    key: opts.otherKey as ((value: O) => KeyValue) | undefined,
    partitioned: opts.partitioned,
    maxKeys: opts.maxKeys,
    outOfOrderness: opts.outOfOrderness ?? withinMs,
  });
  const allowedLatenessMs = parseDuration(
    opts.allowedLateness ?? 0,
    `allowedLateness of the join with "${other.name}"`,
  );
  const idleAfterMs =
    opts.idleAfter === undefined ? null : parseDuration(opts.idleAfter, `idleAfter of the join with "${other.name}"`);
  return { ...side, retentionMs: 0, window: { withinMs, allowedLatenessMs, idleAfterMs } };
}

export function table<V>(topic: TopicDef<V>, opts: TableOptions<V> = {}): TableDef<V> {
  const partitioned = opts.partitioned ?? false;
  const maxKeys = opts.maxKeys ?? (partitioned ? 1_000_000 : 100_000);
  if (!Number.isInteger(maxKeys) || maxKeys < 1)
    throw new TypeError(`maxKeys of table "${topic.name}" must be a whole number of at least 1, not ${opts.maxKeys}`);
  return {
    kind: 'table',
    topic,
    key: opts.key ?? topic.key,
    partitioned,
    maxKeys,
    retentionMs:
      opts.retention === undefined ? Infinity : parseDuration(opts.retention, `retention of table "${topic.name}"`),
    outOfOrdernessMs: parseDuration(opts.outOfOrderness ?? 0, `outOfOrderness of table "${topic.name}"`),
    window: null,
  };
}

/** What of a table decides a join's results (for fingerprints). */
export function tableSignature(t: TableDef<unknown>): string {
  return JSON.stringify([
    t.topic.name,
    t.topic.schema,
    t.topic.format?.schema ?? null,
    t.topic.time?.toString() ?? null,
    t.key?.toString() ?? null,
    t.partitioned,
    t.retentionMs,
    t.outOfOrdernessMs,
    t.window,
  ]);
}

/** Throws the configuration error of a join of `t` by a stream of `source`, if any. */
export function checkJoin(t: TableDef<unknown>, source: TopicDef<unknown>): void {
  if (t.partitioned && t.topic.partitions !== source.partitions)
    throw new TypeError(
      `table "${t.topic.name}" is partitioned (co-partitioned with the stream that joins it), so it needs as many partitions as topic "${source.name}": it has ${t.topic.partitions}, "${source.name}" has ${source.partitions}. Give both the same number, or drop partitioned: true to broadcast the table`,
    );
}

/** The fold must wait for the tables to be read up to an event time (see the event-time rule above). */
export class TableWaitNeeded extends FoldPause {
  constructor(readonly timeMs: number) {
    super(`the joined tables are read up to event time ${timeMs} first`);
  }

  async resume(state: TaskState): Promise<boolean> {
    await state.tables!.advance(this.timeMs);
    return state.tables!.ready(this.timeMs);
  }
}

/** One version of a key: its value (null: deleted) from event time `from` on; a kept table's also has its record bytes. */
interface Version {
  from: number;
  value: unknown;
  bytes?: Uint8Array | null;
}

/** How far the thread has read one partition of a table. */
interface PartitionRead {
  offset: number;
  maxEventMs: number;
  watermarkMs: number;
  /** The last read found nothing more (as of that read). */
  atEnd: boolean;
  /** When (wall clock) a read last found records. */
  lastDataAtMs: number;
}

const READ_BYTES = 1 << 20;
/** How long a task whose stream–stream join waits for the other stream pauses before it looks again. */
export const JOIN_WAIT_MS = 50;
/** A stream–stream join's other side drops the events no join can match after this many inserts. */
const SWEEP_EVERY = 10_000;
const TOMBSTONE = null;

const shared = new WeakMap<object, Map<TableDef<unknown>, SharedTable>>();

/** Where a table is kept in the view store (table-keeper.ts): its topic and a digest of what decides its versions. */
export function tableId(def: TableDef<unknown>): string {
  return `${def.topic.name}:${createHash('sha256').update(tableSignature(def)).digest('hex').slice(0, 16)}`;
}

/**
 * A table's name among the seeds a thread is given: what of it survives bundling (a worker thread's
 * bundled config reformats function text, so `tableId` differs there). The engine gives no seed to
 * two tables with the same seed key.
 */
export function seedKey(def: TableDef<unknown>): string {
  return JSON.stringify([def.topic.name, def.partitioned, def.retentionMs, def.outOfOrdernessMs]);
}

/** The tables as the view store held them when the engine started, by seed key: each thread's tables start from them. */
const stored = new Map<string, StoredTable>();
/** The tables of the config this thread loaded: only they start from a copy (a version running older stored code reads its topic). */
const seeded = new WeakSet<TableDef<unknown>>();

/**
 * Makes `tables` what this thread's tables start from (the engine's thread, or a worker's at its
 * start); `defs`: the config's tables (as this thread loaded it) that may use them.
 */
export function seedTables(
  tables: readonly { key: string; table: StoredTable }[],
  defs: readonly TableDef<unknown>[],
): void {
  for (const t of tables) stored.set(t.key, t.table);
  for (const d of defs) seeded.add(d);
}

/** A table as one thread holds it: every version of every key it has read, and how far it read. */
export class SharedTable {
  private readonly rows = new Map<string, Version[]>();
  private parts: PartitionRead[] | null = null;
  /** One read of the log at a time: tasks that need the table further wait for it, then look again. */
  private reading: Promise<void> = Promise.resolve();
  private readonly decode: ReturnType<typeof valueDecoder>;
  /**
   * When the key function reads a few properties of a JSON topic (fields-read.ts): a decoder of just
   * those, so the records a table drops for their key alone (a topic of several event types, of
   * which the table keeps one) are never decoded whole. Null when not known, or once it proved
   * not worth it (`probeSkips`).
   */
  private probe: ReturnType<typeof valueDecoder> | null;
  private probes = 0;
  private probeSkips = 0;
  private catalog: SchemaCatalog | null = null;

  /** Versions (or a window join's events) older than this were dropped; NO_WATERMARK: none. */
  private prunedBelowMs = NO_WATERMARK;
  /** What the table starts from instead of the topic's beginning (the view store's copy), until the first read. */
  private seed: StoredTable | null = null;
  /** A kept table (table-keeper.ts): the keys whose versions changed since the last `takeChange`; null otherwise. */
  private readonly changed: Set<string> | null;

  private constructor(
    private readonly log: Log | Promise<Log>,
    readonly def: TableDef<unknown>,
    needFromMs: number,
    keep = false,
  ) {
    this.decode = valueDecoder(def.topic);
    const keyReads =
      def.key === null || def.topic.format !== null || !def.topic.schema
        ? null
        : sourceFieldsRead({ time: null, ops: [], then: [def.key.toString()] });
    this.probe = keyReads === null ? null : valueDecoder(def.topic, keyReads);
    this.changed = keep ? new Set() : null;
    const seed = seeded.has(def) ? stored.get(seedKey(def)) : undefined;
    if (seed !== undefined && (seed.prunedBelowMs === NO_WATERMARK || seed.prunedBelowMs <= needFromMs))
      this.seed = seed;
  }

  /** The table the engine keeps in the view store (table-keeper.ts): its own, read from where the store's copy ends. */
  static kept(log: Log, def: TableDef<unknown>): SharedTable {
    return new SharedTable(log, def, NO_WATERMARK, true);
  }

  /**
   * The table of a log (or of a log being opened, in a worker thread), shared by the thread's tasks
   * that join it. A task that may need what the shared one already dropped (`needFromMs`: a new
   * version replaying from the start, while the live version's tasks read the table to its head)
   * gets a table of its own, read from the start, which the tasks opened after it share.
   */
  static of(log: Log | Promise<Log>, def: TableDef<unknown>, needFromMs: number): SharedTable {
    let byDef = shared.get(log);
    if (byDef === undefined) shared.set(log, (byDef = new Map()));
    let t = byDef.get(def);
    if (t === undefined || (t.prunedBelowMs !== NO_WATERMARK && t.prunedBelowMs > needFromMs))
      byDef.set(def, (t = new SharedTable(log, def, needFromMs)));
    return t;
  }

  /** The partitions read so far (null until the first read has looked the topic up). */
  partitions(): readonly PartitionRead[] | null {
    return this.parts;
  }

  /** The value of `key` at event time `t`, or undefined when it had none (or its history there is past retention). */
  lookup(key: string, t: number): unknown {
    const versions = this.rows.get(key);
    if (versions === undefined) return undefined;
    let i = versions.length - 1;
    while (i >= 0 && versions[i].from > t) i--;
    if (i < 0) return undefined;
    const v = versions[i].value;
    return v === TOMBSTONE ? undefined : v;
  }

  /** Reads `partitions` (null: all) until each has a watermark past `t` or is read to its end. */
  advance(partitions: readonly number[] | null, t: number): Promise<void> {
    const next = this.reading.then(() => this.readUntil(partitions, t));
    this.reading = next.catch(() => {});
    return next;
  }

  private async readUntil(partitions: readonly number[] | null, t: number): Promise<void> {
    const log = await this.log;
    if (this.def.topic.format !== null) this.catalog ??= SchemaCatalog.of(log);
    if (this.parts === null) {
      const info = await log.topic(this.def.topic.name);
      const seed = this.seed?.partitions.length === info.partitions ? this.seed : null;
      this.seed = null; // a load that fails leaves the table empty, to be read from offset 0
      if (seed !== null) await this.load(seed);
      this.parts = Array.from({ length: info.partitions }, (_, p) => ({
        offset: seed?.partitions[p].offset ?? 0,
        maxEventMs: seed?.partitions[p].maxEventMs ?? NO_WATERMARK,
        watermarkMs: seed?.partitions[p].watermarkMs ?? NO_WATERMARK,
        atEnd: false,
        lastDataAtMs: Date.now(),
      }));
    }
    for (const p of partitions ?? this.parts.keys()) {
      const part = this.parts[p];
      if (part === undefined)
        throw new KappaError(
          'KAPPA_CONFIG_INVALID',
          `table "${this.def.topic.name}" has ${this.parts.length} partitions, so partition ${p} of a co-partitioned stream has none to join; give the topics the same number of partitions`,
        );
      part.atEnd = false;
      while (part.watermarkMs <= t && !part.atEnd) await this.readOnce(log, p, part);
    }
  }

  /** Takes the view store's copy: every version it saved (decoded again: the store keeps the record bytes). */
  private async load(seed: StoredTable): Promise<void> {
    const rows = new Map<string, Version[]>();
    for (const v of seed.versions) {
      const bytes = v.value === null ? null : Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength);
      const value = bytes === null ? TOMBSTONE : await this.decodeValue(bytes);
      let versions = rows.get(v.key);
      if (versions === undefined) {
        rows.set(v.key, (versions = []));
        if (rows.size > this.def.maxKeys) throw this.tooLarge();
      }
      versions.push(this.changed === null ? { from: v.fromMs, value } : { from: v.fromMs, value, bytes });
    }
    for (const [key, versions] of rows) this.rows.set(key, versions);
    this.prunedBelowMs = seed.prunedBelowMs;
  }

  /**
   * A kept table: reads each partition up to `reads` times (less once at its end); resolves to
   * whether every partition was read to its end.
   */
  async catchUp(reads: number): Promise<boolean> {
    const log = await this.log;
    await this.advance([], NO_WATERMARK); // looks the topic up, and takes the seed, in turn with other reads
    let atEnd = true;
    for (const [p, part] of this.parts!.entries()) {
      part.atEnd = false;
      for (let i = 0; i < reads && !part.atEnd; i++) await this.readOnce(log, p, part);
      atEnd &&= part.atEnd;
    }
    return atEnd;
  }

  /** A kept table: the versions of the keys that changed since the last call, and how far it was read. */
  takeChange(): TableStateChange {
    const keys = [...this.changed!];
    this.changed!.clear();
    const partitions = (this.parts ?? []).map((p, partition) => ({
      partition,
      offset: p.offset,
      maxEventMs: p.maxEventMs,
      watermarkMs: p.watermarkMs,
    }));
    const versions = keys.flatMap((key) =>
      (this.rows.get(key) ?? []).map((v) => ({ key, fromMs: v.from, value: v.bytes ?? null })),
    );
    return { keys, versions, partitions, prunedBelowMs: this.prunedBelowMs };
  }

  /** A kept table whose change could not be saved: its keys go with the next one. */
  unsaved(keys: readonly string[]): void {
    for (const k of keys) this.changed!.add(k);
  }

  /** Reads about READ_BYTES of a partition and applies its records. */
  private async readOnce(log: Log, p: number, part: PartitionRead): Promise<void> {
    let any = false;
    const floor = this.def.window === null ? NO_WATERMARK : this.windowFloor();
    for await (const batch of log.read(this.def.topic.name, p, part.offset, { maxBytes: READ_BYTES, once: true })) {
      for (const r of batch.records(part.offset)) {
        if (!this.keyless(r)) await this.apply(r, part, floor);
        // Record by record: a read that fails part-way (a schema registry out of reach) resumes
        // after the last record applied, never applying one twice.
        part.offset = r.offset + 1;
      }
      part.offset = Math.max(part.offset, batch.lastOffset + 1);
      any = true;
    }
    if (!any) part.atEnd = true;
    else part.lastDataAtMs = Date.now();
  }

  /**
   * Whether `r` is a record `apply` would drop for its key alone (null or undefined), told by the
   * probe. Any doubt (no probe, a record it cannot decode, a key function that throws) says no,
   * and `apply` decides as it always does. A probe that skips fewer than half of its first
   * PROBE_TRIAL records is dropped: decoding the others twice would cost more than it saves.
   */
  private keyless(r: LogRecord): boolean {
    if (this.probe === null || r.value === null) return false;
    let key: KeyValue | undefined;
    try {
      key = this.def.key!(this.probe(r.value, 0, r.value.length, this.catalog));
    } catch {
      return false;
    }
    const skip = key === null || key === undefined;
    if (skip) this.probeSkips++;
    if (++this.probes === PROBE_TRIAL && this.probeSkips * 2 < PROBE_TRIAL) this.probe = null;
    return skip;
  }

  private async apply(r: LogRecord, part: PartitionRead, floor: number): Promise<void> {
    let value: unknown = TOMBSTONE;
    let time = r.timestamp;
    let key: KeyValue | undefined = r.key === null ? null : r.key.toString('utf8');
    if (r.value !== null) {
      try {
        value = await this.decodeValue(r.value);
        if (this.def.topic.time !== null) time = this.def.topic.time(value);
        if (this.def.key !== null) key = this.def.key(value);
      } catch (err) {
        // A log out of reach (reading a schema from the registry) is no fault of the record: the
        // read stops here and starts again at this record (readOnce moves the offset record by record).
        if (isKappaError(err, 'KAPPA_LOG_UNAVAILABLE')) throw err;
        return; // a record the table topic's schema refuses changes nothing (it went to the topic's .dlq when written over HTTP)
      }
    }
    if (key === null || key === undefined || !Number.isFinite(time)) return;
    if (this.def.window === null) {
      // Versions are dropped behind the slower of the table's watermark and the joining tasks' newest
      // events (the table is read ahead of them), less the retention.
      // A kept table (no joining task) drops them behind the table's watermark alone.
      const cursor = this.changed === null ? this.slowestCursorMs() : Infinity;
      const keepFrom = Math.min(part.watermarkMs, cursor) - this.def.retentionMs;
      const v: Version = { from: Math.max(time, part.watermarkMs), value };
      if (this.changed !== null) v.bytes = r.value === null ? null : new Uint8Array(r.value);
      this.insert(String(key), v, keepFrom);
    } else if (value !== TOMBSTONE && time >= part.watermarkMs && time >= floor) {
      // Later than its out-of-orderness, an event would join or not depending on when it was read: it
      // joins nothing. Older than the floor, no event that is not late can match it.
      this.insertEvent(String(key), { from: time, value });
    }
    if (time > part.maxEventMs) {
      part.maxEventMs = time;
      part.watermarkMs = Math.max(part.watermarkMs, time - this.def.outOfOrdernessMs);
    }
  }

  /** The tasks joining this side of a stream–stream join: their progress bounds what must be kept. */
  readonly consumers = new Set<TaskTables>();
  private insertsSinceSweep = 0;

  /** Events of the other side older than this can no longer match an event that is not late. */
  private windowFloor(): number {
    const cursor = this.slowestCursorMs();
    if (cursor === NO_WATERMARK) return NO_WATERMARK;
    return cursor - this.def.window!.allowedLatenessMs - this.def.window!.withinMs;
  }

  /** The newest event time the slowest joining task has reached (NO_WATERMARK when one has none yet, or none joins). */
  private slowestCursorMs(): number {
    let cursor = Infinity;
    for (const c of this.consumers) cursor = Math.min(cursor, c.cursorMs);
    return cursor === Infinity ? NO_WATERMARK : cursor;
  }

  /** Adds one event of the other side of a stream–stream join, dropping what no join can match any more. */
  private insertEvent(key: string, v: Version): void {
    let events = this.rows.get(key);
    if (events === undefined) {
      // A new key past maxKeys: first drop what no join can match any more (between sweeps a table
      // of fewer keys than SWEEP_EVERY inserts would otherwise never drop anything before refusing).
      if (this.rows.size >= this.def.maxKeys) this.sweep();
      if (this.rows.size >= this.def.maxKeys) throw this.tooLarge();
      this.rows.set(key, (events = []));
    }
    let at = events.length;
    while (at > 0 && events[at - 1].from > v.from) at--;
    events.splice(at, 0, v);
    if (++this.insertsSinceSweep >= SWEEP_EVERY) this.sweep();
  }

  /** Drops the events no join can match any more (older than `windowFloor`). */
  private sweep(): void {
    this.insertsSinceSweep = 0;
    const floor = this.windowFloor();
    for (const [k, list] of this.rows) {
      let drop = 0;
      while (drop < list.length && list[drop].from < floor) drop++;
      if (drop > 0) this.prunedBelowMs = Math.max(this.prunedBelowMs, floor);
      if (drop === list.length) this.rows.delete(k);
      else if (drop > 0) list.splice(0, drop);
    }
  }

  /** The values of `key`'s events from `lo` to `hi` (both included), oldest first. */
  within(key: string, lo: number, hi: number): unknown[] {
    const events = this.rows.get(key);
    const out: unknown[] = [];
    if (events === undefined) return out;
    for (const e of events) {
      if (e.from > hi) break;
      if (e.from >= lo) out.push(e.value);
    }
    return out;
  }

  private async decodeValue(bytes: Buffer): Promise<unknown> {
    for (;;) {
      try {
        return this.decode(bytes, 0, bytes.length, this.catalog);
      } catch (err) {
        const paused = pauseIn(err);
        if (!(paused instanceof SchemaRefreshNeeded) || this.catalog === null) throw err;
        await this.catalog.learn(paused.schemaId);
      }
    }
  }

  /** Adds a version of `key`, dropping the versions superseded before `floor` (retention). */
  private insert(key: string, v: Version, floor: number): void {
    this.changed?.add(key);
    let versions = this.rows.get(key);
    if (versions === undefined) {
      if (v.value === TOMBSTONE) return;
      this.rows.set(key, (versions = []));
      if (this.rows.size > this.def.maxKeys) throw this.tooLarge();
    }
    let at = versions.length;
    while (at > 0 && versions[at - 1].from > v.from) at--;
    versions.splice(at, 0, v);
    let keep = 0;
    while (keep + 1 < versions.length && versions[keep + 1].from <= floor) keep++;
    if (keep > 0) {
      versions.splice(0, keep);
      this.prunedBelowMs = Math.max(this.prunedBelowMs, floor);
    }
    if (versions.length === 1 && versions[0].value === TOMBSTONE && versions[0].from <= floor) this.rows.delete(key);
  }

  private tooLarge(): KappaError {
    const name = this.def.topic.name;
    const waiting = [...this.consumers].find((c) => c.cursorMs === NO_WATERMARK);
    const why =
      this.def.window !== null && waiting !== undefined
        ? `It keeps every event of "${name}" while a task joining it has had no event yet (partition ${waiting.partition} of its stream): a windowed join drops the other side's events only behind the slowest partition of its stream, so a partition that gets no events holds them all. `
        : '';
    return new KappaError(
      'KAPPA_CONFIG_INVALID',
      `table "${name}" holds more than ${this.def.maxKeys} keys, its maxKeys. ${why}${
        this.def.partitioned
          ? "Raise maxKeys in table(), or give the topics more partitions (each thread holds its tasks' partitions)."
          : 'A broadcast table is held whole by every thread that joins it: raise maxKeys in table() if the memory is there, or declare it partitioned: true (co-partitioned with the stream) so each task holds only its partition.'
      }`,
      { table: name, maxKeys: this.def.maxKeys },
    );
  }
}

/** The tables one task joins, as it reads them: a partitioned table's own partition, a broadcast one's all. */
export class TaskTables {
  private readonly entries: { table: SharedTable; partitions: number[] | null; lookaheadMs: number }[];
  /** Whether the tables' ends were looked at since the task's current batch began. */
  private fresh = false;
  /** Events before this time are ready whatever the tables' ends (every partition's watermark is past them). */
  private readyBelowMs = NO_WATERMARK;
  /** With `fresh`: events before this time are ready (partitions read to their end count as past any time). */
  private freshBelowMs = NO_WATERMARK;
  /** The newest event time the task has joined (stream–stream joins: what is late, and what can be dropped). */
  cursorMs = NO_WATERMARK;
  /** With a stream–stream join: an event this far behind `cursorMs` is late; null: none. */
  private readonly latenessMs: number | null;

  /** `cursorMs`: the newest event time the task's checkpoint had seen (its saved watermark), so a restart judges lateness as before. */
  constructor(
    log: Log | Promise<Log>,
    tables: readonly TableDef<unknown>[],
    readonly partition: number,
    cursorMs = NO_WATERMARK,
  ) {
    this.cursorMs = cursorMs;
    this.entries = tables.map((def) => ({
      // What the task may still look up: a table version from its retention before the task's
      // newest event; another stream's events back to its lateness and window.
      table: SharedTable.of(
        log,
        def,
        def.window === null
          ? cursorMs - def.retentionMs
          : cursorMs - def.window.allowedLatenessMs - def.window.withinMs,
      ),
      partitions: def.partitioned ? [partition] : null,
      lookaheadMs: def.window?.withinMs ?? 0,
    }));
    const windows = tables.filter((d) => d.window !== null).map((d) => d.window!.allowedLatenessMs);
    this.latenessMs = windows.length === 0 ? null : Math.min(...windows);
    for (const e of this.entries) e.table.consumers.add(this);
  }

  /** A new batch begins: the tables' ends are looked at again before an event relies on them. */
  stale(): void {
    this.fresh = false;
  }

  /** Whether an event at time `t` can be joined now (else the fold throws TableWaitNeeded). */
  ready(t: number): boolean {
    return t < this.readyBelowMs || (this.fresh && t < this.freshBelowMs);
  }

  /**
   * Whether an event at time `t` is too late to join (a stream–stream join keeps the other side
   * only so far back); otherwise the task's cursor moves on to it.
   */
  late(t: number): boolean {
    if (this.latenessMs !== null && t < this.cursorMs - this.latenessMs) return true;
    if (t > this.cursorMs) this.cursorMs = t;
    return false;
  }

  async advance(t: number): Promise<void> {
    // The event at `t` is about to be joined (it is not late): what is older than its window need not be kept.
    if (t > this.cursorMs) this.cursorMs = t;
    for (const e of this.entries) await e.table.advance(e.partitions, t + e.lookaheadMs);
    let ready = Infinity;
    let fresh = Infinity;
    for (const e of this.entries) {
      const parts = e.table.partitions() ?? [];
      for (const p of e.partitions ?? parts.keys()) {
        const part = parts[p];
        ready = Math.min(ready, part.watermarkMs - e.lookaheadMs);
        // A table read to its end has nothing more to say; the other stream of a window join has: wait for it.
        const window = e.table.def.window;
        const idle = window?.idleAfterMs != null && Date.now() - part.lastDataAtMs >= window.idleAfterMs;
        const done = part.atEnd && (window === null || idle);
        fresh = Math.min(fresh, done ? Infinity : part.watermarkMs - e.lookaheadMs);
      }
    }
    this.readyBelowMs = ready;
    this.freshBelowMs = fresh;
    this.fresh = true;
  }

  private shared(def: TableDef<unknown>): SharedTable {
    for (const e of this.entries) if (e.table.def === def) return e.table;
    throw new Error(`table "${def.topic.name}" is not among the task's tables`);
  }

  lookup(def: TableDef<unknown>, key: string, t: number): unknown {
    return this.shared(def).lookup(key, t);
  }

  /** The other stream's events of `key` within the join's window of `t`. */
  within(def: TableDef<unknown>, key: string, t: number): unknown[] {
    const w = def.window!.withinMs;
    return this.shared(def).within(key, t - w, t + w);
  }

  /** The task is done: it no longer holds back what the stream–stream joins it read may drop. */
  close(): void {
    for (const e of this.entries) e.table.consumers.delete(this);
  }
}

/** Sends a record a stream–stream join found too late to the late topic. */
export function joinLate(state: TaskState, record: LogRecord, eventTimeMs: number): void {
  state.late.push({ record, partition: state.partition, eventTimeMs, watermarkMs: state.tables!.cursorMs });
}

/** The tables a chain of steps joins, in order, each once. */
export function joinedTables(ops: readonly { kind: string; table?: TableDef<unknown> }[]): TableDef<unknown>[] {
  const out: TableDef<unknown>[] = [];
  for (const op of ops) if (op.kind === 'join' && op.table && !out.includes(op.table)) out.push(op.table);
  return out;
}
