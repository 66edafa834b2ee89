/**
 * The demo's first start seeds a day of sales history (issue 14: "at demo scale a build ends before
 * anything is shown"), so the views start from real volume and the tutorial's replay takes long
 * enough to watch. A later start finds the sales and seeds nothing more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../support/cleanup.ts';
import { startKappa, waitFor } from '../support/processes.ts';

const HISTORY = 30_000;
const DAY_MS = 24 * 3_600_000;

async function sql<T>(url: string, query: string): Promise<T[]> {
  const rows = await sqlOnceMade<T>(url, query);
  assert.ok(rows !== null, `a view of ${query} does not exist`);
  return rows;
}

/** The rows, or null while a view the query reads has not been made yet (its table comes with its first rows). */
async function sqlOnceMade<T>(url: string, query: string): Promise<T[] | null> {
  const res = await fetch(`${url}/v1/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: query }),
  });
  const text = await res.clone().text();
  if (res.status === 400 && text.includes('There is no view')) return null;
  assert.equal(res.status, 200, text);
  return ((await res.json()) as { rows: T[] }).rows;
}

test('the demo seeds a day of sales at its first start, and only then', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t, 'kappa-demo-seed-');
  const args = ['--data-dir', dir, 'demo', '--port', '0', '--rate', '1', '--workers', '0'];
  const first = startKappa(t, [...args, '--history', String(HISTORY)]);
  const [, url] = await first.waitForOutput(/Dashboard\s+(http:\/\/\S+)\//, { timeoutMs: 90_000 });
  const startedAt = Date.now();
  assert.match(first.stdout, /First start: seeding the log with 30,000 sales from the last 24 hours/);
  assert.match(first.stdout, /Seeded 30,000 sales in \d+\.\d s\./);

  // Every seeded sale reaches the views: refunds are filtered out of aggregated_sales, and the
  // per-minute windows span the day the history covers.
  const seen = await waitFor(
    'the seeded history in sales_per_minute',
    async () => {
      const rows = await sqlOnceMade<{ n: number; first: number; last: number }>(
        url,
        'SELECT count(*) AS n, min(window_start) AS first, max(window_start) AS last FROM sales_per_minute',
      );
      return rows !== null && rows[0].n >= 5 * 1000 ? rows[0] : null;
    },
    { timeoutMs: 90_000, intervalMs: 250, child: first },
  );
  assert.ok(
    seen.first <= startedAt - DAY_MS + 120_000,
    `the history starts a day back (${new Date(seen.first).toISOString()})`,
  );
  assert.ok(seen.last >= startedAt - 5 * 60_000, 'and reaches the present');
  const [{ orders }] = await waitFor(
    'every positive seeded sale in aggregated_sales',
    async () => {
      const rows = await sqlOnceMade<{ orders: number }>(url, 'SELECT sum(orders) AS orders FROM aggregated_sales');
      return rows !== null && rows[0].orders >= 0.95 * HISTORY ? rows : null;
    },
    { timeoutMs: 60_000, intervalMs: 250, child: first },
  );
  assert.ok(orders < HISTORY + 100, `about ${HISTORY} orders (refunds excluded, a few live ones added): ${orders}`);
  await first.stop();

  // The second start finds the sales and seeds nothing.
  const second = startKappa(t, [...args, '--history', String(HISTORY)]);
  const [, url2] = await second.waitForOutput(/Dashboard\s+(http:\/\/\S+)\//, { timeoutMs: 90_000 });
  assert.doesNotMatch(second.stdout, /seeding/);
  const [again] = await sql<{ orders: number }>(url2, 'SELECT sum(orders) AS orders FROM aggregated_sales');
  assert.ok(again.orders < orders + 100, `no second history (${again.orders} orders after ${orders})`);
  await second.stop();
});
