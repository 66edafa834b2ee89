/**
 * deadLetterTopics (metrics.ts), what /metrics counts and the dashboard can show: each `.dlq` topic
 * that has records, with its count and the reason and pipeline of its oldest record.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import { openFileLog } from '../log/index.ts';
import { deadLetterTopics } from './metrics.ts';

test('deadLetterTopics counts each dead-letter topic and gives its first reason; empty and other topics are left out', async (t) => {
  const log = await openFileLog({ dir: tempDir(t, 'kappa-dlq-topics-'), fsync: 'never' });
  defer(t, () => log.close());
  await log.createTopic('sales', { partitions: 2 });
  await log.createTopic('sales.dlq', { partitions: 2 });
  await log.createTopic('empty.dlq', { partitions: 1 });
  await log.append('sales', [{ value: '{}' }]);
  const dead = (i: number) => ({
    value: `{"i":${i}}`,
    partition: i % 2,
    headers: { 'kappa.view': 'totals', 'kappa.error': `pipeline: group key region is undefined (${i})` },
  });
  await log.append('sales.dlq', [dead(1), dead(2), dead(3)]);
  assert.deepEqual(await deadLetterTopics(log), [
    {
      topic: 'sales.dlq',
      source: 'sales',
      count: 3,
      firstReason: 'pipeline: group key region is undefined (2)',
      firstView: 'totals',
    },
  ]);
  assert.deepEqual(await deadLetterTopics(log, { reasons: false }), [
    { topic: 'sales.dlq', source: 'sales', count: 3, firstReason: null, firstView: null },
  ]);
});
