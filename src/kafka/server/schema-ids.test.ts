/**
 * Produce to topics whose config format checks schema ids (schema-ids.ts), at the byte level
 * (RawClient, Produce v9): unframed values, unknown ids and ids of another schema type are refused
 * with INVALID_RECORD, the record named in record_errors and error_message, nothing stored; an id
 * registered after the listener started is found (the registry is read again); checkSchemaIds
 * false and topics without a format store what is sent; pipelined batches stay in order when the
 * first waits for the registry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CODECS, avroDecoder, encodeAvro, encodeProtobuf } from '../../formats/index.ts';
import { type FileLog, encodeBatch } from '../../log/index.ts';
import { Registry } from '../../registry/index.ts';
import { avro, protobuf, topic } from '../../stream/index.ts';
import { API_KEYS, type Body, ERRORS } from '../protocol/index.ts';
import { RawClient, openListener } from './test-helpers.ts';

const PRODUCE_V = 9;
const SALE = JSON.stringify({
  type: 'record',
  name: 'Sale',
  fields: [
    { name: 'region', type: 'string' },
    { name: 'cents', type: 'int' },
  ],
});
const PROTO = 'syntax = "proto3"; package shop; message Order { string id = 1; } message Line { int64 qty = 1; }';
const TOPICS = [
  topic('sales', { format: avro(SALE) }),
  topic('loose', { format: avro(SALE, { checkSchemaIds: false }) }),
  topic('plain'),
  topic('orders', { format: protobuf(PROTO, 'shop.Order') }),
];

function produce(name: string, bytes: Buffer, acks = -1): object {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 1000,
    topicData: [{ name, partitionData: [{ index: 0, records: bytes }] }],
  };
}

function batchOf(values: (Buffer | null)[], more: { producerId?: number; baseSequence?: number } = {}): Buffer {
  const records = values.map((value, i) => ({ key: `k${i}`, value, timestamp: 1_700_000_000_000 + i }));
  return encodeBatch(records, { baseOffset: 0, producerEpoch: 0, ...more });
}

interface PartitionAnswer {
  errorCode: number;
  baseOffset: number;
  errorMessage: string | null;
  recordErrors: { batchIndex: number; batchIndexErrorMessage: string | null }[];
}

const answerOf = (body: Body): PartitionAnswer => body.responses[0].partitionResponses[0];

async function stored(log: FileLog, name: string): Promise<number> {
  const { start, end } = await log.offsets(name, 0);
  return end - start;
}

async function setUp(t: Parameters<typeof openListener>[0]) {
  const { log, listener } = await openListener(t, { topics: TOPICS });
  for (const name of ['sales', 'loose', 'plain', 'orders']) await log.createTopic(name, { partitions: 1 });
  // Another registry object over the same log: as a producer registering through the HTTP API.
  const registry = await Registry.open({ log, codecs: CODECS });
  const c = await RawClient.connect(t, listener.port);
  return { log, registry, c };
}

test('records that are not framed, or name an unknown id or another type, are refused; nothing is stored', async (t) => {
  const { log, registry, c } = await setUp(t);
  const { id } = await registry.register('sales-value', { schemaType: 'AVRO', schema: SALE, references: [] });
  const good = encodeAvro(id, registry.schemaFor(id)!, { region: 'eu', cents: 5 });

  const ok = answerOf(await c.request(API_KEYS.Produce, PRODUCE_V, produce('sales', batchOf([good, null, good]))));
  assert.deepEqual([ok.errorCode, ok.baseOffset], [0, 0], 'framed records with a known id (and a tombstone)');

  const json = Buffer.from('{"region":"eu","cents":5}');
  const cases: { values: Buffer[]; record: number; says: RegExp }[] = [
    { values: [good, json], record: 1, says: /Record 1's value starts with byte 0x7b, not the magic byte 0/ },
    { values: [Buffer.from([0, 0, 0])], record: 0, says: /Record 0's value is 3 bytes long, too short/ },
    { values: [Buffer.alloc(0)], record: 0, says: /Record 0's value is empty/ },
    {
      values: [good, good, Buffer.concat([Buffer.from([0, 0, 0, 0x27, 0x0f]), good.subarray(5)])],
      record: 2,
      says: /Record 2 names schema id 9999, which Kappa's schema registry does not know/,
    },
  ];
  const other = await registry.register('other-value', {
    schemaType: 'JSON',
    schema: '{"type":"object"}',
    references: [],
  });
  const otherValue = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), Buffer.from('{}')]);
  otherValue.writeInt32BE(other.id, 1);
  cases.push({
    values: [otherValue],
    record: 0,
    says: new RegExp(`names schema id ${other.id}, which is a JSON schema, but topic "sales" holds AVRO records`),
  });
  for (const { values, record, says } of cases) {
    const a = answerOf(await c.request(API_KEYS.Produce, PRODUCE_V, produce('sales', batchOf(values))));
    assert.equal(a.errorCode, ERRORS.INVALID_RECORD, String(says));
    assert.match(a.errorMessage ?? '', says);
    assert.deepEqual(a.recordErrors, [{ batchIndex: record, batchIndexErrorMessage: a.errorMessage }]);
  }
  // Two batches in one partition: all or none.
  const two = Buffer.concat([batchOf([good]), batchOf([json])]);
  const a = answerOf(await c.request(API_KEYS.Produce, PRODUCE_V, produce('sales', two)));
  assert.equal(a.errorCode, ERRORS.INVALID_RECORD);
  assert.match(a.errorMessage ?? '', /^Record 0 of batch 1's value starts with byte 0x7b/);
  assert.equal(await stored(log, 'sales'), 3, 'only the first, good batch');

  // Produce v7 (kafkajs's) has no error_message: the code alone says it.
  const v7 = (await c.request(API_KEYS.Produce, 7, produce('sales', batchOf([json])))).responses[0]
    .partitionResponses[0] as PartitionAnswer;
  assert.equal(v7.errorCode, ERRORS.INVALID_RECORD);

  // checkSchemaIds: false, and a topic without a format: stored as sent.
  for (const name of ['loose', 'plain']) {
    const got = answerOf(
      await c.request(API_KEYS.Produce, PRODUCE_V, produce(name, batchOf([json, Buffer.from([1])]))),
    );
    assert.equal(got.errorCode, 0, name);
    assert.equal(await stored(log, name), 2, name);
  }
});

test('an id registered after the listener started is found; pipelined batches keep their order', async (t) => {
  const { log, registry, c } = await setUp(t);
  // The listener reads the registry now (and knows no id); then a producer registers one.
  const early = answerOf(
    await c.request(API_KEYS.Produce, PRODUCE_V, produce('sales', batchOf([Buffer.from([0, 0, 0, 0, 1, 2])]))),
  );
  assert.equal(early.errorCode, ERRORS.INVALID_RECORD);
  const { id } = await registry.register('sales-value', { schemaType: 'AVRO', schema: SALE, references: [] });
  const sale = (cents: number, as = id): Buffer => encodeAvro(as, registry.schemaFor(as)!, { region: 'eu', cents });
  const known = answerOf(await c.request(API_KEYS.Produce, PRODUCE_V, produce('sales', batchOf([sale(-1)]))));
  assert.equal(known.errorCode, 0, 'the registry was read again before the id was refused');

  // A second version, not yet seen by the listener. An idempotent producer pipelines three
  // batches: the first names the new id and waits for the registry to be read; the other two name
  // the known id and could be stored at once, but must not overtake it.
  const v2 = JSON.parse(SALE) as { fields: object[] };
  v2.fields.push({ name: 'note', type: 'string', default: '' });
  const next = await registry.register('sales-value', {
    schemaType: 'AVRO',
    schema: JSON.stringify(v2),
    references: [],
  });
  const { producerId } = await c.request(API_KEYS.InitProducerId, 4, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId: -1,
    producerEpoch: -1,
  });
  const frames = [0, 1, 2].map((i) => {
    const values = [sale(2 * i, i === 0 ? next.id : id), sale(2 * i + 1, i === 0 ? next.id : id)];
    return c.frame(API_KEYS.Produce, PRODUCE_V, produce('sales', batchOf(values, { producerId, baseSequence: 2 * i })));
  });
  c.write(Buffer.concat(frames)); // one write: the listener reads all three before the registry answers
  const offsets: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = answerOf((await c.response(API_KEYS.Produce, PRODUCE_V)).body);
    assert.equal(a.errorCode, 0, `batch ${i}`);
    offsets.push(a.baseOffset);
  }
  assert.deepEqual(offsets, [1, 3, 5]);
  const cents: number[] = [];
  const decode = avroDecoder(registry.schemaFor(id)!);
  for await (const b of log.read('sales', 0, 0))
    for (const r of b.records())
      cents.push((decode(r.value!, (w) => registry.schemaFor(w)) as { cents: number }).cents);
  assert.deepEqual(cents, [-1, 0, 1, 2, 3, 4, 5]);
});

test('a Protobuf record whose message indexes name no message of its schema is refused; nothing is stored', async (t) => {
  const { log, registry, c } = await setUp(t);
  const { id } = await registry.register('orders-value', { schemaType: 'PROTOBUF', schema: PROTO, references: [] });
  const order = encodeProtobuf(id, registry.schemaFor(id)!, 'shop.Order', { id: 'o-1' });
  const line = encodeProtobuf(id, registry.schemaFor(id)!, 'shop.Line', { qty: 2 });
  const ok = answerOf(await c.request(API_KEYS.Produce, PRODUCE_V, produce('orders', batchOf([order, line]))));
  assert.equal(ok.errorCode, 0, 'messages [0] and [1] of the schema');
  // Message indexes [5]: count 1 then index 5, zigzag-encoded (02 0a).
  const nowhere = Buffer.concat([order.subarray(0, 5), Buffer.from([2, 10]), order.subarray(6)]);
  const a = answerOf(await c.request(API_KEYS.Produce, PRODUCE_V, produce('orders', batchOf([order, nowhere]))));
  assert.equal(a.errorCode, ERRORS.INVALID_RECORD);
  assert.match(a.errorMessage ?? '', /Record 1 cannot be read: its message indexes \[5\] name no message of schema/);
  assert.equal(await stored(log, 'orders'), 2, 'only the first batch');
});
