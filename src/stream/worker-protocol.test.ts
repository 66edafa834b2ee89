import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import type { OutputRecord } from './task-plan.ts';
import { packOutputs, unpackOutputs } from './worker-protocol.ts';

/** Through a real structured clone, as between threads. */
function cloned<T>(value: T): T {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(value);
  const got = receiveMessageOnPort(port2)!.message as T;
  port1.close();
  return got;
}

test("an output task's records cross threads packed and come back the same, in order", () => {
  const records: OutputRecord[] = [
    { partition: 0, key: null, value: '{"a":1}', timestamp: 1 },
    { partition: 3, key: 'k1', value: '', timestamp: 2 },
    { partition: 1, key: '', value: '{"s":"café 日本 🎉"}', timestamp: 1.5e12 },
    { partition: 2, key: '🎉', value: 'x', timestamp: -1 },
  ];
  assert.deepEqual(unpackOutputs(cloned(packOutputs(records))), records);
  const noKeys = records.map((r) => ({ ...r, key: null }));
  const packed = packOutputs(noKeys);
  assert.equal(packed.keyLengths, null);
  assert.deepEqual(unpackOutputs(cloned(packed)), noKeys);
  assert.deepEqual(unpackOutputs(cloned(packOutputs([]))), []);
});
