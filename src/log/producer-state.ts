/**
 * Producer state of one partition: what idempotent appends need to drop re-sent records, as
 * Kafka's idempotent producer does, and the snapshot file that lets it survive a restart.
 *
 * Producers. A producer is identified by a `producerId` its caller chooses (a non-negative integer
 * below 2^53, say a hash of a processing task's name) and carries an `epoch` (int16). Each record
 * it sends has a sequence number: record i of a batch has `baseSequence + i`; a producer's
 * sequences go up by one per record across its batches and, as in Kafka, wrap from 2147483647 to
 * 0. For every producer the partition keeps its epoch and its last PRODUCER_BATCHES_MAX appended
 * batches (last sequence, record count, base offset). That is enough to decide, for a new batch:
 *
 * - epoch lower than the stored one: refused (KAPPA_PRODUCER_FENCED); a newer instance took over.
 * - first sequence = last sequence + 1: in order, appended.
 * - first sequence at or below the last sequence (at most SEQUENCE_WINDOW behind it): the leading
 *   records are duplicates of records already in the log and are not appended again; the original
 *   offsets are reported when the record lies in one of the remembered batches, -1 otherwise.
 * - first sequence above last sequence + 1: records are missing in between (KAPPA_OUT_OF_ORDER_SEQUENCE).
 * - a producer the partition does not know (never seen, or all its batches removed by retention):
 *   any first sequence is accepted.
 *
 * A higher epoch fences the older ones but does NOT restart the numbering: its first sequence is
 * checked against the producer's last sequence exactly as within one epoch. Kafka resets sequences
 * on an epoch bump because its transactions abort what the fenced instance wrote; Kappa has no
 * transactions, so a task instance that takes over (new epoch) and replays from the last checkpoint
 * must still have its re-sent records recognised as duplicates. A caller that wants to number from
 * 0 again uses a new producerId. A newer epoch is recorded with the first batch it appends (a call
 * of only duplicates changes nothing).
 *
 * Short-lived producers. Ids from SHORT_LIVED_PRODUCER_ID_MIN (2^52) to 2^53 - 1 are for producers
 * that append one bounded piece of work and are never heard of again, such as one HTTP request sent
 * with an Idempotency-Key (its id a hash of the topic and the key). There can be any number of them,
 * so a partition remembers only the SHORT_LIVED_PRODUCERS_MAX that appended last, and forgets the
 * least recently appended first: the window in which their re-sends are recognised (Kafka bounds its
 * producers by time instead, producer.id.expiration.ms). Appends are replayed in log order on open,
 * so the same producers are remembered after a restart or a crash. Producers below 2^52 (the
 * processing engine's tasks hash their names into 52 bits) are kept until retention removes their
 * batches, however many there are.
 *
 * Duplicates are recognised by sequence number alone; contents are not compared. A producer must
 * re-send the same records under the same sequences, which a deterministic replay from a checkpoint
 * that stores the next sequence with the source offset does.
 *
 * Entries are immutable: an append makes a new entry, so the partition can keep two tables (offsets
 * assigned, bytes written) that share entries, and roll one back to the other after a failed write.
 *
 * Snapshot file `<base offset, 20 digits>.snapshot`, written when the segment with that base offset
 * is created by a roll: the state after every batch below `base`. All integers big-endian.
 *
 *   offset  size  field
 *        0     4  magic            "KPS1"
 *        4     8  offset           int64   the state covers every batch below this offset
 *       12     4  producerCount    int32
 *       16     …  producers, each: producerId int64, epoch int16, batchCount uint8 (1..5),
 *                 then per batch, oldest first: lastSequence int32, count int32, baseOffset int64
 *      end-4   4  crc              uint32  CRC-32C of every byte before it
 *
 * Crash behaviour: a snapshot is derived data, written by write-temp + fsync + rename. One that is
 * missing, torn or fails its CRC is ignored: the partition falls back to an older snapshot (or the
 * first segment) and walks the batch headers of the segments after it.
 *
 * Thread-safety: none needed; only the partition that owns it touches it, from the event loop.
 */
import { crc32c } from '@node-rs/crc32';
import { KappaError } from '../errors.ts';
import { readInt64, writeInt64 } from './format/index.ts';

