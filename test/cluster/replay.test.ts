/**
 * `kappa replay` and `kappa rollback` against a cluster (`--store postgres://…`): the request goes
 * through the store to the coordinator, whichever process that is; the build's tasks run in both
 * processes, and the swap happens once the store's checkpoints show every partition caught up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKappa } from '../support/processes.ts';
import { postgresForFile } from '../support/postgres.ts';
import {
  ClusterFixture,
  expectedTotals,
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
    const cluster = await ClusterFixture.start(t, await (await postgres()).freshDatabase());
    const config = writeConfig(t, 1);
    for (const name of ['a', 'b']) await cluster.member(name, config);
    const producer = startProducer(cluster.broker.bootstrap);
    t.after(() => producer.stop());
    await waitUntil(
      'version 1 live with rows',
      async () => (await cluster.liveVersion()) === 1 && producer.acked.length > 1000,
    );

    const store = ['--store', cluster.storeUrl, '--config', config];
    const replay = await runKappa(['replay', 'region_totals', ...store], { t });
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stderr, /building version 2/);
    assert.equal(await cluster.liveVersion(), 2, 'kappa replay follows the build until version 2 is live');

    const rollback = await runKappa(['rollback', 'region_totals', ...store], { t });
    assert.equal(rollback.code, 0, rollback.stderr);
    assert.equal(await cluster.liveVersion(), 1, 'kappa rollback brings version 1 back');

    await producer.stop();
    await waitUntil(
      'the view to equal the fold',
      () => viewEquals(cluster.db, expectedTotals(producer.acked)),
      120_000,
    );
    for (const m of cluster.members) await stopMember(m);
    cluster.passed();
  },
);
