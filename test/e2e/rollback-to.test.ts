/**
 * Rollback to a chosen version: with three versions of a view (two retired, kept by keepVersions),
 * `POST /v1/views/:view/rollback?version=N`, a request from another process (what `kappa rollback
 * <view> --to N` leaves when `kappa start` runs) and `kappa rollback --to N` bring back exactly the
 * version asked for, not just the previous one. A live, dropped or never-built version, or a
 * version that is not a number, is refused with an error that says which versions one can roll
 * back to, and nothing changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { runKappa } from '../support/processes.ts';
import { type Harness, SRC, call, postJson, startHarness } from './server-harness.ts';

const config = `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ region: Type.String({ minLength: 1 }), cents: Type.Integer() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.region });
export default defineApp({
  topics: [sales],
  views: [view('sales_totals', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ cents: sum((s) => s.cents), n: count() }), { keepVersions: 3 })],
});
`;

async function until(what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('rollback to a chosen version', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(config);
  });
  after(() => h.close());

  const states = async (): Promise<[number, string][]> =>
    (await h.store.versions()).filter((v) => v.name === 'sales_totals').map((v) => [v.version, v.state]);
  const live = async (): Promise<number | undefined> => (await states()).find(([, state]) => state === 'live')?.[0];

  test(
    'brings back the version asked for; refuses live, dropped, unknown and malformed versions',
    { timeout: 90_000 },
    async () => {
      const sales = Array.from({ length: 40 }, (_, i) => ({ region: `r${i % 4}`, cents: i }));
      assert.equal((await postJson(h.url, '/v1/topics/sales/records', sales)).status < 300, true);
      // A replay of a view still in its first build is refused (409, no live version yet): wait for it.
      await until('version 1 is live', async () => (await live()) === 1 && h.engine.builds().length === 0);
      for (const version of [2, 3]) {
        const r = await postJson(h.url, '/v1/views/sales_totals/replay', {});
        assert.equal(r.status, 202, r.text);
        await until(
          `version ${version} is live`,
          async () => (await live()) === version && h.engine.builds().length === 0,
        );
      }
      assert.deepEqual(await states(), [
        [1, 'retired'],
        [2, 'retired'],
        [3, 'live'],
      ]);

      const refused: [string, number, RegExp][] = [
        ['3', 409, /Version 3 of view "sales_totals" is already live.*roll back to: 1, 2/],
        ['9', 404, /has no version 9 to roll back to: it was never built or has been dropped.*1, 2/],
        ['abc', 400, /\?version=abc is not a version number/],
        ['0', 400, /\?version=0 is not a version number/],
      ];
      for (const [version, status, message] of refused) {
        const r = await postJson(h.url, `/v1/views/sales_totals/rollback?version=${version}`, {});
        assert.equal(r.status, status, r.text);
        assert.match((r.body as { error: { message: string } }).error.message, message);
      }
      assert.deepEqual(await states(), [
        [1, 'retired'],
        [2, 'retired'],
        [3, 'live'],
      ]);
      assert.deepEqual(h.engine.builds(), [], 'a refused rollback starts nothing');

      // Version 1, not the previous one (2).
      const back = await postJson(h.url, '/v1/views/sales_totals/rollback?version=1', {});
      assert.equal(back.status, 202, back.text);
      assert.equal((back.body as { version: number }).version, 1);
      await until('version 1 is live again', async () => (await live()) === 1 && h.engine.builds().length === 0);
      const rows = (await call(h.url, 'GET', '/v1/views/sales_totals')).body as { rows: { n: number }[] };
      assert.equal(
        rows.rows.reduce((n, r) => n + r.n, 0),
        40,
        'the version rolled back to has caught up with every record',
      );

      // From another process, as `kappa rollback sales_totals --to 2` does while `kappa start` runs.
      const other = await openSqliteStore({ path: `${h.dir}/views.db` });
      try {
        const id = await other.addRequest('sales_totals', 'rollback', '2');
        await until('the request is answered', async () => (await other.request(id))?.state === 'done');
        assert.equal((await other.request(id))?.version, 2);
        await until('version 2 is live again', async () => (await live()) === 2 && h.engine.builds().length === 0);
        const bad = await other.addRequest('sales_totals', 'rollback', '2');
        await until('the second request is answered', async () => (await other.request(bad))?.state === 'failed');
        assert.match((await other.request(bad))?.message ?? '', /Version 2 of view "sales_totals" is already live/);
      } finally {
        await other.close();
      }

      const cli = await runKappa(['--data-dir', h.dir, 'rollback', 'sales_totals', '--to', 'two']);
      assert.notEqual(cli.code, 0);
      assert.match(cli.stderr, /--to two is not a version number: give a whole number such as --to 2/);
      assert.equal(await live(), 2, 'the refused command changed nothing');
    },
  );
});
