/**
 * The JSON Schema record format (Confluent's `schemaType: "JSON"`): schemas are JSON Schema
 * documents, records are UTF-8 JSON in the Confluent wire format.
 *
 * Wire format of one record value (big-endian):
 *
 *     byte 0      magic byte, always 0
 *     bytes 1-4   schema id, int32: the registered schema the producer wrote the value with
 *     bytes 5-    the value as UTF-8 JSON text (no length prefix: it runs to the end)
 *
 * Unlike Avro and Protobuf there is no message-index array and the payload does not depend on the
 * writer schema: the id only says which schema the producer validated against. Reading checks the
 * frame and the id, then validates the value against the reader's schema, so a record that does
 * not fit what the reader expects is refused with the field and the reason.
 *
 * Schemas: draft-07 (the default when `$schema` is absent, as in Confluent), 2019-09 and 2020-12,
 * compiled by ajv with every error collected and no coercion, defaults or removal (a replay must
 * see what the live run saw). Another subject's schema is referenced with `"$ref": "<name>"` where
 * `<name>` is the name of a Confluent reference. String `format`s are annotations here: ajv ships
 * no format checkers, so formats are not validated when a record is read (compatibility still
 * treats a changed format as a problem). The compatibility rules live in json-schema-compat.ts.
 */
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { KappaError } from '../errors.ts';
import { invalidRecordError, issuesFromAjvErrors } from '../schema/index.ts';
import { inclusionProblems } from './json-schema-compat.ts';
import {
  SCHEMA_DEPTH_MAX,
  SchemaSpace,
  draftOf,
  findEndlessRef,
  isSchemaObject,
  refsOf,
  resolveUri,
  type Draft,
  type SchemaValue,
} from './json-schema-space.ts';
import {
  FRAME_HEADER_BYTES,
  MAGIC_BYTE,
  type CompatibilityProblem,
  type FormatCodec,
  type ParsedSchema,
  type SchemaReference,
} from './types.ts';

/** Longest piece of a JSON parser message or a quoted value kept in an error. */
const REASON_CHARS_MAX = 200;
/** Largest schema id the frame can carry (int32). */
const SCHEMA_ID_MAX = 0x7fffffff;

/** A JSON Schema parsed, checked against its meta-schema and compiled. */
export class ParsedJsonSchema implements ParsedSchema {
  readonly type = 'JSON' as const;
  constructor(
    readonly text: string,
    readonly canonical: string,
    /** The parsed documents, for the compatibility check. */
    readonly space: SchemaSpace,
    /** ajv's validator for the schema. */
    readonly validate: ValidateFunction,
  ) {}
}

export const jsonSchemaCodec: FormatCodec = {
  type: 'JSON',
  parse: parseJsonSchema,
  problems(reader: ParsedSchema, writer: ParsedSchema): CompatibilityProblem[] {
    return inclusionProblems(asJsonSchema(reader, 'reader').space.root, asJsonSchema(writer, 'writer').space.root);
  },
};

export function parseJsonSchema(
  text: string,
  references: readonly SchemaReference[] = [],
  resolve?: (ref: SchemaReference) => string,
): ParsedJsonSchema {
  const root = parseSchemaText(text, 'The JSON Schema');
  const canonical = canonicalText(root, 0);
  const draft = draftOf(root);
  if (draft === undefined) {
    const declared = describe((root as Record<string, unknown>).$schema);
    throw invalidSchema(
      `The JSON Schema declares "$schema": ${declared}, which Kappa cannot compile. Use draft-07 ("http://json-schema.org/draft-07/schema#", the default when $schema is left out), 2019-09 ("https://json-schema.org/draft/2019-09/schema") or 2020-12 ("https://json-schema.org/draft/2020-12/schema").`,
      { place: '#/$schema' },
    );
  }
  const documents = references.map((ref) => ({ name: ref.name, schema: loadReference(ref, resolve) }));
  const ajv = createAjv(draft, false);
  const rootBase = isSchemaObject(root) && typeof root.$id === 'string' ? resolveUri('', root.$id) : '';
  for (const doc of documents) {
    const label = `The referenced schema "${doc.name}"`;
    const docDraft = draftOf(doc.schema);
    if (docDraft !== draft && isSchemaObject(doc.schema) && doc.schema.$schema !== undefined) {
      throw invalidSchema(
        `${label} declares "$schema": ${describe(doc.schema.$schema)}, but the schema that references it is written in draft ${draft}; a schema and its references are compiled with one draft.`,
        { reference: doc.name, place: '#/$schema' },
      );
    }
    checkMetaSchema(draft, doc.schema, label);
    for (const key of new Set([doc.name, resolveUri('', doc.name), resolveUri(rootBase, doc.name)])) {
      try {
        ajv.addSchema(doc.schema as AnySchema, key);
      } catch (err) {
        throw invalidSchema(
          `${label} cannot be added under the name "${key}": ${reason(err)}`,
          { reference: doc.name },
          err,
        );
      }
    }
  }
  checkMetaSchema(draft, root, 'The JSON Schema');
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(root as AnySchema);
  } catch (err) {
    throw compileError(
      err,
      root,
      documents.map((d) => d.name),
    );
  }
  const space = new SchemaSpace(root, documents);
  const endless = findEndlessRef(space);
  if (endless !== undefined) {
    throw invalidSchema(
      `The JSON Schema's reference at ${endless} leads back to a schema applied to the same value without going into a property or an item first, so checking a value would never end.`,
      { place: endless },
    );
  }
  return new ParsedJsonSchema(text, canonical, space, validate);
}

