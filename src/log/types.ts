/** The `Log` port: what the processing engine and the surfaces see of the streaming layer. */
import type { RecordBatch, RecordHeader } from './record-batch.ts';

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
  signal?: AbortSignal;
}

export interface PartitionHealth {
  topic: string;
  partition: number;
  /** Set when stored data failed a check below the durable point. Reads at or past it fail. */
  corruption: { file: string; position: number; detail: string } | null;
}

export interface Log {
  createTopic(name: string, config: TopicConfig): Promise<TopicInfo>;
  /** Appends the records; resolves, in input order, once they are durable (per the fsync mode). */
  append(topic: string, records: readonly ProducerRecord[]): Promise<RecordMetadata[]>;
  /**
   * Batches of `partition` starting with the one that holds offset `from`. The first batch may
   * begin before `from`: use `batch.records(from)` to skip the earlier records.
   */
  read(topic: string, partition: number, from: number, opts?: ReadOptions): AsyncIterable<RecordBatch>;
  offsets(topic: string, partition: number): Promise<PartitionOffsets>;
  /** The first offset whose record timestamp is at or after `timestampMs`, or the end offset if none. */
  offsetForTime(topic: string, partition: number, timestampMs: number): Promise<number>;
  topics(): Promise<TopicInfo[]>;
  topic(name: string): Promise<TopicInfo>;
  close(): Promise<void>;
}
