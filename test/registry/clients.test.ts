/**
 * Kappa's schema registry as independent Confluent clients see it: a real Kappa HTTP server on port
 * 0 over a FileLog in a temp dir, called by `@kafkajs/confluent-schema-registry` and by Confluent's
 * own `@confluentinc/schemaregistry` (its REST client and its Avro serializer and deserializer), at
 * `http://127.0.0.1:<port>/schemas`. Then a restart over the same data dir, and bad input.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import {
  AvroDeserializer,
  AvroSerializer,
  JsonDeserializer,
  JsonSerializer,
  SchemaRegistryClient,
  SerdeType,
} from '@confluentinc/schemaregistry';
import { CODECS, avroDecoder, encodeAvro, encodeJson, jsonDecoder } from '../../src/formats/index.ts';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { Registry, SCHEMAS_TOPIC } from '../../src/registry/index.ts';
import { type KappaServer, startServer } from '../../src/server/index.ts';
import { defineApp } from '../../src/stream/index.ts';
import { type SqliteStore, openSqliteStore } from '../../src/view/sqlite/index.ts';
import { type Owner, defer, tempDir } from '../support/cleanup.ts';
import { call } from '../support/http.ts';

const SALE_V1 = {
  type: 'record',
  name: 'Sale',
  namespace: 'example',
  fields: [
    { name: 'region', type: 'string' },
    { name: 'cents', type: 'int' },
  ],
};
const SALE_V2 = { ...SALE_V1, fields: [...SALE_V1.fields, { name: 'note', type: 'string', default: '' }] };
/** Breaks BACKWARD: a new field without a default cannot be filled from v2 data. */
const SALE_BAD = { ...SALE_V1, fields: [...SALE_V2.fields, { name: 'store', type: 'string' }] };

interface Running {
  url: string;
  base: string;
  log: FileLog;
  close(): Promise<void>;
}

/** A Kappa server (no pipelines) over the data dir; closed by the caller or when the test ends. */
async function startKappa(t: Owner, dir: string): Promise<Running> {
  const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
  let store: SqliteStore | null = null;
  let server: KappaServer | null = null;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await server?.close();
    await store?.close();
    await log.close();
  };
  defer(t, close);
  store = await openSqliteStore({ path: join(dir, 'views.db') });
  server = await startServer({
    log,
    store,
    control: store,
    app: defineApp({ topics: [] }),
    engine: null,
    port: 0,
  });
  return { url: server.url, base: `${server.url}/schemas`, log, close };
}

test(
  '@kafkajs/confluent-schema-registry: register, encode, decode, latest id, a compatible version, an incompatible one refused',
  { timeout: 60_000 },
  async (t) => {
    const k = await startKappa(t, tempDir(t, 'kappa-registry-clients-'));
    const registry = new SchemaRegistry({ host: k.base }, { forSchemaOptions: {} });
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(SALE_V1) },
      { subject: 'sales-value' },
    );
    assert.equal(id, 1);
    const sale = { region: 'north', cents: 1250 };
    const framed = await registry.encode(id, sale);
    assert.equal(framed[0], 0, 'magic byte');
    assert.equal(framed.readInt32BE(1), id);
    assert.deepEqual({ ...(await registry.decode(framed)) }, sale);
    assert.equal(await registry.getLatestSchemaId('sales-value'), id);

    const v2 = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(SALE_V2) },
      { subject: 'sales-value' },
    );
    assert.equal(v2.id, 2);
    assert.equal(await registry.getLatestSchemaId('sales-value'), 2);
    // Registering v1 again is no new version: the same id.
    assert.equal(
      (
        await registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(SALE_V1) },
          { subject: 'archive-value' },
        )
      ).id,
      1,
    );
    // A fresh client (no cache) decodes the v1 record by fetching schema 1 from Kappa.
    const fresh = new SchemaRegistry({ host: k.base });
    assert.deepEqual({ ...(await fresh.decode(framed)) }, sale);

    await assert.rejects(
      registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(SALE_BAD) }, { subject: 'sales-value' }),
      (err: Error & { status?: number }) => {
        assert.equal(err.status, 409, err.message);
        assert.match(err.message, /incompatible.*version 2: .*store/);
        return true;
      },
    );
    assert.equal(await registry.getLatestSchemaId('sales-value'), 2);
  },
);

