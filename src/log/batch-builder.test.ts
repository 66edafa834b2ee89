/**
 * BatchBuilder against encodeBatch: sealed, each built batch is byte for byte the batch encodeBatch
 * makes of the same records (keys null, empty and non-ASCII; values empty, short and long enough to
 * need a longer length; strings, and bytes given as part of a larger buffer; timestamps out of order),
 * cut every `batchRecords`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchBuilder, SpareBuffers, sealBatch } from './batch-builder.ts';
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

test('a take hands the buffer over; the builder builds in a spare given back, never in a buffer still out', () => {
  const spares = new SpareBuffers();
  const builder = new BatchBuilder(100, spares);
  const value = 'v'.repeat(200);
  const fill = (n: number): void => {
    for (let i = 0; i < n; i++) builder.push(`k${i}`, value, 1000 + i);
  };
  fill(500);
  const first = builder.take();
  const firstCopy = Buffer.from(first.bytes);
  // The bytes are at the start of memory of their own, which the builder let go of.
  assert.equal(first.bytes.byteOffset, 0);
  fill(500);
  const second = builder.take();
  assert.notEqual(second.bytes.buffer, first.bytes.buffer);
  // Building the second did not touch the first, which was not given back.
  assert.ok(Buffer.from(first.bytes).equals(firstCopy));
  // Given back, the first's memory is built in again.
  spares.give(first.bytes.buffer as ArrayBuffer);
  fill(10);
  const third = builder.take();
  assert.equal(third.bytes.buffer, first.bytes.buffer);
  assert.equal(third.records, 10);
  // A spare too small for what the builder needs is not taken.
  spares.give(new ArrayBuffer(16));
  fill(10);
  assert.notEqual(builder.take().bytes.buffer.byteLength, 16);
});

test('SpareBuffers keeps at most its count and its bytes, takes one big enough, drops buffers moved away', () => {
  const spares = new SpareBuffers(2, 1000);
  spares.give(new ArrayBuffer(0)); // a buffer moved to another thread has no bytes
  assert.equal(spares.take(0), null);
  const a = new ArrayBuffer(300);
  const b = new ArrayBuffer(600);
  spares.give(a);
  spares.give(b);
  spares.give(new ArrayBuffer(10)); // a third one: over the count
  assert.equal(spares.take(400), b);
  spares.give(new ArrayBuffer(800)); // 300 + 800 > 1000 bytes
  assert.equal(spares.take(400), null);
  assert.equal(spares.take(100), a);
  assert.equal(spares.take(1), null);
  // The smallest that is big enough.
  const more = new SpareBuffers();
  const fit = new ArrayBuffer(500);
  more.give(new ArrayBuffer(900));
  more.give(fit);
  more.give(new ArrayBuffer(700));
  assert.equal(more.take(450), fit);
});
