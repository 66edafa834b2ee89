/**
 * What a user does on a view's panel of the dashboard, written once for every browser suite: open
 * the page (counting its event streams and page errors), check that a view's table shows rows and
 * its chart is drawn from them, ask the SQL console, replay with the in-page confirm, compare two
 * versions, roll back to a picked version and read the build history. Each step waits for what the
 * user would see and fails naming the view and what did not appear.
 *
 * The panel's selectors (src/dashboard/views.js): `#view-<name>` holds `table`, `.pager .count`,
 * `.chart` (`.chart-area .uplot` for windowed views, `.bars .bar` for grouped ones), the buttons
 * `replay` and `rollback` with the picker `.rollback-to`, the inline `.confirm`, `.feedback` beside
 * the buttons, `.compare-a` / `.compare-b` / `button.compare` / `.diff`, and `.history`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { SHOTS } from './browser.ts';
import { waitFor } from './processes.ts';

export interface DashboardPage {
  page: Page;
  /** Every event stream (EventSource) the page opened. */
  streams: string[];
  /** Errors thrown in the page. */
  errors: string[];
  /** Every response the server refused for want of a token or a scope (401, 403): "<status> <url>". */
  refused: string[];
}

/**
 * A new 1280×1000 page on the dashboard at `url` (plus `fragment`, say `#token=…`), recording its
 * event streams, page errors and refused requests from the first request on.
 */
