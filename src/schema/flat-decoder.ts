/**
 * A fast path for the commonest record shape: a JSON object whose properties are all declared by
 * the topic's schema with a scalar type (string, integer, number, boolean), written compactly
 * (as JSON.stringify writes it). `compileFlatDecoder` returns a function that scans the bytes once
 * and builds the same object `JSON.parse` would (same properties, same order, same values). The
 * schema may also be a top-level anyOf of such objects (a topic of several event types).
 *
 * Two ways, tried in turn. First the shapes (src/schema/flat-shapes.ts): a function generated per
 * key order seen, which also checks the values against the schema, so the caller need not validate
 * them again (`lastChecked`). Then the general way: keys in any order, found by name, values of
 * any scalar type; the caller validates its object against the schema. Each order the general way
 * meets is compiled into a shape when a branch of the schema admits it (at most MAX_SHAPES), and
 * the record that taught it is read again by it, checked.
 *
 * It is only a fast path: whenever a value is not in the simple form it handles (whitespace,
 * escapes or non-ASCII in strings, nested values, null, keys the schema does not declare,
 * duplicate keys, anything malformed) it returns `undefined` and the caller decodes with
 * `JSON.parse`, whose result or error then stands. src/schema/flat-decoder.test.ts checks it
 * against `JSON.parse` and the schema's own validation on generated input.
 */
import { type FlatType, Interner, type ShapeDecoder, compileShape } from './flat-shapes.ts';

/**
 * Decodes `buf[start, end)`, or returns undefined when the value is not in the simple form.
 * `lastChecked` says whether the last object returned already satisfies the schema (it came from
 * a shape, src/schema/flat-shapes.ts); when false the caller validates it.
 */
export interface FlatDecoder {
  (buf: Uint8Array, start: number, end: number): Record<string, unknown> | undefined;
  readonly lastChecked: boolean;
  /**
   * True when the schema holds no keyword but those the shapes check and plain annotations (no
   * `$schema`, no `$id`): compiling it with ajv cannot fail, so a caller may leave that until a
   * record needs it.
   */
  readonly coversSchema: boolean;
}

const MAX_KEYS = 30;
/** Shapes compiled per decoder, and key orders looked at (a topic whose orders vary takes the general way). */
const MAX_SHAPES = 8;
const MAX_ORDERS_SEEN = 32;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (start: number, end: number) => string })
  .latin1Slice;

type JsonObject = Record<string, unknown>;

/** Keywords that say nothing about a value (annotations), which a shape may ignore. */
const ANNOTATIONS = new Set(['title', 'description', '$comment', 'examples', 'default', '$id', '$schema']);
/** The keywords a shape's checks cover, on the object and on each property. */
const OBJECT_KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties', ...ANNOTATIONS]);
const PROPERTY_KEYWORDS = new Set(['type', 'const', ...ANNOTATIONS]);

function isFlatType(t: unknown): t is FlatType {
  return t === 'string' || t === 'integer' || t === 'number' || t === 'boolean';
}

/** The branches of the schema: itself when an object, the objects of a top-level anyOf; null otherwise. */
function objectBranches(schema: JsonObject): JsonObject[] | null {
  if (schema.type === 'object') return [schema];
  if (!Array.isArray(schema.anyOf) || schema.anyOf.length === 0) return null;
  if (Object.keys(schema).some((k) => k !== 'anyOf' && !ANNOTATIONS.has(k))) return null;
  const branches = schema.anyOf as unknown[];
  return branches.every((b) => b !== null && typeof b === 'object' && (b as JsonObject).type === 'object')
    ? (branches as JsonObject[])
    : null;
}

/** Every property name of the branches with its type, or null when one is not a scalar or two disagree. */
function flatNames(branches: JsonObject[]): Map<string, FlatType> | null {
  const names = new Map<string, FlatType>();
  for (const branch of branches) {
    const props = branch.properties as Record<string, { type?: unknown }> | undefined;
    if (props === null || typeof props !== 'object') return null;
    for (const [name, prop] of Object.entries(props)) {
      const t = prop?.type;
      if (!isFlatType(t) || (names.has(name) && names.get(name) !== t)) return null;
      // Printable ASCII with nothing to escape; and not __proto__, which an assignment would not create as JSON.parse does.
      if (!/^[\x20-\x7e]*$/.test(name) || name.includes('"') || name.includes('\\') || name === '__proto__')
        return null;
      names.set(name, t);
    }
  }
  return names.size === 0 || names.size > MAX_KEYS ? null : names;
}

