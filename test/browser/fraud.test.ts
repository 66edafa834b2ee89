/**
 * The fraud example in Debian's chromium, on a clean data dir: the app issue 14 found the dashboard
 * dead on (one overview stream, three views and two alert partitions made six event streams, so no
 * view table, a SQL console that neither answered nor erred, a Replay that did nothing). Here the
 * page holds one event stream, and its three view tables, its alerts, the SQL console and a replay
 * all work. Screenshots go to test-artifacts/.
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { defer, tempDir } from '../support/cleanup.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { startKappa, waitFor } from '../support/processes.ts';

const SHOTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CONFIG = fileURLToPath(new URL('../../examples/fraud/kappa.config.ts', import.meta.url));
const FRAUD_VIEWS = ['card_spend', 'spend_by_country', 'suspicious_by_card'];

/** `n` card transactions, one a second; every 10th is over 5,000 (the large_transaction rule). */
function transactions(n: number, t0: number): string {
  const countries = ['DE', 'FR', 'US', 'GB'];
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      txId: `tx-${i}`,
      card: `card-${i % 16}`,
      merchant: `shop-${i % 7}`,
      country: countries[i % countries.length],
      amount: i % 10 === 0 ? 6000 + i : 10 + (i % 90),
      ts: t0 + i * 1000,
    }),
  ).join('\n');
}

test(
  'the fraud example: one event stream, three view tables, alerts, SQL and replay',
  { timeout: 180_000 },
  async (t) => {
    const chromiumPath = requireDebianPackage(t, {
      package: 'chromium',
      path: '/usr/bin/chromium',
      suite: 'the dashboard browser test',
    });
    if (chromiumPath === null) return;
    const dir = join(tempDir(t, 'kappa-fraud-'), 'data');
    const kappa = startKappa(t, ['--data-dir', dir, 'start', '--config', CONFIG, '--port', '0']);
    const [, url] = await kappa.waitForOutput(/HTTP API on (http:\/\/\S+) /, { timeoutMs: 60_000 });
    const res = await fetch(`${url}/v1/topics/transactions/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: transactions(400, Date.UTC(2026, 0, 1)),
    });
    assert.equal(res.status, 200, await res.text());
    await waitFor(
      'the three views',
      async () => {
        const body = (await (await fetch(`${url}/v1/views`)).json()) as { views: unknown[] };
        return body.views.length === FRAUD_VIEWS.length ? true : null;
      },
      { timeoutMs: 60_000, intervalMs: 200, child: kappa },
    );

    const browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ], // playwright gives each launch a fresh user data dir
    });
    defer(t, () => browser.close());
    mkdirSync(SHOTS, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const streams: string[] = [];
    page.on('request', (r) => {
      if (r.resourceType() === 'eventsource') streams.push(r.url());
    });
    await page.goto(`${url}/`);
    for (const name of FRAUD_VIEWS) await page.locator(`#view-${name} table tbody tr`).first().waitFor();
    await page.locator('#alerts tbody tr:not(.empty)').first().waitFor();
    assert.match((await page.locator('#alerts tbody tr').first().textContent()) ?? '', /large_transaction/);
    assert.match((await page.locator('#view-card_spend .pager .count').textContent()) ?? '', /Showing 16 of 16 rows/);

    await page.fill('#sql', 'SELECT count(*) AS cards FROM card_spend');
    await page.click('#sql-form button[type=submit]');
    await page.locator('#sql-table tbody tr').first().waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#sql-table tbody td').first().textContent(), '16');

    await page.click('#view-spend_by_country button.replay');
    await page
      .locator('#view-spend_by_country .badge[data-version="2"][data-state="live"]')
      .waitFor({ timeout: 60_000 });
    await page.locator('#view-spend_by_country table tbody tr').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'fraud.png'), fullPage: true });
    assert.equal(streams.length, 1, `event streams opened: ${streams.join(', ')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  },
);
