/**
 * Kappa's errors (src/errors.ts) as Kafka error codes, for the answers of the data-path handlers.
 * Only the errors a handler expects are mapped; anything else stays an unexpected failure that the
 * dispatcher answers with UNKNOWN_SERVER_ERROR and logs.
 */
import { isKappaError } from '../../errors.ts';
import { ERRORS } from '../protocol/index.ts';

/** The Kafka code for an expected error of the log, or null for one a handler should not hide. */
export function kafkaCodeOf(err: unknown): number | null {
  if (!isKappaError(err)) return null;
  switch (err.code as string) {
    case 'KAPPA_UNKNOWN_TOPIC':
    case 'KAPPA_INVALID_PARTITION':
      return ERRORS.UNKNOWN_TOPIC_OR_PARTITION;
    case 'KAPPA_INVALID_TOPIC_NAME':
      return ERRORS.INVALID_TOPIC_EXCEPTION;
    case 'KAPPA_TOPIC_EXISTS':
      return ERRORS.TOPIC_ALREADY_EXISTS;
    case 'KAPPA_OFFSET_OUT_OF_RANGE':
      return ERRORS.OFFSET_OUT_OF_RANGE;
    case 'KAPPA_INVALID_RECORD':
      return ERRORS.INVALID_RECORD;
    case 'KAPPA_RECORD_TOO_LARGE':
      return ERRORS.MESSAGE_TOO_LARGE;
    case 'KAPPA_OUT_OF_ORDER_SEQUENCE':
      return ERRORS.OUT_OF_ORDER_SEQUENCE_NUMBER;
    case 'KAPPA_PRODUCER_FENCED':
      return ERRORS.INVALID_PRODUCER_EPOCH;
    case 'KAPPA_UNSUPPORTED_COMPRESSION':
      return ERRORS.UNSUPPORTED_COMPRESSION_TYPE;
    case 'KAPPA_INVALID_ARGUMENT':
      return ERRORS.INVALID_REQUEST;
    // Retriable on the client's side: it refreshes its metadata and tries again.
    case 'KAPPA_LOG_CLOSED':
    case 'KAPPA_DISK_FULL':
    case 'KAPPA_IO_ERROR':
    case 'KAPPA_CORRUPT_DATA':
    case 'KAPPA_READ_ONLY':
      return ERRORS.KAFKA_STORAGE_ERROR;
    default:
      return null;
  }
}

/** The message of an expected error, for the response fields that carry one. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
