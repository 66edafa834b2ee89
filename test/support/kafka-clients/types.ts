/**
 * The words the Kafka compatibility suites share: a record as every client driver produces and
 * reports it, a producer's acknowledgement, and what a client driver (kcat, confluent-kafka,
 * kafka-python, kafkajs, @platformatic/kafka) must offer the scenarios (scenario.ts).
 *
 * Keys, values and header values are UTF-8 text here (the scenarios write only text), so one JSON
 * shape carries them through the Python scripts, kcat's -J output and the Node clients alike.
 */
import type { Owner } from '../cleanup.ts';

/** A record as produced: `timestamp` null lets the client stamp it (kcat cannot set one). */
export interface KafkaRecord {
  key: string | null;
  value: string;
  /** In order; a key may repeat, as Kafka allows. */
  headers: [string, string][];
  timestamp: number | null;
}

/** A record as a consumer reports it. */
export interface ConsumedRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
  timestamp: number;
}

/** One produced record's acknowledgement (same index as the record); `error` null when stored. */
export interface Ack {
  partition?: number;
  offset?: number;
  error: string | null;
}

export type Codec = 'gzip' | 'snappy' | 'lz4' | 'zstd';

export interface ProduceOptions {
  /** Compress every batch with this codec. */
  compression?: Codec;
  /** The idempotent producer with acks=all (clients that have one). */
  idempotent?: boolean;
  timeoutMs?: number;
}

export interface ConsumeOptions {
  /** Partitions to read, each from its beginning, without a consumer group. */
  partitions: number[];
  /** Stop once this many records came. */
  count: number;
  timeoutMs: number;
}

/**
 * A consumer-group member running in its own process (so that its death is a real one). It reports
 * each record only after its offset was committed, so the records of all members of a group are the
 * group's committed progress.
 */
export interface GroupMember {
  readonly name: string;
  /** The partitions of its latest assignment; empty after a revocation, null before the first. */
  readonly assignment: number[] | null;
  /** Every record it consumed and committed, in the order it got them. */
  readonly records: ConsumedRecord[];
  /** Errors it reported (commit failures, consumer errors), for the failure messages. */
  readonly errors: string[];
  /** It ended (or could not start) before the test closed or killed it. */
  readonly failed: boolean;
  /** Its output so far, quoted when a wait fails. */
  describe(): string;
  /** Leaves the group cleanly (commits what it reported, sends LeaveGroup) and exits. */
  close(): Promise<void>;
  /** Dies without leaving the group (SIGKILL): the coordinator notices only by its session timeout. */
  kill(): Promise<void>;
}

/** What a client offers the scenarios; each suite has one. */
export interface KafkaClient {
  /** As the test names say it: 'kcat', 'confluent-kafka', ... */
  readonly name: string;
  /** The codecs its producer can compress with here. */
  readonly codecs: readonly Codec[];
  /** Whether its producer can set each record's timestamp and headers (kcat: one header set for all, no timestamps). */
  readonly setsTimestamps: boolean;
  readonly perRecordHeaders: boolean;
  /**
   * How long after a group member reported a record its offset may still be uncommitted: 0 for the
   * members that commit each record before reporting it; kcat's auto-commit timer (5 s, which its -X
   * auto.commit.interval.ms does not shorten) for kcat.
   */
  readonly commitDelayMs: number;
  /**
   * How long after a rebalance a member may still deliver records of a partition it no longer owns:
   * 0 for clients that drop what a fetch issued before the rebalance brings back; for those that do
   * not (@platformatic/kafka), longer than their fetch long-poll, so the scenarios let it pass before
   * they produce again.
   */
  readonly rebalanceSettleMs: number;
  produce(t: Owner, bootstrap: string, topic: string, records: KafkaRecord[], opts?: ProduceOptions): Promise<Ack[]>;
  consume(t: Owner, bootstrap: string, topic: string, opts: ConsumeOptions): Promise<ConsumedRecord[]>;
  /** `settings`: client-specific consumer settings (librdkafka's partition.assignment.strategy, ...), where the client takes them. */
  startMember(
    t: Owner,
    bootstrap: string,
    topic: string,
    group: string,
    name: string,
    settings?: Record<string, string | number | boolean>,
  ): GroupMember;
  /** The group's committed offsets of these partitions (-1 or below: none). */
  committed(
    t: Owner,
    bootstrap: string,
    topic: string,
    group: string,
    partitions: number[],
  ): Promise<Map<number, number>>;
}
