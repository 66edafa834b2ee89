import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KappaError } from '../errors.ts';
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

const emptyDrain: Drained = {
  rows: [],
  deadLetters: [],
  late: [],
  outputs: packOutputs([]),
  watermarkMs: 0,
  keyNames: null,
  offset: 0,
};

/** A flusher whose log and stores fail the test if used. */
function flusherFor(log: { info(m: string): void; warn(m: string): void }): Flusher {
  return new Flusher({
    log: untouchable<Log>('log'),
    store: untouchable<ViewStore>('store'),
    control: untouchable<ControlStore>('control'),
    logger: log,
    changes: new ChangeFeed(logger),
    saveCode: async () => {},
  });
}

/** Task totals/sales/2, checkpointed at offset 10, whose drain covers up to `drainedTo`. */
function taskOf(drainedTo: number, fields: Record<string, unknown>): Task {
  const drained: Drained = { ...emptyDrain, offset: drainedTo };
  return {
    id: 0,
    plan: { name: 'totals' },
    topic: 'sales',
    partition: 2,
    offset: 10,
    committedOffset: 10,
    group: null,
    producer: null,
    runner: { drain: async () => drained },
    ...fields,
  } as unknown as Task;
}

test('a flush whose drain covers less than the last checkpoint stops with an invariant error and writes nothing', async () => {
  const flusher = flusherFor(logger);
  const task = taskOf(5, {});
  await assert.rejects(
    flusher.flush(task),
    /^InvariantError: invariant: the checkpoint of task totals\/sales\/2 would go backwards \(10 → 5\)$/m,
  );
  assert.equal(task.committedOffset, 10);
  assert.equal(task.offset, 10);
});

test('a flush waiting for a store out of reach stops as soon as its task is stopped, not at the next retry', async () => {
  const warnings: string[] = [];
  const flusher = flusherFor({ info() {}, warn: (m: string) => warnings.push(m) });
  const unreachable = Promise.reject(new KappaError('KAPPA_STORE_UNAVAILABLE', 'the store is out of reach'));
  unreachable.catch(() => {});
  const stop = new AbortController();
  const task = taskOf(12, {
    signal: stop.signal,
    group: { plan: { view: { name: 'totals' } }, version: 1, ensured: unreachable, keyNames: [], codeSaved: true },
  });
  const flushed = flusher.flush(task);
  flushed.catch(() => {});
  await new Promise((r) => setTimeout(r, 50));
  assert.match(warnings.join('\n'), /totals\/sales\/2 waits: the view store cannot be reached/);
  const stoppedAt = performance.now();
  stop.abort();
  await assert.rejects(flushed, { code: 'KAPPA_STORE_UNAVAILABLE' });
  const ms = performance.now() - stoppedAt;
  assert.ok(ms < 500, `the flush gave up ${ms.toFixed(0)} ms after its task stopped (the retry pause is 1 s)`);
  assert.equal(task.committedOffset, 10, 'nothing was checkpointed');
});
