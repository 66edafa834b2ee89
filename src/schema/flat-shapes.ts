/**
 * The fastest path of the flat decoder (src/schema/flat-decoder.ts): a function generated for one
 * *shape*, an order of keys the records of a topic arrive in (JSON.stringify keeps its object's
 * order, so a topic's producers nearly always write the same one or few). Knowing the order, the
 * function compares each key's bytes where it must be instead of searching the schema's names,
 * parses each value as its declared type, checks it as the schema would, and builds the object with
 * one object literal, so V8 gives every result the same hidden class and keeps each generated
 * function's feedback to itself (one function per shape per topic, never shared).
 *
 * A shape is compiled only when a value that parses and passes its checks satisfies one branch of
 * the schema outright (the branch's keywords are all ones the checks cover, see `shapeBranch`): its
 * results need no second validation. Anything else — another order, a value of another type, an
 * escape or non-ASCII byte in a string, an exponent too large for a double — returns undefined and
 * the caller goes the general way, whose result or error then stands.
 *
 * Numbers of at most 15 significant digits and no exponent are built as `m / 10^k` from their
 * digits: both are exact doubles, so one correctly rounded division gives the double nearest to the
 * decimal, as JSON.parse does (Clinger's fast path). Other numbers go through Number().
 *
 * String values that repeat (regions, SKUs, store ids, enum-like codes) are interned: a field keeps
 * a table of the strings it made, found by a hash of their bytes, and returns the same string when
 * the bytes match, which saves making a string per record and lets Maps reuse its cached hash.
 * A field whose values rarely repeat (order ids) stops interning after a few thousand records.
 */

/** A scalar type the shapes parse. */
export type FlatType = 'string' | 'integer' | 'number' | 'boolean';

/** One property of a shape, in the order its key comes in the bytes. */
export interface ShapeField {
  name: string;
  type: FlatType;
  /** The schema's `const` for the property, when it has one. */
  constValue?: string | number | boolean;
  /** The field's interner, shared by every shape of the decoder (null: numbers and booleans). */
  interner: Interner | null;
  /**
   * Whether the object gets the property. A field nobody reads (the decoder was told which are)
   * is still scanned and checked, so a record the schema refuses is refused all the same, but no
   * string is made for it.
   */
  read: boolean;
}

/** Decodes `buf[start, end)` of one shape, or returns undefined when the bytes are not in it. */
export type ShapeDecoder = (buf: Uint8Array, start: number, end: number) => Record<string, unknown> | undefined;

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (start: number, end: number) => string })
  .latin1Slice;

const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);

/** Enough that 10,000 distinct values (SKUs, stores) mostly keep their slot: about 3 in 4 lookups find their string. */
const INTERN_SLOTS = 16384;
const INTERN_MAX_LENGTH = 64;
/** After this many lookups a field whose strings matched less than half the time stops interning. */
const INTERN_TRIAL = 8192;

/** The strings one field made, by a hash of their bytes (see the file's comment). */
export class Interner {
  /** Whether the field still interns; the generated code reads it per value. */
  on = true;
  /** Made at the first lookup (a field nobody reads never interns), dropped when interning stops. */
  private slots: (string | undefined)[] = [];
  private lookups = 0;
  private hits = 0;

  /** The string of the ASCII bytes `b[start, end)`, whose hash is `hash`. */
  get(b: Uint8Array, start: number, end: number, hash: number): string {
    const length = end - start;
    if (this.slots.length === 0) this.slots = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);
    const slot = hash & (INTERN_SLOTS - 1);
    const known = this.slots[slot];
    this.lookups++;
    if (known !== undefined && known.length === length) {
      let j = 0;
      while (j < length && known.charCodeAt(j) === b[start + j]) j++;
      if (j === length) {
        this.hits++;
        return known;
      }
    }
    const made = latin1Slice.call(b, start, end);
    if (length <= INTERN_MAX_LENGTH) this.slots[slot] = made;
    if (this.lookups === INTERN_TRIAL) {
      if (this.hits * 2 < INTERN_TRIAL) {
        this.on = false;
        this.slots = [];
      }
      this.lookups = 0;
      this.hits = 0;
    }
    return made;
  }
}

/**
 * The end of a number's exponent starting at `b[i]` (i itself when there is none), or -1 when
 * the exponent is malformed.
 */
function exponentEnd(b: Uint8Array, i: number): number {
  if (b[i] !== 0x65 && b[i] !== 0x45) return i;
  i++;
  if (b[i] === 0x2b || b[i] === 0x2d) i++;
  if (!(b[i] >= 0x30 && b[i] <= 0x39)) return -1;
  while (b[i] >= 0x30 && b[i] <= 0x39) i++;
  return i;
}

/**
 * `if (...) return undefined;` comparing the bytes at i with `text`: four at a time as one
 * little-endian word (through `view`, see WORDS_SKIP), the last few one by one.
 */
function bytesCheck(text: string): string {
  const bytes = [...Buffer.from(text, 'latin1')];
  const tests: string[] = [];
  let k = 0;
  for (; k + 4 <= bytes.length; k += 4)
    tests.push(
      `view.getInt32(o + i + ${k}, true) !== ${bytes[k] | (bytes[k + 1] << 8) | (bytes[k + 2] << 16) | (bytes[k + 3] << 24)}`,
    );
  for (; k < bytes.length; k++) tests.push(`b[i + ${k}] !== ${bytes[k]}`);
  return `if (i + ${bytes.length} > end || ${tests.join(' || ')}) return undefined;\ni += ${bytes.length};`;
}

