/**
 * Big-endian int64 fields as JavaScript numbers: exact for |n| < 2^53, which holds for every
 * offset, timestamp and producer id Kappa writes. Used by the batch header, the producer-state
 * snapshot and the time index.
 */
const TWO_32 = 4294967296;

export function writeInt64(buf: Buffer, pos: number, n: number): void {
  const hi = Math.floor(n / TWO_32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(n - hi * TWO_32, pos + 4);
}

export function readInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
}
