/**
 * The avsc types Kappa encodes and decodes with (issue 17): avsc's own, adjusted through its
 * `typeHook` so that decoded values are plain JSON-ready objects and garbage cannot exhaust memory.
 *
 * - records decode as plain objects (`Object.prototype`), fields in schema order;
 * - `bytes` and `fixed` decode as base64 strings (and encode from base64 strings or Buffers);
 * - `decimal` (on bytes or fixed, valid precision/scale) decodes as a decimal string ("-12.50"),
 *   and two decimals resolve only when precision and scale agree (the specification's rule);
 * - a union decodes unwrapped (`null`, `"x"`, `{...}`) when no two branches look alike in
 *   JavaScript, and otherwise wrapped as Avro's JSON encoding does: `{"string": "x"}` (plain object);
 * - long reads and writes exactly over avsc's whole range ±(2^53 − 2): avsc's float arithmetic
 *   turns a negative long below −2^52 into a different number (−(2^53 − 2) decodes as +(2^53 − 2)),
 *   so values beyond ±2^52 take an exact BigInt path (the interop test caught it against Python);
 * - array and map blocks announcing more items than the bytes left could hold are refused before
 *   anything is allocated (avsc would loop up to 2^53 times on a garbage count).
 *
 * This reaches into avsc 5.x internals (`_read`, `_skip`, `_update`, `Tap`, `_createConstructor`);
 * avro.test.ts pins each behaviour, so an avsc upgrade that changes them fails there, not in production.
 */
import type avsc from 'avsc';
import { avscjs } from './libs.ts';

type AvscType = avsc.Type;

/** avsc's reading cursor. */
export interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
}
interface Readable {
  _read(tap: Tap): unknown;
  _skip?(tap: Tap): void;
}
/** avsc's Resolver while `_update` fills it in. */
interface ResolverSlot {
  _read: ((tap: Tap) => unknown) | null;
  itemsType: unknown;
  valuesType: unknown;
}
interface Internal {
  typeName: string;
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
  underlyingType?: AvscType;
  itemsType?: AvscType;
  valuesType?: AvscType;
  types?: AvscType[];
  fields?: { type: AvscType }[];
  size?: number;
  branchName?: string;
}
const internal = (t: unknown): Internal => t as Internal;

/** Items in one block whose type takes no bytes (an array of nulls): more is garbage, not data. */
const ZERO_SIZE_ITEMS_MAX = 1 << 20;

/** Options for `Type.forSchema`: Kappa's hooks plus the shared registry of named types. */
export function avscOptions(registry: Record<string, AvscType>): Partial<avsc.ForSchemaOptions> {
  const { ExactLongType, Base64Type, DecimalType, PlainRecordType, BoundedArrayType, BoundedMapType, unionType } =
    avroTypes();
  let constructing: unknown = null;
  const typeHook = (schema: unknown, opts: avsc.ForSchemaOptions): AvscType | undefined => {
    if (schema === constructing) return undefined;
    if (Array.isArray(schema)) return unionType(schema, opts);
    const obj: Record<string, unknown> | null =
      schema === 'bytes'
        ? { type: 'bytes' }
        : typeof schema === 'object' && schema !== null
          ? (schema as Record<string, unknown>)
          : null;
    if (obj === null) return undefined;
    const build = (Ctor: new (s: unknown, o: unknown) => AvscType): AvscType => {
      constructing = obj;
      try {
        return new Ctor(obj, opts);
      } finally {
        constructing = null;
      }
    };
    switch (obj.type) {
      case 'long':
        return new ExactLongType() as unknown as AvscType;
      case 'bytes':
      case 'fixed':
        return build(
          (isValidDecimal(obj) ? DecimalType : Base64Type) as unknown as new (s: unknown, o: unknown) => AvscType,
        );
      case 'record':
      case 'error':
        return new PlainRecordType(obj as unknown as avsc.Schema, opts) as unknown as AvscType;
      case 'array':
        return new BoundedArrayType(obj as unknown as avsc.Schema, opts) as unknown as AvscType;
      case 'map':
        return new BoundedMapType(obj as unknown as avsc.Schema, opts) as unknown as AvscType;
      default:
        return undefined;
    }
  };
  return { registry, typeHook, omitRecordMethods: true };
}

/** Below this magnitude avsc's float varint arithmetic is exact (a zigzag value under 2^53). */
const LONG_FAST_MAX = 2 ** 52;
/** avsc's range for a long held in a number. */
const LONG_MAX = 2 ** 53 - 2;

