/**
 * Kafka RecordBatch v2 ("magic 2"), the byte format of every batch Kappa stores, byte for byte as
 * a Kafka broker stores it, so a Kafka wire-protocol front end can serve Fetch from segment bytes.
 *
 * Batch (all integers big-endian):
 *
 *   offset  size  field
 *        0     8  baseOffset            int64   offset of the first record
 *        8     4  batchLength           int32   bytes after this field (total size - 12)
 *       12     4  partitionLeaderEpoch  int32   always 0 here (no replication)
 *       16     1  magic                 int8    2
 *       17     4  crc                   uint32  CRC-32C (Castagnoli) of bytes 21..end
 *       21     2  attributes            int16   bits 0-2 compression (only 0 = none is written),
 *                                               bit 3 timestamp type, bit 4 transactional, bit 5 control
 *       23     4  lastOffsetDelta       int32   lastOffset - baseOffset
 *       27     8  baseTimestamp         int64   timestamp of the first record (ms)
 *       35     8  maxTimestamp          int64
 *       43     8  producerId            int64   -1 when not an idempotent producer
 *       51     2  producerEpoch         int16
 *       53     4  baseSequence          int32
 *       57     4  recordCount           int32
 *       61     …  records
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
 */
import { crc32c } from '@node-rs/crc32';

export const BATCH_HEADER_BYTES = 61;
/** Bytes before `batchLength`'s coverage starts: baseOffset (8) + batchLength (4). */
export const BATCH_LOG_OVERHEAD = 12;
const CRC_OFFSET = 17;
const CRC_START = 21;
const MAGIC_OFFSET = 16;
const TWO_32 = 4294967296;

export const ATTR_COMPRESSION_MASK = 0x07;
export const ATTR_TIMESTAMP_LOG_APPEND = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

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

export function writeInt64(buf: Buffer, pos: number, n: number): void {
  const hi = Math.floor(n / TWO_32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(n - hi * TWO_32, pos + 4);
}

export function readInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
}

