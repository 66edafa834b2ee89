/**
 * `FileLog`: the embedded implementation of the `Log` port, a directory of topics on local disk.
 *
 * Layout:
 *   <dir>/.lock                       pid of the process that has the log open for writing
 *   <dir>/.clean-shutdown             present only between a clean close and the next open
 *   <dir>/topics/<topic>/topic.json   topic configuration, replaced atomically
 *   <dir>/topics/<topic>/<partition>/<base offset, 20 digits>.{log,index,timeindex,snapshot}
 *                                     (.snapshot: idempotent producers' state at that offset, producer-state.ts)
 *   <dir>/deleted-topics/<topic>.<ms> a deleted topic on its way out (topic-removal.ts); removed on open
 *
 * One process writes a data directory at a time (the lock); any number may open it read-only
 * (`kappa consume`, `kappa verify`) beside the writer and follow what it appends.
 * A topic is created by making its partition directories first and writing topic.json last: a
 * topic directory without topic.json is an interrupted creation and is removed on open. A topic is
 * deleted by moving its directory out of topics/ in one rename first (topic-removal.ts).
 */
import { join } from 'node:path';
import { assertIncreasing } from '../assert.ts';
import { KappaError } from '../errors.ts';
import { producerOf, toEncodable } from './append-input.ts';
import { acquireLock, releaseLock } from './data-dir-lock.ts';
import { type LogFs, defaultFs, fsyncDir, writeFileAtomic } from './fs.ts';
import { checkPartitionCount, checkTopicLimits, checkTopicName } from './names.ts';
import { NO_DUPLICATES, Partition, type ReadCursor } from './partition.ts';
import { partitionForKey } from './partitioner.ts';
import type { EncodableRecord, RecordBatch } from './record-batch.ts';
import { removeDeletedTopics, removeTopicDir } from './topic-removal.ts';
import type {
  AppendBatchResult,
  BatchOptions,
  EncodedAppendOptions,
  Clock,
  FsyncMode,
  Log,
  LogDescriptor,
  Logger,
  PartitionHealth,
  PartitionOffsets,
  ProducerRecord,
  ReadOptions,
  RecordMetadata,
  TopicConfig,
  TopicInfo,
} from './types.ts';

/** How long the files of a reopened partition stay open for reads that were under way. */
const REOPENED_CLOSE_DELAY_MS = 10_000;

export interface FileLogOptions {
  /** The data directory. */
  dir: string;
  /** `always` (default): acknowledge after fsync, with group commit. `interval`: fsync every
   * `fsyncIntervalMs`, acknowledge after the write. `never`: the OS writes the pages back when it chooses. */
  fsync?: FsyncMode;
  fsyncIntervalMs?: number;
  /** Open without taking the writer's lock, for reading beside a running writer. */
  readOnly?: boolean;
  /** How often a read-only follower looks for data another process appended. */
  pollIntervalMs?: number;
  retentionCheckIntervalMs?: number;
  fs?: LogFs;
  clock?: Clock;
  logger?: Logger;
}

export const TOPIC_DEFAULTS = {
  retentionMs: -1,
  retentionBytes: -1,
  segmentBytes: 256 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
} as const;

const READ_BYTES_DEFAULT = 1 << 20;
const READ_BYTES_MIN = 4096;

export const stderrLogger: Logger = {
  info: (m) => process.stderr.write(`kappa: ${m}\n`),
  warn: (m) => process.stderr.write(`kappa: warning: ${m}\n`),
};

interface TopicState {
  info: TopicInfo;
  partitions: Partition[];
  roundRobin: number;
}

