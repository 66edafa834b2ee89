/**
 * Several `kappa start` processes sharing one Kafka-protocol log (a fourth Kappa's Kafka listener)
 * and one PostgreSQL database, with sales arriving continuously through the Kafka protocol
 * (kafkajs, idempotent, acks=all). While they run: one process is SIGKILLed (its tasks move),
 * another is SIGSTOPped past the session timeout and then continued (its writes are fenced and it
 * rejoins), a fourth joins (tasks rebalance), and a logic change is rolled out process by process
 * (the new coordinator builds a new version, which goes live while processes come and go).
 *
 * At the end the view equals a fold of every acknowledged sale (exactly once), the output topic
 * holds each big sale exactly once, and a reader polling the public SQL view straight from
 * PostgreSQL throughout never got an error or a partial view.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postgresForFile } from '../support/postgres.ts';
import type { OwnedChild } from '../support/processes.ts';
import {
  ClusterFixture,
  type Member,
  PARTITIONS,
  leaseOwners,
  ownedByPid,
  readIds,
  stopMember,
  viewEquals,
  REGIONS,
  SESSION_TIMEOUT_MS,
  expectedTotals,
  pgClient,
  startProducer,
  waitUntil,
  writeConfig,
} from './support.ts';

const postgres = postgresForFile();
/** Leases: a view task, an output task and an alert task per source partition, and the coordinator's. */
const TASKS = 3 * PARTITIONS + 1;

test(
  'three processes share the work; a killed, a paused, a new process and a logic change lose or double nothing',
  { timeout: 420_000 },
  async (t) => {
    const cluster = await ClusterFixture.start(t, await (await postgres()).freshDatabase());
    const { broker, db } = cluster;
    const v1 = writeConfig(t, 1, PARTITIONS, true);
    const v2 = writeConfig(t, 2, PARTITIONS, true);
    const start = (name: string, config: string, workers = 0): Promise<Member> => cluster.member(name, config, workers);
    const owners = (): Promise<Map<string, number>> => leaseOwners(db);
    const ownedBy = (child: OwnedChild): Promise<number> => ownedByPid(db, child.pid);
    const allOwned = async (): Promise<number> => [...(await owners()).values()].reduce((a, b) => a + b, 0);

    const m1 = await start('m1', v1);
    const m2 = await start('m2', v1);
    const m3 = await start('m3', v1);
    const producer = startProducer(broker.bootstrap);
    t.after(() => producer.stop());

    // A reader of the public view, as psql or Grafana reads it, all along.
    const reader = pgClient(cluster.storeUrl);
    await reader.connect();
    t.after(() => reader.end());
    const readErrors: string[] = [];
    let reads = 0;
    let reading = true;
    const readLoop = (async () => {
      while (reading) {
        try {
          const { rows } = await reader.query('SELECT * FROM region_totals');
          if (rows.length > REGIONS.length) readErrors.push(`${rows.length} rows: more than one version's?`);
          reads++;
        } catch (err) {
          // Before the first rows the view does not exist yet.
          if (reads > 0) readErrors.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    await waitUntil('every task owned, by all three processes', async () => {
      const o = await owners();
      return o.size === 3 && (await allOwned()) === TASKS;
    });
    await waitUntil('rows in the view', async () => reads > 0 && producer.acked.length > 500);

    // SIGKILL: its tasks move to the others once its session times out.
    m1.child.kill('SIGKILL');
    await waitUntil('the killed process owns nothing and every task is owned again', async () => {
      return (await ownedBy(m1.child)) === 0 && (await allOwned()) === TASKS && (await owners()).size === 2;
    });

    // SIGSTOP past the session timeout: the others take its tasks (new epochs); once continued,
    // its writes are fenced, it lets them go, and it rejoins and gets its share again.
    m2.child.kill('SIGSTOP');
    // Its leases lapse after the session timeout, but only once the others hold every task did
    // they take its tasks: before that, a process continued in time may renew leases nobody took
    // (and has nothing to let go), which a slow machine showed.
    await waitUntil(
      'the others hold every task, the paused process none',
      async () => (await ownedBy(m2.child)) === 0 && (await allOwned()) === TASKS,
    );
    await new Promise((r) => setTimeout(r, SESSION_TIMEOUT_MS));
    m2.child.kill('SIGCONT');
    await waitUntil('the continued process owns tasks again', async () => (await ownedBy(m2.child)) > 0);
    assert.ok(m2.child.running, `the continued process ended:\n${m2.child.stderr.slice(-3000)}`);
    // It says so once its old tasks are dropped, which may end after it took new ones.
    await waitUntil('the continued process let its old tasks go', async () =>
      /moved to another process/.test(m2.child.stderr),
    );

    // A fourth process joins: tasks rebalance onto it.
    const m4 = await start('m4', v1, 1); // its tasks fold on a worker thread
    await waitUntil('the new process owns tasks', async () => (await ownedBy(m4.child)) > 0);

    // The logic change, rolled out: a process with the new config joins, the old ones stop; the
    // one that becomes coordinator builds version 2, while processes come and go.
    const m5 = await start('m5', v2);
    for (const m of [m2, m3, m4]) await stopMember(m);
    await waitUntil('a build of version 2', async () => {
      const { rows } = await db.query("SELECT version FROM kappa_views WHERE name = 'region_totals'");
      return rows.some((r) => Number(r.version) === 2);
    });
    const m6 = await start('m6', v2);
    const m7 = await start('m7', v2);
    m6.child.kill('SIGKILL');
    await waitUntil(
      'version 2 live',
      async () => {
        const { rows } = await db.query("SELECT version, state FROM kappa_views WHERE name = 'region_totals'");
        return rows.some((r) => Number(r.version) === 2 && r.state === 'live');
      },
      240_000,
    );

    await producer.stop();
    assert.deepEqual(producer.errors, [], 'every produce was acknowledged');
    const expected = expectedTotals(producer.acked);
    await waitUntil('the view to equal the fold of every acknowledged sale', () => viewEquals(db, expected), 120_000);
    reading = false;
    await readLoop;
    assert.deepEqual(readErrors, [], 'the public view answered every read, from one version');
    assert.ok(reads > 50, `the reader read the view throughout (${reads} reads)`);

    // The output: every big sale exactly once in big_sales.
    const big = producer.acked.filter((s) => s.amount >= 90).map((s) => s.id);
    await waitUntil('big_sales to hold every big sale', async () => (await readIds(broker.url)).length >= big.length);
    const ids = await readIds(broker.url);
    assert.equal(ids.length, big.length, 'no big sale twice');
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      [...big].sort((a, b) => a - b),
    );
    // The alerts: one per big sale, exactly once, though their tasks moved and rebuilt their state
    // from the start of the log on every move (and re-sent what the log then dropped).
    await waitUntil(
      'an alert for every big sale',
      async () => (await readIds(broker.url, 'alerts')).length >= big.length,
    );
    const alerted = await readIds(broker.url, 'alerts');
    assert.equal(alerted.length, big.length, 'no alert twice');
    assert.deepEqual(
      [...alerted].sort((a, b) => a - b),
      [...big].sort((a, b) => a - b),
    );
    for (const m of [m5, m7]) await stopMember(m);
    cluster.passed();
  },
);
