import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ATTR_TIMESTAMP_LOG_APPEND } from '../log/format/index.ts';
import { type EncodableRecord, RecordBatch, compressBatch, encodeBatch } from '../log/record-batch.ts';
import { BatchPositions } from './batch-positions.ts';

const T0 = Date.UTC(2026, 0, 1);

/** Records with every shape the format allows: null key or value, headers, long values, out-of-order timestamps. */
function varied(): EncodableRecord[] {
  const out: EncodableRecord[] = [];
  for (let i = 0; i < 300; i++) {
    out.push({
      key: i % 7 === 0 ? null : `k${i}`,
      value: i % 11 === 0 ? null : 'x'.repeat(i % 3 === 0 ? 20_000 : i),
      headers:
        i % 5 === 0
          ? [
              { key: 'h', value: Buffer.from(`v${i}`) },
              { key: 'empty', value: null },
            ]
          : [],
      timestamp: T0 + (i % 2 === 0 ? i * 1000 : -i * 1000),
    });
  }
  return out;
}

function plain(r: {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer | null }[];
}): unknown {
  return {
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key?.toString('hex') ?? null,
    value: r.value?.toString('hex') ?? null,
    headers: r.headers.map((h) => [h.key, h.value?.toString('hex') ?? null]),
  };
}

describe('BatchPositions', () => {
  test('finds every record where RecordBatch.records() decodes it, from any offset', () => {
    const bytes = encodeBatch(varied(), { baseOffset: 1_000 });
    const positions = new BatchPositions();
    for (const from of [0, 1_000, 1_001, 1_150, 1_299, 1_300]) {
      const expected = new RecordBatch(bytes).records(from);
      assert.equal(positions.load(bytes, from), expected.length, `from ${from}`);
      for (let i = 0; i < expected.length; i++) {
        assert.deepEqual(plain(positions.record(i)), plain(expected[i]));
        const v = expected[i].value;
        assert.equal(positions.valueLength[i], v === null ? -1 : v.length);
        if (v !== null)
          assert.ok(bytes.subarray(positions.valueStart[i], positions.valueStart[i] + v.length).equals(v));
      }
    }
  });

  test('gives every record the batch time when the batch carries log-append time', () => {
    const records = [
      { key: null, value: 'a', timestamp: T0 },
      { key: null, value: 'b', timestamp: T0 + 5 },
    ];
    const bytes = encodeBatch(records, { baseOffset: 0, attributes: ATTR_TIMESTAMP_LOG_APPEND });
    const positions = new BatchPositions();
    positions.load(bytes, 0);
    assert.deepEqual([positions.timestamps[0], positions.timestamps[1]], [T0 + 5, T0 + 5]);
  });

  test('finds the records of a compressed batch in its decoded form, as RecordBatch.records() reads them', () => {
    const records = varied();
    for (const codec of [1, 2, 3]) {
      const packed = compressBatch(encodeBatch(records, { baseOffset: 40 }), codec);
      const positions = new BatchPositions();
      assert.equal(positions.load(packed, 45), records.length - 5);
      assert.notEqual(positions.bytes, packed, 'the positions refer to the decoded form');
      const expected = new RecordBatch(packed).records(45);
      for (let i = 0; i < positions.count; i++) {
        assert.deepEqual(positions.record(i), expected[i]);
        const value =
          positions.valueLength[i] < 0
            ? null
            : positions.bytes.subarray(positions.valueStart[i], positions.valueStart[i] + positions.valueLength[i]);
        assert.deepEqual(value, expected[i].value);
      }
    }
  });

  test('refuses a compressed batch whose payload does not decompress, and a record whose lengths run past the batch', () => {
    const positions = new BatchPositions();
    assert.throws(
      () =>
        positions.load(encodeBatch([{ key: null, value: 'a', timestamp: T0 }], { baseOffset: 0, attributes: 1 }), 0),
      { code: 'KAPPA_CORRUPT_DATA', message: /gzip payload does not decompress/ },
    );
    const bytes = encodeBatch([{ key: null, value: 'abc', timestamp: T0 }], { baseOffset: 0 });
    const cut = bytes.subarray(0, bytes.length - 2);
    assert.throws(() => positions.load(cut, 0), /runs past the batch/);
  });
});
