/**
 * `kappa demo --host 0.0.0.0`, to reach the demo from another machine or from outside a container:
 * the demo makes a token for the run, prints the dashboard's URL carrying it (in the #fragment)
 * and the curl with the header, and the server takes that token and refuses requests without it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoAccess, reachableUrl } from '../../src/cli/demo.ts';
import { tempDir } from '../support/cleanup.ts';
import { call } from '../support/http.ts';
import { startKappa } from '../support/processes.ts';

test('the demo makes a token only beyond loopback, and shows a wildcard address as a reachable one', () => {
  assert.equal(demoAccess(undefined), null);
  assert.equal(demoAccess('127.0.0.1'), null);
  const access = demoAccess('0.0.0.0');
  assert.ok(access !== null);
  assert.match(access.token, /^\S{20,}$/);
  assert.deepEqual(access.tokens[0].scopes, ['admin']);
  assert.notEqual(access.tokens[0].sha256, access.token, 'the server is given the hash, not the token');
  assert.match(reachableUrl('http://0.0.0.0:8080'), /^http:\/\/\d+\.\d+\.\d+\.\d+:8080$/);
  assert.equal(reachableUrl('http://10.1.2.3:8080'), 'http://10.1.2.3:8080');
});

test(
  'kappa demo --host 0.0.0.0 prints a dashboard URL with its token, and the API takes that token only',
  {
    timeout: 120_000,
  },
  async (t) => {
    const dir = tempDir(t, 'kappa-demo-remote-');
    const demo = startKappa(t, [
      '--data-dir',
      dir,
      'demo',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--rate',
      '20',
      '--history',
      '0',
      '--workers',
      '0',
    ]);
    const [, url, token] = await demo.waitForOutput(/Dashboard\s+(http:\/\/\S+?)\/#token=(\S+)/, { timeoutMs: 90_000 });
    assert.match(demo.stdout, new RegExp(`curl -s -H 'authorization: Bearer ${token}'`));
    const port = new URL(url).port;
    const local = `http://127.0.0.1:${port}`;
    assert.equal((await call(local, 'GET', '/v1/views')).status, 401);
    assert.equal((await call(local, 'GET', '/v1/views', { token: 'not-the-token' })).status, 401);
    assert.equal((await call(local, 'GET', '/v1/views', { token })).status, 200);
    assert.equal((await call(local, 'GET', '/')).status, 200, 'the dashboard page itself is open');
    await demo.stop();
  },
);
