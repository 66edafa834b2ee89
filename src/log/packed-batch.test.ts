/**
 * encodePackedBatch against encodeBatch: byte for byte the same batch for the same records (keys
 * null, empty and non-ASCII; values empty and long; timestamps out of order), from any subset of a
 * packed buffer's records in any order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePackedBatch, type PackedRecords } from './packed-batch.ts';
import { type EncodableRecord, encodeBatch } from './record-batch.ts';

function packed(records: { key: string | null; value: string; timestamp: number }[]): PackedRecords {
  const parts: Buffer[] = [];
  const n = records.length;
  const src = {
    valueStarts: new Uint32Array(n),
    valueLengths: new Uint32Array(n),
    keyStarts: new Uint32Array(n),
    keyLengths: new Int32Array(n),
    timestamps: new Float64Array(n),
  };
  let at = 0;
  records.forEach((r, i) => {
    const value = Buffer.from(r.value);
    src.valueStarts[i] = at;
    src.valueLengths[i] = value.length;
    parts.push(value);
    at += value.length;
    src.keyLengths[i] = -1;
    if (r.key !== null) {
      const key = Buffer.from(r.key);
      src.keyStarts[i] = at;
      src.keyLengths[i] = key.length;
      parts.push(key);
      at += key.length;
    }
    src.timestamps[i] = r.timestamp;
  });
  return { bytes: Buffer.concat(parts), ...src };
}

test('a packed batch is byte for byte the batch encodeBatch makes of the same records', () => {
  const records = Array.from({ length: 300 }, (_, i) => ({
    key: i % 3 === 0 ? null : i % 3 === 1 ? `key-${i}-é` : '',
    value: i % 50 === 0 ? '' : JSON.stringify({ i, s: '日本'.repeat(i % 7), pad: 'x'.repeat(i * 3) }),
    timestamp: 1_700_000_000_000 + ((i * 7919) % 5000) - 2500,
  }));
  const src = packed(records);
  const opts = { baseOffset: 0, producerId: 42, producerEpoch: 0, baseSequence: 1234 };
  // Every other record, backwards: any subset in any order.
  const indices = Uint32Array.from({ length: 150 }, (_, j) => 299 - 2 * j);
  for (const [from, to] of [
    [0, 150],
    [0, 1],
    [37, 101],
  ]) {
    const chosen: EncodableRecord[] = Array.from(indices.subarray(from, to), (i) => ({
      key: records[i].key,
      value: records[i].value,
      headers: null,
      timestamp: records[i].timestamp,
    }));
    assert.ok(encodePackedBatch(src, indices, from, to, opts).equals(encodeBatch(chosen, opts)), `${from}-${to}`);
  }
  const noKeys = { ...src, keyStarts: null, keyLengths: null };
  const all = Uint32Array.from({ length: 300 }, (_, i) => i);
  const unkeyed = records.map((r) => ({ key: null, value: r.value, headers: null, timestamp: r.timestamp }));
  assert.ok(encodePackedBatch(noKeys, all, 0, 300, opts).equals(encodeBatch(unkeyed, opts)));
  assert.throws(() => encodePackedBatch(src, all, 5, 5, opts), /at least one record/);
});
