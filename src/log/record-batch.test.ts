import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { crc32c } from '@node-rs/crc32';
import {
  ATTR_TIMESTAMP_LOG_APPEND,
  BATCH_HEADER_BYTES,
  readInt64,
  varintSize,
  writeInt64,
  writeVarint,
} from './format/index.ts';
import {
  type EncodableRecord,
  RecordBatch,
  checkBatch,
  compressBatch,
  encodeBatch,
  setBaseOffset,
} from './record-batch.ts';

// kafkajs's codec internals are CommonJS and untyped; they serve as an independent implementation
// of the same wire format.
const require = createRequire(import.meta.url);
const KafkaDecoder = require('kafkajs/src/protocol/decoder.js') as new (buf: Buffer) => unknown;
const kafkaDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (
  decoder: unknown,
) => Promise<KafkaDecodedBatch>;
const { RecordBatch: kafkaRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (opts: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
};
const kafkaRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (
  opts: Record<string, unknown>,
) => unknown;
const kafkaCrc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buf: Buffer) => number;

interface KafkaDecodedBatch {
  firstOffset: string;
  lastOffsetDelta: number;
  firstTimestamp: string;
  maxTimestamp: string;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  records: {
    offset: string;
    timestamp: string;
    key: Buffer | null;
    value: Buffer | null;
    headers: Record<string, Buffer | null | (Buffer | null)[]>;
  }[];
}

const CRC_OFFSET = 17;

function buf(s: string | null): Buffer | null {
  return s === null ? null : Buffer.from(s, 'utf8');
}

function decodeOne(bytes: Buffer, fromOffset = 0): ReturnType<RecordBatch['records']> {
  const check = checkBatch(bytes, 0, bytes.length);
  assert.equal(check.problem, null, check.detail);
  assert.equal(check.size, bytes.length);
  return new RecordBatch(bytes).records(fromOffset);
}

/** Re-seals a batch whose covered bytes a test changed on purpose. */
function resealCrc(bytes: Buffer): void {
  bytes.writeUInt32BE(crc32c(bytes.subarray(21)), CRC_OFFSET);
}

const T0 = 1_700_000_000_000;

/** A varied batch: null key, null value, empty strings, headers (null and duplicate keys), unicode. */
const VARIED: EncodableRecord[] = [
  { key: 'user-1', value: '{"n":1}', timestamp: T0 },
  { key: null, value: 'no key', timestamp: T0 + 5 },
  { key: 'tombstone', value: null, timestamp: T0 + 1 },
  { key: null, value: null, timestamp: T0 - 7 },
  { key: '', value: '', timestamp: T0 },
  { key: 'ключ 🗝️', value: 'значение — 値 — 🎉 \u0000 end', timestamp: T0 + 2 ** 31 + 3 },
  {
    key: Buffer.from([0, 255, 1, 254]),
    value: Buffer.alloc(300, 0xab),
    headers: [
      { key: 'trace-id', value: Buffer.from('abc') },
      { key: 'empty', value: Buffer.alloc(0) },
      { key: 'nothing', value: null },
      { key: 'ünï', value: Buffer.from('ç😀') },
    ],
    timestamp: T0 - 2 ** 33,
  },
];