export class FileLog implements Log {
  private readonly fs: LogFs;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly topicsDir: string;
  private readonly state = new Map<string, TopicState>();
  private cleanShutdown = false;
  private closed = false;
  private retentionTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly opts: FileLogOptions) {
    this.fs = opts.fs ?? defaultFs;
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.logger = opts.logger ?? stderrLogger;
    this.topicsDir = join(opts.dir, 'topics');
  }

  /** Told how long each group-commit fsync took, in seconds (the server's metrics set it). */
  fsyncObserver: ((seconds: number) => void) | null = null;

  get dir(): string {
    return this.opts.dir;
  }

  get readOnly(): boolean {
    return this.opts.readOnly === true;
  }

  get descriptor(): LogDescriptor {
    return { kind: 'file', dir: this.opts.dir };
  }

  static async open(opts: FileLogOptions): Promise<FileLog> {
    const log = new FileLog(opts);
    log.openSync();
    return log;
  }

  private openSync(): void {
    const { fs } = this;
    if (this.readOnly) return;
    fs.mkdirSync(this.topicsDir, { recursive: true });
    acquireLock(fs, this.opts.dir);
    const marker = join(this.opts.dir, '.clean-shutdown');
    this.cleanShutdown = fs.existsSync(marker);
    if (this.cleanShutdown) {
      // From here on the files may change; a crash before the next clean close must not look clean.
      fs.unlinkSync(marker);
      fsyncDir(fs, this.opts.dir);
    }
    removeDeletedTopics(fs, this.opts.dir);
    // Recover every partition now (not lazily), so the next clean-shutdown marker vouches for all.
    for (const name of fs.readdirSync(this.topicsDir)) this.loadTopic(name);
    const every = this.opts.retentionCheckIntervalMs ?? 5 * 60_000;
    this.retentionTimer = setInterval(() => this.enforceRetention(), every);
    this.retentionTimer.unref();
  }

  private loadTopic(name: string): TopicState | null {
    const dir = join(this.topicsDir, name);
    const metaPath = join(dir, 'topic.json');
    if (!this.fs.existsSync(metaPath)) {
      if (!this.readOnly && !name.endsWith('.tmp')) {
        this.logger.warn(`removing ${dir}: its creation was interrupted before topic.json was written`);
        this.fs.rmSync(dir, { recursive: true, force: true });
      }
      return null;
    }
    let info: TopicInfo;
    try {
      info = JSON.parse(this.fs.readFileSync(metaPath, 'utf8')) as TopicInfo;
    } catch (err) {
      throw new KappaError(
        'KAPPA_CORRUPT_DATA',
        `Cannot read topic metadata ${metaPath}: ${(err as Error).message}`,
        { path: metaPath },
        err,
      );
    }
    const partitions: Partition[] = [];
    for (let p = 0; p < info.partitions; p++) {
      partitions.push(this.openPartition(info, p, dir, this.cleanShutdown));
    }
    const state = { info, partitions, roundRobin: 0 };
    this.state.set(name, state);
    return state;
  }

  private openPartition(info: TopicInfo, id: number, topicDir: string, cleanShutdown: boolean): Partition {
    const partition = new Partition(info, id, topicDir, {
      fs: this.fs,
      clock: this.clock,
      logger: this.logger,
      fsync: this.opts.fsync ?? 'always',
      fsyncIntervalMs: this.opts.fsyncIntervalMs ?? 1000,
      onFsync: (seconds: number) => this.fsyncObserver?.(seconds),
      readOnly: this.readOnly,
      cleanShutdown,
    });
    partition.open();
    return partition;
  }

  private topicState(name: string): TopicState {
    if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', 'The log is closed.');
    let state = this.state.get(name);
    if (!state) {
      checkTopicName(name);
      if (this.readOnly && this.fs.existsSync(join(this.topicsDir, name, 'topic.json')))
        state = this.loadTopic(name) ?? undefined;
    }
    if (!state) {
      throw new KappaError(
        'KAPPA_UNKNOWN_TOPIC',
        `Topic "${name}" does not exist. Create it with \`kappa topics create ${name}\`.`,
        { topic: name },
      );
    }
    return state;
  }

  private partition(topic: string, partition: number): Partition {
    const state = this.topicState(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= state.partitions.length) {
      throw new KappaError(
        'KAPPA_INVALID_PARTITION',
        `Topic "${topic}" has partitions 0 to ${state.partitions.length - 1}; there is no partition ${partition}.`,
        { topic, partition, partitions: state.partitions.length },
      );
    }
    return state.partitions[partition];
  }

  async createTopic(name: string, config: TopicConfig): Promise<TopicInfo> {
    checkTopicName(name);
    checkPartitionCount(config.partitions);
    if (this.readOnly)
      throw new KappaError('KAPPA_READ_ONLY', `The log is open read-only; cannot create topic "${name}".`);
    if (this.state.has(name) || this.fs.existsSync(join(this.topicsDir, name, 'topic.json'))) {
      throw new KappaError('KAPPA_TOPIC_EXISTS', `Topic "${name}" already exists.`, { topic: name });
    }
    const info: TopicInfo = {
      name,
      partitions: config.partitions,
      retentionMs: config.retentionMs ?? TOPIC_DEFAULTS.retentionMs,
      retentionBytes: config.retentionBytes ?? TOPIC_DEFAULTS.retentionBytes,
      segmentBytes: config.segmentBytes ?? TOPIC_DEFAULTS.segmentBytes,
      segmentMs: config.segmentMs ?? TOPIC_DEFAULTS.segmentMs,
      createdAtMs: this.clock.now(),
    };
    checkTopicLimits(info);
    const dir = join(this.topicsDir, name);
    this.fs.rmSync(dir, { recursive: true, force: true });
    this.fs.mkdirSync(dir, { recursive: true });
    fsyncDir(this.fs, this.topicsDir);
    const partitions: Partition[] = [];
    for (let p = 0; p < info.partitions; p++) {
      partitions.push(this.openPartition(info, p, dir, false));
    }
    fsyncDir(this.fs, dir);
    writeFileAtomic(this.fs, join(dir, 'topic.json'), JSON.stringify(info, null, 2) + '\n');
    this.state.set(name, { info, partitions, roundRobin: 0 });
    return info;
  }

  /**
   * Deletes a topic and every record in it. Appends already queued finish first; readers following
   * it stop. The directory leaves topics/ in one rename, so a crash leaves the whole topic or none.
   */
  async deleteTopic(name: string): Promise<void> {
    checkTopicName(name);
    if (this.readOnly)
      throw new KappaError('KAPPA_READ_ONLY', `The log is open read-only; cannot delete topic "${name}".`);
    const state = this.topicState(name);
    // Forget it first, so appends and reads from now on are refused as for an unknown topic.
    this.state.delete(name);
    await Promise.all(state.partitions.map((p) => p.close()));
    removeTopicDir(this.fs, this.opts.dir, name, this.clock.now());
  }

  async append(topic: string, records: readonly ProducerRecord[]): Promise<RecordMetadata[]> {
    const state = this.topicState(topic);
    const n = state.partitions.length;
    const now = this.clock.now();
    if (records.length === 1) return this.appendOne(topic, state, records[0], now);
    const byPartition = new Map<number, { records: EncodableRecord[]; indexes: number[] }>();
    const keylessPartition = state.roundRobin;
    let usedKeyless = false;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      let p: number;
      if (r.partition !== undefined) {
        p = r.partition;
        if (!Number.isInteger(p) || p < 0 || p >= n) this.partition(topic, p);
      } else if (r.key !== undefined && r.key !== null) p = n === 1 ? 0 : partitionForKey(r.key, n);
      else {
        p = keylessPartition;
        usedKeyless = true;
      }
      let group = byPartition.get(p);
      if (!group) byPartition.set(p, (group = { records: [], indexes: [] }));
      group.records.push(toEncodable(r, now, i));
      group.indexes.push(i);
    }
    // Keyless records round-robin by call: the whole call goes to one partition, the next call to the next.
    if (usedKeyless) state.roundRobin = (keylessPartition + 1) % n;
    const out = new Array<RecordMetadata>(records.length);
    await Promise.all(
      [...byPartition].map(async ([p, group]) => {
        const base = await state.partitions[p].appendBatch(group.records);
        for (let j = 0; j < group.indexes.length; j++) {
          out[group.indexes[j]] = { topic, partition: p, offset: base + j, timestamp: group.records[j].timestamp };
        }
      }),
    );
    return out;
  }

  /** `append` of a single record (one HTTP record per request, say): the same steps, without grouping by partition. */
  private async appendOne(topic: string, state: TopicState, r: ProducerRecord, now: number): Promise<RecordMetadata[]> {
    const n = state.partitions.length;
    const keyless = r.partition === undefined && (r.key === undefined || r.key === null);
    const p = keyless ? state.roundRobin : (r.partition ?? (n === 1 ? 0 : partitionForKey(r.key!, n)));
    if (!Number.isInteger(p) || p < 0 || p >= n) this.partition(topic, p);
    const record = toEncodable(r, now, 0);
    if (keyless) state.roundRobin = (p + 1) % n;
    const offset = await state.partitions[p].appendBatch([record]);
    return [{ topic, partition: p, offset, timestamp: record.timestamp }];
  }

  /**
   * Appends one batch to one partition and returns its offsets: the low-level path for callers that
   * batch themselves (the processing engine, benchmarks), with no per-record result objects.
   *
   * With `opts.producerId` the append is idempotent (see producer-state.ts for the rules): records
   * the producer already appended, by sequence number, are not appended again and are reported in
   * `duplicates`; a gap in the sequence (KAPPA_OUT_OF_ORDER_SEQUENCE) or an epoch older than the
   * producer's newest (KAPPA_PRODUCER_FENCED) refuses the whole batch. Without it, every record is
   * appended and `duplicates` is 0.
   */
  async appendBatch(
    topic: string,
    partition: number,
    records: readonly EncodableRecord[],
    opts?: BatchOptions,
  ): Promise<AppendBatchResult> {
    const p = this.partition(topic, partition);
    const producer = producerOf(opts);
    if (producer) return p.appendIdempotent(records, producer);
    const baseOffset = await p.appendBatch(records);
    return { baseOffset, lastOffset: baseOffset + records.length - 1, duplicates: 0, duplicateOffsets: NO_DUPLICATES };
  }

  /**
   * Appends one already-encoded Kafka RecordBatch v2 (from a worker thread or a Kafka client)
   * without re-encoding it: a damaged batch is refused with KAPPA_INVALID_RECORD naming the problem;
   * the log sets its base offset in place (the CRC does not cover it) and owns `batchBytes` until the
   * call settles. A batch whose header carries a producer id follows the idempotence rules of
   * `appendBatch`. Compressed, transactional and control batches are refused.
   */
  async appendEncoded(
    topic: string,
    partition: number,
    batchBytes: Buffer,
    opts?: EncodedAppendOptions,
  ): Promise<AppendBatchResult> {
    return this.partition(topic, partition).appendEncoded(batchBytes, opts?.built === true);
  }

  async *read(topic: string, partition: number, from: number, opts: ReadOptions = {}): AsyncGenerator<RecordBatch> {
    const p = this.partition(topic, partition);
    p.refresh();
    p.checkOffset(from);
    const maxBytes = Math.max(READ_BYTES_MIN, opts.maxBytes ?? READ_BYTES_DEFAULT);
    let offset = from;
    let cursor: ReadCursor | null = null;
    // The last offset handed out: each batch must start after it (the first may start before `from`).
    let yielded = -1;
    while (!opts.signal?.aborted) {
      const res = await p.fetch(offset, maxBytes, cursor);
      cursor = res.cursor;
      if (res.batches.length > 0) {
        for (const batch of res.batches) {
          assertIncreasing(yielded, batch.baseOffset, `read of ${topic}/${partition}`);
          yielded = batch.lastOffset;
          yield batch;
        }
        if (opts.once) return;
        offset = yielded + 1;
        continue;
      }
      if (!opts.follow || p.isClosed) return;
      await this.waitFor(p, offset, opts.signal);
      // A follower waiting at the end when the log closes simply stops.
      if (p.isClosed) return;
    }
  }

  private async waitFor(p: Partition, offset: number, signal?: AbortSignal): Promise<void> {
    if (!this.readOnly) return p.waitFor(offset, signal);
    // Read-only: another process appends, so there is no in-process wake-up; look again after a pause.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.opts.pollIntervalMs ?? 200);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
    p.refresh();
  }

  /**
   * Resolves once the partition's end (its high watermark: durable data) is past `offset`, the log
   * closes, or `signal` aborts. For a process that hands reading to other threads and only tells
   * them how far they may read.
   */
  async waitForData(topic: string, partition: number, offset: number, signal?: AbortSignal): Promise<void> {
    await this.waitFor(this.partition(topic, partition), offset, signal);
  }

  /** What this log object knows of a partition's files (for messages; see Partition.describe). */
  describePartition(topic: string, partition: number): string {
    return this.partition(topic, partition).describe();
  }

  /**
   * Read-only: forgets what this object knew of a partition's files and opens them again, as a new
   * reader would. Reads under way finish on the old files; they are closed a little later.
   */
  reopenPartition(topic: string, partition: number): void {
    if (!this.readOnly) throw new Error('invariant: only a read-only log reopens a partition');
    const state = this.topicState(topic);
    const old = this.partition(topic, partition);
    state.partitions[partition] = this.openPartition(state.info, partition, join(this.topicsDir, topic), false);
    setTimeout(() => void old.close().catch(() => {}), REOPENED_CLOSE_DELAY_MS).unref();
  }

  async offsets(topic: string, partition: number): Promise<PartitionOffsets> {
    const p = this.partition(topic, partition);
    p.refresh();
    return { start: p.startOffset, end: p.endOffset };
  }

  async offsetForTime(topic: string, partition: number, timestampMs: number): Promise<number> {
    if (!Number.isFinite(timestampMs))
      throw new KappaError('KAPPA_INVALID_ARGUMENT', `${timestampMs} is not a valid timestamp.`);
    const p = this.partition(topic, partition);
    p.refresh();
    return p.offsetForTime(timestampMs);
  }

  async topics(): Promise<TopicInfo[]> {
    if (this.readOnly && this.fs.existsSync(this.topicsDir)) {
      for (const name of this.fs.readdirSync(this.topicsDir)) {
        if (!this.state.has(name) && this.fs.existsSync(join(this.topicsDir, name, 'topic.json'))) this.loadTopic(name);
      }
    }
    return [...this.state.values()].map((s) => s.info).sort((a, b) => a.name.localeCompare(b.name));
  }

  async topic(name: string): Promise<TopicInfo> {
    return this.topicState(name).info;
  }

  async sizeBytes(topic: string, partition: number): Promise<number> {
    this.partition(topic, partition);
    const dir = join(this.topicsDir, topic, String(partition));
    let bytes = 0;
    try {
      for (const f of this.fs.readdirSync(dir)) if (f.endsWith('.log')) bytes += this.fs.statSync(join(dir, f)).size;
    } catch {
      // a segment deleted by retention while we looked: counted next time
    }
    return bytes;
  }

  health(topic: string): PartitionHealth[] {
    return this.topicState(topic).partitions.map((p) => p.health());
  }

  /** Applies every topic's retention now (it also runs on a timer and whenever a segment rolls). */
  enforceRetention(): number {
    let deleted = 0;
    for (const s of this.state.values()) for (const p of s.partitions) deleted += p.enforceRetention();
    return deleted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    const partitions = [...this.state.values()].flatMap((s) => s.partitions);
    await Promise.all(partitions.map((p) => p.close()));
    if (this.readOnly) return;
    if (partitions.every((p) => p.cleanlyClosable)) {
      // Every partition is fsynced and indexed: the next open may trust that all bytes were durable.
      writeFileAtomic(this.fs, join(this.opts.dir, '.clean-shutdown'), String(this.clock.now()));
    }
    releaseLock(this.fs, this.opts.dir);
  }
}

export function openFileLog(opts: FileLogOptions): Promise<FileLog> {
  return FileLog.open(opts);
}
