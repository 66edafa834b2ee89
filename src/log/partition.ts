/**
 * One partition of a topic: an ordered list of segments (see segment.ts), the last one active.
 *
 * Writes: `appendBatch` encodes the batch and assigns its offsets synchronously, then queues it.
 * A single flush loop takes everything queued, writes it with one writev, and (fsync `always`)
 * issues one fsync for the whole group before acknowledging every batch in it: group commit.
 * Batches that arrive while an fsync is in flight form the next group.
 *
 * Readers see offsets below the high watermark only: bytes that are durable under the fsync mode
 * (`always`: fsynced; `interval`/`never`: written to the OS). So a reader, and any view built from
 * one, never sees a record that a crash could take back.
 *
 * Recovery (writable open): every batch of the active segment is checked. An unfinished batch at the
 * end (a torn tail) is cut off and reported. A damaged batch followed by a valid one cannot be a torn
 * write, so it is never cut: the partition is marked corrupted, appends are refused, and reads that
 * reach it fail. After a clean shutdown everything was durable, so any damage counts as corruption.
 *
 * Idempotent appends (`appendIdempotent`, `appendEncoded` of a batch with a producer id) drop
 * records a producer re-sends, by their sequence numbers (rules in producer-state.ts). Offsets and
 * sequences are decided synchronously, when a batch is queued, against `producers` (which includes
 * queued batches); `writtenProducers` holds the state of the bytes in the file, is what a roll
 * snapshots to `<new base>.snapshot`, and is what `producers` falls back to when a write fails and
 * the queued batches are handed back. On open the state is the snapshot at the active segment's
 * base plus the batches of the active segment, which recovery scans anyway; without a usable
 * snapshot, the headers of closed segments are walked back to the last one that has one. A call
 * that is all duplicates resolves once the originals are durable, like the append that made them.
 *
 * Thread-safety: none needed; all state is touched from the event loop, and only the flush loop
 * writes to files.
 */
import { join } from 'node:path';
import { KappaError, ioError } from '../errors.ts';
import { type LogFs, fsyncAsync, writeFileAtomic } from './fs.ts';
import { segmentFileName } from './names.ts';
import { type ProducerEntry, type ProducerIdentity, ProducerStateLoader, ProducerStates, addSequence, duplicateOffsets, entryAfterAppend, lastOffsetOf } from './producer-state.ts';
import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  type EncodableRecord,
  RecordBatch,
  checkBatch,
  checkRecords,
  encodeBatch,
  readInt64,
  setBaseOffset,
} from './record-batch.ts';
import { BATCH_BYTES_MAX, type BatchInfo, LogSegment } from './segment.ts';
import type { AppendBatchResult, Clock, FsyncMode, Logger, PartitionHealth, TopicInfo } from './types.ts';

export interface PartitionOptions {
  fs: LogFs;
  clock: Clock;
  logger: Logger;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  readOnly: boolean;
  /** The log was closed cleanly last time, so every byte on disk was durable. */
  cleanShutdown: boolean;
  /** Told how long each group-commit fsync took, in seconds (metrics). */
  onFsync?: (seconds: number) => void;
}

interface PendingBatch {
  /** Null for a marker: an all-duplicate call waiting until everything queued before it is durable. */
  buf: Buffer | null;
  baseOffset: number;
  lastOffset: number;
  /** The partition's next offset once this item is written: the high watermark its acknowledgement sets. */
  endOffset: number;
  maxTimestamp: number;
  /** Producer id of an idempotent batch, and the producer's entry once this batch is in; -1 and null otherwise. */
  producerId: number;
  producerEntry: ProducerEntry | null;
  resolve: (baseOffset: number) => void;
  reject: (err: Error) => void;
}

/** Where a reader stopped, so its next fetch continues without an index lookup. */
export interface ReadCursor {
  segment: LogSegment;
  position: number;
  offset: number;
}

export const NO_DUPLICATES: readonly number[] = Object.freeze([]);

export class Partition {
  readonly dir: string;
  private segments: LogSegment[] = [];
  private nextOffset = 0;
  private highWatermark = 0;
  private pending: PendingBatch[] = [];
  /** Written to the file, waiting for the fsync that will acknowledge them (fsync `always`). */
  private unsynced: PendingBatch[] = [];
  private writeScheduled = false;
  private syncing = false;
  private drained: (() => void)[] = [];
  private waiters = new Set<() => void>();
  private corruption: { file: string; position: number; offset: number; detail: string } | null = null;
  private failure: KappaError | null = null;
  /** Bytes were written since the last fsync (fsync `interval`). */
  private dirty = false;
  private fsyncTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Producer state including queued batches: decides duplicates (writable partitions only). */
  private producers = new ProducerStates();
  /** Producer state of the batches written to the file. */
  private writtenProducers = new ProducerStates();

