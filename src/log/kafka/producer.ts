/**
 * KafkaLog's appends: Produce v7 with acks=all of RecordBatch v2 bytes that src/log encoded (or that
 * a caller handed to appendEncoded), so what the cluster stores is byte for byte what FileLog would.
 *
 * Two kinds of producer identity:
 *
 * - Plain appends (no producerId): KafkaLog's own idempotent producer. It asks the cluster for a
 *   producer id (InitProducerId) once, numbers each partition's records from 0, and re-sends a batch
 *   whose answer was lost under the same sequence, so the cluster drops the copy. Requests to a
 *   partition are handed to the connection in the order their sequences were given. After a refusal
 *   the numbering is broken, so the next append asks for a new producer id. A cluster without
 *   InitProducerId gets plain batches (producer id -1), re-sent on a lost answer: at least once.
 *
 * - Kappa producers (appendBatch with `producerId`, appendEncoded of a batch with one): the id, epoch
 *   and sequence are written into the batch as the caller gave them, and the cluster applies its own
 *   rules. Kappa's engine derives its ids from a task's name (52-bit hashes, far above the small
 *   numbers a Kafka cluster hands out), so a restarted task re-sends under the same identity and the
 *   cluster drops what it already has. What a cluster keeps differs from FileLog (see
 *   src/log/kafka/index.ts): Kappa's listener applies FileLog's rules exactly; Apache Kafka drops only
 *   a re-send of one of a producer's last five batches and refuses a partial overlap or a new epoch
 *   that does not restart at 0 (OUT_OF_ORDER_SEQUENCE_NUMBER); librdkafka 2.0.2's mock cluster checks
 *   nothing and appends every copy. On that refusal KafkaLog reads the producer's last sequence from
 *   the partition's tail and settles the re-send as FileLog would (resend.ts): the records already
 *   there are reported as duplicates with their offsets and only the rest is sent, numbered from
 *   the last sequence + 1; a real gap or another epoch is still refused (KAPPA_OUT_OF_ORDER_SEQUENCE).
 *   `sequenceGaps: 'allow'` cannot be said on the wire (Kafka refuses every gap), so such appends go
 *   out as plain ones: at least once.
 *
 * Reporting duplicates: a Produce answer gives the batch's base offset, not whether it was a copy.
 * A copy's records sit below the partition's end as it was before the request was sent, a fresh
 * batch's at or above it; so an idempotent append reads the end first (ListOffsets), and when the
 * answer lands below it, reads the producer's batches from there to find each record's original
 * offset (a rare path: only re-sends take it).
 */
import { KappaError, isKappaError } from '../../errors.ts';
import { producerOf } from '../append-input.ts';
import { checkBatch, checkRecords, encodeBatch, type EncodableRecord } from '../record-batch.ts';
import { SEQUENCE_MODULUS } from '../producer-state.ts';
import { BatchField } from '../format/index.ts';
import type { AppendBatchResult, BatchOptions } from '../types.ts';
import { type Cluster, check } from './cluster.ts';
import { KAFKA } from './errors.ts';
import type { BatchReader } from './reader.ts';
import { settleRefusedResend } from './resend.ts';
import * as wire from './wire.ts';

const NO_DUPLICATES: readonly number[] = Object.freeze([]);

interface ClusterProducer {
  producerId: number;
  producerEpoch: number;
  /** Next sequence per "topic/partition". */
  next: Map<string, number>;
}

export class Appender {
  private own: Promise<ClusterProducer | null> | null = null;
  /** Per partition: settles once the last request was handed to its connection (keeps sends in sequence order). */
  private readonly sendOrder = new Map<string, Promise<void>>();

  constructor(
    private readonly cluster: Cluster,
    private readonly reader: BatchReader,
    private readonly timeoutMs: number,
  ) {}

