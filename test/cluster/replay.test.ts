/**
 * `kappa replay` and `kappa rollback` against a cluster (`--store postgres://…`): the request goes
 * through the store to the coordinator, whichever process that is; the build's tasks run in both
 * processes, and the swap happens once the store's checkpoints show every partition caught up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startKappaWithKafka } from '../support/kafka-clients.ts';
import { runKappa } from '../support/processes.ts';
import { postgresForFile } from '../support/postgres.ts';
import {
  type Member,
  PARTITIONS,
  expectedTotals,
  pgClient,
  startMember,
  startProducer,
  stopMember,
  viewEquals,
  waitUntil,
  writeConfig,
} from './support.ts';

const postgres = postgresForFile();

test(
  'replay and rollback through the store: the coordinator builds, both processes fold, one swap',
  { timeout: 240_000 },
  async (t) => {
    const storeUrl = await (await postgres()).freshDatabase();
    const broker = await startKappaWithKafka(t, {
      topics: [
        { name: 'sales', partitions: PARTITIONS },
        { name: 'big_sales', partitions: 2 },
      ],
    });
    const config = writeConfig(t, 1);
    const members: Member[] = [];
    let passed = false;
    t.after(() => {
      if (!passed) for (const m of members) t.diagnostic(`--- ${m.name}\n${m.child.stderr.slice(-4000)}`);
    });
    for (const name of ['a', 'b']) members.push(await startMember(t, name, config, broker.bootstrap, storeUrl));
    const producer = startProducer(broker.bootstrap);
    t.after(() => producer.stop());
    const db = pgClient(storeUrl);
    await db.connect();
    t.after(() => db.end());
    const live = async (): Promise<number | null> => {
      const { rows } = await db.query(
        "SELECT version FROM kappa_views WHERE name = 'region_totals' AND state = 'live'",
      );
      return rows.length === 1 ? Number(rows[0].version) : null;
    };
    await waitUntil('version 1 live with rows', async () => (await live()) === 1 && producer.acked.length > 1000);

    const replay = await runKappa(['replay', 'region_totals', '--store', storeUrl, '--config', config], { t });
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stderr, /building version 2/);
    assert.equal(await live(), 2, 'kappa replay follows the build until version 2 is live');

    const rollback = await runKappa(['rollback', 'region_totals', '--store', storeUrl, '--config', config], { t });
    assert.equal(rollback.code, 0, rollback.stderr);
    assert.equal(await live(), 1, 'kappa rollback brings version 1 back');

    await producer.stop();
    await waitUntil('the view to equal the fold', () => viewEquals(db, expectedTotals(producer.acked)), 120_000);
    for (const m of members) await stopMember(m);
    passed = true;
  },
);