export async function openDashboard(browser: Browser, url: string, fragment = ''): Promise<DashboardPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const opened: DashboardPage = { page, streams: [], errors: [], refused: [] };
  page.on('pageerror', (e) => opened.errors.push(String(e)));
  page.on('request', (r) => {
    if (r.resourceType() === 'eventsource') opened.streams.push(r.url());
  });
  page.on('response', (r) => {
    if (r.status() === 401 || r.status() === 403) opened.refused.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(`${url}/${fragment}`);
  return opened;
}

/** The text of the first element `sel` matches ('' when it has none). */
export async function text(page: Page, sel: string): Promise<string> {
  return (await page.locator(sel).first().textContent()) ?? '';
}

/** Waits until the first element `sel` matches has text matching `re`, and returns that text. */
export async function waitForText(page: Page, sel: string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  let last = '';
  return waitFor(
    `${sel} to read ${re}`,
    async () => {
      last = await text(page, sel);
      return re.test(last) ? last : null;
    },
    { timeoutMs, intervalMs: 100 },
  ).catch((err: Error) => {
    throw new Error(`${err.message} (it read: ${JSON.stringify(last)})`);
  });
}

/** Saves a screenshot of the whole page, or of `sel`, as test-artifacts/<name>.png. */
export async function shot(page: Page, name: string, sel?: string): Promise<void> {
  const path = join(SHOTS, `${name}.png`);
  if (sel === undefined) await page.screenshot({ path, fullPage: true });
  else await page.locator(sel).screenshot({ path });
}

/**
 * The view's table shows rows, and its chart is drawn from them: lines for a windowed view, bars for
 * a grouped one; a view of one row without groups has no chart (`oneRow`). Returns the pager's text.
 */
export async function expectViewPanel(page: Page, view: string, opts: { oneRow?: boolean } = {}): Promise<string> {
  const panel = `#view-${view}`;
  await page.locator(`${panel} table tbody tr`).first().waitFor({ timeout: 30_000 });
  const count = await waitForText(page, `${panel} .pager .count`, /^Showing [\d,]+ of [\d,]+ rows/);
  if (opts.oneRow === true) {
    assert.ok(await page.locator(`${panel} .chart`).isHidden(), `${view}: a one-row view has no chart`);
    return count;
  }
  await page.locator(`${panel} .chart-area .uplot, ${panel} .bars .bar`).first().waitFor({ timeout: 15_000 });
  assert.match(await text(page, `${panel} .chart-caption`), /\S/, `${view}: the chart says what it plots`);
  return count;
}

/** Runs `query` in the SQL console and returns the first cell of its answer. */
export async function sqlInPage(page: Page, query: string): Promise<string> {
  await page.fill('#sql', query);
  await page.click('#sql-form button[type=submit]');
  await page.locator('#sql-table tbody tr').first().waitFor({ timeout: 10_000 });
  return text(page, '#sql-table tbody td');
}

/**
 * The SQL console counts as many rows of `view` as its pager says it holds. Both are read again
 * until they agree, since records may still be on their way into the view.
 */
export async function expectSqlCount(page: Page, view: string): Promise<void> {
  let last = '';
  await waitFor(
    `the SQL console to count the rows the pager of ${view} shows`,
    async () => {
      const shown = await text(page, `#view-${view} .pager .count`);
      const total = /of ([\d,]+) rows/.exec(shown)?.[1]?.replace(/,/g, '');
      const counted = await sqlInPage(page, `SELECT count(*) AS n FROM ${view}`);
      last = `the pager: ${shown}; SQL: ${counted}`;
      return total !== undefined && counted === total ? true : null;
    },
    { timeoutMs: 15_000, intervalMs: 300 },
  ).catch((err: Error) => {
    throw new Error(`${err.message} (${last})`);
  });
}

/**
 * Replays `view` as a user does: Replay, the in-page confirm (Cancel first when `cancelFirst`, which
 * must ask nothing of the server), Yes; the server's answer shows beside the button, then `version`
 * is live and the table shows rows again. `beforeLive` runs once the answer is shown (a screenshot
 * of the build in progress, say).
 */
export async function replayInPage(
  page: Page,
  view: string,
  version: number,
  opts: { cancelFirst?: boolean; beforeLive?: () => Promise<void>; liveTimeoutMs?: number } = {},
): Promise<void> {
  const panel = `#view-${view}`;
  if (opts.cancelFirst === true) {
    await page.click(`${panel} button.replay`);
    await page.locator(`${panel} .confirm`).waitFor({ state: 'visible', timeout: 5_000 });
    await page.click(`${panel} .confirm-no`);
    await page.locator(`${panel} .confirm`).waitFor({ state: 'hidden', timeout: 5_000 });
    assert.equal(await text(page, `${panel} .feedback`), '', 'a cancelled confirm asks nothing of the server');
  }
  await page.click(`${panel} button.replay`);
  await page.locator(`${panel} .confirm`).waitFor({ state: 'visible', timeout: 5_000 });
  assert.match(
    await text(page, `${panel} .confirm .question`),
    new RegExp(`^Replay ${view}\\? A new version is built`),
  );
  await page.click(`${panel} .confirm-yes`);
  await waitForText(page, `${panel} .feedback`, /^(?!asking)\S/);
  assert.equal(
    await page.locator(`${panel} .feedback.error`).count(),
    0,
    `${view}: the replay was refused: ${await text(page, `${panel} .feedback`)}`,
  );
  await opts.beforeLive?.();
  await page
    .locator(`${panel} .badge[data-version="${version}"][data-state="live"]`)
    .waitFor({ timeout: opts.liveTimeoutMs ?? 60_000 });
  await page.locator(`${panel} table tbody tr`).first().waitFor({ timeout: 15_000 });
}

/** Compares versions `a` and `b` of `view` in the page; returns the diff's text once its summary shows. */
export async function diffInPage(page: Page, view: string, a: number, b: number): Promise<string> {
  const panel = `#view-${view}`;
  for (const [sel, v] of [
    ['.compare-a', a],
    ['.compare-b', b],
  ] as const) {
    await page.locator(`${panel} ${sel} option[value="${v}"]`).waitFor({ state: 'attached', timeout: 10_000 });
    await page.selectOption(`${panel} ${sel}`, String(v));
  }
  await page.click(`${panel} button.compare`);
  await page.locator(`${panel} .diff .diff-summary`).waitFor({ timeout: 15_000 });
  return text(page, `${panel} .diff`);
}

/** Opens the view's build history and waits for the entry of `version` with `result` (live, retired, …). */
export async function historyEntry(page: Page, view: string, version: number, result: string): Promise<string> {
  const panel = `#view-${view}`;
  if ((await page.locator(`${panel} .history`).getAttribute('open')) === null)
    await page.click(`${panel} .history summary`);
  const entry = `${panel} .history-list li[data-version="${version}"][data-result="${result}"]`;
  await page.locator(entry).waitFor({ timeout: 15_000 });
  return text(page, entry);
}

/**
 * Rolls `view` back to the picked `version` as a user does: pick it, Roll back, the in-page confirm,
 * Yes; the feedback beside the button names it, then it is live and its history entry says so.
 */
export async function rollbackInPage(
  page: Page,
  view: string,
  version: number,
  opts: { liveTimeoutMs?: number } = {},
): Promise<void> {
  const panel = `#view-${view}`;
  await page
    .locator(`${panel} .rollback-to option[value="${version}"]`)
    .waitFor({ state: 'attached', timeout: 10_000 });
  await page.selectOption(`${panel} .rollback-to`, String(version));
  await page.click(`${panel} button.rollback`);
  await page.locator(`${panel} .confirm`).waitFor({ state: 'visible', timeout: 5_000 });
  assert.match(
    await text(page, `${panel} .confirm .question`),
    new RegExp(`^Roll ${view} back to version ${version}\\?`),
  );
  await page.click(`${panel} .confirm-yes`);
  await page
    .locator(`${panel} .badge[data-version="${version}"][data-state="live"]`)
    .waitFor({ timeout: opts.liveTimeoutMs ?? 60_000 });
  await waitForText(page, `${panel} .feedback`, new RegExp(`rolling back view ${view} to version ${version}`));
  await historyEntry(page, view, version, 'live');
  await page.locator(`${panel} table tbody tr`).first().waitFor({ timeout: 15_000 });
}

/**
 * The whole round on one view: replay to v2 (asked first), compare v1 with v2 in the page, roll back
 * to the picked v1, each with a screenshot `<prefix>-replayed`, `-diff`, `-rolled-back`. Returns the
 * diff's text for the caller to judge (the same rows when no record arrived in between).
 */
export async function replayDiffRollback(page: Page, view: string, prefix: string): Promise<string> {
  await replayInPage(page, view, 2);
  await historyEntry(page, view, 2, 'live');
  await shot(page, `${prefix}-replayed`);
  const diff = await diffInPage(page, view, 1, 2);
  await shot(page, `${prefix}-diff`, `#view-${view}`);
  await rollbackInPage(page, view, 1);
  await shot(page, `${prefix}-rolled-back`, `#view-${view}`);
  return diff;
}
