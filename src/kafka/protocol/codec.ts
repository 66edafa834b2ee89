/**
 * The generic encoder and decoder: they walk a compiled plan (plan.ts) over a Reader or a Writer.
 *
 * Structs are written field after field in declaration order; in flexible versions every struct
 * (the message itself and each element of a struct array) ends with a tagged-fields section:
 *   unsigned varint count, then per field in ascending tag order: unsigned varint tag,
 *   unsigned varint size, the value (encoded as in a flexible version).
 * A tagged field is written only when its value differs from its default; unknown tags are skipped.
 * A nullable struct is preceded by an int8: -1 for null, 1 for present.
 */
import { malformed } from './protocol-error.ts';
import { Reader } from './reader.ts';
import { Writer } from './writer.ts';
import * as kinds from './plan.ts';
import type { Step, StructPlan } from './plan.ts';

// The kinds and helpers copied into this module once: a TypeScript loader (tsx) may turn imported bindings into
// getters, which cost a call per field on the hot path.
const K_ARRAY = kinds.K_ARRAY;
const K_BOOL = kinds.K_BOOL;
const K_BYTES = kinds.K_BYTES;
const K_FLOAT64 = kinds.K_FLOAT64;
const K_INT16 = kinds.K_INT16;
const K_INT32 = kinds.K_INT32;
const K_INT64 = kinds.K_INT64;
const K_INT8 = kinds.K_INT8;
const K_RECORDS = kinds.K_RECORDS;
const K_STRING = kinds.K_STRING;
const K_STRUCT = kinds.K_STRUCT;
const K_UINT16 = kinds.K_UINT16;
const K_UINT32 = kinds.K_UINT32;
const K_UUID = kinds.K_UUID;
const defaultOf = kinds.defaultOf;
const isDefault = kinds.isDefault;

/** Bytes values at most this long are copied into the scratch buffer; longer ones become chunks. */
const BYTES_COPY_MAX = 4096;

type Struct = Record<string, unknown>;

export function readStruct(r: Reader, plan: StructPlan): Struct {
  const out = plan.build(r, readOrDefault, plan.fields);
  if (plan.flexible) readTaggedFields(r, plan, out);
  return out;
}

/** A field on the wire is read; a tagged one gets its default until the tagged section says otherwise. */
function readOrDefault(r: Reader, s: Step): unknown {
  return s.present && !s.tagged ? readField(r, s) : defaultOf(s);
}

function readTaggedFields(r: Reader, plan: StructPlan, out: Struct): void {
  const count = r.uvarint();
  // Each tagged field takes at least two bytes (its tag and its size).
  if (count * 2 > r.remaining) throw malformed(`${count} tagged fields cannot fit in ${r.remaining} bytes`);
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint();
    const size = r.uvarint();
    r.need(size, `tagged field ${tag}`);
    const step = plan.byTag.get(tag);
    if (step) {
      const sub = new Reader(r.buf, r.pos, r.pos + size);
      out[step.name] = readField(sub, step);
      if (sub.remaining !== 0) throw malformed(`tagged field ${step.path} has ${sub.remaining} bytes left over`);
    }
    r.pos += size;
  }
}

export function readField(r: Reader, s: Step): unknown {
  switch (s.kind) {
    case K_INT32:
      return r.int32();
    case K_INT16:
      return r.int16();
    case K_INT64:
      return r.int64();
    case K_INT8:
      return r.int8();
    case K_BOOL:
      return r.bool();
    case K_UINT16:
      return r.uint16();
    case K_UINT32:
      return r.uint32();
    case K_FLOAT64:
      return r.float64();
    case K_UUID:
      return r.uuid();
    case K_STRING: {
      const n = r.length(s.compact, false, s.path);
      return n === -1 ? nullValue(s) : r.utf8(n, s.path);
    }
    case K_BYTES:
    case K_RECORDS: {
      const n = r.length(s.compact, true, s.path);
      return n === -1 ? nullValue(s) : r.slice(n, s.path);
    }
    case K_ARRAY:
      return readArray(r, s);
    case K_STRUCT:
      if (s.nullable) {
        const marker = r.int8();
        if (marker < 0) return null;
      }
      return readStruct(r, s.struct!);
    default:
      throw new Error(`unknown kind ${s.kind} at ${s.path}`);
  }
}

function nullValue(s: Step): null {
  if (!s.nullable) throw malformed(`${s.path} is null, which this version does not allow`);
  return null;
}