  async appendBatch(
    topic: string,
    partition: number,
    records: readonly EncodableRecord[],
    opts?: BatchOptions,
  ): Promise<AppendBatchResult> {
    if (records.length === 0)
      throw new KappaError('KAPPA_INVALID_ARGUMENT', 'An append needs at least one record; nothing was appended.');
    const producer = producerOf(opts);
    if (producer !== null && !producer.allowGaps) {
      const bytes = encodeBatch(records, { baseOffset: 0, ...producer });
      return this.appendKappaProducer(topic, partition, bytes);
    }
    return this.appendOwn(topic, partition, records);
  }

  async appendEncoded(topic: string, partition: number, bytes: Buffer): Promise<AppendBatchResult> {
    const problem = checkBatch(bytes, 0, bytes.length);
    const recordProblem = problem.problem === null ? checkRecords(bytes) : null;
    if (problem.problem !== null || recordProblem !== null || problem.size !== bytes.length)
      throw new KappaError(
        'KAPPA_INVALID_RECORD',
        `The encoded batch for ${topic}/${partition} is damaged (${problem.problem ?? recordProblem ?? 'bytes after the batch'}); nothing of it was appended.`,
        { topic, partition },
      );
    if (bytes.readBigInt64BE(BatchField.producerId) >= 0n) return this.appendKappaProducer(topic, partition, bytes);
    const count = bytes.readInt32BE(BatchField.recordCount);
    const baseOffset = await this.send(topic, partition, bytes, null);
    return { baseOffset, lastOffset: baseOffset + count - 1, duplicates: 0, duplicateOffsets: NO_DUPLICATES };
  }

  /** A plain append under KafkaLog's own idempotent producer. */
  private async appendOwn(topic: string, partition: number, records: readonly EncodableRecord[]) {
    await this.cluster.leader(topic, partition);
    const own = await this.ownProducer();
    const key = `${topic}/${partition}`;
    const seq = own === null ? -1 : (own.next.get(key) ?? 0);
    if (own !== null) own.next.set(key, (seq + records.length) % SEQUENCE_MODULUS);
    const bytes = encodeBatch(records, {
      baseOffset: 0,
      producerId: own?.producerId ?? -1,
      producerEpoch: own?.producerEpoch ?? -1,
      baseSequence: seq,
    });
    try {
      const baseOffset = await this.send(topic, partition, bytes, key);
      return {
        baseOffset,
        lastOffset: baseOffset + records.length - 1,
        duplicates: 0,
        duplicateOffsets: NO_DUPLICATES,
      };
    } catch (err) {
      // The partition's numbering has a hole now: the next append starts a new producer.
      if (this.own !== null && (await this.own) === own) this.own = null;
      throw err;
    }
  }

  private ownProducer(): Promise<ClusterProducer | null> {
    this.own ??= (async () => {
      if (!(await this.cluster.supports('InitProducerId'))) return null;
      const res = await this.cluster.retrying({ action: 'asking for a producer id' }, async () => {
        const r = await wire.initProducerId(await this.cluster.anyConnection());
        check(r.errorCode, { action: 'asking for a producer id' });
        return r;
      });
      return { producerId: res.producerId, producerEpoch: res.producerEpoch, next: new Map() };
    })();
    const p = this.own;
    p.catch(() => {
      if (this.own === p) this.own = null;
    });
    return p;
  }

  /** Sends one partition's bytes and returns the base offset (retrying what a retry may cure). */
  private send(topic: string, partition: number, bytes: Buffer, orderKey: string | null): Promise<number> {
    const subject = { action: 'appending to', topic, partition };
    let first = true;
    return this.cluster.retrying(subject, async () => {
      const address = await this.cluster.leader(topic, partition);
      const connection = await this.cluster.connection(address);
      const sent = first && orderKey !== null ? this.inOrder(orderKey) : null;
      first = false;
      if (sent) await sent.previous;
      const answer = wire.produce(connection, topic, partition, bytes, this.timeoutMs);
      sent?.handed();
      const res = await answer;
      if (res.errorCode === KAFKA.DUPLICATE_SEQUENCE_NUMBER) return -1;
      check(res.errorCode, subject);
      return res.baseOffset;
    });
  }

