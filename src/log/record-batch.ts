/**
 * Kafka RecordBatch v2 ("magic 2"): the codec of the records inside a batch, and the batch checks.
 * The 61-byte batch header, with the offset of every field, is documented in format/batch-header.ts;
 * the zigzag varints in format/varint.ts.
 *
 * Record (varint = zigzag LEB128 as in protobuf; varlong the same for 64-bit values):
 *
 *   length varint (bytes after this field), attributes int8 (unused, 0),
 *   timestampDelta varlong, offsetDelta varint,
 *   keyLength varint (-1 = null key), key bytes, valueLength varint (-1 = null value), value bytes,
 *   headerCount varint, then per header: keyLength varint, key UTF-8, valueLength varint, value bytes.
 *
 * Invariants checked on every read: magic is 2, batchLength covers at least the fixed header, the
 * CRC matches, and the record count agrees with lastOffsetDelta. Offsets inside one batch are
 * contiguous (offsetDelta = index), which is what Kappa writes; records decoded from a foreign batch
 * keep whatever offsetDelta they carry.
 *
 * Compressed batches (attributes bits 0-2, codecs in compression.ts) are stored as their producer
 * sent them: the CRC covers the compressed bytes. A reader first turns one into its decoded form
 * (`decompressBatch`: the same header, compression bits cleared, then the inflated records), an
 * in-memory copy that is never written: its CRC still describes the compressed bytes.
 */
import { crc32c } from '@node-rs/crc32';
import { KappaError } from '../errors.ts';
import { Codec, CompressionError, codecName, compress, decompress } from './compression.ts';
import {
  ATTR_COMPRESSION_MASK,
  ATTR_TIMESTAMP_LOG_APPEND,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  BatchField,
  CRC_START,
  type Cursor,
  MAGIC_V2,
  readInt64,
  readVarint,
  varintSize,
  writeInt64,
  writeVarint,
} from './format/index.ts';

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** A record as given to the encoder. Strings are written as UTF-8. */
export interface EncodableRecord {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: RecordHeader[] | null;
  timestamp: number;
}

/** A record as read back from the log. `key` and `value` are views into the batch's bytes. */
export interface LogRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface BatchOptions {
  baseOffset: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  attributes?: number;
}

const NO_HEADERS: RecordHeader[] = [];

function byteLen(v: Buffer | string | null): number {
  if (v === null) return -1;
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/** Writes `len` (-1 for null) as a varint, then the bytes of `v`; returns the position after them. */
function writeBytes(buf: Buffer, pos: number, v: Buffer | string | null, len: number): number {
  pos = writeVarint(buf, pos, len);
  if (len > 0) {
    if (typeof v === 'string') buf.write(v, pos, len, 'utf8');
    else buf.set(v as Buffer, pos);
    pos += len;
  }
  return pos;
}

/** Per record: body size, key length, value length (-1 = null), computed once and reused by the writer. */
const LENS_PER_RECORD = 3;

/** The sizes `sizeBatch` keeps, reused by every call (grown when a batch needs more). */
let lensScratch = new Int32Array(1024 * LENS_PER_RECORD);

/**
 * Encodes records into one RecordBatch v2 with offsets baseOffset, baseOffset+1, ….
 * Two passes: the first sizes every record (so the buffer is allocated once, exactly), the second
 * writes. No per-record object is created, and a record without headers costs no function call
 * but the varint helpers (small enough to be inlined): calls to a per-record sizer and writer were
 * 40% of the time of a batch of 1,000 100-byte values. `alloc` gives the batch's buffer, of
 * exactly the size asked (a caller may hand out reused memory).
 */
export function encodeBatch(
  records: readonly EncodableRecord[],
  opts: BatchOptions,
  alloc: (size: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const n = records.length;
  if (n === 0) throw new RangeError('a record batch needs at least one record');
  const baseTimestamp = records[0].timestamp;
  if (lensScratch.length < n * LENS_PER_RECORD) lensScratch = new Int32Array(n * LENS_PER_RECORD);
  const lens = lensScratch;
  const total = sizeBatch(records, lens);
  let maxTimestamp = baseTimestamp;
  for (let i = 0; i < n; i++) if (records[i].timestamp > maxTimestamp) maxTimestamp = records[i].timestamp;
  const buf = alloc(total);
  writeHeader(buf, opts, n, baseTimestamp, maxTimestamp);
  let pos = BATCH_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    pos = writeLength(buf, pos, lens[i * LENS_PER_RECORD]);
    buf[pos++] = 0; // attributes
    pos = writeVarint(buf, pos, r.timestamp - baseTimestamp);
    pos = writeLength(buf, pos, i);
    const keyLen = lens[i * LENS_PER_RECORD + 1];
    if (keyLen < 0)
      buf[pos++] = 1; // -1: a null key
    else {
      pos = writeLength(buf, pos, keyLen);
      const k = r.key!;
      if (typeof k === 'string') buf.write(k, pos, keyLen, 'utf8');
      else buf.set(k, pos);
      pos += keyLen;
    }
    const valueLen = lens[i * LENS_PER_RECORD + 2];
    if (valueLen < 0) buf[pos++] = 1;
    else {
      pos = writeLength(buf, pos, valueLen);
      const v = r.value!;
      if (typeof v === 'string') buf.write(v, pos, valueLen, 'utf8');
      else buf.set(v, pos);
      pos += valueLen;
    }
    const headers = r.headers;
    if (headers && headers.length > 0) pos = writeHeaders(buf, pos, headers);
    else buf[pos++] = 0;
  }
  if (pos !== total) throw new Error(`batch encoder wrote ${pos} bytes but sized ${total}`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), BatchField.crc);
  return buf;
}

