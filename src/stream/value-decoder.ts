/**
 * How a task decodes a record's value: UTF-8, JSON, and the topic's schema, on the byte range the
 * batch holds it in (no copy). The common case, a compact object of declared scalar properties,
 * skips JSON.parse (src/schema/flat-decoder.ts). A value that fails any of it throws a TypeError
 * whose message is the record's dead-letter reason.
 */
import {
  CODECS,
  type ParsedSchema,
  type WriterSchemaLookup,
  avroDecoder,
  avroRangeDecoder,
  jsonDecoder,
  protobufDecoder,
} from '../formats/index.ts';
import { type RecordSchema, compileFlatDecoder, compileSchema, describeIssues } from '../schema/index.ts';
import type { TopicDef } from './dsl.ts';
import type { TopicFormat } from './dsl-formats.ts';
import { type SchemaCatalog, pauseIn } from './topic-schemas.ts';

/**
 * Buffer's own UTF-8 decode of a byte range, which Buffer#toString calls after normalising its
 * arguments; that wrapper cost a tenth of a record's decode + JSON.parse on the process bench.
 * It is not in Node's typings, so it is looked up once, with toString as the fallback.
 */
const utf8Slice =
  typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === 'function'
    ? (Buffer.prototype as unknown as { utf8Slice: (start: number, end: number) => string }).utf8Slice
    : null;

/**
 * The function a task decodes record values with: `buf[start, start + length)` (buf null for a
 * null value) → the value, UTF-8 and JSON decoded and checked against the topic's schema. Throws
 * a TypeError whose message is the dead-letter reason.
 */
export type ValueDecoder = (
  buf: Buffer | null,
  start: number,
  length: number,
  catalog: SchemaCatalog | null,
) => unknown;

/**
 * `read`: the only properties of the value the caller reads (src/stream/fields-read.ts), or null
 * for all. The fast path then makes just those; other paths still make every property.
 */
export function valueDecoder(source: TopicDef<unknown>, read: ReadonlySet<string> | null = null): ValueDecoder {
  if (source.format !== null) return formatDecoder(source.format, read);
  // The common case (a compact object of declared scalar properties) skips JSON.parse; anything
  // else falls back to it (src/schema/flat-decoder.ts). The schema check runs either way (the
  // decoder's shapes make it as they decode, `lastChecked`).
  const flat = source.schema ? compileFlatDecoder(source.schema as object, read) : null;
  // With a flat decoder most records never need the compiled schema, whose first compile in a
  // thread costs tens of ms of every worker's start: when compiling it cannot fail (coversSchema),
  // it is compiled when a record first needs it; otherwise now, so a schema ajv refuses stops the
  // task as it always did.
  let compiled: RecordSchema<unknown> | null = null;
  const schema = (): RecordSchema<unknown> =>
    (compiled ??= compileSchema(source.schema as object, { name: source.name }));
  if (source.schema && !flat?.coversSchema) schema();

  /** With a schema: the bytes as the schema's strict decode sees them (UTF-8 checked, a BOM skipped); throws the dead-letter reason. */
  function strictDecode(bytes: Uint8Array): unknown {
    const decoded = schema().decode(bytes);
    if (!decoded.ok) throw new TypeError(`schema: ${describeIssues(decoded.issues)}`);
    return decoded.value;
  }

  /** The value in `buf[start, start + length)`, decoded and checked; throws the dead-letter reason. */
  function decodeValue(buf: Buffer | null, start: number, length: number): unknown {
    if (buf === null) throw new TypeError('the record has no value');
    if (flat !== null) {
      const fast = flat(buf, start, start + length);
      if (fast !== undefined) {
        if (!flat.lastChecked && !schema().validate(fast))
          throw new TypeError(`schema: ${describeIssues(schema().lastIssues())}`);
        return fast;
      }
    }
    const text =
      utf8Slice === null ? buf.toString('utf8', start, start + length) : utf8Slice.call(buf, start, start + length);
    if (!source.schema) {
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new TypeError(`the value is not JSON (${(err as Error).message})`, { cause: err });
      }
    }
    // Buffer#toString is the fastest decode, but it replaces bytes that are not UTF-8 with U+FFFD
    // and keeps a BOM, where the schema's strict decode refuses the one and skips the other. Such a
    // value either contains U+FFFD or fails JSON.parse, so those two cases go the strict way and
    // get exactly its result.
    if (text.indexOf('\uFFFD') !== -1) return strictDecode(buf.subarray(start, start + length));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return strictDecode(buf.subarray(start, start + length));
    }
    if (!schema().validate(value)) throw new TypeError(`schema: ${describeIssues(schema().lastIssues())}`);
    return value;
  }

  return decodeValue;
}

/** A format's reader: its schema parsed once, and the decoder for its records (whatever writer schema they name). */
export function formatReader(
  format: TopicFormat,
  read: ReadonlySet<string> | null = null,
): {
  schema: ParsedSchema;
  decode: (bytes: Uint8Array, writerSchemaFor: WriterSchemaLookup) => unknown;
  /** `decode` of the value in `buf[start, end)`; Avro reads it in place (no view made per record). */
  decodeRange: (buf: Buffer, start: number, end: number, writerSchemaFor: WriterSchemaLookup) => unknown;
} {
  const schema = CODECS[format.type].parse(format.schema);
  if (format.type === 'AVRO')
    return { schema, decode: avroDecoder(schema), decodeRange: avroRangeDecoder(schema, read) };
  const decode = format.type === 'PROTOBUF' ? protobufDecoder(schema, format.message!) : jsonDecoder(schema);
  return { schema, decode, decodeRange: (buf, start, end, lookup) => decode(buf.subarray(start, end), lookup) };
}

/**
 * The decoder of a topic with a format: each record read with the writer schema its id names,
 * resolved to the format's (reader) schema. An id the task's catalog has not seen yet throws
 * SchemaRefreshNeeded (the task reads the registry and goes on); any other problem throws the
 * dead-letter reason.
 */
function formatDecoder(format: TopicFormat, read: ReadonlySet<string> | null): ValueDecoder {
  const { decodeRange } = formatReader(format, read);
  return (buf, start, length, catalog) => {
    if (buf === null) throw new TypeError('the record has no value');
    if (catalog === null) throw new TypeError('no schema registry is open for this task');
    try {
      return decodeRange(buf, start, start + length, catalog.lookup);
    } catch (err) {
      throw pauseIn(err) ?? err;
    }
  };
}
