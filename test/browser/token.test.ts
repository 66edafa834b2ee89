/**
 * The dashboard of a server with tokens, opened from an address that carries one
 * (`http://host:port/#token=<token>`, which a command can print): the page keeps the token for the
 * tab, takes it out of the address bar, and every call carries it (fetch as a header, the one event
 * stream as ?access_token=), so the tables, the alerts and the SQL console work. The fragment never
 * reaches the server or its logs.
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHROMIUM, launchChromium } from '../support/browser.ts';
import { hashToken } from '../../src/server/auth.ts';
import { MANY_VIEWS, manyViewsConfig, shopSales } from '../support/apps.ts';
import { defer } from '../support/cleanup.ts';
import { openDashboard, sqlInPage } from '../support/dashboard-page.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { startKappa } from '../support/processes.ts';
import { tempDataProject } from '../support/project.ts';

const TOKEN = 'kp_dashboard-test-token';

test('a #token= in the address opens the dashboard of a server with tokens', { timeout: 120_000 }, async (t) => {
  const chromiumPath = requireDebianPackage(t, CHROMIUM);
  if (chromiumPath === null) return;
  const project = tempDataProject(t, 'kappa-token-', manyViewsConfig({ tokenSha256: hashToken(TOKEN) }));
  const kappa = startKappa(t, ['--data-dir', project.dir, 'start', '--config', project.config, '--port', '0']);
  const [, url] = await kappa.waitForOutput(/HTTP API on (http:\/\/\S+) /, { timeoutMs: 60_000 });
  const res = await fetch(`${url}/v1/topics/sales/records`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${TOKEN}` },
    body: shopSales(300, Date.UTC(2026, 0, 1))
      .map((s) => JSON.stringify(s))
      .join('\n'),
  }).catch((err: Error) => {
    // Name why: kappa start may have stopped after it began to listen (its stderr says why).
    throw new Error(`${err.message}; kappa start printed:\n${kappa.stderr}`);
  });
  assert.equal(res.status, 200, await res.text());
  // The page's SQL below counts every store: wait until the view has folded all 300 sales.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const answer = await fetch(`${url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM by_store' }),
    });
    const body = (await answer.json()) as { rows?: { n: number }[] };
    if (body.rows?.[0]?.n === 300) break;
    if (Date.now() > deadline) throw new Error(`by_store never held the 300 stores: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  const browser = await launchChromium(chromiumPath);
  defer(t, () => browser.close());
  const { page, errors, refused } = await openDashboard(browser, url, `#token=${encodeURIComponent(TOKEN)}`);
  for (const name of MANY_VIEWS) await page.locator(`#view-${name} table tbody tr`).first().waitFor();
  await page.locator('#alerts tbody tr:not(.empty)').first().waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  assert.equal(await page.locator('#token-form').count(), 0, 'no token asked for');
  assert.equal(await sqlInPage(page, 'SELECT count(*) AS n FROM by_store'), '300');
  assert.deepEqual(refused, []);
  assert.deepEqual(errors, [], 'no errors in the page');
});
