/**
 * Checking a pipeline's value against a message and turning it into what protobufjs encodes. Accepts
 * the shapes the decoder gives (see protobuf-decode.ts) and a few more a caller may hold:
 *   64-bit integers   a safe-integer number, a decimal string, or a bigint
 *   bytes             a base64 string or a Uint8Array/Buffer
 *   enums             a name, or a number (any int32 for a proto3 enum, a defined one for proto2)
 *   unset fields      absent, undefined or null
 * Anything else — a key that is not a field, a wrong type, a number out of range, two members of a
 * oneof, a proto2 required field left out — is refused with KAPPA_SCHEMA_VIOLATION naming the path.
 */
import type protobuf from 'protobufjs';
import { protobufjs } from './libs.ts';
import { keyTypeOf, kindOf } from './protobuf-decode.ts';
import { violation } from './protobuf-wire.ts';

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
const UINT32_MAX = 4_294_967_295;
const INT64_TEXT = /^-?\d{1,20}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** The value as protobufjs's `Type.encode` takes it (enums as numbers, 64-bit as string or number). */
export function normaliseMessage(type: protobuf.Type, value: unknown, path: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw bad(path, `expected an object for message ${type.fullName.slice(1)}`, value);
  }
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (type.fields[key] === undefined && input[key] !== undefined) {
      throw violation(`${path}.${key}: ${type.fullName.slice(1)} has no field "${key}".`, { path: `${path}.${key}` });
    }
  }
  const out: Record<string, unknown> = {};
  const oneofSet = new Map<string, string>();
  for (const field of type.fieldsArray) {
    const v = input[field.name];
    const at = `${path}.${field.name}`;
    if (v === undefined || v === null) {
      if (field.required) throw violation(`${at}: a required field is missing.`, { path: at });
      continue;
    }
    if (field.partOf !== null && !field.partOf.name.startsWith('_')) {
      const other = oneofSet.get(field.partOf.name);
      if (other !== undefined) {
        throw violation(
          `${at}: fields "${other}" and "${field.name}" of oneof ${field.partOf.name} are both set; set one.`,
          {
            path: at,
          },
        );
      }
      oneofSet.set(field.partOf.name, field.name);
    }
    out[field.name] = normaliseField(field, v, at);
  }
  return out;
}

function normaliseField(field: protobuf.Field, value: unknown, path: string): unknown {
  if (field.map) {
    if (typeof value !== 'object' || Array.isArray(value)) throw bad(path, 'expected an object (a map)', value);
    const out: Record<string, unknown> = {};
    const keyType = keyTypeOf(field);
    for (const [k, item] of Object.entries(value as Record<string, unknown>)) {
      checkMapKey(keyType, k, `${path}[${JSON.stringify(k)}]`);
      out[k] = normaliseElement(field, item, `${path}[${JSON.stringify(k)}]`);
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw bad(path, 'expected an array (a repeated field)', value);
    return value.map((item, i) => normaliseElement(field, item, `${path}[${i}]`));
  }
  return normaliseElement(field, value, path);
}

function checkMapKey(keyType: string, key: string, path: string): void {
  if (keyType === 'string') return;
  if (keyType === 'bool' ? key === 'true' || key === 'false' : INT64_TEXT.test(key)) return;
  throw bad(path, `expected a map key of type ${keyType}`, key);
}

/** One case per Protobuf scalar type. */
function normaliseElement(field: protobuf.Field, value: unknown, path: string): unknown {
  const kind = kindOf(field);
  switch (kind) {
    case 'message':
      return normaliseMessage(field.resolvedType as protobuf.Type, value, path);
    case 'enum':
      return enumNumber(field.resolvedType as protobuf.Enum, value, path, field);
    case 'string':
      if (typeof value !== 'string') throw bad(path, 'expected a string', value);
      return value;
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string' && BASE64.test(value)) return Buffer.from(value, 'base64');
      throw bad(path, 'expected bytes (a base64 string or a Uint8Array)', value);
    case 'bool':
      if (typeof value !== 'boolean') throw bad(path, 'expected true or false', value);
      return value;
    case 'float':
    case 'double':
      if (typeof value !== 'number') throw bad(path, `expected a number (${kind})`, value);
      return value;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return integer(value, INT32_MIN, INT32_MAX, kind, path);
    case 'uint32':
    case 'fixed32':
      return integer(value, 0, UINT32_MAX, kind, path);
    default:
      return long(value, kind === 'uint64' || kind === 'fixed64', kind, path);
  }
}

function integer(value: unknown, min: number, max: number, kind: string, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(path, `expected an integer from ${min} to ${max} (${kind})`, value);
  }
  return value;
}

/** A 64-bit integer as protobufjs's writer takes it: a number when safe, else a decimal string. */
function long(value: unknown, unsigned: boolean, kind: string, path: string): number | string {
  const min = unsigned ? 0n : -(2n ** 63n);
  const max = unsigned ? 2n ** 64n - 1n : 2n ** 63n - 1n;
  let big: bigint | null = null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else if (typeof value === 'bigint') big = value;
  else if (typeof value === 'string' && INT64_TEXT.test(value)) big = BigInt(value);
  if (big === null || big < min || big > max) {
    throw bad(path, `expected a ${kind}: a safe integer, a decimal string or a bigint from ${min} to ${max}`, value);
  }
  return typeof value === 'number' ? value : big.toString();
}

function enumNumber(type: protobuf.Enum, value: unknown, path: string, field: protobuf.Field): number {
  if (typeof value === 'string' && type.values[value] !== undefined) return type.values[value];
  const open = field.parent instanceof protobufjs().Type && isOpenEnum(type);
  if (typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) {
    if (open || type.valuesById[value] !== undefined) return value;
  }
  const names = Object.keys(type.values).join(', ');
  throw bad(path, `expected a value of enum ${type.fullName.slice(1)} (${names})`, value);
}

/** proto3 enums accept numbers they do not name; proto2 enums are closed. */
function isOpenEnum(type: protobuf.Enum): boolean {
  const features = (type as unknown as { _features?: { enum_type?: string } })._features;
  return features?.enum_type === 'OPEN';
}

function bad(path: string, expected: string, value: unknown): Error {
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value.slice(0, 40))
      : typeof value === 'bigint'
        ? `${value}n`
        : JSON.stringify(value);
  return violation(`${path}: ${expected}, got ${shown ?? String(value)}.`, { path });
}