/** `writeVarint` of a length or an index (never negative), in 32-bit arithmetic when it fits. */
function writeLength(buf: Buffer, pos: number, n: number): number {
  if (n >= 0x40000000) return writeVarint(buf, pos, n);
  let z = n << 1;
  while (z >= 128) {
    buf[pos++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[pos++] = z;
  return pos;
}

/** The size of the batch `encodeBatch(records, …)` makes. */
export function encodedBatchBytes(records: readonly EncodableRecord[]): number {
  if (lensScratch.length < records.length * LENS_PER_RECORD)
    lensScratch = new Int32Array(records.length * LENS_PER_RECORD);
  return sizeBatch(records, lensScratch);
}

/**
 * Sizes every record (the bytes after its length varint, kept in `lens` with its key and value
 * lengths) and returns the batch's size.
 */
function sizeBatch(records: readonly EncodableRecord[], lens: Int32Array): number {
  const baseTimestamp = records[0].timestamp;
  let total = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const k = r.key;
    const v = r.value;
    const keyLen = k == null ? -1 : typeof k === 'string' ? Buffer.byteLength(k) : k.length;
    const valueLen = v == null ? -1 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
    let size = 1 + varintSize(r.timestamp - baseTimestamp) + varintSize(i);
    size += varintSize(keyLen) + (keyLen > 0 ? keyLen : 0) + varintSize(valueLen) + (valueLen > 0 ? valueLen : 0);
    const headers = r.headers;
    size += headers && headers.length > 0 ? headersSize(headers) : 1;
    lens[i * LENS_PER_RECORD] = size;
    lens[i * LENS_PER_RECORD + 1] = keyLen;
    lens[i * LENS_PER_RECORD + 2] = valueLen;
    total += varintSize(size) + size;
  }
  return total;
}

/** Bytes of a record's headers: their count, then each key and value with its length. */
function headersSize(headers: readonly RecordHeader[]): number {
  let size = varintSize(headers.length);
  for (let h = 0; h < headers.length; h++) {
    const hk = Buffer.byteLength(headers[h].key);
    const hv = byteLen(headers[h].value);
    size += varintSize(hk) + hk + varintSize(hv) + Math.max(hv, 0);
  }
  return size;
}

/** The fixed header of a batch of `count` records; the CRC is written last, over everything after it. */
export function writeHeader(
  buf: Buffer,
  opts: BatchOptions,
  count: number,
  baseTimestamp: number,
  maxTimestamp: number,
): void {
  writeInt64(buf, BatchField.baseOffset, opts.baseOffset);
  buf.writeInt32BE(buf.length - BATCH_LOG_OVERHEAD, BatchField.batchLength);
  buf.writeInt32BE(0, BatchField.partitionLeaderEpoch);
  buf.writeInt8(MAGIC_V2, BatchField.magic);
  buf.writeInt16BE(opts.attributes ?? 0, BatchField.attributes);
  buf.writeInt32BE(count - 1, BatchField.lastOffsetDelta);
  writeInt64(buf, BatchField.baseTimestamp, baseTimestamp);
  writeInt64(buf, BatchField.maxTimestamp, maxTimestamp);
  writeInt64(buf, BatchField.producerId, opts.producerId ?? -1);
  buf.writeInt16BE(opts.producerEpoch ?? -1, BatchField.producerEpoch);
  buf.writeInt32BE(opts.baseSequence ?? -1, BatchField.baseSequence);
  buf.writeInt32BE(count, BatchField.recordCount);
}

/** Writes a record's headers (count, then each key and value) at `pos`; returns the position after them. */
function writeHeaders(buf: Buffer, pos: number, headers: readonly RecordHeader[]): number {
  pos = writeVarint(buf, pos, headers.length);
  for (let h = 0; h < headers.length; h++) {
    pos = writeBytes(buf, pos, headers[h].key, Buffer.byteLength(headers[h].key));
    pos = writeBytes(buf, pos, headers[h].value, byteLen(headers[h].value));
  }
  return pos;
}

/** Rewrites the base offset of an encoded batch in place. The CRC does not cover it. */
export function setBaseOffset(batch: Buffer, baseOffset: number): void {
  writeInt64(batch, BatchField.baseOffset, baseOffset);
}

export type BatchProblem = 'incomplete' | 'bad-length' | 'bad-magic' | 'bad-crc' | 'bad-count';

export interface BatchCheck {
  /** Total bytes of the batch including the 12-byte offset/length prefix, when the length was readable. */
  size: number;
  problem: BatchProblem | null;
  detail: string;
}

/**
 * Checks the batch starting at `pos` within `buf[0..end)`: length, magic, record count and CRC.
 * `incomplete` means the bytes stop before the batch does (a torn tail, or data still being written).
 */
export function checkBatch(buf: Buffer, pos: number, end: number, sizeMax = 0x7fffffff): BatchCheck {
  if (end - pos < BATCH_HEADER_BYTES)
    return {
      size: 0,
      problem: 'incomplete',
      detail: `only ${end - pos} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`,
    };
  const batchLength = buf.readInt32BE(pos + BatchField.batchLength);
  const size = batchLength + BATCH_LOG_OVERHEAD;
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || size > sizeMax) {
    return { size: 0, problem: 'bad-length', detail: `batch length ${batchLength} is impossible` };
  }
  const magic = buf[pos + BatchField.magic];
  if (magic !== MAGIC_V2) return { size, problem: 'bad-magic', detail: `magic byte is ${magic}, expected 2` };
  if (end - pos < size)
    return { size, problem: 'incomplete', detail: `batch of ${size} bytes but only ${end - pos} bytes left` };
  const stored = buf.readUInt32BE(pos + BatchField.crc);
  const computed = crc32c(buf.subarray(pos + CRC_START, pos + size));
  if (stored !== computed) {
    return {
      size,
      problem: 'bad-crc',
      detail: `CRC-32C mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`,
    };
  }
  const lastOffsetDelta = buf.readInt32BE(pos + BatchField.lastOffsetDelta);
  const count = buf.readInt32BE(pos + BatchField.recordCount);
  if (count < 1 || lastOffsetDelta !== count - 1) {
    return {
      size,
      problem: 'bad-count',
      detail: `record count ${count} disagrees with last offset delta ${lastOffsetDelta}`,
    };
  }
  return { size, problem: null, detail: '' };
}

