/**
 * `BatchPositions`: where each record of one RecordBatch v2 sits in the batch's bytes (the format is
 * documented in log/format/batch-header.ts and log/record-batch.ts): offset, timestamp, and the
 * position and length of key, value and headers, in typed arrays that are reused from batch to
 * batch. `RecordBatch.records()` makes an object and two Buffer views per record; a task only needs
 * the value's bytes, so it reads them in place and builds a full `LogRecord` only for the rare
 * record it sends to a side output. (In memory only: "index" in the log means its on-disk files.)
 *
 * A compressed batch is read through its decoded form (log/record-batch.ts `readableBatch`), so
 * `bytes` is not always the buffer passed to `load`.
 *
 * Not thread-safe across interleaved use: one object serves one `load` at a time, which holds as
 * long as a plan folds one batch at a time (folding is synchronous).
 */
import { type LogRecord, readHeaders, readableBatch } from '../log/index.ts';
import {
  ATTR_COMPRESSION_MASK,
  ATTR_TIMESTAMP_LOG_APPEND,
  BATCH_HEADER_BYTES,
  BatchField,
  type Cursor,
  readInt64,
  readVarint,
} from '../log/format/index.ts';

export class BatchPositions {
  bytes: Buffer = Buffer.alloc(0);
  /** Records found by the last `load` (those at or after its `fromOffset`). */
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

  /**
   * Finds the records of the batch in `batch` (one complete, CRC-checked batch) whose offset is at
   * least `fromOffset`. A compressed batch is decompressed first: the positions then refer to its
   * decoded form, which `bytes` holds until the next `load` (callers read values from `bytes`).
   */
  load(batch: Buffer, fromOffset: number): number {
    let attributes = batch.readInt16BE(BatchField.attributes);
    let bytes = batch;
    if ((attributes & ATTR_COMPRESSION_MASK) !== 0) {
      bytes = readableBatch(batch);
      attributes = bytes.readInt16BE(BatchField.attributes);
    }
    const base = readInt64(bytes, BatchField.baseOffset);
    const baseTs = readInt64(bytes, BatchField.baseTimestamp);
    const maxTs = readInt64(bytes, BatchField.maxTimestamp);
    const total = bytes.readInt32BE(BatchField.recordCount);
    const logAppendTime = (attributes & ATTR_TIMESTAMP_LOG_APPEND) !== 0;
    this.bytes = bytes;
    this.reserve(total);
    const end = bytes.length;
    const c: Cursor = { pos: BATCH_HEADER_BYTES };
    let n = 0;
    for (let i = 0; i < total; i++) {
      const length = readVarint(bytes, c, end);
      const recordEnd = c.pos + length;
      if (length < 0 || recordEnd > end)
        throw new RangeError(`record ${i} of batch at offset ${base} runs past the batch`);
      c.pos++; // attributes
      const tsDelta = readVarint(bytes, c, recordEnd);
      const offset = base + readVarint(bytes, c, recordEnd);
      if (offset < fromOffset) {
        c.pos = recordEnd;
        continue;
      }
      const keyLength = readVarint(bytes, c, recordEnd);
      this.keyStart[n] = c.pos;
      this.keyLength[n] = keyLength;
      if (keyLength > 0) c.pos += keyLength;
      const valueLength = readVarint(bytes, c, recordEnd);
      this.valueStart[n] = c.pos;
      this.valueLength[n] = valueLength;
      if (valueLength > 0) c.pos += valueLength;
      this.headersStart[n] = c.pos;
      const headerCount = readVarint(bytes, c, recordEnd);
      for (let h = 0; h < headerCount; h++) {
        const hk = readVarint(bytes, c, recordEnd);
        c.pos += hk;
        const hv = readVarint(bytes, c, recordEnd);
        if (hv > 0) c.pos += hv;
      }
      if (c.pos !== recordEnd)
        throw new RangeError(`record ${i} of batch at offset ${base} has ${recordEnd - c.pos} unexplained bytes`);
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
    const headers = readHeaders(buf, { pos: this.headersStart[i] }, end);
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
