/**
 * The Kafka requests KafkaLog sends, each at one fixed, non-flexible version, written and read with
 * codec.ts and sent on a BrokerConnection (connection.ts). KafkaLog sends the RecordBatch bytes
 * src/log encoded. The versions are the highest each of the three targets (Apache Kafka 3.x/4.x,
 * Kappa's listener, the librdkafka mock) answers without flexible encoding:
 *
 *   API              key  version  wire grammar (request => response)
 *   ApiVersions       18   0        => error_code [api_key min_version max_version]
 *   Metadata           3   1        [topic]|null => [broker: node_id host port rack] controller_id
 *                                   [topic: error_code name is_internal [partition: error_code index leader
 *                                   [replica] [isr]]]
 *   Produce            0   7        transactional_id acks timeout_ms [name [index records]] =>
 *                                   [name [index error_code base_offset log_append_time_ms log_start_offset]]
 *                                   throttle_time_ms
 *   Fetch              1   11       replica_id max_wait_ms min_bytes max_bytes isolation_level session_id
 *                                   session_epoch [topic [partition current_leader_epoch fetch_offset
 *                                   log_start_offset partition_max_bytes]] [forgotten] rack_id =>
 *                                   throttle_time_ms error_code session_id [topic [partition error_code
 *                                   high_watermark last_stable_offset log_start_offset [aborted]
 *                                   preferred_read_replica records]]
 *   ListOffsets        2   5        replica_id isolation_level [name [index current_leader_epoch timestamp]] =>
 *                                   throttle_time_ms [name [index error_code timestamp offset leader_epoch]]
 *   InitProducerId    22   1        transactional_id transaction_timeout_ms =>
 *                                   throttle_time_ms error_code producer_id producer_epoch
 *   CreateTopics      19   4        [name num_partitions replication_factor [assignment] [config name value]]
 *                                   timeout_ms validate_only => throttle_time_ms [name error_code error_message]
 *   DeleteTopics      20   1        [name] timeout_ms => throttle_time_ms [name error_code]
 *   DescribeConfigs   32   1        [resource_type name [key]|null] include_synonyms => throttle_time_ms
 *                                   [error_code error_message type name [config name value read_only
 *                                   source is_sensitive [synonym]]]
 *   DescribeLogDirs   35   1        [topic [partition]]|null => throttle_time_ms [error_code log_dir
 *                                   [name [partition size offset_lag is_future]]]
 *
 * Strings are int16-length, arrays int32-count, `records` int32-length bytes (null = -1). Responses
 * are returned as decoded, error codes included: the caller maps them (errors.ts in this folder).
 */
import { type ByteReader as Reader, ByteWriter as Writer } from './codec.ts';
import type { BrokerConnection as Connection } from './connection.ts';

export const API = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
  DescribeLogDirs: 35,
} as const;

/** The version KafkaLog sends of each API (see the table above). */
export const VERSION: Record<keyof typeof API, number> = {
  Produce: 7,
  Fetch: 11,
  ListOffsets: 5,
  Metadata: 1,
  ApiVersions: 0,
  CreateTopics: 4,
  DeleteTopics: 1,
  InitProducerId: 1,
  DescribeConfigs: 1,
  DescribeLogDirs: 1,
};

const big = (n: number): bigint => BigInt(n);
const num = (n: bigint): number => Number(n);

function api<Args extends unknown[], R>(
  key: number,
  version: number,
  write: (w: Writer, ...args: Args) => void,
  read: (r: Reader) => R,
): (connection: Connection, ...args: Args) => Promise<R> {
  return (connection, ...args) => {
    const w = new Writer();
    write(w, ...args);
    return connection.send(key, version, w.chunks(), read);
  };
}

/** Reads a non-compact array of `entry`, or null for a null array. */
function array<T>(r: Reader, entry: (r: Reader) => T): T[] {
  return r.readNullableArray((rr) => entry(rr)) ?? [];
}

function stringArray(w: Writer, values: readonly string[] | null): void {
  if (values === null) w.appendInt32(-1);
  else w.appendArray(values, (ww, v) => ww.appendString(v));
}

