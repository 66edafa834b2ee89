/**
 * KafkaLog on a cluster that applies Apache Kafka's producer-sequence rule: Kappa's Kafka listener
 * over a FileLog wrapped so that a batch with a producer id is refused with error 45
 * (OUT_OF_ORDER_SEQUENCE_NUMBER) unless it exactly repeats one of the producer's last five batches
 * on the partition or starts at its last sequence + 1. FileLog alone drops any re-sent prefix; this
 * wrapper makes the listener answer as a Kafka broker does, so KafkaLog's settling of a refused
 * re-send (src/log/kafka/resend.ts) is what keeps an output task's re-sends exactly once.
 *
 * Every append is also made on a plain FileLog (the reference), directly, and KafkaLog's result
 * must equal the reference's: a re-send through KafkaLog on such a cluster reports what FileLog
 * reports, and the partition ends up holding the same records.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { KappaError, isKappaError } from '../../src/errors.ts';
import { startKafkaListener } from '../../src/kafka/index.ts';
import {
  type AppendBatchResult,
  type BatchOptions,
  BatchField,
  Codec,
  type EncodableRecord,
  type FileLog,
  type Log,
  SEQUENCE_MODULUS,
  compressBatch,
  encodeBatch,
  openFileLog,
  openLog,
} from '../../src/log/index.ts';

const quiet = { info(): void {}, warn(): void {} };
const P = 4_000_000_001;
const Q = 4_000_000_002;
const EPOCH = 3;
/** Batches Apache Kafka remembers per producer and partition (its ProducerStateEntry). */
const KAFKA_BATCHES_KEPT = 5;

/** What a Kafka broker keeps of one producer on one partition: its epoch and its last batches' sequences. */
interface BrokerProducer {
  epoch: number;
  batches: { first: number; last: number }[];
}

/**
 * `inner` with Apache Kafka's sequence rule in front of its appends of batches with a producer id;
 * everything else is `inner`'s. The rule, as a broker applies it:
 *
 * - a producer the partition does not know: any first sequence (Kafka 2.5 and later);
 * - the same epoch and the same first and last sequence as one of its last five batches: a
 *   duplicate, answered as FileLog answers one (its original offsets);
 * - otherwise the first sequence must be the last one + 1, or the batch is refused
 *   (KAPPA_OUT_OF_ORDER_SEQUENCE, which the listener answers with error 45).
 *
 * Another epoch is refused too: Kafka accepts a newer epoch that starts at sequence 0, which
 * FileLog below would take for a re-send; the tests here keep one epoch per producer.
 */
