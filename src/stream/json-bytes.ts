/**
 * An output value's JSON written straight into bytes, for the values output pipelines make most: a
 * plain object whose properties are strings, numbers, booleans and nulls (`{ auction, bidder, price,
 * dateTime }`). JSON.stringify makes a string that the record's batch then copies as UTF-8; on
 * Nexmark q0 the two were a quarter of a worker thread, most of it turning numbers into text. The
 * writer writes into its own buffer (`write`, for a record of several values, kept until all are
 * made) or straight into the batch being built (`writeInto`, a BatchBuilder's ValueWriter).
 *
 * The bytes are JSON.stringify's, byte for byte, for every value the writer takes
 * (src/stream/json-bytes.test.ts compares them); it takes a value only when that is sure and
 * leaves the rest to JSON.stringify: nested objects and arrays, a property JSON.stringify would
 * leave out (undefined, a function, a symbol), a bigint (JSON.stringify throws), an object with a
 * prototype of its own or a `toJSON`, an array, an object with inherited enumerable properties (a
 * getter of a value left to JSON.stringify part-way runs twice). A boxed primitive given the plain
 * object prototype by hand (Object.setPrototypeOf) would be written as an object: not supported.
 * Strings of printable ASCII are copied; any other string is written as JSON.stringify writes it.
 * Integers below 2^53 are written four digits at a time, fractions of at most 15 significant digits
 * from their digits (`writeFraction`), other numbers as `String(n)` gives them (JSON's form of a
 * finite number), NaN and infinities as `null`.
 *
 * Measured on Nexmark (4M events, alternating with the code before on the same machine): q0 +7%
 * events per core, q1 +2% (its prices are fractions, a fifth of which need 17 digits: String);
 * written into the batch instead of copied there, q0 +7-13%, q1 +6-13% more.
 */

import type { ValueWriter } from '../log/index.ts';

/** Bytes `bytes[start, end)`: one value's JSON, valid until the writer's next `reset`. */
export interface JsonBytes {
  bytes: Buffer;
  start: number;
  end: number;
}

/** `value` as a string of JSON. */
export function jsonText(value: string | Buffer | JsonBytes): string | Buffer {
  return typeof value === 'string' || value instanceof Uint8Array
    ? value
    : value.bytes.toString('utf8', value.start, value.end);
}

/** Node's Buffer has this method (what `write` calls for 'utf8'), though its types do not name it. */
interface Utf8Writer {
  utf8Write(s: string, offset: number): number;
}

