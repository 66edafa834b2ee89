/**
 * The checks a record passes before it may be appended (HTTP ingestion): valid UTF-8 and JSON,
 * nesting at most JSON_DEPTH_MAX deep, the topic's schema, no number JSON.parse turns into
 * Infinity, integer fields exact, then the topic's key and event-time extractors (a time outside
 * what a Date can hold is refused). A record that fails gets a RecordError: its index in the
 * request, the path of the offending field, and a reason written for the client.
 *
 * A topic with a format (record-formats.ts) has no JSON schema of its own: its records are checked
 * by encoding them in the format (and decoding them back, as its readers will); the key and time
 * extractors see the decoded value, and the checked value is the framed bytes, in base64 (the
 * ingest spool holds text).
 */
import {
  type FlatDecoder,
  type RecordSchema,
  type SchemaIssue,
  compileFlatDecoder,
  compileSchema,
  formatPath,
} from '../schema/index.ts';
import type { TopicDef } from '../stream/index.ts';
import { KappaError } from '../errors.ts';
import { type TopicCodec, frameProblem, frameSchemaId, refusal } from './record-formats.ts';

/** Deepest nesting of arrays and objects accepted in any JSON the server parses (Jackson's default is 1,000 too). */
export const JSON_DEPTH_MAX = 1000;
/** Largest event time a record may have, either way of 1970: what a JavaScript Date can hold. */
export const EVENT_TIME_MS_MAX = 8.64e15;

export interface RecordError {
  index: number;
  path: string;
  reason: string;
}

/** A topic's ingestion settings, compiled once. */
export interface TopicIngest {
  def: TopicDef<unknown>;
  schema: RecordSchema<unknown> | null;
  /** Top-level properties the schema types as integer: checked to be exact (safe) integers. */
  integerFields: string[];
  /** The fast decoder of compact flat records (null when the schema is not a flat object of scalars). */
  flat: FlatDecoder | null;
  /** A topic with a format: its codec (set per request, once the registered schema id is known); else null. */
  codec: TopicCodec | null;
}

/** A checked record waiting to be appended. */
export interface Checked {
  index: number;
  key: string | null;
  timestamp: number | undefined;
  /**
   * The record's JSON: the request's own bytes for an NDJSON line (already checked as UTF-8), else a
   * string. A topic with a format: the framed bytes in base64.
   */
  value: string | Buffer;
  /** For a dead letter: JSON [path, reason]. */
  error?: string;
}

export function compileTopic(def: TopicDef<unknown>): TopicIngest {
  const properties = (def.schema as { properties?: Record<string, { type?: unknown }> } | null)?.properties ?? {};
  const integerFields = Object.keys(properties).filter((k) => properties[k]?.type === 'integer');
  return {
    def,
    schema: def.schema ? compileSchema(def.schema as object, { name: def.name }) : null,
    integerFields,
    flat: def.schema ? compileFlatDecoder(def.schema as object) : null,
    codec: null,
  };
}

/** A record's bytes (one NDJSON line): UTF-8 and JSON checked, then the schema. */
export function checkLine(topic: TopicIngest, index: number, bytes: Buffer): Checked | RecordError {
  // Nesting deeper than the limit needs more bytes than the limit: short lines are not scanned.
  if (bytes.length > JSON_DEPTH_MAX && jsonTooDeep(bytes, JSON_DEPTH_MAX))
    return { index, path: '', reason: `nests arrays and objects more than ${JSON_DEPTH_MAX} deep` };
  if (topic.flat !== null) {
    // The common compact flat object, scanned once (ASCII only, so valid UTF-8); anything else takes the full path.
    const fast = topic.flat(bytes, 0, bytes.length);
    if (fast !== undefined) {
      // A shape checked the values as it decoded them (flat-decoder.ts, `lastChecked`).
      if (!topic.flat.lastChecked && !topic.schema!.validate(fast))
        return issueError(index, topic.schema!.lastIssues());
      return checkValue(topic, index, fast, bytes);
    }
  }
  if (topic.schema !== null) {
    const decoded = topic.schema.decode(bytes);
    if (!decoded.ok) return issueError(index, decoded.issues);
    return checkValue(topic, index, decoded.value, bytes);
  }
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(bytes))
    return { index, path: '', reason: 'is not valid UTF-8' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { index, path: '', reason: `is not valid JSON: ${(err as Error).message.slice(0, 200)}` };
  }
  return checkValue(topic, index, value, text);
}

/** A parsed value: the schema, then the key and time extractors. `text` is its JSON when already known. */
export function checkValue(
  topic: TopicIngest,
  index: number,
  value: unknown,
  text: string | Buffer | null,
): Checked | RecordError {
  if (topic.schema !== null && text === null && !topic.schema.validate(value))
    return issueError(index, topic.schema.lastIssues());
  const huge = nonFinite(value, '');
  if (huge !== null)
    return { index, path: huge, reason: 'is a number too large for a double (JSON.parse makes it Infinity)' };
  if (typeof value === 'object' && value !== null) {
    for (const k of topic.integerFields) {
      const n = (value as Record<string, unknown>)[k];
      if (typeof n === 'number' && !Number.isSafeInteger(n))
        return {
          index,
          path: k,
          reason:
            'is a whole number beyond ±9007199254740991 (2^53 - 1), which cannot be held exactly; send it as a string',
        };
    }
  }
  if (topic.codec !== null) {
    let framed: Buffer;
    let decoded: unknown;
    try {
      framed = topic.codec.encode(value);
      decoded = topic.codec.decode(framed);
    } catch (err) {
      return { index, ...refusal(topic.codec, err) };
    }
    return checkFramed(topic, index, decoded, framed);
  }
  const kt = keyAndTime(topic, index, value);
  if ('reason' in kt) return kt;
  return { index, key: kt.key, timestamp: kt.timestamp, value: text ?? JSON.stringify(value) };
}