/**
 * Walks the records of a batch that passed `checkBatch` and checks their structure: every length
 * stays inside its record and the batch, offset deltas are 0, 1, 2, … (what sequence numbers and
 * offsets of idempotent appends rely on), and the records fill the batch exactly. Returns a
 * description of the first problem, or null. For batches from outside (`appendEncoded`): their CRC
 * only proves that the bytes are what the sender computed it over, not that a reader can decode
 * them. A compressed batch is decompressed first (to at most `inflatedBytesMax` bytes); a codec
 * this installation cannot decode throws CompressionError `unsupported` (check `codecUnavailable`
 * first to refuse such a batch with its own error). Allocates nothing per record.
 */
export function checkRecords(batch: Buffer, inflatedBytesMax = INFLATED_BATCH_BYTES_MAX): string | null {
  let buf = batch;
  if ((batch.readInt16BE(BatchField.attributes) & ATTR_COMPRESSION_MASK) !== 0) {
    try {
      buf = decompressBatch(batch, inflatedBytesMax);
    } catch (err) {
      if (err instanceof CompressionError) return err.message;
      throw err;
    }
  }
  const count = buf.readInt32BE(BatchField.recordCount);
  const end = buf.length;
  const cursor: Cursor = { pos: BATCH_HEADER_BYTES };
  let i = 0;
  try {
    for (; i < count; i++) {
      const length = readVarint(buf, cursor, end);
      const recordEnd = cursor.pos + length;
      if (length < 1 || recordEnd > end) return `record ${i} claims ${length} bytes, which do not fit in the batch`;
      cursor.pos++; // attributes
      readVarint(buf, cursor, recordEnd); // timestampDelta
      const offsetDelta = readVarint(buf, cursor, recordEnd);
      if (offsetDelta !== i) return `record ${i} has offset delta ${offsetDelta}, expected ${i}`;
      const keyLen = readVarint(buf, cursor, recordEnd);
      if (keyLen < -1) return `record ${i} has key length ${keyLen}`;
      if (keyLen > 0) cursor.pos += keyLen;
      if (cursor.pos > recordEnd) return `record ${i}'s key runs past the end of the record`;
      const valueLen = readVarint(buf, cursor, recordEnd);
      if (valueLen < -1) return `record ${i} has value length ${valueLen}`;
      if (valueLen > 0) cursor.pos += valueLen;
      if (cursor.pos > recordEnd) return `record ${i}'s value runs past the end of the record`;
      const headerCount = readVarint(buf, cursor, recordEnd);
      if (headerCount < 0) return `record ${i} has header count ${headerCount}`;
      for (let h = 0; h < headerCount; h++) {
        const hkLen = readVarint(buf, cursor, recordEnd);
        if (hkLen < 0) return `record ${i} header ${h} has key length ${hkLen}`;
        cursor.pos += hkLen;
        const hvLen = readVarint(buf, cursor, recordEnd);
        if (hvLen < -1) return `record ${i} header ${h} has value length ${hvLen}`;
        if (hvLen > 0) cursor.pos += hvLen;
        if (cursor.pos > recordEnd) return `record ${i} header ${h} runs past the end of the record`;
      }
      if (cursor.pos !== recordEnd)
        return `record ${i} has ${recordEnd - cursor.pos} bytes its fields do not account for`;
    }
  } catch (err) {
    return `record ${i}: ${(err as Error).message}`;
  }
  if (cursor.pos !== end) return `the batch has ${end - cursor.pos} bytes after its last record`;
  return null;
}