/** Size in bytes of `n` as a zigzag varint/varlong (safe for |n| < 2^53). */
export function varintSize(n: number): number {
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

/** Reads a zigzag varint at `cursor.pos`, advancing it. Throws on a varint longer than 10 bytes. */
function readVarint(buf: Buffer, cursor: { pos: number }, end: number): number {
  let pos = cursor.pos;
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

function byteLen(v: Buffer | string | null): number {
  if (v === null) return -1;
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

function writeBytes(buf: Buffer, pos: number, v: Buffer | string | null, len: number): number {
  pos = writeVarint(buf, pos, len);
  if (len > 0) {
    if (typeof v === 'string') buf.write(v, pos, len, 'utf8');
    else (v as Buffer).copy(buf, pos);
    pos += len;
  }
  return pos;
}

/**
 * Encodes records into one RecordBatch v2 with offsets baseOffset, baseOffset+1, ….
 * Two passes: the first sizes every record (so the buffer is allocated once, exactly), the second
 * writes. No per-record object is created.
 */
export function encodeBatch(records: readonly EncodableRecord[], opts: BatchOptions): Buffer {
  const n = records.length;
  if (n === 0) throw new RangeError('a record batch needs at least one record');
  const baseTimestamp = records[0].timestamp;
  let maxTimestamp = baseTimestamp;
  // Per record: body size, key length, value length (-1 = null), computed once and reused by the writer.
  const lens = new Int32Array(n * 3);
  let total = BATCH_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
    const k = r.key;
    const v = r.value;
    const keyLen = k == null ? -1 : typeof k === 'string' ? Buffer.byteLength(k) : k.length;
    const valueLen = v == null ? -1 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
    let size = 1 + varintSize(r.timestamp - baseTimestamp) + varintSize(i) + varintSize(keyLen) + (keyLen > 0 ? keyLen : 0) + varintSize(valueLen) + (valueLen > 0 ? valueLen : 0);
    const headers = r.headers;
    if (headers && headers.length > 0) {
      size += varintSize(headers.length);
      for (let h = 0; h < headers.length; h++) {
        const hk = Buffer.byteLength(headers[h].key);
        const hv = byteLen(headers[h].value);
        size += varintSize(hk) + hk + varintSize(hv) + Math.max(hv, 0);
      }
    } else size += 1;
    lens[i * 3] = size;
    lens[i * 3 + 1] = keyLen;
    lens[i * 3 + 2] = valueLen;
    total += varintSize(size) + size;
  }

  const buf = Buffer.allocUnsafe(total);
  writeInt64(buf, 0, opts.baseOffset);
  buf.writeInt32BE(total - BATCH_LOG_OVERHEAD, 8);
  buf.writeInt32BE(0, 12);
  buf.writeInt8(2, MAGIC_OFFSET);
  buf.writeInt16BE(opts.attributes ?? 0, 21);
  buf.writeInt32BE(n - 1, 23);
  writeInt64(buf, 27, baseTimestamp);
  writeInt64(buf, 35, maxTimestamp);
  writeInt64(buf, 43, opts.producerId ?? -1);
  buf.writeInt16BE(opts.producerEpoch ?? -1, 51);
  buf.writeInt32BE(opts.baseSequence ?? -1, 53);
  buf.writeInt32BE(n, 57);

  let pos = BATCH_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    pos = writeVarint(buf, pos, lens[i * 3]);
    buf[pos++] = 0;
    pos = writeVarint(buf, pos, r.timestamp - baseTimestamp);
    pos = writeVarint(buf, pos, i);
    const keyLen = lens[i * 3 + 1];
    pos = writeVarint(buf, pos, keyLen);
    if (keyLen > 0) {
      if (typeof r.key === 'string') buf.write(r.key, pos, keyLen, 'utf8');
      else buf.set(r.key as Buffer, pos);
      pos += keyLen;
    }
    const valueLen = lens[i * 3 + 2];
    pos = writeVarint(buf, pos, valueLen);
    if (valueLen > 0) {
      if (typeof r.value === 'string') buf.write(r.value, pos, valueLen, 'utf8');
      else buf.set(r.value as Buffer, pos);
      pos += valueLen;
    }
    const headers = r.headers;
    if (headers && headers.length > 0) {
      pos = writeVarint(buf, pos, headers.length);
      for (let h = 0; h < headers.length; h++) {
        pos = writeBytes(buf, pos, headers[h].key, Buffer.byteLength(headers[h].key));
        pos = writeBytes(buf, pos, headers[h].value, byteLen(headers[h].value));
      }
    } else buf[pos++] = 0;
  }
  if (pos !== total) throw new Error(`batch encoder wrote ${pos} bytes but sized ${total}`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), CRC_OFFSET);
  return buf;
}

/** Rewrites the base offset of an encoded batch in place. The CRC does not cover it. */
export function setBaseOffset(batch: Buffer, baseOffset: number): void {
  writeInt64(batch, 0, baseOffset);
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
  if (end - pos < BATCH_HEADER_BYTES) return { size: 0, problem: 'incomplete', detail: `only ${end - pos} bytes left, a batch header needs ${BATCH_HEADER_BYTES}` };
  const batchLength = buf.readInt32BE(pos + 8);
  const size = batchLength + BATCH_LOG_OVERHEAD;
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || size > sizeMax) {
    return { size: 0, problem: 'bad-length', detail: `batch length ${batchLength} is impossible` };
  }
  const magic = buf[pos + MAGIC_OFFSET];
  if (magic !== 2) return { size, problem: 'bad-magic', detail: `magic byte is ${magic}, expected 2` };
  if (end - pos < size) return { size, problem: 'incomplete', detail: `batch of ${size} bytes but only ${end - pos} bytes left` };
  const stored = buf.readUInt32BE(pos + CRC_OFFSET);
  const computed = crc32c(buf.subarray(pos + CRC_START, pos + size));
  if (stored !== computed) {
    return { size, problem: 'bad-crc', detail: `CRC-32C mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})` };
  }
  const lastOffsetDelta = buf.readInt32BE(pos + 23);
  const count = buf.readInt32BE(pos + 57);
  if (count < 1 || lastOffsetDelta !== count - 1) {
    return { size, problem: 'bad-count', detail: `record count ${count} disagrees with last offset delta ${lastOffsetDelta}` };
  }
  return { size, problem: null, detail: '' };
}

