/**
 * KafkaLog: the `Log` port over a Kafka cluster (Apache Kafka, or anything that speaks its protocol:
 * Kappa's own listener, librdkafka's mock cluster). What each method sends is in its comment; what
 * differs from FileLog is listed in ./index.ts. The cluster owns durability (acks=all: an append
 * resolves once every in-sync replica has it), retention (by the topic's retention.ms and
 * retention.bytes, which createTopic passes on) and the idempotence rules (see producer.ts).
 *
 * A read-only handle (`openLog(descriptor, { readOnly: true })`, as worker threads open it) refuses
 * every change with KAPPA_READ_ONLY before anything is sent.
 */
import { KappaError } from '../../errors.ts';
import { checkPartitionCount, checkTopicLimits, checkTopicName } from '../names.ts';
import { partitionForKey } from '../partitioner.ts';
import type { EncodableRecord, RecordBatch } from '../record-batch.ts';
import { toEncodable } from '../append-input.ts';
import type {
  AppendBatchResult,
  BatchOptions,
  Log,
  PartitionHealth,
  PartitionOffsets,
  ProducerRecord,
  ReadOptions,
  RecordMetadata,
  TopicConfig,
  TopicInfo,
} from '../types.ts';
import { Cluster, check } from './cluster.ts';
import { KAFKA, kafkaError } from './errors.ts';
import { Appender } from './producer.ts';
import { BatchReader } from './reader.ts';
import * as wire from './wire.ts';
import type { KafkaLogDescriptor } from '../types.ts';

/** TopicInfo fields the cluster has no value for (its defaults apply): FileLog's defaults, for display. */
const UNSET = { retentionMs: -1, retentionBytes: -1, segmentBytes: 1 << 30, segmentMs: 7 * 24 * 3600 * 1000 };
const CONFIG_KEYS = {
  retentionMs: 'retention.ms',
  retentionBytes: 'retention.bytes',
  segmentBytes: 'segment.bytes',
  segmentMs: 'segment.ms',
} as const;
/** How long createTopic and deleteTopic wait for every broker's metadata to show the change. */
const SETTLE_MS_MAX = 30_000;

export interface KafkaLogOptions {
  descriptor: KafkaLogDescriptor;
  readOnly?: boolean;
}

export class KafkaLog implements Log {
  readonly descriptor: KafkaLogDescriptor;
  readonly readOnly: boolean;
  fsyncObserver: ((seconds: number) => void) | null = null;
  private readonly cluster: Cluster;
  private readonly reader: BatchReader;
  private readonly appender: Appender;
  private readonly roundRobin = new Map<string, number>();
  private closed = false;

  constructor(opts: KafkaLogOptions) {
    const d = opts.descriptor;
    this.descriptor = d;
    this.readOnly = opts.readOnly ?? false;
    this.cluster = new Cluster({
      brokers: d.brokers,
      clientId: d.clientId,
      tls: d.tls === true ? {} : d.tls === false ? undefined : d.tls,
      sasl: d.sasl,
      connectTimeoutMs: d.connectTimeoutMs ?? 5_000,
      requestTimeoutMs: d.requestTimeoutMs ?? 30_000,
    });
    this.reader = new BatchReader(this.cluster);
    this.appender = new Appender(this.cluster, this.reader, d.requestTimeoutMs ?? 30_000);
  }

  /** Connects and reads the metadata once, so a wrong address fails here, naming the brokers. */
  async start(): Promise<this> {
    await this.cluster.refresh();
    return this;
  }

  private live(): void {
    if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', 'The log is closed.');
  }

  private writable(what: string): void {
    this.live();
    if (this.readOnly) throw new KappaError('KAPPA_READ_ONLY', `The log is open read-only; cannot ${what}.`);
  }

  /** CreateTopics with the config's partitions and, when given, its retention and segment settings. */
  async createTopic(name: string, config: TopicConfig): Promise<TopicInfo> {
    checkTopicName(name);
    checkPartitionCount(config.partitions);
    this.writable(`create topic "${name}"`);
    checkTopicLimits({ ...UNSET, ...config, name, createdAtMs: 0 });
    await this.cluster.require('CreateTopics', `create topic "${name}"`);
    const configs: [string, string][] = [];
    for (const [field, key] of Object.entries(CONFIG_KEYS)) {
      const v = config[field as keyof typeof CONFIG_KEYS];
      if (v !== undefined) configs.push([key, String(v)]);
    }
    const subject = { action: 'creating', topic: name };
    await this.cluster.retrying(subject, async () => {
      const t = {
        name,
        partitions: config.partitions,
        replicationFactor: this.descriptor.replicationFactor ?? -1,
        configs,
      };
      const res = await wire.createTopics(await this.cluster.controller(), t, SETTLE_MS_MAX);
      check(res.errorCode, subject, res.errorMessage ?? undefined);
    });
    await this.settle(name, true);
    return this.topic(name);
  }

