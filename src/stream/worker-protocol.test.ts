import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import type { OutputRecord } from './task-plan.ts';
import { OutputPacker, type PackedOutputs, packOutputs, packedRecords, recordsByPartition } from './worker-protocol.ts';

/** Through a real structured clone, as between threads. */
function cloned<T>(value: T): T {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(value);
  const got = receiveMessageOnPort(port2)!.message as T;
  port1.close();
  return got;
}

/** The records of `p`, read back through the positions the batch encoder uses, keys and values as text. */
function unpacked(p: PackedOutputs): OutputRecord[] {
  const { bytes, valueStarts, valueLengths, keyStarts, keyLengths, timestamps } = packedRecords(p);
  return Array.from(timestamps, (timestamp, i) => {
    const keyLength = keyLengths === null ? -1 : keyLengths[i];
    return {
      partition: p.partitions[i],
      key: keyLength < 0 ? null : bytes.toString('utf8', keyStarts![i], keyStarts![i] + keyLength),
      value: bytes.toString('utf8', valueStarts[i], valueStarts[i] + valueLengths[i]),
      timestamp,
    };
  });
}

test("an output task's records cross threads packed and come back the same, in order", () => {
  const records: OutputRecord[] = [
    { partition: 0, key: null, value: '{"a":1}', timestamp: 1 },
    { partition: 3, key: 'k1', value: '', timestamp: 2 },
    { partition: 1, key: '', value: '{"s":"café 日本 🎉"}', timestamp: 1.5e12 },
    { partition: 2, key: '🎉', value: 'x', timestamp: -1 },
  ];
  assert.deepEqual(unpacked(cloned(packOutputs(records))), records);
  const noKeys = records.map((r) => ({ ...r, key: null }));
  const packed = packOutputs(noKeys);
  assert.equal(packed.keyLengths, null);
  assert.deepEqual(unpacked(cloned(packed)), noKeys);
  assert.deepEqual(unpacked(cloned(packOutputs([]))), []);
  assert.deepEqual(
    [...recordsByPartition(packOutputs(records))].map(([q, indices]) => [q, [...indices]]),
    [
      [0, [0]],
      [1, [2]],
      [2, [3]],
      [3, [1]],
    ],
  );
});

test('a packer grows past its first buffers, starts over after each take, and a take is a copy', () => {
  const packer = new OutputPacker();
  const made = (i: number): OutputRecord => ({
    partition: i % 7,
    // The first key comes after records without one; long values outgrow the first 64 KB.
    key: i < 1500 ? null : `key-${i}`,
    value: JSON.stringify({ i, pad: 'é'.repeat(i % 50) }),
    timestamp: 1_700_000_000_000 + i,
  });
  const first = Array.from({ length: 5000 }, (_, i) => made(i));
  for (const r of first) packer.push(r);
  assert.equal(packer.length, 5000);
  const taken = packer.take();
  assert.equal(packer.length, 0);
  const second = Array.from({ length: 3 }, (_, i) => made(i));
  for (const r of second) packer.push(r);
  assert.deepEqual(unpacked(cloned(taken)), first, 'the first take is not changed by later pushes');
  assert.deepEqual(unpacked(cloned(packer.take())), second);
});
