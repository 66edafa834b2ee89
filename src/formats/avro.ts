/**
 * The Avro format (issue 17): schemas checked and compared, records encoded and decoded in the
 * Confluent wire format, on avsc.
 *
 * Wire format of one record value (see types.ts): byte 0 is the magic byte 0, bytes 1-4 the writer
 * schema's registry id (big-endian int32), then the value in Avro binary encoding with that schema.
 * A decoder reads each value with the writer schema its id names, resolved to the reader schema
 * (the specification's "Schema Resolution"), so records written under every version of a subject
 * read as one type.
 *
 * What decoded values look like (plain objects that JSON.stringify as they are, so a pipeline, an
 * HTTP read and `kappa consume` see the same thing, and encodeAvro accepts it back):
 * - record → a plain object, fields in schema order; a field the writer lacked has the reader's default.
 * - int, float, double → number. long → number: a long beyond ±(2^53 − 2) (avsc's exact range) is refused with
 *   KAPPA_SCHEMA_VIOLATION (decoding and encoding) rather than silently rounded; bigint would not
 *   JSON.stringify, and longs that large are rare outside ids, which belong in strings.
 * - bytes, fixed → base64 string (as Protobuf's JSON mapping does); a Buffer is accepted when encoding.
 * - enum → its symbol, a string. array → array. map → plain object.
 * - union → the value itself when no two branches look alike in JavaScript (the usual
 *   ["null", T]: `null` or the T value); otherwise Avro's JSON encoding, `{"branch": value}`, with
 *   the branch's type name or a named type's full name ("com.acme.Sale").
 * - logical types: decimal → a string with exactly `scale` fraction digits ("-12.50"; a number or
 *   string with no more fraction digits than the scale is accepted when encoding);
 *   timestamp-millis/-micros, time-*, date → their base number (ms, µs since the epoch; days);
 *   uuid → string; others → their base type, as the specification says.
 *
 * Canonical text (ParsedSchema.canonical): see avro-schema.ts — Parsing Canonical Form with
 * defaults, aliases and logical-type attributes kept.
 *
 * References (Confluent `references`): each referenced schema's text is parsed first, in the order
 * given (one that uses another comes after it), and its named types are usable by full name.
 */
import type avsc from 'avsc';
import { avscjs } from './libs.ts';
import { KappaError } from '../errors.ts';
import type { CompatibilityProblem, FormatCodec, ParsedSchema, SchemaReference } from './types.ts';
import { FRAME_HEADER_BYTES, MAGIC_BYTE } from './types.ts';
import { canonicalText, readSchema, shortName, type AvroNode, type NameTable } from './avro-schema.ts';
import { avscOptions } from './avro-types.ts';
import { resolutionProblems } from './avro-resolution.ts';
import { compileAvroFlat } from './avro-flat.ts';
import { diagnosePayload } from './avro-diagnose.ts';

/** A parsed Avro schema: the port's fields plus what encoding, decoding and comparing need. */
export class AvroSchema implements ParsedSchema {
  readonly type = 'AVRO' as const;
  constructor(
    readonly text: string,
    readonly canonical: string,
    /** The specification's Parsing Canonical Form (defaults, aliases, logical types stripped). */
    readonly parsingCanonicalForm: string,
    /** The checked schema tree (a graph when recursive). */
    readonly node: AvroNode,
    /** The avsc type values are encoded and decoded with. */
    readonly avscType: avsc.Type,
  ) {}

  /** The name paths start from: the record's short name (`Sale`), or "(root)". */
  get rootName(): string {
    return 'name' in this.node ? shortName(this.node.name) : '(root)';
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_SCHEMA',
      `${what} is not JSON: ${(err as Error).message}`,
      { path: '(root)' },
      err,
    );
  }
}

/** Parses an Avro schema text; throws KAPPA_INVALID_SCHEMA naming where it is wrong. */
export function parseAvroSchema(
  text: string,
  references: readonly SchemaReference[] = [],
  resolve?: (ref: SchemaReference) => string,
): AvroSchema {
  const names: NameTable = new Map();
  const registry: Record<string, avsc.Type> = {};
  for (const ref of references) {
    if (resolve === undefined) {
      throw new KappaError(
        'KAPPA_INVALID_SCHEMA',
        `The schema refers to ${ref.name} (subject ${ref.subject} version ${ref.version}), but no referenced schemas were supplied.`,
        { reference: ref.name },
      );
    }
    const refJson = parseJson(
      resolve(ref),
      `The referenced schema ${ref.name} (subject ${ref.subject} version ${ref.version})`,
    );
    readSchema(refJson, names, true);
    buildAvsc(refJson, registry, `the referenced schema ${ref.name}`);
  }
  const json = parseJson(text, 'The Avro schema');
  const node = readSchema(json, names, false);
  const avscType = buildAvsc(json, registry, 'the schema');
  return new AvroSchema(text, canonicalText(node, true), canonicalText(node, false), node, avscType);
}

