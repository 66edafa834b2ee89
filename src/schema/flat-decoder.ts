/**
 * A fast path for the commonest record shape: a JSON object whose properties are all declared by
 * the topic's schema with a scalar type (string, integer, number, boolean), written compactly
 * (as JSON.stringify writes it). `compileFlatDecoder` returns a function that scans the bytes once
 * and builds the same object `JSON.parse` would (same properties, same order, same values), about
 * twice as fast, because it knows the keys in advance and decodes ASCII strings and plain
 * integers without a general parser.
 *
 * It is only a fast path: whenever a value is not in the simple form it handles (whitespace,
 * escapes or non-ASCII in strings, nested values, null, keys the schema does not declare,
 * duplicate keys, anything malformed) it returns `undefined` and the caller decodes with
 * `JSON.parse`, whose result or error then stands. The caller still validates the object against
 * the schema. src/schema/flat-decoder.test.ts checks it against `JSON.parse` on generated input.
 */

/** Decodes `buf[start, end)`, or returns undefined when the value is not in the simple form. */
export type FlatDecoder = (buf: Uint8Array, start: number, end: number) => Record<string, unknown> | undefined;

const MAX_KEYS = 30;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (start: number, end: number) => string })
  .latin1Slice;

/** The decoder for `schema`, or null when the schema is not a flat object of scalar properties. */
// eslint-disable-next-line max-lines-per-function -- it holds decodeFlat, long on purpose (see the comment there)
export function compileFlatDecoder(schema: object): FlatDecoder | null {
  const s = schema as { type?: unknown; properties?: Record<string, { type?: unknown }> };
  if (s.type !== 'object' || s.properties === null || typeof s.properties !== 'object') return null;
  const names = Object.keys(s.properties);
  if (names.length === 0 || names.length > MAX_KEYS) return null;
  for (const name of names) {
    const t = s.properties[name]?.type;
    if (t !== 'string' && t !== 'integer' && t !== 'number' && t !== 'boolean') return null;
    // Printable ASCII with nothing to escape; and not __proto__, which an assignment would not create as JSON.parse does.
    if (!/^[\x20-\x7e]*$/.test(name) || name.includes('"') || name.includes('\\') || name === '__proto__') return null;
  }
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
