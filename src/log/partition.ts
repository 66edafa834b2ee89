/**
 * One partition of a topic: the coordinator of its collaborators, which share a `PartitionState`
 * (partition-state.ts: segments, offsets, damage, waiting readers):
 *
 * - `PartitionLoader` (partition-loader.ts) opens the segment files, recovers a torn tail and
 *   rebuilds the idempotent producers' state; read-only, it follows what another process appends.
 * - `GroupCommitWriter` (group-commit.ts) writes queued batches, one fsync per group, and moves the
 *   high watermark.
 * - partition-reader.ts reads checked batches below the high watermark and looks offsets up by time.
 *
 * This file keeps what decides an append before it is queued: refusing it (read-only, closed,
 * damaged, too large, a bad encoded batch), assigning its offsets, and dropping records an
 * idempotent producer re-sends, by their sequence numbers (rules in producer-state.ts). Offsets and
 * sequences are decided synchronously, when a batch is queued, against the writer's `producers`
 * (which includes queued batches). A call that is all duplicates resolves once the originals are
 * durable, like the append that made them. Also here: retention and close.
 *
 * Readers see offsets below the high watermark only: bytes that are durable under the fsync mode
 * (`always`: fsynced; `interval`/`never`: written to the OS). So a reader, and any view built from
 * one, never sees a record that a crash could take back.
 *
 * Thread-safety: none needed; all state is touched from the event loop, and only the group-commit
 * writer writes to files.
 */
import { KappaError } from '../errors.ts';
import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  BatchField,
  readInt64,
} from './format/index.ts';
import { GroupCommitWriter, spareBatchBuffer } from './group-commit.ts';
import { PartitionLoader } from './partition-loader.ts';
import { type FetchResult, type ReadCursor, fetchBatches, offsetForTime } from './partition-reader.ts';
import { type PartitionOptions, PartitionState } from './partition-state.ts';
import {
  type ProducerIdentity,
  addSequence,
  duplicateOffsets,
  entryAfterAppend,
  lastOffsetOf,
} from './producer-state.ts';
import { CompressionError } from './compression.ts';
import {
  type EncodableRecord,
  RecordBatch,
  checkBatch,
  checkRecords,
  compressBatch,
  decompressBatch,
  encodeBatch,
  encodedBatchBytes,
  setBaseOffset,
} from './record-batch.ts';
import { BATCH_BYTES_MAX } from './segment.ts';
import type { AppendBatchResult, PartitionHealth, TopicInfo } from './types.ts';

export type { PartitionOptions } from './partition-state.ts';
export type { ReadCursor } from './partition-reader.ts';

export const NO_DUPLICATES: readonly number[] = Object.freeze([]);

/**
 * Appends of at most this many records and bytes are queued as records and encoded when written,
 * sharing a batch with the small appends queued next to them (group-commit.ts, enqueueRecords).
 */
const SMALL_APPEND_RECORDS = 16;
const SMALL_APPEND_BYTES = 16 * 1024;

/**
 * Whether encoding `records` later gives the bytes they hold now: keys and values that are strings
 * or null, no headers. A caller may refill its Buffers as soon as `appendBatch` returns.
 */
function immutable(records: readonly EncodableRecord[]): boolean {
  for (const r of records) {
    if (typeof r.key === 'object' && r.key !== null) return false;
    if (typeof r.value === 'object' && r.value !== null) return false;
    if (r.headers && r.headers.length > 0) return false;
  }
  return true;
}

export class Partition {
  private readonly state: PartitionState;
  private readonly loader: PartitionLoader;
  private readonly writer: GroupCommitWriter;

  constructor(
    readonly topic: TopicInfo,
    readonly id: number,
    topicDir: string,
    private readonly opts: PartitionOptions,
  ) {
    this.state = new PartitionState(topic, id, topicDir, opts);
    this.loader = new PartitionLoader(this.state);
    this.writer = new GroupCommitWriter(this.state, this.loader, () => this.enforceRetention());
  }

  get dir(): string {
    return this.state.dir;
  }

  get name(): string {
    return this.state.name;
  }