function applyingKafkaSequenceRule(inner: Log): { log: Log; refusals: () => number } {
  const producers = new Map<string, BrokerProducer>();
  let refusals = 0;

  /** Checks a batch against the rule and records it; returns the state to restore if the append fails. */
  function admit(where: string, producerId: number, epoch: number, first: number, count: number): () => void {
    const key = `${where}/${producerId}`;
    const last = (first + count - 1) % SEQUENCE_MODULUS;
    const prior = producers.get(key);
    const restore = (): void => void (prior ? producers.set(key, prior) : producers.delete(key));
    if (prior === undefined) {
      producers.set(key, { epoch, batches: [{ first, last }] });
      return restore;
    }
    if (prior.epoch === epoch && prior.batches.some((b) => b.first === first && b.last === last)) return () => {};
    const lastSeq = prior.batches[prior.batches.length - 1].last;
    const expected = (lastSeq + 1) % SEQUENCE_MODULUS;
    if (prior.epoch !== epoch || first !== expected) {
      refusals++;
      throw new KappaError(
        'KAPPA_OUT_OF_ORDER_SEQUENCE',
        `Producer ${producerId} (epoch ${epoch}) sent sequences ${first}-${last} to ${where}, but its last batch there (epoch ${prior.epoch}) ended at ${lastSeq}: this test cluster, like Apache Kafka, takes only an exact re-send of one of the last ${KAFKA_BATCHES_KEPT} batches or sequence ${expected}.`,
      );
    }
    const batches = [...prior.batches, { first, last }].slice(-KAFKA_BATCHES_KEPT);
    producers.set(key, { epoch, batches });
    return restore;
  }

  async function guarded(
    admitted: (() => void) | null,
    append: () => Promise<AppendBatchResult>,
  ): Promise<AppendBatchResult> {
    try {
      return await append();
    } catch (err) {
      admitted?.();
      throw err;
    }
  }

  // Async, so a refusal is a rejected promise as the listener expects; the rule still runs at the call.
  async function appendEncoded(topic: string, partition: number, bytes: Buffer): Promise<AppendBatchResult> {
    const producerId = Number(bytes.readBigInt64BE(BatchField.producerId));
    const admitted =
      producerId < 0
        ? null
        : admit(
            `${topic}/${partition}`,
            producerId,
            bytes.readInt16BE(BatchField.producerEpoch),
            bytes.readInt32BE(BatchField.baseSequence),
            bytes.readInt32BE(BatchField.recordCount),
          );
    return guarded(admitted, () => inner.appendEncoded(topic, partition, bytes));
  }

  async function appendBatch(
    topic: string,
    partition: number,
    records: readonly EncodableRecord[],
    opts?: BatchOptions,
  ): Promise<AppendBatchResult> {
    const id = opts?.producerId ?? -1;
    const admitted =
      id < 0 ? null : admit(`${topic}/${partition}`, id, opts!.producerEpoch!, opts!.baseSequence!, records.length);
    return guarded(admitted, () => inner.appendBatch(topic, partition, records, opts));
  }

  const log = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'appendEncoded') return appendEncoded;
      if (prop === 'appendBatch') return appendBatch;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set(target, prop, value) {
      return Reflect.set(target, prop, value, target);
    },
  });
  return { log, refusals: () => refusals };
}

/** Records for sequences `from`..`to` (inclusive, through the wrap), with keys, headers and distinct timestamps. */
function records(from: number, to: number): EncodableRecord[] {
  const out: EncodableRecord[] = [];
  for (let seq = from; ; seq = (seq + 1) % SEQUENCE_MODULUS) {
    out.push({
      key: `k${seq}`,
      value: `v${seq}`,
      headers: [{ key: 'seq', value: Buffer.from(String(seq)) }],
      timestamp: 1_700_000_000_000 + (seq % 1000) * 7,
    });
    if (seq === to) return out;
  }
}

function by(producerId: number, baseSequence: number, epoch = EPOCH): BatchOptions {
  return { producerId, producerEpoch: epoch, baseSequence };
}

/** Every record of t/0, decoded to comparable values. */
async function contents(log: Log): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const batch of log.read('t', 0, 0))
    for (const r of batch.records())
      out.push({
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key?.toString(),
        value: r.value?.toString(),
        headers: r.headers.map((h) => [h.key, h.value?.toString()]),
      });
  return out;
}

async function valuesOf(log: Log): Promise<string[]> {
  return (await contents(log)).map((r) => (r as { value: string }).value);
}

interface Cluster {
  /** KafkaLog on the listener. */
  kafka: Log;
  /** The FileLog behind the listener. */
  stored: FileLog;
  /** A FileLog appended to directly, for the results FileLog gives. */
  reference: FileLog;
  /** How many batches the listener's rule refused so far. */
  refusals: () => number;
  close(): Promise<void>;
}