export function asJsonSchema(schema: ParsedSchema, role: string): ParsedJsonSchema {
  if (schema instanceof ParsedJsonSchema) return schema;
  throw new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `The ${role} schema is ${schema.type === 'JSON' ? 'a JSON Schema not parsed by jsonSchemaCodec.parse' : `a ${schema.type} schema`}; only JSON Schemas parsed by this codec can be used here.`,
  );
}

/** Frames `value` as Confluent's serializers do: magic byte 0, the schema id, then UTF-8 JSON. */
export function encodeJson(schemaId: number, value: unknown): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > SCHEMA_ID_MAX) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `A schema id is an integer from 0 to ${SCHEMA_ID_MAX}; got ${describe(schemaId)}.`,
    );
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The value cannot be written as JSON: ${reason(err)}.`,
      undefined,
      err,
    );
  }
  if (json === undefined) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `The value cannot be written as JSON (it is ${typeof value}).`);
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + Buffer.byteLength(json));
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  out.write(json, FRAME_HEADER_BYTES, 'utf8');
  return out;
}

/** Finds the writer schema registered under an id; undefined when no schema has that id. */
export type WriterSchemaLookup = (schemaId: number) => ParsedSchema | undefined;
/** Decodes one framed record value and validates it against the reader schema; throws KappaError. */
export type JsonRecordDecoder = (bytes: Uint8Array, writerSchemaFor: WriterSchemaLookup) => unknown;

/**
 * A decoder for records read with `readerSchema`. Errors: a value that is not framed (too short,
 * wrong magic byte), or names an id with no JSON schema → KAPPA_SCHEMA_VIOLATION; a payload that is
 * not UTF-8 JSON → KAPPA_INVALID_RECORD; a value the reader schema refuses → KAPPA_SCHEMA_VIOLATION
 * with each field's path and reason.
 */
export function jsonDecoder(readerSchema: ParsedSchema): JsonRecordDecoder {
  const reader = asJsonSchema(readerSchema, 'reader');
  const root = reader.space.root.schema;
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  return (bytes, writerSchemaFor) => {
    const schemaId = frameSchemaId(bytes);
    const writer = writerSchemaFor(schemaId);
    if (writer === undefined) {
      throw new KappaError(
        'KAPPA_SCHEMA_VIOLATION',
        `The record was written with schema id ${schemaId}, which is not registered, so Kappa cannot tell which schema it follows. Register the producer's schema (or point the producer at this registry) and send it again.`,
        { schemaId },
      );
    }
    if (writer.type !== 'JSON') {
      throw new KappaError(
        'KAPPA_SCHEMA_VIOLATION',
        `The record was written with schema id ${schemaId}, a ${writer.type} schema, but this reader expects JSON records checked by a JSON Schema.`,
        { schemaId, schemaType: writer.type },
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(bytes.subarray(FRAME_HEADER_BYTES)));
    } catch (err) {
      throw invalidRecordError(
        [{ path: '', message: `is not valid UTF-8 JSON after its 5-byte header: ${reason(err)}` }],
        {
          malformed: true,
        },
      );
    }
    if (!reader.validate(value)) {
      const issues = issuesFromAjvErrors(reader.validate.errors ?? [], root);
      throw invalidRecordError(issues.length > 0 ? issues : [{ path: '', message: 'does not match the schema' }]);
    }
    return value;
  };
}

function frameSchemaId(bytes: Uint8Array): number {
  if (bytes.length < FRAME_HEADER_BYTES) {
    throw new KappaError(
      'KAPPA_SCHEMA_VIOLATION',
      `The record is ${bytes.length} bytes long, shorter than the ${FRAME_HEADER_BYTES}-byte header of the Confluent wire format (magic byte 0, then a 4-byte schema id).`,
      { length: bytes.length },
    );
  }
  if (bytes[0] !== MAGIC_BYTE) {
    const first = `0x${bytes[0].toString(16).padStart(2, '0')}`;
    throw new KappaError(
      'KAPPA_SCHEMA_VIOLATION',
      `The record starts with the byte ${first}, not the magic byte 0 of the Confluent wire format, so it was not written by a schema-registry serializer${bytes[0] === 0x7b ? ' (it looks like plain JSON)' : ''}. Send it through a serializer that frames values with a schema id.`,
      { firstByte: bytes[0] },
    );
  }
  return ((bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4]) >>> 0;
}

function parseSchemaText(text: string, label: string): SchemaValue {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidSchema(`${label} is not valid JSON: ${reason(err)}.`, { place: 'text' }, err);
  }
  if (typeof value !== 'boolean' && !isSchemaObject(value)) {
    throw invalidSchema(`${label} must be a JSON object (or true or false), not ${describe(value)}.`, { place: '#' });
  }
  return value;
}