/** avsc's own check, after Kappa's: catches anything Kappa's reader let through. */
function buildAvsc(json: unknown, registry: Record<string, avsc.Type>, what: string): avsc.Type {
  try {
    return avscjs().Type.forSchema(json as avsc.Schema, avscOptions(registry));
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_SCHEMA',
      `Avro schema is invalid in ${what}: ${(err as Error).message}`,
      { path: '(root)' },
      err,
    );
  }
}

function asAvro(schema: ParsedSchema): AvroSchema {
  if (schema instanceof AvroSchema) return schema;
  if (schema.type !== 'AVRO') {
    throw new KappaError('KAPPA_INVALID_SCHEMA', `Expected an Avro schema, got a ${schema.type} one.`, {
      schemaType: schema.type,
    });
  }
  return parseAvroSchema(schema.text);
}

export const avroCodec: FormatCodec = {
  type: 'AVRO',
  parse: parseAvroSchema,
  problems(reader: ParsedSchema, writer: ParsedSchema): CompatibilityProblem[] {
    if (reader.type !== 'AVRO' || writer.type !== 'AVRO') {
      return [
        {
          path: '(root)',
          rule: `the schema type changed from ${writer.type} to ${reader.type}: an Avro reader reads only Avro`,
        },
      ];
    }
    return resolutionProblems(asAvro(reader).node, asAvro(writer).node);
  },
};

function violation(message: string, details: Record<string, unknown>, cause?: unknown): KappaError {
  return new KappaError('KAPPA_SCHEMA_VIOLATION', message, details, cause);
}

/** Encodes `value` with `schema` in the Confluent wire format; KAPPA_SCHEMA_VIOLATION names the field that does not fit. */
export function encodeAvro(schemaId: number, schema: ParsedSchema, value: unknown): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0x7fffffff) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `A schema id is a whole number from 0 to 2147483647, not ${schemaId}.`,
    );
  }
  const avro = asAvro(schema);
  let body: Buffer;
  try {
    body = avro.avscType.toBuffer(value);
  } catch (err) {
    throw encodeViolation(avro, value, err);
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  body.copy(out, FRAME_HEADER_BYTES);
  return out;
}

function encodeViolation(avro: AvroSchema, value: unknown, err: unknown): KappaError {
  let where: { path: string; got: unknown; expected: string } | null = null;
  avro.avscType.isValid(value, {
    errorHook: (path: string[], got: unknown, type: avsc.Type) => {
      where ??= { path: [avro.rootName, ...path].join('.'), got, expected: describeAvsc(type) };
    },
  });
  if (where === null) {
    return violation(
      `The value cannot be written as Avro ${avro.rootName}: ${(err as Error).message}`,
      { path: avro.rootName },
      err,
    );
  }
  const { path, got, expected } = where;
  const shown = got === undefined ? 'nothing (the field is missing and has no default)' : shownValue(got);
  return violation(
    `The value does not match Avro schema ${avro.rootName} at ${path}: expected ${expected}, got ${shown}.`,
    { path },
    err,
  );
}

/** A short rendering of a value that did not fit (a bigint or a cycle must not make the error itself fail). */
function shownValue(got: unknown): string {
  if (typeof got === 'bigint') return `${got}n (a BigInt: send a number or, beyond 2^53, a string field)`;
  try {
    return JSON.stringify(got)?.slice(0, 80) ?? String(got);
  } catch {
    return String(got).slice(0, 80);
  }
}

function describeAvsc(type: avsc.Type): string {
  const t = type as unknown as {
    typeName: string;
    name?: string;
    underlyingType?: avsc.Type;
    _logicalTypeName?: string;
  };
  if (t.typeName === 'long') return 'a long (an integer within ±(2^53 − 2), which JavaScript numbers hold exactly)';
  if (t.typeName === 'int') return 'an int (a 32-bit integer)';
  if (t._logicalTypeName === 'decimal') return 'a decimal (a string such as "12.50", within the precision and scale)';
  if (t.underlyingType) return `${describeAvsc(t.underlyingType)} as a base64 string`;
  return t.name ? `${t.typeName} ${t.name}` : t.typeName;
}

/** Gives the writer schema registered under an id (throws or returns undefined when there is none). */
export type WriterSchemaLookup = (schemaId: number) => ParsedSchema | undefined;

interface WriterEntry {
  writer: AvroSchema;
  resolver: avsc.Resolver | undefined;
}

/**
 * A decoder that reads Confluent-framed Avro values into values of `readerSchema`. Resolvers are
 * built once per writer id and kept. Any bad value throws KAPPA_SCHEMA_VIOLATION: a wrong magic
 * byte, an id the lookup does not know, a writer schema the reader cannot read, or a payload that
 * is truncated, has bytes left over or is not Avro — never a partial value.
 */
