import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Log } from '../log/index.ts';
import type { ControlStore, ViewStore } from '../view/index.ts';
import { ChangeFeed } from './change-feed.ts';
import { Flusher } from './flush.ts';
import type { Task } from './task-loop.ts';
import type { Drained } from './task-runner.ts';
import { packOutputs } from './worker-protocol.ts';

const logger = { info() {}, warn() {} };

/** A log and stores that fail the test if the flush gets as far as writing. */
function untouchable<T>(what: string): T {
  return new Proxy({}, { get: (_, name) => () => assert.fail(`the flush used ${what}.${String(name)}`) }) as T;
}

test('a flush whose drain covers less than the last checkpoint stops with an invariant error and writes nothing', async () => {
  const flusher = new Flusher({
    log: untouchable<Log>('log'),
    store: untouchable<ViewStore>('store'),
    control: untouchable<ControlStore>('control'),
    logger,
    changes: new ChangeFeed(logger),
    saveCode: async () => {},
  });
  const drained: Drained = {
    rows: [],
    deadLetters: [],
    late: [],
    outputs: packOutputs([]),
    watermarkMs: 0,
    keyNames: null,
    offset: 5,
  };
  const task = {
    id: 0,
    plan: { name: 'totals' },
    topic: 'sales',
    partition: 2,
    offset: 10,
    committedOffset: 10,
    group: null,
    producer: null,
    runner: { drain: async () => drained },
  } as unknown as Task;
  await assert.rejects(
    flusher.flush(task),
    /^InvariantError: invariant: the checkpoint of task totals\/sales\/2 would go backwards \(10 → 5\)$/m,
  );
  assert.equal(task.committedOffset, 10);
  assert.equal(task.offset, 10);
});
