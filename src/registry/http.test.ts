/**
 * The registry's routes on Kappa's real server (buildServer, called with inject()): Confluent's
 * content types and error shape, the scopes, and bad input that appends nothing to `_schemas`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { type FileLog, openFileLog } from '../log/index.ts';
import { buildServer } from '../server/index.ts';
import { TOKENS, salesApp } from '../server/test-server.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { SCHEMAS_TOPIC } from './store.ts';
import { toyCodec, toySchema } from './test-helpers.ts';

const V1 = toySchema('Sale', 'region:string', 'cents:int');
const V2 = toySchema('Sale', 'region:string', 'cents:long', 'note:string=""');
const BAD = toySchema('Sale', 'region:int');
const SR = 'application/vnd.schemaregistry.v1+json';

async function server(
  t: { after(fn: () => unknown): void },
  tokens = false,
): Promise<{ fastify: FastifyInstance; log: FileLog }> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-registry-http-'));
  const log = await openFileLog({ dir: join(dir, 'log'), logger: { info() {}, warn() {} } });
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  const fastify = await buildServer({
    log,
    store,
    control: store,
    app: salesApp(tokens),
    engine: null,
    schemaRegistry: { codecs: { AVRO: toyCodec() }, schemaBytesMax: 64 * 1024 },
  });
  t.after(async () => {
    await fastify.close();
    await store.close();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fastify, log };
}

function call(
  fastify: FastifyInstance,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return fastify.inject({
    method,
    url: `/schemas${url}`,
    headers: { host: '127.0.0.1', ...(body === undefined ? {} : { 'content-type': SR }), ...headers },
    payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function confluentError(res: LightMyRequestResponse, status: number, errorCode: number): string {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json() as { error_code: number; message: string };
  assert.equal(body.error_code, errorCode, res.body);
  assert.equal(typeof body.message, 'string');
  assert.deepEqual(Object.keys(body).sort(), ['error_code', 'message']);
  return body.message;
}

test('register, read back and look up, in each of the three content types', async (t) => {
  const { fastify } = await server(t);
  const reg = await call(fastify, 'POST', '/subjects/sales-value/versions', { schema: V1 });
  assert.equal(reg.statusCode, 200, reg.body);
  assert.deepEqual(reg.json(), { id: 1 });
  assert.equal(String(reg.headers['content-type']).split(';')[0], SR);
  for (const type of [SR, 'application/vnd.schemaregistry+json', 'application/json']) {
    const again = await call(fastify, 'POST', '/subjects/sales-value/versions', JSON.stringify({ schema: V1 }), {
      'content-type': `${type}; charset=utf-8`,
      accept: type,
    });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), { id: 1 });
    assert.equal(String(again.headers['content-type']).split(';')[0], type);
  }
  assert.deepEqual((await call(fastify, 'GET', '/subjects/sales-value/versions')).json(), [1]);
  assert.deepEqual((await call(fastify, 'GET', '/subjects/sales-value/versions/latest')).json(), {
    subject: 'sales-value',
    version: 1,
    id: 1,
    schema: V1,
  });
  assert.equal((await call(fastify, 'GET', '/subjects/sales-value/versions/1/schema')).body, V1);
  assert.deepEqual((await call(fastify, 'GET', '/schemas/ids/1')).json(), { schema: V1 });
  assert.equal((await call(fastify, 'GET', '/schemas/ids/1/schema')).body, V1);
  assert.deepEqual((await call(fastify, 'GET', '/schemas/ids/1/versions')).json(), [
    { subject: 'sales-value', version: 1 },
  ]);
  assert.deepEqual((await call(fastify, 'GET', '/schemas/ids/1/subjects')).json(), ['sales-value']);
  assert.deepEqual((await call(fastify, 'GET', '/schemas/types')).json(), ['AVRO']);
  assert.deepEqual((await call(fastify, 'POST', '/subjects/sales-value', { schema: V1 })).json(), {
    subject: 'sales-value',
    version: 1,
    id: 1,
    schema: V1,
  });
  assert.deepEqual((await call(fastify, 'GET', '/subjects')).json(), ['sales-value']);
  assert.deepEqual((await call(fastify, 'GET', '/config')).json(), { compatibilityLevel: 'BACKWARD' });
  assert.deepEqual((await call(fastify, 'PUT', '/config/sales-value', { compatibility: 'full' })).json(), {
    compatibility: 'FULL',
  });
  assert.deepEqual((await call(fastify, 'GET', '/config/sales-value')).json(), { compatibilityLevel: 'FULL' });
  assert.deepEqual((await call(fastify, 'GET', '/mode')).json(), { mode: 'READWRITE' });
  assert.deepEqual((await call(fastify, 'PUT', '/mode/sales-value', { mode: 'READONLY' })).json(), {
    mode: 'READONLY',
  });
  assert.deepEqual((await call(fastify, 'DELETE', '/mode/sales-value')).json(), { mode: 'READONLY' });
});

test('compatibility checks answer is_compatible, and with ?verbose=true the messages naming version, field and rule', async (t) => {
  const { fastify } = await server(t);
  await call(fastify, 'POST', '/subjects/s/versions', { schema: V1 });
  assert.deepEqual((await call(fastify, 'POST', '/compatibility/subjects/s/versions/latest', { schema: V2 })).json(), {
    is_compatible: true,
  });
  const no = await call(fastify, 'POST', '/compatibility/subjects/s/versions/1?verbose=true', { schema: BAD });
  const body = no.json() as { is_compatible: boolean; messages: string[] };
  assert.equal(body.is_compatible, false);
  assert.match(body.messages[0], /^version 1: Sale\.region: field region changed type from string to int/);
  assert.deepEqual((await call(fastify, 'POST', '/compatibility/subjects/s/versions', { schema: V2 })).json(), {
    is_compatible: true,
  });
  const refused = await call(fastify, 'POST', '/subjects/s/versions', { schema: BAD });
  assert.match(confluentError(refused, 409, 409), /version 1: Sale\.region: field region changed type/);
});

test('errors are Confluent’s {error_code, message}, and bad input appends nothing to _schemas', async (t) => {
  const { fastify, log } = await server(t);
  await call(fastify, 'POST', '/subjects/s/versions', { schema: V1 });
  const end = async (): Promise<number> => (await log.offsets(SCHEMAS_TOPIC, 0)).end;
  const before = await end();
  confluentError(await call(fastify, 'GET', '/subjects/nosuch/versions'), 404, 40401);
  confluentError(await call(fastify, 'GET', '/subjects/s/versions/7'), 404, 40402);
  confluentError(await call(fastify, 'GET', '/subjects/s/versions/0'), 422, 42202);
  confluentError(await call(fastify, 'GET', '/subjects/s/versions/x'), 422, 42202);
  confluentError(await call(fastify, 'GET', '/schemas/ids/99'), 404, 40403);
  confluentError(await call(fastify, 'GET', '/config/s'), 404, 40408);
  confluentError(await call(fastify, 'PUT', '/config', { compatibility: 'SIDEWAYS' }), 422, 42203);
  confluentError(await call(fastify, 'PUT', '/mode', { mode: 'LOUD' }), 422, 42204);
  confluentError(await call(fastify, 'POST', '/subjects/s/versions', { schema: '{"type":' }), 422, 42201);
  confluentError(await call(fastify, 'POST', '/subjects/s/versions', { schema: 7 }), 422, 42201);
  confluentError(await call(fastify, 'POST', '/subjects/s/versions', { schema: V2, schemaType: 'XML' }), 422, 42201);
  confluentError(await call(fastify, 'POST', '/subjects/s/versions', '{"schema":'), 422, 422);
  confluentError(await call(fastify, 'POST', '/subjects/s/versions', '[1]'), 422, 422);
  const huge = toySchema('Sale', `${'x'.repeat(100 * 1024)}:string`);
  assert.match(
    confluentError(await call(fastify, 'POST', '/subjects/s/versions', { schema: huge }), 422, 422),
    /bytes/,
  );
  const tooLong = JSON.stringify({ schema: 'x'.repeat(400 * 1024) });
  confluentError(await call(fastify, 'POST', '/subjects/s/versions', tooLong), 422, 422);
  confluentError(
    await call(fastify, 'POST', '/subjects/s/versions', 'schema', { 'content-type': 'text/plain' }),
    415,
    415,
  );
  confluentError(await call(fastify, 'DELETE', '/subjects/s/versions/1?permanent=true'), 404, 40407);
  confluentError(await call(fastify, 'GET', '/nosuch'), 404, 404);
  assert.equal(await end(), before);
  // Outside /schemas the server keeps its own format.
  const other = await fastify.inject({ method: 'GET', url: '/v1/nosuch', headers: { host: '127.0.0.1' } });
  assert.equal((other.json() as { error: { code: string } }).error.code, 'KAPPA_NOT_FOUND');
});

test('with tokens: reads take any known token, writes need admin; refusals in Confluent’s shape', async (t) => {
  const { fastify } = await server(t, true);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  confluentError(await call(fastify, 'GET', '/subjects'), 401, 40101);
  confluentError(await call(fastify, 'GET', '/subjects', undefined, bearer('kp_unknown')), 401, 40101);
  confluentError(
    await call(fastify, 'POST', '/subjects/s/versions', { schema: V1 }, bearer(TOKENS.producer)),
    403,
    40301,
  );
  assert.equal(
    (await call(fastify, 'POST', '/subjects/s/versions', { schema: V1 }, bearer(TOKENS.admin))).statusCode,
    200,
  );
  for (const token of [TOKENS.query, TOKENS.producer, TOKENS.admin]) {
    const res = await call(fastify, 'GET', '/schemas/ids/1', undefined, bearer(token));
    assert.equal(res.statusCode, 200, res.body);
  }
  const routes = fastify.kappaRoutes.filter((r) => r.url.startsWith('/schemas'));
  assert.ok(routes.length >= 20);
  for (const r of routes)
    assert.equal(r.scope, r.method === 'GET' ? 'any valid token' : r.scope, `${r.method} ${r.url}`);
  assert.deepEqual(
    routes.filter((r) => r.scope === 'admin').map((r) => `${r.method} ${r.url}`),
    [
      'POST /schemas/subjects/:subject/versions',
      'DELETE /schemas/subjects/:subject',
      'DELETE /schemas/subjects/:subject/versions/:version',
      'PUT /schemas/config',
      'PUT /schemas/config/:subject',
      'DELETE /schemas/config/:subject',
      'PUT /schemas/mode',
      'PUT /schemas/mode/:subject',
      'DELETE /schemas/mode/:subject',
    ],
  );
});
