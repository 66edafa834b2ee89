/**
 * A writer that produces a list of chunks for socket.writev. Fixed-width fields, lengths and short
 * strings go into a scratch buffer; a records field (the megabytes of a Fetch response) is pushed as
 * its own chunk, never copied. When the scratch buffer fills, the written part becomes a chunk and a
 * new one is started, so nothing already written is copied either.
 */

const TWO_TO_32 = 2 ** 32;
/** 2^63 as a double: the first number past the int64 range. */
const TWO_TO_63 = 2 ** 63;
const INITIAL_BYTES = 1024;
const GROWN_BYTES_MAX = 64 * 1024;

export class Writer {
  private readonly chunks: Buffer[] = [];
  private buf: Buffer;
  private start = 0;
  private pos = 0;
  private flushed = 0;

  constructor(initialBytes = INITIAL_BYTES) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written so far. */
  get written(): number {
    return this.flushed + this.pos - this.start;
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    this.flush();
    const size = Math.max(bytes, Math.min(this.buf.length * 2, GROWN_BYTES_MAX));
    this.buf = Buffer.allocUnsafe(size);
    this.start = 0;
    this.pos = 0;
  }

  private flush(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.buf.subarray(this.start, this.pos));
      this.flushed += this.pos - this.start;
      this.start = this.pos;
    }
  }

  int8(v: number): void {
    this.ensure(1);
    this.pos = this.buf.writeInt8(v, this.pos);
  }

  int16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeInt16BE(v, this.pos);
  }

  uint16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
  }

  int32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeInt32BE(v, this.pos);
  }

  uint32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
  }

  /** A number (exact up to 2^53; clamped to the int64 range) or a bigint. */
  int64(v: number | bigint): void {
    this.ensure(8);
    if (typeof v === 'bigint') {
      this.pos = this.buf.writeBigInt64BE(v, this.pos);
      return;
    }
    if (!Number.isFinite(v)) throw new TypeError(`int64 value ${v} is not a finite number`);
    if (v >= TWO_TO_63) {
      this.pos = this.buf.writeBigInt64BE(0x7fffffffffffffffn, this.pos);
      return;
    }
    const n = Math.max(-TWO_TO_63, Math.trunc(v));
    const hi = Math.floor(n / TWO_TO_32);
    this.buf.writeInt32BE(hi, this.pos);
    this.buf.writeUInt32BE(n - hi * TWO_TO_32, this.pos + 4);
    this.pos += 8;
  }

  float64(v: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  /** A UUID from its text form (dashes optional) or from 16 bytes. */
  uuid(v: string | Buffer): void {
    const bytes = typeof v === 'string' ? Buffer.from(v.replace(/-/g, ''), 'hex') : v;
    if (bytes.length !== 16) throw new TypeError(`uuid value ${String(v)} is not 16 bytes`);
    this.raw(bytes);
  }

  uvarint(v: number): void {
    this.ensure(5);
    let n = v >>> 0;
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  /** A length prefix: -1 for null; compact ones are written as length + 1. */
  lengthPrefix(n: number, compact: boolean, wide: boolean): void {
    if (compact) this.uvarint(n + 1);
    else if (wide) this.int32(n);
    else this.int16(n);
  }

  utf8(s: string, bytes: number): void {
    this.ensure(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }

  /** Copies `bytes` into the scratch buffer: for short values, where a chunk of its own costs more. */
  raw(bytes: Buffer): void {
    this.ensure(bytes.length);
    this.pos += bytes.copy(this.buf, this.pos);
  }

  /** Adds `bytes` as chunks of their own, without copying them. */
  chunk(bytes: Buffer | readonly Buffer[]): void {
    this.flush();
    if (Buffer.isBuffer(bytes)) {
      if (bytes.length > 0) this.chunks.push(bytes);
      this.flushed += bytes.length;
      return;
    }
    for (const b of bytes) {
      if (b.length > 0) this.chunks.push(b);
      this.flushed += b.length;
    }
  }

  /** Reserves 4 bytes for a size to be written by `finishSized`. Only as the first write. */
  reserveSize(): void {
    this.ensure(4);
    this.pos += 4;
  }

  /** The chunks, the first starting with the int32 size of everything after it. */
  finishSized(): Buffer[] {
    const chunks = this.finish();
    chunks[0].writeInt32BE(this.written - 4, 0);
    return chunks;
  }

  finish(): Buffer[] {
    this.flush();
    return this.chunks;
  }
}
