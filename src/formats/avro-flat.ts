/**
 * The fast path of the Avro decoder (src/formats/avro.ts) for the common record: one level of
 * fields of the primitive types (null, boolean, int, long, float, double, string), read with the
 * schema they were written with. A function generated per reader schema reads each field straight
 * from the bytes into one object literal (fields in schema order, as avsc's plain records), so V8
 * gives every result the same hidden class, and interns string values that repeat (regions, SKUs,
 * store ids) in a table per field, as the JSON decoder does (`Interner`, src/schema/flat-shapes.ts).
 *
 * It decodes exactly what avsc (with Kappa's types, avro-types.ts) decodes, or returns undefined
 * and the caller goes avsc's way, whose value or error then stands: a varint longer than this code
 * reads (an int or a string's length over 4 bytes, a magnitude of 2^27 or more; a long over 7
 * bytes, 2^48 or more), a negative length, a field that runs past the value's end, or bytes left
 * over. The differential test (avro-flat.test.ts) holds it to avsc on generated and damaged values.
 */
import type avsc from 'avsc';
import { Interner } from '../schema/index.ts';

/** Decodes the Avro body in `buf[start, end)`, or returns undefined to leave it to avsc. */
export type AvroFlatDecoder = (buf: Buffer, start: number, end: number) => Record<string, unknown> | undefined;

const PRIMITIVE = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'string']);

/** A varint of at most 4 bytes (n < 2^28) into `n`; more bytes, or past `end`: undefined. */
const SHORT_VARINT = `d = b[i++]; n = d & 127;
    if (d > 127) { d = b[i++]; n |= (d & 127) << 7;
      if (d > 127) { d = b[i++]; n |= (d & 127) << 14;
        if (d > 127) { d = b[i++]; n |= (d & 127) << 21; if (d > 127) return undefined; } } }
    if (i > end) return undefined;`;

function fieldCode(k: number, typeName: string, read: boolean): string {
  if (typeName === 'string' && !read)
    return `${SHORT_VARINT}
    if (n & 1) return undefined;
    e = i + (n >>> 1);
    if (e > end) return undefined;
    i = e;`;
  switch (typeName) {
    case 'null':
      return `v${k} = null;`;
    case 'boolean':
      // avsc: !!byte, so any byte but 0 is true.
      return `if (i >= end) return undefined;\nv${k} = b[i++] !== 0;`;
    case 'int':
      return `${SHORT_VARINT}\nv${k} = (n >>> 1) ^ -(n & 1);`;
    case 'long':
      // avsc's own arithmetic (utils.js readLong): exact while the zigzag value is under 2^53; the
      // bytes here stop at 7 (under 2^49), below where Kappa's long takes its BigInt path (2^52).
      return `d = b[i++]; n = d & 127;
    if (d > 127) { d = b[i++]; n |= (d & 127) << 7;
      if (d > 127) { d = b[i++]; n |= (d & 127) << 14;
        if (d > 127) { d = b[i++]; n |= (d & 127) << 21;
          if (d > 127) {
            f = n; fk = 268435456;
            do { if (fk > 4398046511104) return undefined; d = b[i++]; f += (d & 127) * fk; fk *= 128; } while (d > 127);
          } } } }
    if (i > end) return undefined;
    v${k} = fk === 0 ? (n >>> 1) ^ -(n & 1) : (f % 2 ? -(f + 1) : f) / 2;
    fk = 0;`;
    case 'float':
      return `if (i + 4 > end) return undefined;\nv${k} = view.getFloat32(o + i, true);\ni += 4;`;
    case 'double':
      return `if (i + 8 > end) return undefined;\nv${k} = view.getFloat64(o + i, true);\ni += 8;`;
    default: // string: a long length (under 2^27 bytes here), then UTF-8 as avsc reads it (utf8Slice)
      return `${SHORT_VARINT}
    if (n & 1) return undefined;
    e = i + (n >>> 1);
    if (e > end) return undefined;
    s = i;
    if (I${k}.on) {
      h = 0;
      while (i < e && (d = b[i]) < 128) { h = (Math.imul(h, 31) + d) | 0; i++; }
      v${k} = i === e ? I${k}.get(b, s, e, h) : b.utf8Slice(s, e);
    } else {
      while (i < e && b[i] < 128) i++;
      v${k} = i === e ? asciiString(b, s, e) : b.utf8Slice(s, e);
    }
    i = e;`;
  }
}

