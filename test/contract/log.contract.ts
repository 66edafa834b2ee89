/**
 * The `Log` contract: what every adapter of the streaming layer (the embedded FileLog now, a
 * Kafka-backed one later) must do, written against the port only. An adapter's test file calls
 * `logContract` with a factory that opens a fresh, empty log on real storage.
 *
 * What it pins down: topics (create, describe, refuse a duplicate or a bad name), appends acknowledged
 * in order with offsets dense from 0 per partition, the same key always in the same partition,
 * reads from any offset that return exactly the records from there on and nothing past the end,
 * a follower that wakes on a later append, data kept across reopen, time lookup, retention by
 * size, and idempotent producers (the port's `appendBatch` with a producer id): dedupe of a re-sent
 * batch, fencing of an older epoch, refusal of a sequence gap. The wider port (`widerPort` below): appendBatch results, appendEncoded taking a valid
 * batch as it is and refusing a damaged one whole, waitForData, reads bounded by the high watermark,
 * sizeBytes, health, and `descriptor` + `openLog` opening the same log read-only.
 */
import assert from 'node:assert/strict';
import { type TestContext, afterEach, beforeEach, describe, test } from 'node:test';
import { isKappaError } from '../../src/errors.ts';
import { BatchField, encodeBatch, openLog } from '../../src/log/index.ts';
import type { EncodableRecord, Log, LogRecord, TopicConfig } from '../../src/log/index.ts';

export interface LogHarness {
  log: Log;
  /** Closes the log last returned and opens a new one on the same data. */
  reopen(): Promise<Log>;
  /** Closes whatever is open and removes the data. */
  cleanup(): Promise<void>;
  /** Applies retention now (adapters that run it on a timer). */
  enforceRetention?: (log: Log) => void;
  /** Makes a topic by the cluster's own means, for a log whose cluster cannot (`topicAdmin: 'external'`). */
  createTopic?: (name: string, config: TopicConfig) => Promise<void>;
  /** Where the adapter keeps a weaker promise than FileLog; each flag's tests state that promise. Default: all FileLog's. */
  capabilities?: LogCapabilities;
}

/**
 * Promises a log over a cluster Kappa does not run cannot keep as FileLog does. Every flag has tests
 * on both sides: the full promise where it holds, the weaker one (stated as a test) where it does not.
 */
export interface LogCapabilities {
  /**
   * 'enforced' (default): retention by size drops whole old segments when `enforceRetention` runs.
   * 'cluster': the log passes the topic's retention settings to the cluster, which applies them on
   * its own schedule (Kafka: log.retention.check.interval.ms); the contract checks they are kept.
   */
  retention?: 'enforced' | 'cluster';
  /**
   * 'kappa' (default): FileLog's idempotent-producer rules (re-sends dropped, partial overlaps
   * split, older epochs fenced, gaps refused, across reopen). 'none': the cluster checks no producer
   * sequences (librdkafka 2.0.2's mock): a re-sent batch is appended again, as a plain append is.
   */
  idempotence?: 'kappa' | 'none';
  /** 'exact' (default): offsetForTime finds the first record at or after a time. 'none': the cluster answers "no such record" for every time (the mock), so it gives the end offset. */
  timeLookup?: 'exact' | 'none';
  /** 'api' (default): createTopic and deleteTopic work. 'external': the cluster offers neither (the mock); both refuse with KAPPA_INVALID_ARGUMENT naming the missing API, and the harness makes topics. */
  topicAdmin?: 'api' | 'external';
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
    const current = {} as Current;
    const can = (): Required<LogCapabilities> => ({
      retention: 'enforced',
      idempotence: 'kappa',
      timeLookup: 'exact',
      topicAdmin: 'api',
      ...h.capabilities,
    });
    /** Makes a topic through the log, or through the harness where the cluster cannot. */
    const create = async (name: string, config: TopicConfig): Promise<void> => {
      if (h.createTopic !== undefined && can().topicAdmin === 'external') await h.createTopic(name, config);
      else await log.createTopic(name, config);
    };

