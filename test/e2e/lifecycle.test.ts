/**
 * Lifecycle commands on a data directory that `kappa start` has filled: `kappa topics delete`
 * (refused while a view or output uses the topic, unless --force, which drops the views reading it
 * and sets the outputs reading it back to its start; its dead-letter and late topics go with it;
 * refused while `kappa start` holds the directory) and `kappa views drop` (every version, needs --yes, refused while
 * `kappa start` runs). Each refusal changes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { kappaInProcess as kappa } from '../support/cli.ts';
import type { Log } from '../../src/log/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { engineCaughtUp, openKappa } from '../support/kappa.ts';
import { type Owner, startKappa, waitFor } from '../support/processes.ts';
import { bigSalesConfig, tempDataProject } from '../support/project.ts';

const POLL = { timeoutMs: 30_000, intervalMs: 50 };

/** bigSalesConfig run over 40 sales until every view and the output have flushed; then stopped. */
async function filledProject(t: Owner): Promise<{ d: string[]; dir: string; config: string }> {
  const { dir, config } = tempDataProject(t, 'kappa-lifecycle-', bigSalesConfig({ bigCents: 500 }));
  const k = await openKappa({ dir, configPath: config, t });
  const sales = Array.from({ length: 40 }, (_, i) => ({
    key: String(i),
    value: JSON.stringify({ id: i, region: ['eu', 'us'][i % 2], cents: i * 25, ts: 1_700_000_000_000 + i * 1000 }),
  }));
  await k.log.append('sales', sales);
  await waitFor(
    'every view to hold rows',
    async () => {
      const rows = await k.store.versions();
      return rows.length === 3 && rows.every((v) => v.rows > 0) ? rows : null;
    },
    POLL,
  );
  // Rows are there after a first flush, not every sale: the tests read the views as final (a later
  // start would fold the rest, under a test that compares a row before and after one new sale). The
  // first catch-up finishes the output's appends to big_sales; the second, big_by_region's reads of them.
  await engineCaughtUp(k.engine, k.log);
  await engineCaughtUp(k.engine, k.log);
  await k.close();
  return { d: ['--data-dir', dir, '--config', config], dir, config };
}

/** The values in a topic's dead letters, every partition. */
async function deadLetters(log: Log, topic: string): Promise<string[]> {
  const out: string[] = [];
  for (let p = 0; p < (await log.topic(`${topic}.dlq`)).partitions; p++)
    for await (const batch of log.read(`${topic}.dlq`, p, 0))
      for (const r of batch.records()) out.push(r.value!.toString());
  return out;
}

/** A sale that does not fit the schema (its cents are text): a dead letter of every pipeline reading sales. */
const badSale = (cents: string) => ({
  key: '7',
  value: JSON.stringify({ id: 7, region: 'eu', cents, ts: 1_700_000_050_000 }),
});

const topicNames = async (d: string[]): Promise<string[]> =>
  (JSON.parse((await kappa([...d, 'topics', 'list', '--json'])).stdout) as { name: string }[]).map((x) => x.name);
const viewNames = async (d: string[]): Promise<string[]> => [
  ...new Set((JSON.parse((await kappa([...d, 'views', '--json'])).stdout) as { name: string }[]).map((x) => x.name)),
];

