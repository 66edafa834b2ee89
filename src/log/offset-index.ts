/**
 * Sparse offset index of one segment (`<base>.index`): maps a record offset to the byte position
 * of the batch that starts there, so a read seeks close to its offset and scans at most
 * `indexIntervalBytes` of batch headers.
 *
 * File format: a sequence of 8-byte entries, big-endian, as Kafka's `.index`:
 *   relativeOffset uint32 (batch base offset - segment base offset), position uint32.
 * Invariants: both fields strictly increase; every position is the start of a batch.
 * Crash behaviour: the index is derived data. A closed segment's index is written once, atomically,
 * when the segment rolls; the active segment's index lives in memory and is written at clean close.
 * An index that is missing or fails `load`'s checks is rebuilt by scanning the segment.
 */
export const OFFSET_INDEX_ENTRY_BYTES = 8;

export class OffsetIndex {
  private offsets: Uint32Array;
  private positions: Uint32Array;
  length = 0;

  constructor(capacity = 64) {
    this.offsets = new Uint32Array(capacity);
    this.positions = new Uint32Array(capacity);
  }

  append(relativeOffset: number, position: number): void {
    if (
      this.length > 0 &&
      (relativeOffset <= this.offsets[this.length - 1] || position <= this.positions[this.length - 1])
    ) {
      throw new Error(
        `offset index entries must increase: (${relativeOffset}, ${position}) after (${this.offsets[this.length - 1]}, ${this.positions[this.length - 1]})`,
      );
    }
    if (this.length === this.offsets.length) {
      this.offsets = doubled(this.offsets);
      this.positions = doubled(this.positions);
    }
    this.offsets[this.length] = relativeOffset;
    this.positions[this.length] = position;
    this.length++;
  }

  /** Position of the last indexed batch whose base offset is <= relativeOffset (0 if none). */
  lookup(relativeOffset: number): number {
    return this.floorEntry(relativeOffset).position;
  }

  /**
   * The last entry whose relative offset is <= relativeOffset, or (0, 0) (the segment's first
   * batch) if none: where a search may start, and the base offset the batch there must have.
   */
  floorEntry(relativeOffset: number): { relativeOffset: number; position: number } {
    let lo = 0;
    let hi = this.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsets[mid] <= relativeOffset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0
      ? { relativeOffset: 0, position: 0 }
      : { relativeOffset: this.offsets[found], position: this.positions[found] };
  }

  lastPosition(): number {
    return this.length === 0 ? 0 : this.positions[this.length - 1];
  }

  toBuffer(): Buffer {
    const buf = Buffer.allocUnsafe(this.length * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.length; i++) {
      buf.writeUInt32BE(this.offsets[i], i * OFFSET_INDEX_ENTRY_BYTES);
      buf.writeUInt32BE(this.positions[i], i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return buf;
  }

  /** Parses an index file; returns null when it is not a plausible index for a segment of `segmentBytes`. */
  static load(buf: Buffer, segmentBytes: number): OffsetIndex | null {
    if (buf.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new OffsetIndex(Math.max(64, buf.length / OFFSET_INDEX_ENTRY_BYTES));
    for (let pos = 0; pos < buf.length; pos += OFFSET_INDEX_ENTRY_BYTES) {
      const rel = buf.readUInt32BE(pos);
      const position = buf.readUInt32BE(pos + 4);
      if (position >= segmentBytes) return null;
      if (index.length > 0 && (rel <= index.offsets[index.length - 1] || position <= index.positions[index.length - 1]))
        return null;
      index.append(rel, position);
    }
    return index;
  }
}

/** A copy of `a` in an array twice its size (the in-memory indexes grow by doubling). */
export function doubled<T extends Uint32Array | Float64Array>(a: T): T {
  const grown = new (a.constructor as new (length: number) => T)(a.length * 2);
  grown.set(a);
  return grown;
}
