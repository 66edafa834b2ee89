/**
 * The pipelines plugin through `inject()`: `GET /v1/pipelines` lists the tasks and the builds,
 * a replay starts a new build that the list then shows, build commands need `admin`, and without
 * an engine they are a 503.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JSON_TYPE, TOKENS, errorCode, headers, openTestServer, post } from './test-server.ts';

interface Pipelines {
  tasks: { view: string; topic: string; partition: number; lag: number }[];
  builds: { name: string; version: number }[];
}

test('GET /v1/pipelines lists the tasks and the builds; a replay adds a build', async (t) => {
  const { fastify, store } = await openTestServer(t, { engine: true });
  // A view has a live version once it has rows; only then can it be replayed.
  const sale = await post(fastify, '/v1/topics/sales/records', '{"region":"eu","cents":5}');
  assert.equal(sale.statusCode, 200, sale.body);
  for (let i = 0; i < 500 && !(await store.versions()).some((v) => v.state === 'live'); i++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  const before = await fastify.inject({ method: 'GET', url: '/v1/pipelines', headers: headers() });
  assert.equal(before.statusCode, 200, before.body);
  const list = before.json() as Pipelines;
  assert.deepEqual(
    list.tasks
      .filter((x) => x.view === 'sales_totals')
      .map((x) => `${x.topic}/${x.partition}`)
      .sort(),
    ['sales/0', 'sales/1'],
  );
  const replay = await post(fastify, '/v1/views/sales_totals/replay', '{}');
  assert.equal(replay.statusCode, 202, replay.body);
  const { version } = replay.json() as { version: number };
  const after = (await fastify.inject({ method: 'GET', url: '/v1/pipelines', headers: headers() })).json() as Pipelines;
  assert.ok(
    after.builds.some((b) => b.name === 'sales_totals' && b.version === version),
    JSON.stringify(after.builds),
  );
  const unknown = await post(fastify, '/v1/views/nosuch/replay', '{}');
  assert.equal(unknown.statusCode, 404, unknown.body);
});

test('build commands need admin: 401 without a token, 403 with a query token', async (t) => {
  const { fastify } = await openTestServer(t, { tokens: true });
  for (const command of ['replay', 'rollback', 'cancel']) {
    const send = (token?: string) => post(fastify, `/v1/views/sales_totals/${command}`, '{}', JSON_TYPE, token);
    assert.equal((await send()).statusCode, 401, command);
    const wrong = await send(TOKENS.query);
    assert.equal(wrong.statusCode, 403, `${command}: ${wrong.body}`);
    // This server runs no engine: admin gets through to a 503.
    const admin = await send(TOKENS.admin);
    assert.equal(admin.statusCode, 503, `${command}: ${admin.body}`);
    assert.equal(errorCode(admin), 'KAPPA_NOT_READY');
  }
  const pipelines = await fastify.inject({ method: 'GET', url: '/v1/pipelines', headers: headers(TOKENS.query) });
  assert.deepEqual(pipelines.json(), { tasks: [], builds: [] });
});
