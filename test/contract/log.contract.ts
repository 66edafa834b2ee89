/**
 * The `Log` contract: what every adapter of the streaming layer (the embedded FileLog now, a
 * Kafka-backed one later) must do, written against the port only. An adapter's test file calls
 * `logContract` with a factory that opens a fresh, empty log on real storage.
 *
 * What it pins down: topics (create, describe, refuse a duplicate or a bad name), appends acknowledged
 * in order with offsets dense from 0 per partition, the same key always in the same partition,
 * reads from any offset that return exactly the records from there on and nothing past the end,
 * a follower that wakes on a later append, data kept across reopen, time lookup, retention by
 * size, and, for an adapter with idempotent producers, dedupe of a re-sent batch and fencing of an
 * older epoch.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isKappaError } from '../../src/errors.ts';
import type { AppendBatchResult, BatchOptions, EncodableRecord, Log, LogRecord } from '../../src/log/index.ts';

/** The idempotent-producer append, for adapters that have one (Kafka's producer id / epoch / sequence). */
export interface IdempotentAppend {
  appendBatch(topic: string, partition: number, records: readonly EncodableRecord[], opts?: BatchOptions): Promise<AppendBatchResult>;
}

export interface LogHarness {
  log: Log;
  /** Closes the log last returned and opens a new one on the same data. */
  reopen(): Promise<Log>;
  /** Closes whatever is open and removes the data. */
  cleanup(): Promise<void>;
  /** The adapter's idempotent-producer append, if it has one. */
  idempotent?: (log: Log) => IdempotentAppend;
  /** Applies retention now (adapters that run it on a timer). */
  enforceRetention?: (log: Log) => void;
}

async function readAll(log: Log, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const batch of log.read(topic, partition, from)) out.push(...batch.records(from));
  return out;
}

const text = (r: LogRecord): string | undefined => r.value?.toString();

