/**
 * The multiplexed event stream, GET /v1/events (events.ts): the scopes of the routes it stands for
 * (a view or the overview needs `query`, a topic `consume:<topic>`), refusals that change nothing,
 * and overview ticks, view changes and topic records arriving over one connection whose
 * subscriptions change without reconnecting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openSse } from '../../test/support/http.ts';
import { TOKENS, errorCode, headers, openTestServer, post } from './test-server.ts';

test('GET /v1/events needs query for views and the overview, consume:<topic> for a topic', async (t) => {
  const { fastify, store } = await openTestServer(t, { engine: true, tokens: true });
  assert.equal(
    (await post(fastify, '/v1/topics/sales/records', '{"region":"eu","cents":1}', undefined, TOKENS.admin)).statusCode,
    200,
  );
  for (let i = 0; i < 200 && (await store.versions()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const status = async (url: string, token?: string): Promise<[number, string]> => {
    const res = await fastify.inject({ method: 'GET', url, headers: headers(token) });
    return [res.statusCode, errorCode(res)];
  };
  assert.deepEqual(await status('/v1/events?overview=1'), [401, 'KAPPA_UNAUTHENTICATED']);
  assert.deepEqual(await status('/v1/events?overview=1', TOKENS.producer), [403, 'KAPPA_FORBIDDEN']);
  assert.deepEqual(await status('/v1/events?views=sales_totals', TOKENS.producer), [403, 'KAPPA_FORBIDDEN']);
  // A query token may follow views but not read a topic, even named after a view.
  assert.deepEqual(await status('/v1/events?views=sales_totals&topics=sales', TOKENS.query), [403, 'KAPPA_FORBIDDEN']);
  assert.deepEqual(await status('/v1/events?topics=sales', TOKENS.query), [403, 'KAPPA_FORBIDDEN']);
  // Unknown names are refused before the stream opens.
  assert.deepEqual(await status('/v1/events?views=nosuch', TOKENS.query), [404, 'KAPPA_UNKNOWN_VIEW']);
  assert.deepEqual(await status('/v1/events?topics=nosuch', TOKENS.admin), [404, 'KAPPA_UNKNOWN_TOPIC']);
  assert.deepEqual(await status('/v1/events?topics=sales&recent=-1', TOKENS.admin), [400, 'KAPPA_INVALID_ARGUMENT']);
  // The route table lists it with the scope it declares for a request that names nothing.
  assert.deepEqual(
    fastify.kappaRoutes.filter((r) => r.url.startsWith('/v1/events')).map((r) => `${r.method} ${r.url} ${r.scope}`),
    [
      'GET /v1/events query',
      'POST /v1/events/:stream/subscriptions query',
      'DELETE /v1/events/:stream/subscriptions query',
    ],
  );
});

test('one stream carries overview ticks, view rows and topic records; subscriptions change without reconnecting', async (t) => {
  const { fastify, store } = await openTestServer(t, { engine: true });
  const produce = async (body: string): Promise<void> =>
    assert.equal((await post(fastify, '/v1/topics/sales/records', body)).statusCode, 200);
  await produce('{"region":"eu","cents":5}');
  for (let i = 0; i < 200 && (await store.versions()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const url = await fastify.listen({ host: '127.0.0.1', port: 0 });
  const sse = await openSse(`${url}/v1/events?overview=1&topics=sales&recent=1`);
  t.after(() => sse.close());
  assert.equal(sse.status, 200);
  const seen = async (
    pred: (e: { event: string; data: string }) => boolean,
    what: string,
  ): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 200; i++) {
      const e = sse.events.find(pred);
      if (e !== undefined) return JSON.parse(e.data) as Record<string, unknown>;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no ${what} arrived: ${JSON.stringify(sse.events.map((e) => e.event))}`);
  };
  const hello = await seen((e) => e.event === 'hello', 'hello');
  assert.deepEqual(hello.views, []);
  const stream = String(hello.stream);
  await seen((e) => e.event === 'overview', 'overview');
  // The last record already in the topic (recent=1), then a new one as it is appended.
  const old = await seen((e) => e.event === 'record', 'the recent record');
  assert.deepEqual([old.topic, (old.value as { region: string }).region], ['sales', 'eu']);
  await produce('{"region":"us","cents":7}');
  await seen((e) => e.event === 'record' && e.data.includes('"us"'), 'the new record');
  assert.equal(sse.events.filter((e) => e.event === 'record' && e.data.includes('"eu"')).length, 1);

  // Subscribing to the view: its row changes arrive on the same stream.
  const add = await fastify.inject({
    method: 'POST',
    url: `/v1/events/${stream}/subscriptions?views=sales_totals`,
    headers: headers(),
  });
  assert.equal(add.statusCode, 200, add.body);
  assert.deepEqual((add.json() as { views: string[] }).views, ['sales_totals']);
  await produce('{"region":"asia","cents":9}');
  const row = await seen((e) => e.event === 'row' && e.data.includes('asia'), 'the view row');
  assert.equal(row.view, 'sales_totals');

  // Unsubscribing: nothing more from the topic, the view or the overview.
  const remove = await fastify.inject({
    method: 'DELETE',
    url: `/v1/events/${stream}/subscriptions?views=sales_totals&topics=sales&overview=1`,
    headers: headers(),
  });
  assert.equal(remove.statusCode, 200, remove.body);
  assert.deepEqual(remove.json(), { stream, overview: false, views: [], topics: [] });
  await new Promise((r) => setTimeout(r, 100));
  const before = sse.events.length;
  await produce('{"region":"africa","cents":3}');
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(
    sse.events.slice(before).map((e) => e.event),
    [],
    'no events after unsubscribing',
  );

  // A refused subscription changes nothing; an unknown stream is a 404.
  const refused = await fastify.inject({
    method: 'POST',
    url: `/v1/events/${stream}/subscriptions?views=sales_totals,nosuch`,
    headers: headers(),
  });
  assert.equal(refused.statusCode, 404, refused.body);
  const after = await fastify.inject({
    method: 'DELETE',
    url: `/v1/events/${stream}/subscriptions`,
    headers: headers(),
  });
  assert.deepEqual((after.json() as { views: string[] }).views, []);
  const unknown = await fastify.inject({
    method: 'POST',
    url: '/v1/events/nosuch/subscriptions?overview=1',
    headers: headers(),
  });
  assert.deepEqual([unknown.statusCode, errorCode(unknown)], [404, 'KAPPA_NOT_FOUND']);
});

test('only the token that opened a stream may change its subscriptions', async (t) => {
  const { fastify } = await openTestServer(t, { engine: true, tokens: true });
  const url = await fastify.listen({ host: '127.0.0.1', port: 0 });
  const sse = await openSse(`${url}/v1/events?overview=1&access_token=${TOKENS.query}`);
  t.after(() => sse.close());
  await sse.until(1);
  const { stream } = JSON.parse(sse.events[0].data) as { stream: string };
  const as = (token: string) =>
    fastify.inject({ method: 'POST', url: `/v1/events/${stream}/subscriptions?overview=1`, headers: headers(token) });
  assert.equal((await as(TOKENS.admin)).statusCode, 404, 'another token does not see the stream');
  assert.equal((await as(TOKENS.query)).statusCode, 200);
});
