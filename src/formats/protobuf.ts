/**
 * The Protobuf record format (issue 17), on protobufjs: it parses .proto text at run time, which a
 * Kappa config needs since it names a .proto file.
 *
 *   protobufCodec              the FormatCodec: parse (proto2 and proto3, imports through Confluent
 *                              references, canonical form: protobuf-schema.ts) and problems (the
 *                              rules for updating a message type: protobuf-compat.ts)
 *   encodeProtobuf             a value -> a Confluent-framed record (layout: protobuf-wire.ts)
 *   protobufDecoder            a framed record -> a value shaped by the reader's message, whatever
 *                              schema version wrote it (value shapes: protobuf-decode.ts)
 *
 * Decoding reads the payload with the WRITER's message (the one its schema id and message indexes
 * name), so the bytes are checked against the schema that produced them, then maps the fields by
 * number onto the READER's message. Plans for each (writer schema, message) pair are built once and
 * kept for the decoder's lifetime, in a WeakMap keyed by the writer's ParsedSchema object.
 */
import type protobuf from 'protobufjs';
import { protobufjs } from './libs.ts';
import { KappaError } from '../errors.ts';
import { protobufProblems } from './protobuf-compat.ts';
import { applyPlan, planMessage, type MessagePlan } from './protobuf-decode.ts';
import { normaliseMessage } from './protobuf-encode.ts';
import { parseProtobuf, ProtobufSchema } from './protobuf-schema.ts';
import { frameHeader, readFrame, violation } from './protobuf-wire.ts';
import type { FormatCodec, ParsedSchema } from './types.ts';

export { ProtobufSchema } from './protobuf-schema.ts';

export const protobufCodec: FormatCodec = {
  type: 'PROTOBUF',
  parse: parseProtobuf,
  problems(reader, writer) {
    return protobufProblems(asProtobuf(reader, 'reader'), asProtobuf(writer, 'writer'));
  },
};

/** A framed record of `value` as message `messageName` (full name, or name within the file's package) of `parsed`. */
export function encodeProtobuf(schemaId: number, parsed: ParsedSchema, messageName: string, value: unknown): Buffer {
  const schema = asProtobuf(parsed, 'schema');
  const { type, indexes } = messageOf(schema, messageName);
  const payload = type.encode(normaliseMessage(type, value, type.name)).finish();
  return Buffer.concat([frameHeader(schemaId, indexes), payload]);
}

/** Reads a record's value; `writerSchemaFor(id)` gives the schema registered under an id (undefined or a throw: unknown). */
export type ProtobufDecode = (
  bytes: Uint8Array,
  writerSchemaFor: (id: number) => ParsedSchema | undefined,
) => Record<string, unknown>;

/** A decoder giving values shaped by message `messageName` of `readerSchema`. */
export function protobufDecoder(readerSchema: ParsedSchema, messageName: string): ProtobufDecode {
  const reader = asProtobuf(readerSchema, 'reader schema');
  const readerType = messageOf(reader, messageName).type;
  // Plans per writer schema: two versions of a file hold different messages under the same names.
  const perWriter = new WeakMap<ParsedSchema, WriterPlans>();
  // The hot path: most records of a topic name the same schema and its first message.
  let lastSchema: ParsedSchema | null = null;
  let lastFirst: PlanEntry | null = null;
  return (bytes, writerSchemaFor) => {
    const frame = readFrame(bytes);
    const writerSchema = lookupWriter(frame.schemaId, writerSchemaFor);
    const first = frame.indexes.length === 1 && frame.indexes[0] === 0;
    let entry = first && writerSchema === lastSchema ? lastFirst : null;
    if (entry === null) {
      entry = planFor(writerSchema, frame.schemaId, frame.indexes);
      if (first) [lastSchema, lastFirst] = [writerSchema, entry];
    }
    return applyPlan(entry.plan, decodePayload(entry.writer, bytes, frame.payloadOffset, frame.schemaId));
  };

  function planFor(writerSchema: ParsedSchema, schemaId: number, indexes: readonly number[]): PlanEntry {
    let plans = perWriter.get(writerSchema);
    if (plans === undefined) {
      plans = { byIndexes: new Map(), byName: new Map() };
      perWriter.set(writerSchema, plans);
    }
    const key = indexes.join('.');
    let entry = plans.byIndexes.get(key);
    if (entry === undefined) {
      const writer = asProtobuf(writerSchema, `schema ${schemaId}`).messageAt(indexes);
      if (writer === null) {
        throw violation(
          `The record names message [${indexes.join(', ')}] of schema ${schemaId}, which has no such message.`,
          { schemaId, indexes },
        );
      }
      entry = { writer, plan: planMessage(writer, readerType, plans.byName) };
      plans.byIndexes.set(key, entry);
    }
    return entry;
  }
}

