import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { crc32c } from '@node-rs/crc32';
import { readInt64 } from './format/index.ts';
import { type EncodableRecord, type RecordBatch, encodeBatch } from './record-batch.ts';
import { openTestLog, readRecords, useTestLog } from './test-helpers.ts';

// kafkajs's codec stands in for a Kafka client: an independent encoder of RecordBatch v2.
const require = createRequire(import.meta.url);
const { RecordBatch: kafkaRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (opts: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
};
const kafkaRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (
  opts: Record<string, unknown>,
) => unknown;

const T0 = 1_700_000_000_000;
const PRODUCER = 123_456_789_012;

function records(from: number, to: number): EncodableRecord[] {
  const out: EncodableRecord[] = [];
  for (let i = from; i <= to; i++)
    out.push({
      key: `k${i}`,
      value: `value ${i}`,
      headers: [{ key: 'h', value: Buffer.from(String(i)) }],
      timestamp: T0 + i,
    });
  return out;
}

/** A batch as a Kafka client would send it: sequences `from`..`to` of PRODUCER (or no producer). */
async function kafkaBatch(
  from: number,
  to: number,
  opts: { producerId?: number; epoch?: number; compression?: number; transactional?: boolean } = {},
): Promise<Buffer> {
  const encoded = await kafkaRecordBatch({
    firstOffset: 0,
    firstTimestamp: T0 + from,
    maxTimestamp: T0 + to,
    lastOffsetDelta: to - from,
    producerId: opts.producerId ?? PRODUCER,
    producerEpoch: opts.epoch ?? 0,
    firstSequence: from,
    compression: opts.compression ?? 0,
    transactional: opts.transactional ?? false,
    records: records(from, to).map((r, i) =>
      kafkaRecord({
        offsetDelta: i,
        timestampDelta: r.timestamp - T0 - from,
        key: Buffer.from(r.key as string),
        value: Buffer.from(r.value as string),
        headers: { h: r.headers![0].value },
      }),
    ),
  });
  return encoded.buffer;
}

/** Writes a correct CRC over a batch whose CRC-covered bytes a test changed on purpose. */
function fixCrc(batch: Buffer): Buffer {
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
  return batch;
}

describe('appendEncoded', () => {
  const ctx = useTestLog({ topic: { name: 't', partitions: 1, segmentBytes: 64 * 1024 } });

  async function batches(): Promise<RecordBatch[]> {
    const out: RecordBatch[] = [];
    for await (const b of ctx.log.read('t', 0, 0)) out.push(b);
    return out;
  }

  async function values(): Promise<string[]> {
    return (await readRecords(ctx.log, 't', 0)).map((r) => r.value!.toString());
  }

  test('stores an encoded batch byte for byte, with only its base offset set', async () => {
    await ctx.log.append('t', [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    const batch = encodeBatch(records(0, 4), { baseOffset: 999 });
    const sent = Buffer.from(batch);
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, batch), {
      baseOffset: 3,
      lastOffset: 7,
      duplicates: 0,
      duplicateOffsets: [],
    });
    const stored = (await batches())[1];
    assert.equal(readInt64(stored.bytes, 0), 3);
    assert.deepEqual(stored.bytes.subarray(8), sent.subarray(8), 'every byte after the base offset is what was sent');
    const read = (await readRecords(ctx.log, 't', 0, 3)).map((r) => ({
      offset: r.offset,
      key: r.key!.toString(),
      value: r.value!.toString(),
      h: r.headers[0].value!.toString(),
      ts: r.timestamp,
    }));
    assert.deepEqual(
      read,
      records(0, 4).map((r, i) => ({ offset: 3 + i, key: r.key, value: r.value, h: String(i), ts: r.timestamp })),
    );
  });

  test('appends a batch encoded by a Kafka client codec (kafkajs) and reads it back', async () => {
    const batch = await kafkaBatch(0, 2, { producerId: -1 });
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, batch), {
      baseOffset: 0,
      lastOffset: 2,
      duplicates: 0,
      duplicateOffsets: [],
    });
    const [r0, , r2] = await readRecords(ctx.log, 't', 0);
    assert.deepEqual(
      [r0.key!.toString(), r0.value!.toString(), r0.timestamp, r0.headers[0].key, r0.headers[0].value!.toString()],
      ['k0', 'value 0', T0, 'h', '0'],
    );
    assert.deepEqual([r2.offset, r2.value!.toString(), r2.timestamp], [2, 'value 2', T0 + 2]);
  });

  test('stores a gzip batch from kafkajs byte for byte; a retry of it is a duplicate; its records read back', async () => {
    const batch = await kafkaBatch(0, 4, { compression: 1 });
    assert.equal(batch.readInt16BE(21) & 7, 1, 'kafkajs compressed it with gzip');
    await ctx.log.appendEncoded('t', 0, Buffer.from(batch));
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, Buffer.from(batch)), {
      baseOffset: 0,
      lastOffset: 4,
      duplicates: 5,
      duplicateOffsets: [0, 1, 2, 3, 4],
    });
    const [stored] = await batches();
    assert.ok(stored.bytes.subarray(16).equals(batch.subarray(16)), 'stored as sent, from the magic byte on');
    assert.equal(stored.compression, 1);
    assert.deepEqual(await values(), ['value 0', 'value 1', 'value 2', 'value 3', 'value 4']);
    assert.deepEqual(
      (await readRecords(ctx.log, 't', 0, 3)).map((r) => [r.offset, r.key!.toString(), r.headers[0].value!.toString()]),
      [
        [3, 'k3', '3'],
        [4, 'k4', '4'],
      ],
    );
  });

  test('stores a plain encoded batch (no producer id) every time it is sent', async () => {
    const batch = encodeBatch(records(0, 1), { baseOffset: 0 });
    await ctx.log.appendEncoded('t', 0, Buffer.from(batch));
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, Buffer.from(batch)), {
      baseOffset: 2,
      lastOffset: 3,
      duplicates: 0,
      duplicateOffsets: [],
    });
    assert.deepEqual(await values(), ['value 0', 'value 1', 'value 0', 'value 1']);
  });

  test('applies the idempotence rules from the batch header: duplicates, partial overlap, gap, fencing', async () => {
    assert.equal((await ctx.log.appendEncoded('t', 0, await kafkaBatch(0, 4))).duplicates, 0);
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, await kafkaBatch(0, 4)), {
      baseOffset: 0,
      lastOffset: 4,
      duplicates: 5,
      duplicateOffsets: [0, 1, 2, 3, 4],
    });
    // A partly duplicate batch: only records 5-7 are stored, re-encoded with base sequence 5.
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, await kafkaBatch(3, 7)), {
      baseOffset: 3,
      lastOffset: 7,
      duplicates: 2,
      duplicateOffsets: [3, 4],
    });
    const stored = (await batches())[1];
    assert.deepEqual(
      [stored.baseOffset, stored.count, stored.producerId, stored.producerEpoch, stored.baseSequence],
      [5, 3, PRODUCER, 0, 5],
    );
    assert.deepEqual(
      stored
        .records()
        .map((r) => [r.offset, r.key!.toString(), r.value!.toString(), r.timestamp, r.headers[0].value!.toString()]),
      [5, 6, 7].map((i) => [i, `k${i}`, `value ${i}`, T0 + i, String(i)]),
    );
    await assert.rejects(ctx.log.appendEncoded('t', 0, await kafkaBatch(10, 11)), {
      code: 'KAPPA_OUT_OF_ORDER_SEQUENCE',
    });
    assert.equal((await ctx.log.appendEncoded('t', 0, await kafkaBatch(8, 8, { epoch: 1 }))).baseOffset, 8);
    await assert.rejects(ctx.log.appendEncoded('t', 0, await kafkaBatch(9, 9, { epoch: 0 })), {
      code: 'KAPPA_PRODUCER_FENCED',
    });
    // The same producer through appendBatch shares the state.
    const viaRecords = await ctx.log.appendBatch('t', 0, records(8, 9), {
      producerId: PRODUCER,
      producerEpoch: 1,
      baseSequence: 8,
    });
    assert.deepEqual(viaRecords, { baseOffset: 8, lastOffset: 9, duplicates: 1, duplicateOffsets: [8] });
    assert.deepEqual(
      await values(),
      Array.from({ length: 10 }, (_, i) => `value ${i}`),
    );
  });

  test('refuses a damaged or unsupported batch with KAPPA_INVALID_RECORD naming the problem, appending nothing', async () => {
    const good = (): Buffer => encodeBatch(records(0, 2), { baseOffset: 0 });
    const cases: [string, () => Buffer | Promise<Buffer>, RegExp][] = [
      ['a flipped bit', () => ((b) => ((b[b.length - 3] ^= 0x10), b))(good()), /damaged \(bad-crc: CRC-32C mismatch/],
      ['a cut batch', () => good().subarray(0, 70), /ends before the batch does/],
      ['a header only', () => good().subarray(0, 30), /ends before the batch does/],
      [
        'two batches',
        () => Buffer.concat([good(), good()]),
        /holds \d+ bytes but its batch is \d+; pass exactly one batch/,
      ],
      ['a wrong magic byte', () => ((b) => ((b[16] = 1), b))(good()), /bad-magic/],
      ['a count that disagrees', () => fixCrc(((b) => (b.writeInt32BE(5, 57), b))(good())), /bad-count/],
      [
        'a wrong offset delta',
        () => fixCrc(((b) => ((b[64] = 2), b))(good())),
        /record 0 has offset delta 1, expected 0/,
      ],
      ['a record length past the end', () => fixCrc(((b) => ((b[61] = 0x7e), b))(good())), /record 0 claims 63 bytes/],
      [
        'bytes after the last record',
        () => fixCrc(((b) => (b.writeInt32BE(b.length - 12, 8), b))(Buffer.concat([good(), Buffer.from([0, 0, 0])]))),
        /3 bytes after its last record/,
      ],
      [
        'a gzip payload that does not decompress',
        async () => fixCrc(((b) => ((b[b.length - 6] ^= 0xff), b))(await kafkaBatch(0, 2, { compression: 1 }))),
        /its gzip payload does not decompress/,
      ],
      ['a transactional batch', () => kafkaBatch(0, 2, { transactional: true }), /transactional/],
      ['a control batch', () => encodeBatch(records(0, 0), { baseOffset: 0, attributes: 0x20 }), /control batch/],
      [
        'a producer id with a negative sequence',
        () => encodeBatch(records(0, 0), { baseOffset: 0, producerId: 5, producerEpoch: 0, baseSequence: -1 }),
        /base sequence is -1/,
      ],
      [
        'a producer id with a negative epoch',
        () => encodeBatch(records(0, 0), { baseOffset: 0, producerId: 5, producerEpoch: -1, baseSequence: 0 }),
        /producer epoch is -1/,
      ],
    ];
    for (const [name, make, message] of cases) {
      await assert.rejects(
        ctx.log.appendEncoded('t', 0, await make()),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'KAPPA_INVALID_RECORD', `${name}: ${err.message}`);
          assert.match(err.message, /^The encoded batch for t\/0 was refused and nothing was appended: /, name);
          assert.match(err.message, message, name);
          return true;
        },
        name,
      );
    }
    await assert.rejects(ctx.log.appendEncoded('t', 0, 'not bytes' as unknown as Buffer), {
      code: 'KAPPA_INVALID_RECORD',
    });
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 0 });
    assert.deepEqual(await ctx.log.appendEncoded('t', 0, good()), {
      baseOffset: 0,
      lastOffset: 2,
      duplicates: 0,
      duplicateOffsets: [],
    });
  });

  test('refuses an encoded batch larger than the topic accepts with KAPPA_RECORD_TOO_LARGE', async () => {
    const big = encodeBatch([{ key: null, value: 'x'.repeat(70 * 1024), timestamp: T0 }], { baseOffset: 0 });
    await assert.rejects(ctx.log.appendEncoded('t', 0, big), { code: 'KAPPA_RECORD_TOO_LARGE' });
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 0 });
  });

  test('a batch built in this process (built: true) is stored without its records being checked again, but a header that does not add up is refused', async () => {
    const batch = encodeBatch(records(0, 2), {
      baseOffset: 0,
      producerId: PRODUCER,
      producerEpoch: 0,
      baseSequence: 0,
    });
    assert.deepEqual((await ctx.log.appendEncoded('t', 0, Buffer.from(batch), { built: true })).lastOffset, 2);
    // Its length field a byte off, or a record count that disagrees with the last offset delta: nothing appended.
    const longer = Buffer.from(batch);
    longer.writeInt32BE(longer.readInt32BE(8) + 1, 8);
    const miscounted = Buffer.from(batch);
    miscounted.writeInt32BE(5, 57);
    for (const bad of [longer, miscounted, batch.subarray(0, 40)])
      await assert.rejects(ctx.log.appendEncoded('t', 0, Buffer.from(bad), { built: true }), {
        code: 'KAPPA_INVALID_RECORD',
      });
    assert.deepEqual(await values(), ['value 0', 'value 1', 'value 2']);
  });

  test('is refused by a read-only log and for an unknown partition', async () => {
    await assert.rejects(ctx.log.appendEncoded('t', 3, encodeBatch(records(0, 0), { baseOffset: 0 })), {
      code: 'KAPPA_INVALID_PARTITION',
    });
    const reader = await openTestLog(ctx.dir, { readOnly: true });
    try {
      await assert.rejects(reader.appendEncoded('t', 0, encodeBatch(records(0, 0), { baseOffset: 0 })), {
        code: 'KAPPA_READ_ONLY',
      });
    } finally {
      await reader.close();
    }
  });
});