/** A framed value of a topic with a format, already decoded: the key and time extractors; the bytes kept as they are. */
export function checkFramed(
  topic: TopicIngest,
  index: number,
  decoded: unknown,
  framed: Buffer,
): Checked | RecordError {
  const kt = keyAndTime(topic, index, decoded);
  if ('reason' in kt) return kt;
  return { index, key: kt.key, timestamp: kt.timestamp, value: framed.toString('base64') };
}

/**
 * A framed body (one record already encoded): refused whole (KAPPA_SCHEMA_VIOLATION, whatever the
 * topic's onInvalid) when it is not framed or names a schema id the registry does not know, since
 * nothing can tell what it holds; a RecordError when its payload does not decode to the topic's schema.
 */
export async function checkFramedBody(topic: TopicIngest, bytes: Buffer): Promise<Checked | RecordError> {
  const name = topic.def.name;
  if (topic.codec === null)
    throw new KappaError(
      'KAPPA_UNSUPPORTED_MEDIA_TYPE',
      `Topic "${name}" declares no format (Avro, Protobuf or JSON Schema), so it takes no Confluent-framed values: send its records as application/json or application/x-ndjson.`,
      { topic: name },
    );
  const problem = frameProblem(bytes);
  const refuse = (reason: string, more: Record<string, unknown>): KappaError =>
    new KappaError('KAPPA_SCHEMA_VIOLATION', `The record ${reason}; nothing was appended.`, {
      topic: name,
      invalid: 1,
      records: [{ index: 0, path: '', reason }],
      ...more,
    });
  if (problem !== null) throw refuse(problem, {});
  const id = frameSchemaId(bytes);
  if (!(await topic.codec.knows(id)))
    throw refuse(
      `names schema id ${id}, which the schema registry does not know, so it cannot be read: register the producer's schema (under subject "${topic.codec.subject}") first, or point the producer's serializer at this registry`,
      { schemaId: id },
    );
  let decoded: unknown;
  try {
    decoded = topic.codec.decode(bytes);
  } catch (err) {
    return { index: 0, ...refusal(topic.codec, err) };
  }
  return checkFramed(topic, 0, decoded, bytes);
}

/** The topic's key and event-time extractors on a value. */
function keyAndTime(
  topic: TopicIngest,
  index: number,
  value: unknown,
): { key: string | null; timestamp: number | undefined } | RecordError {
  let key: string | null = null;
  let timestamp: number | undefined;
  try {
    if (topic.def.key !== null) {
      const k = topic.def.key(value);
      key = k === null || k === undefined ? null : String(k);
    }
    if (topic.def.time !== null) {
      const t = topic.def.time(value);
      if (typeof t !== 'number' || !Number.isFinite(t))
        return {
          index,
          path: '',
          reason: `has no event time: the topic's time extractor returned ${JSON.stringify(t) ?? 'undefined'}`,
        };
      if (Math.abs(t) > EVENT_TIME_MS_MAX) {
        return {
          index,
          path: pathOf(value, t, ''),
          reason: `gives the event time ${t}, outside what a date can hold (±${EVENT_TIME_MS_MAX} ms around 1970, years -271821 to 275760)`,
        };
      }
      timestamp = Math.trunc(t);
    }
  } catch (err) {
    return { index, path: '', reason: `could not be keyed or timed: ${(err as Error)?.message ?? String(err)}` };
  }
  return { key, timestamp };
}

/** The path of the first number in `v` that is not finite (1e400 parses as Infinity), or null. */
function nonFinite(v: unknown, path: string): string | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : path;
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = nonFinite(v[i], `${path}[${i}]`);
      if (p !== null) return p;
    }
    return null;
  }
  for (const k of Object.keys(v)) {
    const p = nonFinite((v as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`);
    if (p !== null) return p;
  }
  return null;
}

/** The path of the first number in `v` equal to `n` ('' when none is: the time extractor computed it). */
function pathOf(v: unknown, n: number, path: string): string {
  if (typeof v !== 'object' || v === null) return '';
  for (const [k, x] of Object.entries(v)) {
    const p = Array.isArray(v) ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`;
    if (x === n) return p;
    const inner = pathOf(x, n, p);
    if (inner !== '') return inner;
  }
  return '';
}

/**
 * Whether JSON text nests arrays and objects more than `max` deep, by one pass over its bytes
 * (brackets inside strings do not count). Deeper values would overflow the stack of the recursive
 * code that walks them, so they are refused before any of it runs.
 */
export function jsonTooDeep(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c)
        i++; // the escaped character, whatever it is
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function issueError(index: number, issues: readonly SchemaIssue[]): RecordError {
  const first = issues[0];
  return { index, path: first ? formatPath(first.path) : '', reason: first?.message ?? 'does not match the schema' };
}
