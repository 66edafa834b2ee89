/**
 * The `Log` port: everything above `src/log/` (engine, workers, server, CLI) sees the streaming
 * layer only through this interface. Adapters: `FileLog` (embedded, `file-log.ts`) now; a Kafka
 * client adapter later. Only the composition roots (`kappa start`, `kappa replay`, `kappa demo`,
 * the CLI's log commands) open a concrete log; everything else is handed a `Log`.
 *
 * Promises every adapter keeps (checked by `test/contract/log.contract.ts`):
 * - per partition, records keep the order they were appended in; offsets are dense from 0;
 * - an append resolves only once its records are durable (per the fsync mode), and a reader never
 *   sees a record past the high watermark (`offsets().end`);
 * - an idempotent producer's retried batch is not appended twice, a sequence gap is refused, and
 *   an older epoch is fenced;
 * - `offsetForTime` finds the first record at or after a time; retention only removes whole old
 *   segments, moving `offsets().start` forward;
 * - `deleteTopic` removes a topic whole: it is no longer listed, reopening does not bring it back,
 *   and a new topic of that name starts empty at offset 0.
 */
import type { EncodableRecord, RecordBatch, RecordHeader } from './record-batch.ts';

export type FsyncMode = 'always' | 'interval' | 'never';

export interface TopicConfig {
  partitions: number;
  /** Delete closed segments whose newest record is older than this. -1 keeps forever (the default). */
  retentionMs?: number;
  /** Delete the oldest closed segments while a partition is larger than this. -1 (default) = no limit. */
  retentionBytes?: number;
  /** Roll to a new segment once the active one would exceed this size. Default 1 GiB. */
  segmentBytes?: number;
  /** Roll once the active segment spans more than this much record time. Default 7 days. */
  segmentMs?: number;
}

export interface TopicInfo extends Required<TopicConfig> {
  name: string;
  createdAtMs: number;
}

export interface ProducerRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string | null> | RecordHeader[];
  /** Event or create time in ms since the epoch; defaults to the log's clock. */
  timestamp?: number;
  /** Explicit partition; otherwise murmur2(key), or round-robin by batch for keyless records. */
  partition?: number;
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
}

export interface PartitionOffsets {
  /** The first offset still retained. */
  start: number;
  /** One past the last readable (durable) offset: the next offset a reader will wait for. */
  end: number;
}

export interface ReadOptions {
  /** Upper bound on the bytes fetched from disk per step (at least one whole batch is always returned). */
  maxBytes?: number;
  /** Keep waiting for new batches at the end of the partition instead of finishing. */
  follow?: boolean;
  /**
   * Stop after one step: only the batches one read of about `maxBytes` brings (at least one). For a
   * caller that answers with what fits, as a Kafka Fetch does, so no second read is made and thrown away.
   */
  once?: boolean;
  signal?: AbortSignal;
}

export interface PartitionHealth {
  topic: string;
  partition: number;
  /** Set when stored data failed a check below the durable point. Reads at or past it fail. */
  corruption: { file: string; position: number; detail: string } | null;
}

export interface Clock {
  now(): number;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** How `appendEncoded` takes a batch. */
export interface EncodedAppendOptions {
  /** Made in this process by BatchBuilder and sealBatch: not checked again (a Kafka log ignores it). */
  built?: boolean;
}

/**
 * Idempotent-producer fields of an append (see producer-state.ts). Leave them out (or -1) for a
 * plain append; with a producerId (0 <= id < 2^53), producerEpoch (0..32767) and baseSequence
 * (0..2^31-1, the sequence of the batch's first record) are required.
 */
export interface BatchOptions {
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  /** 'allow': a sequence may skip ahead (see ProducerIdentity.allowGaps); default 'refuse', as Kafka. */
  sequenceGaps?: 'refuse' | 'allow';
}

/**
 * What an append of one batch did. Records that were duplicates of records already in the log are
 * always the batch's first `duplicates` records; the rest were appended, at consecutive offsets
 * ending at `lastOffset`. So the offset of record i is `duplicateOffsets[i]` for i < duplicates and
 * `lastOffset - (count - 1 - i)` otherwise.
 */
export interface AppendBatchResult {
  /** Offset of the batch's first record (its original offset if a duplicate; -1 if that is no longer known). */
  baseOffset: number;
  /** Offset of the batch's last record (likewise). */
  lastOffset: number;
  /** How many of the batch's first records were already in the log and were not appended again. */
  duplicates: number;
  /** Original offsets of the duplicates, in order; -1 for one older than the remembered batches. */
  duplicateOffsets: readonly number[];
}

/**
 * A serialisable description of a log, so another thread or process can open "the same log"
 * with `openLog` (see `open.ts`) whatever the adapter. Plain JSON: it crosses `postMessage`.
 */
export type LogDescriptor = { kind: 'file'; dir: string } | KafkaLogDescriptor;

/**
 * A log on a Kafka cluster (KafkaLog, `kafka/`). Plain JSON like every descriptor, so it carries the
 * SASL password to the worker threads it is handed to: keep descriptors out of logs and messages.
 */
export interface KafkaLogDescriptor {
  kind: 'kafka';
  /** Bootstrap brokers, `host:port` each; the others are found through Metadata. */
  brokers: string[];
  /** The client.id the brokers see (their logs and quotas name it). */
  clientId: string;
  /** TLS to the brokers: true for the system's CAs, or PEM strings and options. */
  tls?: boolean | { ca?: string; cert?: string; key?: string; servername?: string; rejectUnauthorized?: boolean };
  /** SASL authentication (PLAIN, or SCRAM over TLS). */
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string };
  /** Replication factor of the topics createTopic makes; default -1, the cluster's default.replication.factor. */
  replicationFactor?: number;
  /** Time to connect to a broker, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Time a broker may take to answer a request, ms (default 30000); long polls wait far less. */
  requestTimeoutMs?: number;
}

