/**
 * The topics plugin through `inject()`: NDJSON and JSON ingestion append and acknowledge, a
 * request with a record that breaks the schema appends nothing (or, on a topic that dead-letters,
 * only the bad records go to `<topic>.dlq`), records read back by offset, and
 * ingestion needs `produce:<topic>` once tokens are configured.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Log } from '../log/index.ts';
import { NDJSON, TOKENS, errorCode, headers, openTestServer, post } from './test-server.ts';

async function recordsIn(log: Log, topic: string): Promise<number> {
  let n = 0;
  for (let p = 0; p < (await log.topic(topic)).partitions; p++) {
    const { start, end } = await log.offsets(topic, p);
    n += end - start;
  }
  return n;
}

test('NDJSON lines are appended and acknowledged in request order', async (t) => {
  const { fastify, log } = await openTestServer(t);
  const body = '{"region":"eu","cents":5}\n{"region":"us","cents":7}\r\n{"region":"eu","cents":1}\n';
  const res = await post(fastify, '/v1/topics/sales/records', body, NDJSON);
  assert.equal(res.statusCode, 200, res.body);
  const ack = res.json() as { topic: string; records: { index: number; partition: number; offset: number }[] };
  assert.equal(ack.topic, 'sales');
  assert.deepEqual(
    ack.records.map((r) => r.index),
    [0, 1, 2],
  );
  // Keyed by region: both "eu" records share a partition, at consecutive offsets.
  assert.equal(ack.records[0].partition, ack.records[2].partition);
  assert.equal(ack.records[2].offset, ack.records[0].offset + 1);
  assert.equal(await recordsIn(log, 'sales'), 3);
  const read = await fastify.inject({
    method: 'GET',
    url: `/v1/topics/sales/records?partition=${ack.records[0].partition}`,
    headers: headers(),
  });
  assert.equal(read.statusCode, 200, read.body);
  const page = read.json() as { records: { value: unknown; key: string }[]; next: number };
  assert.deepEqual(
    page.records.map((r) => r.value),
    [
      { region: 'eu', cents: 5 },
      { region: 'eu', cents: 1 },
    ],
  );
  assert.equal(page.next, 2);
});

test('a request with one record that breaks the schema is refused whole: nothing is appended', async (t) => {
  const { fastify, log } = await openTestServer(t);
  const body = '{"region":"eu","cents":5}\n{"region":"us","cents":"seven"}\n';
  const res = await post(fastify, '/v1/topics/sales/records', body, NDJSON);
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(errorCode(res), 'KAPPA_SCHEMA_VIOLATION');
  const details = (
    res.json() as { error: { details: { invalid: number; records: { index: number; path: string }[] } } }
  ).error.details;
  assert.equal(details.invalid, 1);
  assert.deepEqual(
    details.records.map((r) => [r.index, r.path]),
    [[1, 'cents']],
  );
  assert.equal(await recordsIn(log, 'sales'), 0);
});

test('a JSON array is ingested; a topic the config does not define is a 404', async (t) => {
  const { fastify, log } = await openTestServer(t);
  const res = await post(fastify, '/v1/topics/sales/records', JSON.stringify([{ region: 'eu', cents: 2 }]));
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(await recordsIn(log, 'sales'), 1);
  const unknown = await post(fastify, '/v1/topics/nosuch/records', '{}');
  assert.equal(unknown.statusCode, 404, unknown.body);
  assert.equal(errorCode(unknown), 'KAPPA_UNKNOWN_TOPIC');
});

test('ingestion needs produce:<topic>: 401 without a token, 403 with a query token', async (t) => {
  const { fastify, log } = await openTestServer(t, { tokens: true });
  const send = (token?: string) =>
    post(fastify, '/v1/topics/sales/records', '{"region":"eu","cents":5}\n', NDJSON, token);
  const none = await send();
  assert.equal(none.statusCode, 401, none.body);
  const wrong = await send(TOKENS.query);
  assert.equal(wrong.statusCode, 403, wrong.body);
  assert.equal(errorCode(wrong), 'KAPPA_FORBIDDEN');
  assert.equal(await recordsIn(log, 'sales'), 0);
  const ok = await send(TOKENS.producer);
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(await recordsIn(log, 'sales'), 1);
});

test('a topic that dead-letters: good records appended, bad ones sent to <topic>.dlq, answered 207', async (t) => {
  const { fastify, log } = await openTestServer(t);
  const body = '{"kind":"click"}\n{"kind":7}\n{"kind":"view"}\n';
  const res = await post(fastify, '/v1/topics/events/records', body, NDJSON);
  assert.equal(res.statusCode, 207, res.body);
  const ack = res.json() as {
    records: { index: number }[];
    deadLettered: { index: number; topic: string; path: string }[];
  };
  assert.deepEqual(
    ack.records.map((r) => r.index),
    [0, 2],
  );
  assert.deepEqual(
    ack.deadLettered.map((d) => [d.index, d.topic, d.path]),
    [[1, 'events.dlq', 'kind']],
  );
  assert.equal(await recordsIn(log, 'events'), 2);
  assert.equal(await recordsIn(log, 'events.dlq'), 1);
});
