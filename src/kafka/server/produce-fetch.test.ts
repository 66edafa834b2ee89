/**
 * Produce and Fetch at the byte level (RawClient): old message formats, damaged batches, several
 * batches in one partition, idempotent duplicates, sequence gaps and fenced epochs, acks=0, the
 * order of pipelined idempotent requests, and Fetch's long poll, byte-identical batches, size
 * limits and OFFSET_OUT_OF_RANGE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchField, type FileLog, encodeBatch } from '../../log/index.ts';
import { API_KEYS, type Body, ERRORS } from '../protocol/index.ts';
import { RawClient, openListener } from './test-helpers.ts';

const K = API_KEYS;
const PRODUCE_V = 9;
const FETCH_V = 12;

function records(n: number, from = 0, size = 8): { key: string; value: Buffer; timestamp: number }[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `k${from + i}`,
    value: Buffer.alloc(size, from + i),
    timestamp: 1_700_000_000_000 + i,
  }));
}

function idempotent(n: number, producerId: number, producerEpoch: number, baseSequence: number): Buffer {
  return encodeBatch(records(n, baseSequence), { baseOffset: 0, producerId, producerEpoch, baseSequence });
}

function produce(topic: string, partition: number, bytes: Buffer | null, acks = -1): object {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 1000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records: bytes }] }],
  };
}

function partitionAnswer(answer: Body): { errorCode: number; baseOffset: number } {
  return answer.responses[0].partitionResponses[0];
}

async function count(log: FileLog, topic: string, partition = 0): Promise<number> {
  const { start, end } = await log.offsets(topic, partition);
  return end - start;
}

test(
  'Produce refuses old message formats, damaged batches and unknown partitions, storing nothing',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    const v1 = Buffer.alloc(40);
    v1[16] = 1; // magic 1: a message set of Kafka 0.10
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, v1))).errorCode,
      ERRORS.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    );
    const flipped = encodeBatch(records(3), { baseOffset: 0 });
    flipped[flipped.length - 1] ^= 0xff;
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, flipped))).errorCode,
      ERRORS.CORRUPT_MESSAGE,
    );
    const cut = encodeBatch(records(3), { baseOffset: 0 }).subarray(0, 70);
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, cut))).errorCode,
      ERRORS.CORRUPT_MESSAGE,
    );
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, null))).errorCode,
      ERRORS.CORRUPT_MESSAGE,
    );
    const good = encodeBatch(records(1), { baseOffset: 0 });
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 7, good))).errorCode,
      ERRORS.UNKNOWN_TOPIC_OR_PARTITION,
    );
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('nope', 0, good))).errorCode,
      ERRORS.UNKNOWN_TOPIC_OR_PARTITION,
    );
    // A good batch followed by a damaged one: neither is stored.
    const both = Buffer.concat([encodeBatch(records(2), { baseOffset: 0 }), flipped]);
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, both))).errorCode,
      ERRORS.CORRUPT_MESSAGE,
    );
    const tx = { ...produce('p', 0, good), transactionalId: 'tx-1' };
    assert.equal(
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, tx)).errorCode,
      ERRORS.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    );
    assert.equal(await count(log, 'p'), 0);
  },
);

test(
  'several batches in one partition are stored in order, answered with the first base offset',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    const bytes = Buffer.concat([
      encodeBatch(records(2, 0), { baseOffset: 0 }),
      encodeBatch(records(3, 2), { baseOffset: 0 }),
    ]);
    const answer = partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, bytes)));
    assert.deepEqual([answer.errorCode, answer.baseOffset], [0, 0]);
    const keys: string[] = [];
    for await (const b of log.read('p', 0, 0)) for (const r of b.records()) keys.push(r.key!.toString());
    assert.deepEqual(keys, ['k0', 'k1', 'k2', 'k3', 'k4']);
  },
);

test(
  'an idempotent re-send gets its original offset and is stored once; a gap and an older epoch are refused',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    const { producerId, producerEpoch } = await c.request(K.InitProducerId, 4, {
      transactionalId: null,
      transactionTimeoutMs: 1000,
    });
    const send = async (bytes: Buffer) =>
      partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, bytes)));
    await log.append('p', [{ value: 'someone else first' }]);
    const first = await send(idempotent(3, producerId, producerEpoch, 0));
    assert.deepEqual([first.errorCode, first.baseOffset], [0, 1]);
    const again = await send(idempotent(3, producerId, producerEpoch, 0));
    assert.deepEqual([again.errorCode, again.baseOffset], [0, 1]);
    assert.equal(await count(log, 'p'), 4);
    assert.equal(
      (await send(idempotent(2, producerId, producerEpoch, 5))).errorCode,
      ERRORS.OUT_OF_ORDER_SEQUENCE_NUMBER,
    );
    assert.equal((await send(idempotent(2, producerId, producerEpoch + 1, 3))).errorCode, 0);
    assert.equal((await send(idempotent(1, producerId, producerEpoch, 5))).errorCode, ERRORS.INVALID_PRODUCER_EPOCH);
    assert.equal(await count(log, 'p'), 6);
  },
);

test(
  'pipelined idempotent requests on one connection reach the log in the order they were sent',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    const { producerId } = await c.request(K.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 1000 });
    const frames = [];
    for (let i = 0; i < 20; i++)
      frames.push(c.frame(K.Produce, PRODUCE_V, produce('p', 0, idempotent(5, producerId, 0, i * 5))));
    c.write(Buffer.concat(frames));
    for (let i = 0; i < 20; i++) {
      const answer = partitionAnswer((await c.response(K.Produce, PRODUCE_V)).body);
      assert.deepEqual([answer.errorCode, answer.baseOffset], [0, i * 5]);
    }
    assert.equal(await count(log, 'p'), 100);
  },
);

test(
  'big pipelined requests whose frame buffers are reused store every byte as sent, refused ones included',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 2 });
    const c = await RawClient.connect(t, listener.port);
    // 24 requests of about 250 KB (each frame spans several socket chunks, so it is copied into a
    // buffer the listener reuses once the request is answered), every fifth one damaged.
    const sent: Buffer[][] = [[], []];
    const frames: Buffer[] = [];
    for (let i = 0; i < 24; i++) {
      const batch = encodeBatch(records(50, i * 50, 5000), { baseOffset: 0 });
      if (i % 5 === 4) batch[batch.length - 1] ^= 0xff;
      else sent[i % 2].push(...records(50, i * 50, 5000).map((r) => r.value));
      frames.push(c.frame(K.Produce, PRODUCE_V, produce('p', i % 2, batch), i + 1));
    }
    for (const frame of frames) c.write(frame);
    for (let i = 0; i < 24; i++) {
      const answer = partitionAnswer((await c.response(K.Produce, PRODUCE_V)).body);
      assert.equal(answer.errorCode, i % 5 === 4 ? ERRORS.CORRUPT_MESSAGE : 0, `request ${i}`);
    }
    for (const partition of [0, 1]) {
      const stored: Buffer[] = [];
      for await (const b of log.read('p', partition, 0)) for (const r of b.records()) stored.push(r.value!);
      assert.equal(stored.length, sent[partition].length);
      assert.ok(
        stored.every((v, i) => v.equals(sent[partition][i])),
        `partition ${partition} holds the values as sent`,
      );
    }
  },
);

test(
  'acks=0 gets no answer (the next request is answered next); an error with acks=0 closes the connection',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    c.write(c.frame(K.Produce, PRODUCE_V, produce('p', 0, encodeBatch(records(4), { baseOffset: 0 }), 0), 1));
    c.write(c.frame(K.ApiVersions, 0, {}, 2));
    assert.equal((await c.response(K.ApiVersions, 0)).correlationId, 2);
    assert.equal(await count(log, 'p'), 4);
    c.write(c.frame(K.Produce, PRODUCE_V, produce('nope', 0, encodeBatch(records(1), { baseOffset: 0 }), 0), 3));
    assert.equal(await c.closedWithin(5000), true);
  },
);

function fetchRequest(
  topic: string,
  fetchOffset: number,
  opts: { maxWaitMs?: number; minBytes?: number; maxBytes?: number; partitionMaxBytes?: number } = {},
): object {
  return {
    maxWaitMs: opts.maxWaitMs ?? 0,
    minBytes: opts.minBytes ?? 1,
    maxBytes: opts.maxBytes ?? 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      { topic, partitions: [{ partition: 0, fetchOffset, partitionMaxBytes: opts.partitionMaxBytes ?? 1 << 20 }] },
    ],
    forgottenTopicsData: [],
    rackId: '',
  };
}

test(
  'Fetch returns the stored batches byte for byte, within the size limits, and OFFSET_OUT_OF_RANGE past the end',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('f', { partitions: 1 });
    for (let i = 0; i < 5; i++)
      await log.appendBatch(
        'f',
        0,
        records(10, i * 10, 1000).map((r) => ({ ...r })),
      );
    const stored: Buffer[] = [];
    for await (const b of log.read('f', 0, 0)) stored.push(Buffer.from(b.bytes));
    const c = await RawClient.connect(t, listener.port);
    const all = (await c.request(K.Fetch, FETCH_V, fetchRequest('f', 0))).responses[0].partitions[0];
    assert.equal(all.errorCode, 0);
    assert.equal(all.highWatermark, 50);
    assert.equal(all.lastStableOffset, 50);
    assert.equal(all.logStartOffset, 0);
    assert.ok(Buffer.from(all.records).equals(Buffer.concat(stored)), 'the batches as stored');
    // From the middle of a batch: that whole batch comes first, as with Kafka.
    const mid = (await c.request(K.Fetch, FETCH_V, fetchRequest('f', 25))).responses[0].partitions[0];
    assert.equal(Buffer.from(mid.records).readBigInt64BE(BatchField.baseOffset), 20n);
    // Limits count whole batches; the first batch comes even when larger than the limit.
    const small = (await c.request(K.Fetch, FETCH_V, fetchRequest('f', 0, { partitionMaxBytes: 100 }))).responses[0]
      .partitions[0];
    assert.ok(Buffer.from(small.records).equals(stored[0]));
    const two = (await c.request(K.Fetch, FETCH_V, fetchRequest('f', 0, { maxBytes: stored[0].length * 2 + 10 })))
      .responses[0].partitions[0];
    assert.ok(Buffer.from(two.records).equals(Buffer.concat(stored.slice(0, 2))));
    const past = (await c.request(K.Fetch, FETCH_V, fetchRequest('f', 51))).responses[0].partitions[0];
    assert.equal(past.errorCode, ERRORS.OFFSET_OUT_OF_RANGE);
  },
);

test(
  'a Fetch at the end waits for data (long poll) and answers as soon as a record arrives',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('f', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    const started = Date.now();
    const empty = (await c.request(K.Fetch, FETCH_V, fetchRequest('f', 0, { maxWaitMs: 300 }))).responses[0]
      .partitions[0];
    assert.ok(Date.now() - started >= 250, 'waited for maxWaitMs');
    assert.equal(Buffer.from(empty.records).length, 0);
    const waiting = c.request(K.Fetch, FETCH_V, fetchRequest('f', 0, { maxWaitMs: 20_000 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const appended = Date.now();
    await log.append('f', [{ value: 'wake up' }]);
    const answer = (await waiting).responses[0].partitions[0];
    assert.ok(Date.now() - appended < 5000, 'answered when the record arrived, not at maxWaitMs');
    assert.equal(answer.highWatermark, 1);
    assert.ok(Buffer.from(answer.records).length > 0);
  },
);

test('closing the listener ends long polls and acknowledges appends in flight', { timeout: 30_000 }, async (t) => {
  const { log, listener, registry } = await openListener(t);
  await log.createTopic('f', { partitions: 1 });
  const c = await RawClient.connect(t, listener.port);
  const waiting = c.request(K.Fetch, FETCH_V, fetchRequest('f', 0, { maxWaitMs: 60_000 }));
  // Closed once the listener has the request (it counts its bytes as they arrive): a request still on
  // its way when the listener closes would find no connection, not a long poll to end.
  const deadline = Date.now() + 10_000;
  while (!/^kappa_kafka_bytes_in_total [1-9]/m.test(await registry.metrics())) {
    assert.ok(Date.now() < deadline, 'the listener never received the fetch');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  await listener.close();
  assert.ok(Date.now() - started < 5000);
  assert.equal((await waiting).responses[0].partitions[0].errorCode, 0);
});

test(
  'each partition gets its first batch even when larger than partitionMaxBytes; maxBytes still bounds the answer',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('two', { partitions: 2 });
    for (const p of [0, 1]) await log.appendBatch('two', p, records(5, 0, 1000));
    const c = await RawClient.connect(t, listener.port);
    const request = (maxBytes: number) => ({
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes,
      isolationLevel: 0,
      topics: [
        {
          topic: 'two',
          partitions: [0, 1].map((partition) => ({ partition, fetchOffset: 0, partitionMaxBytes: 100 })),
        },
      ],
    });
    const both = (await c.request(K.Fetch, FETCH_V, request(1 << 20))).responses[0].partitions;
    assert.ok(both.every((p: { records: Buffer }) => Buffer.from(p.records).length > 5000));
    const first = (await c.request(K.Fetch, FETCH_V, request(6000))).responses[0].partitions;
    assert.ok(Buffer.from(first[0].records).length > 5000);
    assert.equal(Buffer.from(first[1].records).length, 0, 'the second batch would pass maxBytes');
  },
);

test(
  'a batch with a compression codec Kafka does not define is refused with UNSUPPORTED_COMPRESSION_TYPE, storing nothing',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('p', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    // Codec 7 in the attributes: the CRC is recomputed by encodeBatch, so only the codec is wrong.
    const bytes = encodeBatch(records(2), { baseOffset: 0, attributes: 7 });
    const answer = partitionAnswer(await c.request(K.Produce, PRODUCE_V, produce('p', 0, bytes)));
    assert.equal(answer.errorCode, ERRORS.UNSUPPORTED_COMPRESSION_TYPE);
    assert.equal(await count(log, 'p'), 0);
  },
);

test(
  'Fetch v13 and later name topics by the ids Metadata gives; an unknown id is UNKNOWN_TOPIC_ID',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('by-id', { partitions: 1 });
    await log.append('by-id', [{ value: 'found by id' }]);
    const c = await RawClient.connect(t, listener.port);
    const meta = await c.request(K.Metadata, 12, {
      topics: [{ name: 'by-id', topicId: '00000000-0000-0000-0000-000000000000' }],
    });
    const topicId = meta.topics[0].topicId;
    const request = (id: string) => ({
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      topics: [{ topicId: id, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
    });
    for (const v of [13, 16, 17]) {
      const found = (await c.request(K.Fetch, v, request(topicId))).responses[0];
      assert.equal(found.topicId, topicId);
      assert.equal(found.partitions[0].errorCode, 0);
      assert.ok(Buffer.from(found.partitions[0].records).includes(Buffer.from('found by id')));
    }
    const unknown = (await c.request(K.Fetch, 13, request('11111111-1111-1111-1111-111111111111'))).responses[0];
    assert.equal(unknown.partitions[0].errorCode, ERRORS.UNKNOWN_TOPIC_ID);
  },
);