function loadReference(ref: SchemaReference, resolve: ((ref: SchemaReference) => string) | undefined): SchemaValue {
  const which = `"${ref.name}" (subject "${ref.subject}", version ${ref.version})`;
  if (resolve === undefined) {
    throw invalidSchema(
      `The JSON Schema lists the reference ${which}, but no way to load referenced schemas was given.`,
      {
        reference: ref.name,
      },
    );
  }
  let text: string;
  try {
    text = resolve(ref);
  } catch (err) {
    throw invalidSchema(
      `The referenced schema ${which} could not be loaded: ${reason(err)}`,
      { reference: ref.name },
      err,
    );
  }
  return parseSchemaText(text, `The referenced schema ${which}`);
}

/**
 * One ajv per parsed schema, so two schemas with the same `$id` never collide. strict: false lets
 * through the extra keywords producers put in schemas (javaType, connect.type…), which validate
 * nothing; formats are annotations (see the file comment).
 */
function createAjv(draft: Draft, validateSchema: boolean): Ajv {
  const options = { allErrors: true, strict: false, validateFormats: false, logger: false as const, validateSchema };
  if (draft === '2020-12') return new Ajv2020(options);
  if (draft === '2019-09') return new Ajv2019(options);
  return new Ajv(options);
}

/**
 * The meta-schema checkers, one per draft, made on first use. A fresh ajv compiles its draft's
 * meta-schema (several milliseconds) before it can check a schema, so the per-schema instances skip
 * that check and these shared ones do it. They hold only the meta-schemas: checking a schema adds
 * nothing to them, so sharing them is a memo, not shared state.
 */
const metaCheckers = new Map<Draft, Ajv>();

function checkMetaSchema(draft: Draft, schema: SchemaValue, label: string): void {
  let checker = metaCheckers.get(draft);
  if (checker === undefined) metaCheckers.set(draft, (checker = createAjv(draft, true)));
  let valid: boolean;
  try {
    valid = checker.validateSchema(schema as AnySchema) as boolean;
  } catch (err) {
    throw invalidSchema(
      `${label} cannot be checked against its meta-schema: ${reason(err)}`,
      { place: '#/$schema' },
      err,
    );
  }
  const ajv = checker;
  if (valid) return;
  const errors = (ajv.errors ?? []) as ErrorObject[];
  const first = errors[0];
  const place = `#${first?.instancePath ?? ''}`;
  const allowed =
    first?.params && 'allowedValues' in first.params
      ? ` (${(first.params.allowedValues as unknown[]).join(', ')})`
      : '';
  throw invalidSchema(
    `${label} is not a valid JSON Schema: at ${place} the value ${first?.message ?? 'is invalid'}${allowed}.`,
    {
      place,
      errors: errors.slice(0, 10).map((e) => ({ place: `#${e.instancePath}`, message: e.message })),
    },
  );
}

function compileError(err: unknown, root: SchemaValue, names: readonly string[]): KappaError {
  const missingRef = (err as { missingRef?: unknown }).missingRef;
  if (typeof missingRef !== 'string') {
    return invalidSchema(`The JSON Schema does not compile: ${reason(err)}`, { place: '#' }, err);
  }
  const rootBase = isSchemaObject(root) && typeof root.$id === 'string' ? resolveUri('', root.$id) : '';
  const wanted = missingRef.replace(/#$/, '');
  const refs = refsOf(root);
  const found =
    refs.find((r) => resolveUri(rootBase, r.ref) === wanted) ??
    refs.find((r) => wanted.endsWith(r.ref.replace(/#$/, '')));
  const ref = found?.ref ?? missingRef;
  const place = found?.pointer ?? 'a referenced schema';
  const given = names.length === 0 ? 'none' : names.map((n) => `"${n}"`).join(', ');
  return invalidSchema(
    `The JSON Schema's $ref "${ref}" at ${place} cannot be resolved: it names no part of the schema and no reference given with it (references given: ${given}). To use a schema registered under another subject, list it in "references" with the name the $ref uses.`,
    { place, ref },
    err,
  );
}

/** Keys sorted by UTF-16 code units at every level, no whitespace: the registry's identity of a schema. */
function canonicalText(value: unknown, depth: number): string {
  if (depth > SCHEMA_DEPTH_MAX) {
    throw invalidSchema(`The JSON Schema is nested more than ${SCHEMA_DEPTH_MAX} levels deep.`, { place: '#' });
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalText(v, depth + 1)).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const record = value as Record<string, unknown>;
  const parts = Object.keys(record)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalText(record[key], depth + 1)}`);
  return `{${parts.join(',')}}`;
}

function invalidSchema(message: string, details: Record<string, unknown>, cause?: unknown): KappaError {
  return new KappaError('KAPPA_INVALID_SCHEMA', message, details, cause);
}

function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > REASON_CHARS_MAX ? `${message.slice(0, REASON_CHARS_MAX)}…` : message;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > REASON_CHARS_MAX ? `${text.slice(0, REASON_CHARS_MAX)}…` : text;
}