test(
  'topics delete: refused while views or outputs use the topic, done for an unused one',
  { timeout: 60_000 },
  async (t) => {
    const { d, dir } = await filledProject(t);
    assert.equal((await kappa([...d, 'topics', 'create', 'scratch'])).code, 0);
    const before = await topicNames(d);

    const refused = await kappa([...d, 'topics', 'delete', 'sales']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Topic "sales" was not deleted/);
    assert.match(refused.stderr, /view "by_region" \(reads it\)/);
    assert.match(refused.stderr, /view "per_minute" \(reads it\)/);
    assert.match(refused.stderr, /output "sales_to_big_sales" \(reads it\)/);
    assert.match(refused.stderr, /--force` to delete it anyway: that drops views "by_region", "per_minute"/);
    assert.match(refused.stderr, /sets output "sales_to_big_sales" back to the start of "sales"/);
    const written = await kappa([...d, 'topics', 'delete', 'big_sales']);
    assert.equal(written.code, 1);
    assert.match(written.stderr, /output "sales_to_big_sales" \(writes it\)/);
    assert.match(written.stderr, /view "big_by_region" \(reads it\)/);
    assert.match(written.stderr, /or run `kappa topics delete big_sales --force`/);
    assert.deepEqual(await topicNames(d), before, 'a refusal deletes nothing');

    const nowhere = `${dir}-typo`;
    for (const args of [
      ['topics', 'delete', 'sales'],
      ['views', 'drop', 'by_region', '--yes'],
    ]) {
      const r = await kappa(['--data-dir', nowhere, ...args]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /there is no Kappa data directory at .*-typo/);
      assert.ok(!existsSync(nowhere), 'a mistyped --data-dir is not created');
    }

    const unknown = await kappa([...d, 'topics', 'delete', 'sale']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /There is no topic "sale".*its topics are: .*sales/);

    // A table read from the topic, as the view store keeps it: forgotten with the topic.
    const views = await openSqliteStore({ path: join(dir, 'views.db') });
    const part = { partition: 0, offset: 3, maxEventMs: 0, watermarkMs: 0 };
    await views.tables!.save('scratch:0123', { keys: [], versions: [], partitions: [part], prunedBelowMs: 0 });
    await views.close();
    const ok = await kappa([...d, 'topics', 'delete', 'scratch']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /deleted topic "scratch"/);
    assert.match(ok.stdout, /forgot the tables read from "scratch"/);
    const after = await openSqliteStore({ path: join(dir, 'views.db') });
    assert.equal(await after.tables!.load('scratch:0123'), null);
    await after.close();
    assert.deepEqual(
      await topicNames(d),
      before.filter((n) => n !== 'scratch'),
    );
    assert.deepEqual(await viewNames(d), ['big_by_region', 'by_region', 'per_minute']);
  },
);

test(
  'topics delete --force deletes the topic and drops the views that read it; the next start rebuilds them',
  { timeout: 60_000 },
  async (t) => {
    const { d, dir, config } = await filledProject(t);
    const forced = await kappa([...d, 'topics', 'delete', 'big_sales', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /deleted topic "big_sales"/);
    assert.match(forced.stdout, /dropped view "big_by_region" \(version 1\)/);
    assert.match(forced.stdout, /the next `kappa start` creates it again, empty/);
    assert.ok(!(await topicNames(d)).includes('big_sales'));
    assert.deepEqual(await viewNames(d), ['by_region', 'per_minute'], 'the views of the other topic stay');

    // The config still has the topic, its view and the output writing it: a start brings them back,
    // with only what the output writes from now on.
    const k = await openKappa({ dir, configPath: config, t });
    await k.log.append('sales', [
      { key: 'x', value: JSON.stringify({ id: 100, region: 'eu', cents: 900, ts: 1_700_000_100_000 }) },
    ]);
    const rows = await waitFor(
      'big_by_region rebuilt from the new big sale',
      async () => {
        const r = await k.store.query('SELECT region, cents, orders FROM big_by_region').catch(() => null);
        return r !== null && r.rows.length > 0 ? r.rows : null;
      },
      POLL,
    );
    assert.deepEqual(rows, [{ region: 'eu', cents: 900, orders: 1 }]);
    await k.close();
  },
);

test(
  'topics delete --force with an output reading the topic: the output is set back to its start, sequences kept; the next start runs clean and writes the new records',
  { timeout: 120_000 },
  async (t) => {
    const { d, dir, config } = await filledProject(t);
    const positions = async (): Promise<
      { topic: string; partition: number; offset: number; sequences: number[] }[]
    > => {
      const k = await openKappa({ dir, configPath: config, start: false, t });
      try {
        return await k.store.outputCheckpoints('sales_to_big_sales');
      } finally {
        await k.close();
      }
    };
    // A dead letter in sales.dlq, numbered by its offset in the old sales.
    const first = await openKappa({ dir, configPath: config, t });
    await first.log.append('sales', [badSale('old')]);
    await waitFor(
      'the old dead letter',
      async () => ((await deadLetters(first.log, 'sales')).length > 0 ? true : null),
      POLL,
    );
    await first.close();
    const before = await positions();
    assert.ok(
      before.some((c) => c.offset > 0) && before.some((c) => c.sequences.some((q) => q > 0)),
      JSON.stringify(before),
    );

    const refused = await kappa([...d, 'topics', 'delete', 'sales']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /output "sales_to_big_sales" \(reads it\), view "by_region" \(reads it\)/);
    assert.match(refused.stderr, /sets output "sales_to_big_sales" back to the start of "sales"/);
    assert.ok((await topicNames(d)).includes('sales'), 'a refusal deletes nothing');
    assert.deepEqual(await viewNames(d), ['big_by_region', 'by_region', 'per_minute']);
    assert.deepEqual(await positions(), before, 'a refusal moves no output');

    const forced = await kappa([...d, 'topics', 'delete', 'sales', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /deleted topic "sales" and its side topics "sales.dlq", "sales.late"/);
    assert.match(forced.stdout, /dropped view "by_region"/);
    assert.match(forced.stdout, /output "sales_to_big_sales" will read "sales" from its first record/);
    assert.deepEqual(
      (await topicNames(d)).filter((n) => n.startsWith('sales')),
      [],
      'its dead letters and late events went with it',
    );
    const reset = await positions();
    assert.deepEqual(
      reset,
      before.map((c) => ({ ...c, offset: 0 })),
      'offsets back to 0, sequences kept',
    );

    // kappa start creates the topic again and runs clean.
    const child = startKappa(t, [...d, 'start', '--no-server', '--workers', '0']);
    await child.waitForOutput(/kappa: running/, { timeoutMs: 60_000 });
    const exit = await child.stop();
    // Stopped by our signal (code 0 once its handler is installed; SIGTERM just before): no failure.
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `${JSON.stringify(exit)}\n${child.stderr}`);
    assert.doesNotMatch(child.stdout + child.stderr, /error|fail|backwards/i, child.stdout + child.stderr);

    // A big sale in the new topic reaches big_sales (read from offset 0 of the new topic, written
    // under the next sequences, so the log does not drop it as a re-sent record).
    const k = await openKappa({ dir, configPath: config, t });
    const old = (await k.store.query("SELECT cents, orders FROM big_by_region WHERE region = 'eu'")).rows[0];
    await k.log.append('sales', [
      { key: 'x', value: JSON.stringify({ id: 100, region: 'eu', cents: 900, ts: 1_700_000_100_000 }) },
    ]);
    const eu = await waitFor(
      'the new big sale in big_by_region',
      async () => {
        const r = (await k.store.query("SELECT cents, orders FROM big_by_region WHERE region = 'eu'")).rows[0];
        return r.orders === Number(old.orders) + 1 ? r : null;
      },
      POLL,
    );
    assert.deepEqual(eu, { cents: Number(old.cents) + 900, orders: Number(old.orders) + 1 });
    // A dead letter of the new topic reaches sales.dlq (the old one would have taken it for a re-sent record).
    await k.log.append('sales', [badSale('new')]);
    const dead = await waitFor(
      'the new dead letter',
      async () => {
        const values = await deadLetters(k.log, 'sales');
        return values.length > 0 ? values : null;
      },
      POLL,
    );
    assert.ok(
      dead.every((v) => v.includes('"new"')),
      JSON.stringify(dead),
    );
    await k.close();
  },
);

test(
  'views drop: says what it would drop without --yes, drops every version with it',
  { timeout: 60_000 },
  async (t) => {
    const { d } = await filledProject(t);
    const asked = await kappa([...d, 'views', 'drop', 'by_region']);
    assert.equal(asked.code, 1);
    assert.match(asked.stderr, /This would drop view "by_region" \(v1 live, 2 rows\).*Nothing was dropped.*--yes/s);
    assert.deepEqual(await viewNames(d), ['big_by_region', 'by_region', 'per_minute']);

    const unknown = await kappa([...d, 'views', 'drop', 'by_regio', '--yes']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /There is no view "by_regio".*by_region/);

    const dropped = await kappa([...d, 'views', 'drop', 'by_region', '--yes']);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.match(dropped.stdout, /dropped view "by_region"/);
    assert.deepEqual(await viewNames(d), ['big_by_region', 'per_minute']);
    const gone = await kappa([...d, 'query', 'SELECT * FROM by_region']);
    assert.equal(gone.code, 1);
    // The topic it read is free now for `topics delete` as far as the stored views go.
    const lag = JSON.parse((await kappa([...d, 'lag', '--json'])).stdout) as { view: string }[];
    assert.ok(!lag.some((r) => r.view === 'by_region'));
  },
);

test(
  'topics delete and views drop are refused while kappa start runs, and change nothing',
  { timeout: 90_000 },
  async (t) => {
    const { d } = await filledProject(t);
    const child = startKappa(t, [...d, 'start', '--no-server', '--workers', '0']);
    // Probing with a command would race kappa start for the lock: wait for its banner instead.
    await child.waitForOutput(/kappa: running/, { timeoutMs: 60_000 });
    const drop = await kappa([...d, 'views', 'drop', 'by_region', '--yes']);
    assert.match(
      drop.stderr,
      new RegExp(`Cannot drop view "by_region" while Kappa is running .*process ${child.pid}.*Stop it first`),
    );
    const del = await kappa([...d, 'topics', 'delete', 'sales', '--force']);
    assert.equal(del.code, 1);
    assert.match(del.stderr, /Cannot delete topic "sales" while Kappa is running.*Stop it first/);
    await child.stop();
    assert.deepEqual(await viewNames(d), ['big_by_region', 'by_region', 'per_minute']);
    assert.ok((await topicNames(d)).includes('sales'));
  },
);