test(
  '@confluentinc/schemaregistry: register, getBySubjectAndId, getLatestSchemaMetadata, testCompatibility, getAllSubjects, deleteSubject, and its Avro serde',
  { timeout: 60_000 },
  async (t) => {
    const k = await startKappa(t, tempDir(t, 'kappa-registry-clients-'));
    const client = new SchemaRegistryClient({ baseURLs: [k.base] });
    const id = await client.register('sales-value', { schemaType: 'AVRO', schema: JSON.stringify(SALE_V1) });
    assert.equal(id, 1);
    const byId = await client.getBySubjectAndId('sales-value', id);
    assert.deepEqual(JSON.parse(byId.schema), SALE_V1);
    const latest = await client.getLatestSchemaMetadata('sales-value');
    assert.equal(latest.id, 1);
    assert.equal(latest.version, 1);
    assert.equal(
      await client.testCompatibility('sales-value', 1, { schemaType: 'AVRO', schema: JSON.stringify(SALE_V2) }),
      true,
    );
    assert.equal(
      await client.testSubjectCompatibility('sales-value', { schemaType: 'AVRO', schema: JSON.stringify(SALE_BAD) }),
      false,
    );
    assert.equal(await client.register('sales-value', { schemaType: 'AVRO', schema: JSON.stringify(SALE_V2) }), 2);
    assert.deepEqual(await client.getAllVersions('sales-value'), [1, 2]);
    assert.equal(await client.getCompatibility('sales-value').catch((e: { status?: number }) => e.status), 404);
    assert.equal(await client.updateCompatibility('sales-value', 'FULL' as never), 'FULL');
    assert.equal(await client.getCompatibility('sales-value'), 'FULL');

    // Confluent's serializer and deserializer, against Kappa: the wire format round trip (a new client:
    // the first one cached version 1 as the latest).
    const serdeClient = new SchemaRegistryClient({ baseURLs: [k.base] });
    const serializer = new AvroSerializer(serdeClient, SerdeType.VALUE, { useLatestVersion: true });
    const deserializer = new AvroDeserializer(serdeClient, SerdeType.VALUE, {});
    const bytes = await serializer.serialize('sales', { region: 'south', cents: 7, note: 'x' });
    assert.equal(bytes[0], 0);
    assert.equal(bytes.readInt32BE(1), 2);
    assert.deepEqual({ ...(await deserializer.deserialize('sales', bytes)) }, { region: 'south', cents: 7, note: 'x' });

    await client.register('clicks-value', {
      schemaType: 'AVRO',
      schema: JSON.stringify({ ...SALE_V1, name: 'Click' }),
    });
    assert.deepEqual((await client.getAllSubjects()).sort(), ['clicks-value', 'sales-value']);
    assert.deepEqual(await client.deleteSubject('clicks-value'), [1]);
    assert.deepEqual(await client.getAllSubjects(), ['sales-value']);
    assert.deepEqual(await client.deleteSubject('clicks-value', true), [1]);
    const gone = await call(k.base, 'GET', '/subjects/clicks-value/versions?deleted=true');
    assert.equal((gone.body as { error_code: number }).error_code, 40401);

    // The server's registry takes all three types, each checked by its own format's rules.
    assert.deepEqual((await call(k.base, 'GET', '/schemas/types')).body, ['JSON', 'PROTOBUF', 'AVRO']);
    const proto = (fields: string) => ({
      schemaType: 'PROTOBUF',
      schema: `syntax = "proto3"; message Sale { ${fields} }`,
    });
    const p1 = await client.register('sales-proto-value', proto('string region = 1; int64 cents = 2;'));
    assert.equal(
      await client.register('sales-proto-value', proto('string region = 1; int64 cents = 2; string note = 3;')),
      p1 + 1,
    );
    await assert.rejects(
      client.register('sales-proto-value', proto('string region = 1; string cents = 2;')),
      (err: Error) => {
        assert.match(err.message, /Sale\.cents.*int64.*string/);
        return true;
      },
    );
    const json = (schema: unknown) => ({ schemaType: 'JSON', schema: JSON.stringify(schema) });
    const j1 = { type: 'object', properties: { region: { type: 'string' } } };
    assert.equal(await client.register('sales-json-value', json(j1)), p1 + 2);
    assert.equal(await client.register('other-json-value', json(j1)), p1 + 2, 'the same schema, the same id');
  },
);

test('a restart over the same data dir keeps ids, versions and config', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'kappa-registry-clients-');
  const first = await startKappa(t, dir);
  const client = new SchemaRegistryClient({ baseURLs: [first.base] });
  await client.register('sales-value', { schemaType: 'AVRO', schema: JSON.stringify(SALE_V1) });
  await client.register('sales-value', { schemaType: 'AVRO', schema: JSON.stringify(SALE_V2) });
  await client.updateCompatibility('sales-value', 'FULL_TRANSITIVE' as never);
  await client.updateDefaultCompatibility('FORWARD' as never);
  await first.close();

  const second = await startKappa(t, dir);
  const versions = await call(second.base, 'GET', '/subjects/sales-value/versions');
  assert.deepEqual(versions.body, [1, 2]);
  const v2 = await call(second.base, 'GET', '/subjects/sales-value/versions/2');
  assert.equal((v2.body as { id: number }).id, 2);
  assert.deepEqual(JSON.parse((v2.body as { schema: string }).schema), SALE_V2);
  assert.deepEqual((await call(second.base, 'GET', '/config/sales-value')).body, {
    compatibilityLevel: 'FULL_TRANSITIVE',
  });
  assert.deepEqual((await call(second.base, 'GET', '/config')).body, { compatibilityLevel: 'FORWARD' });
  // New ids continue after the old ones.
  const again = new SchemaRegistryClient({ baseURLs: [second.base] });
  assert.equal(
    await again.register('other-value', { schemaType: 'AVRO', schema: JSON.stringify({ ...SALE_V1, name: 'Other' }) }),
    3,
  );
});

