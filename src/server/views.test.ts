/**
 * The views plugin through `inject()`, with a running engine: a view's rows, filtered and ordered;
 * the list of views; `POST /v1/sql` answers a SELECT and refuses anything that writes; the view
 * routes need `query` once tokens are configured.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { JSON_TYPE, NDJSON, TOKENS, errorCode, headers, openTestServer, post } from './test-server.ts';

/** Ingests three sales and waits until the view shows them all. */
async function sellAndWait(fastify: FastifyInstance, token?: string): Promise<void> {
  const body = '{"region":"eu","cents":5}\n{"region":"us","cents":7}\n{"region":"eu","cents":1}\n';
  const res = await post(fastify, '/v1/topics/sales/records', body, NDJSON, token);
  assert.equal(res.statusCode, 200, res.body);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const sql = await post(
      fastify,
      '/v1/sql',
      JSON.stringify({ sql: 'SELECT sum(n) AS n FROM sales_totals' }),
      JSON_TYPE,
      token,
    );
    if (sql.statusCode === 200 && (sql.json() as { rows: { n: number }[] }).rows[0]?.n === 3) return;
    if (Date.now() > deadline) throw new Error(`the view never showed the three sales: ${sql.body}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('GET /v1/views/:view answers the live rows, filtered and ordered; GET /v1/views lists it', async (t) => {
  const { fastify } = await openTestServer(t, { engine: true });
  await sellAndWait(fastify);
  const all = await fastify.inject({ method: 'GET', url: '/v1/views/sales_totals?order=-cents', headers: headers() });
  assert.equal(all.statusCode, 200, all.body);
  assert.deepEqual((all.json() as { rows: unknown[] }).rows, [
    { region: 'us', cents: 7, n: 1 },
    { region: 'eu', cents: 6, n: 2 },
  ]);
  const eu = await fastify.inject({ method: 'GET', url: '/v1/views/sales_totals?region=eu', headers: headers() });
  assert.deepEqual((eu.json() as { rows: unknown[] }).rows, [{ region: 'eu', cents: 6, n: 2 }]);
  const bad = await fastify.inject({ method: 'GET', url: '/v1/views/sales_totals?nosuch=1', headers: headers() });
  assert.equal(bad.statusCode, 400, bad.body);
  const list = await fastify.inject({ method: 'GET', url: '/v1/views', headers: headers() });
  const v = (list.json() as { views: { name: string; live: number; keyColumns: string[] }[] }).views.find(
    (x) => x.name === 'sales_totals',
  );
  assert.equal(v?.live, 1);
  assert.deepEqual(v?.keyColumns, ['region']);
  const unknown = await fastify.inject({ method: 'GET', url: '/v1/views/nosuch', headers: headers() });
  assert.equal(unknown.statusCode, 404, unknown.body);
  assert.equal(errorCode(unknown), 'KAPPA_UNKNOWN_VIEW');
});

test('POST /v1/sql answers a SELECT and refuses a statement that writes, which changes nothing', async (t) => {
  const { fastify } = await openTestServer(t, { engine: true });
  await sellAndWait(fastify);
  const sql = (text: string) => post(fastify, '/v1/sql', JSON.stringify({ sql: text }));
  const ok = await post(
    fastify,
    '/v1/sql',
    JSON.stringify({ sql: 'SELECT cents FROM sales_totals WHERE region = ?', params: ['us'] }),
  );
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { columns: ['cents'], rows: [{ cents: 7 }] });
  for (const text of ['DELETE FROM sales_totals__v1', 'DROP VIEW sales_totals']) {
    const refused = await sql(text);
    assert.equal(refused.statusCode, 400, `${text}: ${refused.body}`);
    assert.match(errorCode(refused), /KAPPA_QUERY_NOT_READ_ONLY|KAPPA_SQL_ERROR/);
  }
  assert.deepEqual((await sql('SELECT count(*) AS n FROM sales_totals')).json(), { columns: ['n'], rows: [{ n: 2 }] });
  const noSql = await post(fastify, '/v1/sql', '{}');
  assert.equal(noSql.statusCode, 400, noSql.body);
  assert.equal(errorCode(noSql), 'KAPPA_INVALID_ARGUMENT');
});

test('the view routes need query: 401 without a token, 403 with a producer token', async (t) => {
  const { fastify } = await openTestServer(t, { tokens: true });
  for (const [method, url] of [
    ['GET', '/v1/views'],
    ['GET', '/v1/views/sales_totals'],
    ['POST', '/v1/sql'],
  ] as const) {
    const payload = method === 'POST' ? '{"sql":"SELECT 1"}' : undefined;
    const none = await fastify.inject({ method, url, headers: headers(undefined, JSON_TYPE), payload });
    assert.equal(none.statusCode, 401, `${url}: ${none.body}`);
    const wrong = await fastify.inject({ method, url, headers: headers(TOKENS.producer, JSON_TYPE), payload });
    assert.equal(wrong.statusCode, 403, `${url}: ${wrong.body}`);
  }
  const ok = await post(fastify, '/v1/sql', '{"sql":"SELECT 1 AS one"}', JSON_TYPE, TOKENS.query);
  assert.equal(ok.statusCode, 200, ok.body);
});
