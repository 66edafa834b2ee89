/**
 * Compiles one API table for one version into a plan: per struct, the fields in declaration order,
 * each resolved once for that version (present or not, tagged or not, nullable or not, compact or
 * not, its default). The codec (codec.ts) then walks plans with no version arithmetic on the hot path.
 */
import type { DefaultValue, FieldSpec, FieldType } from './types.ts';
import { inVersions } from './versions.ts';

export const K_BOOL = 0;
export const K_INT8 = 1;
export const K_INT16 = 2;
export const K_UINT16 = 3;
export const K_INT32 = 4;
export const K_UINT32 = 5;
export const K_INT64 = 6;
export const K_FLOAT64 = 7;
export const K_UUID = 8;
export const K_STRING = 9;
export const K_BYTES = 10;
export const K_RECORDS = 11;
export const K_ARRAY = 12;
export const K_STRUCT = 13;

const KINDS: Record<string, number> = {
  bool: K_BOOL,
  int8: K_INT8,
  int16: K_INT16,
  uint16: K_UINT16,
  int32: K_INT32,
  uint32: K_UINT32,
  int64: K_INT64,
  float64: K_FLOAT64,
  uuid: K_UUID,
  string: K_STRING,
  bytes: K_BYTES,
  records: K_RECORDS,
  struct: K_STRUCT,
};

/** The fewest bytes a value of each fixed or length-prefixed kind takes (non-compact, compact). */
const MIN_BYTES: Record<number, [number, number]> = {
  [K_BOOL]: [1, 1],
  [K_INT8]: [1, 1],
  [K_INT16]: [2, 2],
  [K_UINT16]: [2, 2],
  [K_INT32]: [4, 4],
  [K_UINT32]: [4, 4],
  [K_INT64]: [8, 8],
  [K_FLOAT64]: [8, 8],
  [K_UUID]: [16, 16],
  [K_STRING]: [2, 1],
  [K_BYTES]: [4, 1],
  [K_RECORDS]: [4, 1],
  [K_ARRAY]: [4, 1],
};

export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

export interface Step {
  readonly name: string;
  /** Where the field sits in the message, for error messages: 'topics[].partitions[].records'. */
  readonly path: string;
  readonly kind: number;
  /** Present in this version (absent fields still get their default when decoding). */
  readonly present: boolean;
  readonly tagged: boolean;
  readonly tag: number;
  readonly nullable: boolean;
  /** Flexible version: compact lengths. */
  readonly compact: boolean;
  /** A scalar default; arrays, structs and bytes are built fresh by defaultOf. */
  readonly defaultValue: DefaultValue;
  /** The default is null: the field is nullable here (or absent) and the spec's default is null. */
  readonly nullDefault: boolean;
  /** The element of an array. */
  readonly elem: Step | null;
  /** The fields of a struct, or of a struct array's elements. */
  readonly struct: StructPlan | null;
  /** The fewest bytes this value takes on the wire (0 when tagged or absent). */
  readonly minBytes: number;
}

export interface StructPlan {
  /** Every field in declaration order; decoding fills each (from the wire or its default). */
  readonly fields: readonly Step[];
  /** The fields on the wire before the tagged section, in order. */
  readonly wire: readonly Step[];
  /** The tagged fields of this version, by ascending tag. */
  readonly tagged: readonly Step[];
  readonly byTag: ReadonlyMap<number, Step>;
  readonly flexible: boolean;
  readonly minBytes: number;
  /**
   * Builds the decoded object: `read(step)` for each field in declaration order, as one object
   * literal, so every decoded struct of a plan has the same shape (V8 keeps it fast; assigning the
   * fields one by one by name was a third of the decode time of a Produce request).
   */
  readonly build: Build;
  /** Calls `write(step, value)` for each field on the wire, in order, reading the values by name. */
  readonly writeWire: WriteWire;
}

export type WriteWire = <W>(
  writer: W,
  write: (writer: W, step: Step, value: unknown) => void,
  steps: readonly Step[],
  o: Record<string, unknown>,
) => void;

function compileWriteWire(wire: readonly Step[]): WriteWire {
  const calls = wire.map((s, i) => `write(w, steps[${i}], o[${JSON.stringify(s.name)}]);`);
  return new Function('w', 'write', 'steps', 'o', calls.join('\n')) as WriteWire;
}

export type Build = <R>(
  reader: R,
  read: (reader: R, step: Step) => unknown,
  steps: readonly Step[],
) => Record<string, unknown>;

function compileBuild(steps: readonly Step[]): Build {
  const props = steps.map((s, i) => `${JSON.stringify(s.name)}: read(r, steps[${i}])`);
  return new Function('r', 'read', 'steps', `return { ${props.join(', ')} };`) as Build;
}

export function compileStruct(fields: readonly FieldSpec[], version: number, flexible: boolean, path = ''): StructPlan {
  const steps = fields.map((f) => compileField(f, version, flexible, path));
  const wire = steps.filter((s) => s.present && !s.tagged);
  const tagged = steps.filter((s) => s.present && s.tagged).sort((a, b) => a.tag - b.tag);
  const byTag = new Map<number, Step>();
  for (const s of tagged) {
    if (byTag.has(s.tag)) throw new Error(`tag ${s.tag} used twice in ${path || 'the message'} (version ${version})`);
    byTag.set(s.tag, s);
  }
  const minBytes = wire.reduce((sum, s) => sum + s.minBytes, 0) + (flexible ? 1 : 0);
  return {
    fields: steps,
    wire,
    tagged,
    byTag,
    flexible,
    minBytes,
    build: compileBuild(steps),
    writeWire: compileWriteWire(wire),
  };
}