test(
  'bad input: an invalid schema is 42201 and appends nothing, a 2 MiB schema 422, an unknown subject 40401',
  { timeout: 60_000 },
  async (t) => {
    const k = await startKappa(t, tempDir(t, 'kappa-registry-clients-'));
    const type = 'application/vnd.schemaregistry.v1+json';
    const ok = await call(k.base, 'POST', '/subjects/s/versions', {
      body: JSON.stringify({ schema: JSON.stringify(SALE_V1) }),
      type,
    });
    assert.equal(ok.status, 200, ok.text);
    const end = async (): Promise<number> => (await k.log.offsets(SCHEMAS_TOPIC, 0)).end;
    const before = await end();
    const invalid = await call(k.base, 'POST', '/subjects/s/versions', {
      body: JSON.stringify({ schema: '{"type": "record"' }),
      type,
    });
    assert.equal(invalid.status, 422);
    assert.equal((invalid.body as { error_code: number }).error_code, 42201);
    const huge = JSON.stringify({ schema: JSON.stringify({ ...SALE_V1, doc: 'x'.repeat(2 * 1024 * 1024) }) });
    const tooLarge = await call(k.base, 'POST', '/subjects/s/versions', { body: huge, type });
    assert.equal(tooLarge.status, 422, tooLarge.text.slice(0, 300));
    assert.match((tooLarge.body as { message: string }).message, /bytes/);
    const unknown = await call(k.base, 'GET', '/subjects/nosuch/versions/latest');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body as { error_code: number }).error_code, 40401);
    assert.equal(await end(), before, 'nothing appended to _schemas');
    assert.deepEqual((await call(k.base, 'GET', '/subjects/s/versions')).body, [1]);
  },
);

test(
  "Confluent's Avro and JSON serializers and Kappa's codecs read each other's records through Kappa's registry",
  { timeout: 60_000 },
  async (t) => {
    const k = await startKappa(t, tempDir(t, 'kappa-registry-serde-'));
    const client = new SchemaRegistryClient({ baseURLs: [k.base] });
    const registry = await Registry.open({ log: k.log, codecs: CODECS });
    const lookup = (id: number) => registry.schemaFor(id);

    // Avro: Confluent writes with v1; Kappa reads with v2 (the reader's default fills `note`).
    const v1 = await client.register('sales-value', { schemaType: 'AVRO', schema: JSON.stringify(SALE_V1) });
    const confluentBytes = await new AvroSerializer(client, SerdeType.VALUE, { useSchemaId: v1 }).serialize('sales', {
      region: 'north',
      cents: 1250,
    });
    await registry.refresh();
    const v2Schema = CODECS.AVRO.parse(JSON.stringify(SALE_V2));
    assert.deepEqual(
      { ...(avroDecoder(v2Schema)(confluentBytes, lookup) as object) },
      { region: 'north', cents: 1250, note: '' },
    );
    // Kappa writes with v2 (registered by the registry Kappa serves); Confluent's deserializer reads it.
    const { id: v2 } = await registry.register('sales-value', {
      schemaType: 'AVRO',
      schema: JSON.stringify(SALE_V2),
      references: [],
    });
    const kappaBytes = encodeAvro(v2, registry.schemaFor(v2)!, { region: 'south', cents: -7, note: 'refund' });
    const read = await new AvroDeserializer(client, SerdeType.VALUE, {}).deserialize('sales', kappaBytes);
    assert.deepEqual({ ...read }, { region: 'south', cents: -7, note: 'refund' });

    // JSON Schema: both ways.
    const clickSchema = {
      type: 'object',
      properties: { page: { type: 'string' }, ms: { type: 'integer' } },
      required: ['page', 'ms'],
    };
    const j = await client.register('clicks-value', { schemaType: 'JSON', schema: JSON.stringify(clickSchema) });
    const jsonBytes = await new JsonSerializer(client, SerdeType.VALUE, { useSchemaId: j }).serialize('clicks', {
      page: '/cart',
      ms: 42,
    });
    await registry.refresh();
    const reader = CODECS.JSON.parse(JSON.stringify(clickSchema));
    assert.deepEqual(jsonDecoder(reader)(jsonBytes, lookup), { page: '/cart', ms: 42 });
    const ours = encodeJson(j, { page: '/home', ms: 7 });
    assert.deepEqual(await new JsonDeserializer(client, SerdeType.VALUE, {}).deserialize('clicks', ours), {
      page: '/home',
      ms: 7,
    });
    // Kappa's JSON reader refuses what the schema refuses, even when a serializer framed it.
    const bad = Buffer.concat([ours.subarray(0, 5), Buffer.from('{"page":3,"ms":1}')]);
    assert.throws(() => jsonDecoder(reader)(bad, lookup), /page/);
  },
);
