/**
 * The group-commit writer of one partition: the only code that writes to its segment files.
 *
 * `enqueue` takes a batch already encoded at the partition's next offset and queues it. A write
 * step, scheduled as a microtask (or, right after an fsync, once a fair share of the appends in
 * flight is queued: see `afterSync`), takes everything queued and writes it with one writev per
 * segment touched (rolling to a new segment when the active one is full or spans too much time). Under fsync
 * `always` the written batches then wait for one fsync that covers the whole group before each is
 * acknowledged and the high watermark moves past them: group commit. Batches that arrive while an
 * fsync is in flight form the next group, written and fsynced side by side with it once they are
 * a third as many as the appends in flight and large (see `mayJoinSyncs`; at most
 * SYNCS_IN_FLIGHT_MAX fsyncs at a time), else when it returns, so the number of fsyncs does not
 * grow with the number of concurrent appenders. Under `interval` and `never` a batch is
 * acknowledged once written (to the OS); `interval` fsyncs on a timer.
 *
 * Producer state: `producers` includes queued batches and decides duplicates; `writtenProducers`
 * holds the state of the bytes in the file, is what a roll snapshots to `<new base>.snapshot`, and
 * is what `producers` falls back to when a write fails and the queued batches are handed back.
 *
 * Fault model: a failed write (say a full disk) cuts what was partly written and rejects the group
 * (but for appends already written into a segment it rolled past), and the partition stays usable
 * once the cause is gone. A roll that fails part way stops the partition. A failed fsync stops the
 * partition until the log is reopened: the kernel may have dropped the dirty pages, so nothing
 * written since the last good fsync can be trusted; every append not yet acknowledged is rejected,
 * even one whose own fsync (running beside the failed one) then succeeds. A roll fsyncs the old
 * segment before the next one exists, so a closed segment never holds a torn write.
 *
 * Thread-safety: none needed; everything runs on the event loop, one write step at a time.
 */
import { invariant } from '../assert.ts';
import { KappaError, ioError } from '../errors.ts';
import { BatchField, readInt64 } from './format/index.ts';
import { type EncodableRecord, encodeBatch } from './record-batch.ts';
import { SpareBuffers } from './batch-builder.ts';
import { fsyncAsync } from './fs.ts';
import type { PartitionLoader } from './partition-loader.ts';
import type { PartitionState } from './partition-state.ts';
import { type ProducerEntry, ProducerStates } from './producer-state.ts';
import { type BatchInfo, LogSegment } from './segment.ts';

interface PendingBatch {
  /**
   * The encoded batch; null for records not yet encoded (`records`) and for a marker (an
   * all-duplicate call waiting until everything queued before it is durable).
   */
  buf: Buffer | null;
  /** A small append's records, encoded when written, in one batch with the small appends next to it. */
  records: readonly EncodableRecord[] | null;
  /** The size of `buf`, or of `records` encoded alone. */
  bytes: number;
  baseOffset: number;
  lastOffset: number;
  /** The partition's next offset once this item is written: the high watermark its acknowledgement sets. */
  endOffset: number;
  maxTimestamp: number;
  /** `buf` came from `spareBatchBuffer` and goes back to the spares once written. */
  reusable: boolean;
  /** Producer id of an idempotent batch, and the producer's entry once this batch is in; -1 and null otherwise. */
  producerId: number;
  producerEntry: ProducerEntry | null;
  resolve: (baseOffset: number) => void;
  reject: (err: Error) => void;
}

/** Batches written to a segment and the fsync that will make them durable. */
interface SyncFlight {
  group: PendingBatch[];
  seg: LogSegment;
  /** The segment's size when the fsync started: the bytes it makes durable. */
  covered: number;
}

/**
 * Fsyncs in flight at most per partition (fsync `always`). Side by side, one's write-back overlaps
 * another's journal commit and cache flush. `npm run bench -- log` (one appender keeping 8 appends
 * of 110 KB in flight), append ÷ disk: one fsync at a time 0.45-0.48; up to 3, each started once
 * half of what is in flight is queued, 0.56-0.64; up to 4, at a third, 0.58-0.64. Each runs on a
 * thread of libuv's pool (4 unless UV_THREADPOOL_SIZE says otherwise), which asynchronous reads
 * share: while a partition takes appends at full speed, a read may wait for an fsync to return.
 */