    let cleaned = false;
    const cleanup = async (): Promise<void> => {
      if (cleaned) return;
      cleaned = true;
      await h.cleanup();
    };
    /**
     * Skips the test that runs because of a capability flag, naming the test of the weaker promise.
     * Node 20 runs no afterEach hook for a test that skipped itself, so the log is closed here.
     */
    const skip = async (t: TestContext, reason: string): Promise<void> => {
      t.skip(reason);
      await cleanup();
    };

    beforeEach(async () => {
      h = await open();
      cleaned = false;
      log = h.log;
      current.log = log;
      current.create = create;
      current.can = can;
      current.skip = skip;
    });
    afterEach(cleanup);

    describe('topics', () => {
      test('a created topic is listed and described with its settings; a duplicate or a bad name is refused', async (t) => {
        if (can().topicAdmin === 'external')
          return skip(
            t,
            'the cluster offers no CreateTopics or DeleteTopics: see the test of what the log does instead',
          );
        const info = await log.createTopic('orders', { partitions: 3 });
        assert.equal(info.name, 'orders');
        assert.equal(info.partitions, 3);
        assert.deepEqual((await log.topic('orders')).partitions, 3);
        assert.deepEqual(
          (await log.topics()).map((t) => t.name),
          ['orders'],
        );
        await assert.rejects(log.createTopic('orders', { partitions: 3 }), (err: unknown) => isKappaError(err));
        await assert.rejects(log.createTopic('no/slashes', { partitions: 1 }), (err: unknown) => isKappaError(err));
        await assert.rejects(log.topic('missing'), (err: unknown) => isKappaError(err, 'KAPPA_UNKNOWN_TOPIC'));
      });

      test('a deleted topic is gone, stays gone after reopen, and a new one of that name starts at offset 0', async (t) => {
        if (can().topicAdmin === 'external')
          return skip(
            t,
            'the cluster offers no CreateTopics or DeleteTopics: see the test of what the log does instead',
          );
        await log.createTopic('doomed', { partitions: 2 });
        await log.createTopic('kept', { partitions: 1 });
        await log.append('doomed', [
          { value: 'a', partition: 0 },
          { value: 'b', partition: 1 },
        ]);
        await log.append('kept', [{ value: 'k' }]);
        await log.deleteTopic('doomed');
        assert.deepEqual(
          (await log.topics()).map((t) => t.name),
          ['kept'],
        );
        await assert.rejects(log.topic('doomed'), (err: unknown) => isKappaError(err, 'KAPPA_UNKNOWN_TOPIC'));
        await assert.rejects(log.append('doomed', [{ value: 'x' }]), (err: unknown) =>
          isKappaError(err, 'KAPPA_UNKNOWN_TOPIC'),
        );
        await assert.rejects(log.deleteTopic('doomed'), (err: unknown) => isKappaError(err, 'KAPPA_UNKNOWN_TOPIC'));
        await assert.rejects(log.deleteTopic('../kept'), (err: unknown) =>
          isKappaError(err, 'KAPPA_INVALID_TOPIC_NAME'),
        );
        log = await h.reopen();
        assert.deepEqual(
          (await log.topics()).map((t) => t.name),
          ['kept'],
        );
        assert.deepEqual((await readAll(log, 'kept', 0)).map(text), ['k']);
        await log.createTopic('doomed', { partitions: 1 });
        assert.deepEqual(await log.offsets('doomed', 0), { start: 0, end: 0 });
        const [ack] = await log.append('doomed', [{ value: 'new' }]);
        assert.equal(ack.offset, 0);
        assert.deepEqual((await readAll(log, 'doomed', 0)).map(text), ['new']);
      });

      test('where the cluster cannot create or delete topics, createTopic and deleteTopic say so and change nothing', async (t) => {
        if (can().topicAdmin !== 'external')
          return skip(t, 'this log creates and deletes topics itself (the tests above)');
        await create('orders', { partitions: 3 });
        assert.equal((await log.topic('orders')).partitions, 3);
        assert.deepEqual(
          (await log.topics()).map((x) => x.name),
          ['orders'],
        );
        await assert.rejects(
          log.createTopic('fresh', { partitions: 1 }),
          (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && err.message.includes('CreateTopics'),
        );
        await assert.rejects(
          log.deleteTopic('orders'),
          (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && err.message.includes('DeleteTopics'),
        );
        await assert.rejects(log.createTopic('no/slashes', { partitions: 1 }), (err: unknown) =>
          isKappaError(err, 'KAPPA_INVALID_TOPIC_NAME'),
        );
        await assert.rejects(log.topic('missing'), (err: unknown) => isKappaError(err, 'KAPPA_UNKNOWN_TOPIC'));
        assert.deepEqual(
          (await log.topics()).map((x) => x.name),
          ['orders'],
        );
      });

      test('a read-only handle cannot delete a topic', async () => {
        await create('t', { partitions: 1 });
        const reader = await openLog(log.descriptor, { readOnly: true });
        try {
          await assert.rejects(reader.deleteTopic('t'), (err: unknown) => isKappaError(err, 'KAPPA_READ_ONLY'));
        } finally {
          await reader.close();
        }
        assert.equal((await log.topic('t')).partitions, 1);
      });
    });

    describe('appends and reads', () => {
      test('offsets are dense from 0 per partition, in the order of the appends, and acks come in input order', async () => {
        await create('t', { partitions: 2 });
        const acks = await log.append('t', [
          { value: 'a0', partition: 0 },
          { value: 'b0', partition: 1 },
          { value: 'a1', partition: 0 },
        ]);
        assert.deepEqual(
          acks.map((a) => [a.partition, a.offset]),
          [
            [0, 0],
            [1, 0],
            [0, 1],
          ],
        );
        const more = await log.append('t', [{ value: 'a2', partition: 0 }]);
        assert.deepEqual(
          more.map((a) => [a.partition, a.offset]),
          [[0, 2]],
        );
        assert.deepEqual(
          (await readAll(log, 't', 0)).map((r) => [r.offset, text(r)]),
          [
            [0, 'a0'],
            [1, 'a1'],
            [2, 'a2'],
          ],
        );
        assert.deepEqual(
          (await readAll(log, 't', 1)).map((r) => [r.offset, text(r)]),
          [[0, 'b0']],
        );
        assert.deepEqual(await log.offsets('t', 0), { start: 0, end: 3 });
      });

      test('records with the same key go to the same partition; keys, headers and timestamps are kept', async () => {
        await create('t', { partitions: 4 });
        const acks = await log.append(
          't',
          Array.from({ length: 40 }, (_, i) => ({
            key: `k${i % 5}`,
            value: String(i),
            timestamp: 1_700_000_000_000 + i,
            headers: { n: String(i) },
          })),
        );
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
          assert.deepEqual(
            r.headers.map((x) => [x.key, x.value?.toString()]),
            [['n', String(i)]],
          );
        }
      });

      test('a read from any offset returns exactly the records from there to the end, and nothing from the end on', async () => {
        await create('t', { partitions: 1 });
        for (let b = 0; b < 5; b++)
          await log.append(
            't',
            Array.from({ length: 7 }, (_, i) => ({ value: `v${b * 7 + i}`, partition: 0 })),
          );
        for (const from of [0, 1, 6, 7, 20, 34]) {
          assert.deepEqual(
            (await readAll(log, 't', 0, from)).map(text),
            Array.from({ length: 35 - from }, (_, i) => `v${from + i}`),
            `from ${from}`,
          );
        }
        assert.deepEqual(await readAll(log, 't', 0, 35), []);
        await assert.rejects(readAll(log, 't', 0, 36), (err: unknown) =>
          isKappaError(err, 'KAPPA_OFFSET_OUT_OF_RANGE'),
        );
      });

      test('a following read wakes on a later append', { timeout: 10_000 }, async () => {
        await create('t', { partitions: 1 });
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
        await create('t', { partitions: 1 });
        await log.append('t', [
          { value: 'a', partition: 0 },
          { value: 'b', partition: 0 },
        ]);
        log = await h.reopen();
        assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a', 'b']);
        assert.deepEqual(
          (await log.append('t', [{ value: 'c', partition: 0 }])).map((a) => a.offset),
          [2],
        );
      });
    });

    describe('time', () => {
      test('offsetForTime gives the first offset at or after a time, or the end when none is', async (t) => {
        if (can().timeLookup === 'none')
          return skip(t, 'the cluster has no time index: see the test of what offsetForTime gives instead');
        await create('t', { partitions: 1 });
        await log.append(
          't',
          [10, 20, 20, 30].map((ts, i) => ({ value: String(i), timestamp: 1_000_000 + ts, partition: 0 })),
        );
        assert.equal(await log.offsetForTime('t', 0, 0), 0);
        assert.equal(await log.offsetForTime('t', 0, 1_000_015), 1);
        assert.equal(await log.offsetForTime('t', 0, 1_000_020), 1);
        assert.equal(await log.offsetForTime('t', 0, 1_000_030), 3);
        assert.equal(await log.offsetForTime('t', 0, 1_000_031), 4);
      });
    });

    describe('time without a time index', () => {
      test('where the cluster answers no time lookup, offsetForTime gives the end offset for every time', async (t) => {
        if (can().timeLookup !== 'none') return skip(t, 'this log finds records by time (the test above)');
        await create('t', { partitions: 1 });
        await log.append(
          't',
          [10, 20].map((ts, i) => ({ value: String(i), timestamp: 1_000_000 + ts, partition: 0 })),
        );
        for (const time of [0, 1_000_015, 1_000_031]) assert.equal(await log.offsetForTime('t', 0, time), 2);
      });
    });

    describe('retention', () => {
      test('retention by size drops whole old segments from the start; offsets of what is kept do not change', async (t) => {
        if (can().retention === 'cluster')
          return skip(t, 'the cluster applies retention on its own schedule: see the test of the settings it is given');
        assert.ok(h.enforceRetention, 'a harness of a log that enforces retention says how to run it now');
        await create('t', { partitions: 1, segmentBytes: 4096, retentionBytes: 8192 });
        for (let i = 0; i < 60; i++) await log.append('t', [{ value: `record ${i} `.padEnd(200, '.'), partition: 0 }]);
        h.enforceRetention(log);
        const { start, end } = await log.offsets('t', 0);
        assert.equal(end, 60);
        assert.ok(start > 0, 'old segments were dropped');
        const kept = await readAll(log, 't', 0, start);
        assert.deepEqual(
          kept.map((r) => r.offset),
          Array.from({ length: 60 - start }, (_, i) => start + i),
        );
        assert.ok(text(kept[0])!.startsWith(`record ${start} `));
      });
    });

    describe('retention on the cluster', () => {
      test("where the cluster applies retention, createTopic hands it the topic's retention settings", async (t) => {
        if (can().retention !== 'cluster') return skip(t, 'this log applies retention itself (the test above)');
        if (can().topicAdmin === 'external')
          return skip(t, 'the harness makes the topics on this cluster: the log hands no settings over');
        await create('t', { partitions: 1, retentionMs: 3_600_000, retentionBytes: 1 << 20 });
        const info = await log.topic('t');
        assert.deepEqual([info.retentionMs, info.retentionBytes], [3_600_000, 1 << 20]);
      });
    });

    describe('idempotent producers', () => {
      test('a re-sent batch is not appended again and reports the original offsets; an older epoch is fenced off', async (t) => {
        if (can().idempotence === 'none')
          return skip(t, 'the cluster checks no producer sequences: see the test of what it does instead');
        await create('t', { partitions: 1 });
        const records = ['a', 'b', 'c'].map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1 }));
        const first = await log.appendBatch('t', 0, records, { producerId: 42, producerEpoch: 0, baseSequence: 0 });
        assert.equal(first.duplicates, 0);
        const again = await log.appendBatch('t', 0, records, { producerId: 42, producerEpoch: 0, baseSequence: 0 });
        assert.equal(again.duplicates, 3);
        assert.deepEqual(again.duplicateOffsets, [0, 1, 2]);
        // Partly new: the first two were appended before, the third is new.
        const partly = await log.appendBatch(
          't',
          0,
          [...records.slice(1), { key: null, value: Buffer.from('d'), headers: [], timestamp: 1 }],
          { producerId: 42, producerEpoch: 0, baseSequence: 1 },
        );
        assert.equal(partly.duplicates, 2);
        assert.equal(partly.lastOffset, 3);
        assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a', 'b', 'c', 'd']);
        // A newer epoch (a restarted producer) continues the sequence and fences off the older one.
        await log.appendBatch('t', 0, records.slice(0, 1), { producerId: 42, producerEpoch: 1, baseSequence: 4 });
        await assert.rejects(
          log.appendBatch('t', 0, records.slice(0, 1), { producerId: 42, producerEpoch: 0, baseSequence: 5 }),
          (err: unknown) => isKappaError(err, 'KAPPA_PRODUCER_FENCED'),
        );
        // A gap in the sequence is refused: records the producer sent in between were never appended.
        await assert.rejects(
          log.appendBatch('t', 0, records.slice(0, 1), { producerId: 42, producerEpoch: 1, baseSequence: 9 }),
          (err: unknown) => isKappaError(err, 'KAPPA_OUT_OF_ORDER_SEQUENCE'),
        );
        assert.equal((await log.offsets('t', 0)).end, 5);
      });

