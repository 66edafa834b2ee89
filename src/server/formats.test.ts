/**
 * The HTTP server and topics with a format (issue 17): JSON records sent to an Avro or Protobuf
 * topic are stored in Confluent's wire format with the id of the schema registered under
 * `<topic>-value` (by the engine at start, or by a server without an engine on first use), and
 * decode with it; a record that does not fit is refused with its index, field path and reason,
 * nothing appended and the registry unchanged (or dead-lettered as sent, on a topic that says so);
 * a framed body (`application/vnd.kappa.framed`) is stored as sent when its schema id is known and
 * its payload decodes, refused otherwise; reads and event streams show the values decoded, and a
 * value that does not decode shows why instead of failing the read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { CODECS, type ParsedSchema, avroDecoder, encodeAvro, protobufDecoder } from '../formats/index.ts';
import { type FileLog, openFileLog } from '../log/index.ts';
import { Registry, SCHEMAS_TOPIC } from '../registry/index.ts';
import { Type } from '@sinclair/typebox';
import { type AppDef, Engine, avro, defineApp, from, jsonSchema, protobuf, sum, topic, view } from '../stream/index.ts';
import { type SqliteStore, openSqliteStore } from '../view/sqlite/index.ts';
import { openSse } from '../../test/support/http.ts';
import { buildServer } from './server.ts';
import { NDJSON, errorCode, headers, post } from './test-server.ts';

const FRAMED = { 'content-type': 'application/vnd.kappa.framed' };

const field = (name: string, type: unknown, extra: object = {}) => ({ name, type, ...extra });
const SALE_AVSC = JSON.stringify({
  type: 'record',
  name: 'Sale',
  namespace: 'shop',
  fields: [
    field('id', 'string'),
    field('region', 'string'),
    field('cents', 'long'),
    field('channel', 'string', { default: 'web' }),
  ],
});
/** An older producer's schema: no channel, cents an int (a long reader reads it). */
const SALE_V0_AVSC = JSON.stringify({
  type: 'record',
  name: 'Sale',
  namespace: 'shop',
  fields: [field('id', 'string'), field('region', 'string'), field('cents', 'int')],
});
const ORDER_PROTO = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int32 qty = 2;
  repeated string items = 3;
}
`;

interface Sale {
  id: string;
  region: string;
  cents: number;
  channel: string;
}

function formatsApp(): AppDef {
  const sales = topic('sales', { partitions: 2, format: avro<Sale>(SALE_AVSC), key: (s) => s.region });
  const orders = topic('orders', { partitions: 1, format: protobuf(ORDER_PROTO, 'shop.Order') });
  const returns = topic('returns', { partitions: 1, format: avro<Sale>(SALE_AVSC), onInvalid: 'dlq' });
  const plain = topic('plain', { partitions: 1 });
  const clicks = topic('clicks', {
    partitions: 1,
    format: jsonSchema(Type.Object({ page: Type.String(), n: Type.Integer({ minimum: 0 }) })),
  });
  const totals = view(
    'region_cents',
    from(sales)
      .groupBy((s) => ({ region: s.region }))
      .aggregate({ cents: sum((s) => s.cents) }),
  );
  return defineApp({ topics: [sales, orders, returns, plain, clicks], views: [totals] });
}

interface Served {
  fastify: FastifyInstance;
  log: FileLog;
  store: SqliteStore;
  engine: Engine | null;
}

async function serve(t: { after(fn: () => unknown): void }, withEngine: boolean): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-formats-'));
  const quiet = { info() {}, warn() {} };
  let fastify: FastifyInstance | null = null;
  let engine: Engine | null = null;
  let store: SqliteStore | null = null;
  let log: FileLog | null = null;
  t.after(async () => {
    await fastify?.close();
    await engine?.stop();
    await store?.close();
    await log?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const app = formatsApp();
  log = await openFileLog({ dir: join(dir, 'log'), logger: quiet });
  store = await openSqliteStore({ path: join(dir, 'views.db') });
  if (withEngine) {
    engine = new Engine({ log, store, control: store, app, workers: 0, flushIntervalMs: 20, logger: quiet });
    await engine.start();
  } else {
    for (const def of app.topics) await log.createTopic(def.name, { partitions: def.partitions });
  }
  fastify = await buildServer({ log, store, control: store, app, engine, sqlTimeoutMs: 1000 });
  return { fastify, log, store, engine };
}

/** Every record of a topic, over its partitions. */
async function recordsOf(
  log: FileLog,
  name: string,
): Promise<{ partition: number; key: string | null; value: Buffer; headers: Map<string, string> }[]> {
  const out = [];
  for (let p = 0; p < (await log.topic(name)).partitions; p++) {
    const { end } = await log.offsets(name, p);
    if (end === 0) continue;
    let next = 0;
    for await (const batch of log.read(name, p, 0)) {
      for (const r of batch.records(0)) {
        out.push({
          partition: p,
          key: r.key === null ? null : r.key.toString('utf8'),
          value: Buffer.from(r.value!),
          headers: new Map(r.headers.map((h) => [h.key, h.value === null ? '' : h.value.toString('utf8')])),
        });
        next = r.offset + 1;
      }
      if (next >= end) break;
    }
  }
  return out;
}

/** The registry's state: subjects with their versions and ids, and the end of `_schemas`. */
async function registryState(log: FileLog): Promise<string> {
  const registry = await Registry.open({ log, codecs: CODECS });
  const out: string[] = [];
  for (const s of await registry.subjects())
    for (const v of await registry.versions(s)) out.push(`${s}@${v}=${(await registry.version(s, v)).id}`);
  return `${out.join(',')} end=${(await log.offsets(SCHEMAS_TOPIC, 0)).end}`;
}

async function subjectId(log: FileLog, subject: string): Promise<{ id: number; schema: ParsedSchema }> {
  const registry = await Registry.open({ log, codecs: CODECS });
  const { id } = await registry.version(subject, 'latest');
  return { id, schema: registry.schemaFor(id)! };
}

function idOf(value: Buffer): number {
  assert.equal(value[0], 0, 'the magic byte');
  return value.readUInt32BE(1);
}

function refused(res: LightMyRequestResponse): { index: number; path: string; reason: string }[] {
  return (res.json() as { error: { details: { records: { index: number; path: string; reason: string }[] } } }).error
    .details.records;
}

const get = (fastify: FastifyInstance, url: string): Promise<LightMyRequestResponse> =>
  fastify.inject({ method: 'GET', url, headers: headers() });

test('JSON records sent to an Avro topic are stored framed with the registered id, decode, and feed the view', async (t) => {
  const { fastify, log, store, engine } = await serve(t, true);
  const registered = engine!.topicSchemas.get('sales')!;
  assert.equal(registered.subject, 'sales-value');
  const body = [
    { id: 's1', region: 'eu', cents: 500, channel: 'store' },
    { id: 's2', region: 'us', cents: 2 ** 40 },
    { id: 's3', region: 'eu', cents: 7 },
  ];
  const res = await post(fastify, '/v1/topics/sales/records', JSON.stringify(body));
  assert.equal(res.statusCode, 200, res.body);
  // NDJSON takes the same path.
  const nd = await post(fastify, '/v1/topics/sales/records', '{"id":"s4","region":"us","cents":1}\n', NDJSON);
  assert.equal(nd.statusCode, 200, nd.body);

  const stored = await recordsOf(log, 'sales');
  assert.equal(stored.length, 4);
  const { id, schema } = await subjectId(log, 'sales-value');
  assert.equal(id, registered.id);
  const decode = avroDecoder(schema);
  const decoded = stored.map((r) => {
    assert.equal(idOf(r.value), id);
    assert.equal(r.value[5], 0x04, 'Avro binary: the zigzag length of "s1"…, not JSON');
    return { key: r.key, value: decode(r.value, (n) => (n === id ? schema : undefined)) };
  });
  assert.deepEqual(
    decoded.map((d) => d.value).sort((a, b) => String((a as Sale).id).localeCompare((b as Sale).id)),
    [
      { id: 's1', region: 'eu', cents: 500, channel: 'store' },
      { id: 's2', region: 'us', cents: 2 ** 40, channel: 'web' },
      { id: 's3', region: 'eu', cents: 7, channel: 'web' },
      { id: 's4', region: 'us', cents: 1, channel: 'web' },
    ],
  );
  // Keyed by region, as the topic's key extractor says.
  assert.deepEqual(decoded.map((d) => d.key).sort(), ['eu', 'eu', 'us', 'us']);

  // The pipeline reads them: region totals.
  const want = [
    { region: 'eu', cents: 507 },
    { region: 'us', cents: 2 ** 40 + 1 },
  ];
  let rows: unknown = null;
  for (let i = 0; i < 250; i++) {
    const q = await fastify.inject({
      method: 'POST',
      url: '/v1/sql',
      headers: headers(undefined, { 'content-type': 'application/json' }),
      payload: JSON.stringify({ sql: 'SELECT region, cents FROM region_cents ORDER BY region' }),
    });
    rows = (q.json() as { rows?: unknown }).rows;
    if (JSON.stringify(rows) === JSON.stringify(want)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(rows, want, `the view: ${JSON.stringify(await store.versions())}`);
});

test('an Avro record that does not fit is refused with index, path and reason; nothing appended, registry unchanged', async (t) => {
  const { fastify, log } = await serve(t, true);
  const before = await registryState(log);
  const cases: [string, Record<string, string>, number, string, RegExp][] = [
    [
      '{"id":"a","region":"eu","cents":1}\n{"id":"b","region":"eu","cents":"seven"}\n',
      NDJSON,
      1,
      'cents',
      /expected a long/,
    ],
    [
      JSON.stringify([
        { id: 'a', region: 'eu', cents: 1 },
        { region: 'eu', cents: 2 },
      ]),
      {},
      1,
      'id',
      /id/,
    ],
    [JSON.stringify({ id: 'a', region: 'eu', cents: 1.5 }), {}, 0, 'cents', /expected a long/],
  ];
  for (const [payload, type, index, path, reason] of cases) {
    const res = await post(fastify, '/v1/topics/sales/records', payload, {
      'content-type': 'application/json',
      ...type,
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(errorCode(res), 'KAPPA_SCHEMA_VIOLATION');
    const [bad] = refused(res);
    assert.equal(bad.index, index, res.body);
    assert.equal(bad.path, path, res.body);
    assert.match(bad.reason, reason);
  }
  assert.equal((await recordsOf(log, 'sales')).length, 0);
  assert.equal(await registryState(log), before);
});

test('Protobuf topic without an engine: the server registers <topic>-value itself; records framed with its id', async (t) => {
  const { fastify, log } = await serve(t, false);
  const res = await post(fastify, '/v1/topics/orders/records', JSON.stringify({ id: 'o1', qty: 3, items: ['a', 'b'] }));
  assert.equal(res.statusCode, 200, res.body);
  const { id, schema } = await subjectId(log, 'orders-value');
  const [stored] = await recordsOf(log, 'orders');
  assert.equal(idOf(stored.value), id);
  assert.equal(stored.value[5], 0, 'the message-index array [0], written as one byte');
  assert.deepEqual(
    protobufDecoder(schema, 'shop.Order')(stored.value, (n) => (n === id ? schema : undefined)),
    { id: 'o1', qty: 3, items: ['a', 'b'] },
  );
  const state = await registryState(log);
  // A value that does not fit: the field named, nothing appended, the registry unchanged.
  for (const [payload, path] of [
    [{ id: 'o2', qty: 'three' }, 'qty'],
    [{ id: 'o2', qty: 1, colour: 'red' }, 'colour'],
    [{ id: 'o2', qty: 1, items: ['a', 7] }, 'items[1]'],
  ] as const) {
    const bad = await post(fastify, '/v1/topics/orders/records', JSON.stringify([{ id: 'ok', qty: 1 }, payload]));
    assert.equal(bad.statusCode, 400, bad.body);
    assert.deepEqual(
      refused(bad).map((r) => [r.index, r.path]),
      [[1, path]],
      bad.body,
    );
  }
  assert.equal((await recordsOf(log, 'orders')).length, 1);
  assert.equal(await registryState(log), state);
  // Read back as JSON.
  const read = await get(fastify, '/v1/topics/orders/records');
  assert.equal(read.statusCode, 200, read.body);
  const [rec] = (read.json() as { records: Record<string, unknown>[] }).records;
  assert.deepEqual([rec.schemaId, rec.value], [id, { id: 'o1', qty: 3, items: ['a', 'b'] }]);
});

test('framed bodies: stored as sent when the id is known and the payload decodes; refused otherwise', async (t) => {
  const { fastify, log } = await serve(t, true);
  const { id, schema } = await subjectId(log, 'sales-value');
  // An older producer's schema, under its own subject: its records are read resolved to the topic's schema.
  const producer = await Registry.open({ log, codecs: CODECS });
  const old = await producer.register('legacy-value', { schemaType: 'AVRO', schema: SALE_V0_AVSC, references: [] });
  const oldSchema = producer.schemaFor(old.id)!;
  const sent = [
    encodeAvro(id, schema, { id: 'f1', region: 'eu', cents: 9, channel: 'app' }),
    encodeAvro(old.id, oldSchema, { id: 'f2', region: 'us', cents: 4 }),
  ];
  for (const body of sent) {
    const res = await post(fastify, '/v1/topics/sales/records', body as unknown as string, FRAMED);
    assert.equal(res.statusCode, 200, res.body);
  }
  const stored = await recordsOf(log, 'sales');
  assert.deepEqual(stored.map((r) => r.value.toString('hex')).sort(), sent.map((b) => b.toString('hex')).sort());
  assert.deepEqual(stored.map((r) => r.key).sort(), ['eu', 'us']);
  const state = await registryState(log);

  const good = sent[0];
  const wrongMagic = Buffer.from(good);
  wrongMagic[0] = 1;
  const unknownId = Buffer.from(good);
  unknownId.writeUInt32BE(4242, 1);
  const truncated = good.subarray(0, 8);
  const refusals: [string, Buffer, RegExp][] = [
    ['wrong magic byte', wrongMagic, /0x01, not the magic byte 0/],
    ['plain JSON', Buffer.from('{"id":"x"}'), /looks like plain JSON/],
    ['too short', Buffer.from([0, 0, 0]), /shorter than the 5-byte header/],
    ['unknown id', unknownId, /schema id 4242, which the schema registry does not know/],
    ['truncated Avro', truncated, /./],
  ];
  for (const [what, body, reason] of refusals) {
    const res = await post(fastify, '/v1/topics/sales/records', body as unknown as string, FRAMED);
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
    assert.equal(errorCode(res), 'KAPPA_SCHEMA_VIOLATION', what);
    const [bad] = refused(res);
    assert.equal(bad.index, 0, what);
    assert.match(bad.reason, reason, what);
  }
  // A topic without a format takes no framed values.
  const plain = await post(fastify, '/v1/topics/plain/records', good as unknown as string, FRAMED);
  assert.equal(plain.statusCode, 415, plain.body);
  assert.equal((await recordsOf(log, 'sales')).length, 2);
  assert.equal((await recordsOf(log, 'plain')).length, 0);
  assert.equal(await registryState(log), state);

  // The older producer's record reads with the topic's schema: cents widened, channel its default.
  const page = await get(
    fastify,
    `/v1/topics/sales/records?partition=${stored.find((r) => r.key === 'us')!.partition}`,
  );
  const rec = (page.json() as { records: Record<string, unknown>[] }).records[0];
  assert.deepEqual([rec.schemaId, rec.value], [old.id, { id: 'f2', region: 'us', cents: 4, channel: 'web' }]);
});

test("onInvalid 'dlq' on an Avro topic: bad records go to <topic>.dlq as sent (JSON or framed bytes) with the reason", async (t) => {
  const { fastify, log } = await serve(t, true);
  const res = await post(
    fastify,
    '/v1/topics/returns/records',
    JSON.stringify([
      { id: 'r1', region: 'eu', cents: 3 },
      { id: 'r2', region: 'eu', cents: 'x' },
    ]),
  );
  assert.equal(res.statusCode, 207, res.body);
  const { id, schema } = await subjectId(log, 'returns-value');
  const truncated = encodeAvro(id, schema, { id: 'r3', region: 'us', cents: 1, channel: 'web' }).subarray(0, 9);
  const framed = await post(fastify, '/v1/topics/returns/records', truncated as unknown as string, FRAMED);
  assert.equal(framed.statusCode, 207, framed.body);
  const good = await recordsOf(log, 'returns');
  assert.equal(good.length, 1);
  assert.equal(idOf(good[0].value), id);
  const dead = await recordsOf(log, 'returns.dlq');
  assert.equal(dead.length, 2);
  assert.deepEqual(JSON.parse(dead[0].value.toString('utf8')), { id: 'r2', region: 'eu', cents: 'x' });
  assert.match(dead[0].headers.get('kappa.error')!, /^cents: .*expected a long/);
  assert.deepEqual(dead[1].value, Buffer.from(truncated));
  assert.ok(dead[1].headers.get('kappa.error')!.length > 0);
});

test('reads and event streams show decoded values; a value that does not decode shows why, not a failed read', async (t) => {
  const { fastify, log } = await serve(t, true);
  assert.equal(
    (await post(fastify, '/v1/topics/returns/records', JSON.stringify({ id: 'e1', region: 'eu', cents: 12 })))
      .statusCode,
    200,
  );
  // Written around the server: not framed.
  await log.append('returns', [{ key: null, value: Buffer.from('{"id":"raw"}') }]);
  const { id } = await subjectId(log, 'returns-value');
  const page = await get(fastify, '/v1/topics/returns/records');
  assert.equal(page.statusCode, 200, page.body);
  const [first, second] = (page.json() as { records: Record<string, unknown>[] }).records;
  assert.deepEqual([first.schemaId, first.value], [id, { id: 'e1', region: 'eu', cents: 12, channel: 'web' }]);
  assert.equal(second.value, null);
  assert.match(String(second.valueError), /not the magic byte 0/);
  assert.equal(second.valueBase64, Buffer.from('{"id":"raw"}').toString('base64'));

  const url = await fastify.listen({ host: '127.0.0.1', port: 0 });
  const tail = await openSse(`${url}/v1/topics/returns/records?from=earliest`);
  t.after(() => tail.close());
  const mux = await openSse(`${url}/v1/events?topics=returns&recent=10`);
  t.after(() => mux.close());
  await tail.until(2);
  await mux.until(3); // hello, then the two records
  assert.equal(
    (await post(fastify, '/v1/topics/returns/records', JSON.stringify({ id: 'e2', region: 'us', cents: 1 })))
      .statusCode,
    200,
  );
  await tail.until(3);
  await mux.until(4);
  const values = (events: { event: string; data: string }[]) =>
    events
      .filter((e) => e.event === 'record')
      .map((e) => JSON.parse(e.data) as Record<string, unknown>)
      .map((r) => (r.value === null ? `error: ${String(r.valueError).slice(0, 40)}` : r.value));
  const want = [
    { id: 'e1', region: 'eu', cents: 12, channel: 'web' },
    `error: ${String(second.valueError).slice(0, 40)}`,
    { id: 'e2', region: 'us', cents: 1, channel: 'web' },
  ];
  assert.deepEqual(values(tail.events), want);
  assert.deepEqual(values(mux.events), want);
});

test('JSON Schema topic: records checked by the schema, then framed with the registered id', async (t) => {
  const { fastify, log } = await serve(t, true);
  const bad = await post(fastify, '/v1/topics/clicks/records', '{"page":"/","n":1}\n{"page":"/a","n":-2}\n', NDJSON);
  assert.equal(bad.statusCode, 400, bad.body);
  assert.deepEqual(
    refused(bad).map((r) => [r.index, r.path]),
    [[1, 'n']],
  );
  assert.equal((await recordsOf(log, 'clicks')).length, 0);
  const ok = await post(fastify, '/v1/topics/clicks/records', '{"page":"/","n":1}\n', NDJSON);
  assert.equal(ok.statusCode, 200, ok.body);
  const [stored] = await recordsOf(log, 'clicks');
  assert.equal(idOf(stored.value), (await subjectId(log, 'clicks-value')).id);
  assert.deepEqual(JSON.parse(stored.value.subarray(5).toString('utf8')), { page: '/', n: 1 });
});

test('a large NDJSON request to a Protobuf topic spills its encoded records to the spool file and back intact', async (t) => {
  const { fastify, log } = await serve(t, false);
  const n = 120_000; // past the spool's 8 MiB in memory
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ id: `o${i}`, qty: i, items: ['x\ny', 'z'] }));
  const res = await post(fastify, '/v1/topics/orders/records', `${lines.join('\n')}\n`, NDJSON);
  assert.equal(res.statusCode, 200, res.body.slice(0, 500));
  const stored = await recordsOf(log, 'orders');
  assert.equal(stored.length, n);
  const { id, schema } = await subjectId(log, 'orders-value');
  const decode = protobufDecoder(schema, 'shop.Order');
  for (const i of [0, 1, n / 2, n - 1])
    assert.deepEqual(
      decode(stored[i].value, (x) => (x === id ? schema : undefined)),
      {
        id: `o${i}`,
        qty: i,
        items: ['x\ny', 'z'],
      },
    );
});
