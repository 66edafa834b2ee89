/**
 * Zigzag varints, as Kafka's record format (and protobuf) writes them: the value is zigzag-mapped
 * (0, -1, 1, -2, … to 0, 1, 2, 3, …) and written 7 bits per byte, least significant group first,
 * the high bit of each byte set when another follows. A "varlong" is the same encoding of a 64-bit
 * value; here both are JavaScript numbers, exact for |n| < 2^53.
 *
 * Invariants: a varint is at most 10 bytes; a decoder never reads at or past `end` (it throws a
 * RangeError instead), so a damaged length cannot make it read another record's bytes.
 */

/** Where the next read starts; `readVarint` advances it. One object reused across a whole batch. */
export interface Cursor {
  pos: number;
}

/** Size in bytes of `n` as a zigzag varint/varlong (safe for |n| < 2^53). */
export function varintSize(n: number): number {
  if (n >= -0x40000000 && n < 0x40000000) {
    // Fast path for 31-bit values (lengths, deltas): no loop, no floating-point division.
    const z = ((n << 1) ^ (n >> 31)) >>> 0;
    return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
  }
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    size++;
  }
  return size;
}

/** Writes `n` as a zigzag varint at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  if (n >= -0x40000000 && n < 0x40000000) {
    // Fast path for 31-bit values (lengths, deltas): plain 32-bit integer arithmetic.
    let z = (n << 1) ^ (n >> 31);
    while (z >= 128) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
    return pos;
  }
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  while (z >= 128) {
    buf[pos++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

/**
 * Reads the zigzag varint at `cursor.pos` (before `end`), advancing the cursor. Throws a RangeError
 * when it runs to `end` or is longer than 10 bytes.
 */
export function readVarint(buf: Buffer, cursor: Cursor, end: number): number {
  let pos = cursor.pos;
  // Fast paths for one and two bytes (every length and delta of a record under 8 KB).
  if (pos + 1 < end) {
    const b = buf[pos];
    if (b < 128) {
      cursor.pos = pos + 1;
      return b & 1 ? -(b + 1) / 2 : b / 2;
    }
    const b1 = buf[pos + 1];
    if (b1 < 128) {
      const z = (b & 0x7f) | (b1 << 7);
      cursor.pos = pos + 2;
      return z & 1 ? -(z + 1) / 2 : z / 2;
    }
  }
  let z = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new RangeError('varint runs past the end of the batch');
    const b = buf[pos++];
    z += (b & 0x7f) * scale;
    if (b < 128) {
      cursor.pos = pos;
      // Zigzag decode with floating-point arithmetic so values above 2^31 survive.
      return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    }
    scale *= 128;
  }
  throw new RangeError('varint is longer than 10 bytes');
}
