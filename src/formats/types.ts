/**
 * Record formats (issue 17): how a topic's values are written — JSON (checked by a JSON Schema),
 * Avro or Protobuf — in the Confluent wire format, and the schema rules a registry checks when a
 * subject's schema evolves. One `FormatCodec` per format (src/formats/avro.ts, protobuf.ts,
 * json-schema.ts); the schema registry (src/registry/) and the record paths use only this port.
 *
 * Confluent wire format: byte 0 is the magic byte 0, bytes 1-4 the schema id (big-endian int32),
 * then, for Protobuf only, the message-index array (which message of the .proto file: a zigzag
 * varint count then zigzag varint indexes, with the common [0] written as the single byte 0),
 * then the payload (Avro binary, Protobuf binary, or UTF-8 JSON).
 */

/** The `schemaType` names of the Confluent Schema Registry API (AVRO is the default when absent). */
export type SchemaType = 'AVRO' | 'PROTOBUF' | 'JSON';

/** A reference from one schema to another registered one (Confluent's `references`). */
export interface SchemaReference {
  /** The name the referring schema uses for it (an Avro full name, a .proto import path, a JSON Schema $ref URL). */
  name: string;
  subject: string;
  version: number;
}

/** A schema parsed and checked; what a codec needs to encode, decode and compare. */
export interface ParsedSchema {
  readonly type: SchemaType;
  /**
   * The schema in a canonical text form: two submissions that differ only in whitespace, key order
   * or other things the format says do not matter give the same text (Avro: the Parsing Canonical
   * Form plus defaults and aliases kept; Protobuf: the normalised .proto; JSON: sorted keys). The
   * registry gives equal canonical texts the same id.
   */
  readonly canonical: string;
  /** The original text as submitted (what GET /schemas/ids/:id returns). */
  readonly text: string;
}

/**
 * A problem that makes data written with one schema unreadable with another. `path` names the
 * field (`order.lines[].qty`, `Sale.amount`), `rule` the rule broken, in words a user can act on
 * ("field qty changed type from string to int: an int reader cannot read a string").
 */
export interface CompatibilityProblem {
  path: string;
  rule: string;
}

export interface FormatCodec {
  readonly type: SchemaType;
  /**
   * Parses a schema's text. `resolve` gives the text of a referenced schema (already registered).
   * Throws KappaError('KAPPA_INVALID_SCHEMA', …) naming where the text is wrong.
   */
  parse(
    text: string,
    references?: readonly SchemaReference[],
    resolve?: (ref: SchemaReference) => string,
  ): ParsedSchema;
  /**
   * Can a reader with `reader` read every record written with `writer`? The problems, empty when
   * it can. (The registry's BACKWARD check is problems(new, old); FORWARD is problems(old, new).)
   */
  problems(reader: ParsedSchema, writer: ParsedSchema): CompatibilityProblem[];
}

/** The registry's compatibility levels (Confluent's names). */
export type CompatibilityLevel =
  'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

export const COMPATIBILITY_LEVELS: readonly CompatibilityLevel[] = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
];

/** Confluent's magic byte, the first byte of every framed value. */
export const MAGIC_BYTE = 0;
/** Magic byte + 4-byte schema id. */
export const FRAME_HEADER_BYTES = 5;
