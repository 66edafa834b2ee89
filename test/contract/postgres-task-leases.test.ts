/**
 * Runs the TaskLeases contract on the PostgreSQL adapter (the leases and the fenced store writes
 * on one database), against a real PostgreSQL server this file starts (test/support/postgres.ts),
 * each test on a fresh database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { taskId } from '../../src/view/index.ts';
import { openPostgresStore } from '../../src/view/postgres/index.ts';
import { cp, rejectsWith, sale, salesDef, tagsDef } from '../../src/view/test-helpers.ts';
import { defer } from '../support/cleanup.ts';
import { openPostgresHarness, postgresForFile, startPostgres } from '../support/postgres.ts';
import { taskLeasesContract } from './task-leases.contract.ts';

const server = postgresForFile();

taskLeasesContract('PostgreSQL', async () => {
  const h = await openPostgresHarness(await server());
  return {
    leases: h.store.leases,
    second: async () => (await h.second()).leases,
    store: h.store,
    cleanup: () => h.cleanup(),
  };
});

test(
  'a process frozen inside a fenced flush holds the task only until responseTimeoutMs: then another takes it',
  { timeout: 60_000 },
  async (t) => {
    const url = await (await server()).freshDatabase();
    // The frozen process: its custom merge blocks its thread for 3 s after the fence took the row.
    const frozen = await openPostgresStore({ connectionString: url, responseTimeoutMs: 500 });
    const other = await openPostgresStore({ connectionString: url });
    defer(t, () => Promise.all([frozen.close(), other.close()]));
    const task = taskId('view', 'tags', 1, 'sales', 0);
    for (const store of [frozen, other]) await store.ensureVersion(tagsDef(() => store === frozen && block(3_000)));
    await frozen.leases.heartbeat({ id: 'a', host: 'h', pid: 1, httpUrl: null, startedAtMs: 0 }, 500);
    await other.leases.heartbeat({ id: 'b', host: 'h', pid: 2, httpUrl: null, startedAtMs: 0 }, 60_000);
    const mine = (await frozen.leases.acquire(task, 'a', 500))!;
    await frozen.flush('tags', 1, [{ key: [1], state: [1, ['x']] }], [cp(1)], { task, epoch: mine });
    const stuck = frozen.flush('tags', 1, [{ key: [1], state: [1, ['y']] }], [cp(2)], { task, epoch: mine });
    // While the merge blocks, nothing of this process runs: the server ends its idle transaction.
    await rejectsWith(stuck, 'KAPPA_STORE_UNAVAILABLE');
    const theirs = await other.leases.acquire(task, 'b', 60_000);
    assert.ok(theirs !== null && theirs > mine);
    assert.deepEqual(await other.checkpoints('tags', 1), [cp(1)]);
    assert.deepEqual(await other.query('SELECT events FROM tags').then((r) => r.rows), [{ events: 1 }]);
  },
);

test(
  'a fenced flush cut off with the connection is never applied twice: sent again, it is fenced, and the checkpoint says whether it committed',
  { timeout: 120_000 },
  async (t) => {
    const own = await startPostgres(t);
    const url = await own.freshDatabase();
    const store = await openPostgresStore({ connectionString: url, connectTimeoutMs: 1_000, responseTimeoutMs: 1_000 });
    defer(t, () => store.close());
    const task = taskId('view', 'sales', 1, 'sales', 0);
    await store.ensureVersion(salesDef());
    await store.leases.heartbeat({ id: 'a', host: 'h', pid: 1, httpUrl: null, startedAtMs: 0 }, 60_000);
    const first = (await store.leases.acquire(task, 'a', 60_000))!;
    await store.flush('sales', 1, [sale('eu', 2024, 1)], [cp(1)], { task, epoch: first });
    const again = () => store.flush('sales', 1, [sale('eu', 2024, 1)], [cp(2)], { task, epoch: first });
    own.pause(); // the server gets the flush's statements, COMMIT included, but answers nothing
    try {
      await rejectsWith(again(), 'KAPPA_STORE_UNAVAILABLE');
    } finally {
      own.resume(); // ... and may commit them now, after the client gave up
    }
    // The engine sends the same write again once the store answers: it must not count twice.
    await rejectsWith(again(), 'KAPPA_FENCED', /may have committed/);
    const next = (await store.leases.acquire(task, 'a', 60_000))!;
    assert.ok(next > first + 1, 'the epoch moved past the doubtful write, then the new acquire');
    const [checkpoint] = await store.checkpoints('sales', 1);
    const total = async () => (await store.query('SELECT total FROM sales')).rows[0].total;
    assert.equal(await total(), checkpoint.offset, 'the rows hold exactly the writes the checkpoint says');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await total(), checkpoint.offset, 'and nothing lands later');
  },
);

/** Keeps this thread busy for `ms` (a stop-the-world pause, as far as the server can tell). */
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}