describe('encodeBatch / RecordBatch round trip', () => {
  test('decodes every field of every record as it was encoded', () => {
    const bytes = encodeBatch(VARIED, { baseOffset: 42 });
    const batch = new RecordBatch(bytes);
    assert.equal(batch.baseOffset, 42);
    assert.equal(batch.lastOffset, 42 + VARIED.length - 1);
    assert.equal(batch.count, VARIED.length);
    assert.equal(batch.baseTimestamp, T0);
    assert.equal(batch.maxTimestamp, T0 + 2 ** 31 + 3);
    assert.equal(batch.sizeBytes, bytes.length);
    const records = decodeOne(bytes);
    assert.equal(records.length, VARIED.length);
    records.forEach((r, i) => {
      const input = VARIED[i];
      assert.equal(r.offset, 42 + i);
      assert.equal(r.timestamp, input.timestamp, `timestamp of record ${i}`);
      assert.deepEqual(r.key, typeof input.key === 'string' ? buf(input.key) : input.key);
      assert.deepEqual(r.value, typeof input.value === 'string' ? buf(input.value) : input.value);
      assert.deepEqual(r.headers, input.headers ?? []);
    });
    assert.equal(records[5].value!.toString('utf8'), 'значение — 値 — 🎉 \u0000 end');
  });

  test('keeps a null key and a null value distinct from empty ones', () => {
    const records = decodeOne(
      encodeBatch(
        [
          { key: null, value: null, timestamp: 1 },
          { key: '', value: Buffer.alloc(0), timestamp: 1 },
        ],
        { baseOffset: 0 },
      ),
    );
    assert.equal(records[0].key, null);
    assert.equal(records[0].value, null);
    assert.deepEqual(records[1].key, Buffer.alloc(0));
    assert.deepEqual(records[1].value, Buffer.alloc(0));
  });

  test('round-trips timestamp deltas that are negative or beyond 2^31 and 2^32', () => {
    const deltas = [
      0,
      -1,
      1,
      -(2 ** 31),
      2 ** 31,
      2 ** 31 + 1,
      2 ** 32 + 5,
      -(2 ** 32) - 5,
      2 ** 40,
      -(2 ** 40),
      2 ** 30 - 1,
      2 ** 30,
      -(2 ** 30),
      -(2 ** 30) - 1,
    ];
    const base = 2 ** 41;
    const input = deltas.map((d, i) => ({ key: null, value: String(i), timestamp: base + d }));
    const batch = new RecordBatch(encodeBatch(input, { baseOffset: 0 }));
    assert.deepEqual(
      batch.records().map((r) => r.timestamp),
      input.map((r) => r.timestamp),
    );
    assert.equal(batch.maxTimestamp, base + 2 ** 40);
  });

  test('round-trips timestamps before 1970 (negative int64)', () => {
    const input = [-5, -(2 ** 40), 0].map((timestamp) => ({ key: 'k', value: 'v', timestamp }));
    const batch = new RecordBatch(encodeBatch(input, { baseOffset: 0 }));
    assert.equal(batch.baseTimestamp, -5);
    assert.deepEqual(
      batch.records().map((r) => r.timestamp),
      [-5, -(2 ** 40), 0],
    );
  });

  test('round-trips base offsets above 2^32 and producer fields', () => {
    const baseOffset = 2 ** 40 + 12345;
    const bytes = encodeBatch(
      [
        { key: 'a', value: '1', timestamp: 10 },
        { key: 'b', value: '2', timestamp: 11 },
      ],
      { baseOffset, producerId: 2 ** 35 + 1, producerEpoch: 7, baseSequence: 99 },
    );
    const batch = new RecordBatch(bytes);
    assert.equal(batch.baseOffset, baseOffset);
    assert.equal(batch.lastOffset, baseOffset + 1);
    assert.equal(batch.producerId, 2 ** 35 + 1);
    assert.equal(batch.producerEpoch, 7);
    assert.equal(batch.baseSequence, 99);
    assert.deepEqual(
      batch.records().map((r) => r.offset),
      [baseOffset, baseOffset + 1],
    );
  });

  test('writes the defaults for a non-idempotent batch: producerId -1, epoch -1, sequence -1', () => {
    const batch = new RecordBatch(encodeBatch([{ key: null, value: 'x', timestamp: 1 }], { baseOffset: 0 }));
    assert.equal(batch.producerId, -1);
    assert.equal(batch.producerEpoch, -1);
    assert.equal(batch.baseSequence, -1);
  });

  test('records(from) skips the records before `from` in the same batch', () => {
    const input = Array.from({ length: 10 }, (_, i) => ({ key: null, value: `v${i}`, timestamp: i }));
    const batch = new RecordBatch(encodeBatch(input, { baseOffset: 100 }));
    const tail = batch.records(105);
    assert.deepEqual(
      tail.map((r) => [r.offset, r.value!.toString()]),
      [105, 106, 107, 108, 109].map((o) => [o, `v${o - 100}`]),
    );
    assert.equal(batch.records(110).length, 0);
    assert.equal(batch.records(0).length, 10);
  });

  test('setBaseOffset moves the batch to new offsets without breaking its CRC', () => {
    const bytes = encodeBatch(
      [
        { key: null, value: 'x', timestamp: 1 },
        { key: null, value: 'y', timestamp: 2 },
      ],
      { baseOffset: 0 },
    );
    setBaseOffset(bytes, 2 ** 33);
    assert.equal(checkBatch(bytes, 0, bytes.length).problem, null);
    assert.deepEqual(
      new RecordBatch(bytes).records().map((r) => r.offset),
      [2 ** 33, 2 ** 33 + 1],
    );
  });

  test('reports log-append time as the batch max timestamp when the attribute is set', () => {
    const bytes = encodeBatch(
      [
        { key: null, value: 'a', timestamp: 100 },
        { key: null, value: 'b', timestamp: 300 },
      ],
      { baseOffset: 0, attributes: ATTR_TIMESTAMP_LOG_APPEND },
    );
    assert.deepEqual(
      new RecordBatch(bytes).records().map((r) => r.timestamp),
      [300, 300],
    );
  });

  test('decodes a compressed batch, and refuses one whose payload does not decompress instead of returning garbage', () => {
    const plain = encodeBatch([{ key: 'k', value: 'a', timestamp: 1 }], { baseOffset: 5 });
    assert.deepEqual(
      new RecordBatch(compressBatch(plain, 1 /* gzip */)).records().map((r) => [r.offset, r.value!.toString()]),
      [[5, 'a']],
    );
    // Marked gzip, but the records are not compressed at all.
    const bytes = encodeBatch([{ key: null, value: 'a', timestamp: 1 }], { baseOffset: 0, attributes: 1 /* gzip */ });
    assert.throws(() => new RecordBatch(bytes).records(), {
      code: 'KAPPA_CORRUPT_DATA',
      message: /compressed batch at offset 0 cannot be read: its gzip payload does not decompress/,
    });
  });

  test('refuses an empty batch', () => {
    assert.throws(() => encodeBatch([], { baseOffset: 0 }), RangeError);
  });
});