export interface ApiRange {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

export const apiVersions = api(
  API.ApiVersions,
  0,
  () => {},
  (r) => ({
    errorCode: r.readInt16(),
    apis: array(r, (x): ApiRange => ({ apiKey: x.readInt16(), minVersion: x.readInt16(), maxVersion: x.readInt16() })),
  }),
);

export interface MetadataBroker {
  nodeId: number;
  host: string;
  port: number;
}

export interface MetadataPartition {
  errorCode: number;
  index: number;
  leader: number;
}

export interface MetadataTopic {
  errorCode: number;
  name: string;
  internal: boolean;
  partitions: MetadataPartition[];
}

export interface MetadataResponse {
  brokers: MetadataBroker[];
  controllerId: number;
  topics: MetadataTopic[];
}

/** Metadata v1 for every topic (null): asking for a topic by name makes some brokers (the mock) create it. */
export const metadata = api(
  API.Metadata,
  1,
  (w, topics: string[] | null) => stringArray(w, topics),
  (r): MetadataResponse => ({
    brokers: array(r, (x) => {
      const b = { nodeId: x.readInt32(), host: x.readString(), port: x.readInt32() };
      x.readNullableString();
      return b;
    }),
    controllerId: r.readInt32(),
    topics: array(r, (x) => ({
      errorCode: x.readInt16(),
      name: x.readString(),
      internal: x.readBoolean(),
      partitions: array(x, (y) => {
        const p = { errorCode: y.readInt16(), index: y.readInt32(), leader: y.readInt32() };
        array(y, (z) => z.readInt32());
        array(y, (z) => z.readInt32());
        return p;
      }),
    })),
  }),
);

export interface ProducePartition {
  index: number;
  errorCode: number;
  baseOffset: number;
  logStartOffset: number;
}

/** Produce v7 of one partition's bytes (one or more whole RecordBatch v2). acks -1: all in-sync replicas. */
export const produce = api(
  API.Produce,
  7,
  (w, topic: string, partition: number, records: Buffer, timeoutMs: number) => {
    w.appendString(null).appendInt16(-1).appendInt32(timeoutMs);
    w.appendInt32(1).appendString(topic);
    w.appendInt32(1).appendInt32(partition).appendInt32(records.length).append(records);
  },
  (r): ProducePartition => {
    const topics = array(r, (x) => {
      x.readString();
      return array(x, (y) => {
        const p = { index: y.readInt32(), errorCode: y.readInt16(), baseOffset: num(y.readInt64()) };
        y.readInt64();
        return { ...p, logStartOffset: num(y.readInt64()) };
      });
    });
    r.readInt32();
    return topics[0][0];
  },
);

export interface FetchPartition {
  errorCode: number;
  highWatermark: number;
  logStartOffset: number;
  records: Buffer | null;
}

export interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  maxWaitMs: number;
  maxBytes: number;
}

/** Fetch v11 of one partition, without a fetch session; read_uncommitted (Kappa writes no transactions). */
export const fetch = api(
  API.Fetch,
  11,
  (w, q: FetchRequest) => {
    w.appendInt32(-1).appendInt32(q.maxWaitMs).appendInt32(1).appendInt32(q.maxBytes).appendInt8(0);
    w.appendInt32(0).appendInt32(-1);
    w.appendInt32(1).appendString(q.topic);
    w.appendInt32(1).appendInt32(q.partition).appendInt32(-1).appendInt64(big(q.offset)).appendInt64(-1n);
    w.appendInt32(q.maxBytes);
    w.appendInt32(0).appendString('');
  },
  (r): FetchPartition => {
    r.readInt32();
    const errorCode = r.readInt16();
    r.readInt32();
    const topics = array(r, (x) => {
      x.readString();
      return array(x, (y): FetchPartition => {
        y.readInt32();
        const p = { errorCode: y.readInt16(), highWatermark: num(y.readInt64()) };
        y.readInt64();
        const logStartOffset = num(y.readInt64());
        array(y, (z) => [z.readInt64(), z.readInt64()]);
        y.readInt32();
        return { ...p, logStartOffset, records: y.readNullableBytes() };
      });
    });
    const p = topics[0]?.[0];
    if (p === undefined) return { errorCode, highWatermark: -1, logStartOffset: -1, records: null };
    return errorCode !== 0 && p.errorCode === 0 ? { ...p, errorCode } : p;
  },
);