      test('where the cluster checks no producer sequences, a re-sent batch is appended again like a plain one', async (t) => {
        if (can().idempotence !== 'none') return skip(t, 'this log drops re-sent batches (the tests around this one)');
        await create('t', { partitions: 1 });
        const records = ['a', 'b'].map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1 }));
        const producer = { producerId: 42, producerEpoch: 0, baseSequence: 0 };
        const first = await log.appendBatch('t', 0, records, producer);
        const again = await log.appendBatch('t', 0, records, producer);
        assert.deepEqual([first.baseOffset, first.duplicates], [0, 0]);
        assert.deepEqual([again.baseOffset, again.lastOffset, again.duplicates], [2, 3, 0]);
        assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a', 'b', 'a', 'b']);
      });

      test('after a reopen, the producer state still recognises a re-sent batch', async (t) => {
        if (can().idempotence === 'none')
          return skip(t, 'the cluster checks no producer sequences: see the test of what it does instead');
        await create('t', { partitions: 1 });
        const records = ['a', 'b'].map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1 }));
        await log.appendBatch('t', 0, records, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
        log = await h.reopen();
        const again = await log.appendBatch('t', 0, records, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
        assert.equal(again.duplicates, 2);
        assert.equal((await log.offsets('t', 0)).end, 2);
      });
    });

    widerPort(current);
  });
}