function readArray(r: Reader, s: Step): unknown[] | null {
  const count = r.length(s.compact, true, s.path);
  if (count === -1) return nullValue(s);
  const elem = s.elem!;
  if (count * elem.minBytes > r.remaining) {
    throw malformed(`${s.path} claims ${count} elements, more than the ${r.remaining} bytes left can hold`);
  }
  const out = new Array<unknown>(count);
  if (elem.kind === K_STRUCT) {
    const plan = elem.struct!;
    for (let i = 0; i < count; i++) out[i] = readStruct(r, plan);
  } else {
    for (let i = 0; i < count; i++) out[i] = readField(r, elem);
  }
  return out;
}

export function writeStruct(w: Writer, plan: StructPlan, value: unknown): void {
  const o = (value ?? {}) as Struct;
  plan.writeWire(w, writeField, plan.wire, o);
  if (plan.flexible) writeTaggedFields(w, plan, o);
}

function writeTaggedFields(w: Writer, plan: StructPlan, o: Struct): void {
  if (plan.tagged.length === 0) {
    w.uvarint(0);
    return;
  }
  let count = 0;
  for (const s of plan.tagged) if (!isDefault(s, o[s.name])) count++;
  w.uvarint(count);
  for (const s of plan.tagged) {
    if (isDefault(s, o[s.name])) continue;
    const sub = new Writer(64);
    writeField(sub, s, o[s.name]);
    const bytes = Buffer.concat(sub.finish());
    w.uvarint(s.tag);
    w.uvarint(bytes.length);
    w.raw(bytes);
  }
}

export function writeField(w: Writer, s: Step, value: unknown): void {
  const v = value === undefined ? defaultOf(s) : value;
  if (v === null && s.kind >= K_STRING) {
    if (!s.nullable) throw new TypeError(`${s.path} may not be null in this version`);
    if (s.kind === K_STRUCT) w.int8(-1);
    else w.lengthPrefix(-1, s.compact, s.kind !== K_STRING);
    return;
  }
  switch (s.kind) {
    case K_INT32:
      return w.int32(v as number);
    case K_INT16:
      return w.int16(v as number);
    case K_INT64:
      return w.int64(v as number | bigint);
    case K_INT8:
      return w.int8(v as number);
    case K_BOOL:
      return w.bool(Boolean(v));
    case K_UINT16:
      return w.uint16(v as number);
    case K_UINT32:
      return w.uint32(v as number);
    case K_FLOAT64:
      return w.float64(v as number);
    case K_UUID:
      return w.uuid(v as string | Buffer);
    case K_STRING:
      return writeString(w, s, v);
    case K_BYTES:
      return writeBytes(w, s, v);
    case K_RECORDS:
      return writeRecords(w, s, v);
    case K_ARRAY:
      return writeArray(w, s, v);
    case K_STRUCT:
      if (s.nullable) w.int8(1);
      return writeStruct(w, s.struct!, v);
    default:
      throw new Error(`unknown kind ${s.kind} at ${s.path}`);
  }
}

function writeString(w: Writer, s: Step, v: unknown): void {
  if (typeof v !== 'string') throw new TypeError(`${s.path} must be a string, not ${typeof v}`);
  const bytes = Buffer.byteLength(v, 'utf8');
  if (!s.compact && bytes > 0x7fff) throw new TypeError(`${s.path} is ${bytes} bytes, over the 32767 a string allows`);
  w.lengthPrefix(bytes, s.compact, false);
  w.utf8(v, bytes);
}

function writeBytes(w: Writer, s: Step, v: unknown): void {
  if (!Buffer.isBuffer(v)) throw new TypeError(`${s.path} must be a Buffer`);
  w.lengthPrefix(v.length, s.compact, true);
  if (v.length <= BYTES_COPY_MAX) w.raw(v);
  else w.chunk(v);
}

function writeRecords(w: Writer, s: Step, v: unknown): void {
  let total = 0;
  if (Buffer.isBuffer(v)) total = v.length;
  else if (Array.isArray(v)) for (const b of v as Buffer[]) total += b.length;
  else throw new TypeError(`${s.path} must be a Buffer, an array of Buffers or null`);
  w.lengthPrefix(total, s.compact, true);
  w.chunk(v as Buffer | Buffer[]);
}

function writeArray(w: Writer, s: Step, v: unknown): void {
  if (!Array.isArray(v)) throw new TypeError(`${s.path} must be an array`);
  w.lengthPrefix(v.length, s.compact, true);
  const elem = s.elem!;
  if (elem.kind === K_STRUCT) {
    const plan = elem.struct!;
    for (let i = 0; i < v.length; i++) writeStruct(w, plan, v[i]);
  } else {
    for (let i = 0; i < v.length; i++) writeField(w, elem, v[i] ?? elem.defaultValue);
  }
}
