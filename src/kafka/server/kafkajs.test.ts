/**
 * kafkajs (an independent client, from npm) against an in-process listener over a FileLog: topics
 * created with its admin client, records produced with its producer (plain and idempotent) land in
 * the log on the partitions murmur2 picks, with their keys, headers and timestamps, readable by
 * log.read; offsets and metadata read back through the admin client.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Admin, CompressionTypes, Kafka, type Producer, logLevel } from 'kafkajs';
import { defer } from '../../../test/support/cleanup.ts';
import { type FileLog, type LogRecord, partitionForKey } from '../../log/index.ts';
import { openListener } from './test-helpers.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

function client(address: string): Kafka {
  return new Kafka({ brokers: [address], clientId: 'kafkajs-test', logLevel: logLevel.NOTHING, retry: { retries: 2 } });
}

async function connected<T extends Admin | Producer>(t: { after(fn: () => unknown): void }, c: T): Promise<T> {
  await c.connect();
  defer(t, () => c.disconnect());
  return c;
}

/** Matches a kafkajs error (or an aggregate of them) of Kafka's error `type`. */
function kafkaError(type: string): (err: unknown) => boolean {
  const matches = (err: unknown): boolean => {
    const e = err as { type?: string; errors?: unknown[]; originalError?: unknown } | null;
    if (e === null || typeof e !== 'object') return false;
    return e.type === type || (e.errors ?? []).some(matches) || matches(e.originalError ?? null);
  };
  return matches;
}

async function allRecords(log: FileLog, topic: string): Promise<Map<number, LogRecord[]>> {
  const out = new Map<number, LogRecord[]>();
  const { partitions } = await log.topic(topic);
  for (let p = 0; p < partitions; p++) {
    const records: LogRecord[] = [];
    for await (const batch of log.read(topic, p, 0)) records.push(...batch.records());
    out.set(p, records);
  }
  return out;
}

test(
  'kafkajs creates a topic, produces keyed records with headers, and they are in the log on murmur2 partitions',
  { timeout: 60_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    const kafka = client(listener.address);
    const admin = await connected(t, kafka.admin());
    assert.equal(await admin.createTopics({ topics: [{ topic: 'sales', numPartitions: 3 }] }), true);
    const meta = await admin.fetchTopicMetadata({ topics: ['sales'] });
    assert.deepEqual(meta.topics[0].partitions.map((p) => [p.partitionId, p.leader]).sort(), [
      [0, 0],
      [1, 0],
      [2, 0],
    ]);
    const producer = await connected(t, kafka.producer());
    const messages = Array.from({ length: 30 }, (_, i) => ({
      key: `key-${i % 7}`,
      value: `value-${i}`,
      timestamp: String(1_700_000_000_000 + i),
      headers: { n: String(i), kind: 'sale' },
    }));
    await producer.send({ topic: 'sales', acks: -1, messages });
    const stored = await allRecords(log, 'sales');
    let seen = 0;
    for (const [partition, records] of stored) {
      for (const r of records) {
        const i = Number(r.headers.find((h) => h.key === 'n')!.value!.toString());
        const m = messages[i];
        assert.equal(partition, partitionForKey(m.key, 3), `record ${i} on murmur2's partition`);
        assert.equal(r.key!.toString(), m.key);
        assert.equal(r.value!.toString(), m.value);
        assert.equal(r.timestamp, Number(m.timestamp));
        assert.deepEqual(
          r.headers.map((h) => [h.key, h.value!.toString()]),
          [
            ['n', String(i)],
            ['kind', 'sale'],
          ],
        );
        seen++;
      }
      // Per partition, records keep the order they were sent in.
      const order = records.map((r) => Number(r.headers[0].value!.toString()));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
      );
    }
    assert.equal(seen, 30);
    const offsets = await admin.fetchTopicOffsets('sales');
    const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
    assert.equal(total, 30);
  },
);

test(
  'an idempotent kafkajs producer appends each record once, under a producer id in the batch header',
  { timeout: 60_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('orders', { partitions: 2 });
    const kafka = client(listener.address);
    const producer = await connected(t, kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    for (let round = 0; round < 5; round++)
      await producer.send({
        topic: 'orders',
        messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `r${round}-${i}` })),
      });
    let n = 0;
    const ids = new Set<number>();
    for (let p = 0; p < 2; p++)
      for await (const batch of log.read('orders', p, 0)) {
        ids.add(batch.producerId);
        n += batch.count;
      }
    assert.equal(n, 100);
    assert.equal(ids.size, 1);
    const [id] = ids;
    assert.ok(id >= 2 ** 52 && id < 2 ** 53, `producer id ${id} in the log's short-lived range`);
  },
);