  private inOrder(key: string): { previous: Promise<void>; handed: () => void } {
    const previous = this.sendOrder.get(key) ?? Promise.resolve();
    let handed!: () => void;
    const mine = new Promise<void>((resolve) => (handed = resolve));
    this.sendOrder.set(key, mine);
    void mine.then(() => this.sendOrder.get(key) === mine && this.sendOrder.delete(key));
    return { previous: previous.catch(() => {}), handed };
  }

  /**
   * An append under the caller's producer identity, with duplicates found as the header comment
   * says. `settleRefusal`: a refusal for the batch's sequence is settled from the partition's tail
   * (resend.ts); false for the remainder that settling sends, whose refusal stands.
   */
  private async appendKappaProducer(
    topic: string,
    partition: number,
    bytes: Buffer,
    settleRefusal = true,
  ): Promise<AppendBatchResult> {
    const count = bytes.readInt32BE(BatchField.recordCount);
    const { end } = await this.reader.offsets(topic, partition);
    let baseOffset: number;
    try {
      baseOffset = await this.send(topic, partition, bytes, null);
    } catch (err) {
      if (!settleRefusal || !isKappaError(err, 'KAPPA_OUT_OF_ORDER_SEQUENCE')) throw err;
      return settleRefusedResend(this.reader, { topic, partition, bytes, refusal: err }, (rest) =>
        this.appendKappaProducer(topic, partition, rest, false),
      );
    }
    // DUPLICATE_SEQUENCE_NUMBER: every record is a copy of one the cluster no longer has the offset of.
    if (baseOffset === -1)
      return {
        baseOffset,
        lastOffset: -1,
        duplicates: count,
        duplicateOffsets: Array.from({ length: count }, () => -1),
      };
    if (baseOffset >= end)
      return { baseOffset, lastOffset: baseOffset + count - 1, duplicates: 0, duplicateOffsets: NO_DUPLICATES };
    const producerId = Number(bytes.readBigInt64BE(BatchField.producerId));
    const baseSequence = bytes.readInt32BE(BatchField.baseSequence);
    return this.findOriginals(topic, partition, { producerId, baseSequence, count, from: baseOffset, end });
  }

  /** Reads the producer's batches from `from` to learn where each record of a re-sent batch is. */
  private async findOriginals(
    topic: string,
    partition: number,
    q: { producerId: number; baseSequence: number; count: number; from: number; end: number },
  ): Promise<AppendBatchResult> {
    const offsetOf = new Map<number, number>();
    let appendedLast = -1;
    const wanted = (seq: number): boolean => (seq - q.baseSequence + SEQUENCE_MODULUS) % SEQUENCE_MODULUS < q.count;
    for await (const batch of this.reader.read(topic, partition, q.from, {})) {
      if (batch.producerId !== q.producerId) continue;
      for (let i = 0; i < batch.count; i++) {
        const seq = (batch.baseSequence + i) % SEQUENCE_MODULUS;
        if (!wanted(seq)) continue;
        if (batch.baseOffset + i < q.end) offsetOf.set(seq, batch.baseOffset + i);
        else appendedLast = batch.baseOffset + i;
      }
      if (offsetOf.size === q.count || appendedLast >= 0) break;
    }
    const duplicateOffsets: number[] = [];
    for (let i = 0; i < q.count; i++) {
      const o = offsetOf.get((q.baseSequence + i) % SEQUENCE_MODULUS);
      if (o === undefined) break;
      duplicateOffsets.push(o);
    }
    const duplicates = duplicateOffsets.length;
    const lastOffset = duplicates === q.count ? (duplicateOffsets[q.count - 1] ?? -1) : appendedLast;
    return { baseOffset: duplicateOffsets[0] ?? q.from, lastOffset, duplicates, duplicateOffsets };
  }
}
