/**
 * The health plugin and the hooks every route passes through, through `inject()`: health needs no
 * token, a route's scope is enforced once tokens are configured, and a route that declares no scope
 * cannot be registered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createKappa } from './context.ts';
import { hooks } from './hooks.ts';
import { TOKENS, errorCode, headers, openTestServer, salesApp } from './test-server.ts';

test('/healthz and /readyz answer without a token, even when tokens are configured', async (t) => {
  const { fastify } = await openTestServer(t, { tokens: true });
  const health = await fastify.inject({ method: 'GET', url: '/healthz', headers: headers() });
  assert.equal(health.statusCode, 200, health.body);
  assert.deepEqual(health.json(), { status: 'ok' });
  const ready = await fastify.inject({ method: 'GET', url: '/readyz', headers: headers() });
  assert.equal(ready.statusCode, 200, ready.body);
  assert.deepEqual(ready.json(), { status: 'ready' });
});

test('/metrics needs admin: 401 without a token, 403 with a query token, Prometheus text with admin', async (t) => {
  const { fastify } = await openTestServer(t, { tokens: true });
  const none = await fastify.inject({ method: 'GET', url: '/metrics', headers: headers() });
  assert.equal(none.statusCode, 401, none.body);
  assert.equal(errorCode(none), 'KAPPA_UNAUTHENTICATED');
  const wrong = await fastify.inject({ method: 'GET', url: '/metrics', headers: headers(TOKENS.query) });
  assert.equal(wrong.statusCode, 403, wrong.body);
  assert.equal(errorCode(wrong), 'KAPPA_FORBIDDEN');
  const admin = await fastify.inject({ method: 'GET', url: '/metrics', headers: headers(TOKENS.admin) });
  assert.equal(admin.statusCode, 200, admin.body);
  assert.match(admin.body, /^# HELP kappa_/m);
});

test('without tokens, a request addressed to another host than loopback is refused', async (t) => {
  const { fastify } = await openTestServer(t);
  const res = await fastify.inject({ method: 'GET', url: '/healthz', headers: { host: 'evil.example' } });
  assert.equal(res.statusCode, 403, res.body);
  assert.equal(errorCode(res), 'KAPPA_FORBIDDEN');
});

test("an unknown route is the catalogue's 404", async (t) => {
  const { fastify } = await openTestServer(t);
  const res = await fastify.inject({ method: 'GET', url: '/nosuch', headers: headers() });
  assert.equal(res.statusCode, 404, res.body);
  assert.equal(errorCode(res), 'KAPPA_NOT_FOUND');
});

test('a route that declares no scope cannot be registered', async (t) => {
  const { log, store } = await openTestServer(t);
  const fastify = Fastify();
  fastify.decorate('kappa', createKappa({ log, store, control: store, app: salesApp(false), engine: null }, fastify));
  await fastify.register(hooks);
  try {
    const routes = async (f: FastifyInstance): Promise<void> => {
      f.get('/open', { config: { scope: null } }, async () => 'ok');
      f.get('/unscoped', async () => 'oops');
    };
    await assert.rejects(async () => fastify.register(routes), /route GET \/unscoped declares no scope/);
    assert.deepEqual(fastify.kappaRoutes, [{ method: 'GET', url: '/open', scope: null }]);
  } finally {
    await fastify.close(); // before the log and store it was given close
  }
});
