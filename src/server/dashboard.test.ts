/**
 * The dashboard plugin through `inject()`: its page and files are served without a token, an
 * unknown file is a 404, and the overview (which holds data) needs `query` and names the config's views
 * and the dead-letter topics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOKENS, errorCode, headers, openTestServer, post } from './test-server.ts';

test('GET / serves index.html and /assets/ the dashboard files, without a token', async (t) => {
  const { fastify } = await openTestServer(t, { tokens: true });
  const page = await fastify.inject({ method: 'GET', url: '/', headers: headers() });
  assert.equal(page.statusCode, 200, page.body);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(page.body, /<html/i);
  for (const [file, type] of [
    ['dashboard.js', 'text/javascript'],
    ['uplot.css', 'text/css'],
  ]) {
    const asset = await fastify.inject({ method: 'GET', url: `/assets/${file}`, headers: headers() });
    assert.equal(asset.statusCode, 200, file);
    assert.ok(String(asset.headers['content-type']).startsWith(type), file);
    assert.ok(asset.rawPayload.length > 0, file);
  }
  const missing = await fastify.inject({ method: 'GET', url: '/assets/nosuch.js', headers: headers() });
  assert.equal(missing.statusCode, 404, missing.body);
  assert.equal(errorCode(missing), 'KAPPA_NOT_FOUND');
});

test('GET /v1/overview needs query and shows the topics', async (t) => {
  const { fastify } = await openTestServer(t, { tokens: true });
  assert.equal((await fastify.inject({ method: 'GET', url: '/v1/overview', headers: headers() })).statusCode, 401);
  assert.equal(
    (await fastify.inject({ method: 'GET', url: '/v1/overview', headers: headers(TOKENS.producer) })).statusCode,
    403,
  );
  const res = await fastify.inject({ method: 'GET', url: '/v1/overview', headers: headers(TOKENS.query) });
  assert.equal(res.statusCode, 200, res.body);
  const overview = res.json() as { topics: { name: string; partitions: number; records: number }[]; tasks: unknown[] };
  assert.deepEqual(overview.topics.map((x) => [x.name, x.partitions, x.records]).sort(), [
    ['events', 1, 0],
    ['sales', 2, 0],
  ]);
  assert.deepEqual(overview.tasks, []);
});

test('the overview names the running config’s views and every dead-letter topic with its first reason', async (t) => {
  const { fastify } = await openTestServer(t);
  const overview = async (): Promise<{
    configViews: string[];
    deadLetters: { topic: string; source: string; count: number; firstReason: string | null }[];
  }> => (await fastify.inject({ method: 'GET', url: '/v1/overview', headers: headers() })).json();
  assert.deepEqual((await overview()).configViews, ['sales_totals']);
  assert.deepEqual((await overview()).deadLetters, []);
  const res = await post(fastify, '/v1/topics/events/records', '{"kind":7}');
  assert.equal(res.statusCode, 207, res.body);
  const [dlq, ...more] = (await overview()).deadLetters;
  assert.deepEqual(more, []);
  assert.deepEqual([dlq.topic, dlq.source, dlq.count], ['events.dlq', 'events', 1]);
  assert.match(dlq.firstReason ?? '', /kind/);
});
