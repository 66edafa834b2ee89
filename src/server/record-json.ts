/**
 * A record as GET /v1/topics/:topic/records, its event stream and the topic records of GET
 * /v1/events show it: `{ topic, partition, offset, timestamp, key, value, headers }`.
 *
 * - A topic without a format: the value parsed when it is JSON, else its text.
 * - A topic with a format (Avro, Protobuf, JSON Schema): the value decoded to JSON as the topic's
 *   pipelines read it, and `schemaId`, the writer schema's id. A value that does not decode (not
 *   framed, an unknown schema id, a payload that does not fit) does not fail the read: it shows
 *   `value: null`, `valueError` (why) and `valueBase64` (its bytes). Decoded values are made JSON:
 *   a bigint is written as a decimal string, bytes as base64.
 */
import { type FormattedValues, jsonSafe } from '../stream/index.ts';
import { frameProblem, frameSchemaId } from './record-formats.ts';

/** What a read gives of a record. */
export interface LogRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer | null }[];
}

/** A record of a topic without a format, as reads show it: the value parsed when it is JSON. */
export function recordJson(topic: string, partition: number, r: LogRecord): object {
  const text = r.value === null ? null : r.value.toString('utf8');
  let value: unknown = text;
  if (text !== null) {
    try {
      value = JSON.parse(text);
    } catch {
      // not JSON: the text as it is
    }
  }
  return { ...envelope(topic, partition, r), value, headers: headersJson(r) };
}

/**
 * How reads show the records of a topic: recordJson, or for a topic with a format its values
 * decoded (a promise, as decoding may read the schema registry for an id not seen yet).
 */
export function recordShower(
  values: FormattedValues,
  topic: string,
): (partition: number, r: LogRecord) => object | Promise<object> {
  if (values.formatOf(topic) === null) return (partition, r) => recordJson(topic, partition, r);
  return (partition, r) => formattedRecordJson(values, topic, partition, r);
}

async function formattedRecordJson(
  values: FormattedValues,
  topic: string,
  partition: number,
  r: LogRecord,
): Promise<object> {
  const base = envelope(topic, partition, r);
  const headers = headersJson(r);
  if (r.value === null) return { ...base, value: null, valueError: 'the record has no value', headers };
  const problem = frameProblem(r.value);
  const schemaId = problem === null ? frameSchemaId(r.value) : null;
  const decoded = problem === null ? await values.decode(topic, r.value) : { error: `The value ${problem}.` };
  if ('value' in decoded) return { ...base, schemaId, value: jsonSafe(decoded.value), headers };
  return {
    ...base,
    schemaId,
    value: null,
    valueError: decoded.error,
    valueBase64: r.value.toString('base64'),
    headers,
  };
}

function envelope(topic: string, partition: number, r: LogRecord): object {
  return {
    topic,
    partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : r.key.toString('utf8'),
  };
}

function headersJson(r: LogRecord): Record<string, string | null> {
  return Object.fromEntries(r.headers.map((h) => [h.key, h.value === null ? null : h.value.toString('utf8')]));
}