  constructor(
    readonly topic: TopicInfo,
    readonly id: number,
    topicDir: string,
    private readonly opts: PartitionOptions,
  ) {
    this.dir = join(topicDir, String(id));
  }

  // ---------------------------------------------------------------------------------------------
  // Opening and recovery

  open(): void {
    const { fs } = this.opts;
    if (!this.opts.readOnly) fs.mkdirSync(this.dir, { recursive: true });
    const bases = this.listSegmentBases();
    if (bases.length === 0) {
      if (this.opts.readOnly) throw new KappaError('KAPPA_CORRUPT_DATA', `Partition ${this.name} has no segment files in ${this.dir}.`, { path: this.dir });
      this.segments.push(LogSegment.create(fs, this.dir, 0));
    } else {
      for (let i = 0; i < bases.length; i++) {
        const seg = LogSegment.open(fs, this.dir, bases[i], !this.opts.readOnly && i === bases.length - 1);
        if (i < bases.length - 1) seg.nextOffset = bases[i + 1];
        this.segments.push(seg);
      }
    }
    const loader = this.opts.readOnly ? null : this.loadProducerState();
    this.recoverActive(loader);
    if (loader) {
      this.writtenProducers = loader.finish(this.startOffset);
      this.producers = this.writtenProducers.clone();
    }
    if (this.opts.fsync === 'interval' && !this.opts.readOnly) {
      this.fsyncTimer = setInterval(() => void this.syncInterval(), this.opts.fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
  }

  private listSegmentBases(): number[] {
    const { fs } = this.opts;
    const bases: number[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      if (/^\d{20}\.log$/.test(name)) bases.push(Number(name.slice(0, 20)));
      else if (!this.opts.readOnly && (name.endsWith('.tmp') || (/^\d{20}\.(index|timeindex|snapshot)$/.test(name) && !fs.existsSync(join(this.dir, `${name.slice(0, 20)}.log`))))) {
        // Leftovers of an interrupted index or snapshot write, roll or segment deletion: derived data, safe to drop.
        fs.unlinkSync(join(this.dir, name));
      }
    }
    return bases.sort((a, b) => a - b);
  }

  /** Checks every batch of the active segment and settles its end (see the class comment). */
  private recoverActive(loader: ProducerStateLoader | null = null): void {
    const active = this.active;
    const fileBytes = active.sizeBytes;
    active.sizeBytes = fileBytes;
    const scan = active.rebuildIndexes(loader ? (b) => applyLoggedBatch(loader, b) : undefined);
    const end = scan.validBytes;
    if (scan.problem) {
      // Only the absence of any valid batch after the problem shows a torn write. An 'incomplete'
      // batch is no proof on its own: a damaged length field makes a batch look longer than the file.
      const after = active.findValidBatchAfter(scan.problem.position, fileBytes);
      if (after !== null || (this.opts.cleanShutdown && !this.opts.readOnly)) {
        this.markCorrupted(active.logPath, scan.problem.position, scan.nextOffset, scan.problem.detail);
      } else if (!this.opts.readOnly) {
        active.truncate(end);
        this.opts.logger.warn(
          `recovered ${this.name}: cut a torn tail of ${fileBytes - end} bytes from ${active.logPath} at byte ${end} (${scan.problem.detail}); the records before it are intact`,
        );
      }
      // Read-only with nothing valid after the problem: it may be a batch the writer is still
      // writing, so read up to the last whole batch and look again later.
    }
    active.sizeBytes = this.corruption ? fileBytes : end;
    active.readableBytes = end;
    this.nextOffset = scan.nextOffset;
    this.highWatermark = scan.nextOffset;
  }

  /**
   * The producer state as of the active segment's base offset: its snapshot, or else the newest
   * older snapshot (or an empty state at the first segment) plus a walk over the batch headers of
   * the closed segments in between. `recoverActive` adds the active segment's batches. After a walk
   * the active segment's snapshot is written, so the next open is fast.
   */
  private loadProducerState(): ProducerStateLoader {
    const activeIndex = this.segments.length - 1;
    let from = 0;
    let loader = new ProducerStateLoader();
    for (let i = activeIndex; i > 0; i--) {
      const loaded = this.readSnapshot(this.segments[i]);
      if (loaded) {
        from = i;
        loader = new ProducerStateLoader(loaded);
        break;
      }
    }
    for (let i = from; i < activeIndex; i++) {
      const problem = this.segments[i].walkHeaders((b) => applyLoggedBatch(loader, b));
      if (problem) {
        this.opts.logger.warn(`${this.name}: producer state is incomplete: ${problem}. Idempotent producers whose last batches lie beyond it may have re-sent records appended twice; run \`kappa verify\`.`);
        break;
      }
    }
    if (from < activeIndex) this.writeSnapshot(this.active.baseOffset, loader);
    return loader;
  }

  private readSnapshot(seg: LogSegment): ProducerStates | null {
    const { fs } = this.opts;
    if (!fs.existsSync(seg.snapshotPath)) return null;
    let parsed: ProducerStates | string;
    try {
      parsed = ProducerStates.fromSnapshot(fs.readFileSync(seg.snapshotPath), seg.baseOffset);
    } catch (err) {
      parsed = (err as Error).message;
    }
    if (typeof parsed === 'string') {
      this.opts.logger.warn(`${this.name}: ignoring producer snapshot ${seg.snapshotPath} (${parsed}); rebuilding it from the segments before it`);
      return null;
    }
    return parsed;
  }

  /** Writes `<seg base>.snapshot`. A failure only costs a longer next open, so it is reported, not thrown. */
  private writeSnapshot(baseOffset: number, state: ProducerStates | ProducerStateLoader): void {
    const path = join(this.dir, segmentFileName(baseOffset, '.snapshot'));
    try {
      // Atomic and fsynced, so after a crash the snapshot is either whole or absent (then rebuilt).
      writeFileAtomic(this.opts.fs, path, state.toSnapshot(baseOffset));
    } catch (err) {
      this.opts.logger.warn(`${this.name}: could not write producer snapshot ${path} (${(err as Error).message}); the next open rebuilds it from the segments`);
    }
  }

  private markCorrupted(file: string, position: number, offset: number, detail: string): void {
    this.corruption = { file, position, offset, detail };
    this.opts.logger.warn(`${this.name} is damaged: ${file} at byte ${position} (offset ${offset}): ${detail}. Reads from offset ${offset} on fail and appends are refused; run \`kappa verify\`.`);
  }

  /** Read-only mode: picks up batches and segments another process wrote since the last look. */
  refresh(): void {
    if (!this.opts.readOnly) return;
    const { fs } = this.opts;
    let bases: number[];
    try {
      bases = this.listSegmentBases();
    } catch {
      return;
    }
    while (this.segments.length > 1 && !bases.includes(this.segments[0].baseOffset)) this.segments.shift()!.forget();
    const newer = bases.filter((b) => b > this.active.baseOffset);
    if (newer.length > 0) {
      const old = this.active;
      const size = fs.fstatSync(old.fd).size;
      // The old active segment is closed now. Track the batches written to it since the last look,
      // so its max timestamp (which offsetForTime and retention trust) covers the whole segment.
      if (size > old.readableBytes) old.scan(old.readableBytes, this.highWatermark, size, (b) => old.track(b));
      old.sizeBytes = size;
      old.readableBytes = size;
      old.nextOffset = newer[0];
      for (let i = 0; i < newer.length; i++) {
        const seg = LogSegment.open(fs, this.dir, newer[i], false);
        if (i < newer.length - 1) seg.nextOffset = newer[i + 1];
        this.segments.push(seg);
      }
      this.recoverActive();
      this.wake();
      return;
    }
    const active = this.active;
    const size = fs.fstatSync(active.fd).size;
    if (size <= active.readableBytes) return;
    const scan = active.scan(active.readableBytes, this.highWatermark, size, (b) => active.track(b));
    if (scan.problem && !this.corruption && active.findValidBatchAfter(scan.problem.position, size) !== null) {
      this.markCorrupted(active.logPath, scan.problem.position, scan.nextOffset, scan.problem.detail);
    }
    if (scan.nextOffset > this.highWatermark) {
      active.readableBytes = scan.validBytes;
      this.nextOffset = this.highWatermark = scan.nextOffset;
      this.wake();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Appending (group commit)

  get name(): string {
    return `${this.topic.name}/${this.id}`;
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1];
  }

  private checkWritable(): void {
    if (this.opts.readOnly) throw new KappaError('KAPPA_READ_ONLY', `The log is open read-only; ${this.name} cannot be appended to.`);
    if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', `The log is closed; cannot append to ${this.name}.`);
    if (this.failure) throw this.failure;
    if (this.corruption) {
      throw new KappaError(
        'KAPPA_CORRUPT_DATA',
        `${this.name} is damaged (${this.corruption.file} at byte ${this.corruption.position}: ${this.corruption.detail}), so appends are refused to keep the damage from being buried. Run \`kappa verify\`.`,
        { topic: this.topic.name, partition: this.id, file: this.corruption.file, position: this.corruption.position },
      );
    }
  }

  /** Appends one batch (no producer id); resolves with its base offset once it is durable under the fsync mode. */
  appendBatch(records: readonly EncodableRecord[]): Promise<number> {
    this.checkWritable();
    const baseOffset = this.nextOffset;
    const buf = encodeBatch(records, { baseOffset });
    this.checkBatchSize(buf.length, records.length);
    return this.enqueue(buf, baseOffset, records.length, -1, null);
  }

  /**
   * Appends one batch of an idempotent producer: drops the leading records it already appended,
   * refuses a gap or a fenced epoch (nothing is appended then), appends the rest.
   */
  appendIdempotent(records: readonly EncodableRecord[], producer: ProducerIdentity): Promise<AppendBatchResult> {
    this.checkWritable();
    if (records.length === 0) throw new KappaError('KAPPA_INVALID_ARGUMENT', `A batch needs at least one record; nothing was appended to ${this.name}.`);
    const { producerId, producerEpoch } = producer;
    return this.appendDeduplicated(producer, records.length, (skip, baseSequence) =>
      encodeBatch(skip > 0 ? records.slice(skip) : records, { baseOffset: this.nextOffset, producerId, producerEpoch, baseSequence }),
    );
  }

  /**
   * Appends a batch that is already encoded (RecordBatch v2), byte for byte: it is checked (CRC,
   * structure of every record), its base offset (and partition leader epoch, 0 here) is set in
   * place, and the idempotence rules apply when its header carries a producer id. The log owns
   * `batch` until the call settles. Only a batch that is partly duplicate is re-encoded, to the
   * records that are new.
   */
  appendEncoded(batch: Buffer): Promise<AppendBatchResult> {
    this.checkWritable();
    this.checkEncoded(batch);
    const count = batch.readInt32BE(57);
    this.checkBatchSize(batch.length, count);
    const producerId = readInt64(batch, 43);
    if (producerId < 0) {
      const baseOffset = this.nextOffset;
      return this.enqueue(this.adopt(batch), baseOffset, count, -1, null).then((base) => ({ baseOffset: base, lastOffset: base + count - 1, duplicates: 0, duplicateOffsets: NO_DUPLICATES }));
    }
    const producer = { producerId, producerEpoch: batch.readInt16BE(51), baseSequence: batch.readInt32BE(53) };
    this.checkEncodedProducer(producer);
    return this.appendDeduplicated(producer, count, (skip, baseSequence) => {
      if (skip === 0) return this.adopt(batch);
      const decoded = new RecordBatch(batch);
      return encodeBatch(decoded.records().slice(skip), { baseOffset: this.nextOffset, producerId, producerEpoch: producer.producerEpoch, baseSequence, attributes: decoded.attributes });
    });
  }

  /** Takes an encoded batch over at offset `nextOffset`: base offset and partition leader epoch are not CRC-covered. */
  private adopt(batch: Buffer): Buffer {
    setBaseOffset(batch, this.nextOffset);
    batch.writeInt32BE(0, 12);
    return batch;
  }

  private checkEncoded(batch: Buffer): void {
    const problem = encodedBatchProblem(batch);
    if (problem) throw this.invalidEncoded(problem);
  }

  private checkEncodedProducer(p: ProducerIdentity): void {
    const why = !Number.isSafeInteger(p.producerId)
      ? `its producer id ${p.producerId} is 2^53 or more`
      : p.producerEpoch < 0
        ? `its producer epoch is ${p.producerEpoch}`
        : p.baseSequence < 0
          ? `its base sequence is ${p.baseSequence}`
          : null;
    if (why) throw this.invalidEncoded(`it has producer id ${p.producerId} but ${why}`);
  }

  private invalidEncoded(why: string): KappaError {
    return new KappaError('KAPPA_INVALID_RECORD', `The encoded batch for ${this.name} was refused and nothing was appended: ${why}.`, { topic: this.topic.name, partition: this.id });
  }

  /**
   * The idempotent path of both append kinds. `encode(skip, baseSequence)` makes the bytes of the
   * records after the first `skip`, whose first sequence is `baseSequence`, at offset `nextOffset`.
   */
  private appendDeduplicated(producer: ProducerIdentity, count: number, encode: (skip: number, baseSequence: number) => Buffer): Promise<AppendBatchResult> {
    const { producerId, producerEpoch, baseSequence } = producer;
    const prior = this.producers.get(producerId);
    const duplicates = this.producers.duplicatesIn(producer, count, this.name);
    const dupOffsets = duplicates > 0 ? duplicateOffsets(prior!, baseSequence, duplicates) : NO_DUPLICATES;
    if (duplicates === count) {
      const result: AppendBatchResult = { baseOffset: dupOffsets[0], lastOffset: dupOffsets[count - 1], duplicates, duplicateOffsets: dupOffsets };
      // Answer only once the originals are durable, as their own append was answered.
      const through = result.lastOffset >= 0 ? result.lastOffset : lastOffsetOf(prior!);
      if (through < this.highWatermark) return Promise.resolve(result);
      return this.enqueue(null, -1, 0, -1, null).then(() => result);
    }
    const firstSequence = addSequence(baseSequence, duplicates);
    const appended = count - duplicates;
    const buf = encode(duplicates, firstSequence);
    this.checkBatchSize(buf.length, appended);
    const baseOffset = this.nextOffset;
    const entry = entryAfterAppend(prior, producerEpoch, firstSequence, appended, baseOffset);
    this.producers.set(producerId, entry);
    return this.enqueue(buf, baseOffset, appended, producerId, entry).then((base) => ({
      baseOffset: duplicates > 0 ? dupOffsets[0] : base,
      lastOffset: base + appended - 1,
      duplicates,
      duplicateOffsets: dupOffsets,
    }));
  }

  private checkBatchSize(bytes: number, records: number): void {
    const sizeMax = Math.min(this.topic.segmentBytes, BATCH_BYTES_MAX);
    if (bytes > sizeMax) {
      throw new KappaError('KAPPA_RECORD_TOO_LARGE', `A batch of ${records} records is ${bytes} bytes; ${this.name} accepts batches up to ${sizeMax} bytes. Send fewer records per call.`, {
        bytes,
        bytesMax: sizeMax,
      });
    }
  }

  /**
   * Queues `buf` (already encoded at `baseOffset` = nextOffset) for the flush loop, or with `buf`
   * null a marker that settles with the group it lands in. Resolves with `baseOffset` once durable.
   */
  private enqueue(buf: Buffer | null, baseOffset: number, count: number, producerId: number, producerEntry: ProducerEntry | null): Promise<number> {
    this.nextOffset += count;
    const item: PendingBatch = {
      buf,
      baseOffset,
      lastOffset: baseOffset + count - 1,
      endOffset: this.nextOffset,
      maxTimestamp: buf ? readInt64(buf, 35) : -1,
      producerId,
      producerEntry,
      resolve: noop,
      reject: noop,
    };
    return new Promise<number>((resolve, reject) => {
      item.resolve = resolve;
      item.reject = reject;
      this.pending.push(item);
      // Under fsync `always`, batches queued while an fsync runs wait for the next one anyway: the
      // sync loop writes them all with one writev when it ends, instead of one write per append.
      if (!this.writeScheduled && !(this.syncing && this.opts.fsync === 'always')) {
        this.writeScheduled = true;
        queueMicrotask(() => this.writePending());
      }
    });
  }

  /**
   * Writes everything queued (one writev per segment touched) as soon as it is queued, without
   * waiting for an fsync in flight: the next fsync covers it. Under fsync `always` the batches then
   * wait in `unsynced` for that fsync; otherwise they are acknowledged now.
   */
  private writePending(): void {
    this.writeScheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return this.maybeDrained();
    let rolled = false;
    try {
      let run: PendingBatch[] = [];
      let runBytes = 0;
      for (const item of group) {
        if (item.buf === null) continue;
        if (this.shouldRoll(item, run, runBytes)) {
          this.writeRun(run);
          run = [];
          runBytes = 0;
          this.roll(item.baseOffset);
          rolled = true;
        }
        run.push(item);
        runBytes += item.buf.length;
      }
      this.writeRun(run);
    } catch (err) {
      this.failWrite(group, err, rolled);
      return this.maybeDrained();
    }
    if (this.opts.fsync !== 'always') {
      this.dirty = true;
      this.highWatermark = group[group.length - 1].endOffset;
      this.active.readableBytes = this.active.sizeBytes;
      this.wake();
      for (const item of group) item.resolve(item.baseOffset);
      return this.maybeDrained();
    }
    for (const item of group) this.unsynced.push(item);
    if (!this.syncing) void this.syncLoop();
  }

  /**
   * Group commit: one fsync at a time, each covering every batch written before it started, then
   * acknowledging all of them. Batches written while it runs are covered by the next one, so the
   * number of fsyncs does not grow with the number of concurrent appenders.
   */
  private async syncLoop(): Promise<void> {
    this.syncing = true;
    while (this.unsynced.length > 0 && !this.failure) {
      const group = this.unsynced;
      this.unsynced = [];
      // Batches of a segment that rolled meanwhile were fsynced by the roll; this fsync covers the
      // active segment up to its size now.
      const seg = this.active;
      const covered = seg.sizeBytes;
      try {
        const started = performance.now();
        await fsyncAsync(this.opts.fs, seg.fd);
        this.opts.onFsync?.((performance.now() - started) / 1000);
      } catch (err) {
        // After a failed fsync the kernel may have dropped the dirty pages: nothing written since the
        // last good fsync can be trusted, so this partition stops until the log is reopened.
        this.fail(ioError(err, 'fsync', seg.logPath), group);
        break;
      }
      this.highWatermark = group[group.length - 1].endOffset;
      if (covered > seg.readableBytes) seg.readableBytes = covered;
      this.wake();
      for (const item of group) item.resolve(item.baseOffset);
      // What was queued during the fsync, written now in one go (into `unsynced`, for the next turn).
      if (this.pending.length > 0 && !this.writeScheduled) this.writePending();
    }
    this.syncing = false;
    this.maybeDrained();
  }

  private maybeDrained(): void {
    if (this.writeScheduled || this.syncing || this.pending.length > 0 || this.unsynced.length > 0) return;
    for (const done of this.drained.splice(0)) done();
  }

  private shouldRoll(item: PendingBatch, run: PendingBatch[], runBytes: number): boolean {
    const active = this.active;
    if (active.isEmpty && run.length === 0) return false;
    if (active.sizeBytes + runBytes + item.buf!.length > this.topic.segmentBytes) return true;
    const first = active.firstBatchMaxTimestamp >= 0 ? active.firstBatchMaxTimestamp : run.length > 0 ? run[0].maxTimestamp : item.maxTimestamp;
    return item.maxTimestamp - first > this.topic.segmentMs;
  }

  private writeRun(run: PendingBatch[]): void {
    if (run.length === 0) return;
    const active = this.active;
    const infos: BatchInfo[] = [];
    let position = active.sizeBytes;
    for (const item of run) {
      infos.push({ position, size: item.buf!.length, baseOffset: item.baseOffset, lastOffset: item.lastOffset, maxTimestamp: item.maxTimestamp });
      position += item.buf!.length;
    }
    active.write(
      run.map((i) => i.buf!),
      infos,
    );
    for (const item of run) if (item.producerEntry) this.writtenProducers.set(item.producerId, item.producerEntry);
  }

  /** Closes the active segment (fsynced, indexes written) and starts a new one at `baseOffset`. */
  private roll(baseOffset: number): void {
    const old = this.active;
    // Fsync before the next segment exists: a closed segment never holds a torn write.
    this.opts.fs.fsyncSync(old.fd);
    old.finish();
    old.readableBytes = old.sizeBytes;
    // Written before the segment it belongs to exists; a crash between the two leaves an orphan
    // that the next open removes.
    this.writeSnapshot(baseOffset, this.writtenProducers);
    this.segments.push(LogSegment.create(this.opts.fs, this.dir, baseOffset));
    this.enforceRetention();
  }

  private failWrite(group: PendingBatch[], err: unknown, rolled: boolean): void {
    const error = ioError(err, 'write to', this.active.logPath);
    if (rolled) {
      this.fail(error, group);
      return;
    }
    // Nothing of this group was tracked (the segment's size and next offset still end at the last
    // whole write): cut what was partly written and hand back the offsets, so the partition stays
    // usable once the cause (say a full disk) is gone. Earlier writes still wait for their fsync.
    try {
      this.active.truncate(this.active.sizeBytes);
    } catch {
      this.fail(error, group);
      return;
    }
    this.nextOffset = this.active.nextOffset;
    // The producer state forgets the batches handed back, so their re-send is not taken for a duplicate.
    this.producers = this.writtenProducers.clone();
    const rejected = group.concat(this.pending.splice(0));
    for (const item of rejected) item.reject(error);
  }

  private fail(error: KappaError, group: PendingBatch[]): void {
    this.failure = new KappaError(error.code, `${this.name} stopped accepting appends after an I/O error (${error.message}). Restart Kappa to recover it; acknowledged records are safe.`, error.details, error);
    for (const item of group.concat(this.unsynced.splice(0), this.pending.splice(0))) item.reject(this.failure);
  }

  private async syncInterval(): Promise<void> {
    if (!this.dirty || this.closed) return;
    this.dirty = false;
    try {
      await fsyncAsync(this.opts.fs, this.active.fd);
    } catch (err) {
      this.fail(ioError(err, 'fsync', this.active.logPath), []);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  health(): PartitionHealth {
    const c = this.corruption;
    return { topic: this.topic.name, partition: this.id, corruption: c ? { file: c.file, position: c.position, detail: c.detail } : null };
  }

  /** What this partition object knows of its files, for messages about a reader that cannot go on. */
  describe(): string {
    const segs = this.segments.map((g) => `${g.baseOffset}: ${g.readableBytes} of ${g.sizeBytes} bytes readable, next offset ${g.nextOffset}`).join('; ');
    let fileBytes = -1;
    try {
      fileBytes = this.opts.fs.fstatSync(this.active.fd).size;
    } catch {
      // closed meanwhile
    }
    return `${this.name} holds offsets ${this.startOffset} to ${this.highWatermark - 1} here (segments ${segs}; the active file has ${fileBytes} bytes)${this.corruption ? `, damaged at ${this.corruption.file} byte ${this.corruption.position}` : ''}`;
  }

  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  get endOffset(): number {
    return this.highWatermark;
  }

  private corruptError(file: string, position: number, detail: string): KappaError {
    return new KappaError(
      'KAPPA_CORRUPT_DATA',
      `${this.name} is damaged at ${file} byte ${position}: ${detail}. Kappa does not skip damaged data silently; run \`kappa verify\` to list all damage.`,
      { topic: this.topic.name, partition: this.id, file, position },
    );
  }

  checkOffset(offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < this.startOffset || offset > this.highWatermark) {
      throw new KappaError(
        'KAPPA_OFFSET_OUT_OF_RANGE',
        `Offset ${offset} is outside ${this.name}, which holds offsets ${this.startOffset} to ${this.highWatermark - 1} (the next record will get ${this.highWatermark}).`,
        { topic: this.topic.name, partition: this.id, offset, start: this.startOffset, end: this.highWatermark },
      );
    }
  }

  private segmentFor(offset: number): LogSegment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid].baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo];
  }

  /**
   * Reads whole batches starting with the one that holds `offset`, up to about `maxBytes` (at least
   * one batch). Every batch's CRC and offset continuity is checked; damage throws KAPPA_CORRUPT_DATA
   * once the intact batches before it have been returned.
   */
  async fetch(offset: number, maxBytes: number, cursor: ReadCursor | null): Promise<{ batches: RecordBatch[]; cursor: ReadCursor | null }> {
    // After close the segment fds are closed (and their numbers may already belong to other files).
    if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', `The log was closed while reading ${this.name}.`, { topic: this.topic.name, partition: this.id });
    if (this.corruption && offset >= this.corruption.offset) throw this.corruptError(this.corruption.file, this.corruption.position, this.corruption.detail);
    if (offset < this.startOffset) this.checkOffset(offset);
    if (offset >= this.highWatermark) return { batches: [], cursor };
    let seg: LogSegment;
    let pos: number;
    // The base offset the batch at `pos` must have. The CRC does not cover base offsets, so this is
    // what catches a damaged one (which would otherwise shift every offset of its batch).
    let firstBase: number;
    if (cursor && cursor.offset === offset && !cursor.segment.deleted) {
      seg = cursor.segment;
      pos = cursor.position;
      firstBase = offset;
    } else {
      seg = this.segmentFor(offset);
      ({ position: pos, baseOffset: firstBase } = seg.findPosition(offset, seg.readableBytes));
    }
    for (;;) {
      const limit = seg.readableBytes;
      if (pos >= limit) {
        const i = this.segments.indexOf(seg);
        if (i < 0 || i === this.segments.length - 1) return { batches: [], cursor: { segment: seg, position: pos, offset } };
        seg = this.segments[i + 1];
        pos = 0;
        firstBase = seg.baseOffset;
        continue;
      }
      let buf = await seg.read(pos, Math.min(maxBytes, limit - pos));
      if (buf.length >= 12) {
        const first = buf.readInt32BE(8) + 12;
        if (first > buf.length && first <= limit - pos) buf = await seg.read(pos, first);
      }
      const batches: RecordBatch[] = [];
      let p = 0;
      let expected = offset;
      while (p < buf.length) {
        const check = checkBatch(buf, p, buf.length, BATCH_BYTES_MAX);
        if (check.problem) {
          const cutByChunk = check.problem === 'incomplete' && p > 0 && check.size > 0 && pos + p + check.size <= limit;
          if (cutByChunk || (check.problem === 'incomplete' && p > 0 && check.size === 0 && pos + buf.length < limit)) break;
          // Hand out the intact batches before the damage first; the next fetch starts at the damage and fails there.
          if (batches.length > 0) break;
          throw this.corruptError(seg.logPath, pos + p, check.detail);
        }
        const batch = new RecordBatch(buf.subarray(p, p + check.size));
        const contiguous = batches.length === 0 ? batch.baseOffset === firstBase && batch.baseOffset <= expected && batch.lastOffset >= expected : batch.baseOffset === expected;
        if (!contiguous) {
          if (batches.length > 0) break;
          throw this.corruptError(seg.logPath, pos + p, `batch holds offsets ${batch.baseOffset}-${batch.lastOffset}, expected one holding ${expected}`);
        }
        if (batch.lastOffset >= this.highWatermark) break;
        batches.push(batch);
        expected = batch.lastOffset + 1;
        p += check.size;
      }
      return { batches, cursor: { segment: seg, position: pos + p, offset: expected } };
    }
  }

  /** Resolves when the high watermark passes `offset`, the partition closes, or `signal` aborts. */
  waitFor(offset: number, signal?: AbortSignal): Promise<void> {
    if (this.highWatermark > offset || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  async offsetForTime(timestampMs: number): Promise<number> {
    let start = -1;
    for (const seg of this.segments) {
      if (seg !== this.active) seg.timeLookup(0); // loads indexes, and with them the segment's max timestamp
      if (seg.maxTimestamp >= timestampMs) {
        start = seg.timeLookup(timestampMs);
        break;
      }
    }
    if (start < 0) return this.highWatermark;
    let offset = start;
    let cursor: ReadCursor | null = null;
    while (offset < this.highWatermark) {
      const res = await this.fetch(offset, 1 << 20, cursor);
      if (res.batches.length === 0) break;
      for (const batch of res.batches) {
        if (batch.maxTimestamp >= timestampMs) {
          for (const r of batch.records(offset)) if (r.timestamp >= timestampMs) return r.offset;
        }
        offset = batch.lastOffset + 1;
      }
      cursor = res.cursor;
    }
    return this.highWatermark;
  }

  // ---------------------------------------------------------------------------------------------
  // Retention and closing

  /** Deletes whole closed segments past the time or size limit. Returns how many were deleted. */
  enforceRetention(): number {
    if (this.opts.readOnly) return 0;
    const { retentionMs, retentionBytes } = this.topic;
    if (retentionMs < 0 && retentionBytes < 0) return 0;
    let total = 0;
    for (const s of this.segments) total += s.sizeBytes;
    const now = this.opts.clock.now();
    let deleted = 0;
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      oldest.timeLookup(0);
      const byTime = retentionMs >= 0 && oldest.maxTimestamp >= 0 && now - oldest.maxTimestamp > retentionMs;
      const bySize = retentionBytes >= 0 && total - oldest.sizeBytes >= retentionBytes;
      if (!byTime && !bySize) break;
      this.segments.shift();
      oldest.delete();
      total -= oldest.sizeBytes;
      deleted++;
      this.producers.expireBefore(this.startOffset);
      this.writtenProducers.expireBefore(this.startOffset);
      this.opts.logger.info(`retention: deleted segment ${oldest.logPath} (offsets ${oldest.baseOffset}-${oldest.nextOffset - 1}, ${byTime ? 'older than retention.ms' : 'over retention.bytes'})`);
    }
    return deleted;
  }

  /** Waits for queued appends, fsyncs, writes the active segment's indexes and closes files. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.writeScheduled || this.syncing) await new Promise<void>((resolve) => this.drained.push(resolve));
    this.closed = true;
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    this.wake();
    if (!this.opts.readOnly && !this.failure && !this.corruption) {
      this.opts.fs.fsyncSync(this.active.fd);
      this.active.finish();
    }
    for (const seg of this.segments) seg.close();
  }

  /** Whether this partition may be counted in a clean-shutdown marker. */
  get cleanlyClosable(): boolean {
    return !this.failure;
  }
}

function noop(): void {}

function applyLoggedBatch(loader: ProducerStateLoader, b: BatchInfo): void {
  const producerId = b.producerId ?? -1;
  if (producerId >= 0) loader.apply(producerId, b.producerEpoch!, b.baseSequence!, b.lastOffset - b.baseOffset + 1, b.baseOffset);
}

/** Why an encoded batch from outside cannot be stored as it is, or null when it can. */
function encodedBatchProblem(batch: Buffer): string | null {
  if (!Buffer.isBuffer(batch)) return 'it is not a Buffer';
  const check = checkBatch(batch, 0, batch.length, BATCH_BYTES_MAX);
  if (check.problem === 'incomplete') return `the buffer ends before the batch does (${check.detail})`;
  if (check.problem) return `it is damaged (${check.problem}: ${check.detail})`;
  if (check.size !== batch.length) return `the buffer holds ${batch.length} bytes but its batch is ${check.size}; pass exactly one batch`;
  const attributes = batch.readInt16BE(21);
  if ((attributes & ATTR_COMPRESSION_MASK) !== 0) return `it is compressed (codec ${attributes & ATTR_COMPRESSION_MASK}), and Kappa stores only uncompressed batches for now`;
  if ((attributes & ATTR_CONTROL) !== 0) return 'it is a control batch (a transaction marker), and Kappa has no transactions';
  if ((attributes & ATTR_TRANSACTIONAL) !== 0) return 'it is transactional, and Kappa has no transactions; send it from an idempotent, non-transactional producer';
  return checkRecords(batch);
}