/**
 * One batch as read from the log. The header is decoded eagerly (cheap, fixed positions); records
 * are decoded on demand by `records()` so a reader that only forwards bytes never pays for them.
 */
export class RecordBatch {
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly count: number;
  readonly attributes: number;
  readonly baseTimestamp: number;
  readonly maxTimestamp: number;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  /** The decoded form of a compressed batch, made by the first `records()` call. */
  private inflated: Buffer | null = null;

  /** `bytes` holds exactly one complete, already-checked batch. */
  constructor(readonly bytes: Buffer) {
    this.baseOffset = readInt64(bytes, BatchField.baseOffset);
    this.lastOffset = this.baseOffset + bytes.readInt32BE(BatchField.lastOffsetDelta);
    this.attributes = bytes.readInt16BE(BatchField.attributes);
    this.baseTimestamp = readInt64(bytes, BatchField.baseTimestamp);
    this.maxTimestamp = readInt64(bytes, BatchField.maxTimestamp);
    this.producerId = readInt64(bytes, BatchField.producerId);
    this.producerEpoch = bytes.readInt16BE(BatchField.producerEpoch);
    this.baseSequence = bytes.readInt32BE(BatchField.baseSequence);
    this.count = bytes.readInt32BE(BatchField.recordCount);
  }

