/**
 * The one error the codec throws for bad input. The listener maps the kinds onto Kafka's answers:
 * 'unknown-api' and 'unsupported-version' get an error response (UNSUPPORTED_VERSION) when the header
 * was readable; 'malformed' closes the connection, as Kafka's broker does.
 */
import type { RequestHeader } from './header.ts';

export type KafkaProtocolErrorKind = 'unknown-api' | 'unsupported-version' | 'malformed';

export class KafkaProtocolError extends Error {
  readonly kind: KafkaProtocolErrorKind;
  /** The request header, when it was readable (always for 'unknown-api' and 'unsupported-version'). */
  header?: RequestHeader;

  constructor(kind: KafkaProtocolErrorKind, message: string, header?: RequestHeader) {
    super(message);
    this.name = 'KafkaProtocolError';
    this.kind = kind;
    if (header) this.header = header;
  }
}

/** A 'malformed' error; the reader fills in the header afterwards when it knows it. */
export function malformed(message: string): KafkaProtocolError {
  return new KafkaProtocolError('malformed', message);
}
