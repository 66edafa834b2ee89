/**
 * The dashboard on an app with more live streams than a browser has connections per host: nine
 * views and a 2-partition alert topic (test/support/apps.ts), in Debian's chromium. When the page
 * opened one EventSource per view and per alert partition, from six on every other request queued
 * forever: no view table, a SQL console that never answered, a Replay button that did nothing.
 * Now the page holds ONE event stream (counted here from the browser's requests) and every view
 * table shows rows, pages ("Showing 50 of 300 rows") and sorts on the server, the charts come from
 * the views' rows (lines per group for windowed views, bars for grouped ones, the same after a
 * reload), the SQL console answers and a replay swaps versions, and a request that is not answered
 * says so where the user acted. Screenshots go to test-artifacts/.
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser } from 'playwright-core';
import { CHROMIUM, SHOTS, launchChromium } from '../support/browser.ts';
import { defer } from '../support/cleanup.ts';
import {
  diffInPage,
  expectSqlCount,
  expectViewPanel,
  historyEntry,
  openDashboard,
  replayInPage,
  rollbackInPage,
  shot,
  text,
} from '../support/dashboard-page.ts';
import { MANY_VIEWS, STORES, manyViewsConfig, shopSales } from '../support/apps.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { startKappa, waitFor } from '../support/processes.ts';
import { tempDataProject } from '../support/project.ts';

const SALES = 3000;
const T0 = Date.UTC(2026, 0, 1);

async function postSales(url: string, sales: object[]): Promise<void> {
  const res = await fetch(`${url}/v1/topics/sales/records`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: sales.map((s) => JSON.stringify(s)).join('\n'),
  });
  assert.equal(res.status, 200, await res.text());
}

/** The views of manyViewsConfig that count sales (`sales: count()`). */
const COUNTING_VIEWS = MANY_VIEWS.filter((name) => name !== 'largest_by_region' && name !== 'alerts_by_rule');