describe('integer helpers', () => {
  test('int64 round-trips negative values and values above 2^32', () => {
    const b = Buffer.alloc(8);
    for (const n of [0, 1, -1, 2 ** 32, 2 ** 32 - 1, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53) + 1, 1_700_000_000_000]) {
      writeInt64(b, 0, n);
      assert.equal(readInt64(b, 0), n);
      assert.equal(b.readBigInt64BE(0), BigInt(n));
    }
  });

  test('varintSize agrees with the bytes writeVarint writes, at every zigzag boundary', () => {
    const b = Buffer.alloc(16);
    const values = [
      0,
      -1,
      1,
      63,
      -64,
      64,
      -65,
      8191,
      8192,
      -8193,
      2 ** 30 - 1,
      2 ** 30,
      -(2 ** 30),
      -(2 ** 30) - 1,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 52,
      -(2 ** 52),
    ];
    for (const v of values) assert.equal(writeVarint(b, 0, v), varintSize(v), `size of ${v}`);
  });
});

describe('checkBatch', () => {
  const good = (): Buffer => encodeBatch(VARIED, { baseOffset: 7 });

  test('accepts a whole, intact batch and reports its size', () => {
    const bytes = good();
    assert.deepEqual(checkBatch(bytes, 0, bytes.length), { size: bytes.length, problem: null, detail: '' });
  });

  test('finds a batch at a position inside a larger buffer', () => {
    const a = encodeBatch([{ key: null, value: 'a', timestamp: 1 }], { baseOffset: 0 });
    const b = good();
    const both = Buffer.concat([a, b]);
    assert.equal(checkBatch(both, a.length, both.length).problem, null);
    assert.equal(checkBatch(both, a.length, both.length).size, b.length);
  });

  test('detects a flipped bit in the records as a bad CRC', () => {
    const bytes = good();
    bytes[bytes.length - 3] ^= 0x01;
    const check = checkBatch(bytes, 0, bytes.length);
    assert.equal(check.problem, 'bad-crc');
    assert.match(check.detail, /CRC-32C mismatch/);
  });

  test('detects a damaged header field covered by the CRC (timestamp) as a bad CRC', () => {
    const bytes = good();
    bytes[30] ^= 0x80;
    assert.equal(checkBatch(bytes, 0, bytes.length).problem, 'bad-crc');
  });

  test('detects a magic byte other than 2', () => {
    const bytes = good();
    bytes[16] = 1;
    assert.equal(checkBatch(bytes, 0, bytes.length).problem, 'bad-magic');
  });

  test('reports a batch cut short, in the header or in the records, as incomplete', () => {
    const bytes = good();
    const inHeader = checkBatch(bytes, 0, BATCH_HEADER_BYTES - 1);
    assert.equal(inHeader.problem, 'incomplete');
    assert.equal(inHeader.size, 0);
    const inRecords = checkBatch(bytes, 0, bytes.length - 1);
    assert.equal(inRecords.problem, 'incomplete');
    assert.equal(inRecords.size, bytes.length, 'the size is known once the length field is readable');
    assert.equal(checkBatch(bytes, 0, 0).problem, 'incomplete');
  });

  test('detects an impossible batch length', () => {
    const bytes = good();
    bytes.writeInt32BE(10, 8);
    assert.equal(checkBatch(bytes, 0, bytes.length).problem, 'bad-length');
    const big = good();
    assert.equal(checkBatch(big, 0, big.length, big.length - 1).problem, 'bad-length', 'longer than sizeMax');
    big.writeInt32BE(-1, 8);
    assert.equal(checkBatch(big, 0, big.length).problem, 'bad-length');
  });

  test('detects a record count that disagrees with the last offset delta', () => {
    const bytes = good();
    bytes.writeInt32BE(VARIED.length + 1, 57);
    resealCrc(bytes);
    assert.equal(checkBatch(bytes, 0, bytes.length).problem, 'bad-count');
    bytes.writeInt32BE(0, 57);
    bytes.writeInt32BE(-1, 23);
    resealCrc(bytes);
    assert.equal(checkBatch(bytes, 0, bytes.length).problem, 'bad-count', 'a batch with zero records');
  });
});

