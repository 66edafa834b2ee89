/**
 * POST /v1/sql cannot take the server down or read Kappa's own tables (issue 12, item 7), on a real
 * server with tokens: a huge value (randomblob, zeroblob, printf) is refused in the query process
 * before the server receives any of it, and the server's event loop keeps turning meanwhile; a
 * result that grows row by row past the limit is refused the same way; parameters nested 100,000
 * deep are a 400 naming the parameter; a token with only the query scope cannot read
 * kappa_view_code or any other kappa_* table, however the statement reaches it. Views, their
 * version tables, the schema and the dashboard's queries still work.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { hashToken, type KappaServer, startServer } from '../../src/server/index.ts';
import { loadApp } from '../../src/stream/index.ts';
import { type Harness, type Reply, call, postJson, salesConfig, startHarness } from './server-harness.ts';

const TOKENS = { admin: 'tok-sql-limits-admin', query: 'tok-sql-limits-query' };
const CONFIG = salesConfig(
  JSON.stringify({
    tokens: [
      { name: 'admin', sha256: hashToken(TOKENS.admin), scopes: ['admin'] },
      { name: 'query', sha256: hashToken(TOKENS.query), scopes: ['query'] },
    ],
  }),
);

const errorCode = (r: Reply): string =>
  (r.body as { error?: { code?: string } }).error?.code ?? `(no error: ${r.text.slice(0, 200)})`;
const errorMessage = (r: Reply): string => (r.body as { error?: { message?: string } }).error?.message ?? '';

/** Runs `fn` and returns the longest the event loop was held meanwhile, in ms. */
async function longestStallMs<T>(fn: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const result = await fn();
    return { result, stallMs: h.max / 1e6 };
  } finally {
    h.disable();
  }
}