  open(): void {
    const written = this.loader.open();
    if (written) this.writer.start(written);
  }

  /** Read-only mode: picks up batches and segments another process wrote since the last look. */
  refresh(): void {
    this.loader.refresh();
  }

  // ---------------------------------------------------------------------------------------------
  // Appending: checks, offsets and idempotence, then the group-commit writer

  private checkWritable(): void {
    const { state } = this;
    if (this.opts.readOnly)
      throw new KappaError('KAPPA_READ_ONLY', `The log is open read-only; ${this.name} cannot be appended to.`);
    if (state.closed) throw new KappaError('KAPPA_LOG_CLOSED', `The log is closed; cannot append to ${this.name}.`);
    if (state.failure) throw state.failure;
    const c = state.corruption;
    if (c) {
      throw new KappaError(
        'KAPPA_CORRUPT_DATA',
        `${this.name} is damaged (${c.file} at byte ${c.position}: ${c.detail}), so appends are refused to keep the damage from being buried. Run \`kappa verify\`.`,
        { topic: this.topic.name, partition: this.id, file: c.file, position: c.position },
      );
    }
  }

  /** Appends one batch (no producer id); resolves with its base offset once it is durable under the fsync mode. */
  appendBatch(records: readonly EncodableRecord[]): Promise<number> {
    this.checkWritable();
    const baseOffset = this.state.nextOffset;
    if (records.length <= SMALL_APPEND_RECORDS) {
      const bytes = encodedBatchBytes(records);
      this.checkBatchSize(bytes, records.length);
      if (bytes <= SMALL_APPEND_BYTES && immutable(records))
        return this.writer.enqueueRecords(records, baseOffset, bytes);
    }
    const buf = encodeBatch(records, { baseOffset }, spareBatchBuffer);
    this.checkBatchSize(buf.length, records.length);
    return this.writer.enqueue(buf, baseOffset, records.length, -1, null, true);
  }

