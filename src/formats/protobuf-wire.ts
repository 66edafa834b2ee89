/**
 * The Confluent wire format of a Protobuf record value:
 *
 *   byte 0        magic byte 0
 *   bytes 1-4     schema id, big-endian int32 (the writer's schema in the registry)
 *   then          the message-index array: which message of the writer's .proto file the payload is.
 *                 A zigzag varint count, then that many zigzag varint indexes: the first counts the
 *                 file's top-level messages in declaration order, each next one the messages nested
 *                 in the one before (map entries are not counted). The common case [0], the first
 *                 message, is written as the single byte 0 (count 0); a reader takes count 0 as [0].
 *                 Examples: [0] -> 00; [1] -> 02 02; [0, 2] -> 04 00 04.
 *   then          the Protobuf binary of the message.
 *
 * Zigzag varint: n is written as (n << 1) ^ (n >> 31) in base-128 little-endian groups, the high bit
 * of each byte saying another follows (as Kafka's and Protobuf's sint32).
 */
import { KappaError } from '../errors.ts';
import { FRAME_HEADER_BYTES as HEADER_BYTES, MAGIC_BYTE as MAGIC } from './types.ts';

// Local copies: read on every record, and an imported binding can cost a getter call per read.
const FRAME_HEADER_BYTES = HEADER_BYTES;
const MAGIC_BYTE = MAGIC;
/** The index array of the common case, shared: readers must not change it. */
const FIRST_MESSAGE: readonly number[] = Object.freeze([0]);

/** A bound on the index array: no real .proto nests messages this deep, and garbage stops here. */
export const MESSAGE_INDEX_DEPTH_MAX = 64;
const VARINT_BYTES_MAX = 5;

export interface ProtobufFrame {
  schemaId: number;
  indexes: readonly number[];
  /** Where the Protobuf binary starts. */
  payloadOffset: number;
}

/** The header bytes (magic, id, message indexes) of a value written with schema `schemaId` as message `indexes`. */
export function frameHeader(schemaId: number, indexes: readonly number[]): Buffer {
  const isFirst = indexes.length === 1 && indexes[0] === 0;
  const varints = isFirst ? [0] : [indexes.length, ...indexes];
  const out = Buffer.alloc(FRAME_HEADER_BYTES + varints.length * VARINT_BYTES_MAX);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  let at = FRAME_HEADER_BYTES;
  for (const n of varints) at = writeZigzag(out, at, n);
  return out.subarray(0, at);
}

/** Reads the header of a framed value; throws KAPPA_SCHEMA_VIOLATION when it is not one. */
export function readFrame(bytes: Uint8Array): ProtobufFrame {
  if (bytes.length < FRAME_HEADER_BYTES + 1) {
    throw violation(
      `The value is ${bytes.length} bytes long, shorter than a Confluent-framed Protobuf value (magic byte, 4-byte schema id, message indexes).`,
    );
  }
  if (bytes[0] !== MAGIC_BYTE) {
    throw violation(
      `The value starts with byte ${bytes[0]}, not the Confluent magic byte 0: it was not written by a schema-registry serializer.`,
    );
  }
  const schemaId = ((bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4]) >> 0;
  const cursor = { at: FRAME_HEADER_BYTES };
  const count = readZigzag(bytes, cursor);
  if (count === 0) return { schemaId, indexes: FIRST_MESSAGE, payloadOffset: cursor.at };
  if (count < 0 || count > MESSAGE_INDEX_DEPTH_MAX) {
    throw violation(`The message-index count is ${count}; it must be 0 to ${MESSAGE_INDEX_DEPTH_MAX}.`);
  }
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const index = readZigzag(bytes, cursor);
    if (index < 0) throw violation(`Message index ${i} is ${index}; indexes are never negative.`);
    indexes.push(index);
  }
  return { schemaId, indexes, payloadOffset: cursor.at };
}

function writeZigzag(out: Buffer, at: number, n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  while (v > 0x7f) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

function readZigzag(bytes: Uint8Array, cursor: { at: number }): number {
  let v = 0;
  for (let i = 0; i < VARINT_BYTES_MAX; i++) {
    if (cursor.at >= bytes.length) throw violation('The value ends inside its message-index array (truncated).');
    const b = bytes[cursor.at++];
    v |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) === 0) return (v >>> 1) ^ -(v & 1);
  }
  throw violation('The message-index array holds a varint longer than 5 bytes (garbage).');
}

export function violation(message: string, details?: Record<string, unknown>, cause?: unknown): KappaError {
  return new KappaError('KAPPA_SCHEMA_VIOLATION', message, details, cause);
}
