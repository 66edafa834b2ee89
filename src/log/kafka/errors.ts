/**
 * Kafka error codes as Kappa's errors, so a caller of KafkaLog sees the codes FileLog gives for the
 * same mistake (an unknown topic is KAPPA_UNKNOWN_TOPIC whichever log answered). Codes that mean
 * "ask again, maybe elsewhere" (a leader moved, a broker is starting) are `RETRIABLE`: the cluster
 * client refreshes its metadata and retries them before giving up with LOG_UNAVAILABLE.
 */
import { type ErrorCode, KappaError } from '../../errors.ts';

/** The code of "the Kafka cluster cannot be reached or did not answer" (the message names the brokers tried). */
export const LOG_UNAVAILABLE: ErrorCode = 'KAPPA_LOG_UNAVAILABLE';

export const KAFKA = {
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  NETWORK_EXCEPTION: 13,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_CONFIG: 40,
  NOT_CONTROLLER: 41,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  SASL_AUTHENTICATION_FAILED: 58,
  UNKNOWN_PRODUCER_ID: 59,
  KAFKA_STORAGE_ERROR: 56,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  OFFSET_NOT_AVAILABLE: 78,
  INVALID_RECORD: 87,
  PRODUCER_FENCED: 90,
} as const;

/** Errors after which the same request may succeed once metadata is refreshed or a moment has passed. */
export const RETRIABLE: ReadonlySet<number> = new Set([
  KAFKA.LEADER_NOT_AVAILABLE,
  KAFKA.NOT_LEADER_OR_FOLLOWER,
  KAFKA.REQUEST_TIMED_OUT,
  KAFKA.NETWORK_EXCEPTION,
  KAFKA.COORDINATOR_LOAD_IN_PROGRESS,
  KAFKA.NOT_ENOUGH_REPLICAS,
  KAFKA.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  KAFKA.NOT_CONTROLLER,
  KAFKA.KAFKA_STORAGE_ERROR,
  KAFKA.OFFSET_NOT_AVAILABLE,
]);

/** What a failed request was about, for the message. */
export interface Subject {
  topic?: string;
  partition?: number;
  /** What was being done, as a phrase: "appending to", "reading". */
  action: string;
}

const MAPPED: Record<number, ErrorCode> = {
  [KAFKA.OFFSET_OUT_OF_RANGE]: 'KAPPA_OFFSET_OUT_OF_RANGE',
  [KAFKA.CORRUPT_MESSAGE]: 'KAPPA_INVALID_RECORD',
  [KAFKA.INVALID_RECORD]: 'KAPPA_INVALID_RECORD',
  [KAFKA.UNKNOWN_TOPIC_OR_PARTITION]: 'KAPPA_UNKNOWN_TOPIC',
  [KAFKA.MESSAGE_TOO_LARGE]: 'KAPPA_RECORD_TOO_LARGE',
  [KAFKA.RECORD_LIST_TOO_LARGE]: 'KAPPA_RECORD_TOO_LARGE',
  [KAFKA.INVALID_TOPIC_EXCEPTION]: 'KAPPA_INVALID_TOPIC_NAME',
  [KAFKA.TOPIC_AUTHORIZATION_FAILED]: 'KAPPA_FORBIDDEN',
  [KAFKA.CLUSTER_AUTHORIZATION_FAILED]: 'KAPPA_FORBIDDEN',
  [KAFKA.SASL_AUTHENTICATION_FAILED]: 'KAPPA_UNAUTHENTICATED',
  [KAFKA.TOPIC_ALREADY_EXISTS]: 'KAPPA_TOPIC_EXISTS',
  [KAFKA.INVALID_PARTITIONS]: 'KAPPA_INVALID_ARGUMENT',
  [KAFKA.INVALID_REPLICATION_FACTOR]: 'KAPPA_INVALID_ARGUMENT',
  [KAFKA.INVALID_CONFIG]: 'KAPPA_INVALID_ARGUMENT',
  [KAFKA.OUT_OF_ORDER_SEQUENCE_NUMBER]: 'KAPPA_OUT_OF_ORDER_SEQUENCE',
  [KAFKA.INVALID_PRODUCER_EPOCH]: 'KAPPA_PRODUCER_FENCED',
  [KAFKA.PRODUCER_FENCED]: 'KAPPA_PRODUCER_FENCED',
  [KAFKA.UNSUPPORTED_COMPRESSION_TYPE]: 'KAPPA_UNSUPPORTED_COMPRESSION',
};

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(KAFKA).map(([name, code]) => [code, name]));

function where(s: Subject): string {
  if (s.topic === undefined) return s.action;
  return s.partition === undefined ? `${s.action} topic "${s.topic}"` : `${s.action} ${s.topic}/${s.partition}`;
}

/** A Kafka error code from a response as a KappaError whose message says what failed and what it means. */
export function kafkaError(code: number, s: Subject, brokerMessage: string | null = null): KappaError {
  const name = NAMES[code] ?? `error ${code}`;
  const detail = brokerMessage ? ` (${brokerMessage})` : '';
  const details = { kafkaError: name, topic: s.topic, partition: s.partition };
  if (code === KAFKA.UNKNOWN_TOPIC_OR_PARTITION && s.topic !== undefined)
    return new KappaError(
      'KAPPA_UNKNOWN_TOPIC',
      `Topic "${s.topic}"${s.partition === undefined ? '' : ` (partition ${s.partition})`} does not exist on the Kafka cluster. Create it with \`kappa topics create ${s.topic}\`.`,
      details,
    );
  if (code === KAFKA.TOPIC_ALREADY_EXISTS)
    return new KappaError('KAPPA_TOPIC_EXISTS', `Topic "${s.topic}" already exists.`, details);
  if (code === KAFKA.OUT_OF_ORDER_SEQUENCE_NUMBER)
    return new KappaError(
      'KAPPA_OUT_OF_ORDER_SEQUENCE',
      `The Kafka cluster refused a batch while ${where(s)}: its sequence does not follow the producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER). Nothing of it was appended.`,
      details,
    );
  const mapped = MAPPED[code];
  if (mapped !== undefined)
    return new KappaError(mapped, `The Kafka cluster answered ${name} while ${where(s)}${detail}.`, details);
  return new KappaError(
    LOG_UNAVAILABLE,
    `The Kafka cluster answered ${name} while ${where(s)}${detail}; nothing is known to have been done.`,
    details,
  );
}

/** The API a cluster does not offer (at the version KafkaLog needs), in words. */
export function unsupported(apiName: string, brokers: string, what: string): KappaError {
  return new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `The Kafka cluster at ${brokers} does not offer ${apiName}, which KafkaLog needs to ${what}. Do it with the cluster's own tools, or use a cluster (Apache Kafka 2.4 or later, or Kappa's listener) that offers it.`,
    { api: apiName },
  );
}
