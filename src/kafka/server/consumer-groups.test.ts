/**
 * kafkajs consumers in a group over the listener and the group coordinator: two members split the
 * partitions (the second's join rebalances the first), every record produced is consumed with its
 * key, value and headers, committed offsets read back through the admin client, and a consumer
 * restarted in the same group resumes after what was committed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Consumer, Kafka, type KafkaMessage, logLevel } from 'kafkajs';
import { defer } from '../../../test/support/cleanup.ts';
import { openListener } from './test-helpers.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

async function waitUntil(what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Received {
  partition: number;
  message: KafkaMessage;
}

async function startConsumer(
  t: { after(fn: () => unknown): void },
  kafka: Kafka,
  groupId: string,
  into: Received[],
): Promise<{ consumer: Consumer; assigned: () => number[] }> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  let assigned: number[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assigned = (e.payload.memberAssignment['orders'] ?? []).slice().sort();
  });
  await consumer.connect();
  defer(t, () => consumer.disconnect());
  await consumer.subscribe({ topic: 'orders', fromBeginning: true });
  await consumer.run({ eachMessage: async ({ partition, message }) => void into.push({ partition, message }) });
  return { consumer, assigned: () => assigned };
}

test(
  'a group of two kafkajs consumers splits the partitions, rebalancing when the second joins, and consumes every record',
  { timeout: 120_000 },
  async (t) => {
    const { log, listener: served } = await openListener(t, { withGroups: true });
    await log.createTopic('orders', { partitions: 4 });
    const kafka = new Kafka({ brokers: [served.address], clientId: 'group-test', logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    defer(t, () => producer.disconnect());
    const send = (from: number, n: number) =>
      producer.send({
        topic: 'orders',
        messages: Array.from({ length: n }, (_, i) => ({
          key: `k${(from + i) % 9}`,
          value: `v${from + i}`,
          headers: { i: String(from + i) },
        })),
      });
    await send(0, 20);
    const a: Received[] = [];
    const b: Received[] = [];
    const first = await startConsumer(t, kafka, 'billing', a);
    await waitUntil('the first consumer to own all four partitions', () => first.assigned().length === 4);
    await waitUntil('the first consumer to read the first 20', () => a.length >= 20);
    const second = await startConsumer(t, kafka, 'billing', b);
    await waitUntil(
      'the rebalance to split the partitions',
      () => first.assigned().length === 2 && second.assigned().length === 2,
    );
    assert.deepEqual([...first.assigned(), ...second.assigned()].sort(), [0, 1, 2, 3]);
    await send(20, 20);
    const values = (): Set<string> => new Set([...a, ...b].map((r) => r.message.value!.toString()));
    await waitUntil('every record to be consumed', () => values().size === 40);
    for (const r of [...a, ...b]) {
      const i = Number(r.message.headers!.i!.toString());
      assert.equal(r.message.value!.toString(), `v${i}`);
    }
    // After the rebalance each member reads only its own partitions.
    const late = (rs: Received[]) =>
      rs.filter((r) => Number(r.message.headers!.i!.toString()) >= 20).map((r) => r.partition);
    for (const p of late(a)) assert.ok(first.assigned().includes(p));
    for (const p of late(b)) assert.ok(second.assigned().includes(p));
    await first.consumer.disconnect();
    await second.consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    defer(t, () => admin.disconnect());
    const committed = await admin.fetchOffsets({ groupId: 'billing', topics: ['orders'] });
    const high = await admin.fetchTopicOffsets('orders');
    // A partition no record went to has nothing committed (-1).
    assert.deepEqual(
      committed[0].partitions.map((p) => [p.partition, p.offset]).sort(),
      high.map((h) => [h.partition, h.high === '0' ? '-1' : h.high]).sort(),
    );
    // A consumer started again in the group resumes after the committed offsets: nothing old comes back.
    await send(40, 4);
    const c: Received[] = [];
    const third = await startConsumer(t, kafka, 'billing', c);
    await waitUntil('the four new records', () => c.length >= 4);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(c.map((r) => r.message.value!.toString()).sort(), ['v40', 'v41', 'v42', 'v43']);
    // An admin deletes a group only once it has no members (as kafka-consumer-groups --delete).
    await assert.rejects(admin.deleteGroups(['billing']), (err: { groups?: { error?: { type?: string } }[] }) => {
      assert.equal(err.groups?.[0]?.error?.type, 'NON_EMPTY_GROUP');
      return true;
    });
    await third.consumer.disconnect();
    assert.deepEqual(await admin.deleteGroups(['billing']), [{ groupId: 'billing', errorCode: 0 }]);
    const gone = await admin.fetchOffsets({ groupId: 'billing', topics: ['orders'] });
    assert.ok(
      gone[0].partitions.every((p) => p.offset === '-1'),
      'its committed offsets are gone',
    );
  },
);