const SYNCS_IN_FLIGHT_MAX = 4;

/**
 * Queued bytes below which no fsync starts beside one in flight. Single-record appends (HTTP POSTs
 * of one record from 100 connections) wait for the fsync in flight: overlapping fsyncs of a few
 * KB each cost that CPU-bound bench 5% (0.54-0.58 × the bare route against 0.58-0.61).
 */
const SYNC_BESIDE_MIN_BYTES = 64 * 1024;

export class GroupCommitWriter {
  /** Producer state including queued batches: decides duplicates (writable partitions only). */
  producers = new ProducerStates();
  /** Producer state of the batches written to the file. */
  private writtenProducers = new ProducerStates();
  private pending: PendingBatch[] = [];
  /** Bytes of `pending` (records not yet encoded counted at their size encoded alone). */
  private pendingBytes = 0;
  /** Written to the file, waiting for the fsync that will acknowledge them (fsync `always`). */
  private unsynced: PendingBatch[] = [];
  private writeScheduled = false;
  /** Appends to gather before the write step runs as a microtask (see `afterSync`); 1 = at once. */
  private writeTarget = 1;
  /** The write step scheduled for the event loop's next turn, if it is. */
  private writeTimer: NodeJS.Immediate | null = null;
  /** Fsyncs started and not yet finished (fsync `always`), oldest first, with what each covers. */
  private flights: SyncFlight[] = [];
  /** A segment roll is under way (see `roll`): nothing is written until it is done. */
  private rolling = false;
  /** Fsync calls not yet returned, including those of flights a newer fsync acknowledged. */
  private syncsRunning = 0;
  private drained: (() => void)[] = [];
  /** Bytes were written since the last fsync (fsync `interval`). */
  private dirty = false;
  private fsyncTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly state: PartitionState,
    private readonly loader: PartitionLoader,
    /** Called after every roll (retention may now delete the oldest segment). */
    private readonly onRoll: () => void,
  ) {}

  /** Starts writing on top of the recovered files, whose producer state is `written`. */
  start(written: ProducerStates): void {
    this.writtenProducers = written;
    this.producers = written.clone();
    const { fsync, fsyncIntervalMs } = this.state.opts;
    if (fsync === 'interval') {
      this.fsyncTimer = setInterval(() => void this.syncInterval(), fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
  }

  /** Forgets producers whose every batch lies below `startOffset` (retention removed them). */
  expireProducersBefore(startOffset: number): void {
    this.producers.expireBefore(startOffset);
    this.writtenProducers.expireBefore(startOffset);
  }

  /**
   * Queues `buf` (already encoded at `baseOffset` = the partition's next offset) for the write step,
   * or with `buf` null a marker that settles with the group it lands in. Resolves with `baseOffset`
   * once durable.
   */
  enqueue(
    buf: Buffer | null,
    baseOffset: number,
    count: number,
    producerId: number,
    producerEntry: ProducerEntry | null,
    reusable = false,
  ): Promise<number> {
    const maxTimestamp = buf ? readInt64(buf, BatchField.maxTimestamp) : -1;
    return this.push(buf, null, buf?.length ?? 0, baseOffset, count, maxTimestamp, reusable, producerId, producerEntry);
  }

  /**
   * Queues a small append's records (no producer id) at `baseOffset` = the partition's next offset,
   * to be encoded when written: the small appends queued next to each other (single-record POSTs
   * waiting for the same fsync, say) then share one batch, so each costs a record, not a batch
   * (header, CRC, buffer, index entry) in this thread and in every reader.
   */
  enqueueRecords(records: readonly EncodableRecord[], baseOffset: number, bytes: number): Promise<number> {
    let maxTimestamp = records[0].timestamp;
    for (const r of records) if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
    return this.push(null, records, bytes, baseOffset, records.length, maxTimestamp, false, -1, null);
  }

  private push(
    buf: Buffer | null,
    records: readonly EncodableRecord[] | null,
    bytes: number,
    baseOffset: number,
    count: number,
    maxTimestamp: number,
    reusable: boolean,
    producerId: number,
    producerEntry: ProducerEntry | null,
  ): Promise<number> {
    const { state } = this;
    state.nextOffset += count;
    const item: PendingBatch = {
      buf,
      records,
      bytes,
      baseOffset,
      lastOffset: baseOffset + count - 1,
      endOffset: state.nextOffset,
      maxTimestamp,
      reusable,
      producerId,
      producerEntry,
      resolve: noop,
      reject: noop,
    };
    return new Promise<number>((resolve, reject) => {
      item.resolve = resolve;
      item.reject = reject;
      this.pending.push(item);
      this.pendingBytes += bytes;
      // Under fsync `always`, batches queued while fsyncs run are written, and fsynced beside
      // them, once `mayJoinSyncs` says so: written one by one, each would get an fsync of its own
      // (and the disk flushes a cache per fsync); held until every fsync returned, the disk would
      // sit idle while the appenders just answered prepare more.
      if (state.opts.fsync !== 'always' || this.flights.length === 0) this.scheduleWrite();
      else if (this.mayJoinSyncs()) this.scheduleWrite();
    });
  }

  /**
   * Schedules the write step: as a microtask once `writeTarget` appends are queued, else at the
   * event loop's next turn (appends that arrive meanwhile join it).
   */
  private scheduleWrite(): void {
    if (this.pending.length >= this.writeTarget) {
      if (this.writeTimer !== null) {
        clearImmediate(this.writeTimer);
        this.writeTimer = null;
        this.writeScheduled = false;
      }
      if (!this.writeScheduled) {
        this.writeScheduled = true;
        queueMicrotask(() => this.writePending());
      }
    } else if (!this.writeScheduled) {
      this.writeScheduled = true;
      this.writeTimer = setImmediate(() => {
        this.writeTimer = null;
        this.writePending();
      });
    }
  }

  /**
   * Whether what is queued, while fsyncs run, is written and fsynced beside them now: if fewer than
   * SYNCS_IN_FLIGHT_MAX run, the queue holds at least a third as many appends as they cover, and
   * at least SYNC_BESIDE_MIN_BYTES. Smaller groups wait for an fsync to return, as one more fsync
   * for them would cost the disk a journal commit and a cache flush for a few bytes.
   */
  private mayJoinSyncs(): boolean {
    if (this.flights.length >= SYNCS_IN_FLIGHT_MAX || this.pendingBytes < SYNC_BESIDE_MIN_BYTES) return false;
    let inFlight = this.unsynced.length;
    for (const flight of this.flights) inFlight += flight.group.length;
    return this.pending.length * 3 >= inFlight;
  }

  /** Resolves once nothing is queued, being written or waiting for its fsync. */
  async drain(): Promise<void> {
    if (this.writeScheduled || this.syncsRunning > 0 || this.rolling)
      await new Promise<void>((resolve) => this.drained.push(resolve));
  }

  /** Stops the interval fsync timer (the partition is closing). */
  stop(): void {
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
  }

  /**
   * Writes everything queued (one writev per segment touched) as soon as it is queued, without
   * waiting for an fsync in flight: the next fsync covers it. Under fsync `always` the batches then
   * wait in `unsynced` for that fsync; otherwise they are acknowledged now.
   */
  private writePending(): void {
    this.writeScheduled = false;
    if (this.rolling) return; // the roll's end writes what is queued
    this.writeTarget = 1;
    const group = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (group.length === 0) return this.maybeDrained();
    let rollAt: number;
    try {
      rollAt = this.writeGroup(
        encodeRecordRuns(group, Math.min(MERGED_BATCH_BYTES_MAX, this.state.topic.segmentBytes)),
      );
    } catch (err) {
      const written = this.failWrite(group, err);
      if (written.length > 0) this.afterWrite(written);
      return this.maybeDrained();
    }
    if (rollAt < 0) return this.afterWrite(group);
    // The group reached the end of the segment: the appends before offset `rollAt` are written, the
    // rest goes back to the head of the queue (to be encoded again) until the roll is done.
    const split = group.findIndex((item) => item.endOffset > rollAt);
    for (const item of group.slice(split)) {
      this.pending.push(item);
      this.pendingBytes += item.bytes;
    }
    if (split > 0) this.afterWrite(group.slice(0, split));
    void this.roll(rollAt);
  }

  /** `group` is written: acknowledged now, or under fsync `always` once the next fsync covers it. */
  private afterWrite(group: PendingBatch[]): void {
    if (this.state.opts.fsync !== 'always') {
      this.dirty = true;
      this.acknowledge(group, this.state.active, this.state.active.sizeBytes);
      return this.maybeDrained();
    }
    for (const item of group) this.unsynced.push(item);
    this.startSyncs();
  }

  /**
   * Writes the batches of `group` into the active segment with one writev, up to the first that
   * must go into a new segment: returns that batch's base offset (the roll starts there), or -1.
   */
  private writeGroup(group: PendingBatch[]): number {
    const run: PendingBatch[] = [];
    let runBytes = 0;
    for (const item of group) {
      if (item.buf === null) continue;
      if (this.shouldRoll(item, run, runBytes)) {
        this.writeRun(run);
        return item.baseOffset;
      }
      run.push(item);
      runBytes += item.buf.length;
    }
    this.writeRun(run);
    return -1;
  }

  /** Moves the high watermark past `group` (readers see `seg` up to byte `covered`) and resolves it. */
  private acknowledge(group: PendingBatch[], seg: LogSegment, covered: number): void {
    const { state } = this;
    state.highWatermark = group[group.length - 1].endOffset;
    if (covered > seg.readableBytes) seg.readableBytes = covered;
    state.wake();
    for (const item of group) item.resolve(item.baseOffset);
  }

  /**
   * Group commit: starts an fsync covering every batch written and not yet covered, unless
   * SYNCS_IN_FLIGHT_MAX are in flight already (batches written meanwhile wait for the next one).
   */
  private startSyncs(): void {
    const { state } = this;
    if (this.unsynced.length === 0 || this.flights.length >= SYNCS_IN_FLIGHT_MAX || state.failure) return;
    const seg = state.active;
    let fd: number;
    try {
      fd = seg.takeSyncFd();
    } catch {
      // No descriptor to spare (the process is at its limit of open files, say): fsync through the
      // segment's own, once no other fsync runs.
      if (this.syncsRunning > 0) return;
      fd = seg.fd;
    }
    // Batches of a segment that rolled meanwhile were fsynced by the roll; this fsync covers the
    // active segment up to its size now.
    const flight: SyncFlight = { group: this.unsynced, seg, covered: seg.sizeBytes };
    this.unsynced = [];
    this.flights.push(flight);
    void this.sync(flight, fd);
  }

  /**
   * One fsync, through `fd`. When it returns, every byte written before it started is durable (an
   * fsync also waits for the write-back another one started), so the flights up to this one are
   * acknowledged, in order, even if an older fsync has not returned yet.
   */
  private async sync(flight: SyncFlight, fd: number): Promise<void> {
    const { state } = this;
    const { seg } = flight;
    this.syncsRunning++;
    try {
      const started = performance.now();
      await fsyncAsync(state.opts.fs, fd);
      state.opts.onFsync?.((performance.now() - started) / 1000);
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing written since the
      // last good fsync can be trusted, so this partition stops until the log is reopened.
      if (!state.failure) this.fail(ioError(err, 'fsync', seg.logPath), []);
    } finally {
      this.syncsRunning--;
      if (fd !== seg.fd) seg.giveSyncFd(fd);
    }
    // Not found: a newer fsync acknowledged it, or the partition stopped.
    const at = this.flights.indexOf(flight);
    if (at >= 0) {
      let acknowledged = 0;
      for (const done of this.flights.splice(0, at + 1)) {
        this.acknowledge(done.group, done.seg, done.covered);
        acknowledged += done.group.length;
      }
      this.afterSync(acknowledged);
    }
    this.startSyncs();
    this.maybeDrained();
  }

  /**
   * What was queued during the fsync is written now in one go (into `unsynced`, for the next turn)
   * if it is at least a quarter of the `acknowledged` appends just answered, whose appenders may
   * send more at once. Otherwise groups would alternate (one append, then all the others: two
   * fsyncs per window, one of them for almost nothing, and no appends prepared during the big one),
   * so the write waits until half of what is in flight (the acknowledged and the queued) is queued,
   * or for the event loop's next turn if that does not come.
   */
  private afterSync(acknowledged: number): void {
    if (this.writeScheduled) return;
    // Other fsyncs still run: what is queued joins them on the terms of `push`.
    if (this.flights.length > 0) {
      if (this.mayJoinSyncs()) this.writePending();
      return;
    }
    if (this.pending.length > 0 && this.pending.length * 4 >= acknowledged) return this.writePending();
    this.writeTarget = Math.ceil((acknowledged + this.pending.length) / 2);
    if (this.pending.length > 0) this.scheduleWrite();
  }

  private maybeDrained(): void {
    if (this.writeScheduled || this.syncsRunning > 0 || this.rolling || this.pending.length > 0) return;
    if (this.unsynced.length > 0) return;
    for (const done of this.drained.splice(0)) done();
  }

  private shouldRoll(item: PendingBatch, run: PendingBatch[], runBytes: number): boolean {
    const { topic } = this.state;
    const active = this.state.active;
    if (active.isEmpty && run.length === 0) return false;
    if (active.sizeBytes + runBytes + item.buf!.length > topic.segmentBytes) return true;
    const first =
      active.firstBatchMaxTimestamp >= 0
        ? active.firstBatchMaxTimestamp
        : run.length > 0
          ? run[0].maxTimestamp
          : item.maxTimestamp;
    return item.maxTimestamp - first > topic.segmentMs;
  }

  private writeRun(run: PendingBatch[]): void {
    if (run.length === 0) return;
    const active = this.state.active;
    const infos: BatchInfo[] = [];
    let position = active.sizeBytes;
    for (const item of run) {
      // The bytes carry the offset the batch was queued at (encoded or adopted at `nextOffset`).
      const stored = readInt64(item.buf!, BatchField.baseOffset);
      invariant(
        stored === item.baseOffset,
        () => `${this.state.name}: a queued batch's header says offset ${stored}, not ${item.baseOffset}`,
      );
      infos.push({
        position,
        size: item.buf!.length,
        baseOffset: item.baseOffset,
        lastOffset: item.lastOffset,
        maxTimestamp: item.maxTimestamp,
      });
      position += item.buf!.length;
    }
    active.write(
      run.map((i) => i.buf!),
      infos,
    );
    for (const item of run) giveBack(item);
    for (const item of run) if (item.producerEntry) this.writtenProducers.set(item.producerId, item.producerEntry);
  }

  /**
   * Closes the active segment (fsynced, indexes written) and starts a new one at `baseOffset`, then
   * writes what was queued meanwhile. Nothing is written while it runs. A roll that fails part way
   * stops the partition: what is on disk no longer matches what the writer tracks.
   */
  private async roll(baseOffset: number): Promise<void> {
    const { state } = this;
    const old = state.active;
    this.rolling = true;
    try {
      // Fsync before the next segment exists: a closed segment never holds a torn write. In libuv's
      // pool, not on the event loop: under fsync `never` it flushes up to the whole segment (130-160
      // ms for 256 MiB here, during which the process answered nothing).
      await fsyncAsync(state.opts.fs, old.fd);
      old.finish();
      old.retireSyncFds();
      old.readableBytes = old.sizeBytes;
      // Written before the segment it belongs to exists; a crash between the two leaves an orphan
      // that the next open removes.
      this.loader.writeSnapshot(baseOffset, this.writtenProducers);
      state.segments.push(LogSegment.create(state.opts.fs, state.dir, baseOffset));
    } catch (err) {
      this.rolling = false;
      if (!state.failure) this.fail(ioError(err, 'close the full segment', old.logPath), []);
      return this.maybeDrained();
    }
    this.rolling = false;
    this.onRoll();
    this.writePending();
  }

  /**
   * A write of `group` threw. The group and everything queued behind it is rejected and its offsets
   * handed back, so the partition stays usable once the cause (say a full disk) is gone; earlier
   * writes still wait for their fsync. Returns the appends of the group that settle as usual: those
   * with no records of their own (an all-duplicate append) queued before its first batch.
   */
  private failWrite(group: PendingBatch[], err: unknown): PendingBatch[] {
    const { state } = this;
    const error = ioError(err, 'write to', state.active.logPath);
    // The failed run was not tracked (the segment's size and next offset still end at the last
    // whole write): cut what was partly written.
    try {
      state.active.truncate(state.active.sizeBytes);
    } catch {
      this.fail(error, group);
      return [];
    }
    state.nextOffset = state.active.nextOffset;
    const written = group.filter((item) => item.endOffset <= state.nextOffset);
    // The producer state forgets the batches handed back, so their re-send is not taken for a duplicate.
    this.producers = this.writtenProducers.clone();
    const rejected = group.slice(written.length).concat(this.pending.splice(0));
    this.pendingBytes = 0;
    for (const item of rejected) item.reject(error);
    return written;
  }

  private fail(error: KappaError, group: PendingBatch[]): void {
    const { state } = this;
    state.failure = new KappaError(
      error.code,
      `${state.name} stopped accepting appends after an I/O error (${error.message}). Restart Kappa to recover it; acknowledged records are safe.`,
      error.details,
      error,
    );
    const inFlight = this.flights.splice(0).flatMap((flight) => flight.group);
    this.pendingBytes = 0;
    for (const item of group.concat(inFlight, this.unsynced.splice(0), this.pending.splice(0)))
      item.reject(state.failure);
  }

  private async syncInterval(): Promise<void> {
    const { state } = this;
    if (!this.dirty || state.closed) return;
    this.dirty = false;
    try {
      await fsyncAsync(state.opts.fs, state.active.fd);
    } catch (err) {
      this.fail(ioError(err, 'fsync', state.active.logPath), []);
    }
  }
}

/**
 * Buffers of the batches `Partition.appendBatch` encodes, given back once written (nothing reads a
 * batch's buffer after its write returns). Fresh ones at hundreds of MB/s counted as V8 external
 * memory and set off a full GC every ~60 ms, a tenth of the appending thread's time. One pool per
 * thread, shared by its partitions; batches below `SPARE_MIN_BYTES` are not pooled.
 */
const batchSpares = new SpareBuffers(32, 16 * 1024 * 1024);
const SPARE_MIN_BYTES = 16 * 1024;

/** A buffer of exactly `size` bytes for a batch that will be enqueued with `reusable` true. */
export function spareBatchBuffer(size: number): Buffer {
  if (size < SPARE_MIN_BYTES) return Buffer.allocUnsafe(size);
  const spare = batchSpares.take(size);
  // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool.
  return spare ? Buffer.from(spare, 0, size) : Buffer.allocUnsafeSlow(size);
}

function giveBack(item: PendingBatch): void {
  if (item.reusable && item.buf!.length >= SPARE_MIN_BYTES) batchSpares.give(item.buf!.buffer as ArrayBuffer);
}

/** Bytes of records merged into one batch at most (their appends stay one batch each past it). */
const MERGED_BATCH_BYTES_MAX = 256 * 1024;

/**
 * `group` with each run of queued records encoded as one batch (offsets of a run are contiguous:
 * they were given out in queue order). A merged batch is written in place of its appends, which
 * are acknowledged as before.
 */
function encodeRecordRuns(group: PendingBatch[], bytesMax: number): PendingBatch[] {
  if (!group.some((item) => item.records !== null)) return group;
  const out: PendingBatch[] = [];
  let run: PendingBatch[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    const first = run[0];
    const last = run[run.length - 1];
    const records = run.length === 1 ? first.records! : run.flatMap((item) => item.records!);
    let maxTimestamp = first.maxTimestamp;
    for (const item of run) if (item.maxTimestamp > maxTimestamp) maxTimestamp = item.maxTimestamp;
    const buf = encodeBatch(records, { baseOffset: first.baseOffset }, spareBatchBuffer);
    out.push({
      ...first,
      buf,
      records: null,
      bytes: buf.length,
      lastOffset: last.lastOffset,
      endOffset: last.endOffset,
      maxTimestamp,
      reusable: true,
      resolve: noop,
      reject: noop,
    });
    run = [];
  };
  let runBytes = 0;
  for (const item of group) {
    if (item.records === null) {
      flush();
      out.push(item);
      continue;
    }
    if (run.length > 0 && runBytes + item.bytes > bytesMax) flush();
    if (run.length === 0) runBytes = 0;
    run.push(item);
    runBytes += item.bytes;
  }
  flush();
  return out;
}

function noop(): void {}
