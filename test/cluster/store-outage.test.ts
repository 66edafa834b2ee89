/**
 * A cluster cut off from its PostgreSQL: two `kappa start` processes on one Kafka-protocol log and
 * one PostgreSQL, sales arriving continuously. The PostgreSQL server is stopped for longer than the
 * session timeout (nothing can commit: flushes, lease renewals and heartbeats all fail), then
 * started again. Both processes ride it out — no exit — take their tasks back, and at the end the
 * view equals the fold of every acknowledged sale and the output holds each big sale once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPostgres } from '../support/postgres.ts';
import {
  ClusterFixture,
  PARTITIONS,
  SESSION_TIMEOUT_MS,
  expectedTotals,
  leaseOwners,
  pgClient,
  readIds,
  startProducer,
  stopMember,
  viewEquals,
  waitUntil,
  writeConfig,
} from './support.ts';

const TASKS = 2 * PARTITIONS + 1;

test(
  'processes cut off from PostgreSQL commit nothing meanwhile, stay up, and resume exactly once',
  { timeout: 240_000 },
  async (t) => {
    const pgServer = await startPostgres(t);
    const cluster = await ClusterFixture.start(t, await pgServer.freshDatabase());
    const { storeUrl, broker } = cluster;
    const config = writeConfig(t, 1);
    for (const name of ['a', 'b']) await cluster.member(name, config);
    const members = cluster.members;
    const producer = startProducer(broker.bootstrap);
    t.after(() => producer.stop());

    const owned = async (): Promise<number> => {
      const db = pgClient(storeUrl);
      await db.connect();
      try {
        const o = await leaseOwners(db);
        return o.size === 2 ? [...o.values()].reduce((a, b) => a + b, 0) : 0;
      } finally {
        await db.end();
      }
    };
    await waitUntil('every task owned by the two processes', async () => (await owned()) === TASKS);
    await waitUntil('some sales acknowledged', async () => producer.acked.length > 500);

    await pgServer.stop();
    await new Promise((r) => setTimeout(r, 2 * SESSION_TIMEOUT_MS));
    for (const m of members) assert.ok(m.child.running, `${m.name} stayed up while PostgreSQL was down`);
    await pgServer.start();

    await waitUntil('every task owned again by the two processes', async () => (await owned()) === TASKS);
    await producer.stop();
    assert.deepEqual(producer.errors, []);
    // The fixture's client lost its connection with the server: a new one.
    const db = pgClient(storeUrl);
    await db.connect();
    t.after(() => db.end());
    await waitUntil('the view to equal the fold', () => viewEquals(db, expectedTotals(producer.acked)), 120_000);
    const big = producer.acked.filter((s) => s.amount >= 90).map((s) => s.id);
    await waitUntil(
      'big_sales to hold every big sale',
      async () => (await readIds(broker.url)).length >= big.length,
    ).catch(async (err: Error) => {
      // Which big sales are missing (and whether any came twice) says whether outputs were lost or only late.
      const got = await readIds(broker.url);
      const missing = big.filter((id) => !got.includes(id));
      const twice = got.filter((id, i) => got.indexOf(id) !== i);
      throw new Error(
        `${err.message}; big_sales holds ${got.length} of ${big.length}: missing ids ${JSON.stringify(missing.slice(0, 50))}, twice ${JSON.stringify(twice.slice(0, 50))}`,
        { cause: err },
      );
    });
    assert.deepEqual(
      (await readIds(broker.url)).sort((x, y) => x - y),
      big.sort((x, y) => x - y),
    );
    for (const m of members) {
      assert.match(m.child.stderr, /cannot be reached/, `${m.name} said the store was out of reach`);
      await stopMember(m);
    }
    cluster.passed();
  },
);
