/**
 * The dashboard of a cluster in a real browser: two `kappa start` processes sharing a Kafka-protocol
 * log (a third Kappa's Kafka listener) and one PostgreSQL database. One process's dashboard lists
 * both processes in its Processes section (this one marked, both live, one coordinator, the tasks
 * each owns) and an owner for every task in Pipelines, the tasks the other process runs included;
 * once the other is SIGKILLed it shows as dead and its tasks come to this one. A single process's
 * dashboard (the third Kappa's) shows neither the section nor the column.
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHROMIUM, launchChromium } from '../support/browser.ts';
import { defer } from '../support/cleanup.ts';
import { openDashboard, shot, waitForText } from '../support/dashboard-page.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { startKappaWithKafka } from '../support/kafka-clients.ts';
import { postgresForFile } from '../support/postgres.ts';
import { waitFor } from '../support/processes.ts';
import { PARTITIONS, startMember, startProducer, writeConfig } from '../cluster/support.ts';

const postgres = postgresForFile();
/** A view task and an output task per source partition. */
const TASKS = 2 * PARTITIONS;

test(
  "a process's dashboard lists every process of the cluster, its health and the owner of every task",
  { timeout: 180_000 },
  async (t) => {
    const chromiumPath = requireDebianPackage(t, CHROMIUM);
    if (chromiumPath === null) return;
    const pgServer = await postgres();
    const storeUrl = await pgServer.freshDatabase();
    const broker = await startKappaWithKafka(t, {
      topics: [
        { name: 'sales', partitions: PARTITIONS },
        { name: 'big_sales', partitions: 2 },
      ],
    });
    const config = writeConfig(t, 1);
    const m1 = await startMember(t, 'm1', config, broker.bootstrap, storeUrl);
    const m2 = await startMember(t, 'm2', config, broker.bootstrap, storeUrl);
    let passed = false;
    t.after(() => {
      if (!passed) for (const m of [m1, m2]) t.diagnostic(`--- ${m.name}\n${m.child.stderr.slice(-2500)}`);
    });
    // A few sales, so the pipelines have something to show.
    const producer = startProducer(broker.bootstrap);
    await waitFor('some sales acknowledged', async () => (producer.acked.length >= 200 ? true : null), {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    await producer.stop();

    const browser = await launchChromium(chromiumPath);
    defer(t, () => browser.close());
    const { page, errors } = await openDashboard(browser, m1.url);
    await waitForText(page, '#status', /^live/, 30_000);
    const member = (m: { child: { pid: number } }) => `#processes tbody tr[data-member*="/${m.child.pid}/"]`;
    const cells = async (sel: string): Promise<string[]> =>
      (await page.locator(`${sel} > td`).allTextContents()).map((s) => s.trim());

    // Both processes, live, each owning tasks; this one marked; one coordinator.
    await waitFor(
      'the Processes section to list both processes, live, owning every task between them',
      async () => {
        if ((await page.locator('#processes tbody tr').count()) !== 2) return null;
        const rows = [await cells(member(m1)), await cells(member(m2))];
        const ok =
          rows.every((c) => c[4] === 'live' && Number(c[5]) > 0) && Number(rows[0][5]) + Number(rows[1][5]) === TASKS;
        return ok ? rows : null;
      },
      { timeoutMs: 60_000, intervalMs: 250, child: m1.child },
    );
    assert.equal(await page.locator('#processes-section').isVisible(), true);
    const self = await cells(member(m1));
    assert.match(self[0], /\(this process\)$/);
    assert.equal(self[1].endsWith(`:${m1.child.pid}`), true, self[1]);
    assert.equal(self[2], m1.url, 'the process links its own dashboard');
    assert.match(self[3], /^\d+\.\d s ago$/);
    const other = await cells(member(m2));
    assert.doesNotMatch(other[0], /this process/);
    assert.equal(other[2], m2.url);
    assert.equal([self[6], other[6]].filter((c) => c === 'yes').length, 1, 'one coordinator');

    // Pipelines: an Owner column; this process's tasks, then the other's, each with its owner.
    await page.locator('#pipelines tr.elsewhere').first().waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#pipelines th.owner-col').isVisible(), true);
    const owners = (await page.locator('#pipelines tbody tr > td:nth-child(9)').allTextContents()).map((s) => s.trim());
    assert.equal(owners.length, TASKS, owners.join('\n'));
    const m2Id = other[0];
    assert.equal(owners.filter((o) => o.endsWith('(this process)')).length, Number(self[5]), owners.join('\n'));
    assert.equal(owners.filter((o) => o === m2Id).length, Number(other[5]), owners.join('\n'));
    await shot(page, 'cluster-processes', '#processes-section');
    await shot(page, 'cluster-pipelines', '#pipelines');

    // The other process killed: dead after the session timeout, and its tasks come here.
    m2.child.kill('SIGKILL');
    await waitFor(
      'the killed process to show as dead, owning nothing, and this one to own every task',
      async () => {
        const c = await cells(member(m2));
        const mine = await cells(member(m1));
        return c[4] === 'dead' && c[5] === '0' && mine[5] === String(TASKS) && mine[6] === 'yes' ? c : null;
      },
      { timeoutMs: 60_000, intervalMs: 250, child: m1.child },
    );
    await page.locator('#pipelines tr.elsewhere').first().waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await page.locator('#processes .process-dead').count(), 1);

    // One process alone (the Kappa serving the Kafka listener): no Processes section, no Owner column.
    const alone = await openDashboard(browser, broker.url);
    await waitForText(alone.page, '#status', /^live/, 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await alone.page.locator('#processes-section').isVisible(), false);
    assert.equal(await alone.page.locator('#pipelines th.owner-col').isVisible(), false);
    assert.deepEqual([...errors, ...alone.errors], []);
    passed = true;
  },
);