  /**
   * Appends one batch of an idempotent producer: drops the leading records it already appended,
   * refuses a gap or a fenced epoch (nothing is appended then), appends the rest.
   */
  appendIdempotent(records: readonly EncodableRecord[], producer: ProducerIdentity): Promise<AppendBatchResult> {
    this.checkWritable();
    if (records.length === 0)
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `A batch needs at least one record; nothing was appended to ${this.name}.`,
      );
    const { producerId, producerEpoch } = producer;
    return this.appendDeduplicated(producer, records.length, (skip, baseSequence) =>
      encodeBatch(skip > 0 ? records.slice(skip) : records, {
        baseOffset: this.state.nextOffset,
        producerId,
        producerEpoch,
        baseSequence,
      }),
    );
  }

  /**
   * Appends a batch that is already encoded (RecordBatch v2), byte for byte: it is checked (CRC,
   * structure of every record), its base offset (and partition leader epoch, 0 here) is set in
   * place, and the idempotence rules apply when its header carries a producer id. The log owns
   * `batch` until the call settles. Only a batch that is partly duplicate is re-encoded, to the
   * records that are new (compressed again with its codec where Kappa has an encoder for it).
   *
   * A compressed batch is decompressed to check its records, as a Kafka broker does, and stored
   * compressed, byte for byte. A codec this installation cannot decode (or 5-7, which Kafka does
   * not define) is refused with KAPPA_UNSUPPORTED_COMPRESSION, so no batch is stored unreadable.
   */
  appendEncoded(batch: Buffer, built = false): Promise<AppendBatchResult> {
    this.checkWritable();
    // A batch this process built and sealed (Log.appendEncoded's `built`) is whole by construction:
    // its header's sizes and counts are still checked (a few reads), its CRC and records not.
    if (!built) this.checkEncoded(batch);
    else {
      const problem = builtBatchProblem(batch);
      if (problem !== null) throw this.invalidEncoded(problem);
    }
    const count = batch.readInt32BE(BatchField.recordCount);
    this.checkBatchSize(batch.length, count);
    const producerId = readInt64(batch, BatchField.producerId);
    if (producerId < 0) {
      const baseOffset = this.state.nextOffset;
      return this.writer.enqueue(this.adopt(batch), baseOffset, count, -1, null).then((base) => ({
        baseOffset: base,
        lastOffset: base + count - 1,
        duplicates: 0,
        duplicateOffsets: NO_DUPLICATES,
      }));
    }
    const producer = {
      producerId,
      producerEpoch: batch.readInt16BE(BatchField.producerEpoch),
      baseSequence: batch.readInt32BE(BatchField.baseSequence),
    };
    this.checkEncodedProducer(producer);
    return this.appendDeduplicated(producer, count, (skip, baseSequence) => {
      if (skip === 0) return this.adopt(batch);
      const decoded = new RecordBatch(batch);
      const fresh = encodeBatch(decoded.records().slice(skip), {
        baseOffset: this.state.nextOffset,
        producerId,
        producerEpoch: producer.producerEpoch,
        baseSequence,
        attributes: decoded.attributes & ~ATTR_COMPRESSION_MASK,
      });
      return recompressed(fresh, decoded.compression);
    });
  }

  /** Takes an encoded batch over at offset `nextOffset`: base offset and partition leader epoch are not CRC-covered. */
  private adopt(batch: Buffer): Buffer {
    setBaseOffset(batch, this.state.nextOffset);
    batch.writeInt32BE(0, BatchField.partitionLeaderEpoch);
    return batch;
  }

  private checkEncoded(batch: Buffer): void {
    const sizeMax = Math.min(this.topic.segmentBytes, BATCH_BYTES_MAX);
    const problem = encodedBatchProblem(batch, sizeMax);
    if (problem === null) return;
    if (typeof problem === 'string') throw this.invalidEncoded(problem);
    const details = { topic: this.topic.name, partition: this.id, compression: compressionOf(batch) };
    if (problem.kind === 'unsupported')
      throw new KappaError(
        'KAPPA_UNSUPPORTED_COMPRESSION',
        `The encoded batch for ${this.name} was refused and nothing was appended: ${problem.why}. Send it uncompressed, or compressed with gzip, snappy, lz4 or zstd.`,
        details,
      );
    throw new KappaError(
      'KAPPA_RECORD_TOO_LARGE',
      `The encoded batch for ${this.name} was refused and nothing was appended: ${problem.why}; ${this.name} accepts batches of up to ${sizeMax} bytes uncompressed. Send fewer records per batch.`,
      { ...details, bytesMax: sizeMax },
    );
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
    return new KappaError(
      'KAPPA_INVALID_RECORD',
      `The encoded batch for ${this.name} was refused and nothing was appended: ${why}.`,
      { topic: this.topic.name, partition: this.id },
    );
  }

  /**
   * The idempotent path of both append kinds. `encode(skip, baseSequence)` makes the bytes of the
   * records after the first `skip`, whose first sequence is `baseSequence`, at offset `nextOffset`.
   */
  private appendDeduplicated(
    producer: ProducerIdentity,
    count: number,
    encode: (skip: number, baseSequence: number) => Buffer,
  ): Promise<AppendBatchResult> {
    const { producerId, producerEpoch, baseSequence } = producer;
    const prior = this.writer.producers.get(producerId);
    const duplicates = this.writer.producers.duplicatesIn(producer, count, this.name);
    const dupOffsets = duplicates > 0 ? duplicateOffsets(prior!, baseSequence, duplicates) : NO_DUPLICATES;
    if (duplicates === count) {
      const result: AppendBatchResult = {
        baseOffset: dupOffsets[0],
        lastOffset: dupOffsets[count - 1],
        duplicates,
        duplicateOffsets: dupOffsets,
      };
      // Answer only once the originals are durable, as their own append was answered.
      const through = result.lastOffset >= 0 ? result.lastOffset : lastOffsetOf(prior!);
      if (through < this.state.highWatermark) return Promise.resolve(result);
      return this.writer.enqueue(null, -1, 0, -1, null).then(() => result);
    }
    const firstSequence = addSequence(baseSequence, duplicates);
    const appended = count - duplicates;
    const buf = encode(duplicates, firstSequence);
    this.checkBatchSize(buf.length, appended);
    const baseOffset = this.state.nextOffset;
    const entry = entryAfterAppend(prior, producerEpoch, firstSequence, appended, baseOffset);
    this.writer.producers.set(producerId, entry);
    return this.writer.enqueue(buf, baseOffset, appended, producerId, entry).then((base) => ({
      baseOffset: duplicates > 0 ? dupOffsets[0] : base,
      lastOffset: base + appended - 1,
      duplicates,
      duplicateOffsets: dupOffsets,
    }));
  }

  private checkBatchSize(bytes: number, records: number): void {
    const sizeMax = Math.min(this.topic.segmentBytes, BATCH_BYTES_MAX);
    if (bytes > sizeMax) {
      throw new KappaError(
        'KAPPA_RECORD_TOO_LARGE',
        `A batch of ${records} records is ${bytes} bytes; ${this.name} accepts batches up to ${sizeMax} bytes. Send fewer records per call.`,
        {
          bytes,
          bytesMax: sizeMax,
        },
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  health(): PartitionHealth {
    const c = this.state.corruption;
    return {
      topic: this.topic.name,
      partition: this.id,
      corruption: c ? { file: c.file, position: c.position, detail: c.detail } : null,
    };
  }

  /** What this partition object knows of its files, for messages about a reader that cannot go on. */
  describe(): string {
    const { state } = this;
    const segs = state.segments
      .map((g) => `${g.baseOffset}: ${g.readableBytes} of ${g.sizeBytes} bytes readable, next offset ${g.nextOffset}`)
      .join('; ');
    let fileBytes = -1;
    try {
      fileBytes = this.opts.fs.fstatSync(state.active.fd).size;
    } catch {
      // closed meanwhile
    }
    const damage = state.corruption ? `, damaged at ${state.corruption.file} byte ${state.corruption.position}` : '';
    return `${this.name} holds offsets ${this.startOffset} to ${state.highWatermark - 1} here (segments ${segs}; the active file has ${fileBytes} bytes)${damage}`;
  }

  get startOffset(): number {
    return this.state.startOffset;
  }

  get endOffset(): number {
    return this.state.highWatermark;
  }

  checkOffset(offset: number): void {
    this.state.checkOffset(offset);
  }

  /** Whole, checked batches from the one that holds `offset`, up to about `maxBytes` (partition-reader.ts). */
  fetch(offset: number, maxBytes: number, cursor: ReadCursor | null): Promise<FetchResult> {
    return fetchBatches(this.state, offset, maxBytes, cursor);
  }

  /** Resolves when the high watermark passes `offset`, the partition closes, or `signal` aborts. */
  waitFor(offset: number, signal?: AbortSignal): Promise<void> {
    return this.state.waitFor(offset, signal);
  }

  get isClosed(): boolean {
    return this.state.closed;
  }

  offsetForTime(timestampMs: number): Promise<number> {
    return offsetForTime(this.state, timestampMs);
  }

  // ---------------------------------------------------------------------------------------------
  // Retention and closing

  /** Deletes whole closed segments past the time or size limit. Returns how many were deleted. */
  enforceRetention(): number {
    if (this.opts.readOnly) return 0;
    const { retentionMs, retentionBytes } = this.topic;
    if (retentionMs < 0 && retentionBytes < 0) return 0;
    const { segments } = this.state;
    let total = 0;
    for (const s of segments) total += s.sizeBytes;
    const now = this.opts.clock.now();
    let deleted = 0;
    while (segments.length > 1) {
      const oldest = segments[0];
      oldest.timeLookup(0);
      const byTime = retentionMs >= 0 && oldest.maxTimestamp >= 0 && now - oldest.maxTimestamp > retentionMs;
      const bySize = retentionBytes >= 0 && total - oldest.sizeBytes >= retentionBytes;
      if (!byTime && !bySize) break;
      segments.shift();
      oldest.delete();
      total -= oldest.sizeBytes;
      deleted++;
      this.writer.expireProducersBefore(this.startOffset);
      const why = byTime ? 'older than retention.ms' : 'over retention.bytes';
      this.opts.logger.info(
        `retention: deleted segment ${oldest.logPath} (offsets ${oldest.baseOffset}-${oldest.nextOffset - 1}, ${why})`,
      );
    }
    return deleted;
  }

  /** Waits for queued appends, fsyncs, writes the active segment's indexes and closes files. */
  async close(): Promise<void> {
    const { state } = this;
    if (state.closed) return;
    await this.writer.drain();
    state.closed = true;
    this.writer.stop();
    state.wake();
    if (!this.opts.readOnly && !state.failure && !state.corruption) {
      // Fsync before the indexes are written: an index never describes bytes a crash could take away.
      this.opts.fs.fsyncSync(state.active.fd);
      state.active.finish();
    }
    for (const seg of state.segments) seg.close();
  }

  /** Whether this partition may be counted in a clean-shutdown marker. */
  get cleanlyClosable(): boolean {
    return !this.state.failure;
  }
}

function compressionOf(batch: Buffer): number {
  return batch.readInt16BE(BatchField.attributes) & ATTR_COMPRESSION_MASK;
}

/** The records of a partly duplicate batch, compressed again with `codec` when Kappa can write it. */
function recompressed(batch: Buffer, codec: number): Buffer {
  try {
    return compressBatch(batch, codec);
  } catch (err) {
    if (err instanceof CompressionError) return batch; // zstd: stored uncompressed, still readable
    throw err;
  }
}

/** Why a batch built in this process is not one whole batch of its records, or null (its header only). */
function builtBatchProblem(batch: Buffer): string | null {
  if (batch.length < BATCH_HEADER_BYTES) return `it is ${batch.length} bytes, shorter than a batch header`;
  const size = batch.readInt32BE(BatchField.batchLength) + BATCH_LOG_OVERHEAD;
  if (size !== batch.length) return `its header gives ${size} bytes, the buffer holds ${batch.length}`;
  const count = batch.readInt32BE(BatchField.recordCount);
  if (count < 1 || batch.readInt32BE(BatchField.lastOffsetDelta) !== count - 1)
    return `its header counts ${count} records and a last offset delta of ${batch.readInt32BE(BatchField.lastOffsetDelta)}`;
  return null;
}

/**
 * Why an encoded batch from outside cannot be stored as it is, or null when it can: a description,
 * or, for a compressed batch, a CompressionError's kind and reason when its codec cannot be decoded
 * here (`unsupported`) or it inflates past `inflatedBytesMax` (`too-large`: a compressed batch may
 * hold what its topic accepts uncompressed). The codec is looked at only once the batch is known
 * whole and undamaged, and a compressed batch's records are checked in their decoded form.
 */
function encodedBatchProblem(
  batch: Buffer,
  inflatedBytesMax: number,
): string | { kind: 'unsupported' | 'too-large'; why: string } | null {
  if (!Buffer.isBuffer(batch)) return 'it is not a Buffer';
  const check = checkBatch(batch, 0, batch.length, BATCH_BYTES_MAX);
  if (check.problem === 'incomplete') return `the buffer ends before the batch does (${check.detail})`;
  if (check.problem) return `it is damaged (${check.problem}: ${check.detail})`;
  if (check.size !== batch.length)
    return `the buffer holds ${batch.length} bytes but its batch is ${check.size}; pass exactly one batch`;
  const attributes = batch.readInt16BE(BatchField.attributes);
  if ((attributes & ATTR_CONTROL) !== 0)
    return 'it is a control batch (a transaction marker), and Kappa has no transactions';
  if ((attributes & ATTR_TRANSACTIONAL) !== 0)
    return 'it is transactional, and Kappa has no transactions; send it from an idempotent, non-transactional producer';
  if ((attributes & ATTR_COMPRESSION_MASK) === 0) return checkRecords(batch);
  let decoded: Buffer;
  try {
    decoded = decompressBatch(batch, inflatedBytesMax);
  } catch (err) {
    if (!(err instanceof CompressionError)) throw err;
    return err.kind === 'corrupt' ? err.message : { kind: err.kind, why: err.message };
  }
  return checkRecords(decoded);
}
