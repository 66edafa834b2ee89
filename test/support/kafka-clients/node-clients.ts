/**
 * The two npm clients: kafkajs 2.x and @platformatic/kafka 1.x. They produce and consume in this
 * process (fast: no interpreter to start); their group members run in node-member.mjs child
 * processes, so a member's death is a real one.
 *
 * Partitioners: kafkajs 2's DefaultPartitioner is Java's murmur2 (asked for by name here, which also
 * silences its warning). @platformatic/kafka's default partitioner takes murmur2 as an unsigned
 * number (`>>> 0`), which puts some keys elsewhere than Java's `& 0x7fffffff`; its
 * `compatibilityPartitioner` is Java's, and the driver uses it.
 */
import { fileURLToPath } from 'node:url';
import {
  Consumer,
  Producer,
  compatibilityPartitioner,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { type Owner, defer } from '../cleanup.ts';
import { startJsonMember } from './member.ts';
import type { Ack, Codec, ConsumeOptions, ConsumedRecord, KafkaClient, KafkaRecord, ProduceOptions } from './types.ts';

const MEMBER_SCRIPT = fileURLToPath(new URL('./node-member.mjs', import.meta.url));
let readers = 0;

function kafkajsOf(bootstrap: string): Kafka {
  return new Kafka({ clientId: 'kappa-compat', brokers: [bootstrap], logLevel: logLevel.ERROR, retry: { retries: 3 } });
}

const KAFKAJS_CODECS: Record<Codec, CompressionTypes> = {
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/**
 * Reads until `count` records came or `timeoutMs` passed, with whatever `start` sets going; rejects
 * as soon as the consumer reports an error through `fail`.
 */
async function collect(
  count: number,
  timeoutMs: number,
  start: (push: (r: ConsumedRecord) => void, fail: (error: unknown) => void) => Promise<void>,
): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  let done!: () => void;
  let failed!: (error: unknown) => void;
  const enough = new Promise<void>((resolve, reject) => ([done, failed] = [resolve, reject]));
  await start(
    (r) => {
      out.push(r);
      if (out.length >= count) done();
    },
    (error) => failed(new Error(`the consumer failed: ${describeError(error)}`, { cause: error })),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([enough, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  return out;
}

/**
 * kafkajs 2. Compression: gzip only (snappy, lz4 and zstd need codec packages kafkajs leaves to the
 * user). Consuming without a group is not in kafkajs, so `consume` uses a fresh group that commits nothing.
 */
export const kafkajsClient: KafkaClient = {
  name: 'kafkajs',
  codecs: ['gzip'],
  setsTimestamps: true,
  perRecordHeaders: true,
  commitDelayMs: 0,
  rebalanceSettleMs: 0,
  async produce(t, bootstrap, topic, records: KafkaRecord[], opts: ProduceOptions = {}): Promise<Ack[]> {
    const producer = kafkajsOf(bootstrap).producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: opts.idempotent ?? false,
      allowAutoTopicCreation: true,
    });
    defer(t, () => producer.disconnect());
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      compression: opts.compression ? KAFKAJS_CODECS[opts.compression] : CompressionTypes.None,
      messages: records.map((r) => ({
        key: r.key,
        value: r.value,
        headers: Object.fromEntries(r.headers),
        ...(r.timestamp === null ? {} : { timestamp: String(r.timestamp) }),
      })),
    });
    await producer.disconnect();
    return records.map(() => ({ error: null }));
  },
  async consume(t, bootstrap, topic, opts: ConsumeOptions): Promise<ConsumedRecord[]> {
    const consumer = kafkajsOf(bootstrap).consumer({ groupId: `kappa-compat-reader-${process.pid}-${++readers}` });
    defer(t, () => consumer.disconnect());
    return collect(opts.count, opts.timeoutMs, async (push, fail) => {
      consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) =>
          push({
            partition,
            offset: Number(message.offset),
            key: message.key === null ? null : message.key.toString('utf8'),
            value: message.value === null ? null : message.value.toString('utf8'),
            headers: Object.entries(message.headers ?? {}).map(([k, v]) => [k, v === undefined ? null : String(v)]),
            timestamp: Number(message.timestamp),
          }),
      });
    }).finally(() => consumer.disconnect());
  },
  startMember(t, bootstrap, topic, group, name) {
    return startJsonMember(t, name, process.execPath, [
      MEMBER_SCRIPT,
      'kafkajs',
      JSON.stringify({ bootstrap, topic, group }),
    ]);
  },
  committed: kafkajsCommitted,
};

