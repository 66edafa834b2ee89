/**
 * A RecordBatch v2 of records laid out in one buffer (an output pipeline's records, packed where
 * they were made: stream/worker-protocol.ts): each key and value is copied as bytes, and no object
 * is made per record, where `encodeBatch` takes one object per record. The batch is the same as
 * `encodeBatch` writes for the same records (no headers; attributes 0).
 */
import { crc32c } from '@node-rs/crc32';
import { BATCH_HEADER_BYTES, BatchField, CRC_START, varintSize, writeVarint } from './format/index.ts';
import { type BatchOptions, writeHeader } from './record-batch.ts';

export interface PackedRecords {
  bytes: Buffer;
  /** Where each record's value starts in `bytes`, and its length. */
  valueStarts: Uint32Array;
  valueLengths: Uint32Array;
  /** Where each record's key starts, and its length (-1: no key). Null when no record has a key. */
  keyStarts: Uint32Array | null;
  keyLengths: Int32Array | null;
  timestamps: Float64Array;
}

/** One batch of the records `indices[from]` … `indices[to - 1]` of `src`, in that order. */
export function encodePackedBatch(
  src: PackedRecords,
  indices: Uint32Array,
  from: number,
  to: number,
  opts: BatchOptions,
): Buffer {
  const n = to - from;
  if (n <= 0) throw new RangeError('a record batch needs at least one record');
  const { bytes, valueStarts, valueLengths, keyStarts, keyLengths, timestamps } = src;
  const baseTimestamp = timestamps[indices[from]];
  let maxTimestamp = baseTimestamp;
  const sizes = new Int32Array(n);
  let total = BATCH_HEADER_BYTES;
  for (let j = 0; j < n; j++) {
    const i = indices[from + j];
    const timestamp = timestamps[i];
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const keyLength = keyLengths === null ? -1 : keyLengths[i];
    const valueLength = valueLengths[i];
    // attributes, timestamp delta, offset delta, key, value, and 0 headers.
    const size =
      1 +
      varintSize(timestamp - baseTimestamp) +
      varintSize(j) +
      varintSize(keyLength) +
      (keyLength > 0 ? keyLength : 0) +
      varintSize(valueLength) +
      valueLength +
      1;
    sizes[j] = size;
    total += varintSize(size) + size;
  }
  const buf = Buffer.allocUnsafe(total);
  writeHeader(buf, opts, n, baseTimestamp, maxTimestamp);
  let pos = BATCH_HEADER_BYTES;
  for (let j = 0; j < n; j++) {
    const i = indices[from + j];
    pos = writeVarint(buf, pos, sizes[j]);
    buf[pos++] = 0;
    pos = writeVarint(buf, pos, timestamps[i] - baseTimestamp);
    pos = writeVarint(buf, pos, j);
    const keyLength = keyLengths === null ? -1 : keyLengths[i];
    pos = writeVarint(buf, pos, keyLength);
    if (keyLength > 0) pos += bytes.copy(buf, pos, keyStarts![i], keyStarts![i] + keyLength);
    const valueLength = valueLengths[i];
    pos = writeVarint(buf, pos, valueLength);
    if (valueLength > 0) pos += bytes.copy(buf, pos, valueStarts[i], valueStarts[i] + valueLength);
    buf[pos++] = 0;
  }
  if (pos !== total) throw new Error(`packed batch encoder wrote ${pos} bytes but sized ${total}`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), BatchField.crc);
  return buf;
}