export function logContract(name: string, open: () => Promise<LogHarness>): void {
  describe(`Log contract: ${name}`, () => {
    let h: LogHarness;
    let log: Log;

    beforeEach(async () => {
      h = await open();
      log = h.log;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    describe('topics', () => {
      test('a created topic is listed and described with its settings; a duplicate or a bad name is refused', async () => {
        const info = await log.createTopic('orders', { partitions: 3 });
        assert.equal(info.name, 'orders');
        assert.equal(info.partitions, 3);
        assert.deepEqual((await log.topic('orders')).partitions, 3);
        assert.deepEqual((await log.topics()).map((t) => t.name), ['orders']);
        await assert.rejects(log.createTopic('orders', { partitions: 3 }), (err: unknown) => isKappaError(err));
        await assert.rejects(log.createTopic('no/slashes', { partitions: 1 }), (err: unknown) => isKappaError(err));
        await assert.rejects(log.topic('missing'), (err: unknown) => isKappaError(err, 'KAPPA_UNKNOWN_TOPIC'));
      });
    });

    describe('appends and reads', () => {
      test('offsets are dense from 0 per partition, in the order of the appends, and acks come in input order', async () => {
        await log.createTopic('t', { partitions: 2 });
        const acks = await log.append('t', [
          { value: 'a0', partition: 0 },
          { value: 'b0', partition: 1 },
          { value: 'a1', partition: 0 },
        ]);
        assert.deepEqual(acks.map((a) => [a.partition, a.offset]), [[0, 0], [1, 0], [0, 1]]);
        const more = await log.append('t', [{ value: 'a2', partition: 0 }]);
        assert.deepEqual(more.map((a) => [a.partition, a.offset]), [[0, 2]]);
        assert.deepEqual((await readAll(log, 't', 0)).map((r) => [r.offset, text(r)]), [[0, 'a0'], [1, 'a1'], [2, 'a2']]);
        assert.deepEqual((await readAll(log, 't', 1)).map((r) => [r.offset, text(r)]), [[0, 'b0']]);
        assert.deepEqual(await log.offsets('t', 0), { start: 0, end: 3 });
      });

      test('records with the same key go to the same partition; keys, headers and timestamps are kept', async () => {
        await log.createTopic('t', { partitions: 4 });
        const acks = await log.append('t', Array.from({ length: 40 }, (_, i) => ({ key: `k${i % 5}`, value: String(i), timestamp: 1_700_000_000_000 + i, headers: { n: String(i) } })));
        const partitionOf = new Map<string, number>();
        acks.forEach((a, i) => {
          const key = `k${i % 5}`;
          if (partitionOf.has(key)) assert.equal(a.partition, partitionOf.get(key), `key ${key} changed partition`);
          partitionOf.set(key, a.partition);
        });
        const all = (await Promise.all([0, 1, 2, 3].map((p) => readAll(log, 't', p)))).flat();
        assert.equal(all.length, 40);
        for (const r of all) {
          const i = Number(text(r));
          assert.equal(r.key?.toString(), `k${i % 5}`);
          assert.equal(r.timestamp, 1_700_000_000_000 + i);
          assert.deepEqual(r.headers.map((x) => [x.key, x.value?.toString()]), [['n', String(i)]]);
        }
      });

      test('a read from any offset returns exactly the records from there to the end, and nothing from the end on', async () => {
        await log.createTopic('t', { partitions: 1 });
        for (let b = 0; b < 5; b++) await log.append('t', Array.from({ length: 7 }, (_, i) => ({ value: `v${b * 7 + i}`, partition: 0 })));
        for (const from of [0, 1, 6, 7, 20, 34]) {
          assert.deepEqual((await readAll(log, 't', 0, from)).map(text), Array.from({ length: 35 - from }, (_, i) => `v${from + i}`), `from ${from}`);
        }
        assert.deepEqual(await readAll(log, 't', 0, 35), []);
        await assert.rejects(readAll(log, 't', 0, 36), (err: unknown) => isKappaError(err, 'KAPPA_OFFSET_OUT_OF_RANGE'));
      });

      test('a following read wakes on a later append', { timeout: 10_000 }, async () => {
        await log.createTopic('t', { partitions: 1 });
        await log.append('t', [{ value: 'first', partition: 0 }]);
        const abort = new AbortController();
        const seen: string[] = [];
        const follower = (async () => {
          for await (const batch of log.read('t', 0, 0, { follow: true, signal: abort.signal })) {
            for (const r of batch.records(0)) seen.push(text(r)!);
            if (seen.length === 2) abort.abort();
          }
        })();
        await new Promise((r) => setTimeout(r, 50));
        await log.append('t', [{ value: 'second', partition: 0 }]);
        await follower;
        assert.deepEqual(seen, ['first', 'second']);
      });

      test('acknowledged records are there after the log is reopened, and appends continue at the next offset', async () => {
        await log.createTopic('t', { partitions: 1 });
        await log.append('t', [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }]);
        log = await h.reopen();
        assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a', 'b']);
        assert.deepEqual((await log.append('t', [{ value: 'c', partition: 0 }])).map((a) => a.offset), [2]);
      });
    });

    describe('time', () => {
      test('offsetForTime gives the first offset at or after a time, or the end when none is', async () => {
        await log.createTopic('t', { partitions: 1 });
        await log.append('t', [10, 20, 20, 30].map((ts, i) => ({ value: String(i), timestamp: 1_000_000 + ts, partition: 0 })));
        assert.equal(await log.offsetForTime('t', 0, 0), 0);
        assert.equal(await log.offsetForTime('t', 0, 1_000_015), 1);
        assert.equal(await log.offsetForTime('t', 0, 1_000_020), 1);
        assert.equal(await log.offsetForTime('t', 0, 1_000_030), 3);
        assert.equal(await log.offsetForTime('t', 0, 1_000_031), 4);
      });
    });

    describe('retention', () => {
      test('retention by size drops whole old segments from the start; offsets of what is kept do not change', async (t) => {
        if (h.enforceRetention === undefined) return t.skip('this adapter applies retention on its own schedule');
        await log.createTopic('t', { partitions: 1, segmentBytes: 4096, retentionBytes: 8192 });
        for (let i = 0; i < 60; i++) await log.append('t', [{ value: `record ${i} `.padEnd(200, '.'), partition: 0 }]);
        h.enforceRetention(log);
        const { start, end } = await log.offsets('t', 0);
        assert.equal(end, 60);
        assert.ok(start > 0, 'old segments were dropped');
        const kept = await readAll(log, 't', 0, start);
        assert.deepEqual(kept.map((r) => r.offset), Array.from({ length: 60 - start }, (_, i) => start + i));
        assert.ok(text(kept[0])!.startsWith(`record ${start} `));
      });
    });

    describe('idempotent producers', () => {
      test('a re-sent batch is not appended again and reports the original offsets; an older epoch is fenced off', async (t) => {
        if (h.idempotent === undefined) return t.skip('this adapter has no idempotent producer');
        const p = h.idempotent(log);
        await log.createTopic('t', { partitions: 1 });
        const records = ['a', 'b', 'c'].map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1 }));
        const first = await p.appendBatch('t', 0, records, { producerId: 42, producerEpoch: 0, baseSequence: 0 });
        assert.equal(first.duplicates, 0);
        const again = await p.appendBatch('t', 0, records, { producerId: 42, producerEpoch: 0, baseSequence: 0 });
        assert.equal(again.duplicates, 3);
        assert.deepEqual(again.duplicateOffsets, [0, 1, 2]);
        // Partly new: the first two were appended before, the third is new.
        const partly = await p.appendBatch('t', 0, [...records.slice(1), { key: null, value: Buffer.from('d'), headers: [], timestamp: 1 }], { producerId: 42, producerEpoch: 0, baseSequence: 1 });
        assert.equal(partly.duplicates, 2);
        assert.equal(partly.lastOffset, 3);
        assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a', 'b', 'c', 'd']);
        // A newer epoch (a restarted producer) continues the sequence and fences off the older one.
        await p.appendBatch('t', 0, records.slice(0, 1), { producerId: 42, producerEpoch: 1, baseSequence: 4 });
        await assert.rejects(p.appendBatch('t', 0, records.slice(0, 1), { producerId: 42, producerEpoch: 0, baseSequence: 5 }), (err: unknown) => isKappaError(err, 'KAPPA_PRODUCER_FENCED'));
        // A gap in the sequence is refused: records the producer sent in between were never appended.
        await assert.rejects(p.appendBatch('t', 0, records.slice(0, 1), { producerId: 42, producerEpoch: 1, baseSequence: 9 }), (err: unknown) => isKappaError(err, 'KAPPA_OUT_OF_ORDER_SEQUENCE'));
        assert.equal((await log.offsets('t', 0)).end, 5);
      });

      test('after a reopen, the producer state still recognises a re-sent batch', async (t) => {
        if (h.idempotent === undefined) return t.skip('this adapter has no idempotent producer');
        await log.createTopic('t', { partitions: 1 });
        const records = ['a', 'b'].map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1 }));
        await h.idempotent(log).appendBatch('t', 0, records, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
        log = await h.reopen();
        const again = await h.idempotent(log).appendBatch('t', 0, records, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
        assert.equal(again.duplicates, 2);
        assert.equal((await log.offsets('t', 0)).end, 2);
      });
    });
  });
}
