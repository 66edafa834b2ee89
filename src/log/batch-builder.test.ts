/**
 * BatchBuilder against encodeBatch: sealed, each built batch is byte for byte the batch encodeBatch
 * makes of the same records (keys null, empty and non-ASCII; values empty, short and long enough to
 * need a longer length; strings, and bytes given as part of a larger buffer; timestamps out of order),
 * cut every `batchRecords`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchBuilder, sealBatch } from './batch-builder.ts';
import { type EncodableRecord, encodeBatch } from './record-batch.ts';

test('built and sealed, the batches are byte for byte those encodeBatch makes of the same records', () => {
  const records: EncodableRecord[] = Array.from({ length: 2500 }, (_, i) => ({
    key: i % 4 === 0 ? null : i % 4 === 1 ? `key-${i}-é` : i % 4 === 2 ? '' : Buffer.from(`bytes-${i}`),
    value:
      i % 50 === 0
        ? ''
        : i % 7 === 0
          ? Buffer.from(JSON.stringify({ i, pad: 'y'.repeat(i % 400) }))
          : JSON.stringify({ i, s: '日本🎉'.repeat(i % 5), pad: 'x'.repeat((i * 37) % 300) }),
    headers: null,
    timestamp: 1_700_000_000_000 + ((i * 7919) % 5000) - 2500,
  }));
  const builder = new BatchBuilder(1000);
  for (const r of records) {
    const v = r.value!;
    if (typeof v === 'string') builder.push(r.key, v, r.timestamp);
    else {
      // Bytes given as a range of a larger buffer.
      const around = Buffer.concat([Buffer.from('<<'), v, Buffer.from('>>')]);
      builder.push(r.key, around, r.timestamp, 2, 2 + v.length);
    }
  }
  assert.equal(builder.length, 2500);
  const built = builder.take();
  assert.equal(built.records, 2500);
  assert.equal(builder.length, 0);
  assert.equal(built.ends.length, 3);
  let start = 0;
  built.ends.forEach((end, b) => {
    const batch = Buffer.from(built.bytes.buffer, built.bytes.byteOffset + start, end - start);
    sealBatch(batch, 77, 3, 5000 + b * 1000);
    const chunk = records.slice(b * 1000, b * 1000 + 1000);
    const expected = encodeBatch(chunk, {
      baseOffset: 0,
      producerId: 77,
      producerEpoch: 3,
      baseSequence: 5000 + b * 1000,
    });
    assert.ok(batch.equals(expected), `batch ${b}`);
    start = end;
  });
  // The builder starts over: the next take has only what came after.
  builder.push(null, 'after', 5);
  const next = builder.take();
  assert.equal(next.records, 1);
  const only = Buffer.from(next.bytes);
  sealBatch(only, 1, 0, 0);
  assert.ok(
    only.equals(
      encodeBatch([{ key: null, value: 'after', timestamp: 5 }], {
        baseOffset: 0,
        producerId: 1,
        producerEpoch: 0,
        baseSequence: 0,
      }),
    ),
  );
  assert.deepEqual(builder.take(), { bytes: new Uint8Array(0), ends: new Uint32Array(0), records: 0 });
});
