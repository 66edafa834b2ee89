/**
 * What `POST /v1/sql` and `GET /v1/views/:view` answer beyond the rows: numbers without binary
 * float noise, and SQL errors that a user of the views can act on (a topic is not a view, the
 * views there are, the closest view or column to a mistyped name).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { JSON_TYPE, NDJSON, errorCode, openTestServer, post } from './test-server.ts';
import { withoutFloatNoise } from './views.ts';

async function withOneSale(fastify: FastifyInstance): Promise<void> {
  const res = await post(fastify, '/v1/topics/sales/records', '{"region":"eu","cents":5}\n', NDJSON);
  assert.equal(res.statusCode, 200, res.body);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const sql = await post(fastify, '/v1/sql', JSON.stringify({ sql: 'SELECT count(*) AS n FROM sales_totals' }));
    if (sql.statusCode === 200 && (sql.json() as { rows: { n: number }[] }).rows[0]?.n === 1) return;
    if (Date.now() > deadline) throw new Error(`the view never showed the sale: ${sql.body}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sql = (fastify: FastifyInstance, text: string) =>
  post(fastify, '/v1/sql', JSON.stringify({ sql: text }), JSON_TYPE);

test('withoutFloatNoise rounds fractions to 15 significant digits and leaves whole numbers and other values', () => {
  const rows = withoutFloatNoise([
    { total: 1.1 * 3, tiny: 0.1 + 0.2, exact: 1 / 3, ms: 1780315200000, n: 7, s: 'x', z: null },
  ]);
  assert.deepEqual(rows, [
    { total: 3.3, tiny: 0.3, exact: 0.333333333333333, ms: 1780315200000, n: 7, s: 'x', z: null },
  ]);
});

test('POST /v1/sql answers numbers without float noise', async (t) => {
  const { fastify } = await openTestServer(t, { engine: true });
  await withOneSale(fastify);
  const res = await sql(fastify, 'SELECT 0.1 + 0.2 AS x, cents + 0.1 + 0.2 AS y FROM sales_totals');
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual((res.json() as { rows: unknown[] }).rows, [{ x: 0.3, y: 5.3 }]);
});

test('SQL on a topic says it is a topic and lists the views; a mistyped view or column gets the closest', async (t) => {
  const { fastify } = await openTestServer(t, { engine: true });
  await withOneSale(fastify);
  const topic = await sql(fastify, 'SELECT * FROM sales');
  assert.equal(topic.statusCode, 400, topic.body);
  assert.equal(errorCode(topic), 'KAPPA_SQL_ERROR');
  const topicMessage = (topic.json() as { error: { message: string } }).error.message;
  assert.match(topicMessage, /"sales" is a topic, not a view: SQL reads only views\. The views: sales_totals\./);
  assert.match(topicMessage, /GET \/v1\/topics\/sales\/records/);

  const view = await sql(fastify, 'SELECT * FROM sales_total');
  assert.match(
    (view.json() as { error: { message: string } }).error.message,
    /There is no view "sales_total"\. The views: sales_totals\. Did you mean "sales_totals"\?/,
  );

  const column = await sql(fastify, 'SELECT regoin, sum(cents) FROM sales_totals GROUP BY regoin');
  assert.equal(column.statusCode, 400, column.body);
  assert.match(
    (column.json() as { error: { message: string } }).error.message,
    /no such column: regoin\. Did you mean "region" \(sales_totals\)\?/,
  );

  const unrelated = await sql(fastify, 'SELECT nothing_like_it FROM sales_totals');
  assert.match((unrelated.json() as { error: { message: string } }).error.message, /no such column: nothing_like_it$/);
});