async function startCluster(): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-kafka-strict-'));
  const stored = await openFileLog({ dir: join(dir, 'stored'), logger: quiet });
  const reference = await openFileLog({ dir: join(dir, 'reference'), logger: quiet });
  const strict = applyingKafkaSequenceRule(stored);
  const listener = await startKafkaListener({ log: strict.log, port: 0, logger: quiet });
  const kafka = await openLog({ kind: 'kafka', brokers: [listener.address], clientId: 'kappa-strict' });
  await kafka.createTopic('t', { partitions: 1 });
  await reference.createTopic('t', { partitions: 1 });
  return {
    kafka,
    stored,
    reference,
    refusals: strict.refusals,
    async close() {
      await kafka.close();
      await listener.close();
      await stored.close();
      await reference.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('KafkaLog on a cluster that applies Apache Kafka’s sequence rule', () => {
  let c: Cluster;
  beforeEach(async () => {
    c = await startCluster();
  });
  afterEach(async () => {
    await c.close();
  });

  /** The same append on KafkaLog and on the reference FileLog; their results must be equal. */
  async function both(append: (log: Log) => Promise<AppendBatchResult>): Promise<AppendBatchResult> {
    const expected = await append(c.reference);
    const actual = await append(c.kafka);
    assert.deepEqual(actual, expected, 'KafkaLog reports what FileLog reports for the same append');
    return actual;
  }

  async function assertSameRecords(): Promise<void> {
    assert.deepEqual(await contents(c.stored), await contents(c.reference), 'the cluster holds what FileLog holds');
  }

  test('the test cluster refuses a partly overlapping re-send and answers an exact one, as Apache Kafka does', async () => {
    const strict = applyingKafkaSequenceRule(c.stored).log;
    await strict.appendBatch('t', 0, records(0, 9), by(P, 0));
    const exact = await strict.appendBatch('t', 0, records(0, 9), by(P, 0));
    assert.deepEqual([exact.duplicates, exact.duplicateOffsets], [10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
    await assert.rejects(strict.appendBatch('t', 0, records(5, 14), by(P, 5)), (err: unknown) =>
      isKappaError(err, 'KAPPA_OUT_OF_ORDER_SEQUENCE'),
    );
    const next = await strict.appendBatch('t', 0, records(10, 14), by(P, 10));
    assert.deepEqual([next.baseOffset, next.duplicates], [10, 0]);
    assert.deepEqual(
      await valuesOf(c.stored),
      records(0, 14).map((r) => r.value),
    );
  });

  test(
    'a re-send that overlaps the records there appends only the rest, numbered after the last sequence',
    { timeout: 60_000 },
    async () => {
      await both((log) => log.appendBatch('t', 0, records(0, 9), by(P, 0)));
      const again = await both((log) => log.appendBatch('t', 0, records(5, 14), by(P, 5)));
      assert.deepEqual(again, { baseOffset: 5, lastOffset: 14, duplicates: 5, duplicateOffsets: [5, 6, 7, 8, 9] });
      assert.equal(c.refusals(), 1, 'the cluster refused the re-send as it was cut');
      assert.deepEqual(
        await valuesOf(c.stored),
        records(0, 14).map((r) => r.value),
        'sequences 0-14 once, in order',
      );
      const last = await lastBatch(c.stored);
      assert.deepEqual(
        [last.producerId, last.producerEpoch, last.baseSequence, last.count, last.baseOffset],
        [P, EPOCH, 10, 5, 10],
      );
      await assertSameRecords();
      // The producer carries on from there.
      const next = await both((log) => log.appendBatch('t', 0, records(15, 16), by(P, 15)));
      assert.deepEqual([next.baseOffset, next.duplicates], [15, 0]);
    },
  );

  test(
    'a re-send of records that are all there appends nothing and reports their offsets',
    { timeout: 60_000 },
    async () => {
      await both((log) => log.appendBatch('t', 0, records(0, 9), by(P, 0)));
      await both((log) => log.appendBatch('t', 0, records(10, 14), by(P, 10)));
      const inside = await both((log) => log.appendBatch('t', 0, records(2, 7), by(P, 2)));
      assert.deepEqual(inside, { baseOffset: 2, lastOffset: 7, duplicates: 6, duplicateOffsets: [2, 3, 4, 5, 6, 7] });
      const across = await both((log) => log.appendBatch('t', 0, records(8, 12), by(P, 8)));
      assert.deepEqual(across, { baseOffset: 8, lastOffset: 12, duplicates: 5, duplicateOffsets: [8, 9, 10, 11, 12] });
      assert.equal(c.refusals(), 2);
      assert.deepEqual(await c.kafka.offsets('t', 0), { start: 0, end: 15 });
      await assertSameRecords();
    },
  );

  test(
    'finds the producer’s last sequence behind thousands of other producers’ records',
    { timeout: 120_000 },
    async () => {
      await both((log) => log.appendBatch('t', 0, records(0, 9), by(P, 0)));
      // 3000 records after P's last batch: more than the first windows of the tail scan cover.
      for (let seq = 0; seq < 2000; seq += 100)
        await both((log) => log.appendBatch('t', 0, records(seq, seq + 99), by(Q, seq)));
      for (let i = 0; i < 10; i++) await both((log) => log.appendBatch('t', 0, records(50_000, 50_099)));
      const again = await both((log) => log.appendBatch('t', 0, records(5, 14), by(P, 5)));
      assert.deepEqual(again, { baseOffset: 5, lastOffset: 3014, duplicates: 5, duplicateOffsets: [5, 6, 7, 8, 9] });
      const inside = await both((log) => log.appendBatch('t', 0, records(3, 12), by(P, 3)));
      assert.deepEqual(inside.duplicateOffsets, [3, 4, 5, 6, 7, 8, 9, 3010, 3011, 3012]);
      assert.equal(c.refusals(), 2);
      let ofP = 0;
      for await (const b of c.stored.read('t', 0, 0)) if (b.producerId === P) ofP += b.count;
      assert.equal(ofP, 15, 'P’s sequences 0-14 once each');
      await assertSameRecords();
    },
  );

  test('a real gap is still refused and appends nothing', { timeout: 60_000 }, async () => {
    await c.kafka.appendBatch('t', 0, records(0, 9), by(P, 0));
    await c.kafka.appendBatch('t', 0, records(10, 14), by(P, 10));
    await assert.rejects(
      c.kafka.appendBatch('t', 0, records(20, 24), by(P, 20)),
      (err: unknown) =>
        isKappaError(err, 'KAPPA_OUT_OF_ORDER_SEQUENCE') &&
        err.message.includes('OUT_OF_ORDER_SEQUENCE_NUMBER') &&
        err.message.includes('ends at sequence 14') &&
        err.message.includes('from sequence 15'),
    );
    // Another epoch re-sending records that are there: Kafka cannot match them, so the refusal stands.
    await assert.rejects(
      c.kafka.appendBatch('t', 0, records(12, 16), by(P, 12, EPOCH + 1)),
      (err: unknown) => isKappaError(err, 'KAPPA_OUT_OF_ORDER_SEQUENCE') && err.message.includes('epoch'),
    );
    assert.deepEqual(await c.kafka.offsets('t', 0), { start: 0, end: 15 }, 'nothing was appended');
  });

  test('sequences that wrap from 2^31 - 1 to 0 are settled in the ring', { timeout: 60_000 }, async () => {
    const top = SEQUENCE_MODULUS - 5;
    await both((log) => log.appendBatch('t', 0, records(top, SEQUENCE_MODULUS - 1), by(P, top)));
    await both((log) => log.appendBatch('t', 0, records(0, 4), by(P, 0)));
    const again = await both((log) =>
      log.appendBatch('t', 0, records(SEQUENCE_MODULUS - 2, 7), by(P, SEQUENCE_MODULUS - 2)),
    );
    assert.deepEqual(again, {
      baseOffset: 3,
      lastOffset: 12,
      duplicates: 7,
      duplicateOffsets: [3, 4, 5, 6, 7, 8, 9],
    });
    assert.equal((await lastBatch(c.stored)).baseSequence, 5);
    await assertSameRecords();
  });

  test(
    'an encoded, compressed re-send keeps its records, headers, timestamps and compression',
    { timeout: 60_000 },
    async () => {
      await both((log) => log.appendBatch('t', 0, records(0, 9), by(P, 0)));
      const bytes = compressBatch(
        encodeBatch(records(5, 14), { baseOffset: 0, producerId: P, producerEpoch: EPOCH, baseSequence: 5 }),
        Codec.gzip,
      );
      // The log owns the bytes it is handed until the call settles: each log gets its own copy.
      const again = await both((log) => log.appendEncoded('t', 0, Buffer.from(bytes)));
      assert.deepEqual(again, { baseOffset: 5, lastOffset: 14, duplicates: 5, duplicateOffsets: [5, 6, 7, 8, 9] });
      const last = await lastBatch(c.stored);
      assert.deepEqual([last.compression, last.baseSequence, last.count], [Codec.gzip, 10, 5]);
      await assertSameRecords();
    },
  );
});

async function lastBatch(log: Log) {
  let last = null;
  for await (const b of log.read('t', 0, 0)) last = b;
  assert.ok(last !== null, 'the partition holds a batch');
  return last;
}