  /** DeleteTopics; resolves once the metadata no longer lists the topic. */
  async deleteTopic(name: string): Promise<void> {
    checkTopicName(name);
    this.writable(`delete topic "${name}"`);
    await this.cluster.require('DeleteTopics', `delete topic "${name}"`);
    const subject = { action: 'deleting', topic: name };
    await this.cluster.retrying(subject, async () => {
      const res = await wire.deleteTopics(await this.cluster.controller(), name, SETTLE_MS_MAX);
      check(res.errorCode, subject);
    });
    await this.settle(name, false);
  }

  /** Waits until the metadata shows the topic with a leader for every partition (or gone). */
  private async settle(name: string, present: boolean): Promise<void> {
    const deadline = Date.now() + SETTLE_MS_MAX;
    for (;;) {
      const t = (await this.cluster.refresh()).get(name);
      if (present ? t !== undefined && t.leaders.every((l) => l >= 0) : t === undefined) return;
      if (Date.now() > deadline)
        throw kafkaError(KAFKA.REQUEST_TIMED_OUT, { action: present ? 'creating' : 'deleting', topic: name });
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async append(topic: string, records: readonly ProducerRecord[]): Promise<RecordMetadata[]> {
    this.writable(`append to topic "${topic}"`);
    const n = (await this.cluster.topic(topic)).leaders.length;
    const now = Date.now();
    const groups = new Map<number, { records: EncodableRecord[]; indexes: number[] }>();
    const keyless = this.roundRobin.get(topic) ?? 0;
    let usedKeyless = false;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      let p: number;
      if (r.partition !== undefined) p = r.partition;
      else if (r.key !== undefined && r.key !== null) p = n === 1 ? 0 : partitionForKey(r.key, n);
      else {
        p = keyless;
        usedKeyless = true;
      }
      if (!Number.isInteger(p) || p < 0 || p >= n) await this.cluster.leader(topic, p);
      let g = groups.get(p);
      if (!g) groups.set(p, (g = { records: [], indexes: [] }));
      g.records.push(toEncodable(r, now, i));
      g.indexes.push(i);
    }
    if (usedKeyless) this.roundRobin.set(topic, (keyless + 1) % n);
    const out = new Array<RecordMetadata>(records.length);
    await Promise.all(
      [...groups].map(async ([p, g]) => {
        const { baseOffset } = await this.appender.appendBatch(topic, p, g.records);
        for (let j = 0; j < g.indexes.length; j++)
          out[g.indexes[j]] = { topic, partition: p, offset: baseOffset + j, timestamp: g.records[j].timestamp };
      }),
    );
    return out;
  }

  appendBatch(
    topic: string,
    partition: number,
    records: readonly EncodableRecord[],
    opts?: BatchOptions,
  ): Promise<AppendBatchResult> {
    this.writable(`append to topic "${topic}"`);
    return this.appender.appendBatch(topic, partition, records, opts);
  }

  appendEncoded(topic: string, partition: number, batchBytes: Buffer): Promise<AppendBatchResult> {
    this.writable(`append to topic "${topic}"`);
    return this.appender.appendEncoded(topic, partition, batchBytes);
  }

  read(topic: string, partition: number, from: number, opts: ReadOptions = {}): AsyncIterable<RecordBatch> {
    this.live();
    return this.reader.read(topic, partition, from, opts);
  }

  offsets(topic: string, partition: number): Promise<PartitionOffsets> {
    this.live();
    return this.reader.offsets(topic, partition);
  }

  waitForData(topic: string, partition: number, offset: number, signal?: AbortSignal): Promise<void> {
    this.live();
    return this.reader.waitForData(topic, partition, offset, signal);
  }

  /** ListOffsets by time; a cluster that finds no record at or after it (-1) gives the end offset. */
  async offsetForTime(topic: string, partition: number, timestampMs: number): Promise<number> {
    this.live();
    if (!Number.isFinite(timestampMs))
      throw new KappaError('KAPPA_INVALID_ARGUMENT', `${timestampMs} is not a valid timestamp.`);
    const offset = await this.reader.listOffset(topic, partition, Math.max(0, Math.floor(timestampMs)));
    return offset >= 0 ? offset : (await this.reader.offsets(topic, partition)).end;
  }

  /** Every topic but the cluster's internal ones (is_internal, or a name starting with "__"), by name. */
  async topics(): Promise<TopicInfo[]> {
    this.live();
    const names = [...(await this.cluster.refresh()).keys()].filter((n) => !n.startsWith('__')).sort();
    return Promise.all(names.map((n) => this.describe(n)));
  }

  async topic(name: string): Promise<TopicInfo> {
    this.live();
    checkTopicName(name);
    const t = (await this.cluster.refresh()).get(name);
    if (t === undefined) throw kafkaError(KAFKA.UNKNOWN_TOPIC_OR_PARTITION, { topic: name, action: 'looking up' });
    return this.describe(name);
  }

  /** Metadata's partition count, and DescribeConfigs' settings where the cluster offers it. */
  private async describe(name: string): Promise<TopicInfo> {
    const partitions = (await this.cluster.topic(name)).leaders.length;
    const info: TopicInfo = { name, partitions, ...UNSET, createdAtMs: 0 };
    if (!(await this.cluster.supports('DescribeConfigs'))) return info;
    const subject = { action: 'reading the settings of', topic: name };
    const res = await this.cluster.retrying(subject, async () => {
      const r = await wire.describeTopicConfigs(await this.cluster.anyConnection(), name);
      check(r.errorCode, subject, r.errorMessage ?? undefined);
      return r;
    });
    for (const [field, key] of Object.entries(CONFIG_KEYS)) {
      const v = Number(res.configs.get(key));
      if (Number.isSafeInteger(v)) info[field as keyof typeof CONFIG_KEYS] = v;
    }
    return info;
  }

  /**
   * DescribeLogDirs of the leader where the cluster offers it (the bytes of the partition's
   * segments); elsewhere an estimate: the records retained times the bytes per record of the last
   * batch (Kappa's listener and the librdkafka mock do not offer DescribeLogDirs).
   */
  async sizeBytes(topic: string, partition: number): Promise<number> {
    this.live();
    if (await this.cluster.supports('DescribeLogDirs')) {
      const subject = { action: 'reading the size of', topic, partition };
      return this.cluster.retrying(subject, async () => {
        const connection = await this.cluster.connection(await this.cluster.leader(topic, partition));
        const res = await wire.describeLogDirs(connection, topic, partition);
        check(res.errorCode, subject);
        return res.bytes;
      });
    }
    const [{ start, end }, last] = await Promise.all([
      this.reader.offsets(topic, partition),
      this.reader.lastBatch(topic, partition),
    ]);
    return last === null ? 0 : Math.round(((end - start) * last.sizeBytes) / last.count);
  }

  /**
   * Every partition healthy: a client cannot see a broker's local storage; the cluster repairs or
   * refuses what it finds damaged, and a read of it fails with the broker's error. Partitions from
   * the last metadata this handle read (KAPPA_UNKNOWN_TOPIC if it holds no such topic).
   */
  health(topic: string): PartitionHealth[] {
    const t = this.cluster.known(topic);
    if (t === undefined) throw kafkaError(KAFKA.UNKNOWN_TOPIC_OR_PARTITION, { topic, action: 'checking' });
    return t.leaders.map((_, partition) => ({ topic, partition, corruption: null }));
  }

  describePartition(topic: string, partition: number): string {
    const leader = this.cluster.known(topic)?.leaders[partition];
    return `${topic}/${partition} on the Kafka cluster at ${this.cluster.bootstrap}${leader === undefined ? '' : ` (leader: broker ${leader})`}`;
  }

  /** Nothing to reopen: every read asks the cluster afresh. */
  reopenPartition(): void {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.cluster.close();
  }
}

/** Opens a KafkaLog and checks that the cluster answers (KAPPA_IO_ERROR naming the brokers when it does not). */
export async function openKafkaLog(
  descriptor: KafkaLogDescriptor,
  opts: { readOnly?: boolean } = {},
): Promise<KafkaLog> {
  const log = new KafkaLog({ descriptor, readOnly: opts.readOnly });
  try {
    return await log.start();
  } catch (err) {
    await log.close();
    throw err;
  }
}