describe('compatibility with kafkajs', () => {
  function expectedHeaders(headers: EncodableRecord['headers']): Record<string, Buffer | null> {
    const out: Record<string, Buffer | null> = {};
    for (const h of headers ?? []) out[h.key] = h.value;
    return out;
  }

  test("kafkajs's RecordBatch decoder reads Kappa batches with equal keys, values, headers, offsets and timestamps", async () => {
    const baseOffset = 2 ** 36 + 3;
    const bytes = encodeBatch(VARIED, { baseOffset, producerId: 77, producerEpoch: 2, baseSequence: 5 });
    const decoded = await kafkaDecodeBatch(new KafkaDecoder(bytes));
    assert.equal(decoded.firstOffset, String(baseOffset));
    assert.equal(decoded.lastOffsetDelta, VARIED.length - 1);
    assert.equal(decoded.firstTimestamp, String(T0));
    assert.equal(decoded.maxTimestamp, String(T0 + 2 ** 31 + 3));
    assert.equal(decoded.producerId, '77');
    assert.equal(decoded.producerEpoch, 2);
    assert.equal(decoded.firstSequence, 5);
    assert.equal(decoded.records.length, VARIED.length);
    decoded.records.forEach((r, i) => {
      const input = VARIED[i];
      assert.equal(r.offset, String(baseOffset + i));
      assert.equal(r.timestamp, String(input.timestamp));
      assert.deepEqual(r.key, typeof input.key === 'string' ? buf(input.key) : input.key);
      assert.deepEqual(r.value, typeof input.value === 'string' ? buf(input.value) : input.value);
      assert.deepEqual(r.headers, expectedHeaders(input.headers));
    });
  });

  test("Kappa's CRC-32C equals kafkajs's CRC-32C over the same bytes", () => {
    const bytes = encodeBatch(VARIED, { baseOffset: 0 });
    assert.equal(bytes.readUInt32BE(CRC_OFFSET), kafkaCrc32C(bytes.subarray(21)));
  });

  test('kafkajs decodes a run of Kappa batches back to back, as a fetch response carries them', async () => {
    const a = encodeBatch([{ key: 'a', value: '1', timestamp: 5 }], { baseOffset: 0 });
    const b = encodeBatch(
      [
        { key: 'b', value: '2', timestamp: 6 },
        { key: 'c', value: '3', timestamp: 4 },
      ],
      { baseOffset: 1 },
    );
    const decoder = new KafkaDecoder(Buffer.concat([a, b]));
    const first = await kafkaDecodeBatch(decoder);
    const second = await kafkaDecodeBatch(decoder);
    assert.deepEqual(
      [...first.records, ...second.records].map((r) => [r.offset, r.key!.toString(), r.timestamp]),
      [
        ['0', 'a', '5'],
        ['1', 'b', '6'],
        ['2', 'c', '4'],
      ],
    );
  });

  test('Kappa decodes batches encoded by kafkajs, and their CRC checks out', async () => {
    const firstOffset = 2 ** 33 + 9;
    const firstTimestamp = T0;
    const inputs = [
      {
        key: Buffer.from('k1'),
        value: Buffer.from('v1'),
        timestampDelta: 0,
        headers: { a: Buffer.from('x'), b: Buffer.from('ÿ') },
      },
      { key: null, value: Buffer.from('no key'), timestampDelta: -1500, headers: {} },
      { key: Buffer.from('tomb'), value: null, timestampDelta: 2 ** 33, headers: {} },
      {
        key: Buffer.from('😀 ключ'),
        value: Buffer.from('値'.repeat(100)),
        timestampDelta: 7,
        headers: { ünï: Buffer.from('ç') },
      },
    ];
    const records = inputs.map((r, i) =>
      kafkaRecord({ offsetDelta: i, timestampDelta: r.timestampDelta, key: r.key, value: r.value, headers: r.headers }),
    );
    const encoded = await kafkaRecordBatch({
      firstOffset,
      firstTimestamp,
      maxTimestamp: firstTimestamp + 2 ** 33,
      lastOffsetDelta: inputs.length - 1,
      producerId: -1,
      producerEpoch: 0,
      firstSequence: 0,
      records,
    });
    const bytes = encoded.buffer;
    const check = checkBatch(bytes, 0, bytes.length);
    assert.equal(check.problem, null, check.detail);
    assert.equal(check.size, bytes.length);
    const batch = new RecordBatch(bytes);
    assert.equal(batch.baseOffset, firstOffset);
    assert.equal(batch.lastOffset, firstOffset + inputs.length - 1);
    assert.equal(batch.maxTimestamp, firstTimestamp + 2 ** 33);
    const decoded = batch.records();
    assert.equal(decoded.length, inputs.length);
    decoded.forEach((r, i) => {
      const input = inputs[i];
      assert.equal(r.offset, firstOffset + i);
      assert.equal(r.timestamp, firstTimestamp + input.timestampDelta);
      assert.deepEqual(r.key, input.key);
      assert.deepEqual(r.value, input.value);
      assert.deepEqual(
        r.headers,
        Object.entries(input.headers).map(([key, value]) => ({ key, value })),
      );
    });
  });

  test('a batch Kappa encodes is byte-identical to the one kafkajs encodes from the same records', async () => {
    // Same fields on both sides (producer epoch 0 and sequence 0 are kafkajs's defaults), so the
    // two independent encoders must agree on every byte, CRC included.
    const input = [
      { key: 'k', value: 'v', headers: [{ key: 'h', value: Buffer.from('1') }], timestamp: T0 },
      { key: null, value: 'x'.repeat(200), headers: [], timestamp: T0 - 20 },
    ];
    const mine = encodeBatch(input, { baseOffset: 5, producerId: -1, producerEpoch: 0, baseSequence: 0 });
    const theirs = await kafkaRecordBatch({
      firstOffset: 5,
      firstTimestamp: T0,
      maxTimestamp: T0,
      lastOffsetDelta: 1,
      producerId: -1,
      producerEpoch: 0,
      firstSequence: 0,
      records: input.map((r, i) =>
        kafkaRecord({
          offsetDelta: i,
          timestampDelta: r.timestamp - T0,
          key: r.key === null ? null : Buffer.from(r.key),
          value: Buffer.from(r.value),
          headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value])),
        }),
      ),
    });
    assert.deepEqual(mine, theirs.buffer);
  });
});