/**
 * Walks the records of a batch that passed `checkBatch` and checks their structure: every length
 * stays inside its record and the batch, offset deltas are 0, 1, 2, … (what sequence numbers and
 * offsets of idempotent appends rely on), and the records fill the batch exactly. Returns a
 * description of the first problem, or null. For batches from outside (`appendEncoded`): their CRC
 * only proves that the bytes are what the sender computed it over, not that a reader can decode
 * them. Allocates nothing per record.
 */
export function checkRecords(buf: Buffer): string | null {
  const count = buf.readInt32BE(57);
  const end = buf.length;
  const cursor = { pos: BATCH_HEADER_BYTES };
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
      if (cursor.pos !== recordEnd) return `record ${i} has ${recordEnd - cursor.pos} bytes its fields do not account for`;
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

  /** `bytes` holds exactly one complete, already-checked batch. */
  constructor(readonly bytes: Buffer) {
    this.baseOffset = readInt64(bytes, 0);
    this.lastOffset = this.baseOffset + bytes.readInt32BE(23);
    this.attributes = bytes.readInt16BE(21);
    this.baseTimestamp = readInt64(bytes, 27);
    this.maxTimestamp = readInt64(bytes, 35);
    this.producerId = readInt64(bytes, 43);
    this.producerEpoch = bytes.readInt16BE(51);
    this.baseSequence = bytes.readInt32BE(53);
    this.count = bytes.readInt32BE(57);
  }

  get sizeBytes(): number {
    return this.bytes.length;
  }

  /** Decodes the records whose offset is at least `fromOffset`. */
  records(fromOffset = 0): LogRecord[] {
    const buf = this.bytes;
    if ((this.attributes & ATTR_COMPRESSION_MASK) !== 0) {
      throw new RangeError(`compressed record batches (codec ${this.attributes & ATTR_COMPRESSION_MASK}) are not supported yet`);
    }
    const end = buf.length;
    const cursor = { pos: BATCH_HEADER_BYTES };
    const out: LogRecord[] = [];
    const base = this.baseOffset;
    const baseTs = this.baseTimestamp;
    const logAppendTime = (this.attributes & ATTR_TIMESTAMP_LOG_APPEND) !== 0;
    for (let i = 0; i < this.count; i++) {
      const length = readVarint(buf, cursor, end);
      const recordEnd = cursor.pos + length;
      if (length < 0 || recordEnd > end) throw new RangeError(`record ${i} of batch at offset ${base} runs past the batch`);
      cursor.pos++; // attributes
      const tsDelta = readVarint(buf, cursor, recordEnd);
      const offsetDelta = readVarint(buf, cursor, recordEnd);
      const offset = base + offsetDelta;
      if (offset < fromOffset) {
        cursor.pos = recordEnd;
        continue;
      }
      const keyLen = readVarint(buf, cursor, recordEnd);
      let key: Buffer | null = null;
      if (keyLen >= 0) {
        key = buf.subarray(cursor.pos, cursor.pos + keyLen);
        cursor.pos += keyLen;
      }
      const valueLen = readVarint(buf, cursor, recordEnd);
      let value: Buffer | null = null;
      if (valueLen >= 0) {
        value = buf.subarray(cursor.pos, cursor.pos + valueLen);
        cursor.pos += valueLen;
      }
      const headerCount = readVarint(buf, cursor, recordEnd);
      let headers = NO_HEADERS;
      if (headerCount > 0) {
        headers = [];
        for (let h = 0; h < headerCount; h++) {
          const hkLen = readVarint(buf, cursor, recordEnd);
          const hk = buf.toString('utf8', cursor.pos, cursor.pos + hkLen);
          cursor.pos += hkLen;
          const hvLen = readVarint(buf, cursor, recordEnd);
          let hv: Buffer | null = null;
          if (hvLen >= 0) {
            hv = buf.subarray(cursor.pos, cursor.pos + hvLen);
            cursor.pos += hvLen;
          }
          headers.push({ key: hk, value: hv });
        }
      }
      if (cursor.pos !== recordEnd) throw new RangeError(`record ${i} of batch at offset ${base} has ${recordEnd - cursor.pos} unexplained bytes`);
      out.push({ offset, timestamp: logAppendTime ? this.maxTimestamp : baseTs + tsDelta, key, value, headers });
    }
    return out;
  }
}
