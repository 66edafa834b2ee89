/**
 * `waitingLog` (log-outage.ts): a fold's read of a table or of the registry on the engine's thread
 * waits out a Kafka log out of reach, and stops waiting when its own task's signal aborts (the task
 * handed to another process, its version retired), not only when the engine stops.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KappaError } from '../errors.ts';
import type { Log, RecordBatch } from '../log/index.ts';
import { foldReadsOutage, waitingLog } from './log-outage.ts';
import { NO_WATERMARK, type TaskPlan, newTaskState } from './task-plan.ts';
import { InThreadRunner } from './task-runner.ts';

const quiet = { info() {}, warn() {} };

/** A log out of reach: every read and look-up fails as KafkaLog's do once its own retries are spent. */
function unreachable(): { log: Log; reads: () => number } {
  let reads = 0;
  const down = (): never => {
    throw new KappaError('KAPPA_LOG_UNAVAILABLE', 'Cannot reach the Kafka broker at 127.0.0.1:9 (test).');
  };
  const log = {
    // eslint-disable-next-line require-yield
    async *read(): AsyncGenerator<RecordBatch> {
      reads++;
      down();
    },
    offsets: async () => down(),
  } as unknown as Log;
  return { log, reads: () => reads };
}

async function settledWithin<T>(p: Promise<T>, ms: number): Promise<'settled' | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  const settled = p.then(
    () => 'settled' as const,
    () => 'settled' as const,
  );
  const r = await Promise.race([settled, pending]);
  clearTimeout(timer);
  return r;
}

test("a read waits out the outage, and stops waiting once its task's signal aborts", async () => {
  const engine = new AbortController();
  const task = new AbortController();
  const down = unreachable();
  const log = waitingLog(down.log, foldReadsOutage(quiet), AbortSignal.any([engine.signal, task.signal]));
  const reading = (async () => {
    for await (const _ of log.read('users', 0, 0, { once: true })) void _;
  })();
  assert.equal(await settledWithin(reading, 300), 'pending', 'waiting while the log is out of reach');
  task.abort(); // handed to another process; the engine runs on
  const started = Date.now();
  await assert.rejects(reading, (err: KappaError) => err.code === 'KAPPA_LOG_UNAVAILABLE');
  assert.ok(Date.now() - started < 500, 'ends at once, not after the log is back');
  assert.equal(engine.signal.aborted, false);
  assert.ok(down.reads() >= 1);
});

test('a look-up waits the same way and ends with the task', async () => {
  const task = new AbortController();
  const log = waitingLog(unreachable().log, foldReadsOutage(quiet), task.signal);
  const looking = log.offsets('users', 0);
  assert.equal(await settledWithin(looking, 300), 'pending');
  task.abort();
  await assert.rejects(looking, (err: KappaError) => err.code === 'KAPPA_LOG_UNAVAILABLE');
});

test("a task on the engine's thread gets a log that waits on its own signal", () => {
  const signal = new AbortController().signal;
  const given: (AbortSignal | undefined)[] = [];
  const runner = new InThreadRunner((s) => {
    given.push(s);
    return unreachable().log;
  });
  const plan = {
    newTaskState: (partition: number, watermarkMs: number) => newTaskState(partition, watermarkMs, 0),
    source: { format: null },
    tables: [],
  } as unknown as TaskPlan;
  runner.open({ id: 0, plan, partition: 0, watermarkMs: NO_WATERMARK, keyNames: null, signal });
  assert.deepEqual(given, [signal]);
});