/** The writer's message and the plan reading it as the reader's. */
interface PlanEntry {
  writer: protobuf.Type;
  plan: MessagePlan;
}

interface WriterPlans {
  /** By message indexes ('0', '1.2'). */
  byIndexes: Map<string, PlanEntry>;
  /** planMessage's cache for this writer schema (nested and recursive messages). */
  byName: Map<string, MessagePlan>;
}

function decodePayload(
  type: protobuf.Type,
  bytes: Uint8Array,
  offset: number,
  schemaId: number,
): Record<string, unknown> {
  try {
    // A reader positioned after the header rather than a subarray: one allocation less per record.
    const reader = protobufjs().Reader.create(bytes);
    reader.pos = offset;
    return type.decode(reader) as unknown as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw violation(
      `The record's payload is not a valid ${type.fullName.slice(1)} (schema ${schemaId}): ${reason}. It is truncated or was not written with this schema.`,
      { schemaId, message: type.fullName.slice(1), reason },
      err,
    );
  }
}

function lookupWriter(id: number, writerSchemaFor: (id: number) => ParsedSchema | undefined): ParsedSchema {
  let schema: ParsedSchema | undefined;
  try {
    schema = writerSchemaFor(id);
  } catch (err) {
    throw violation(`The record names schema id ${id}, which the registry does not know.`, { schemaId: id }, err);
  }
  if (schema === undefined)
    throw violation(`The record names schema id ${id}, which the registry does not know.`, { schemaId: id });
  return schema;
}

function messageOf(schema: ProtobufSchema, name: string): { type: protobuf.Type; indexes: number[] } {
  const type = schema.findMessage(name);
  const indexes = type === null ? null : schema.indexesOf(type);
  if (type === null || indexes === null) {
    const known = schema.messages.map((m) => m.name).join(', ') || 'none';
    throw new KappaError(
      'KAPPA_INVALID_SCHEMA',
      `The schema declares no message "${name}" (its top-level messages: ${known}). Name a message defined in this .proto file, e.g. "${schema.messages[0]?.name ?? 'Sale'}".`,
      { message: name },
    );
  }
  return { type, indexes };
}

function asProtobuf(schema: ParsedSchema, role: string): ProtobufSchema {
  if (schema instanceof ProtobufSchema) return schema;
  throw violation(`The ${role} is a ${schema.type} schema, not a Protobuf one parsed by protobufCodec.parse.`, {
    type: schema.type,
  });
}

/**
 * Why a framed Protobuf value cannot be read with `writer` (the schema its id names) before its
 * payload is decoded: its message-index array does not parse or names no message of the schema;
 * null when it names one. (A Kafka listener checks this much of every record it stores.)
 */
export function protobufFrameProblem(writer: ParsedSchema, value: Uint8Array): string | null {
  try {
    const frame = readFrame(value);
    if (asProtobuf(writer, 'writer schema').messageAt(frame.indexes) !== null) return null;
    return `its message indexes [${frame.indexes.join(', ')}] name no message of schema ${frame.schemaId}`;
  } catch (err) {
    return (err as Error).message;
  }
}
