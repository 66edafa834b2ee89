/**
 * An Avro topic as a user meets it through `kappa start` (issue 17), on a worker thread (the
 * bundled worker reads the registry itself): kafkajs with `@kafkajs/confluent-schema-registry`
 * registers the producer's schema in Kappa's registry (`/schemas` on the HTTP port) and produces
 * framed records to Kappa's Kafka listener; HTTP ingestion sends plain JSON to the same topic; the
 * view counts both. A value that is not framed is refused by the listener and never stored.
 * `kappa consume` then prints every record decoded to JSON.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { defer } from '../support/cleanup.ts';
import { runKappa, startKappa, waitFor } from '../support/processes.ts';
import { KAPPA_SRC, tempDataProject } from '../support/project.ts';

const RUNNING = /kappa: HTTP API on (http:\/\/\S+) /;
const KAFKA = /kappa: Kafka API on (\S+):(\d+) /;

const SALE = {
  type: 'record',
  name: 'Sale',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'region', type: 'string' },
    { name: 'cents', type: 'long' },
    { name: 'channel', type: 'string', default: 'web' },
  ],
};
/** What the producer's serializer was built with: an older version, without `channel`. */
const PRODUCER_SALE = { ...SALE, fields: SALE.fields.slice(0, 3) };

const CONFIG = `
import { avro, count, defineApp, from, sum, topic, view } from ${JSON.stringify(KAPPA_SRC)};
type Sale = { id: string; region: string; cents: number; channel: string };
const sales = topic('sales', { partitions: 2, format: avro<Sale>(${JSON.stringify(JSON.stringify(SALE))}), key: (s) => s.id });
export default defineApp({
  topics: [sales],
  views: [view('by_channel', from(sales).groupBy((s) => ({ region: s.region, channel: s.channel })).aggregate({ n: count(), cents: sum((s) => s.cents) }))],
});
`;

test(
  'Avro records from a Confluent serializer over Kafka and JSON over HTTP meet in one view',
  { timeout: 180_000 },
  async (t) => {
    const project = tempDataProject(t, 'kappa-formats-start-', CONFIG);
    const args = ['--data-dir', project.dir, 'start', '--config', project.config, '--port', '0'];
    const kappa = startKappa(t, [...args, '--workers', '1', '--kafka-port', '0']);
    const [, url] = await kappa.waitForOutput(RUNNING, { timeoutMs: 60_000 });
    const [, host, port] = await kappa.waitForOutput(KAFKA, { timeoutMs: 10_000 });

    // The producer registers an older version of the schema (the subject's first is the config's,
    // registered at start; a schema without `channel` is BACKWARD compatible with it).
    const registry = new SchemaRegistry({ host: `${url}/schemas` });
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(PRODUCER_SALE) },
      { subject: 'sales-value' },
    );
    const producer = new Kafka({
      brokers: [`${host}:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    }).producer();
    await producer.connect();
    defer(t, () => producer.disconnect());
    const messages = [];
    for (let i = 0; i < 40; i++)
      messages.push({
        key: `k${i}`,
        value: await registry.encode(id, { id: `k${i}`, region: i % 2 ? 'eu' : 'us', cents: 100 + i }),
      });
    await producer.send({ topic: 'sales', messages });
    await assert.rejects(
      producer.send({
        topic: 'sales',
        messages: [{ key: 'x', value: JSON.stringify({ id: 'x', region: 'eu', cents: 1 }) }],
      }),
      /failed the validation on broker/,
      'a value that is not Confluent-framed is refused by the listener',
    );

    const http = await fetch(`${url}/v1/topics/sales/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { id: 'h1', region: 'eu', cents: 1000, channel: 'store' },
        { id: 'h2', region: 'eu', cents: 2000, channel: 'store' },
      ]),
    });
    assert.equal(http.status, 200, await http.clone().text());

    const want = [
      { region: 'eu', channel: 'store', n: 2, cents: 3000 },
      { region: 'eu', channel: 'web', n: 20, cents: 20 * 100 + (1 + 39) * 10 },
      { region: 'us', channel: 'web', n: 20, cents: 20 * 100 + (0 + 38) * 10 },
    ];
    const rows = await waitFor(
      'the view to count every record',
      async () => {
        const body = (await (await fetch(`${url}/v1/views/by_channel`)).json()) as {
          rows?: { n: number }[];
        };
        return body.rows?.reduce((s, r) => s + r.n, 0) === 42 ? body.rows : null;
      },
      { timeoutMs: 60_000, intervalMs: 200, child: kappa },
    );
    assert.deepEqual(
      [...rows!].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      want,
    );
    await producer.disconnect();
    await kappa.stop();

    const consumed = await runKappa(['--data-dir', project.dir, 'consume', 'sales', '--config', project.config], { t });
    assert.equal(consumed.code, 0, consumed.stderr);
    const values = consumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; channel: string });
    assert.equal(values.length, 42, 'the refused record was never stored');
    assert.deepEqual(
      values.find((v) => v.id === 'k3'),
      { id: 'k3', region: 'eu', cents: 103, channel: 'web' },
      'printed with the config schema: the default fills the field the producer did not have',
    );
  },
);
