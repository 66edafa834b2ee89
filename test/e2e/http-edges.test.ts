/**
 * The HTTP server at its edges: what it answers when a request is too deep, too large, addressed to
 * an odd Host, carries its token in the wrong place, breaks the HTTP layer itself, names a long
 * topic, starts a line with a byte order mark, or makes the server fail; and event times a Date
 * cannot hold. Each answer is the catalogue's `{ error: { code, message, details } }`, sent before
 * the connection closes. Real server on port 0, real HTTP (raw sockets where fetch would tidy the
 * request up).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseLine } from '../../src/cli/produce.ts';
import { ERROR_CATALOGUE } from '../../src/errors.ts';
import { Type, defineApp, topic } from '../../src/index.ts';
import { openFileLog } from '../../src/log/index.ts';
import { hashToken, startServer } from '../../src/server/index.ts';
import { BODY_LIMIT_BYTES_DEFAULT } from '../../src/server/server.ts';
import { openSqliteStore, type SqliteStore } from '../../src/view/sqlite/index.ts';
import { type Harness, SRC, call, ends, postJson, rawRequest, startHarness } from './server-harness.ts';
import { tempDir } from '../support/cleanup.ts';

const LONG_TOPIC = `t${'x'.repeat(149)}`; // 150 characters

const CONFIG = (server = '{}'): string => `
import { Type, defineApp, topic } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ region: Type.String({ minLength: 1 }), cents: Type.Integer() });
export default defineApp({
  topics: [
    topic('sales', { partitions: 2, schema: Sale, key: (s) => s.region }),
    topic('loose', { partitions: 1 }),
    topic('timed', { partitions: 1, schema: Type.Object({ ts: Type.Number() }), time: (r) => r.ts }),
    topic('nested', { partitions: 1, time: (r) => r.meta.at }),
    topic(${JSON.stringify(LONG_TOPIC)}, { partitions: 1 }),
  ],
  server: ${server},
});
`;

/** Asserts a catalogue error: the status, the code, and that the two agree with the catalogue. */
function assertError(r: { status: number; body: unknown; text?: string }, status: number, code: string): void {
  assert.equal(r.status, status, r.text ?? JSON.stringify(r.body));
  assert.equal((r.body as { error?: { code?: string } }).error?.code, code, r.text ?? JSON.stringify(r.body));
  assert.equal(ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].status, status);
}

