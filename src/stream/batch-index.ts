/**
 * Where each record of one RecordBatch v2 sits in the batch's bytes (the format is documented in
 * log/record-batch.ts): offset, timestamp, and the position and length of key, value and headers,
 * in typed arrays that are reused from batch to batch. `RecordBatch.records()` makes an object and
 * two Buffer views per record; a task only needs the value's bytes, so it reads them in place and
 * builds a full `LogRecord` only for the rare record it sends to a side output.
 *
 * Not thread-safe across interleaved use: one index serves one `load` at a time, which holds as
 * long as a plan folds one batch at a time (folding is synchronous).
 */
import type { LogRecord, RecordHeader } from '../log/index.ts';
import { ATTR_COMPRESSION_MASK, ATTR_TIMESTAMP_LOG_APPEND, BATCH_HEADER_BYTES, readInt64 } from '../log/record-batch.ts';

interface Cursor {
  pos: number;
}

/** A zigzag varint at `c.pos` (as the log writes them), advancing `c.pos`. */
function varint(buf: Buffer, c: Cursor, end: number): number {
  let pos = c.pos;
  // Fast paths for one and two bytes (every length and delta of a record under 8 KB).
  if (pos + 1 < end) {
    const b = buf[pos];
    if (b < 128) {
      c.pos = pos + 1;
      return b & 1 ? -(b + 1) / 2 : b / 2;
    }
    const b1 = buf[pos + 1];
    if (b1 < 128) {
      const z = (b & 0x7f) | (b1 << 7);
      c.pos = pos + 2;
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
      c.pos = pos;
      return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    }
    scale *= 128;
  }
  throw new RangeError('varint is longer than 10 bytes');
}

const NO_HEADERS: RecordHeader[] = [];

export class BatchIndex {
  bytes: Buffer = Buffer.alloc(0);
  /** Records indexed by the last `load` (those at or after its `fromOffset`). */
  count = 0;
  offsets = new Float64Array(0);
  timestamps = new Float64Array(0);
  keyStart = new Int32Array(0);
  /** -1 for a null key. */
  keyLength = new Int32Array(0);
  valueStart = new Int32Array(0);
  /** -1 for a null value. */
  valueLength = new Int32Array(0);
  headersStart = new Int32Array(0);
  recordEnd = new Int32Array(0);

  /** Indexes the records of the batch in `bytes` (one complete, CRC-checked batch) whose offset is at least `fromOffset`. */
  load(bytes: Buffer, fromOffset: number): number {
    const attributes = bytes.readInt16BE(21);
    if ((attributes & ATTR_COMPRESSION_MASK) !== 0) {
      throw new RangeError(`compressed record batches (codec ${attributes & ATTR_COMPRESSION_MASK}) are not supported yet`);
    }
    const base = readInt64(bytes, 0);
    const baseTs = readInt64(bytes, 27);
    const maxTs = readInt64(bytes, 35);
    const total = bytes.readInt32BE(57);
    const logAppendTime = (attributes & ATTR_TIMESTAMP_LOG_APPEND) !== 0;
    this.bytes = bytes;
    this.reserve(total);
    const end = bytes.length;
    const c: Cursor = { pos: BATCH_HEADER_BYTES };
    let n = 0;
    for (let i = 0; i < total; i++) {
      const length = varint(bytes, c, end);
      const recordEnd = c.pos + length;
      if (length < 0 || recordEnd > end) throw new RangeError(`record ${i} of batch at offset ${base} runs past the batch`);
      c.pos++; // attributes
      const tsDelta = varint(bytes, c, recordEnd);
      const offset = base + varint(bytes, c, recordEnd);
      if (offset < fromOffset) {
        c.pos = recordEnd;
        continue;
      }
      const keyLength = varint(bytes, c, recordEnd);
      this.keyStart[n] = c.pos;
      this.keyLength[n] = keyLength;
      if (keyLength > 0) c.pos += keyLength;
      const valueLength = varint(bytes, c, recordEnd);
      this.valueStart[n] = c.pos;
      this.valueLength[n] = valueLength;
      if (valueLength > 0) c.pos += valueLength;
      this.headersStart[n] = c.pos;
      const headerCount = varint(bytes, c, recordEnd);
      for (let h = 0; h < headerCount; h++) {
        const hk = varint(bytes, c, recordEnd);
        c.pos += hk;
        const hv = varint(bytes, c, recordEnd);
        if (hv > 0) c.pos += hv;
      }
      if (c.pos !== recordEnd) throw new RangeError(`record ${i} of batch at offset ${base} has ${recordEnd - c.pos} unexplained bytes`);
      this.recordEnd[n] = recordEnd;
      this.offsets[n] = offset;
      this.timestamps[n] = logAppendTime ? maxTs : baseTs + tsDelta;
      n++;
    }
    this.count = n;
    return n;
  }

  /** Record `i` of the last `load` as `RecordBatch.records()` would give it (views into the batch's bytes). */
  record(i: number): LogRecord {
    if (i < 0 || i >= this.count) throw new RangeError(`invariant: record ${i} of ${this.count}`);
    const buf = this.bytes;
    const keyLength = this.keyLength[i];
    const valueLength = this.valueLength[i];
    const end = this.recordEnd[i];
    const c: Cursor = { pos: this.headersStart[i] };
    const headerCount = varint(buf, c, end);
    let headers = NO_HEADERS;
    if (headerCount > 0) {
      headers = [];
      for (let h = 0; h < headerCount; h++) {
        const hk = varint(buf, c, end);
        const key = buf.toString('utf8', c.pos, c.pos + hk);
        c.pos += hk;
        const hv = varint(buf, c, end);
        headers.push({ key, value: hv < 0 ? null : buf.subarray(c.pos, c.pos + hv) });
        if (hv > 0) c.pos += hv;
      }
    }
    return {
      offset: this.offsets[i],
      timestamp: this.timestamps[i],
      key: keyLength < 0 ? null : buf.subarray(this.keyStart[i], this.keyStart[i] + keyLength),
      value: valueLength < 0 ? null : buf.subarray(this.valueStart[i], this.valueStart[i] + valueLength),
      headers,
    };
  }

  private reserve(n: number): void {
    if (this.offsets.length >= n) return;
    const size = Math.max(n, 2 * this.offsets.length, 64);
    this.offsets = new Float64Array(size);
    this.timestamps = new Float64Array(size);
    this.keyStart = new Int32Array(size);
    this.keyLength = new Int32Array(size);
    this.valueStart = new Int32Array(size);
    this.valueLength = new Int32Array(size);
    this.headersStart = new Int32Array(size);
    this.recordEnd = new Int32Array(size);
  }
}