/** Sequence numbers are int32 and wrap to 0 after 2^31 - 1, as in Kafka. */
export const SEQUENCE_MODULUS = 2 ** 31;
/** How far behind a producer's last sequence a re-sent record may lie and still count as a duplicate. */
export const SEQUENCE_WINDOW = 2 ** 30;
/** Batches remembered per producer for reporting the original offsets of duplicates (Kafka keeps 5). */
export const PRODUCER_BATCHES_MAX = 5;
export const EPOCH_MAX = 0x7fff;
/** Producer ids at or above this are short-lived (see the file comment); below it, long-lived. */
export const SHORT_LIVED_PRODUCER_ID_MIN = 2 ** 52;
/**
 * Short-lived producers a partition remembers, the least recently appended forgotten first. About
 * 150 bytes of memory and 27 bytes of snapshot each: at most about 15 MB and 2.7 MB per partition.
 */
export const SHORT_LIVED_PRODUCERS_MAX = 100_000;

const SNAPSHOT_MAGIC = 0x4b505331; // "KPS1"
const SNAPSHOT_HEADER_BYTES = 16;
const PRODUCER_HEADER_BYTES = 11;
const PRODUCER_BATCH_BYTES = 16;

export interface ProducerBatch {
  /** Sequence of the batch's last record. */
  readonly lastSequence: number;
  readonly count: number;
  readonly baseOffset: number;
}

export interface ProducerEntry {
  readonly epoch: number;
  /** Oldest first, 1 to PRODUCER_BATCHES_MAX; consecutive in sequence numbers. */
  readonly batches: readonly ProducerBatch[];
}

export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  /**
   * Accept a sequence ahead of the next expected one instead of refusing it. For producers whose
   * sequences increase but skip numbers on purpose, such as a task that numbers its dead letters
   * by their source offset: only "behind" means duplicate.
   */
  allowGaps?: boolean;
}

/** `seq + n`, wrapped into the sequence space. */
export function addSequence(seq: number, n: number): number {
  return (seq + n) % SEQUENCE_MODULUS;
}

/** How many records `later` comes after `earlier`, in the wrapped sequence space (0 .. 2^31 - 1). */
function sequenceDistance(earlier: number, later: number): number {
  return (((later - earlier) % SEQUENCE_MODULUS) + SEQUENCE_MODULUS) % SEQUENCE_MODULUS;
}

function lastBatch(entry: ProducerEntry): ProducerBatch {
  return entry.batches[entry.batches.length - 1];
}

/** Offset of the last record the producer has appended. */
export function lastOffsetOf(entry: ProducerEntry): number {
  const b = lastBatch(entry);
  return b.baseOffset + b.count - 1;
}

/** The entry after `count` records starting at `baseSequence` were appended at `baseOffset`. */
export function entryAfterAppend(
  prior: ProducerEntry | undefined,
  epoch: number,
  baseSequence: number,
  count: number,
  baseOffset: number,
): ProducerEntry {
  const batch: ProducerBatch = { lastSequence: addSequence(baseSequence, count - 1), count, baseOffset };
  // Only batches consecutive in sequence may be kept together: duplicateOffsets relies on it.
  if (!prior || addSequence(lastBatch(prior).lastSequence, 1) !== baseSequence) return { epoch, batches: [batch] };
  const old = prior.batches;
  const from = old.length < PRODUCER_BATCHES_MAX ? 0 : 1;
  const batches = new Array<ProducerBatch>(old.length - from + 1);
  for (let i = from; i < old.length; i++) batches[i - from] = old[i];
  batches[old.length - from] = batch;
  return { epoch, batches };
}

/**
 * Original offsets of the first `count` records of a batch starting at `baseSequence`, all of them
 * duplicates of records of `entry`; -1 for a record older than the remembered batches.
 */
export function duplicateOffsets(entry: ProducerEntry, baseSequence: number, count: number): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const seq = addSequence(baseSequence, i);
    let offset = -1;
    for (let j = entry.batches.length - 1; j >= 0; j--) {
      const b = entry.batches[j];
      const behind = sequenceDistance(seq, b.lastSequence);
      if (behind < b.count) {
        offset = b.baseOffset + b.count - 1 - behind;
        break;
      }
    }
    out[i] = offset;
  }
  return out;
}

export class ProducerStates {
  /** Long-lived producers (ids below SHORT_LIVED_PRODUCER_ID_MIN). */
  private readonly entries = new Map<number, ProducerEntry>();
  /** Short-lived producers, least recently appended first (a Map iterates in insertion order). */
  private readonly shortLived = new Map<number, ProducerEntry>();

  /** `entries` in the order they appended (a snapshot's, or a loader's): the newest short-lived ones are kept. */
  constructor(
    entries?: Iterable<[number, ProducerEntry]>,
    private readonly shortLivedMax = SHORT_LIVED_PRODUCERS_MAX,
  ) {
    if (entries) for (const [id, entry] of entries) this.set(id, entry);
  }

  get size(): number {
    return this.entries.size + this.shortLived.size;
  }