const QUOTE = 0x22;
const hasOwn = Object.prototype.hasOwnProperty;
const BYTES_MIN = 4096;
/** A buffer grown past this (by one big value) is not kept for the next record. */
const BYTES_KEPT = 1024 * 1024;
/** Most bytes a number takes as JSON (`-1.2345678901234567e+308`). */
const NUMBER_MAX = 25;
const INT32_MAX = 0x7fffffff;
const SAFE = 2 ** 53;
const DIGITS_15 = 1e15;
/** "00" to "99" as bytes: two digits are written per division. */
const DIGIT_PAIRS = Uint8Array.from(
  { length: 200 },
  (_, i) => 0x30 + (i % 2 === 0 ? Math.floor(i / 20) : (i >> 1) % 10),
);
/** "0000" to "9999" as little-endian words of four ASCII digits: four digits are written per division. */
const DIGIT_QUADS = Uint32Array.from({ length: 10000 }, (_, i) => {
  const d = [Math.floor(i / 1000), Math.floor(i / 100) % 10, Math.floor(i / 10) % 10, i % 10];
  return (0x30 + d[0]) | ((0x30 + d[1]) << 8) | ((0x30 + d[2]) << 16) | ((0x30 + d[3]) << 24);
});
/** 10^k for the decimals a fraction is tried with (exact doubles up to 10^22). */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
/** The doubles nearest 10^-k, k from 0 to 6. */
const NEG_POW10 = [1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
/** The decimals tried one by one before the 15-digit test: most fractions written have few. */
const FEW_DECIMALS = 3;

/** Thrown inside `writeInto` when the room it was given is used up. */
const NO_ROOM = new Error('no room');

/**
 * Writes values one after the other into one growing buffer (`write`; `reset` starts it over), or
 * into a batch being built (`writeInto`, a BatchBuilder's ValueWriter).
 */
export class JsonWriter implements ValueWriter {
  private own: Buffer = Buffer.allocUnsafeSlow(BYTES_MIN);
  /** Where the value being written goes, and where the room there ends. */
  private buf: Buffer = this.own;
  private limit = this.own.length;
  private used = 0;
  /** The property names of the last object written. */
  private names: string[] = [];
  /** Each name's bytes as JSON after its `{` or `,` (`,"name":`), as little-endian words (the last one padded), and their length. */
  private nameWords: Uint32Array[] = [];
  private nameLengths: number[] = [];
  /** A DataView of the memory of `viewed` (the buffer being written to), and where that buffer starts in it. */
  private viewed: Buffer | null = null;
  private view: DataView = new DataView(new ArrayBuffer(0));
  private viewAt = 0;
  /** The DataView of `own`, kept while `own` is: `write` and `writeInto` may alternate. */
  private ownView: DataView | null = null;

  /** Forgets every value written so far (their JsonBytes are no longer valid); a buffer a big value grew is let go. */
  reset(): void {
    this.used = 0;
    if (this.own.length > BYTES_KEPT) {
      this.own = this.buf = Buffer.allocUnsafeSlow(BYTES_MIN);
      this.limit = BYTES_MIN;
      this.viewed = this.ownView = null;
    }
  }

  /** `value`'s JSON as bytes, or null when the writer leaves it to JSON.stringify (see the file's comment). */
  write(value: unknown): JsonBytes | null {
    if (!takes(value)) return null;
    const start = this.used;
    const end = this.writeObject(value, start);
    if (end < 0) return null;
    this.used = end;
    return { bytes: this.own, start, end };
  }

  /**
   * Writes `value`'s JSON at `buf[pos, end)`: where it ends, -1 when left to JSON.stringify, -2 when
   * it needs more room. `view`, when given, is a DataView of buf's bytes (its byte 0 is buf[0]),
   * which the writer would otherwise make whenever the buffer differs from the last one.
   */
  writeInto(value: unknown, buf: Buffer, pos: number, end: number, view?: DataView): number {
    if (!takes(value)) return -1;
    this.buf = buf;
    this.limit = end;
    if (view !== undefined) {
      this.viewed = buf;
      this.view = view;
      this.viewAt = 0;
    }
    try {
      return this.writeObject(value, pos);
    } catch (err) {
      if (err === NO_ROOM) return -2;
      throw err;
    } finally {
      this.buf = this.own;
      this.limit = this.own.length;
    }
  }

  /** Writes `o` at `pos`; returns where it ends, or -1 when a property is not one the writer takes. */
  private writeObject(o: Record<string, unknown>, pos: number): number {
    const names = this.names;
    let field = 0;
    for (const k in o) {
      // An enumerable property of Object.prototype (set by some library) is not JSON.stringify's to write.
      if (!hasOwn.call(o, k)) return -1;
      const v = o[k];
      if (field >= names.length || names[field] !== k) this.learnName(field, k);
      const length = this.nameLengths[field];
      // Room for the name (and the padding of its last word), `}` and a number; a longer string makes its own.
      if (pos + length + NUMBER_MAX + 4 > this.limit) this.grow(pos, length + NUMBER_MAX + 4);
      const buf = this.buf;
      if (buf !== this.viewed) this.see(buf);
      const words = this.nameWords[field];
      const view = this.view;
      const at = this.viewAt + pos;
      for (let i = 0; i < words.length; i++) view.setUint32(at + 4 * i, words[i], true);
      pos += length;
      if (typeof v === 'number') pos = this.writeNumber(v, pos);
      else if (typeof v === 'string') pos = this.writeString(v, pos);
      else if (v === true) pos = writeAscii(buf, pos, 'true');
      else if (v === false) pos = writeAscii(buf, pos, 'false');
      else if (v === null) pos = writeAscii(buf, pos, 'null');
      else return -1;
      field++;
    }
    if (pos + 2 > this.limit) this.grow(pos, 2);
    if (field === 0) this.buf[pos++] = 0x7b;
    this.buf[pos++] = 0x7d; // }
    return pos;
  }

  /** Remembers `k` as the name of property number `field` of the objects written (and those after it as unknown). */
  private learnName(field: number, k: string): void {
    this.names.length = field;
    this.nameWords.length = field;
    this.nameLengths.length = field;
    const bytes = Buffer.from(`${field === 0 ? '{' : ','}${JSON.stringify(k)}:`);
    const words = new Uint32Array(Math.ceil(bytes.length / 4));
    for (let i = 0; i < bytes.length; i++) words[i >> 2] |= bytes[i] << (8 * (i & 3));
    this.names.push(k);
    this.nameWords.push(words);
    this.nameLengths.push(bytes.length);
  }

  /** Makes `view` a DataView of `buf`'s memory. */
  private see(buf: Buffer): void {
    this.viewed = buf;
    this.viewAt = buf.byteOffset;
    if (buf !== this.own) this.view = new DataView(buf.buffer);
    else this.view = this.ownView ??= new DataView(buf.buffer);
  }

  private writeString(s: string, pos: number): number {
    const n = s.length;
    if (pos + n + 2 > this.limit) this.grow(pos, n + 2);
    const buf = this.buf;
    buf[pos] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Printable ASCII but `"` and `\`: written as it is. Anything else: as JSON.stringify writes it.
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) return this.writeStringified(s, pos);
      buf[pos + 1 + i] = c;
    }
    buf[pos + 1 + n] = QUOTE;
    return pos + n + 2;
  }

  private writeStringified(s: string, pos: number): number {
    const json = JSON.stringify(s);
    if (pos + json.length * 3 > this.limit) this.grow(pos, json.length * 3);
    return pos + (this.buf as unknown as Utf8Writer).utf8Write(json, pos);
  }

  /** Writes `x` at `pos`, where NUMBER_MAX bytes are free. */
  private writeNumber(x: number, pos: number): number {
    const buf = this.buf;
    if (x >= 0 && x <= INT32_MAX && (x | 0) === x && (x !== 0 || 1 / x > 0))
      return writeInt31(buf, this.view, this.viewAt, pos, x);
    if (x !== x || x === Infinity || x === -Infinity) return writeAscii(buf, pos, 'null');
    if (!Number.isInteger(x)) return writeFraction(buf, this.view, this.viewAt, pos, x);
    if (x >= SAFE || x <= -SAFE) return writeAscii(buf, pos, String(x));
    if (x < 0) {
      buf[pos++] = 0x2d; // -
      x = -x;
    }
    return writeInt53(buf, this.view, this.viewAt, pos, x);
  }

  /** Makes room for `n` bytes at `pos`, keeping what is written before it (in writeInto: there is none to make). */
  private grow(pos: number, n: number): void {
    if (this.buf !== this.own) throw NO_ROOM;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.limit * 2, pos + n));
    this.own.copy(bigger, 0, 0, pos);
    this.own = this.buf = bigger;
    this.ownView = null;
    this.limit = bigger.length;
  }
}

/** Whether the writer takes `value`: a plain object (or one with no prototype) without a toJSON. */
function takes(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === null) return !isRawJson(value); // JSON.rawJSON's values (Node 21 and later) have no prototype
  return proto === Object.prototype && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

const isRawJson = (JSON as { isRawJSON?: (v: unknown) => boolean }).isRawJSON ?? ((): boolean => false);

/** Writes `s`, ASCII, at `pos`, where there is room for it. */
function writeAscii(buf: Buffer, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[pos + i] = s.charCodeAt(i);
  return pos + s.length;
}

/**
 * Writes `x`, finite and not an integer, as String(x) would. JavaScript writes a number with the
 * fewest significant digits that read back as it; when that takes at most 15 digits, the fewest
 * decimals k for which round(|x| × 10^k) / 10^k is |x| give those digits (both exact doubles, one
 * correctly rounded division: what reading the decimal gives, Clinger's fast path), and there is only
 * one such decimal: 15 digits are coarser than a double's precision. Otherwise String(x).
 *
 * The first few k are tried one by one; then one test at the k that gives 15 significant digits
 * (`fifteenDigits`) tells whether any k does, so a number that needs 16 or 17 digits (a fifth of
 * Nexmark q1's prices) goes to String(x) after four tries instead of a dozen.
 */
function writeFraction(buf: Buffer, view: DataView, at: number, pos: number, x: number): number {
  const ax = x < 0 ? -x : x;
  // Below 1e-6 JavaScript writes an exponent.
  if (ax >= 1e-6) {
    for (let k = 1; k <= FEW_DECIMALS; k++) {
      const scale = POW10[k];
      const m = Math.round(ax * scale);
      if (m >= DIGITS_15) break;
      if (m / scale !== ax) continue;
      if (x < 0) buf[pos++] = 0x2d; // -
      return writeDecimal(buf, view, at, pos, m, k);
    }
    const k = fifteenDigits(ax);
    if (k > FEW_DECIMALS) {
      const scale = POW10[k];
      let m = Math.round(ax * scale);
      if (m / scale === ax) {
        // m's trailing zeros are decimals the number does not need (x is not an integer: one is left).
        let decimals = k;
        while (m % 10 === 0) {
          m /= 10;
          decimals--;
        }
        if (x < 0) buf[pos++] = 0x2d; // -
        return writeDecimal(buf, view, at, pos, m, decimals);
      }
    }
  }
  return writeAscii(buf, pos, String(x));
}

/**
 * The decimals k that give `ax` (in [1e-6, 1e15)) 15 significant digits: 14 - e where 10^e ≤ ax <
 * 10^(e+1). Then round(ax × 10^k) is below 10^15 and off from ax × 10^k by less than 0.2 (half an
 * ulp of ax, scaled, and the product's own rounding), so it is the decimal of any shorter form of ax
 * with zeros appended: when round(ax × 10^k) / 10^k is not ax, no k' ≤ k is. (Next to a power of
 * ten, e may come out one less than it is, never more: k is then one less, which is safe.)
 */
function fifteenDigits(ax: number): number {
  let e = 0;
  if (ax >= 1) while (e < 15 && ax >= POW10[e + 1]) e++;
  else {
    e = -1;
    while (e > -6 && ax < NEG_POW10[-e]) e--;
  }
  return 14 - e;
}

/** Writes m × 10^-k (m an integer in [1, 10^15) not ending in 0, k ≥ 1) as `ddd.ddd` or `0.000ddd`. */
function writeDecimal(buf: Buffer, view: DataView, at: number, pos: number, m: number, k: number): number {
  const end = writeInt53(buf, view, at, pos, m);
  const digits = end - pos;
  if (digits > k) {
    // ddd.ddd: the last k digits move one place right for the point.
    for (let i = end; i > end - k; i--) buf[i] = buf[i - 1];
    buf[end - k] = 0x2e;
    return end + 1;
  }
  // 0.000ddd: the digits move right for "0." and the zeros.
  const shift = k - digits + 2;
  for (let i = end - 1; i >= pos; i--) buf[i + shift] = buf[i];
  buf[pos] = 0x30;
  buf[pos + 1] = 0x2e;
  for (let i = pos + 2; i < pos + shift; i++) buf[i] = 0x30;
  return end + shift;
}

/** Writes `n` (an integer in [0, 2^53)) in decimal at `pos` (`at + pos` in `view`); returns the position after it. */
function writeInt53(buf: Buffer, view: DataView, at: number, pos: number, n: number): number {
  if (n <= INT32_MAX) return writeInt31(buf, view, at, pos, n);
  // The digits above the last eight, then the last eight with their zeros, four at a time.
  const high = Math.floor(n / 1e8);
  pos = writeInt31(buf, view, at, pos, high);
  const low = n - high * 1e8;
  const q = (low / 10000) | 0;
  view.setUint32(at + pos, DIGIT_QUADS[q], true);
  view.setUint32(at + pos + 4, DIGIT_QUADS[low - q * 10000], true);
  return pos + 8;
}

/** Writes `n` (an integer in [0, 2^31)) in decimal at `pos` (`at + pos` in `view`); returns the position after it. */
function writeInt31(buf: Buffer, view: DataView, at: number, pos: number, n: number): number {
  const digits =
    n < 1e5
      ? n < 10
        ? 1
        : n < 100
          ? 2
          : n < 1e3
            ? 3
            : n < 1e4
              ? 4
              : 5
      : n < 1e7
        ? n < 1e6
          ? 6
          : 7
        : n < 1e8
          ? 8
          : n < 1e9
            ? 9
            : 10;
  // Four digits at a time, from the last.
  let i = pos + digits;
  while (n >= 10000) {
    const q = (n / 10000) | 0;
    i -= 4;
    view.setUint32(at + i, DIGIT_QUADS[n - q * 10000], true);
    n = q;
  }
  // One to four digits are left, at pos.
  if (n >= 100) {
    const q = (n / 100) | 0;
    const pair = (n - q * 100) * 2;
    buf[i - 1] = DIGIT_PAIRS[pair + 1];
    buf[i - 2] = DIGIT_PAIRS[pair];
    n = q;
  }
  if (n >= 10) {
    buf[pos + 1] = DIGIT_PAIRS[n * 2 + 1];
    buf[pos] = DIGIT_PAIRS[n * 2];
  } else buf[pos] = 0x30 + n;
  return pos + digits;
}
