/**
 * A Kappa producer's re-send that the cluster refused with OUT_OF_ORDER_SEQUENCE_NUMBER, settled as
 * FileLog would have settled it.
 *
 * Why: Kappa's output tasks restart from a checkpoint and send their records again under the same
 * producer id and sequences, counting on the log to drop what it already has. FileLog (and Kappa's
 * Kafka listener) drops the already-present prefix of any batch. Apache Kafka keeps only its last
 * five batches per producer and partition: a re-send that matches one of them exactly is answered
 * with its original offset, and every other batch whose first sequence is not the producer's last
 * sequence + 1 is refused (error 45). A task that cut its re-read records into other batches would
 * be refused there forever.
 *
 * What: on that refusal KafkaLog reads the partition's tail to find the producer's last batch
 * (windows of TAIL_WINDOW_FIRST offsets back from the end, each TAIL_WINDOW_GROWTH times the one
 * before, until a batch of the producer turns up or the partition's start is reached), and then:
 *
 * - the batch overlaps what the partition holds (first sequence <= last sequence < its own last):
 *   its leading records are reported as duplicates with their original offsets, and the rest is
 *   sent again as a new batch (same producer id, epoch, timestamps, keys, values, headers and
 *   compression) whose first sequence is the last sequence + 1;
 * - every record is already there: all are duplicates, nothing is sent;
 * - anything else (a real gap, another epoch, no batch of the producer on the partition): the
 *   cluster's refusal stands, with what KafkaLog found added to its message.
 *
 * Original offsets come from the producer's batches read on the way back: the run of its batches
 * whose sequences follow each other, in one epoch, back to the one holding the re-send's first
 * sequence. A duplicate older than that run (the partition's start, or the numbering restarted)
 * is reported as offset -1, as FileLog reports one older than the batches it remembers.
 *
 * Sequences are int32 and wrap from 2^31 - 1 to 0 (SEQUENCE_MODULUS); every comparison here is a
 * distance in that ring, "behind" meaning less than SEQUENCE_WINDOW back, as in producer-state.ts.
 */
import { KappaError } from '../../errors.ts';
import { CompressionError } from '../compression.ts';
import { ATTR_COMPRESSION_MASK, BatchField } from '../format/index.ts';
import { SEQUENCE_MODULUS, SEQUENCE_WINDOW, addSequence } from '../producer-state.ts';
import { RecordBatch, compressBatch, encodeBatch } from '../record-batch.ts';
import type { AppendBatchResult } from '../types.ts';
import type { BatchReader } from './reader.ts';

/** Offsets the first look back from the end covers; most re-sends follow their originals closely. */
const TAIL_WINDOW_FIRST = 1024;
/** Each further window covers this many times the offsets of the one before (1k, 4k, 16k, …). */
const TAIL_WINDOW_GROWTH = 4;

/** The header fields of one of the producer's batches found on the partition. */
interface SeenBatch {
  baseOffset: number;
  count: number;
  baseSequence: number;
  epoch: number;
}

/** The batch that was refused, and the refusal. */
export interface RefusedBatch {
  topic: string;
  partition: number;
  /** One RecordBatch v2 carrying a producer id (the caller's bytes: not modified here). */
  bytes: Buffer;
  refusal: KappaError;
}

/**
 * Settles a refused re-send as the file comment says. `appendRest` appends the re-encoded remainder
 * (under the caller's producer identity, without settling a second refusal here).
 */
export async function settleRefusedResend(
  reader: BatchReader,
  refused: RefusedBatch,
  appendRest: (bytes: Buffer) => Promise<AppendBatchResult>,
): Promise<AppendBatchResult> {
  const { topic, partition, bytes } = refused;
  const producerId = Number(bytes.readBigInt64BE(BatchField.producerId));
  const epoch = bytes.readInt16BE(BatchField.producerEpoch);
  const baseSequence = bytes.readInt32BE(BatchField.baseSequence);
  const count = bytes.readInt32BE(BatchField.recordCount);
  const run = await producerTail(reader, { topic, partition, producerId, epoch, baseSequence });
  const newest = run[0];
  const lastSequence = newest === undefined ? -1 : addSequence(newest.baseSequence, newest.count - 1);
  const why = unsettled(newest, { epoch, baseSequence, lastSequence, producerId, where: `${topic}/${partition}` });
  if (why !== null) throw refusedBecause(refused, why, { producerId, epoch, baseSequence, lastSequence });
  const duplicates = Math.min(count, distance(baseSequence, lastSequence) + 1);
  const duplicateOffsets = originalOffsets(run, baseSequence, duplicates);
  if (duplicates === count)
    return { baseOffset: duplicateOffsets[0], lastOffset: duplicateOffsets[count - 1], duplicates, duplicateOffsets };
  const rest = await appendRest(remainder(bytes, duplicates, addSequence(lastSequence, 1)));
  return {
    baseOffset: duplicateOffsets[0],
    lastOffset: rest.lastOffset,
    duplicates: duplicates + rest.duplicates,
    duplicateOffsets: [...duplicateOffsets, ...rest.duplicateOffsets],
  };
}

/** How many records `later` comes after `earlier` in the sequence ring (0 .. 2^31 - 1). */
function distance(earlier: number, later: number): number {
  return (((later - earlier) % SEQUENCE_MODULUS) + SEQUENCE_MODULUS) % SEQUENCE_MODULUS;
}

