/**
 * The Flusher says a dead-letter topic started filling once per topic (with the first record's view,
 * position and reason), however many dead letters and flushes follow, and counts them per topic.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Log } from '../log/index.ts';
import type { ControlStore, ViewStore } from '../view/index.ts';
import { ChangeFeed } from './change-feed.ts';
import { Flusher } from './flush.ts';
import type { DeadLetter } from './task-plan.ts';
import type { Task } from './task-loop.ts';
import type { Drained } from './task-runner.ts';
import { packOutputs } from './worker-protocol.ts';

function outputTask(topic: string, dead: () => DeadLetter[]): Task {
  let offset = 0;
  return {
    id: 0,
    plan: { name: 'copy_sales' },
    topic,
    partition: 0,
    offset: 0,
    committedOffset: 0,
    group: null,
    producer: { id: 1, sequences: [0], plan: { output: { target: { name: 'copies' }, fromStart: true } } },
    runner: {
      drain: async (): Promise<Drained> => {
        const deadLetters = dead();
        offset += deadLetters.length;
        return { rows: [], deadLetters, late: [], outputs: packOutputs([]), watermarkMs: 0, keyNames: null, offset };
      },
    },
  } as unknown as Task;
}

test('dead letters are logged once per dead-letter topic with the first reason, and counted', async () => {
  const warnings: string[] = [];
  const appended: string[] = [];
  const log = { appendBatch: async (topic: string) => void appended.push(topic) } as unknown as Log;
  const flusher = new Flusher({
    log,
    store: {} as ViewStore,
    control: {} as ControlStore,
    logger: { info() {}, warn: (m) => warnings.push(m) },
    changes: new ChangeFeed({ info() {}, warn() {} }),
    saveCode: async () => {},
  });
  let next = 0;
  const dead = (n: number, reason: string) => (): DeadLetter[] =>
    Array.from({ length: n }, () => ({
      record: { offset: next++, timestamp: 0, key: null, value: Buffer.from('{}'), headers: [] },
      partition: 0,
      reason,
    }));
  const sales = outputTask('sales', dead(3, 'pipeline: group key region is undefined'));
  for (let i = 0; i < 4; i++) await flusher.flush(sales);
  const refunds = outputTask('refunds', dead(2, 'pipeline: no amount'));
  await flusher.flush(refunds);
  await flusher.flush(refunds);

  assert.equal(appended.length, 16);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(
    warnings[0],
    /^output "copy_sales" could not process a record of topic "sales" \(partition 0, offset 0\) and sent it to the dead-letter topic sales\.dlq: pipeline: group key region is undefined\. Further dead letters of sales\.dlq are not logged/,
  );
  assert.match(warnings[1], /topic "refunds" .* refunds\.dlq: pipeline: no amount\./);
  const tallies = flusher.deadLetters().map(({ topic, count, firstView, firstReason }) => ({
    topic,
    count,
    firstView,
    firstReason,
  }));
  assert.deepEqual(tallies, [
    { topic: 'sales.dlq', count: 12, firstView: 'copy_sales', firstReason: 'pipeline: group key region is undefined' },
    { topic: 'refunds.dlq', count: 4, firstView: 'copy_sales', firstReason: 'pipeline: no amount' },
  ]);
});
