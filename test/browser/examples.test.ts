/**
 * The fraud and iot examples in Debian's chromium, each on its own clean data dir. The fraud app is
 * the one issue 14 found the dashboard dead on (one overview stream, three views and two alert
 * partitions made six event streams, so no view table, a SQL console that neither answered nor
 * erred, a Replay that did nothing). On each, the page holds one event stream; every view's table
 * shows rows, its chart is drawn from them and the SQL console counts them; alerts show; and one
 * view goes through a replay (asked in the page) to version 2, a diff of v1 with v2, and a rollback
 * to the picked v1, live again and in the build history (test/support/dashboard-page.ts).
 * Screenshots go to test-artifacts/.
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { CHROMIUM, launchChromium } from '../support/browser.ts';
import { defer, tempDir } from '../support/cleanup.ts';
import {
  type DashboardPage,
  expectSqlCount,
  expectViewPanel,
  openDashboard,
  replayDiffRollback,
  shot,
  waitForText,
} from '../support/dashboard-page.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { startKappa, waitFor } from '../support/processes.ts';

const T0 = Date.UTC(2026, 0, 1);

/**
 * Starts `kappa start` on the example's config over a fresh data dir, POSTs `records` (NDJSON) to
 * `topic`, waits until the server has `views` views, and opens the dashboard. Null: no chromium.
 */
async function openExample(
  t: TestContext,
  example: string,
  topic: string,
  records: object[],
  views: number,
): Promise<DashboardPage | null> {
  const chromiumPath = requireDebianPackage(t, CHROMIUM);
  if (chromiumPath === null) return null;
  const config = fileURLToPath(new URL(`../../examples/${example}/kappa.config.ts`, import.meta.url));
  const dir = join(tempDir(t, `kappa-${example}-`), 'data');
  const kappa = startKappa(t, ['--data-dir', dir, 'start', '--config', config, '--port', '0']);
  const [, url] = await kappa.waitForOutput(/HTTP API on (http:\/\/\S+) /, { timeoutMs: 60_000 });
  const res = await fetch(`${url}/v1/topics/${topic}/records`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: records.map((r) => JSON.stringify(r)).join('\n'),
  }).catch((err: Error) => {
    // Name why: kappa start may have stopped after it began to listen (its stderr says why).
    throw new Error(`${err.message}; kappa start printed:\n${kappa.stderr}`);
  });
  assert.equal(res.status, 200, await res.text());
  await waitFor(
    `the ${views} views`,
    async () => {
      const body = (await (await fetch(`${url}/v1/views`)).json()) as { views: unknown[] };
      return body.views.length === views ? true : null;
    },
    { timeoutMs: 60_000, intervalMs: 200, child: kappa },
  );
  const browser = await launchChromium(chromiumPath);
  defer(t, () => browser.close());
  return openDashboard(browser, url);
}

/**
 * Waits until `panel` draws `n` bars. Its view's partitions fold and flush on their own (a country's
 * or a site's rows come from one partition of keyed records), so the last bars may come later than
 * another view's rows.
 */
async function untilBars(page: Page, panel: string, n: number): Promise<void> {
  let drawn = 0;
  await waitFor(
    `${panel} to draw ${n} bars`,
    async () => ((drawn = await page.locator(`${panel} .bars .bar`).count()) === n ? true : null),
    { timeoutMs: 30_000, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message} (it drew ${drawn})`, { cause: err });
  });
}

/** `n` card transactions, one a second; every 10th is over 5,000 (the large_transaction rule). */
function transactions(n: number): object[] {
  const countries = ['DE', 'FR', 'US', 'GB'];
  return Array.from({ length: n }, (_, i) => ({
    txId: `tx-${i}`,
    card: `card-${i % 16}`,
    merchant: `shop-${i % 7}`,
    country: countries[i % countries.length],
    amount: i % 10 === 0 ? 6000 + i : 10 + (i % 90),
    ts: T0 + i * 1000,
  }));
}

/** Readings of 8 devices on 4 sites every 10 s for 10 minutes; device-3 runs at 90 °C for the last 5. */
function readings(): object[] {
  const out = [];
  for (let s = 0; s < 60; s++)
    for (let d = 0; d < 8; d++)
      out.push({
        device: `device-${d}`,
        site: `site-${d % 4}`,
        temperature: d === 3 && s >= 30 ? 90 : 20 + d + (s % 3),
        humidity: 40 + d,
        ts: T0 + s * 10_000,
      });
  return out;
}

/**
 * Every view of the example: its table shows rows, its chart is drawn, and the SQL console counts
 * as many rows as the pager says the view holds.
 */
async function everyView(page: Page, views: string[]): Promise<void> {
  for (const name of views) {
    await expectViewPanel(page, name);
    await expectSqlCount(page, name);
  }
}

test(
  'the fraud example: one event stream; every view’s table, chart and SQL; alerts; replay, diff and rollback to v1',
  { timeout: 180_000 },
  async (t) => {
    const opened = await openExample(t, 'fraud', 'transactions', transactions(400), 3);
    if (opened === null) return;
    const { page, streams, errors } = opened;
    await everyView(page, ['card_spend', 'spend_by_country', 'suspicious_by_card']);
    await page.locator('#alerts tbody tr:not(.empty)').first().waitFor();
    await waitForText(page, '#alerts tbody', /large_transaction/);
    await waitForText(page, '#view-card_spend .pager .count', /Showing 16 of 16 rows/);
    await untilBars(page, '#view-spend_by_country', 4);
    await shot(page, 'fraud');
    const diff = await replayDiffRollback(page, 'spend_by_country', 'fraud');
    assert.match(diff, /Both versions hold the same rows with the same values/);
    assert.equal(streams.length, 1, `event streams opened: ${streams.join(', ')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  },
);

test(
  'the iot example: one event stream; lines per device by window, bars per site, every view’s SQL; alerts; replay, diff and rollback to v1',
  { timeout: 180_000 },
  async (t) => {
    const opened = await openExample(t, 'iot', 'readings', readings(), 3);
    if (opened === null) return;
    const { page, streams, errors } = opened;
    await everyView(page, ['device_minutes', 'site_status', 'alert_counts']);
    await page.locator('#alerts tbody tr:not(.empty)').first().waitFor();
    await waitForText(page, '#alerts tbody', /device-3/);
    await page.locator('#view-device_minutes .chart-area .uplot').waitFor();
    await waitForText(
      page,
      '#view-device_minutes .chart-caption',
      /per window by device: the 5 largest of 8 groups, the last 10 windows/,
    );
    await untilBars(page, '#view-site_status', 4);
    await waitForText(page, '#view-device_minutes .pager .count', /Showing 50 of 80 rows/);
    await shot(page, 'iot');
    // site_status: two devices of a site, on different partitions, read at the same times, and its
    // last(temperature) picks by (event time, partition, offset), so the replay holds the same rows
    // as the live version whichever partition's flush landed last (test/e2e/first-last-ties.test.ts).
    const diff = await replayDiffRollback(page, 'site_status', 'iot');
    assert.match(diff, /Both versions hold the same rows with the same values/);
    assert.equal(streams.length, 1, `event streams opened: ${streams.join(', ')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  },
);