  get sizeBytes(): number {
    return this.bytes.length;
  }

  /** The batch's compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). */
  get compression(): number {
    return this.attributes & ATTR_COMPRESSION_MASK;
  }

  /**
   * Decodes the records whose offset is at least `fromOffset`; a compressed batch is decompressed
   * once. A null key and an empty header list, one byte each and the common case, are read in place
   * rather than through readBytes and readHeaders.
   */
  records(fromOffset = 0): LogRecord[] {
    const buf = this.compression === 0 ? this.bytes : (this.inflated ??= readableBatch(this.bytes));
    const end = buf.length;
    const cursor: Cursor = { pos: BATCH_HEADER_BYTES };
    const count = this.count;
    const out: LogRecord[] = new Array<LogRecord>(count);
    let n = 0;
    const base = this.baseOffset;
    const baseTs = this.baseTimestamp;
    const logAppendTime = (this.attributes & ATTR_TIMESTAMP_LOG_APPEND) !== 0;
    for (let i = 0; i < count; i++) {
      const length = readVarint(buf, cursor, end);
      const recordEnd = cursor.pos + length;
      if (length < 0 || recordEnd > end)
        throw new RangeError(`record ${i} of batch at offset ${base} runs past the batch`);
      cursor.pos++; // attributes
      const tsDelta = readVarint(buf, cursor, recordEnd);
      const offsetDelta = readVarint(buf, cursor, recordEnd);
      const offset = base + offsetDelta;
      if (offset < fromOffset) {
        cursor.pos = recordEnd;
        continue;
      }
      let key: Buffer | null = null;
      if (buf[cursor.pos] === NULL_LENGTH && cursor.pos < recordEnd) cursor.pos++;
      else key = readBytes(buf, cursor, recordEnd);
      const value = readBytes(buf, cursor, recordEnd);
      let headers = NO_HEADERS;
      if (buf[cursor.pos] === 0 && cursor.pos < recordEnd) cursor.pos++;
      else headers = readHeaders(buf, cursor, recordEnd);
      if (cursor.pos !== recordEnd)
        throw new RangeError(`record ${i} of batch at offset ${base} has ${recordEnd - cursor.pos} unexplained bytes`);
      out[n++] = { offset, timestamp: logAppendTime ? this.maxTimestamp : baseTs + tsDelta, key, value, headers };
    }
    if (n < count) out.length = n;
    return out;
  }
}

/** -1, a null key's or value's length, as its one-byte zigzag varint. */
const NULL_LENGTH = 1;

/** A varint length then that many bytes, as a view into `buf`; null for length -1. Advances the cursor. */
export function readBytes(buf: Buffer, cursor: Cursor, end: number): Buffer | null {
  const length = readVarint(buf, cursor, end);
  if (length < 0) return null;
  const bytes = buf.subarray(cursor.pos, cursor.pos + length);
  cursor.pos += length;
  return bytes;
}

/** A record's header count and headers (keys decoded as UTF-8, values as views). Advances the cursor. */
export function readHeaders(buf: Buffer, cursor: Cursor, end: number): RecordHeader[] {
  const headerCount = readVarint(buf, cursor, end);
  if (headerCount <= 0) return NO_HEADERS;
  const headers: RecordHeader[] = [];
  for (let h = 0; h < headerCount; h++) {
    const keyLength = readVarint(buf, cursor, end);
    const key = buf.toString('utf8', cursor.pos, cursor.pos + keyLength);
    cursor.pos += keyLength;
    headers.push({ key, value: readBytes(buf, cursor, end) });
  }
  return headers;
}

