/**
 * Every route × every kind of caller: no token, a token the server does not know, a known token
 * without the route's scope, and a token with it. Every cell is asserted. The table below must
 * name every route the server has, with the scope it declares: a new route without a row here
 * (or with another scope) fails the test, so no route is added without deciding who may call it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashToken } from '../../src/server/index.ts';
import { type Harness, call, salesConfig, startHarness } from './server-harness.ts';

const TOKENS = {
  admin: 'tok-admin',
  query: 'tok-query',
  producer: 'tok-produce-sales',
  consumer: 'tok-consume-sales',
  wildcard: 'tok-produce-any',
  other: 'tok-consume-other',
};

const SERVER = JSON.stringify({
  tokens: [
    { name: 'admin', sha256: hashToken(TOKENS.admin), scopes: ['admin'] },
    { name: 'query', sha256: hashToken(TOKENS.query), scopes: ['query'] },
    { name: 'producer', sha256: hashToken(TOKENS.producer), scopes: ['produce:sales'] },
    { name: 'consumer', sha256: hashToken(TOKENS.consumer), scopes: ['consume:sales', 'consume:sales.*'] },
    { name: 'wildcard', sha256: hashToken(TOKENS.wildcard), scopes: ['produce:*'] },
    { name: 'other', sha256: hashToken(TOKENS.other), scopes: ['consume:other'] },
  ],
});

interface Row {
  method: string;
  /** The route as Fastify names it. */
  route: string;
  scope: string | null;
  /** A concrete request to it. */
  path: string;
  body?: string;
  type?: string;
  /** The token that has exactly the scope. */
  valid: keyof typeof TOKENS | null;
  /** What the valid call answers. */
  ok: number;
  /** An event stream: only its status is read. */
  stream?: boolean;
  /** A schema registry route: errors in Confluent's shape ({ error_code, message }). */
  registry?: boolean;
}