test('gzip batches from kafkajs are stored as sent and decode through log.read', { timeout: 60_000 }, async (t) => {
  const { log, listener } = await openListener(t);
  await log.createTopic('zipped', { partitions: 1 });
  const producer = await connected(t, client(listener.address).producer());
  const messages = Array.from({ length: 50 }, (_, i) => ({
    key: `k${i}`,
    value: `compressible value ${i} `.repeat(10),
  }));
  await producer.send({ topic: 'zipped', compression: CompressionTypes.GZIP, messages });
  const values: string[] = [];
  for await (const batch of log.read('zipped', 0, 0)) {
    assert.equal(batch.attributes & 7, CompressionTypes.GZIP, 'stored compressed, as produced');
    for (const r of batch.records()) values.push(r.value!.toString());
  }
  assert.deepEqual(
    values,
    messages.map((m) => m.value),
  );
});

test('ListOffsets: earliest, latest and by timestamp through the time index', { timeout: 60_000 }, async (t) => {
  const { log, listener } = await openListener(t);
  await log.createTopic('ticks', { partitions: 1 });
  const kafka = client(listener.address);
  const producer = await connected(t, kafka.producer());
  for (let i = 0; i < 10; i++)
    await producer.send({ topic: 'ticks', messages: [{ value: `t${i}`, timestamp: String(1_000_000 + i * 1000) }] });
  const admin = await connected(t, kafka.admin());
  assert.deepEqual(await admin.fetchTopicOffsets('ticks'), [{ partition: 0, offset: '10', high: '10', low: '0' }]);
  assert.deepEqual(await admin.fetchTopicOffsetsByTimestamp('ticks', 1_004_500), [{ partition: 0, offset: '5' }]);
  assert.deepEqual(await admin.fetchTopicOffsetsByTimestamp('ticks', 1_000_000), [{ partition: 0, offset: '0' }]);
  // Later than every record: Kafka's answer is -1, which kafkajs turns into the high watermark.
  assert.deepEqual(await admin.fetchTopicOffsetsByTimestamp('ticks', 9_000_000), [{ partition: 0, offset: '10' }]);
});

test(
  'CreateTopics maps retention.ms and segment.bytes, refuses replication 3, unknown configs and existing names; DescribeConfigs shows them',
  { timeout: 60_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    const admin = await connected(t, client(listener.address).admin());
    await admin.createTopics({
      topics: [
        {
          topic: 'kept',
          numPartitions: 2,
          configEntries: [
            { name: 'retention.ms', value: '3600000' },
            { name: 'segment.bytes', value: '1048576' },
          ],
        },
      ],
    });
    const info = await log.topic('kept');
    assert.equal(info.retentionMs, 3_600_000);
    assert.equal(info.segmentBytes, 1_048_576);
    assert.equal(info.partitions, 2);
    // kafkajs reads TOPIC_ALREADY_EXISTS as "nothing created".
    assert.equal(await admin.createTopics({ topics: [{ topic: 'kept' }] }), false);
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: 'triple', replicationFactor: 3 }] }),
      kafkaError('INVALID_REPLICATION_FACTOR'),
    );
    await assert.rejects(
      admin.createTopics({
        topics: [{ topic: 'compacted', configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      }),
      kafkaError('INVALID_CONFIG'),
    );
    assert.deepEqual(
      (await log.topics()).map((x) => x.name),
      ['kept'],
    );
    await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'dry-run' }] });
    assert.deepEqual(
      (await log.topics()).map((x) => x.name),
      ['kept'],
    );
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: 'kept' }] });
    const entries = new Map(described.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
    assert.equal(entries.get('retention.ms'), '3600000');
    assert.equal(entries.get('segment.bytes'), '1048576');
    assert.equal(entries.get('cleanup.policy'), 'delete');
    await admin.deleteTopics({ topics: ['kept'] });
    assert.deepEqual(await log.topics(), []);
  },
);

test(
  'Metadata: an unknown topic is UNKNOWN_TOPIC_OR_PARTITION, and is not created unless the listener auto-creates',
  { timeout: 60_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    const admin = await connected(t, client(listener.address).admin());
    await assert.rejects(admin.fetchTopicMetadata({ topics: ['nope'] }), /does not host this topic-partition/);
    assert.deepEqual(await log.topics(), []);
    const auto = await openListener(t, { autoCreateTopics: { partitions: 2 } });
    const producer = await connected(t, client(auto.listener.address).producer({ allowAutoTopicCreation: true }));
    await producer.send({ topic: 'fresh', messages: [{ key: 'a', value: '1' }] });
    assert.equal((await auto.log.topic('fresh')).partitions, 2);
  },
);

test(
  'DeleteTopics refuses a topic the running pipelines read, with the reason, and deletes the others',
  { timeout: 60_000 },
  async (t) => {
    const { log, listener } = await openListener(t, {
      topicInUse: (name) => (name === 'sales' ? 'view sales_totals of the running config reads it' : null),
    });
    await log.createTopic('sales', { partitions: 1 });
    await log.createTopic('scratch', { partitions: 1 });
    const admin = await connected(t, client(listener.address).admin());
    await assert.rejects(admin.deleteTopics({ topics: ['sales'] }), kafkaError('TOPIC_DELETION_DISABLED'));
    await admin.deleteTopics({ topics: ['scratch'] });
    assert.deepEqual(
      (await log.topics()).map((x) => x.name),
      ['sales'],
    );
  },
);