/** Whether every view that counts sales has folded `n` of them. */
async function allFolded(url: string, n: number): Promise<boolean> {
  for (const name of COUNTING_VIEWS) {
    const res = await fetch(`${url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: `SELECT sum(sales) AS n FROM ${name}` }),
    });
    if (!res.ok || ((await res.json()) as { rows?: { n: number }[] }).rows?.[0]?.n !== n) return false;
  }
  return true;
}

async function launch(t: { after(fn: () => unknown): void }, chromiumPath: string): Promise<Browser> {
  const browser = await launchChromium(chromiumPath);
  defer(t, () => browser.close());
  return browser;
}

test(
  'nine views and a 2-partition alert topic: one event stream, every table, paging, sorting, charts, SQL and replay',
  { timeout: 240_000 },
  async (t) => {
    const chromiumPath = requireDebianPackage(t, CHROMIUM);
    if (chromiumPath === null) return;
    const project = tempDataProject(t, 'kappa-many-views-', manyViewsConfig());
    const kappa = startKappa(t, ['--data-dir', project.dir, 'start', '--config', project.config, '--port', '0']);
    const [, url] = await kappa.waitForOutput(/HTTP API on (http:\/\/\S+) /, { timeoutMs: 60_000 });
    await postSales(url, shopSales(SALES, T0));
    const views = async (): Promise<{ name: string; versions: { rows: number }[] }[]> =>
      ((await (await fetch(`${url}/v1/views`)).json()) as { views: { name: string; versions: { rows: number }[] }[] })
        .views;
    await waitFor(
      'every view to have its rows',
      async () => {
        const all = await views();
        const byStore = all.find((v) => v.name === 'by_store')?.versions[0]?.rows ?? 0;
        return all.length === MANY_VIEWS.length && byStore === STORES ? true : null;
      },
      { timeoutMs: 60_000, intervalMs: 200, child: kappa },
    );
    // by_store has its 300 rows after the first 300 sales; the page's checks below (the grand total
    // of 3000, the 50 windows of per_minute) need every view to have folded all of them.
    await waitFor('every view to count all the sales', async () => ((await allFolded(url, SALES)) ? true : null), {
      timeoutMs: 60_000,
      intervalMs: 200,
      child: kappa,
    });

    const browser = await launch(t, chromiumPath);
    // The page records every event stream it opens.
    const { page, streams, errors } = await openDashboard(browser, url);

    // Every view's table shows rows and its chart is drawn from them (none for the one-row grand_total),
    // and the SQL console counts as many rows as the pager says.
    // The SQL console's first query names one of this app's views (once the page knows them).
    await page.waitForFunction(
      () => (document.querySelector('#sql') as HTMLTextAreaElement | null)?.value.includes('alerts_by_rule'),
      null,
      {
        timeout: 15_000,
      },
    );
    assert.equal(await page.inputValue('#sql'), 'SELECT * FROM alerts_by_rule LIMIT 10');
    for (const name of MANY_VIEWS) {
      await expectViewPanel(page, name, { oneRow: name === 'grand_total' });
      await expectSqlCount(page, name);
    }
    // Alerts from both partitions of the alert topic (keyed by store, so both hold some).
    await page.locator('#alerts tbody tr:not(.empty)').first().waitFor();
    await waitFor(
      '20 alerts on the page',
      async () => ((await page.locator('#alerts tbody tr').count()) === 20 ? true : null),
      {
        timeoutMs: 15_000,
        intervalMs: 100,
      },
    );
    await page.screenshot({ path: join(SHOTS, 'many-views-overview.png'), fullPage: true });

    // Paging: never cut silently.
    const count = '#view-by_store .pager .count';
    await waitFor(
      'the row count',
      async () => (/Showing 50 of 300 rows \(1–50\)/.test(await text(page, count)) ? true : null),
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    assert.equal(await page.locator('#view-by_store table tbody tr').count(), 50);
    await page.click('#view-by_store .pager button.next');
    await waitFor(
      'page 2',
      async () => (/Showing 50 of 300 rows \(51–100\)/.test(await text(page, count)) ? true : null),
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    await page.selectOption('#view-by_store .pager select.page-size', '200');
    await waitFor(
      '200 per page',
      async () => (/Showing 200 of 300 rows \(1–200\)/.test(await text(page, count)) ? true : null),
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );

    // Sorting by any column, on the server: cents descending puts the largest store first.
    const cents = async (): Promise<number[]> =>
      (await page.locator('#view-by_store table tbody tr td:nth-child(2)').allTextContents()).map((s) =>
        Number(s.replace(/,/g, '')),
      );
    await page.click('#view-by_store th button:text-is("cents")');
    await page.locator('#view-by_store th[aria-sort="ascending"]').waitFor();
    await page.click('#view-by_store th button:text-is("cents ▲")');
    await page.locator('#view-by_store th[aria-sort="descending"]').waitFor();
    await waitFor(
      'rows sorted by cents, largest first',
      async () => {
        const c = await cents();
        return c.length === 200 && c.every((v, i) => i === 0 || c[i - 1] >= v) ? true : null;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.match(await text(page, count), /sorted by cents ▼/);

    // Charts from the views' rows: lines per group by window start, bars per group, none for one row.
    await page.locator('#view-per_minute .chart-area .uplot').waitFor();
    assert.match(
      await text(page, '#view-per_minute .chart-caption'),
      /^cents per window by region: the 5 largest of 5 groups, the last 50 windows/,
    );
    await page.locator('#view-per_minute_total .chart-area .uplot').waitFor();
    assert.equal(await page.locator('#view-by_region .bars .bar').count(), 5);
    assert.ok(await page.locator('#view-grand_total .chart').isHidden(), 'a one-row view has no chart');
    await page.selectOption('#view-per_minute select.measure', 'sales');
    await waitFor(
      'the sales measure',
      async () => (/^sales per window/.test(await text(page, '#view-per_minute .chart-caption')) ? true : null),
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    await page.locator('#view-per_minute').screenshot({ path: join(SHOTS, 'many-views-chart.png') });

    // Live: new sales reach the page over the one stream.
    const salesCell = '#view-grand_total table tbody tr td:nth-child(2)';
    assert.equal(await text(page, salesCell), '3000');
    await postSales(url, shopSales(10, T0, SALES));
    await waitFor('the grand total to move', async () => ((await text(page, salesCell)) === '3010' ? true : null), {
      timeoutMs: 15_000,
      intervalMs: 100,
    });

    // A record that dead-letters shows as a badge with its reason.
    const bad = await fetch(`${url}/v1/topics/sales/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ region: 'north', store: 'store-001', cents: 'lots', ts: T0 }),
    });
    assert.equal(bad.status, 207, await bad.text());
    await page.locator('#dead-letters .badge[data-topic="sales.dlq"]').waitFor({ timeout: 10_000 });
    assert.match(await text(page, '#dead-letters .badge'), /^1 record of sales went to sales\.dlq: .*cents/);

    // The SQL console answers.
    await page.fill('#sql', 'SELECT count(*) AS stores FROM by_store');
    await page.click('#sql-form button[type=submit]');
    await page.locator('#sql-table tbody tr').first().waitFor({ timeout: 10_000 });
    assert.equal(await text(page, '#sql-table tbody td'), '300');

    // Replay asks first, in the page: Cancel does nothing; Yes replays, with the answer beside the button, then version 2 live.
    await replayInPage(page, 'by_region', 2, { cancelFirst: true });
    assert.equal(await page.locator('#view-by_region .bars .bar').count(), 5, 'the bars stay through the swap');
    await shot(page, 'many-views-replayed');
    // Compare the two versions: the same logic over the same log gives the same rows.
    assert.equal(await page.inputValue('#view-by_region .compare-a'), '1');
    assert.equal(await page.inputValue('#view-by_region .compare-b'), '2');
    const diff = await diffInPage(page, 'by_region', 1, 2);
    assert.match(await text(page, '#view-by_region .diff .diff-summary'), /rows\s*([\d,]+)\s*\1\s*0/);
    assert.match(diff, /Both versions hold the same rows with the same values/);
    // The build history lists the replay, live.
    assert.match(
      await historyEntry(page, 'by_region', 2, 'live'),
      /^v2 replay: live after [\d.]+ s, [\d,]+ records read; none: the same logic, replayed/,
    );
    // Roll back to the version picked (v1, the one offered first): asked first, then v1 live again and in the history.
    assert.equal(await page.inputValue('#view-by_region .rollback-to'), '1');
    await rollbackInPage(page, 'by_region', 1);
    await shot(page, 'many-views-versions', '#view-by_region');

    // One event stream for the whole page, however many views and alert partitions.
    assert.equal(streams.length, 1, `event streams opened: ${streams.join(', ')}`);
    assert.match(streams[0], /\/v1\/events\?/);

    // History survives a reload: the chart comes from the rows.
    const caption = await waitFor(
      'the chart to show the window the ten new sales opened',
      async () => {
        const c = await text(page, '#view-per_minute .chart-caption');
        return /the last 51 windows/.test(c) ? c : null;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    await page.reload();
    await page.locator('#view-per_minute .chart-area .uplot').waitFor();
    assert.equal(await text(page, '#view-per_minute .chart-caption'), caption.replace(/^sales/, 'cents'));
    // A sale ten minutes after the last: the nine quiet minutes between are a gap in the lines, not a
    // straight line from one end to the other (the chart spans 61 windows, not 52).
    const [late] = shopSales(1, T0 + 600_000, SALES + 9);
    await postSales(url, [late]);
    await waitFor(
      'the chart to span the quiet minutes',
      async () => (/the last 61 windows/.test(await text(page, '#view-per_minute .chart-caption')) ? true : null),
      { timeoutMs: 15_000, intervalMs: 100 },
    );

    // A request that gets no answer, or cannot reach the server, says so where the user acted.
    await page.route('**/v1/sql', () => {}); // never answered
    await page.route('**/v1/views/by_region/rollback?*', (route) => route.abort('connectionrefused'));
    await page.click('#sql-form button[type=submit]');
    await waitFor('the SQL console to give up', async () => ((await text(page, '#sql-error')) ? true : null), {
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    assert.match(await text(page, '#sql-error'), /did not answer within 10 s/);
    assert.equal(await page.locator('#sql-form button[type=submit]').isEnabled(), true, 'Run can be pressed again');
    await page.click('#view-by_region button.rollback');
    await page.click('#view-by_region .confirm-yes');
    await page.locator('#view-by_region .feedback.error').waitFor({ timeout: 10_000 });
    assert.match(await text(page, '#view-by_region .feedback'), /Cannot reach the server/);
    await page.screenshot({ path: join(SHOTS, 'many-views-errors.png'), fullPage: true });

    // A restart on a config that no longer declares grand_total: the page reconnects by itself, reads
    // its views again, and lists grand_total as left by an earlier config instead of showing its panel.
    await page.unroute('**/v1/sql');
    const port = new URL(url).port;
    await kappa.stop();
    const later = project.writeConfig(manyViewsConfig({ leaveOut: ['grand_total'] }));
    const again = startKappa(t, ['--data-dir', project.dir, 'start', '--config', later, '--port', port]);
    await again.waitForOutput(/HTTP API on/, { timeoutMs: 60_000 });
    await page.locator('#orphans').waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await text(page, '#orphans'), /no longer updated\): grand_total\./);
    assert.equal(await page.locator('#view-grand_total').count(), 0);
    await postSales(url, shopSales(10, T0, SALES + 10));
    await waitFor(
      'the live stream to come back',
      async () =>
        /Showing 50 of 300 rows/.test(await text(page, count)) && /^live/.test(await text(page, '#status'))
          ? true
          : null,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await page.fill('#sql', 'SELECT sum(sales) AS n FROM by_region');
    // The ten sales may still be on their way into the view when the query first runs: run it again until they are in.
    let sum = '';
    await waitFor(
      'the SQL console after the restart to count 3021 sales',
      async () => {
        await page.click('#sql-form button[type=submit]');
        await page.waitForTimeout(300);
        sum = await text(page, '#sql-table tbody td');
        return sum === '3021' ? true : null;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (the last answer: ${sum})`);
    });
    await page.screenshot({ path: join(SHOTS, 'many-views-restarted.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no errors in the page');
  },
);