function readLongExactly(tap: Tap): number {
  let zigzag = 0n;
  let shift = 0n;
  for (;;) {
    const byte = tap.buf[tap.pos++];
    if (byte === undefined) return 0; // Past the end: the tap is now invalid, and the caller reports truncation.
    zigzag |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0 || shift >= 70n) break;
  }
  const value = (zigzag >> 1n) ^ -(zigzag & 1n);
  if (value > BigInt(LONG_MAX) || value < -BigInt(LONG_MAX)) throw new Error(`long ${value} is beyond ±(2^53 − 2)`);
  return Number(value);
}

function isValidDecimal(obj: Record<string, unknown>): boolean {
  if (obj.logicalType !== 'decimal') return false;
  const precision = obj.precision;
  const scale = obj.scale ?? 0;
  if (!Number.isInteger(precision) || (precision as number) < 1) return false;
  if (!Number.isInteger(scale) || (scale as number) < 0 || (scale as number) > (precision as number)) return false;
  if (obj.type === 'fixed') {
    const size = obj.size as number;
    return (precision as number) <= Math.floor(Math.log10(2) * (8 * size - 1));
  }
  return true;
}

export function twosComplementToBigInt(buf: Buffer): bigint {
  if (buf.length === 0) return 0n;
  let n = BigInt(`0x${buf.toString('hex')}`);
  if (buf[0] & 0x80) n -= 1n << BigInt(buf.length * 8);
  return n;
}

export function bigIntToTwosComplement(n: bigint, size?: number): Buffer | undefined {
  let len = 1;
  while (n >= 1n << BigInt(8 * len - 1) || n < -(1n << BigInt(8 * len - 1))) len++;
  if (size !== undefined) {
    if (len > size) return undefined;
    len = size;
  }
  const unsigned = n < 0n ? (1n << BigInt(8 * len)) + n : n;
  return Buffer.from(unsigned.toString(16).padStart(len * 2, '0'), 'hex');
}

function formatDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** "12.5" with scale 2 → 1250n; undefined when not a decimal, too many fraction digits, or too many digits. */
function parseDecimal(value: unknown, precision: number, scale: number): bigint | undefined {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') return undefined;
  const match = /^([+-]?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (match === null) return undefined;
  const fraction = (match[3] ?? '').replace(/0+$/, '');
  if (fraction.length > scale) return undefined;
  const digits = `${match[2]}${fraction.padEnd(scale, '0')}`.replace(/^0+(?=\d)/, '');
  if (digits.length > precision) return undefined;
  const n = BigInt(digits);
  return match[1] === '-' ? -n : n;
}

function wrap(type: AvscType, value: unknown): unknown {
  const name = type.branchName as string;
  return name === 'null' ? null : { [name]: value };
}

/** How few bytes one value of `type` can take (0 for null, records of nulls, fixed(0)). */
function minBytes(type: AvscType, seen = new Set<AvscType>()): number {
  const t = internal(type);
  if (t.underlyingType) return minBytes(t.underlyingType, seen);
  switch (t.typeName) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return t.size as number;
    case 'record':
    case 'error':
      if (seen.has(type)) return 0;
      seen.add(type);
      return (t.fields ?? []).reduce((sum, f) => sum + minBytes(f.type, seen), 0);
    default:
      return 1;
  }
}

/**
 * Refuses a block count the remaining bytes cannot hold, before any allocation or loop.
 * `itemBytes` is the fewest bytes one item takes (computed only when the count looks suspicious).
 */
function checkBlock(n: number, tap: Tap, itemBytes: () => number, what: string): void {
  const left = tap.buf.length - tap.pos;
  if (n <= left) return;
  const size = itemBytes();
  const limit = size === 0 ? ZERO_SIZE_ITEMS_MAX : Math.floor(left / size);
  if (n > limit) throw new Error(`${what} block announces ${n} items but only ${left} bytes are left`);
}

const ONE_BYTE = (): number => 1;

function blockCount(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong();
  }
  return n;
}

function readArray(tap: Tap, items: Readable, writerItems: AvscType): unknown[] {
  const out: unknown[] = [];
  for (let n = blockCount(tap); n !== 0; n = blockCount(tap)) {
    checkBlock(n, tap, () => minBytes(writerItems), 'array');
    for (let i = 0; i < n; i++) out.push(items._read(tap));
  }
  return out;
}

function readMap(tap: Tap, values: Readable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let n = blockCount(tap); n !== 0; n = blockCount(tap)) {
    // Each entry starts with its key's length, so it takes at least one byte.
    checkBlock(n, tap, ONE_BYTE, 'map');
    for (let i = 0; i < n; i++) {
      const key = tap.readString();
      const value = values._read(tap);
      if (key === '__proto__')
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
  }
  return out;
}

