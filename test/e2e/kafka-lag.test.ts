/**
 * Consumer-group lag as a user of Kafka checks it: a kafkajs consumer group reads part of a topic
 * from `kappa start`'s Kafka listener and commits; `kappa lag` (run beside the running start) and
 * `GET /v1/pipelines` then show each partition's committed offset, log end and lag, the latter with
 * the group's live state and member. After `kappa start` is killed (SIGKILL) and started again, the
 * committed offsets are still shown, and the lag follows records produced since.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { defer } from '../support/cleanup.ts';
import { startKappaWithKafka } from '../support/kafka-clients.ts';
import { runKappa, waitFor } from '../support/processes.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

interface PartitionLag {
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  lag: number;
  owner: { clientId: string } | null;
}
interface GroupLag {
  groupId: string;
  state: string | null;
  members: { clientId: string }[];
  partitions: PartitionLag[];
  lag: number;
}
interface LagRow {
  kind: string;
  group?: string;
  state?: string | null;
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  lag: number;
}

/** `topic/partition committed/end lag N`, sorted: what both views of the lag must agree on. */
const positions = (rows: readonly Omit<LagRow, 'kind'>[]): string[] =>
  rows.map((r) => `${r.topic}/${r.partition} ${r.committedOffset}/${r.logEndOffset} lag ${r.lag}`).sort();

async function consumerGroups(url: string): Promise<GroupLag[]> {
  const res = await fetch(`${url}/v1/pipelines`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { consumerGroups: GroupLag[] }).consumerGroups;
}

async function kappaLag(dir: string): Promise<{ rows: LagRow[]; table: string }> {
  const json = await runKappa(['--data-dir', dir, 'lag', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const table = await runKappa(['--data-dir', dir, 'lag']);
  assert.equal(table.code, 0, table.stderr);
  return { rows: JSON.parse(json.stdout) as LagRow[], table: table.stdout };
}

test(
  'a kafkajs group commits part of a topic: kappa lag and GET /v1/pipelines show its offsets and lag, also after a SIGKILL and restart',
  { timeout: 180_000 },
  async (t) => {
    const first = await startKappaWithKafka(t, { topics: [{ name: 'orders', partitions: 2 }] });
    const kafka = new Kafka({ brokers: [first.bootstrap], clientId: 'billing-app', logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    defer(t, () => producer.disconnect());
    const send = (partition: number, n: number) =>
      producer.send({
        topic: 'orders',
        messages: Array.from({ length: n }, (_, i) => ({ partition, key: `k${i}`, value: `order ${i}` })),
      });
    await send(0, 10);
    await send(1, 6);

    // The group reads everything, then commits only part of it: 4 of partition 0, 2 of partition 1.
    const consumer = kafka.consumer({ groupId: 'billing', heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    defer(t, () => consumer.disconnect());
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    let received = 0;
    await consumer.run({ autoCommit: false, eachMessage: async () => void received++ });
    await waitFor('the consumer to read all 16 records', async () => (received === 16 ? true : null), {
      timeoutMs: 60_000,
      intervalMs: 100,
      child: first.child,
    });
    await consumer.commitOffsets([
      { topic: 'orders', partition: 0, offset: '4' },
      { topic: 'orders', partition: 1, offset: '2' },
    ]);
    const expected = ['orders/0 4/10 lag 6', 'orders/1 2/6 lag 4'];

    // Live, from the running coordinator: the group is Stable with its one member owning both partitions.
    const [live] = await consumerGroups(first.url);
    assert.ok(live, 'GET /v1/pipelines lists the group (kappa start hands the server its consumer groups)');
    assert.equal(live.groupId, 'billing');
    assert.equal(live.state, 'Stable');
    assert.deepEqual(
      live.members.map((m) => m.clientId),
      ['billing-app'],
    );
    assert.deepEqual(positions(live.partitions), expected);
    assert.deepEqual(
      live.partitions.map((p) => p.owner?.clientId),
      ['billing-app', 'billing-app'],
    );
    assert.equal(live.lag, 10);

    // Beside the running start, from the data directory: the same offsets, state unknown.
    const beside = await kappaLag(first.dir);
    const groupRows = beside.rows.filter((r) => r.kind === 'consumer-group');
    assert.deepEqual(positions(groupRows), expected);
    assert.ok(
      groupRows.every((r) => r.group === 'billing' && r.state === null),
      JSON.stringify(groupRows),
    );
    t.diagnostic(beside.table);
    // This config has no views: the pipelines' part says so in words rather than as an empty table.
    assert.match(beside.table, /^No view or output pipeline has read the log yet\.\n\nKafka consumer groups/);
    assert.match(beside.table, /^billing +orders +0 +4 +10 +6$/m);
    assert.match(beside.table, /^billing +orders +1 +2 +6 +4$/m);
    assert.match(beside.table, /^billing +total \(1 topic\) +- +- +- +10$/m);

    // Killed without a chance to flush anything, then started again: the commits were durable.
    await consumer.disconnect();
    await producer.disconnect();
    const second = await first.restart('SIGKILL');
    const after = new Kafka({ brokers: [second.bootstrap], logLevel: logLevel.NOTHING }).producer();
    await after.connect();
    defer(t, () => after.disconnect());
    await after.send({ topic: 'orders', messages: [0, 1, 2].map((i) => ({ partition: 0, value: `late ${i}` })) });
    const moved = ['orders/0 4/13 lag 9', 'orders/1 2/6 lag 4'];
    const [restarted] = await consumerGroups(second.url);
    assert.ok(restarted, 'GET /v1/pipelines lists the group after the restart');
    assert.equal(restarted.groupId, 'billing');
    assert.equal(restarted.state, 'Empty', 'no member has joined since the restart');
    assert.deepEqual(restarted.members, []);
    assert.deepEqual(positions(restarted.partitions), moved);
    assert.equal(restarted.lag, 13);
    const again = await kappaLag(second.dir);
    assert.deepEqual(positions(again.rows.filter((r) => r.kind === 'consumer-group')), moved);
    assert.match(again.table, /^billing +total \(1 topic\) +- +- +- +13$/m);
  },
);