describe('HTTP edges (no tokens)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(CONFIG());
  });
  after(() => h.close());

  test('JSON nested 100,000 deep is a 400 with a KAPPA_ code, for records and for any other JSON body', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const before = await ends(h, 'loose');
    assertError(
      await call(h.url, 'POST', '/v1/topics/loose/records', { body: deep, type: 'application/json' }),
      400,
      'KAPPA_INVALID_RECORD',
    );
    // As one NDJSON line, under a field no schema looks at.
    const line = await call(h.url, 'POST', '/v1/topics/loose/records', {
      body: `{"a":${deep}}\n`,
      type: 'application/x-ndjson',
    });
    assertError(line, 400, 'KAPPA_SCHEMA_VIOLATION');
    assert.match(JSON.stringify(line.body), /more than 1000 deep/);
    assert.deepEqual(await ends(h, 'loose'), before, 'nothing appended');
    // The same limit guards every JSON body the server parses, such as SQL params.
    const sql = await call(h.url, 'POST', '/v1/sql', {
      body: `{"sql":"SELECT ? AS x","params":[${deep}]}`,
      type: 'application/json',
    });
    assertError(sql, 400, 'KAPPA_INVALID_ARGUMENT');
    assert.match((sql.body as { error: { message: string } }).error.message, /more than 1000 deep/);
    // Within the limit is fine.
    const ok = await call(h.url, 'POST', '/v1/topics/loose/records', {
      body: `{"a":${'['.repeat(900)}${']'.repeat(900)}}`,
      type: 'application/json',
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
  });

  test(
    'a 17 MB NDJSON line and a 33 MB JSON body get a 413 answer, not a reset connection',
    { timeout: 60_000 },
    async () => {
      const before = await ends(h, 'loose');
      const line = await call(h.url, 'POST', '/v1/topics/loose/records', {
        body: `{"a":"${'x'.repeat(17 * 1024 * 1024)}"}\n`,
        type: 'application/x-ndjson',
      });
      assertError(line, 413, 'KAPPA_BODY_TOO_LARGE');
      assert.match((line.body as { error: { message: string } }).error.message, /A line of the NDJSON body is over/);
      const json = await call(h.url, 'POST', '/v1/topics/loose/records', {
        body: `{"a":"${'x'.repeat(33 * 1024 * 1024)}"}`,
        type: 'application/json',
      });
      assertError(json, 413, 'KAPPA_BODY_TOO_LARGE');
      assert.deepEqual(await ends(h, 'loose'), before, 'nothing appended');
      assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    },
  );

  test('the loopback Host check parses the Host strictly: only a name or [IPv6] and an optional :port, and only one', async () => {
    const get = (hostLines: string): ReturnType<typeof rawRequest> =>
      rawRequest(h.url, `GET /v1/topics HTTP/1.1\r\n${hostLines}Connection: close\r\n\r\n`);
    for (const host of [
      '127.0.0.1:80@evil.example',
      'localhost:evil',
      '[::1]evil.example',
      'localhost:80:80',
      'evil.example#@localhost',
      '[::1',
      'local host',
      '[evil.example]',
    ]) {
      const r = await get(`Host: ${host}\r\n`);
      assert.ok(r !== null, host);
      assert.ok(r.status === 400 || r.status === 403, `${host}: ${r.text}`);
      assert.ok(
        ['KAPPA_INVALID_ARGUMENT', 'KAPPA_FORBIDDEN'].includes((r.body as { error: { code: string } }).error.code),
        `${host}: ${r.text}`,
      );
    }
    const two = await get('Host: localhost\r\nHost: evil.example\r\n');
    assertError(two!, 400, 'KAPPA_INVALID_ARGUMENT');
    assertError((await get('Host: evil.example\r\n'))!, 403, 'KAPPA_FORBIDDEN');
    for (const host of ['localhost', 'LOCALHOST:8080', '127.0.0.1', '127.0.0.1:1', '[::1]', '[::1]:8080']) {
      assert.equal((await get(`Host: ${host}\r\n`))?.status, 200, host);
    }
  });

  test("errors Fastify and Node would answer themselves carry the catalogue's codes", async () => {
    const get = (target: string, headers = ''): ReturnType<typeof rawRequest> =>
      rawRequest(h.url, `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${headers}Connection: close\r\n\r\n`);
    assertError((await get(`/v1/topics/${'a'.repeat(800)}`))!, 414, 'KAPPA_URI_TOO_LONG');
    assertError((await get('/v1/topics/%zz'))!, 400, 'KAPPA_INVALID_ARGUMENT');
    assertError((await get('/healthz', `X-Big: ${'a'.repeat(20_000)}\r\n`))!, 431, 'KAPPA_HEADERS_TOO_LARGE');
    assertError((await rawRequest(h.url, 'NOT HTTP AT ALL\r\n\r\n'))!, 400, 'KAPPA_INVALID_ARGUMENT');
    // Fastify's own refusals on a route: a body shorter than its Content-Length.
    const short = await rawRequest(
      h.url,
      'POST /v1/sql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"sql":"SELECT 1"}',
    );
    if (short !== null) assert.match((short.body as { error: { code: string } }).error.code, /^KAPPA_/, short.text);
    assertError(
      await call(h.url, 'POST', '/v1/sql', { body: '{}', type: 'text/plain' }),
      415,
      'KAPPA_UNSUPPORTED_MEDIA_TYPE',
    );
  });

  test('a topic with a 150-character name is reachable over HTTP', async () => {
    const posted = await call(h.url, 'POST', `/v1/topics/${LONG_TOPIC}/records`, {
      body: '{"n":1}',
      type: 'application/json',
    });
    assert.equal(posted.status, 200, posted.text);
    const described = await call(h.url, 'GET', `/v1/topics/${LONG_TOPIC}`);
    assert.equal(described.status, 200, described.text);
    assert.equal((described.body as { records: number }).records, 1);
  });

  test('an NDJSON line that starts with a UTF-8 byte order mark is validated and stored without it', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const body = Buffer.concat([
      bom,
      Buffer.from('{"region":"north","cents":7}\n'),
      bom,
      Buffer.from('{"region":"south","cents":8}\n'),
    ]);
    const r = await call(h.url, 'POST', '/v1/topics/sales/records', { body, type: 'application/x-ndjson' });
    assert.equal(r.status, 200, r.text);
    const loose = await call(h.url, 'POST', '/v1/topics/loose/records', {
      body: Buffer.concat([bom, Buffer.from('{"bom":true}\n')]),
      type: 'application/x-ndjson',
    });
    assert.equal(loose.status, 200, `a schema-less topic takes it too: ${loose.text}`);
    const acks = [
      ...(r.body as { records: { partition: number; offset: number }[] }).records,
      { ...(loose.body as { records: { offset: number }[] }).records[0], partition: 0, topic: 'loose' },
    ];
    for (const a of acks) {
      const t = 'topic' in a ? 'loose' : 'sales';
      for await (const batch of h.log.read(t, a.partition, a.offset)) {
        const value = batch.records(a.offset)[0].value!;
        assert.notDeepEqual([...value.subarray(0, 3)], [...bom], `${t} ${a.offset} stored without the BOM`);
        assert.equal(value[0], 0x7b);
        break;
      }
    }
  });

  test('an event time outside what a Date can hold is refused at ingestion with its field path; nothing is appended', async () => {
    const before = [await ends(h, 'timed'), await ends(h, 'nested')];
    for (const ts of [9007199254740991, 8640000000000001, -8640000000000001]) {
      for (const [body, type] of [
        [JSON.stringify([{ ts: 1 }, { ts }]), 'application/json'],
        [`{"ts":1}\n{"ts":${ts}}\n`, 'application/x-ndjson'],
      ]) {
        const r = await call(h.url, 'POST', '/v1/topics/timed/records', { body, type });
        assertError(r, 400, 'KAPPA_SCHEMA_VIOLATION');
        const [bad] = (r.body as { error: { details: { records: { index: number; path: string; reason: string }[] } } })
          .error.details.records;
        assert.equal(bad.index, 1);
        assert.equal(bad.path, 'ts');
        assert.match(bad.reason, /outside what a date can hold/);
      }
    }
    const nested = await postJson(h.url, '/v1/topics/nested/records', { meta: { at: 8.64e15 + 1 } });
    assertError(nested, 400, 'KAPPA_SCHEMA_VIOLATION');
    assert.equal(
      (nested.body as { error: { details: { records: { path: string }[] } } }).error.details.records[0].path,
      'meta.at',
    );
    assert.deepEqual([await ends(h, 'timed'), await ends(h, 'nested')], before, 'nothing appended');
    // The limits themselves are times a Date holds.
    const edge = await postJson(h.url, '/v1/topics/timed/records', [{ ts: 8.64e15 }, { ts: -8.64e15 }]);
    assert.equal(edge.status, 200, edge.text);
  });
});