/** The log of the test that runs (set before each test), and how to make a topic on it. */
interface Current {
  log: Log;
  create(name: string, config: TopicConfig): Promise<void>;
  can(): Required<LogCapabilities>;
  skip(t: TestContext, reason: string): Promise<void>;
}

const quiet = { info(): void {}, warn(): void {} };

function recordsOf(values: string[], timestamp = 1_700_000_000_000): EncodableRecord[] {
  return values.map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp }));
}

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

/** The promises of the port's batch, wait, size, health and descriptor methods. */
function widerPort(current: Current): void {
  describe('appendBatch and appendEncoded', () => {
    test('appendBatch reports the offsets it gave, following on from the last append', async () => {
      const { log } = current;
      await current.create('t', { partitions: 2 });
      const first = await log.appendBatch('t', 1, recordsOf(['a', 'b', 'c']));
      assert.deepEqual(first, { baseOffset: 0, lastOffset: 2, duplicates: 0, duplicateOffsets: [] });
      const second = await log.appendBatch('t', 1, recordsOf(['d']));
      assert.deepEqual([second.baseOffset, second.lastOffset, second.duplicates], [3, 3, 0]);
      assert.deepEqual(
        (await readAll(log, 't', 1)).map((r) => [r.offset, text(r)]),
        [
          [0, 'a'],
          [1, 'b'],
          [2, 'c'],
          [3, 'd'],
        ],
      );
      assert.deepEqual(await log.offsets('t', 0), { start: 0, end: 0 });
    });

    test('an idempotent appendBatch re-sent reports the original offsets and appends nothing', async (t) => {
      if (current.can().idempotence === 'none')
        return current.skip(t, 'the cluster checks no producer sequences: see the idempotent-producer tests');
      const { log } = current;
      await current.create('t', { partitions: 1 });
      const producer = { producerId: 9, producerEpoch: 0, baseSequence: 0 };
      await log.appendBatch('t', 0, recordsOf(['x']));
      const first = await log.appendBatch('t', 0, recordsOf(['a', 'b']), producer);
      assert.deepEqual(first, { baseOffset: 1, lastOffset: 2, duplicates: 0, duplicateOffsets: [] });
      const again = await log.appendBatch('t', 0, recordsOf(['a', 'b']), producer);
      assert.deepEqual(again, { baseOffset: 1, lastOffset: 2, duplicates: 2, duplicateOffsets: [1, 2] });
      assert.equal((await log.offsets('t', 0)).end, 3);
    });

    test('a read with once stops after one step of about maxBytes, with at least one batch', async () => {
      const { log } = current;
      await current.create('t', { partitions: 1 });
      const value = 'x'.repeat(1000);
      for (let i = 0; i < 40; i++) await log.appendBatch('t', 0, recordsOf([value, value]));
      const read = async (opts: { maxBytes: number; once?: boolean }): Promise<number[]> => {
        const sizes: number[] = [];
        for await (const batch of log.read('t', 0, 0, opts)) sizes.push(batch.sizeBytes);
        return sizes;
      };
      assert.equal((await read({ maxBytes: 8192 })).length, 40, 'without once: every batch');
      const once = await read({ maxBytes: 8192, once: true });
      assert.ok(once.length >= 1 && once.length < 40, `one step: ${once.length} batches`);
      assert.ok(once.reduce((a, b) => a + b, 0) - once[once.length - 1] < 8192, 'about maxBytes');
      assert.equal((await read({ maxBytes: 1, once: true })).length, 1, 'at least one batch');
    });

    test('appendEncoded stores a valid batch as it is, at the next offset', async () => {
      const { log } = current;
      await current.create('t', { partitions: 1 });
      await log.appendBatch('t', 0, recordsOf(['a', 'b']));
      const encoded = encodeBatch(recordsOf(['c', 'd', 'e']), { baseOffset: 0 });
      const crcCovered = Buffer.from(encoded.subarray(BatchField.magic));
      const result = await log.appendEncoded('t', 0, encoded);
      assert.deepEqual([result.baseOffset, result.lastOffset, result.duplicates], [2, 4, 0]);
      const batches = [];
      for await (const batch of log.read('t', 0, 2)) batches.push(batch);
      assert.equal(batches.length, 1);
      assert.equal(batches[0].baseOffset, 2);
      assert.ok(
        batches[0].bytes.subarray(BatchField.magic).equals(crcCovered),
        'the stored batch is byte for byte the one sent',
      );
      assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a', 'b', 'c', 'd', 'e']);
    });

    test('appendEncoded refuses a damaged batch and appends nothing of it', async () => {
      const { log } = current;
      await current.create('t', { partitions: 1 });
      await log.appendBatch('t', 0, recordsOf(['a']));
      const damaged = encodeBatch(recordsOf(['b', 'c']), { baseOffset: 0 });
      damaged[damaged.length - 1] ^= 0x01; // inside the last record: the CRC no longer matches
      await assert.rejects(log.appendEncoded('t', 0, damaged), (err: unknown) =>
        isKappaError(err, 'KAPPA_INVALID_RECORD'),
      );
      assert.deepEqual(await log.offsets('t', 0), { start: 0, end: 1 });
      assert.deepEqual((await readAll(log, 't', 0)).map(text), ['a']);
      assert.equal(
        (await log.appendBatch('t', 0, recordsOf(['d']))).baseOffset,
        1,
        'the refused batch took no offsets',
      );
    });
  });

  describe('waiting, bounds, size and health', () => {
    test('waitForData resolves once data is past the offset, and on abort', { timeout: 10_000 }, async () => {
      const { log } = current;
      await current.create('t', { partitions: 1 });
      const waiting = log.waitForData('t', 0, 0);
      assert.equal(await settlesWithin(waiting, 50), false, 'nothing is past offset 0 yet');
      await log.append('t', [{ value: 'a', partition: 0 }]);
      assert.equal(await settlesWithin(waiting, 5_000), true);
      assert.equal(await settlesWithin(log.waitForData('t', 0, 0), 50), true, 'data is already past offset 0');
      const abort = new AbortController();
      const aborted = log.waitForData('t', 0, 1, abort.signal);
      assert.equal(await settlesWithin(aborted, 50), false);
      abort.abort();
      assert.equal(await settlesWithin(aborted, 5_000), true);
    });

    test('a read never returns a record past the high watermark, even while appends are under way', async () => {
      const { log } = current;
      await current.create('t', { partitions: 1 });
      await log.append('t', [{ value: 'first', partition: 0 }]);
      const appends = Array.from({ length: 20 }, (_, i) => log.appendBatch('t', 0, recordsOf([`r${i}`])));
      const seen = (await readAll(log, 't', 0)).map((r) => r.offset);
      const { end } = await log.offsets('t', 0);
      assert.ok(
        seen.every((offset) => offset < end),
        `read ${seen.join(',')} with the end at ${end}`,
      );
      assert.deepEqual(
        seen,
        Array.from({ length: seen.length }, (_, i) => i),
        'what was read is a dense prefix',
      );
      await Promise.all(appends);
      assert.equal((await log.offsets('t', 0)).end, 21);
    });

    test('sizeBytes grows with appends, and health is clean on a fresh log', async () => {
      const { log } = current;
      await current.create('t', { partitions: 2 });
      assert.deepEqual(
        log.health('t').map((p) => [p.partition, p.corruption]),
        [
          [0, null],
          [1, null],
        ],
      );
      const before = await log.sizeBytes('t', 0);
      await log.appendBatch('t', 0, recordsOf(['x'.repeat(1000)]));
      const after = await log.sizeBytes('t', 0);
      assert.ok(after >= before + 1000, `size went from ${before} to ${after}`);
      assert.equal(await log.sizeBytes('t', 1), before, 'the other partition did not grow');
    });

    test('openLog(descriptor, { readOnly: true }) opens the same log and reads what was appended', async () => {
      const { log } = current;
      await current.create('t', { partitions: 1 });
      await log.append('t', [
        { value: 'a', partition: 0 },
        { value: 'b', partition: 0 },
      ]);
      const descriptor = JSON.parse(JSON.stringify(log.descriptor)) as typeof log.descriptor; // crosses postMessage
      const reader = await openLog(descriptor, { readOnly: true, logger: quiet });
      try {
        assert.equal(reader.readOnly, true);
        assert.deepEqual((await readAll(reader, 't', 0)).map(text), ['a', 'b']);
        await assert.rejects(reader.append('t', [{ value: 'c', partition: 0 }]), (err: unknown) =>
          isKappaError(err, 'KAPPA_READ_ONLY'),
        );
      } finally {
        await reader.close();
      }
    });
  });
}