/**
 * The branch whose checks a shape of `out`'s keys can do all of itself (see flat-shapes.ts), or
 * null: every key one of its properties, every required key among them, no keyword a shape does
 * not check, on the branch or on its properties, and its constants those of `out` (so branches
 * with the same keys, told apart by a `type` constant, each get their shape).
 */
function shapeBranch(branches: JsonObject[], out: JsonObject): JsonObject | null {
  const keys = Object.keys(out);
  for (const branch of branches) {
    if (Object.keys(branch).some((k) => !OBJECT_KEYWORDS.has(k))) continue;
    const props = branch.properties as Record<string, JsonObject>;
    const required = Array.isArray(branch.required) ? (branch.required as unknown[]) : [];
    if (!keys.every((k) => Object.hasOwn(props, k)) || !required.every((r) => keys.includes(r as string))) continue;
    const simple = keys.every((k) => {
      const prop = props[k];
      if (Object.keys(prop).some((w) => !PROPERTY_KEYWORDS.has(w))) return false;
      if (!('const' in prop)) return true;
      const c = prop.const;
      if (c !== out[k]) return false;
      if (prop.type === 'string') return typeof c === 'string' && /^[\x20-\x7e]*$/.test(c) && !/["\\]/.test(c);
      return prop.type === 'boolean' ? typeof c === 'boolean' : typeof c === 'number' && Number.isFinite(c);
    });
    if (simple) return branch;
  }
  return null;
}

/** See FlatDecoder.coversSchema. */
function coversSchema(schema: JsonObject, branches: JsonObject[]): boolean {
  const plain = (keys: string[], allowed: Set<string>): boolean =>
    keys.every((k) => allowed.has(k) && k !== '$schema' && k !== '$id');
  if (schema !== branches[0] && !plain(Object.keys(schema), new Set(['anyOf', ...ANNOTATIONS]))) return false;
  return branches.every(
    (b) =>
      plain(Object.keys(b), OBJECT_KEYWORDS) &&
      (typeof b.additionalProperties === 'boolean' || b.additionalProperties === undefined) &&
      Object.values(b.properties as Record<string, JsonObject>).every((p) => plain(Object.keys(p), PROPERTY_KEYWORDS)),
  );
}

/**
 * The decoder for `schema`, or null when the schema is not a flat object of scalar properties
 * (or a top-level anyOf of such objects whose shared names have one type). With `read`, the
 * names of the only properties the caller will ever read: the shapes' objects hold just those
 * (each value still checked); the general way's objects hold every property, as JSON.parse's.
 */
export function compileFlatDecoder(schema: object, read: ReadonlySet<string> | null = null): FlatDecoder | null {
  const branches = objectBranches(schema as JsonObject);
  const types = branches === null ? null : flatNames(branches);
  if (branches === null || types === null) return null;
  const names = [...types.keys()];
  const decodeFlat = generalDecoder(names);
  const interners = new Map(names.map((n) => [n, new Interner()]));
  const shapes: ShapeDecoder[] = [];
  const ordersSeen = new Set<string>();
  let last = 0;
  let checked = false;

  /** Compiles the shape of `out` (an object the general way made) when a branch admits it. */
  function learn(out: JsonObject): void {
    const keys = Object.keys(out);
    if (keys.length === 0 || ordersSeen.size >= MAX_ORDERS_SEEN) return;
    const branch = shapeBranch(branches!, out);
    // Once per key order and branch (a record no branch admits, or one a shape refused for a value
    // of another type, does not make another).
    const seen = `${branches!.indexOf(branch!)}\u0000${keys.join('\u0000')}`;
    if (ordersSeen.has(seen)) return;
    ordersSeen.add(seen);
    if (branch === null) return;
    const props = branch.properties as Record<string, { type: FlatType; const?: string | number | boolean }>;
    const fields = keys.map((name) => ({
      name,
      type: props[name].type,
      constValue: props[name].const,
      interner: props[name].type === 'string' ? interners.get(name)! : null,
      read: read === null || read.has(name),
    }));
    shapes.push(compileShape(fields));
  }

  const decode = (b: Uint8Array, start: number, end: number): JsonObject | undefined => {
    const n = shapes.length;
    if (n > 0) {
      let out = shapes[last](b, start, end);
      for (let s = 0; out === undefined && s < n; s++) if (s !== last && (out = shapes[s](b, start, end))) last = s;
      if (out !== undefined) {
        checked = true;
        return out;
      }
    }
    checked = false;
    const out = decodeFlat(b, start, end);
    if (out !== undefined && n < MAX_SHAPES) {
      learn(out);
      // A shape learnt from this record checks it as the schema would: when it takes the record,
      // the caller need not validate it, so a topic whose records all fit its shapes never
      // compiles the schema (ajv: ~50-100 ms of each worker thread's start).
      if (shapes.length > n) {
        const again = shapes[n](b, start, end);
        if (again !== undefined) {
          last = n;
          checked = true;
          return again;
        }
      }
    }
    return out;
  };
  Object.defineProperty(decode, 'coversSchema', { value: coversSchema(schema as JsonObject, branches) });
  return Object.defineProperty(decode, 'lastChecked', { get: () => checked }) as FlatDecoder;
}

/** The general way: keys in any order, found by name; values of any scalar type, not checked. */
// eslint-disable-next-line max-lines-per-function -- it holds decodeFlat, long on purpose (see the comment there)
function generalDecoder(names: string[]): (b: Uint8Array, start: number, end: number) => JsonObject | undefined {
  const keyBytes = names.map((n) => Buffer.from(n, 'latin1'));

  /** Index of the key in `b[start, end)`, or -1. */
  function keyIndex(b: Uint8Array, start: number, end: number): number {
    const length = end - start;
    for (let k = 0; k < keyBytes.length; k++) {
      const kb = keyBytes[k];
      if (kb.length !== length) continue;
      let x = 0;
      while (x < length && b[start + x] === kb[x]) x++;
      if (x === length) return k;
    }
    return -1;
  }

  // One function of about 85 lines, on purpose: it is the per-record hot path of ingestion and of
  // the workers' decode, a single scan whose position `i` every branch advances. Split into helpers,
  // each would have to hand back both a value and a position (an object or a closure per value),
  // which is what this decoder exists to avoid; a change here wants the process bench before and after.
  // eslint-disable-next-line max-lines-per-function -- the one-scan hot path described above
  return function decodeFlat(b: Uint8Array, start: number, end: number): Record<string, unknown> | undefined {
    let i = start;
    if (b[i] !== 0x7b /* { */) return undefined;
    i++;
    const out: Record<string, unknown> = {};
    let seen = 0;
    for (;;) {
      // "key":
      if (b[i] !== 0x22) return undefined;
      i++;
      const ks = i;
      while (i < end && b[i] !== 0x22) {
        if (b[i] === 0x5c || b[i] >= 0x80 || b[i] < 0x20) return undefined;
        i++;
      }
      if (i >= end) return undefined;
      const k = keyIndex(b, ks, i);
      if (k < 0 || (seen & (1 << k)) !== 0) return undefined;
      seen |= 1 << k;
      i++;
      if (b[i] !== 0x3a /* : */) return undefined;
      i++;
      // value
      const c = b[i];
      let value: unknown;
      if (c === 0x22) {
        i++;
        const vs = i;
        while (i < end && b[i] !== 0x22) {
          const d = b[i];
          if (d === 0x5c || d >= 0x80 || d < 0x20) return undefined;
          i++;
        }
        if (i >= end) return undefined;
        value = latin1Slice.call(b, vs, i);
        i++;
      } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        const vs = i;
        if (b[i] === 0x2d) i++;
        if (b[i] === 0x30) i++;
        else if (b[i] >= 0x31 && b[i] <= 0x39) while (b[i] >= 0x30 && b[i] <= 0x39) i++;
        else return undefined;
        let integer = true;
        if (b[i] === 0x2e) {
          integer = false;
          i++;
          if (!(b[i] >= 0x30 && b[i] <= 0x39)) return undefined;
          while (b[i] >= 0x30 && b[i] <= 0x39) i++;
        }
        if (b[i] === 0x65 || b[i] === 0x45) {
          integer = false;
          i++;
          if (b[i] === 0x2b || b[i] === 0x2d) i++;
          if (!(b[i] >= 0x30 && b[i] <= 0x39)) return undefined;
          while (b[i] >= 0x30 && b[i] <= 0x39) i++;
        }
        if (i > end) return undefined;
        if (integer && i - vs <= 15) {
          // At most 15 characters: exact in a double, as JSON.parse gives it (-0 included).
          const negative = b[vs] === 0x2d;
          let n = 0;
          for (let d = negative ? vs + 1 : vs; d < i; d++) n = n * 10 + (b[d] - 0x30);
          value = negative ? -n : n;
        } else {
          value = Number(latin1Slice.call(b, vs, i));
        }
      } else if (c === 0x74 && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) {
        value = true;
        i += 4;
      } else if (c === 0x66 && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) {
        value = false;
        i += 5;
      } else {
        return undefined;
      }
      out[names[k]] = value;
      if (b[i] === 0x2c /* , */) {
        i++;
        continue;
      }
      if (b[i] === 0x7d /* } */ && i + 1 === end) return out;
      return undefined;
    }
  };
}