/**
 * The longest a batch's decoded form may be when read back: the longest batch a segment holds
 * (segment.ts BATCH_BYTES_MAX). Appends use their topic's own, often smaller, limit.
 */
export const INFLATED_BATCH_BYTES_MAX = 256 << 20;

/**
 * The decoded form of `batch` (one complete, CRC-checked batch): the batch itself when it is not
 * compressed; otherwise a new buffer with its header (compression bits cleared, batchLength set to
 * the new size, the CRC left as it was) and then its records, inflated to at most `bytesMax` bytes
 * in all. Throws CompressionError when the codec is unavailable here or the payload does not decode.
 */
export function decompressBatch(batch: Buffer, bytesMax = INFLATED_BATCH_BYTES_MAX): Buffer {
  const attributes = batch.readInt16BE(BatchField.attributes);
  const codec = attributes & ATTR_COMPRESSION_MASK;
  if (codec === 0) return batch;
  const records = decompress(codec, batch.subarray(BATCH_HEADER_BYTES), bytesMax - BATCH_HEADER_BYTES);
  const out = Buffer.allocUnsafe(BATCH_HEADER_BYTES + records.length);
  batch.copy(out, 0, 0, BATCH_HEADER_BYTES);
  records.copy(out, BATCH_HEADER_BYTES);
  out.writeInt16BE(attributes & ~ATTR_COMPRESSION_MASK, BatchField.attributes);
  out.writeInt32BE(out.length - BATCH_LOG_OVERHEAD, BatchField.batchLength);
  return out;
}

/**
 * `decompressBatch` for a batch read from the log: a failure is a KappaError naming the batch. The
 * log accepted the batch, so its payload decoded then: a codec missing now is
 * KAPPA_UNSUPPORTED_COMPRESSION, a payload that no longer decodes is corruption.
 */
export function readableBatch(batch: Buffer): Buffer {
  try {
    return decompressBatch(batch);
  } catch (err) {
    if (!(err instanceof CompressionError)) throw err;
    const baseOffset = readInt64(batch, BatchField.baseOffset);
    if (err.kind === 'unsupported')
      throw new KappaError(
        'KAPPA_UNSUPPORTED_COMPRESSION',
        `The batch at offset ${baseOffset} cannot be read: ${err.message}.`,
        { baseOffset },
      );
    throw new KappaError(
      'KAPPA_CORRUPT_DATA',
      `The compressed batch at offset ${baseOffset} cannot be read: ${err.message}. Run \`kappa verify\`.`,
      { baseOffset },
    );
  }
}

/**
 * `batch` (uncompressed, as `encodeBatch` writes it) with its records compressed by `codec`, as a
 * Kafka client would send it: attributes, batchLength and CRC rewritten. Throws CompressionError
 * `unsupported` for a codec Kappa cannot write (zstd).
 */
export function compressBatch(batch: Buffer, codec: number): Buffer {
  const attributes = batch.readInt16BE(BatchField.attributes);
  if ((attributes & ATTR_COMPRESSION_MASK) !== 0)
    throw new RangeError(`invariant: the batch is already compressed (${codecName(attributes & 7)})`);
  if (codec === Codec.none) return batch;
  const payload = compress(codec, batch.subarray(BATCH_HEADER_BYTES));
  const out = Buffer.allocUnsafe(BATCH_HEADER_BYTES + payload.length);
  batch.copy(out, 0, 0, BATCH_HEADER_BYTES);
  payload.copy(out, BATCH_HEADER_BYTES);
  out.writeInt16BE(attributes | codec, BatchField.attributes);
  out.writeInt32BE(out.length - BATCH_LOG_OVERHEAD, BatchField.batchLength);
  out.writeUInt32BE(crc32c(out.subarray(CRC_START)), BatchField.crc);
  return out;
}
