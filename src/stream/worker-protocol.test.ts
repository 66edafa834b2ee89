import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { RecordBatch } from '../log/index.ts';
import type { OutputRecord } from './task-plan.ts';
import { OUTPUT_BATCH_RECORDS, OutputPacker, type PackedOutputs, packOutputs } from './worker-protocol.ts';

/** Through a real structured clone, as between threads. */
function cloned<T>(value: T): T {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(value);
  const got = receiveMessageOnPort(port2)!.message as T;
  port1.close();
  return got;
}

/** The records of `p` read back from its batches, partition by partition, keys and values as text. */
function unpacked(p: PackedOutputs): OutputRecord[] {
  const out: OutputRecord[] = [];
  for (const { partition, batches } of p.partitions) {
    let start = 0;
    for (const end of batches.ends) {
      const batch = new RecordBatch(Buffer.from(batches.bytes.buffer, batches.bytes.byteOffset + start, end - start));
      assert.ok(batch.count <= OUTPUT_BATCH_RECORDS);
      for (const r of batch.records())
        out.push({
          partition,
          key: r.key === null ? null : r.key.toString(),
          value: r.value!.toString(),
          timestamp: r.timestamp,
        });
      start = end;
    }
  }
  return out;
}

/** `records` in the order unpacked gives them: by partition (first seen first), in order within each. */
function byPartition(records: OutputRecord[]): OutputRecord[] {
  const order = [...new Set(records.map((r) => r.partition))];
  return order.flatMap((q) => records.filter((r) => r.partition === q));
}

test("an output task's records cross threads as batches and come back the same, in order per partition", () => {
  const records: OutputRecord[] = [
    { partition: 0, key: null, value: '{"a":1}', timestamp: 1 },
    { partition: 3, key: 'k1', value: '', timestamp: 2 },
    { partition: 1, key: '', value: '{"s":"café 日本 🎉"}', timestamp: 1.5e12 },
    { partition: 0, key: '🎉', value: 'x', timestamp: -1 },
  ];
  const packed = cloned(packOutputs(records));
  assert.equal(packed.records, 4);
  assert.deepEqual(unpacked(packed), byPartition(records));
  assert.deepEqual(unpacked(cloned(packOutputs([]))), []);
});

test('a packer cuts batches, grows past its first buffers, starts over after each take, and a take is a copy', () => {
  const packer = new OutputPacker();
  const made = (i: number): OutputRecord => ({
    partition: i % 3,
    key: i < 1500 ? null : `key-${i}`,
    value: JSON.stringify({ i, pad: 'é'.repeat(i % 50) }),
    timestamp: 1_700_000_000_000 + i,
  });
  const first = Array.from({ length: 5000 }, (_, i) => made(i));
  for (const r of first) packer.push(r);
  assert.equal(packer.length, 5000);
  const taken = packer.take();
  assert.equal(packer.length, 0);
  assert.deepEqual(
    taken.partitions.map((p) => p.batches.ends.length),
    [2, 2, 2],
    '1,667 records of a partition are two batches',
  );
  const second = Array.from({ length: 3 }, (_, i) => made(i));
  for (const r of second) packer.push(r);
  assert.deepEqual(unpacked(cloned(taken)), byPartition(first), 'the first take is not changed by later pushes');
  assert.deepEqual(unpacked(cloned(packer.take())), byPartition(second));
});
