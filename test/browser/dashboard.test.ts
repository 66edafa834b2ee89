/**
 * The `npm start` demo and its dashboard in a real browser (Debian's chromium, driven by
 * playwright-core). The demo runs as a child process over a log that already holds 2,000,000
 * sales, so a replay takes long enough to watch: the test opens the dashboard, sees the numbers
 * change without a reload, checks every view's table, chart and SQL row count, runs a SQL query,
 * triggers a replay (asked in the page) and watches its progress bar and the version swap, compares
 * v1 with v2 in the page, and rolls back to the picked v1 (live again, in the build history), with
 * the steps of test/support/dashboard-page.ts. Screenshots go to test-artifacts/.
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it
 * (test/support/debian.ts; KAPPA_CHROMIUM_PATH points it at another chromium).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser } from 'playwright-core';
import { CHROMIUM, launchChromium } from '../support/browser.ts';
import {
  diffInPage,
  expectSqlCount,
  expectViewPanel,
  historyEntry,
  replayInPage,
  rollbackInPage,
  shot,
} from '../support/dashboard-page.ts';
import { salesGenerator } from '../../src/cli/demo.ts';
import { openFileLog } from '../../src/log/index.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { type OwnedChild, startKappa } from '../support/processes.ts';

const PRELOADED = 2_000_000;

async function waitFor<T>(
  what: string,
  demo: OwnedChild,
  fn: () => Promise<T | null | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; the demo said:\n${demo.stdout}${demo.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(
  'the dashboard updates live, runs SQL, and shows a replay’s progress and the version swap',
  { timeout: 420_000 },
  async (t) => {
    const chromiumPath = requireDebianPackage(t, CHROMIUM);
    if (chromiumPath === null) return;
    const root = mkdtempSync(join(tmpdir(), 'kappa-browser-'));
    const started: { demo?: OwnedChild; browser?: Browser } = {};
    // One hook, registered first, so the order is right: the browser, then the demo, then its files.
    t.after(async () => {
      await started.browser?.close();
      await started.demo?.stop();
      rmSync(root, { recursive: true, force: true });
    });

    // The demo over a log that already holds PRELOADED sales.
    const dir = join(root, 'data');
    const log = await openFileLog({ dir, fsync: 'never', logger: { info() {}, warn() {} } });
    await log.createTopic('sales', { partitions: 4 });
    const make = salesGenerator(7);
    const t0 = Date.now() - 3_600_000;
    for (let i = 0; i < PRELOADED; i += 20_000) await log.append('sales', make(20_000, t0 + Math.floor(i / 1000)));
    await log.close();
    const startedAt = Date.now();
    const demo = startKappa(t, ['--data-dir', dir, 'demo', '--port', '0', '--rate', '500']);
    started.demo = demo;
    const [, url] = await demo.waitForOutput(/Dashboard\s+(http:\/\/\S+)\//, { timeoutMs: 30_000 });
    // The demo answers queries within seconds of starting.
    const rows = await waitFor('the first rows of aggregated_sales', demo, async () => {
      const res = await fetch(`${url}/v1/views/aggregated_sales`).catch(() => null);
      const body = res?.ok ? ((await res.json()) as { rows: unknown[] }) : null;
      return body !== null && body.rows.length > 0 ? body.rows : null;
    });
    assert.ok(rows.length > 0);
    assert.ok(Date.now() - startedAt < 30_000, `answered ${Date.now() - startedAt} ms after start`);
    const browser = await launchChromium(chromiumPath);
    started.browser = browser;

    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${url}/`);
    // Record, inside the page, every build progress bar that ever appears.
    await page.evaluate(() => {
      const w = window as unknown as { seenBuilds: string[] };
      w.seenBuilds = [];
      new MutationObserver(() => {
        for (const b of document.querySelectorAll('#view-aggregated_sales .build'))
          w.seenBuilds.push(`${b.getAttribute('data-version')}:${b.querySelector('progress')?.getAttribute('value')}`);
      }).observe(document.body, { subtree: true, childList: true });
    });

    // Numbers change without a reload.
    const salesRecords = async (): Promise<number> => {
      const text = await page
        .locator('#topics tbody tr', { hasText: /^sales/ })
        .first()
        .locator('td')
        .nth(2)
        .textContent();
      return Number((text ?? '').replace(/,/g, ''));
    };
    const first = await waitFor('the sales topic in the overview', demo, async () => (await salesRecords()) || null);
    assert.ok(first >= PRELOADED);
    await waitFor('the record count to grow on the page', demo, async () => (await salesRecords()) > first);
    await page.locator('#view-aggregated_sales table tbody tr').first().waitFor();
    await page.locator('#pipelines tbody tr').first().waitFor();
    // The demo's large refunds show as recent alerts.
    await page.locator('#alerts tbody tr:not(.empty)').first().waitFor({ timeout: 30_000 });
    assert.match((await page.locator('#alerts tbody tr').first().textContent()) ?? '', /large_refund.*refunded/);
    await shot(page, 'dashboard-overview');

    // The SQL console.
    await page.fill('#sql', 'SELECT region, sum(total) AS total FROM aggregated_sales GROUP BY region ORDER BY region');
    await page.click('#sql-form button[type=submit]');
    await page.locator('#sql-table tbody tr').first().waitFor();
    const regions = await page.locator('#sql-table tbody tr td:first-child').allTextContents();
    assert.deepEqual(regions, ['central', 'east', 'north', 'south', 'west']);
    await page.fill('#sql', 'DELETE FROM aggregated_sales__v1');
    await page.click('#sql-form button[type=submit]');
    await waitFor('the refusal', demo, async () =>
      /read-only/.test((await page.locator('#sql-error').textContent()) ?? ''),
    );
    await shot(page, 'dashboard-sql');

    // Every view: its table shows rows, its chart is drawn from them, the SQL console counts them.
    for (const name of ['aggregated_sales', 'sales_per_minute']) {
      await expectViewPanel(page, name);
      await expectSqlCount(page, name);
    }

    // A replay, asked in the page: its progress bar, then version 2 live and version 1 retired.
    await page.locator('#view-aggregated_sales .badge[data-version="1"][data-state="live"]').waitFor();
    await replayInPage(page, 'aggregated_sales', 2, {
      liveTimeoutMs: 120_000,
      beforeLive: async () => {
        await page.locator('#view-aggregated_sales .build[data-version="2"]').waitFor({ timeout: 30_000 });
        await shot(page, 'dashboard-replay-progress');
      },
    });
    await page.locator('#view-aggregated_sales .badge[data-version="1"][data-state="retired"]').waitFor();
    await shot(page, 'dashboard-swapped');
    const seen = await page.evaluate(() => (window as unknown as { seenBuilds: string[] }).seenBuilds);
    assert.ok(
      seen.some((s) => s.startsWith('2:')),
      `a progress bar for version 2 was shown: ${seen.slice(0, 5).join(', ')}`,
    );
    await historyEntry(page, 'aggregated_sales', 2, 'live');

    // Compare v1 with v2: sales kept arriving while v1 stood retired, so the two may differ; the page says how.
    const diff = await diffInPage(page, 'aggregated_sales', 1, 2);
    assert.match(diff, /rows/);
    assert.match(diff, /total/);
    await shot(page, 'dashboard-diff', '#view-aggregated_sales');

    // Roll back to the version picked, v1: live again (it catches up on the sales since) and in the history.
    await rollbackInPage(page, 'aggregated_sales', 1, { liveTimeoutMs: 120_000 });
    await shot(page, 'dashboard-rolled-back', '#view-aggregated_sales');
    assert.deepEqual(errors, [], 'no errors in the page');
    await page.close();
  },
);