/** Skips array or map blocks (a negative count is followed by the block's size in bytes). */
function skipBlocks(tap: Tap, skipOne: () => void, itemBytes: () => number, what: string): void {
  for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
    if (n < 0) {
      tap.pos += tap.readLong();
      continue;
    }
    checkBlock(n, tap, itemBytes, what);
    for (let i = 0; i < n; i++) skipOne();
  }
}

/**
 * Kappa's avsc types, defined the first time a schema is built: they extend avsc's own classes,
 * and avsc is loaded only when a topic uses Avro (libs.ts).
 */
let kappaTypes: AvroTypes | undefined;
const avroTypes = (): AvroTypes => (kappaTypes ??= defineTypes(avscjs()));
type AvroTypes = ReturnType<typeof defineTypes>;

// eslint-disable-next-line max-lines-per-function -- subclasses of avsc's classes exist only once avsc is loaded: one scope
function defineTypes(lib: typeof avsc) {
  const { Type, types } = lib;

  /** avsc's long, with an exact path for magnitudes beyond 2^52 (see the header). */
  class ExactLongType extends types.LongType {
    _read(tap: Tap): number {
      const start = tap.pos;
      const n = tap.readLong();
      if (n < LONG_FAST_MAX && n > -LONG_FAST_MAX) return n;
      tap.pos = start;
      return readLongExactly(tap);
    }
    _write(tap: Tap & { writeLong(n: number): void }, value: number): void {
      if (typeof value !== 'number' || !Number.isInteger(value) || value > LONG_MAX || value < -LONG_MAX) {
        throw new Error(`invalid "long": ${JSON.stringify(value)}`);
      }
      if (value < LONG_FAST_MAX && value > -LONG_FAST_MAX) return tap.writeLong(value);
      const big = BigInt(value);
      let zigzag = big >= 0n ? big << 1n : (-big << 1n) - 1n;
      while (zigzag >= 0x80n) {
        tap.buf[tap.pos++] = Number(zigzag & 0x7fn) | 0x80;
        zigzag >>= 7n;
      }
      tap.buf[tap.pos++] = Number(zigzag);
    }
  }

  /** Builds a union wrapped or unwrapped, judging "looks alike" by the values Kappa produces. */
  function unionType(schema: unknown[], opts: avsc.ForSchemaOptions): AvscType {
    const branches = schema.map((s) => Type.forSchema(s as avsc.Schema, opts));
    const buckets = branches.map(bucket);
    const ambiguous = new Set(buckets).size < buckets.length;
    const Ctor = (ambiguous ? PlainWrappedUnionType : types.UnwrappedUnionType) as unknown as new (
      s: unknown,
      o: unknown,
    ) => AvscType;
    return new Ctor(branches, opts);
  }

  function bucket(type: AvscType): string {
    if (type instanceof BufferLogicalType) return 'string';
    switch (internal(type).typeName) {
      case 'int':
      case 'long':
      case 'float':
      case 'double':
        return 'number';
      case 'enum':
      case 'string':
        return 'string';
      case 'map':
      case 'record':
      case 'error':
        return 'object';
      default:
        return internal(type).typeName;
    }
  }

  /** A logical type over bytes or fixed: resolves as its base type does, then converts the Buffer. */
  abstract class BufferLogicalType extends types.LogicalType {
    _update(resolver: ResolverSlot, writer: AvscType, opts: unknown): void {
      if (!this.readsFrom(writer)) return;
      const base = writer instanceof BufferLogicalType ? writer.underlyingType : writer;
      const inner = this.underlyingType.createResolver(base, opts as avsc.CreateResolverOptions) as unknown as Readable;
      resolver._read = (tap) => this._fromValue(inner._read(tap));
    }
    protected readsFrom(_writer: AvscType): boolean {
      return true;
    }
  }

  class Base64Type extends BufferLogicalType {
    protected override _fromValue(value: Buffer): string {
      return value.toString('base64');
    }
    protected override _toValue(value: unknown): Buffer | undefined {
      if (Buffer.isBuffer(value)) return value;
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
        return undefined;
      return Buffer.from(value, 'base64');
    }
    protected override _resolve(): undefined {
      return undefined;
    }
  }

  class DecimalType extends BufferLogicalType {
    readonly precision: number;
    readonly scale: number;
    constructor(schema: Record<string, unknown>, opts: unknown) {
      super(schema as avsc.Schema, opts);
      // avsc leaves logical types unfrozen, so the parameters can be set after its constructor.
      this.precision = schema.precision as number;
      this.scale = (schema.scale as number | undefined) ?? 0;
    }
    protected override readsFrom(writer: AvscType): boolean {
      return !(writer instanceof DecimalType) || (writer.precision === this.precision && writer.scale === this.scale);
    }
    protected override _fromValue(value: Buffer): string {
      return formatDecimal(twosComplementToBigInt(value), this.scale);
    }
    protected override _toValue(value: unknown): Buffer | undefined {
      const unscaled = parseDecimal(value, this.precision, this.scale);
      if (unscaled === undefined) return undefined;
      return bigIntToTwosComplement(unscaled, internal(this.underlyingType).size);
    }
    protected override _resolve(): undefined {
      return undefined;
    }
    protected override _export(schema: avsc.Schema): void {
      const attrs = schema as unknown as Record<string, unknown>;
      attrs.precision = this.precision;
      attrs.scale = this.scale;
    }
  }

  /** Records as plain objects: avsc calls this constructor with `new`, and a constructor may return an object. */
  class PlainRecordType extends types.RecordType {
    _createConstructor(): (...values: unknown[]) => Record<string, unknown> {
      const fields = (this as unknown as { fields: avsc.types.Field[] }).fields;
      const defaults: (() => unknown)[] = [];
      const entries = fields.map((field, i) => {
        const key = field.name === '__proto__' ? '["__proto__"]' : field.name;
        if (field.defaultValue() === undefined) return `${key}: v${i}`;
        defaults.push(() => field.defaultValue());
        return `${key}: v${i} === undefined ? d${defaults.length - 1}() : v${i}`;
      });
      const args = fields.map((_, i) => `v${i}`).join(', ');
      const body = `return function PlainRecord(${args}) { return { ${entries.join(', ')} }; };`;
      return new Function(...defaults.map((_, i) => `d${i}`), body)(...defaults);
    }
  }

  /** Wrapped unions as plain `{ branch: value }` objects (null stays null). */
  class PlainWrappedUnionType extends types.WrappedUnionType {
    /** avsc builds defaults (and clones) with its Branch objects; Kappa's values are plain. */
    _copy(value: unknown, opts: unknown): unknown {
      const copy = (
        types.WrappedUnionType.prototype as unknown as { _copy(v: unknown, o: unknown): unknown }
      )._copy.call(this, value, opts);
      return copy !== null && typeof copy === 'object' ? { ...copy } : copy;
    }
    _read(tap: Tap): unknown {
      const branches = internal(this).types as AvscType[];
      const index = tap.readLong();
      const type = branches[index];
      if (type === undefined) throw new Error(`invalid union index ${index}`);
      return wrap(type, internal(type)._read(tap));
    }
    _update(resolver: ResolverSlot, writer: AvscType, opts: unknown): void {
      for (const type of internal(this).types as AvscType[]) {
        let inner: Readable;
        try {
          inner = type.createResolver(writer, opts as avsc.CreateResolverOptions) as unknown as Readable;
        } catch {
          continue;
        }
        resolver._read = (tap) => wrap(type, inner._read(tap));
        return;
      }
    }
  }

  class BoundedArrayType extends types.ArrayType {
    _read(tap: Tap): unknown[] {
      const items = internal(this).itemsType as AvscType;
      return readArray(tap, items as unknown as Readable, items);
    }
    _skip(tap: Tap): void {
      const items = internal(this).itemsType as AvscType;
      skipBlocks(
        tap,
        () => internal(items)._skip(tap),
        () => minBytes(items),
        'array',
      );
    }
    _update(resolver: ResolverSlot, writer: AvscType, opts: unknown): void {
      const w = internal(writer);
      if (w.typeName !== 'array') return;
      const own = internal(this).itemsType as AvscType;
      const items = own.createResolver(
        w.itemsType as AvscType,
        opts as avsc.CreateResolverOptions,
      ) as unknown as Readable;
      resolver.itemsType = items;
      resolver._read = (tap) => readArray(tap, items, w.itemsType as AvscType);
    }
  }

  class BoundedMapType extends types.MapType {
    _read(tap: Tap): Record<string, unknown> {
      return readMap(tap, internal(this).valuesType as unknown as Readable);
    }
    _skip(tap: Tap): void {
      const values = internal(internal(this).valuesType);
      const skipEntry = (): void => {
        const keyBytes = tap.readLong();
        tap.pos += keyBytes < 0 ? tap.buf.length : keyBytes;
        values._skip(tap);
      };
      skipBlocks(tap, skipEntry, ONE_BYTE, 'map');
    }
    _update(resolver: ResolverSlot, writer: AvscType, opts: unknown): void {
      const w = internal(writer);
      if (w.typeName !== 'map') return;
      const own = internal(this).valuesType as AvscType;
      const values = own.createResolver(
        w.valuesType as AvscType,
        opts as avsc.CreateResolverOptions,
      ) as unknown as Readable;
      resolver.valuesType = values;
      resolver._read = (tap) => readMap(tap, values);
    }
  }

  return { ExactLongType, Base64Type, DecimalType, PlainRecordType, BoundedArrayType, BoundedMapType, unionType };
}