/**
 * Skips four bytes at a time while none of them is a quote, a backslash, a control character or a
 * byte of 0x80 or more (read as one little-endian word, tested with the has-zero-byte trick: exact
 * about whether such a byte is there; a high bit is any byte's own); the byte loop after it finds which. `view` is a DataView of the memory under `b`,
 * `o` where b starts in it.
 */
const WORDS_SKIP = `while (i + 4 <= end) {
      d = view.getInt32(o + i, true);
      q = d ^ 0x22222222;
      x = d ^ 0x5c5c5c5c;
      if ((((q - 0x01010101) & ~q) | ((x - 0x01010101) & ~x) | ((d - 0x20202020) & ~d) | d) & 0x80808080) break;
      i += 4;
    }`;

function stringCode(k: number, field: ShapeField): string {
  if (typeof field.constValue === 'string') return `${bytesCheck(JSON.stringify(field.constValue))}\nv${k} = C${k};`;
  const scan = (hashing: boolean): string =>
    `${hashing ? '' : WORDS_SKIP}
    while (i < end && (d = b[i]) !== 34) {
      if (d === 92 || (d - 32) >>> 0 > 95) return undefined;
      ${hashing ? 'h = (Math.imul(h, 31) + d) | 0;' : ''}
      i++;
    }
    if (i >= end) return undefined;`;
  if (!field.read) return `if (b[i] !== 34) return undefined;\ni++;\n${scan(false)}\ni++;`;
  return `if (b[i] !== 34) return undefined;
    s = ++i;
    if (I${k}.on) {
      h = 0;
      ${scan(true)}
      v${k} = I${k}.get(b, s, i, h);
    } else {
      ${scan(false)}
      v${k} = latin1Slice.call(b, s, i);
    }
    i++;`;
}

function numberCode(k: number, field: ShapeField): string {
  const check =
    field.constValue !== undefined
      ? `if (v${k} !== C${k}) return undefined;`
      : field.type === 'integer'
        ? `if (!Number.isInteger(v${k})) return undefined;`
        : '';
  return `s = i;
    neg = b[i] === 45;
    if (neg) i++;
    m = 0;
    nd = 0;
    fd = 0;
    if (b[i] === 48) { i++; nd = 1; }
    else if (b[i] >= 49 && b[i] <= 57) { do { m = m * 10 + (b[i] - 48); i++; nd++; } while (b[i] >= 48 && b[i] <= 57); }
    else return undefined;
    if (b[i] === 46) {
      i++;
      if (!(b[i] >= 48 && b[i] <= 57)) return undefined;
      do { m = m * 10 + (b[i] - 48); i++; fd++; } while (b[i] >= 48 && b[i] <= 57);
    }
    if (nd + fd > 15 || b[i] === 101 || b[i] === 69) {
      i = exponentEnd(b, i);
      if (i < 0) return undefined;
      v${k} = Number(latin1Slice.call(b, s, i));
      if (!(v${k} - v${k} === 0)) return undefined;
    } else {
      if (neg) m = -m;
      v${k} = fd === 0 ? m : m / POW10[fd];
    }
    ${check}`;
}

function booleanCode(k: number, field: ShapeField): string {
  const check = field.constValue !== undefined ? `if (v${k} !== C${k}) return undefined;` : '';
  return `if (b[i] === 116 && b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101) { v${k} = true; i += 4; }
    else if (b[i] === 102 && b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101) { v${k} = false; i += 5; }
    else return undefined;
    ${check}`;
}

/** The decoder of one shape: `fields` in the order their keys come (at least one). */
export function compileShape(fields: readonly ShapeField[]): ShapeDecoder {
  const body: string[] = [
    'let i = start, d = 0, h = 0, s = 0, m = 0, nd = 0, fd = 0, neg = false, q = 0, x = 0, o = 0;',
  ];
  body.push(`let ${fields.map((_, k) => `v${k}`).join(', ')};`);
  // A DataView of the memory under b, for reading four bytes at once: made when it changes (a batch's
  // records share one, whether given as one buffer or one each).
  body.push('if (b.buffer !== viewed) { viewed = b.buffer; view = new DataView(viewed); }\no = b.byteOffset;');
  body.push('if (b[i] !== 123) return undefined;\ni++;');
  fields.forEach((field, k) => {
    body.push(bytesCheck(`${JSON.stringify(field.name)}:`));
    const code = field.type === 'string' ? stringCode : field.type === 'boolean' ? booleanCode : numberCode;
    body.push(code(k, field));
    body.push(k < fields.length - 1 ? 'if (b[i] !== 44) return undefined;\ni++;' : '');
  });
  body.push('if (b[i] !== 125 || i + 1 !== end) return undefined;');
  const props = fields.flatMap((f, k) => (f.read ? [`${JSON.stringify(f.name)}: v${k}`] : []));
  body.push(`return { ${props.join(', ')} };`);
  const prologue = fields
    .map((f, k) => `const I${k} = fields[${k}].interner, C${k} = fields[${k}].constValue;`)
    .join('\n');
  const source = `${prologue}\nlet viewed = null, view = null;\nreturn function decodeShape(b, start, end) {\n${body.join('\n')}\n};`;
  // The function is built from the schema's own property names, each written as a JSON string
  // literal (the flat decoder admits only printable ASCII names, never __proto__).
  const make = new Function('fields', 'latin1Slice', 'POW10', 'exponentEnd', source) as (
    ...args: unknown[]
  ) => ShapeDecoder;
  return make(fields, latin1Slice, POW10, exponentEnd);
}
