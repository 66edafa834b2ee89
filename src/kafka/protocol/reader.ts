/**
 * A strict reader over one frame. Every length is checked against the bytes left before anything is
 * read or allocated, so a frame that lies about a length fails with KafkaProtocolError('malformed')
 * instead of reading past its end or allocating what the length claims.
 *
 * Wire grammar of the primitives (Kafka's protocol guide, "Protocol Primitive Types"):
 *   int8/16/32/64, uint16/32, float64   big-endian, fixed width
 *   bool                                 int8, non-zero is true
 *   uuid                                 16 bytes
 *   unsigned varint                      7 bits a byte, low group first, high bit = more (at most 5 bytes here)
 *   string / bytes                       int16 / int32 length, then the bytes; -1 = null
 *   compact string / bytes               unsigned varint length + 1, then the bytes; 0 = null
 *   array / compact array                int32 count (-1 = null) / unsigned varint count + 1 (0 = null)
 */
import { malformed } from './protocol-error.ts';

const TWO_TO_32 = 2 ** 32;

export class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.pos = pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(bytes: number, what: string): void {
    if (bytes > this.end - this.pos) {
      throw malformed(`${what} needs ${bytes} bytes at offset ${this.pos}, but only ${this.end - this.pos} remain`);
    }
  }

  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }

  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2, 'uint16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** int64 as a JS number: exact up to 2^53, rounded beyond (offsets and timestamps stay far below). */
  int64(): number {
    this.need(8, 'int64');
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * TWO_TO_32 + lo;
  }

  float64(): number {
    this.need(8, 'float64');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  bool(): boolean {
    this.need(1, 'bool');
    return this.buf[this.pos++] !== 0;
  }

  /** A UUID in its usual text form, 8-4-4-4-12 lowercase hex digits. */
  uuid(): string {
    this.need(16, 'uuid');
    const hex = this.buf.toString('hex', this.pos, this.pos + 16);
    this.pos += 16;
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** An unsigned varint of at most 32 bits (5 bytes), as the compact lengths and tags use. */
  uvarint(): number {
    // Most lengths and counts fit in one byte.
    if (this.pos < this.end && this.buf[this.pos] < 0x80) return this.buf[this.pos++];
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw malformed(`unsigned varint runs past the end of the frame`);
      const byte = this.buf[this.pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) throw malformed(`unsigned varint ${value} does not fit in 32 bits`);
        return value;
      }
    }
    throw malformed(`unsigned varint longer than 5 bytes at offset ${this.pos}`);
  }

  /** The length of a string, bytes or array: -1 for null, checked to be >= -1. */
  length(compact: boolean, wide: boolean, what: string): number {
    const n = compact ? this.uvarint() - 1 : wide ? this.int32() : this.int16();
    if (n < -1) throw malformed(`${what} has a negative length ${n}`);
    return n;
  }

  /** `n` bytes as a view of the frame (no copy), checked to be within it. */
  slice(n: number, what: string): Buffer {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  utf8(n: number, what: string): string {
    this.need(n, what);
    const out = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }
}