export interface Log {
  /** How to open this same log elsewhere (a worker thread, a child process). */
  readonly descriptor: LogDescriptor;
  /** True when this handle cannot append (another process owns the log). */
  readonly readOnly: boolean;
  /** Told how long each durable write (fsync) took, in seconds; the server's metrics set it. */
  fsyncObserver: ((seconds: number) => void) | null;

  createTopic(name: string, config: TopicConfig): Promise<TopicInfo>;
  /**
   * Deletes a topic and its records (KAPPA_UNKNOWN_TOPIC if there is none; KAPPA_READ_ONLY on a
   * read-only handle). A crash part way leaves the whole topic or nothing of it; a topic of the
   * same name can be created again afterwards, with offsets from 0.
   */
  deleteTopic(name: string): Promise<void>;
  /** Appends the records; resolves, in input order, once they are durable (per the fsync mode). */
  append(topic: string, records: readonly ProducerRecord[]): Promise<RecordMetadata[]>;
  /**
   * Appends records as one batch to one partition, with no per-record result objects (the hot path
   * of the engine and of HTTP ingest). With `opts.producerId` the append is idempotent: records the
   * producer already appended are reported in `duplicates` and not appended again; a sequence gap
   * (KAPPA_OUT_OF_ORDER_SEQUENCE) or an older epoch (KAPPA_PRODUCER_FENCED) refuses the batch.
   */
  appendBatch(
    topic: string,
    partition: number,
    records: readonly EncodableRecord[],
    opts?: BatchOptions,
  ): Promise<AppendBatchResult>;
  /**
   * Appends one already-encoded Kafka RecordBatch v2 without re-encoding it (from a worker thread
   * or a Kafka client); a damaged batch is refused with KAPPA_INVALID_RECORD. Compressed batches
   * (gzip, snappy, lz4, zstd) are checked in their decoded form and stored as sent; a codec the
   * log cannot decode (or 5-7) is refused with KAPPA_UNSUPPORTED_COMPRESSION, one that inflates
   * past the topic's batch limit with KAPPA_RECORD_TOO_LARGE. The log owns `batchBytes` until the
   * call settles. `opts.built`: the batch was made in this process by BatchBuilder and sealBatch
   * (an output pipeline's records), so its CRC and records are not checked again.
   */
  appendEncoded(
    topic: string,
    partition: number,
    batchBytes: Buffer,
    opts?: EncodedAppendOptions,
  ): Promise<AppendBatchResult>;
  /**
   * Batches of `partition` starting with the one that holds offset `from`. The first batch may
   * begin before `from`: use `batch.records(from)` to skip the earlier records.
   */
  read(topic: string, partition: number, from: number, opts?: ReadOptions): AsyncIterable<RecordBatch>;
  offsets(topic: string, partition: number): Promise<PartitionOffsets>;
  /**
   * Resolves once the partition's high watermark is past `offset`, the log closes, or `signal`
   * aborts. For a process that hands reading to other threads and only tells them how far to read.
   */
  waitForData(topic: string, partition: number, offset: number, signal?: AbortSignal): Promise<void>;
  /** The first offset whose record timestamp is at or after `timestampMs`, or the end offset if none. */
  offsetForTime(topic: string, partition: number, timestampMs: number): Promise<number>;
  topics(): Promise<TopicInfo[]>;
  topic(name: string): Promise<TopicInfo>;
  /** Bytes the partition's records take in storage (for dashboards and metrics). */
  sizeBytes(topic: string, partition: number): Promise<number>;
  /** Per partition of `topic`: whether stored data failed a check (see PartitionHealth). */
  health(topic: string): PartitionHealth[];
  /** What this handle knows of a partition's storage, in words (for error messages). */
  describePartition(topic: string, partition: number): string;
  /**
   * Read-only handles: forget what is known of the partition's storage and look again, as a new
   * reader would (a follower that stopped seeing progress). Reads under way finish first.
   */
  reopenPartition(topic: string, partition: number): void;
  close(): Promise<void>;
}