  get(producerId: number): ProducerEntry | undefined {
    return producerId >= SHORT_LIVED_PRODUCER_ID_MIN ? this.shortLived.get(producerId) : this.entries.get(producerId);
  }

  /** Records a producer's entry after an append; a short-lived one becomes the most recent, and the least recent beyond the cap is forgotten. */
  set(producerId: number, entry: ProducerEntry): void {
    if (producerId < SHORT_LIVED_PRODUCER_ID_MIN) {
      this.entries.set(producerId, entry);
      return;
    }
    this.shortLived.delete(producerId);
    this.shortLived.set(producerId, entry);
    if (this.shortLived.size > this.shortLivedMax) this.shortLived.delete(this.shortLived.keys().next().value!);
  }

  *entriesOf(): IterableIterator<[number, ProducerEntry]> {
    yield* this.entries;
    yield* this.shortLived;
  }

  /** A copy that shares the (immutable) entries. */
  clone(): ProducerStates {
    return new ProducerStates(this.entriesOf(), this.shortLivedMax);
  }

  /**
   * How many leading records of a batch are duplicates of records already appended (0 to `count`).
   * Throws KAPPA_PRODUCER_FENCED for an older epoch and KAPPA_OUT_OF_ORDER_SEQUENCE for a gap.
   * `where` names the partition in the messages.
   */
  duplicatesIn(producer: ProducerIdentity, count: number, where: string): number {
    const { producerId, producerEpoch, baseSequence } = producer;
    const entry = this.get(producerId);
    if (!entry) return 0;
    if (producerEpoch < entry.epoch) {
      throw new KappaError(
        'KAPPA_PRODUCER_FENCED',
        `Producer ${producerId} appended to ${where} with epoch ${producerEpoch}, but epoch ${entry.epoch} of the same producer has appended since, so this instance is fenced off and nothing was appended. Stop it; the instance with the newer epoch carries on.`,
        { producerId, producerEpoch, currentEpoch: entry.epoch },
      );
    }
    const last = lastBatch(entry).lastSequence;
    const expected = addSequence(last, 1);
    const ahead = sequenceDistance(expected, baseSequence);
    if (ahead === 0) return 0;
    if (ahead < SEQUENCE_MODULUS - SEQUENCE_WINDOW) {
      if (producer.allowGaps) return 0;
      throw new KappaError(
        'KAPPA_OUT_OF_ORDER_SEQUENCE',
        `Producer ${producerId} sent sequence ${baseSequence} to ${where}, but its last appended record had sequence ${last}: the ${ahead} record(s) from sequence ${expected} were never appended, so nothing of this batch was appended. Resend from sequence ${expected} (the producer's checkpoint may be ahead of what the log kept).`,
        { producerId, producerEpoch, baseSequence, expectedSequence: expected, missing: ahead },
      );
    }
    // Behind: the records up to `last` are already in the log.
    return Math.min(count, sequenceDistance(baseSequence, last) + 1);
  }

  /** Forgets producers whose every batch lies below `startOffset` (removed by retention), as Kafka does. */
  expireBefore(startOffset: number): void {
    for (const map of [this.entries, this.shortLived])
      for (const [id, entry] of map) if (lastOffsetOf(entry) < startOffset) map.delete(id);
  }

  toSnapshot(offset: number): Buffer {
    let size = SNAPSHOT_HEADER_BYTES + 4;
    for (const [, entry] of this.entriesOf())
      size += PRODUCER_HEADER_BYTES + entry.batches.length * PRODUCER_BATCH_BYTES;
    const buf = Buffer.alloc(size);
    buf.writeUInt32BE(SNAPSHOT_MAGIC, 0);
    writeInt64(buf, 4, offset);
    buf.writeInt32BE(this.size, 12);
    let pos = SNAPSHOT_HEADER_BYTES;
    // Short-lived producers last, least recent first, so that loading the snapshot keeps their order.
    for (const [id, entry] of this.entriesOf()) {
      writeInt64(buf, pos, id);
      buf.writeInt16BE(entry.epoch, pos + 8);
      buf.writeUInt8(entry.batches.length, pos + 10);
      pos += PRODUCER_HEADER_BYTES;
      for (const b of entry.batches) {
        buf.writeInt32BE(b.lastSequence, pos);
        buf.writeInt32BE(b.count, pos + 4);
        writeInt64(buf, pos + 8, b.baseOffset);
        pos += PRODUCER_BATCH_BYTES;
      }
    }
    buf.writeUInt32BE(crc32c(buf.subarray(0, pos)), pos);
    return buf;
  }