/** ListOffsets v5 of one partition: -2 earliest, -1 latest, else the first offset at or after the time. */
export const listOffsets = api(
  API.ListOffsets,
  5,
  (w, topic: string, partition: number, timestamp: number) => {
    w.appendInt32(-1).appendInt8(0).appendInt32(1).appendString(topic);
    w.appendInt32(1).appendInt32(partition).appendInt32(-1).appendInt64(big(timestamp));
  },
  (r) => {
    r.readInt32();
    const topics = array(r, (x) => {
      x.readString();
      return array(x, (y) => {
        const p = { index: y.readInt32(), errorCode: y.readInt16(), timestamp: num(y.readInt64()) };
        const offset = num(y.readInt64());
        y.readInt32();
        return { ...p, offset };
      });
    });
    return topics[0][0];
  },
);

export const initProducerId = api(
  API.InitProducerId,
  1,
  (w) => {
    w.appendString(null).appendInt32(60_000);
  },
  (r) => {
    r.readInt32();
    return { errorCode: r.readInt16(), producerId: num(r.readInt64()), producerEpoch: r.readInt16() };
  },
);

export interface TopicError {
  name: string;
  errorCode: number;
  errorMessage: string | null;
}

/** CreateTopics v4 of one topic; replicationFactor -1 lets the cluster choose (its default.replication.factor). */
export const createTopics = api(
  API.CreateTopics,
  4,
  (
    w,
    t: { name: string; partitions: number; replicationFactor: number; configs: [string, string][] },
    timeoutMs: number,
  ) => {
    w.appendInt32(1).appendString(t.name).appendInt32(t.partitions).appendInt16(t.replicationFactor);
    w.appendInt32(0);
    w.appendArray(t.configs, (ww, [k, v]) => ww.appendString(k).appendString(v));
    w.appendInt32(timeoutMs).appendBoolean(false);
  },
  (r): TopicError => {
    r.readInt32();
    const topics = array(r, (x) => ({
      name: x.readString(),
      errorCode: x.readInt16(),
      errorMessage: x.readNullableString(),
    }));
    return topics[0];
  },
);

export const deleteTopics = api(
  API.DeleteTopics,
  1,
  (w, name: string, timeoutMs: number) => {
    stringArray(w, [name]);
    w.appendInt32(timeoutMs);
  },
  (r): TopicError => {
    r.readInt32();
    const topics = array(r, (x) => ({ name: x.readString(), errorCode: x.readInt16(), errorMessage: null }));
    return topics[0];
  },
);

const RESOURCE_TOPIC = 2;

/** DescribeConfigs v1 of one topic: its configs by name (null values dropped). */
export const describeTopicConfigs = api(
  API.DescribeConfigs,
  1,
  (w, topic: string) => {
    w.appendInt32(1).appendInt8(RESOURCE_TOPIC).appendString(topic).appendInt32(-1);
    w.appendBoolean(false);
  },
  (r) => {
    r.readInt32();
    const results = array(r, (x) => {
      const errorCode = x.readInt16();
      const errorMessage = x.readNullableString();
      x.readInt8();
      x.readString();
      const configs = new Map<string, string>();
      array(x, (y) => {
        const name = y.readString();
        const value = y.readNullableString();
        y.readBoolean();
        y.readInt8();
        y.readBoolean();
        array(y, (z) => [z.readString(), z.readNullableString(), z.readInt8()]);
        if (value !== null) configs.set(name, value);
      });
      return { errorCode, errorMessage, configs };
    });
    return results[0];
  },
);

/** DescribeLogDirs v1 of one partition: its size in each log dir of the broker asked (the leader). */
export const describeLogDirs = api(
  API.DescribeLogDirs,
  1,
  (w, topic: string, partition: number) => {
    w.appendInt32(1).appendString(topic).appendInt32(1).appendInt32(partition);
  },
  (r) => {
    r.readInt32();
    let bytes = 0;
    let errorCode = 0;
    array(r, (x) => {
      const code = x.readInt16();
      if (code !== 0) errorCode = code;
      x.readString();
      array(x, (y) => {
        y.readString();
        array(y, (z) => {
          z.readInt32();
          const size = num(z.readInt64());
          z.readInt64();
          if (!z.readBoolean()) bytes += size;
        });
      });
    });
    return { errorCode, bytes };
  },
);
