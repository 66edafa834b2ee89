/**
 * A topic's record format in the pipeline DSL (issue 17): `avro(…)`, `protobuf(…)` or
 * `jsonSchema(…)`, given as `topic(name, { format })`. Records of such a topic are framed in
 * Confluent's wire format (magic byte 0, the writer schema's registry id, then the payload), as
 * Confluent serializers in any language write them; without a format a topic holds plain JSON
 * checked by its `schema`, as before.
 *
 * The definitions are plain values: the schema text is parsed, and registered under the subject
 * `<topic>-value` of Kappa's registry, when the engine starts (topic-schemas.ts), where a schema that
 * does not parse or breaks the subject's compatibility level stops the start with the reason.
 *
 * Record types: `jsonSchema(TypeBoxSchema)` infers it; for Avro and Protobuf it is declared,
 * `avro<Sale>(text)`, since a schema given as text cannot be read by the type checker.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { SchemaType } from '../formats/index.ts';

/** A topic's format: its schema type, the schema's text and (Protobuf) the message records hold. */
export interface TopicFormat<T = unknown> {
  readonly kind: 'format';
  readonly type: SchemaType;
  /** The schema as text: Avro JSON, a .proto file, or a JSON Schema. */
  readonly schema: string;
  /** Protobuf: the full name of the message each record is (`shop.Sale`); null for the others. */
  readonly message: string | null;
  /**
   * Whether Kappa's Kafka listener refuses a produced record whose value is not Confluent-framed or
   * names a schema id its registry does not know (default true). False stores what producers send;
   * a record no task can read then goes to `<topic>.dlq` when it is processed.
   */
  readonly checkSchemaIds: boolean;
  /** Phantom field carrying the record type; never set at run time. */
  readonly __type?: T;
}

/** Options every format takes. */
export interface FormatOptions {
  /** See TopicFormat.checkSchemaIds (default true). */
  checkSchemaIds?: boolean;
}

function checkIdsOf(what: string, opts: FormatOptions | undefined): boolean {
  const v = opts?.checkSchemaIds;
  if (v === undefined) return true;
  if (typeof v !== 'boolean') throw new TypeError(`${what}: checkSchemaIds must be true or false`);
  return v;
}

/** What a format's schema is given as: its text, or (Avro, JSON Schema) the parsed JSON value. */
function schemaText(what: string, schema: unknown): string {
  if (typeof schema === 'string') {
    if (schema.trim() === '') throw new TypeError(`${what}: the schema is empty`);
    return schema;
  }
  if (typeof schema === 'object' && schema !== null) return JSON.stringify(schema);
  throw new TypeError(`${what}: the schema must be its text or a JSON object, not ${typeof schema}`);
}

/**
 * Avro records (Apache Avro binary, Confluent-framed). `schema`: the `.avsc` text or its parsed
 * JSON. Declare the record type it describes: `avro<Sale>(readFileSync('sale.avsc', 'utf8'))`.
 */
export function avro<T = Record<string, unknown>>(schema: string | object, opts?: FormatOptions): TopicFormat<T> {
  const text = schemaText('avro()', schema);
  return { kind: 'format', type: 'AVRO', schema: text, message: null, checkSchemaIds: checkIdsOf('avro()', opts) };
}

/**
 * Protobuf records (Confluent-framed, with the message-index array). `proto`: the `.proto` file's
 * text; `message`: the message each record is, by full name (`shop.Sale`). Declare the record type
 * as protobuf's JSON mapping gives it: `protobuf<Sale>(text, 'shop.Sale')`.
 */
export function protobuf<T = Record<string, unknown>>(
  proto: string,
  message: string,
  opts?: FormatOptions,
): TopicFormat<T> {
  if (typeof message !== 'string' || message.trim() === '')
    throw new TypeError('protobuf(): name the message each record is, e.g. protobuf(text, "shop.Sale")');
  const text = schemaText('protobuf()', proto);
  const checkSchemaIds = checkIdsOf('protobuf()', opts);
  return { kind: 'format', type: 'PROTOBUF', schema: text, message: message.trim(), checkSchemaIds };
}

/**
 * JSON records checked by a JSON Schema (Confluent-framed UTF-8 JSON). Given a TypeBox schema, the
 * record type is inferred from it.
 */
export function jsonSchema<S extends TSchema>(schema: S, opts?: FormatOptions): TopicFormat<Static<S>>;
export function jsonSchema<T = Record<string, unknown>>(schema: string | object, opts?: FormatOptions): TopicFormat<T>;
export function jsonSchema(schema: string | object, opts?: FormatOptions): TopicFormat<unknown> {
  const text = schemaText('jsonSchema()', schema);
  return {
    kind: 'format',
    type: 'JSON',
    schema: text,
    message: null,
    checkSchemaIds: checkIdsOf('jsonSchema()', opts),
  };
}

/** Checks a `format` option given to `topic()`. */
export function formatOf(topic: string, format: unknown, schema: unknown): TopicFormat | null {
  if (format === undefined || format === null) return null;
  if ((format as TopicFormat).kind !== 'format')
    throw new TypeError(
      `format of topic "${topic}" must be avro(…), protobuf(…) or jsonSchema(…) (import them from 'kappa')`,
    );
  if (schema !== undefined && schema !== null)
    throw new TypeError(
      `topic "${topic}" has both a format and a schema: the format's schema checks its records; remove \`schema\``,
    );
  return format as TopicFormat;
}