/** Field names become property names in generated code (compileBuild): plain identifiers only. */
const FIELD_NAME = /^[a-z][A-Za-z0-9]*$/;

function compileField(f: FieldSpec, version: number, flexible: boolean, parent: string): Step {
  const path = parent ? `${parent}.${f.name}` : f.name;
  if (!FIELD_NAME.test(f.name)) throw new Error(`${path}: a field name must be a lowerCamelCase identifier`);
  const present = inVersions(version, f.versions);
  const tagged = present && inVersions(version, f.taggedVersions);
  if (tagged && !flexible) throw new Error(`${path} is tagged in version ${version}, which is not flexible`);
  if (tagged && f.tag === undefined) throw new Error(`${path} is tagged but has no tag`);
  const nullable = present && inVersions(version, f.nullableVersions);
  const type: FieldType = f.type;
  let kind: number;
  let elem: Step | null = null;
  let struct: StructPlan | null = null;
  if (type === '[]struct' || type === 'struct') {
    if (!f.fields) throw new Error(`${path} is a ${type} without fields`);
    struct = compileStruct(f.fields, version, flexible, type === '[]struct' ? `${path}[]` : path);
  }
  if (type.startsWith('[]')) {
    kind = K_ARRAY;
    elem = compileElement(type.slice(2), struct, flexible, `${path}[]`);
  } else {
    kind = KINDS[type];
    if (kind === undefined) throw new Error(`${path} has an unknown type '${type}'`);
  }
  const defaultValue = resolveDefault(f, kind, nullable);
  const nullDefault = nullable ? f.default === undefined || f.default === null : !present && f.default === null;
  const minBytes = !present || tagged ? 0 : fieldMinBytes(kind, nullable, flexible, struct);
  const base = { name: f.name, path, kind, present, tagged, tag: f.tag ?? -1, nullable, compact: flexible };
  return { ...base, defaultValue, nullDefault, elem, struct, minBytes };
}

function compileElement(type: string, struct: StructPlan | null, flexible: boolean, path: string): Step {
  const kind = type === 'struct' ? K_STRUCT : KINDS[type];
  if (kind === undefined || kind === K_RECORDS) throw new Error(`${path} has an unknown element type '${type}'`);
  const defaultValue = resolveDefault(undefined, kind, false);
  const minBytes = Math.max(1, fieldMinBytes(kind, false, flexible, struct));
  const base = { name: '', path, kind, present: true, tagged: false, tag: -1, nullable: false, compact: flexible };
  return { ...base, defaultValue, nullDefault: false, elem: null, struct, minBytes };
}

function fieldMinBytes(kind: number, nullable: boolean, flexible: boolean, struct: StructPlan | null): number {
  if (kind === K_STRUCT) return nullable ? 1 : struct!.minBytes;
  return MIN_BYTES[kind][flexible ? 1 : 0];
}

function resolveDefault(f: FieldSpec | undefined, kind: number, nullable: boolean): DefaultValue {
  if (f?.default !== undefined && (f.default !== null || nullable)) return f.default;
  if (nullable) return null;
  switch (kind) {
    case K_BOOL:
      return false;
    case K_STRING:
      return '';
    case K_UUID:
      return ZERO_UUID;
    case K_BYTES:
    case K_RECORDS:
    case K_ARRAY:
    case K_STRUCT:
      return null; // built fresh by defaultOf
    default:
      return 0;
  }
}

const EMPTY = Buffer.alloc(0);

/** A field's default value; arrays and structs are built fresh, since callers may change them. */
export function defaultOf(step: Step): unknown {
  if (step.nullDefault) return null;
  switch (step.kind) {
    case K_BYTES:
    case K_RECORDS:
      return EMPTY;
    case K_ARRAY:
      return [];
    case K_STRUCT:
      return defaultStruct(step.struct!);
    default:
      return step.defaultValue;
  }
}

export function defaultStruct(plan: StructPlan): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of plan.fields) out[s.name] = defaultOf(s);
  return out;
}

/** Whether a tagged field's value equals its default, in which case it is left off the wire. */
export function isDefault(step: Step, v: unknown): boolean {
  if (v === undefined) return true;
  if (step.nullDefault) return v === null;
  if (v === null) return false;
  switch (step.kind) {
    case K_BYTES:
    case K_RECORDS:
      return Buffer.isBuffer(v) && v.length === 0;
    case K_ARRAY:
      return Array.isArray(v) && v.length === 0;
    case K_STRUCT:
      for (const s of step.struct!.fields)
        if (s.present && !isDefault(s, (v as Record<string, unknown>)[s.name])) return false;
      return true;
    case K_UUID:
      return typeof v === 'string' && v.replace(/-/g, '').toLowerCase() === ZERO_UUID.replace(/-/g, '');
    default:
      return v === step.defaultValue;
  }
}