const ROUTES: Row[] = [
  { method: 'GET', route: '/healthz', scope: null, path: '/healthz', valid: null, ok: 200 },
  { method: 'GET', route: '/readyz', scope: null, path: '/readyz', valid: null, ok: 200 },
  { method: 'GET', route: '/', scope: null, path: '/', valid: null, ok: 200 },
  { method: 'GET', route: '/assets/:file', scope: null, path: '/assets/dashboard.js', valid: null, ok: 200 },
  { method: 'GET', route: '/v1/overview', scope: 'query', path: '/v1/overview', valid: 'query', ok: 200 },
  {
    method: 'GET',
    route: '/v1/overview/stream',
    scope: 'query',
    path: '/v1/overview/stream',
    valid: 'query',
    ok: 200,
    stream: true,
  },
  {
    method: 'GET',
    route: '/v1/events',
    scope: 'query',
    path: '/v1/events?overview=1',
    valid: 'query',
    ok: 200,
    stream: true,
  },
  {
    method: 'POST',
    route: '/v1/events/:stream/subscriptions',
    scope: 'query',
    path: '/v1/events/nosuch/subscriptions?overview=1',
    valid: 'query',
    ok: 404,
  },
  {
    method: 'DELETE',
    route: '/v1/events/:stream/subscriptions',
    scope: 'query',
    path: '/v1/events/nosuch/subscriptions?overview=1',
    valid: 'query',
    ok: 404,
  },
  { method: 'GET', route: '/metrics', scope: 'admin', path: '/metrics', valid: 'admin', ok: 200 },
  {
    method: 'POST',
    route: '/v1/topics/:topic/records',
    scope: 'produce::topic',
    path: '/v1/topics/sales/records',
    body: '{"region":"north","cents":1}',
    type: 'application/json',
    valid: 'producer',
    ok: 200,
  },
  { method: 'GET', route: '/v1/topics', scope: 'query', path: '/v1/topics', valid: 'query', ok: 200 },
  {
    method: 'GET',
    route: '/v1/topics/:topic',
    scope: 'consume::topic',
    path: '/v1/topics/sales',
    valid: 'consumer',
    ok: 200,
  },
  {
    method: 'GET',
    route: '/v1/topics/:topic/records',
    scope: 'consume::topic',
    path: '/v1/topics/sales/records',
    valid: 'consumer',
    ok: 200,
  },
  { method: 'GET', route: '/v1/views', scope: 'query', path: '/v1/views', valid: 'query', ok: 200 },
  { method: 'GET', route: '/v1/views/:view', scope: 'query', path: '/v1/views/sales_totals', valid: 'query', ok: 200 },
  {
    method: 'GET',
    route: '/v1/views/:view/changes',
    scope: 'query',
    path: '/v1/views/nosuch/changes',
    valid: 'query',
    ok: 404,
  },
  {
    method: 'GET',
    route: '/v1/views/:view/diff',
    scope: 'query',
    path: '/v1/views/nosuch/diff?a=1&b=2',
    valid: 'query',
    ok: 404,
  },
  {
    method: 'GET',
    route: '/v1/views/:view/builds',
    scope: 'query',
    path: '/v1/views/nosuch/builds',
    valid: 'query',
    ok: 404,
  },
  {
    method: 'POST',
    route: '/v1/sql',
    scope: 'query',
    path: '/v1/sql',
    body: '{"sql":"SELECT 1 AS one"}',
    type: 'application/json',
    valid: 'query',
    ok: 200,
  },
  { method: 'GET', route: '/v1/pipelines', scope: 'query', path: '/v1/pipelines', valid: 'query', ok: 200 },
  {
    method: 'POST',
    route: '/v1/views/:view/replay',
    scope: 'admin',
    path: '/v1/views/nosuch/replay',
    body: '{}',
    type: 'application/json',
    valid: 'admin',
    ok: 404,
  },
  {
    method: 'POST',
    route: '/v1/views/:view/rollback',
    scope: 'admin',
    path: '/v1/views/nosuch/rollback',
    body: '{}',
    type: 'application/json',
    valid: 'admin',
    ok: 404,
  },
  {
    method: 'POST',
    route: '/v1/views/:view/cancel',
    scope: 'admin',
    path: '/v1/views/nosuch/cancel',
    body: '{}',
    type: 'application/json',
    valid: 'admin',
    ok: 404,
  },
  // The schema registry (Confluent's API, issue 17): its own error shape; reads take any known token.
  {
    method: 'DELETE',
    route: '/schemas/config/:subject',
    scope: 'admin',
    path: '/schemas/config/nosuch',
    valid: 'admin',
    ok: 404,
    registry: true,
  },
  {
    method: 'DELETE',
    route: '/schemas/mode/:subject',
    scope: 'admin',
    path: '/schemas/mode/nosuch',
    valid: 'admin',
    ok: 200,
    registry: true,
  },
  {
    method: 'DELETE',
    route: '/schemas/subjects/:subject',
    scope: 'admin',
    path: '/schemas/subjects/nosuch',
    valid: 'admin',
    ok: 404,
    registry: true,
  },
  {
    method: 'DELETE',
    route: '/schemas/subjects/:subject/versions/:version',
    scope: 'admin',
    path: '/schemas/subjects/nosuch/versions/1',
    valid: 'admin',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas',
    scope: 'any valid token',
    path: '/schemas',
    valid: 'other',
    ok: 200,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/config',
    scope: 'any valid token',
    path: '/schemas/config',
    valid: 'other',
    ok: 200,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/config/:subject',
    scope: 'any valid token',
    path: '/schemas/config/nosuch',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/mode',
    scope: 'any valid token',
    path: '/schemas/mode',
    valid: 'other',
    ok: 200,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/mode/:subject',
    scope: 'any valid token',
    path: '/schemas/mode/nosuch',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/schemas/ids/:id',
    scope: 'any valid token',
    path: '/schemas/schemas/ids/1',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/schemas/ids/:id/schema',
    scope: 'any valid token',
    path: '/schemas/schemas/ids/1/schema',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/schemas/ids/:id/subjects',
    scope: 'any valid token',
    path: '/schemas/schemas/ids/1/subjects',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/schemas/ids/:id/versions',
    scope: 'any valid token',
    path: '/schemas/schemas/ids/1/versions',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/schemas/types',
    scope: 'any valid token',
    path: '/schemas/schemas/types',
    valid: 'other',
    ok: 200,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/subjects',
    scope: 'any valid token',
    path: '/schemas/subjects',
    valid: 'other',
    ok: 200,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/subjects/:subject/versions',
    scope: 'any valid token',
    path: '/schemas/subjects/nosuch/versions',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/subjects/:subject/versions/:version',
    scope: 'any valid token',
    path: '/schemas/subjects/nosuch/versions/1',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'GET',
    route: '/schemas/subjects/:subject/versions/:version/schema',
    scope: 'any valid token',
    path: '/schemas/subjects/nosuch/versions/1/schema',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'POST',
    route: '/schemas/compatibility/subjects/:subject/versions',
    scope: 'any valid token',
    path: '/schemas/compatibility/subjects/nosuch/versions',
    body: '{"schema":"\\"string\\""}',
    type: 'application/json',
    valid: 'other',
    ok: 200,
    registry: true,
  },
  {
    method: 'POST',
    route: '/schemas/compatibility/subjects/:subject/versions/:version',
    scope: 'any valid token',
    path: '/schemas/compatibility/subjects/nosuch/versions/latest',
    body: '{"schema":"\\"string\\""}',
    type: 'application/json',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'POST',
    route: '/schemas/subjects/:subject',
    scope: 'any valid token',
    path: '/schemas/subjects/nosuch',
    body: '{"schema":"\\"string\\""}',
    type: 'application/json',
    valid: 'other',
    ok: 404,
    registry: true,
  },
  {
    method: 'POST',
    route: '/schemas/subjects/:subject/versions',
    scope: 'admin',
    path: '/schemas/subjects/auth-test-value/versions',
    body: '{"schema":"\\"string\\""}',
    type: 'application/json',
    valid: 'admin',
    ok: 200,
    registry: true,
  },
  {
    method: 'PUT',
    route: '/schemas/config',
    scope: 'admin',
    path: '/schemas/config',
    body: '{"compatibility":"BACKWARD"}',
    type: 'application/json',
    valid: 'admin',
    ok: 200,
    registry: true,
  },
  {
    method: 'PUT',
    route: '/schemas/config/:subject',
    scope: 'admin',
    path: '/schemas/config/auth-test-value',
    body: '{"compatibility":"BACKWARD"}',
    type: 'application/json',
    valid: 'admin',
    ok: 200,
    registry: true,
  },
  {
    method: 'PUT',
    route: '/schemas/mode',
    scope: 'admin',
    path: '/schemas/mode',
    body: '{"mode":"READWRITE"}',
    type: 'application/json',
    valid: 'admin',
    ok: 200,
    registry: true,
  },
  {
    method: 'PUT',
    route: '/schemas/mode/:subject',
    scope: 'admin',
    path: '/schemas/mode/auth-test-value',
    body: '{"mode":"READWRITE"}',
    type: 'application/json',
    valid: 'admin',
    ok: 200,
    registry: true,
  },
];