describe('kappa produce --time-field', () => {
  test('refuses a time a Date cannot hold, naming the line and the field', () => {
    for (const ts of [9007199254740991, 8640000000000001, -8640000000000001]) {
      assert.throws(
        () => parseLine(`{"ts":${ts}}`, 3, { timeField: 'ts' }),
        (err: Error & { code?: string }) =>
          err.code === 'KAPPA_INVALID_RECORD' && /line 3/.test(err.message) && /"ts"/.test(err.message),
      );
    }
    assert.equal(parseLine('{"ts":8640000000000000}', 1, { timeField: 'ts' }).timestamp, 8.64e15);
  });
});

describe('HTTP edges (with tokens)', () => {
  let h: Harness;
  const QUERY = 'tok-query';
  const PRODUCER = 'tok-producer';
  before(async () => {
    h = await startHarness(
      CONFIG(
        JSON.stringify({
          tokens: [
            { name: 'query', sha256: hashToken(QUERY), scopes: ['query', 'consume:sales'] },
            { name: 'producer', sha256: hashToken(PRODUCER), scopes: ['produce:sales'] },
          ],
        }),
      ),
    );
  });
  after(() => h.close());

  test('?access_token= works only for GET event streams, never for other routes, whatever they accept', async () => {
    const sse = { accept: 'text/event-stream' };
    const sql = await call(h.url, 'POST', `/v1/sql?access_token=${QUERY}`, {
      body: '{"sql":"SELECT 1 AS one"}',
      type: 'application/json',
      headers: sse,
    });
    assertError(sql, 401, 'KAPPA_UNAUTHENTICATED');
    const post = await call(h.url, 'POST', `/v1/topics/sales/records?access_token=${PRODUCER}`, {
      body: '{"region":"n","cents":1}',
      type: 'application/json',
      headers: sse,
    });
    assertError(post, 401, 'KAPPA_UNAUTHENTICATED');
    assertError(
      await call(h.url, 'GET', `/v1/views?access_token=${QUERY}`, { headers: sse }),
      401,
      'KAPPA_UNAUTHENTICATED',
    );
    // The event streams themselves still take it.
    for (const path of [
      `/v1/overview/stream?access_token=${QUERY}`,
      `/v1/topics/sales/records?partition=0&access_token=${QUERY}`,
    ]) {
      const abort = new AbortController();
      const res = await fetch(h.url + path, { headers: sse, signal: abort.signal });
      abort.abort();
      assert.equal(res.status, 200, path);
    }
    // With the header, as always.
    assert.equal(
      (
        await call(h.url, 'POST', '/v1/topics/sales/records', {
          body: '{"region":"n","cents":1}',
          type: 'application/json',
          token: PRODUCER,
        })
      ).status,
      200,
    );
  });

  test('a malformed Host is refused with tokens too', async () => {
    const r = await rawRequest(
      h.url,
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:80@evil.example\r\nConnection: close\r\n\r\n`,
    );
    assertError(r!, 400, 'KAPPA_INVALID_ARGUMENT');
  });
});

describe('500s', () => {
  test('are always logged with their error, even without --http-log', async (t) => {
    const dir = tempDir(t, 'kappa-500-');
    const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
    const real = await openSqliteStore({ path: join(dir, 'views.db') });
    const store = Object.create(real) as SqliteStore;
    store.versions = () => Promise.reject(new Error('the disk ate the catalogue'));
    const lines: string[] = [];
    const server = await startServer({
      log,
      store,
      control: store,
      app: defineApp({ topics: [topic('t', { partitions: 1, schema: Type.Object({}) })] }),
      engine: null,
      port: 0,
      errorLog: (l) => lines.push(l),
    });
    try {
      const r = await call(server.url, 'GET', '/v1/views');
      assertError(r, 500, 'KAPPA_INTERNAL');
      assert.match((r.body as { error: { message: string } }).error.message, /in its log/);
      assert.equal(lines.length, 1);
      assert.match(lines[0], /the disk ate the catalogue/);
      // A refused request is not a server error: nothing logged.
      await call(server.url, 'GET', '/v1/nosuch');
      assert.equal(lines.length, 1);
    } finally {
      await server.close();
      await real.close();
      await log.close();
    }
  });
});

describe('docs against the code', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files = [
    join(root, 'README.md'),
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(root, 'docs', f)),
    ...readdirSync(join(root, 'src/server'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(root, 'src/server', f)),
    join(root, 'src/stream/dsl.ts'),
  ];

  test('name the token command as it is: `kappa token <name> --scopes …`, not `kappa token create`', () => {
    for (const f of files) assert.doesNotMatch(readFileSync(f, 'utf8'), /kappa token create/, f);
  });

  test("give server.bodyLimitBytes's default as the code has it", () => {
    const http = readFileSync(join(root, 'docs/http.md'), 'utf8').replace(/\s+/g, ' ');
    const m = /up to `server\.bodyLimitBytes`, default (\d+) (MiB|GiB)/.exec(http);
    assert.ok(m, 'docs/http.md states the default');
    assert.equal(Number(m[1]) * (m[2] === 'GiB' ? 2 ** 30 : 2 ** 20), BODY_LIMIT_BYTES_DEFAULT);
    for (const f of files)
      assert.doesNotMatch(readFileSync(f, 'utf8').replace(/\s+/g, ' '), /bodyLimitBytes`?[^.]{0,40}256 MiB/, f);
  });
});
