/**
 * The pipelines plugin through `inject()`: `GET /v1/pipelines` lists the tasks and the builds,
 * a replay starts a new build that the list then shows, build commands need `admin`, and without
 * an engine they are a 503. The Kafka consumer groups the server is given show in
 * `GET /v1/pipelines`, in the dashboard's overview and in /metrics; without them the list is empty.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import type { GroupLag } from '../kafka/index.ts';
import { openFileLog } from '../log/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { buildServer } from './server.ts';
import { JSON_TYPE, TOKENS, errorCode, headers, openTestServer, post, salesApp } from './test-server.ts';

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
  // One process, no shared store: no `cluster` section and no owners (test/cluster/surfaces.test.ts: several).
  assert.equal('cluster' in list, false);
  assert.equal(
    list.tasks.some((x) => 'owner' in x),
    false,
  );
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
  assert.deepEqual(pipelines.json(), { tasks: [], builds: [], consumerGroups: [] });
});

/** A consumer group as the running coordinator describes it: Stable, one member owning both partitions. */
const BILLING: GroupLag = {
  groupId: 'billing',
  state: 'Stable',
  protocolType: 'consumer',
  protocol: 'range',
  generationId: 3,
  members: [
    {
      memberId: 'billing-1-abc',
      groupInstanceId: null,
      clientId: 'billing-1',
      clientHost: '/127.0.0.1',
      assignment: [{ topic: 'sales', partitions: [0, 1] }],
    },
  ],
  partitions: [0, 1].map((partition) => ({
    topic: 'sales',
    partition,
    committedOffset: 4 - 2 * partition,
    logEndOffset: 10,
    lag: 6 + 2 * partition,
    owner: { memberId: 'billing-1-abc', clientId: 'billing-1', clientHost: '/127.0.0.1' },
  })),
  lag: 14,
};

test('the consumer groups the server is asked for show in GET /v1/pipelines, the overview and /metrics', async (t) => {
  const dir = tempDir(t, 'kappa-pipelines-groups-');
  const log = await openFileLog({ dir: join(dir, 'log'), logger: { info() {}, warn() {} } });
  defer(t, () => log.close());
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  defer(t, () => store.close());
  let asked = 0;
  const fastify = await buildServer({
    log,
    store,
    control: store,
    app: salesApp(false),
    engine: null,
    consumerGroups: async () => {
      asked++;
      return [BILLING];
    },
  });
  defer(t, () => fastify.close());

  const pipelines = await fastify.inject({ method: 'GET', url: '/v1/pipelines', headers: headers() });
  assert.equal(pipelines.statusCode, 200, pipelines.body);
  assert.deepEqual((pipelines.json() as { consumerGroups: GroupLag[] }).consumerGroups, [BILLING]);
  const overview = await fastify.inject({ method: 'GET', url: '/v1/overview', headers: headers() });
  assert.deepEqual((overview.json() as { consumerGroups: GroupLag[] }).consumerGroups, [BILLING]);
  // Asked afresh each time: the groups' lag moves as records arrive and consumers commit.
  assert.equal(asked, 2);

  const metrics = (await fastify.inject({ method: 'GET', url: '/metrics', headers: headers() })).body;
  assert.match(metrics, /^kappa_kafka_consumer_group_lag\{group="billing",topic="sales",partition="0"\} 6$/m);
  assert.match(metrics, /^kappa_kafka_consumer_group_lag\{group="billing",topic="sales",partition="1"\} 8$/m);
  assert.match(metrics, /^kappa_kafka_consumer_group_members\{group="billing"\} 1$/m);
});
