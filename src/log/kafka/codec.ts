/**
 * The primitives of KafkaLog's requests and responses (the non-flexible encoding: int16-length
 * strings, int32-count arrays, int32-length bytes; -1 for null), as wire.ts writes and reads them.
 * Kafka's protocol guide, "Protocol Primitive Types". A response that ends before a field does
 * throws a RangeError, which fails that request (the connection stays usable).
 */

/** Bytes appended this long or longer (a Produce request's records) are sent as they are, not copied. */
const COPY_BYTES_MAX = 1024;

/**
 * Writes one request body: short fields into a growing buffer, long byte strings as chunks of their
 * own (`chunks()`, for one corked socket write). Every method returns the writer, so calls chain.
 */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;
  private readonly done: Buffer[] = [];

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  appendInt8(v: number): this {
    this.ensure(1);
    this.pos = this.buf.writeInt8(v, this.pos);
    return this;
  }

  appendInt16(v: number): this {
    this.ensure(2);
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }

  appendInt32(v: number): this {
    this.ensure(4);
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }

  appendInt64(v: bigint): this {
    this.ensure(8);
    this.pos = this.buf.writeBigInt64BE(v, this.pos);
    return this;
  }

  appendBoolean(v: boolean): this {
    return this.appendInt8(v ? 1 : 0);
  }

  /** An int16-length UTF-8 string; null as length -1. */
  appendString(v: string | null): this {
    if (v === null) return this.appendInt16(-1);
    const n = Buffer.byteLength(v, 'utf8');
    this.appendInt16(n).ensure(n);
    this.pos += this.buf.write(v, this.pos, n, 'utf8');
    return this;
  }

  /** An int32-count array of `values`, each written by `entry`. */
  appendArray<T>(values: readonly T[], entry: (w: this, value: T) => void): this {
    this.appendInt32(values.length);
    for (const v of values) entry(this, v);
    return this;
  }

  /** Raw bytes (the caller writes their length); long ones are kept as a chunk, not copied. */
  append(bytes: Buffer): this {
    if (bytes.length >= COPY_BYTES_MAX) {
      if (this.pos > 0) this.done.push(this.buf.subarray(0, this.pos));
      this.done.push(bytes);
      this.buf = Buffer.allocUnsafe(256);
      this.pos = 0;
      return this;
    }
    this.ensure(bytes.length);
    this.pos += bytes.copy(this.buf, this.pos);
    return this;
  }

  /** Everything written, as chunks in order (views, not copies). */
  chunks(): Buffer[] {
    return this.pos > 0 ? [...this.done, this.buf.subarray(0, this.pos)] : this.done;
  }
}

/** Reads one response body. `records` and other bytes fields are views of the response, not copies. */
export class ByteReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  private take(n: number, what: string): number {
    const at = this.pos;
    if (n < 0 || at + n > this.buf.length)
      throw new RangeError(`the response ends inside a field (${what} at byte ${at}, ${this.buf.length - at} left)`);
    this.pos += n;
    return at;
  }

  readInt8(): number {
    return this.buf.readInt8(this.take(1, 'int8'));
  }

  readInt16(): number {
    return this.buf.readInt16BE(this.take(2, 'int16'));
  }

  readInt32(): number {
    return this.buf.readInt32BE(this.take(4, 'int32'));
  }

  readInt64(): bigint {
    return this.buf.readBigInt64BE(this.take(8, 'int64'));
  }

  readBoolean(): boolean {
    return this.buf[this.take(1, 'boolean')] !== 0;
  }

  readNullableString(): string | null {
    const n = this.readInt16();
    if (n < 0) return null;
    const at = this.take(n, 'string');
    return this.buf.toString('utf8', at, at + n);
  }

  readString(): string {
    return this.readNullableString() ?? '';
  }

  readNullableBytes(): Buffer | null {
    const n = this.readInt32();
    if (n < 0) return null;
    const at = this.take(n, 'bytes');
    return this.buf.subarray(at, at + n);
  }

  /** An int32-count array, each entry read by `entry`; null for a null array. */
  readNullableArray<T>(entry: (r: this) => T): T[] | null {
    const n = this.readInt32();
    if (n < 0) return null;
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(entry(this));
    return out;
  }
}
