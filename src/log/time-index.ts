/**
 * Sparse time index of one segment (`<base>.timeindex`), used by `offsetForTime`.
 *
 * File format: a sequence of 12-byte entries, big-endian: maxTimestampBefore int64,
 * relativeOffset uint32. An entry (t, r) promises that every record of the segment with a relative
 * offset below r has a timestamp <= t. So a search for the first record at or after time T may
 * start at the last entry with t < T. (Kafka's `.timeindex` has the same layout; the meaning of
 * the timestamp differs slightly: Kappa's form makes the skip provably safe with unordered
 * timestamps.)
 * Invariants: both fields strictly increase. When a segment is closed it is sealed with a final
 * entry (segment max timestamp, next offset - base), so a closed segment's newest timestamp, which
 * retention needs, is read from its last entry without scanning it.
 * Crash behaviour: as the offset index, derived data, rebuilt by a scan when missing or implausible.
 */
import { readInt64, writeInt64 } from './format/index.ts';
import { doubled } from './offset-index.ts';

export const TIME_INDEX_ENTRY_BYTES = 12;

export class TimeIndex {
  private timestamps: Float64Array;
  private offsets: Uint32Array;
  length = 0;

  constructor(capacity = 64) {
    this.timestamps = new Float64Array(capacity);
    this.offsets = new Uint32Array(capacity);
  }

  /** Adds an entry unless it would not advance both fields (then it carries no information). */
  maybeAppend(maxTimestampBefore: number, relativeOffset: number): void {
    const n = this.length;
    if (n > 0 && (maxTimestampBefore <= this.timestamps[n - 1] || relativeOffset <= this.offsets[n - 1])) return;
    if (n === this.timestamps.length) {
      this.timestamps = doubled(this.timestamps);
      this.offsets = doubled(this.offsets);
    }
    this.timestamps[n] = maxTimestampBefore;
    this.offsets[n] = relativeOffset;
    this.length = n + 1;
  }

  /**
   * Adds the closing entry of a segment: (its max timestamp, its next relative offset). When the
   * last entry already carries that timestamp (the max came early, or every record has the same
   * time), that entry's offset moves up instead of a new entry being skipped: the entry's promise
   * still holds (no record of the segment is newer than its max), and a reopen finds the closing
   * entry it checks for, rather than distrusting the file and rescanning the segment.
   */
  seal(maxTimestamp: number, nextRelativeOffset: number): void {
    const n = this.length;
    if (n > 0 && this.timestamps[n - 1] === maxTimestamp && this.offsets[n - 1] < nextRelativeOffset)
      this.offsets[n - 1] = nextRelativeOffset;
    else this.maybeAppend(maxTimestamp, nextRelativeOffset);
  }

  /** Relative offset from which a search for the first record with timestamp >= t may start. */
  lookup(t: number): number {
    let lo = 0;
    let hi = this.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid] < t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : this.offsets[found];
  }

  last(): { timestamp: number; relativeOffset: number } | null {
    return this.length === 0
      ? null
      : { timestamp: this.timestamps[this.length - 1], relativeOffset: this.offsets[this.length - 1] };
  }

  toBuffer(): Buffer {
    const buf = Buffer.allocUnsafe(this.length * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.length; i++) {
      writeInt64(buf, i * TIME_INDEX_ENTRY_BYTES, this.timestamps[i]);
      buf.writeUInt32BE(this.offsets[i], i * TIME_INDEX_ENTRY_BYTES + 8);
    }
    return buf;
  }

  static load(buf: Buffer): TimeIndex | null {
    if (buf.length % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new TimeIndex(Math.max(64, buf.length / TIME_INDEX_ENTRY_BYTES));
    for (let pos = 0; pos < buf.length; pos += TIME_INDEX_ENTRY_BYTES) {
      const before = index.length;
      index.maybeAppend(readInt64(buf, pos), buf.readUInt32BE(pos + 8));
      if (index.length === before) return null;
    }
    return index;
  }
}
