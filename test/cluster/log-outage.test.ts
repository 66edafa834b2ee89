/**
 * A cluster cut off from its Kafka log: two `kappa start` processes (one folding on its main thread,
 * one on a worker thread) on one Kafka-protocol log and one PostgreSQL, sales arriving. The broker
 * is paused (SIGSTOP: connections stay open, nothing answers) for longer than KafkaLog's own
 * retries, so reads, offsets and output appends fail with KAPPA_LOG_UNAVAILABLE; then it continues.
 * Both processes ride it out — no exit, no task failed — and at the end the view equals the fold of
 * every acknowledged sale and the output holds each big sale once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPostgres } from '../support/postgres.ts';
import {
  ClusterFixture,
  expectedTotals,
  readIds,
  startProducer,
  stopMember,
  viewEquals,
  waitUntil,
  writeConfig,
} from './support.ts';

/** KafkaLog gives up on a broker that does not answer after 6 tries of this long each (and a metadata request between). */
const REQUEST_TIMEOUT_MS = 1000;
/** Well past KafkaLog's retries at that timeout (6 tries of 1 s, a 1 s metadata request and a pause between: about 14 s). */
const OUTAGE_MS = 25_000;

test('processes cut off from the Kafka log wait, stay up, and resume exactly once', { timeout: 240_000 }, async (t) => {
  const pgServer = await startPostgres(t);
  const cluster = await ClusterFixture.start(t, await pgServer.freshDatabase());
  const { broker, db } = cluster;
  const config = writeConfig(t, 1);
  const options = `?request-timeout-ms=${REQUEST_TIMEOUT_MS}&connect-timeout-ms=${REQUEST_TIMEOUT_MS}`;
  await cluster.member('local', config, 0, options);
  await cluster.member('threads', config, 1, options);

  // Sales before the outage; the producer stops first, so every sale it sent was acknowledged.
  const before = startProducer(broker.bootstrap);
  await waitUntil('some sales acknowledged', async () => before.acked.length > 500);
  await before.stop();
  await waitUntil('the view to hold them', () => viewEquals(db, expectedTotals(before.acked)));

  broker.child.kill('SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    for (const m of cluster.members) assert.ok(m.child.running, `${m.name} stayed up while the log was out of reach`);
  } finally {
    broker.child.kill('SIGCONT');
  }

  const after = startProducer(broker.bootstrap);
  t.after(() => after.stop());
  await waitUntil('more sales acknowledged', async () => after.acked.length > 500);
  await after.stop();
  assert.deepEqual([...before.errors, ...after.errors], []);
  const acked = [...before.acked, ...after.acked];
  await waitUntil('the view to equal the fold', () => viewEquals(db, expectedTotals(acked)), 120_000);
  const big = acked.filter((s) => s.amount >= 90).map((s) => s.id);
  await waitUntil('big_sales to hold every big sale', async () => (await readIds(broker.url)).length >= big.length);
  assert.deepEqual(
    (await readIds(broker.url)).sort((x, y) => x - y),
    big.sort((x, y) => x - y),
  );
  const said = cluster.members.map((m) => m.child.stderr).join('\n');
  assert.match(said, /the log cannot be reached/, 'a process said it waits for the log');
  assert.doesNotMatch(said, /stopped: /, 'no task failed');
  for (const m of cluster.members) {
    assert.ok(m.child.running, `${m.name} is still up`);
    await stopMember(m);
  }
  cluster.passed();
});