describe('POST /v1/sql limits', () => {
  let h: Harness;
  /** A second server on the same store with a long time limit, so the size limits are what stops a query. */
  let patient: KappaServer;
  let root: string;
  const sql = (url: string, body: unknown): Promise<Reply> => postJson(url, '/v1/sql', body, TOKENS.query);

  before(async () => {
    h = await startHarness(CONFIG);
    root = mkdtempSync(join(tmpdir(), 'kappa-sql-limits-'));
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    const file = join(root, 'kappa.config.ts');
    writeFileSync(file, CONFIG);
    patient = await startServer({
      log: h.log,
      store: h.store,
      control: h.store,
      app: await loadApp(file),
      engine: h.engine,
      port: 0,
      sqlTimeoutMs: 60_000,
    });
    const r = await postJson(
      h.url,
      '/v1/topics/sales/records',
      [
        { region: 'north', cents: 100 },
        { region: 'south', cents: 250 },
      ],
      TOKENS.admin,
    );
    assert.equal(r.status, 200, r.text);
    // The view answers once its first rows are committed, which may be one partition's: wait for both rows.
    const deadline = Date.now() + 10_000;
    const rowCount = async (): Promise<number> => {
      const view = await call(h.url, 'GET', '/v1/views/sales_totals', { token: TOKENS.query });
      return view.status === 200 ? ((view.body as { rows?: unknown[] }).rows?.length ?? 0) : 0;
    };
    while ((await rowCount()) !== 2) {
      if (Date.now() > deadline) throw new Error('the view never got its rows');
      await new Promise((res) => setTimeout(res, 20));
    }
  });
  after(async () => {
    await patient?.close();
    await h?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** The query is refused as too large, the server's event loop never stalls, and the next query runs. */
  async function refusedAsTooLarge(query: string): Promise<void> {
    const rssBefore = process.memoryUsage().rss;
    const { result, stallMs } = await longestStallMs(() => sql(patient.url, { sql: query }));
    assert.equal(result.status, 413, result.text.slice(0, 300));
    assert.equal(errorCode(result), 'KAPPA_QUERY_RESULT_TOO_LARGE');
    assert.match(errorMessage(result), /MiB/);
    assert.ok(stallMs < 1500, `the event loop stalled for ${Math.round(stallMs)} ms`);
    assert.ok(process.memoryUsage().rss - rssBefore < 100 * 1024 * 1024, 'the server process never held the value');
    const next = await sql(patient.url, { sql: 'SELECT 2 AS two' });
    assert.equal(next.status, 200, next.text);
  }

  test('SELECT randomblob(300000000) is refused; the server never allocates the value', async () => {
    await refusedAsTooLarge('SELECT randomblob(300000000) AS b');
  });

  test('SELECT zeroblob(1e8) is refused at once without blocking the event loop', async () => {
    const started = Date.now();
    await refusedAsTooLarge('SELECT zeroblob(1e8) AS z');
    assert.ok(Date.now() - started < 15_000);
  });

  test("SELECT printf('%.*c', 5e8, 'x') is refused without blocking the event loop", async () => {
    await refusedAsTooLarge("SELECT printf('%.*c', 500000000, 'x') AS s");
  });

  test('a result that grows past the limit row by row is refused (every row small)', async () => {
    await refusedAsTooLarge(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000) SELECT x, printf('%.2000c', 'y') AS s FROM c",
    );
  });

  test('SQL text longer than 1 MiB is refused before SQLite prepares it', async () => {
    const values = Array.from({ length: 200_000 }, (_, i) => i).join(',');
    const { result, stallMs } = await longestStallMs(() =>
      sql(h.url, { sql: `SELECT count(*) AS n FROM sales_totals WHERE n IN (${values})` }),
    );
    assert.equal(result.status, 400, result.text.slice(0, 300));
    assert.equal(errorCode(result), 'KAPPA_INVALID_ARGUMENT');
    assert.match(errorMessage(result), /characters, more than 1048576: pass long values as parameters/);
    assert.ok(stallMs < 1000, `the event loop stalled for ${Math.round(stallMs)} ms`);
  });

  test('queries run in-process (kappa query, the server reading views) have the same row and byte limits', async () => {
    await assert.rejects(
      h.store.query("SELECT printf('%.*c', 40000000, 'x') AS s"),
      (err: Error & { code?: string }) => err.code === 'KAPPA_QUERY_RESULT_TOO_LARGE' && /32 MiB/.test(err.message),
    );
    await assert.rejects(
      h.store.query('SELECT zeroblob(10000000) AS z'),
      (err: Error & { code?: string }) => err.code === 'KAPPA_QUERY_RESULT_TOO_LARGE',
    );
    assert.deepEqual((await h.store.query("SELECT length(printf('%.*c', 40000000, 'x')) AS n")).rows, [
      { n: 40_000_000 },
    ]);
  });

  test('params nested 100,000 deep are refused with a 400 and the server stays up; nested params are a 400 naming the parameter', async () => {
    const nested = (depth: number): string =>
      `{"sql":"SELECT ? AS a, ? AS b","params":[1,${'['.repeat(depth)}${']'.repeat(depth)}]}`;
    const deep = await call(h.url, 'POST', '/v1/sql', {
      body: nested(100_000),
      type: 'application/json',
      token: TOKENS.query,
    });
    assert.equal(deep.status, 400, deep.text.slice(0, 300));
    assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    // Within any limit on the body's depth, a nested parameter is still refused, by name.
    const r = await call(h.url, 'POST', '/v1/sql', {
      body: nested(500),
      type: 'application/json',
      token: TOKENS.query,
    });
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(errorCode(r), 'KAPPA_INVALID_ARGUMENT');
    assert.match(errorMessage(r), /params\[1\]/);
    assert.deepEqual((r.body as { error: { details: unknown } }).error.details, { param: 1 });
    for (const bad of [{ a: 1 }, [1]]) {
      const one = await sql(h.url, { sql: 'SELECT ? AS a', params: [bad] });
      assert.equal(one.status, 400, one.text);
      assert.match(errorMessage(one), /params\[0\]/);
    }
    const ok = await sql(h.url, {
      sql: 'SELECT ? AS s, ? AS n, ? AS t, ? AS f, ? AS z',
      params: ['x', 1.5, true, false, null],
    });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual((ok.body as { rows: unknown[] }).rows, [{ s: 'x', n: 1.5, t: 1, f: 0, z: null }]);
  });

  test("a token with only the query scope cannot read kappa_view_code or any of Kappa's own tables", async () => {
    const r = await sql(h.url, { sql: 'SELECT * FROM kappa_view_code' });
    assert.equal(r.status, 403, r.text.slice(0, 300));
    assert.equal(errorCode(r), 'KAPPA_QUERY_NOT_A_VIEW');
    assert.match(
      errorMessage(r),
      /^kappa_view_code is not a view; queries can read the views listed by GET \/v1\/views/,
    );
    assert.doesNotMatch(r.text, /defineApp|sha256/);
    for (const [query, table] of [
      ['SELECT code FROM kappa_view_code', 'kappa_view_code'],
      ['select count(*) from KAPPA_VIEW_CODE', 'kappa_view_code'],
      ['SELECT * FROM main.kappa_views', 'kappa_views'],
      ['SELECT * FROM kappa_checkpoints', 'kappa_checkpoints'],
      ['SELECT * FROM kappa_builds', 'kappa_builds'],
      ['SELECT * FROM kappa_requests', 'kappa_requests'],
      ['SELECT * FROM kappa_output_checkpoints', 'kappa_output_checkpoints'],
      ['SELECT region FROM sales_totals WHERE region IN (SELECT name FROM kappa_view_code)', 'kappa_view_code'],
      ['WITH c AS (SELECT substr(code, 1, 10) AS s FROM kappa_view_code) SELECT s FROM c', 'kappa_view_code'],
      ['SELECT (SELECT max(version) FROM kappa_views) AS v', 'kappa_views'],
      ['SELECT * FROM sales_totals, kappa_views LIMIT 1', 'kappa_views'],
    ]) {
      const refused = await sql(h.url, { sql: query });
      assert.equal(refused.status, 403, `${query}: ${refused.text.slice(0, 300)}`);
      assert.equal(errorCode(refused), 'KAPPA_QUERY_NOT_A_VIEW', query);
      assert.deepEqual((refused.body as { error: { details: unknown } }).error.details, { table }, query);
    }
    // Raw pages: refused by name where SQLite has the table (this build has not: "no such table").
    const dbpage = await sql(h.url, { sql: 'SELECT data FROM sqlite_dbpage' });
    assert.ok(dbpage.status === 403 || errorCode(dbpage) === 'KAPPA_SQL_ERROR', dbpage.text);
    const ext = await sql(h.url, { sql: "SELECT load_extension('/tmp/nothing')" });
    assert.equal(ext.status, 400, ext.text);
  });

  test("views, version tables, the schema and the dashboard's queries still work", async () => {
    const rows = async (query: string, params: unknown[] = []): Promise<Record<string, unknown>[]> => {
      const r = await sql(h.url, { sql: query, params });
      assert.equal(r.status, 200, `${query}: ${r.text.slice(0, 300)}`);
      return (r.body as { rows: Record<string, unknown>[] }).rows;
    };
    // The dashboard's SQL console, with its default query's shape.
    assert.deepEqual(await rows('SELECT * FROM sales_totals ORDER BY cents DESC LIMIT 10'), [
      { region: 'south', cents: 250, n: 1 },
      { region: 'north', cents: 100, n: 1 },
    ]);
    assert.deepEqual(await rows('SELECT count(*) AS n FROM sales_totals WHERE cents > ?', [150]), [{ n: 1 }]);
    assert.deepEqual(await rows('SELECT region FROM sales_totals__v1 ORDER BY region'), [
      { region: 'north' },
      { region: 'south' },
    ]);
    assert.deepEqual(await rows("SELECT name FROM sqlite_schema WHERE type = 'view'"), [{ name: 'sales_totals' }]);
    assert.deepEqual(
      (await rows("SELECT name FROM pragma_table_info('sales_totals')")).map((r) => r.name),
      ['region', 'cents', 'n'],
    );
    assert.equal((await rows('EXPLAIN QUERY PLAN SELECT * FROM sales_totals')).length > 0, true);
    assert.deepEqual(await rows("SELECT value FROM json_each('[1,2]')"), [{ value: 1 }, { value: 2 }]);
    assert.deepEqual(
      await rows('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) SELECT sum(x) AS s FROM c'),
      [{ s: 6 }],
    );
    assert.deepEqual(
      await rows(
        'SELECT t.region, u.cents FROM sales_totals t JOIN sales_totals__v1 u USING (region) ORDER BY 1 LIMIT 1',
      ),
      [{ region: 'north', cents: 100 }],
    );
    // The dashboard's other reads of views go through these routes.
    assert.equal((await call(h.url, 'GET', '/v1/views', { token: TOKENS.query })).status, 200);
    assert.equal(
      (await call(h.url, 'GET', '/v1/views/sales_totals?order=-cents&limit=1', { token: TOKENS.query })).status,
      200,
    );
    assert.equal((await call(h.url, 'GET', '/v1/overview', { token: TOKENS.query })).status, 200);
  });
});