  /** Parses a snapshot; returns a description of the problem instead when it is damaged or not for `offset`. */
  static fromSnapshot(buf: Buffer, offset: number): ProducerStates | string {
    if (buf.length < SNAPSHOT_HEADER_BYTES + 4) return `it is ${buf.length} bytes, shorter than a snapshot header`;
    if (buf.readUInt32BE(0) !== SNAPSHOT_MAGIC) return 'it does not start with the snapshot magic "KPS1"';
    const end = buf.length - 4;
    if (buf.readUInt32BE(end) !== crc32c(buf.subarray(0, end))) return 'its CRC-32C does not match';
    const stored = readInt64(buf, 4);
    if (stored !== offset) return `it describes offset ${stored}, not ${offset}`;
    const count = buf.readInt32BE(12);
    const entries = new Map<number, ProducerEntry>();
    let pos = SNAPSHOT_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      if (pos + PRODUCER_HEADER_BYTES > end) return `producer ${i} runs past the end`;
      const id = readInt64(buf, pos);
      const epoch = buf.readInt16BE(pos + 8);
      const n = buf.readUInt8(pos + 10);
      pos += PRODUCER_HEADER_BYTES;
      if (n < 1 || n > PRODUCER_BATCHES_MAX || pos + n * PRODUCER_BATCH_BYTES > end)
        return `producer ${i} has an impossible batch count ${n}`;
      const batches: ProducerBatch[] = [];
      for (let j = 0; j < n; j++) {
        batches.push({
          lastSequence: buf.readInt32BE(pos),
          count: buf.readInt32BE(pos + 4),
          baseOffset: readInt64(buf, pos + 8),
        });
        pos += PRODUCER_BATCH_BYTES;
      }
      entries.set(id, { epoch, batches });
    }
    if (pos !== end) return `it has ${end - pos} bytes after its last producer`;
    return new ProducerStates(entries);
  }
}

/**
 * Builds the state from batches found in the log (on open), without checks: the log is the truth.
 * Its entries are mutated in place until `finish`, so an open over a million batches does not make
 * three objects per batch; after `finish` the loader must not be used again.
 */
export class ProducerStateLoader {
  private readonly entries = new Map<number, { epoch: number; batches: ProducerBatch[] }>();
  /** Short-lived producers, least recently appended first, at most SHORT_LIVED_PRODUCERS_MAX (as in ProducerStates). */
  private readonly shortLived = new Map<number, { epoch: number; batches: ProducerBatch[] }>();

  constructor(
    from?: ProducerStates,
    private readonly shortLivedMax = SHORT_LIVED_PRODUCERS_MAX,
  ) {
    if (from)
      for (const [id, e] of from.entriesOf()) this.mapOf(id).set(id, { epoch: e.epoch, batches: e.batches.slice() });
  }

  private mapOf(producerId: number): Map<number, { epoch: number; batches: ProducerBatch[] }> {
    return producerId >= SHORT_LIVED_PRODUCER_ID_MIN ? this.shortLived : this.entries;
  }

  apply(producerId: number, producerEpoch: number, baseSequence: number, count: number, baseOffset: number): void {
    const map = this.mapOf(producerId);
    let entry = map.get(producerId);
    if (map === this.shortLived) {
      // The most recent now: moved to the end, and the least recent beyond the cap forgotten.
      map.delete(producerId);
      map.set(producerId, (entry ??= { epoch: producerEpoch, batches: [] }));
      if (map.size > this.shortLivedMax) map.delete(map.keys().next().value!);
    } else if (!entry) map.set(producerId, (entry = { epoch: producerEpoch, batches: [] }));
    const batches = entry.batches;
    // As in entryAfterAppend: only batches consecutive in sequence stay together.
    if (batches.length > 0 && addSequence(batches[batches.length - 1].lastSequence, 1) !== baseSequence)
      batches.length = 0;
    entry.epoch = producerEpoch;
    batches.push({ lastSequence: addSequence(baseSequence, count - 1), count, baseOffset });
    if (batches.length > PRODUCER_BATCHES_MAX) batches.shift();
  }

  private *all(): IterableIterator<[number, ProducerEntry]> {
    yield* this.entries;
    yield* this.shortLived;
  }

  /** The snapshot of the state so far. */
  toSnapshot(offset: number): Buffer {
    return new ProducerStates(this.all(), this.shortLivedMax).toSnapshot(offset);
  }

  /** The finished state, without producers whose every batch lies below `startOffset`. */
  finish(startOffset: number): ProducerStates {
    const state = new ProducerStates(this.all(), this.shortLivedMax);
    state.expireBefore(startOffset);
    return state;
  }
}