/** Strings of up to this many ASCII bytes are made in JavaScript (see `asciiString`). */
const SHORT_STRING_MAX = 16;

/**
 * The string of the ASCII bytes `b[s, e)`. Up to SHORT_STRING_MAX bytes it is made in JavaScript
 * by String.fromCharCode with the bytes as arguments (a switch on the length, generated below),
 * which took about half the time of a call into Node's C++ (`latin1Slice`, `utf8Slice`, some 90 ns
 * on this project's 2-core machines) for an order id of 9 bytes.
 */
const asciiString = new Function(
  'fromCharCode',
  `return function asciiString(b, s, e) {
    switch (e - s) {
      ${Array.from({ length: SHORT_STRING_MAX + 1 }, (_, n) => `case ${n}: return fromCharCode(${Array.from({ length: n }, (_, j) => `b[s + ${j}]`).join(', ')});`).join('\n      ')}
      default: return b.latin1Slice(s, e);
    }
  };`,
)(String.fromCharCode) as (b: Buffer, s: number, e: number) => string;

/**
 * The flat decoder of `type` (an avsc record type built with Kappa's hooks), or null when the
 * record has a field of another type (a union, a nested record, an array, bytes, a logical type...)
 * and only avsc reads it. `read`: the only fields the caller reads (src/stream/fields-read.ts), or
 * null for all; the values it makes have just those (a string nobody reads is skipped, never made),
 * while every field is still read as far as needed to find the value's end.
 */
export function compileAvroFlat(type: avsc.Type, read: ReadonlySet<string> | null = null): AvroFlatDecoder | null {
  const t = type as unknown as { typeName: string; fields?: { name: string; type: { typeName: string } }[] };
  if (t.typeName !== 'record' || t.fields === undefined || t.fields.length === 0) return null;
  const fields = t.fields.map((f) => ({ name: f.name, typeName: f.type.typeName, read: read?.has(f.name) ?? true }));
  if (!fields.every((f) => PRIMITIVE.has(f.typeName))) return null;
  const body = [
    'let i = start, d = 0, n = 0, f = 0, fk = 0, e = 0, s = 0, h = 0;',
    // A DataView of the memory under b for the floats, made when that memory changes (a batch's
    // records share one), and where b starts in it.
    'if (b.buffer !== viewed) { viewed = b.buffer; view = new DataView(viewed); }',
    'const o = b.byteOffset;',
    `let ${fields.map((_, k) => `v${k}`).join(', ')};`,
    ...fields.map((f, k) => fieldCode(k, f.typeName, f.read)),
    'if (i !== end) return undefined;',
    // Avro names are [A-Za-z_][A-Za-z0-9_]*, so a JSON string literal is the name; "__proto__" as a
    // literal key would set the prototype, so it is computed (as avro-types.ts's PlainRecordType).
    `return { ${fields.flatMap((f, k) => (f.read ? [`${f.name === '__proto__' ? '["__proto__"]' : JSON.stringify(f.name)}: v${k}`] : [])).join(', ')} };`,
  ];
  const interners = fields.map((f) => (f.typeName === 'string' ? new Interner() : null));
  const prologue = fields.map((_, k) => `const I${k} = interners[${k}];`).join('\n');
  const source = `${prologue}\nlet viewed = null, view = null;\nreturn function decodeAvroFlat(b, start, end) {\n${body.join('\n')}\n};`;
  return (
    new Function('interners', 'asciiString', source) as (
      interners: (Interner | null)[],
      ascii: typeof asciiString,
    ) => AvroFlatDecoder
  )(interners, asciiString);
}