/** Why a refused batch cannot be settled by dropping its leading records, or null when it can. */
function unsettled(
  newest: SeenBatch | undefined,
  q: { epoch: number; baseSequence: number; lastSequence: number; producerId: number; where: string },
): string | null {
  if (newest === undefined)
    return `KafkaLog found no batch of producer ${q.producerId} on ${q.where} (none was appended there, or retention removed them), so no record of this batch is already there.`;
  if (newest.epoch !== q.epoch)
    return `The producer's last batch on ${q.where} has epoch ${newest.epoch} and this one epoch ${q.epoch}; Apache Kafka makes a new epoch number its records from sequence 0, so records re-sent under another epoch cannot be matched to the ones there. Re-send under epoch ${newest.epoch}, or start a new epoch at sequence 0.`;
  const expected = addSequence(q.lastSequence, 1);
  const ahead = distance(expected, q.baseSequence);
  if (ahead === 0)
    return `This batch starts at sequence ${q.baseSequence}, right after the producer's last batch on ${q.where} (which ends at ${q.lastSequence}), so the refusal is not about records already there: the cluster's own record of the producer differs from what the partition holds.`;
  if (ahead < SEQUENCE_MODULUS - SEQUENCE_WINDOW)
    return `The producer's last batch on ${q.where} ends at sequence ${q.lastSequence} and this batch starts at ${q.baseSequence}: the ${ahead} record(s) from sequence ${expected} were never appended. Re-send from sequence ${expected} (the producer's checkpoint may be ahead of what the log kept).`;
  return null;
}

function refusedBecause(
  refused: RefusedBatch,
  why: string,
  found: { producerId: number; epoch: number; baseSequence: number; lastSequence: number },
): KappaError {
  const { refusal } = refused;
  return new KappaError(
    refusal.code,
    `${refusal.message} ${why}`,
    {
      ...refusal.details,
      producerId: found.producerId,
      producerEpoch: found.epoch,
      baseSequence: found.baseSequence,
      lastSequence: found.lastSequence,
    },
    refusal,
  );
}

/**
 * The producer's batches at the partition's tail, newest first: the newest one, then the batches
 * before it while their sequences lead up to it within one epoch, back to the one that holds
 * `baseSequence` (or, for a batch that is not behind, the newest alone). Empty when the partition
 * holds no batch of the producer. Reads windows back from the end as the file comment says.
 */
async function producerTail(
  reader: BatchReader,
  q: { topic: string; partition: number; producerId: number; epoch: number; baseSequence: number },
): Promise<SeenBatch[]> {
  const { start, end } = await reader.offsets(q.topic, q.partition);
  const run: SeenBatch[] = [];
  // A batch that holds `until` (or lies past it) was read by the window before: each is taken once.
  let until = end;
  for (let window = TAIL_WINDOW_FIRST; until > start; window *= TAIL_WINDOW_GROWTH) {
    const from = Math.max(start, until - window);
    const seen = await producerBatchesIn(reader, q, from, until);
    for (let i = seen.length - 1; i >= 0; i--) {
      const b = seen[i];
      const before = run[run.length - 1];
      if (
        before !== undefined &&
        (b.epoch !== before.epoch || addSequence(b.baseSequence, b.count) !== before.baseSequence)
      )
        return run;
      run.push(b);
      if (b.epoch !== q.epoch || distance(b.baseSequence, q.baseSequence) < SEQUENCE_WINDOW) return run;
    }
    until = from;
  }
  return run;
}

/** The producer's batches that start at or after the batch holding `from` and end before `until`, in offset order. */
async function producerBatchesIn(
  reader: BatchReader,
  q: { topic: string; partition: number; producerId: number },
  from: number,
  until: number,
): Promise<SeenBatch[]> {
  const out: SeenBatch[] = [];
  for await (const b of reader.read(q.topic, q.partition, from, {})) {
    if (b.lastOffset >= until) break;
    if (b.producerId === q.producerId)
      out.push({ baseOffset: b.baseOffset, count: b.count, baseSequence: b.baseSequence, epoch: b.producerEpoch });
  }
  return out;
}

/** Offsets of the `n` records from `baseSequence` in the producer's run; -1 for one older than the run. */
function originalOffsets(run: readonly SeenBatch[], baseSequence: number, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const seq = addSequence(baseSequence, i);
    let offset = -1;
    for (const b of run) {
      const into = distance(b.baseSequence, seq);
      if (into < b.count) {
        offset = b.baseOffset + into;
        break;
      }
    }
    out[i] = offset;
  }
  return out;
}

/**
 * The records of `bytes` after the first `skip`, as a batch of their own whose first sequence is
 * `baseSequence`: the same producer id, epoch, attributes and records, compressed again with the
 * batch's codec where Kappa can write it (zstd goes out uncompressed, still readable).
 */
function remainder(bytes: Buffer, skip: number, baseSequence: number): Buffer {
  const batch = new RecordBatch(bytes);
  const fresh = encodeBatch(batch.records().slice(skip), {
    baseOffset: 0,
    producerId: batch.producerId,
    producerEpoch: batch.producerEpoch,
    baseSequence,
    attributes: batch.attributes & ~ATTR_COMPRESSION_MASK,
  });
  if (batch.compression === 0) return fresh;
  try {
    return compressBatch(fresh, batch.compression);
  } catch (err) {
    if (err instanceof CompressionError) return fresh;
    throw err;
  }
}
