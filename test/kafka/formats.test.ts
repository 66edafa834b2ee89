/**
 * Avro over Kappa's Kafka listener with real clients (issue 17): kafkajs producing records that
 * `@kafkajs/confluent-schema-registry` serialized against Kappa's own registry (its HTTP API under
 * /schemas), a view over the topic (format avro) counting them; records Kappa wrote (encodeAvro)
 * read back over Kafka by kafkajs and decoded by the registry client. A record naming an unknown
 * schema id, or not framed at all, is refused by the listener (INVALID_RECORD, kafkajs throws) and
 * nothing of its batch is stored.
 *
 * All in this process: a FileLog, the engine, the HTTP server (for /schemas) and the listener,
 * given the config's topics as `kappa start` gives them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { encodeAvro } from '../../src/formats/index.ts';
import { startKafkaListener } from '../../src/kafka/index.ts';
import { coordinatorOver } from '../../src/kafka/server/test-helpers.ts';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { type KappaServer, startServer } from '../../src/server/index.ts';
import { Engine, SchemaCatalog, loadApp } from '../../src/stream/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { defer } from '../support/cleanup.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { KAPPA_SRC, tempDataProject } from '../support/project.ts';

const SALE = JSON.stringify({
  type: 'record',
  name: 'Sale',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'region', type: 'string' },
    { name: 'cents', type: 'long' },
  ],
});

const CONFIG = `
import { avro, count, defineApp, from, sum, topic, view } from ${JSON.stringify(KAPPA_SRC)};
type Sale = { id: string; region: string; cents: number };
const sales = topic('sales', { partitions: 2, format: avro<Sale>(${JSON.stringify(SALE)}) });
export default defineApp({
  topics: [sales],
  views: [view('by_region', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ n: count(), cents: sum((s) => s.cents) }))],
});
`;

interface Sale {
  id: string;
  region: string;
  cents: number;
}

async function until<T>(what: string, check: () => Promise<T | null>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got !== null) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stored(log: FileLog): Promise<number> {
  let n = 0;
  for (const p of [0, 1]) {
    const { start, end } = await log.offsets('sales', p);
    n += end - start;
  }
  return n;
}

test(
  'Avro sales through kafkajs and the registry client: counted by a view, refused when unframed or of an unknown id',
  { timeout: 120_000 },
  async (t) => {
    const project = tempDataProject(t, 'kappa-kafka-formats-', CONFIG);
    const log = await openFileLog({ dir: project.dir, logger: quiet });
    defer(t, () => log.close());
    const store = await openSqliteStore({ path: `${project.dir}/views.db` });
    defer(t, () => store.close());
    const app = await loadApp(project.config);
    const engine = new Engine({
      log,
      store,
      control: store,
      app,
      configPath: project.config,
      workers: 0,
      logger: quiet,
      flushIntervalMs: 20,
    });
    await engine.start(); // registers the topic's schema under sales-value
    defer(t, () => engine.stop());
    let server: KappaServer | null = null;
    server = await startServer({ log, store, control: store, app, engine, port: 0 });
    defer(t, () => server?.close());
    const groups = coordinatorOver(t, log);
    const listener = await startKafkaListener({ log, groups, port: 0, logger: quiet, topics: app.topics });
    defer(t, () => listener.close());

    const registry = new SchemaRegistry({ host: `${server.url}/schemas` });
    const id = await registry.getLatestSchemaId('sales-value');
    const kafka = new Kafka({ brokers: [listener.address], logLevel: logLevel.NOTHING, retry: { retries: 1 } });
    const producer = kafka.producer();
    await producer.connect();
    defer(t, () => producer.disconnect());

    // kafkajs + the registry client's Avro serializer: the view counts them.
    const sales: Sale[] = Array.from({ length: 60 }, (_, i) => ({
      id: `s${i}`,
      region: ['eu', 'us', 'apac'][i % 3],
      cents: 100 + i,
    }));
    const messages = await Promise.all(sales.map(async (s) => ({ key: s.id, value: await registry.encode(id, s) })));
    await producer.send({ topic: 'sales', messages: messages.slice(0, 30) });
    await producer.send({ topic: 'sales', messages: messages.slice(30) });
    const expected = ['apac', 'eu', 'us'].map((region) => {
      const mine = sales.filter((s) => s.region === region);
      return { region, n: mine.length, cents: mine.reduce((a, s) => a + s.cents, 0) };
    });
    const rows = async () =>
      (await store.query('SELECT region, n, cents FROM by_region ORDER BY region')).rows.map((r) => ({
        region: r.region,
        n: Number(r.n),
        cents: Number(r.cents),
      }));
    await until('the view counts the 60 sales', async () => {
      const got = await rows().catch(() => []);
      return got.reduce((a, r) => a + r.n, 0) === 60 ? got : null;
    });
    assert.deepEqual(await rows(), expected);

    // Refused: an unknown schema id, and a plain JSON value (wrong magic byte); nothing stored.
    const before = await stored(log);
    const good = messages[0].value;
    const unknownId = Buffer.from(good);
    unknownId.writeInt32BE(4242, 1);
    const json = Buffer.from(JSON.stringify(sales[0]));
    for (const [what, value] of [
      ['an unknown schema id', unknownId],
      ['a wrong magic byte', json],
    ] as const) {
      await assert.rejects(
        producer.send({
          topic: 'sales',
          messages: [
            { key: 'a', value: good },
            { key: 'a', value },
          ],
        }),
        (err: Error & { type?: string }) => {
          assert.match(`${err.name} ${err.type ?? ''} ${err.message}`, /INVALID_RECORD|failed the validation/, what);
          return true;
        },
        what,
      );
    }
    assert.equal(await stored(log), before, 'nothing of a refused batch is stored');

    // Kappa-written records (encodeAvro with the topic's registered id), read over Kafka by kafkajs
    // and decoded by the registry client.
    const catalog = SchemaCatalog.of(log);
    const schema = (await catalog.open()).schemaFor(id)!;
    const written = [
      { id: 'k1', region: 'eu', cents: 2 ** 40 },
      { id: 'k2', region: 'us', cents: 7 },
    ];
    await log.append(
      'sales',
      written.map((s) => ({ key: s.id, value: encodeAvro(id, schema, s) })),
    );
    const consumer = kafka.consumer({ groupId: 'formats-test' });
    await consumer.connect();
    defer(t, () => consumer.disconnect());
    await consumer.subscribe({ topic: 'sales', fromBeginning: true });
    const decoded: Sale[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        decoded.push((await registry.decode(message.value!)) as Sale);
      },
    });
    await until('kafkajs read every record', async () => (decoded.length >= 62 ? decoded : null));
    const byId = (a: Sale, b: Sale) => (a.id < b.id ? -1 : 1);
    assert.deepEqual(
      decoded.map((s) => ({ ...s, cents: Number(s.cents) })).sort(byId),
      [...sales, ...written].sort(byId),
    );
  },
);