export function avroDecoder(
  readerSchema: ParsedSchema,
): (bytes: Uint8Array, writerSchemaFor: WriterSchemaLookup) => unknown {
  const decode = avroRangeDecoder(readerSchema);
  return (bytes, writerSchemaFor) => {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return decode(buf, 0, buf.length, writerSchemaFor);
  };
}

/**
 * avroDecoder reading the value in `buf[start, end)` where it is (a record inside a log batch), with
 * no copy or view made per record; the same errors. `read`: see compileAvroFlat.
 */
export function avroRangeDecoder(
  readerSchema: ParsedSchema,
  read: ReadonlySet<string> | null = null,
): (buf: Buffer, start: number, end: number, writerSchemaFor: WriterSchemaLookup) => unknown {
  const reader = asAvro(readerSchema);
  const readerType = reader.avscType;
  const writers = new Map<number, WriterEntry>();
  // Values written with the reader's own schema, of a flat record, go the generated way first;
  // with `read`, that way makes only the fields the caller reads (avsc's makes every field).
  const flat = compileAvroFlat(readerType, read);
  return (buf, start, end, writerSchemaFor) => {
    if (end - start < FRAME_HEADER_BYTES || buf[start] !== MAGIC_BYTE) throw frameViolation(buf.subarray(start, end));
    const id = buf.readInt32BE(start + 1);
    const entry = writers.get(id) ?? learnWriter(reader, id, writerSchemaFor, writers);
    if (flat !== null && entry.resolver === undefined) {
      const value = flat(buf, start + FRAME_HEADER_BYTES, end);
      if (value !== undefined) return value;
    }
    let result: { value: unknown; offset: number } | undefined;
    try {
      result = readerType.decode(buf, start + FRAME_HEADER_BYTES, entry.resolver);
    } catch (err) {
      throw payloadViolation(entry.writer, id, buf.subarray(start, end), err);
    }
    // avsc reads past `end` when the value is truncated (into the next record, or to the buffer's
    // end, where it reports offset -1): both are a payload that does not fit.
    if (result.offset !== end) throw payloadViolation(entry.writer, id, buf.subarray(start, end), undefined);
    return result.value;
  };
}

function frameViolation(buf: Buffer): KappaError {
  if (buf.length < FRAME_HEADER_BYTES) {
    return violation(
      `The value is ${buf.length} byte(s) long; a Confluent-framed Avro value has at least ${FRAME_HEADER_BYTES} (the magic byte 0 and a 4-byte schema id).`,
      { bytes: buf.length },
    );
  }
  return violation(
    `The value starts with byte 0x${buf[0].toString(16).padStart(2, '0')}, not the magic byte 0 of the Confluent wire format: it was not written by a schema-registry serializer (plain JSON starts with '{', 0x7b).`,
    { firstByte: buf[0] },
  );
}

function learnWriter(
  reader: AvroSchema,
  id: number,
  lookup: WriterSchemaLookup,
  cache: Map<number, WriterEntry>,
): WriterEntry {
  let found: ParsedSchema | undefined;
  try {
    found = lookup(id);
  } catch (err) {
    throw violation(
      `The value names schema id ${id}, which the schema registry does not know: ${(err as Error).message}`,
      { schemaId: id },
      err,
    );
  }
  if (found === undefined) {
    throw violation(
      `The value names schema id ${id}, which the schema registry does not know; register the producer's schema, or check which registry the producer uses.`,
      { schemaId: id },
    );
  }
  if (found.type !== 'AVRO') {
    throw violation(`The value names schema id ${id}, which is a ${found.type} schema, not Avro.`, { schemaId: id });
  }
  const writer = asAvro(found);
  let resolver: avsc.Resolver | undefined;
  if (writer.canonical !== reader.canonical) {
    try {
      resolver = reader.avscType.createResolver(writer.avscType);
    } catch (err) {
      const problems = resolutionProblems(reader.node, writer.node);
      const why = problems.length > 0 ? problems.map((p) => `${p.path}: ${p.rule}`).join('; ') : (err as Error).message;
      throw violation(
        `Records written with schema id ${id} cannot be read as ${reader.rootName}: ${why}.`,
        { schemaId: id, problems },
        err,
      );
    }
  }
  const entry = { writer, resolver };
  cache.set(id, entry);
  return entry;
}

function payloadViolation(writer: AvroSchema, id: number, buf: Buffer, err: unknown): KappaError {
  const found = diagnosePayload(writer.node, buf, FRAME_HEADER_BYTES, writer.rootName);
  if (found !== null) {
    return violation(
      `The Avro value (schema id ${id}) is invalid at ${found.path}: ${found.reason}.`,
      { schemaId: id, path: found.path },
      err,
    );
  }
  const reason = err instanceof Error ? err.message : 'it does not decode';
  return violation(
    `The Avro value (schema id ${id}) cannot be decoded: ${reason}.`,
    { schemaId: id, path: writer.rootName },
    err,
  );
}