/** The group's committed offsets through kafkajs's admin client (OffsetFetch); -1: none. */
export async function kafkajsCommitted(
  t: Owner,
  bootstrap: string,
  topic: string,
  group: string,
  partitions: number[],
): Promise<Map<number, number>> {
  const admin = kafkajsOf(bootstrap).admin();
  defer(t, () => admin.disconnect());
  await admin.connect();
  try {
    const [found] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const byPartition = new Map((found?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    return new Map(partitions.map((p) => [p, byPartition.get(p) ?? -1]));
  } finally {
    await admin.disconnect();
  }
}

/** @platformatic/kafka 1.x. Compression: gzip, snappy, lz4 (zstd needs Node 22's zlib). */
export const platformaticKafka: KafkaClient = {
  name: 'platformatic-kafka',
  codecs: ['gzip', 'snappy', 'lz4'],
  setsTimestamps: true,
  perRecordHeaders: true,
  commitDelayMs: 0,
  // Its messages stream hands on whatever a Fetch brings back, also from a partition the member lost
  // in a rebalance while that Fetch waited (messages-stream.js #pushRecords does not look at the new
  // assignment): its members long-poll for at most PLATFORMATIC_FETCH_WAIT_MS (node-member.mjs), and the
  // scenarios wait longer than that after each rebalance before they produce.
  rebalanceSettleMs: 1_500,
  async produce(t, bootstrap, topic, records: KafkaRecord[], opts: ProduceOptions = {}): Promise<Ack[]> {
    const producer = new Producer({
      clientId: 'kappa-compat',
      bootstrapBrokers: [bootstrap],
      serializers: stringSerializers,
      partitioner: compatibilityPartitioner,
      idempotent: opts.idempotent ?? false,
      autocreateTopics: true,
    });
    defer(t, () => producer.close());
    await producer.send({
      acks: -1,
      ...(opts.compression ? { compression: opts.compression } : {}),
      messages: records.map((r) => ({
        topic,
        key: r.key ?? undefined,
        value: r.value,
        headers: new Map(r.headers),
        ...(r.timestamp === null ? {} : { timestamp: BigInt(r.timestamp) }),
      })),
    });
    await producer.close();
    return records.map(() => ({ error: null }));
  },
  async consume(t, bootstrap, topic, opts: ConsumeOptions): Promise<ConsumedRecord[]> {
    const consumer = platformaticConsumer(bootstrap, `kappa-compat-reader-${process.pid}-${++readers}`);
    defer(t, () => consumer.close(true));
    let stop = (): void => {};
    const out = await collect(opts.count, opts.timeoutMs, async (push, fail) => {
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      stop = () => void stream.close();
      stream.on('error', fail);
      stream.on('data', (m) =>
        push({
          partition: m.partition,
          offset: Number(m.offset),
          key: m.key ?? null,
          value: m.value ?? null,
          headers: [...m.headers.entries()].map(([k, v]) => [String(k), v === undefined ? null : String(v)]),
          timestamp: Number(m.timestamp),
        }),
      );
    }).finally(async () => {
      stop();
      await consumer.close(true);
    });
    return out;
  },
  startMember(t, bootstrap, topic, group, name) {
    return startJsonMember(t, name, process.execPath, [
      MEMBER_SCRIPT,
      'platformatic',
      JSON.stringify({ bootstrap, topic, group }),
    ]);
  },
  async committed(t, bootstrap, topic, group, partitions) {
    const consumer = platformaticConsumer(bootstrap, group);
    defer(t, () => consumer.close(true));
    const offsets = await consumer.listCommittedOffsets({ topics: [{ topic, partitions }] });
    await consumer.close(true);
    const list = offsets.get(topic) ?? [];
    return new Map(partitions.map((p) => [p, Number(list[p] ?? -1n)]));
  },
};

/** An error with the distinct messages of the errors it aggregates (what each request got from the server). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const inner = (error as { errors?: unknown[] }).errors ?? [];
  const reasons = [...new Set(inner.map((e) => describeError(e)))];
  const api = (error as { apiId?: string }).apiId;
  const own = api ? `${error.message} (${api})` : error.message;
  return reasons.length === 0 ? own : `${own}: ${reasons.join('; ')}`;
}

function platformaticConsumer(bootstrap: string, groupId: string) {
  return new Consumer({
    clientId: 'kappa-compat',
    groupId,
    bootstrapBrokers: [bootstrap],
    deserializers: stringDeserializers,
  });
}
