/**
 * A server without tokens answers only requests addressed to a loopback name (DNS rebinding), and
 * the names listed in KAPPA_ALLOWED_HOSTS: the host of a port-forwarding domain (a remote editor,
 * a container platform), which forwards to 127.0.0.1 but keeps its own Host.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKappaError } from '../errors.ts';
import { allowedHosts } from './hooks.ts';
import { errorCode, openTestServer } from './test-server.ts';

/** Runs `fn` with KAPPA_ALLOWED_HOSTS set to `value` (unset for undefined), restoring it after. */
async function withAllowedHosts<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.KAPPA_ALLOWED_HOSTS;
  if (value === undefined) delete process.env.KAPPA_ALLOWED_HOSTS;
  else process.env.KAPPA_ALLOWED_HOSTS = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.KAPPA_ALLOWED_HOSTS;
    else process.env.KAPPA_ALLOWED_HOSTS = before;
  }
}

test('KAPPA_ALLOWED_HOSTS admits its names and the subdomains of a .domain; other hosts stay refused', async (t) => {
  const { fastify } = await withAllowedHosts('kappa.example, .app.github.dev', () => openTestServer(t));
  const get = (host: string) => fastify.inject({ method: 'GET', url: '/v1/views', headers: { host } });
  for (const host of ['127.0.0.1:8080', 'kappa.example', 'KAPPA.example:443', 'curly-8080.app.github.dev'])
    assert.equal((await get(host)).statusCode, 200, host);
  for (const host of ['evil.example', 'app.github.dev.evil.example', 'kappa.example.evil.example']) {
    const res = await get(host);
    assert.equal(res.statusCode, 403, host);
    assert.equal(errorCode(res), 'KAPPA_FORBIDDEN');
  }
});

test('without KAPPA_ALLOWED_HOSTS a forwarded host is refused with how to allow it', async (t) => {
  const { fastify } = await withAllowedHosts(undefined, () => openTestServer(t));
  const res = await fastify.inject({ method: 'GET', url: '/v1/views', headers: { host: 'curly-8080.app.github.dev' } });
  assert.equal(res.statusCode, 403);
  assert.match(
    (res.json() as { error: { message: string } }).error.message,
    /not "curly-8080\.app\.github\.dev"\. Reaching it through a port-forwarding domain\? Start it with KAPPA_ALLOWED_HOSTS=/,
  );
});

test('a KAPPA_ALLOWED_HOSTS entry that is not a host name is refused', () => {
  assert.throws(
    () => allowedHosts('ok.example, http://bad/'),
    (err) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && /"http:\/\/bad\/" is not a host name/.test(err.message),
  );
  assert.deepEqual(allowedHosts(undefined), { names: new Set(), suffixes: [] });
});