describe('routes × scopes', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(salesConfig(SERVER));
    // The view exists once it has rows.
    const r = await call(h.url, 'POST', '/v1/topics/sales/records', {
      body: '{"region":"south","cents":2}',
      type: 'application/json',
      token: TOKENS.producer,
    });
    assert.equal(r.status, 200, r.text);
    for (let i = 0; i < 500 && (await h.store.versions()).length === 0; i++)
      await new Promise((res) => setTimeout(res, 20));
  });
  after(() => h.close());

  test('the table names every route the server has, with the scope it declares', () => {
    const actual = h.server.fastify.kappaRoutes.map((r) => `${r.method} ${r.url} ${r.scope}`).sort();
    const table = ROUTES.map((r) => `${r.method} ${r.route} ${r.scope}`).sort();
    assert.deepEqual(actual, table);
  });

  for (const row of ROUTES) {
    test(`${row.method} ${row.route} (${row.scope ?? 'open'})`, async () => {
      const send = async (token?: string): ReturnType<typeof call> => {
        if (!row.stream) return call(h.url, row.method, row.path, { body: row.body, type: row.type, token });
        const abort = new AbortController();
        const res = await fetch(h.url + row.path, {
          headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
          signal: abort.signal,
        });
        const text = res.ok ? '' : await res.text();
        abort.abort();
        return { status: res.status, headers: res.headers, body: text === '' ? {} : JSON.parse(text), text };
      };
      const code = (r: Awaited<ReturnType<typeof call>>): string =>
        row.registry
          ? String((r.body as { error_code?: number }).error_code ?? '')
          : ((r.body as { error?: { code: string } }).error?.code ?? '');
      const none = await send();
      const wrong = await send('not-a-token');
      const lacking = await send(TOKENS.other);
      const valid = await send(row.valid === null ? undefined : TOKENS[row.valid]);
      if (row.scope === null) {
        for (const r of [none, wrong, lacking, valid]) assert.equal(r.status, row.ok, r.text);
        return;
      }
      assert.equal(none.status, 401, none.text);
      assert.equal(code(none), row.registry ? '40101' : 'KAPPA_UNAUTHENTICATED');
      assert.equal(wrong.status, 401, wrong.text);
      assert.equal(code(wrong), row.registry ? '40101' : 'KAPPA_UNAUTHENTICATED');
      if (row.scope === 'any valid token') assert.equal(lacking.status, row.ok, lacking.text);
      else {
        assert.equal(lacking.status, 403, lacking.text);
        assert.equal(code(lacking), row.registry ? '40301' : 'KAPPA_FORBIDDEN');
      }
      assert.equal(valid.status, row.ok, valid.text);
      // admin holds every scope
      assert.equal((await send(TOKENS.admin)).status, row.ok);
    });
  }

  test('event streams also take ?access_token= (a browser EventSource cannot send headers); other routes do not', async () => {
    const status = async (path: string, stream: boolean): Promise<number> => {
      const abort = new AbortController();
      const res = await fetch(h.url + path, {
        headers: stream ? { accept: 'text/event-stream' } : {},
        signal: abort.signal,
      });
      abort.abort();
      return res.status;
    };
    assert.equal(await status(`/v1/overview/stream?access_token=${TOKENS.query}`, true), 200);
    assert.equal(await status('/v1/overview/stream?access_token=nope', true), 401);
    assert.equal(
      await status(`/v1/topics/sales/records?partition=0&access_token=${TOKENS.query}`, true),
      403,
      'a query token cannot consume',
    );
    assert.equal(await status(`/v1/topics/sales/records?partition=0&access_token=${TOKENS.consumer}`, true), 200);
    assert.equal(await status(`/v1/views?access_token=${TOKENS.query}`, false), 401, 'only event streams');
  });

  test('wildcards match topic names; a scope for one topic does not open another', async () => {
    const post = (topic: string, token: string): ReturnType<typeof call> =>
      call(h.url, 'POST', `/v1/topics/${topic}/records`, { body: '{"kind":"k"}', type: 'application/json', token });
    assert.equal((await post('events', TOKENS.wildcard)).status, 200);
    assert.equal((await post('events', TOKENS.producer)).status, 403);
    assert.equal((await call(h.url, 'GET', '/v1/topics/events', { token: TOKENS.consumer })).status, 403);
    assert.equal((await call(h.url, 'GET', '/v1/topics/sales.dlq', { token: TOKENS.consumer })).status, 200);
    assert.equal((await call(h.url, 'GET', '/v1/views', { token: 'Bearer' })).status, 401);
    assert.equal(
      (await call(h.url, 'GET', '/v1/views', { headers: { authorization: `Basic ${TOKENS.query}` } })).status,
      401,
    );
  });
});
