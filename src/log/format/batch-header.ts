/**
 * The fixed 61-byte header of a Kafka RecordBatch v2 ("magic 2"), the byte format of every batch
 * Kappa stores, byte for byte as a Kafka broker stores it (records: see ../record-batch.ts).
 *
 * Batch header (all integers big-endian):
 *
 *   offset  size  field
 *        0     8  baseOffset            int64   offset of the first record
 *        8     4  batchLength           int32   bytes after this field (total size - 12)
 *       12     4  partitionLeaderEpoch  int32   always 0 here (no replication)
 *       16     1  magic                 int8    2
 *       17     4  crc                   uint32  CRC-32C (Castagnoli) of bytes 21..end
 *       21     2  attributes            int16   bits 0-2 compression (0 none, 1 gzip, 2 snappy,
 *                                               3 lz4, 4 zstd: ../compression.ts; Kappa writes 0,
 *                                               a Kafka client's batch is stored as it was sent),
 *                                               bit 3 timestamp type, bit 4 transactional, bit 5 control
 *       23     4  lastOffsetDelta       int32   lastOffset - baseOffset
 *       27     8  baseTimestamp         int64   timestamp of the first record (ms)
 *       35     8  maxTimestamp          int64
 *       43     8  producerId            int64   -1 when not an idempotent producer
 *       51     2  producerEpoch         int16
 *       53     4  baseSequence          int32
 *       57     4  recordCount           int32
 *       61     …  records (compressed as one payload when bits 0-2 say so; the CRC covers them as stored)
 *
 * Every reader of header bytes names the field through `BatchField` instead of a literal offset,
 * so this table is the one place that says where a field is.
 */
import { readInt64 } from './int64.ts';

/** Byte offset of each header field from the start of the batch. */
export const BatchField = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
  records: 61,
} as const;

export const BATCH_HEADER_BYTES: number = BatchField.records;
/** Bytes before `batchLength`'s coverage starts: baseOffset (8) + batchLength (4). */
export const BATCH_LOG_OVERHEAD = 12;
/** The CRC covers the batch from the attributes to its end. */
export const CRC_START = BatchField.attributes;
export const MAGIC_V2 = 2;

export const ATTR_COMPRESSION_MASK = 0x07;
export const ATTR_TIMESTAMP_LOG_APPEND = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

/** Total bytes of the batch at `pos`, from its batchLength field (not checked). */
export function batchSizeAt(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos + BatchField.batchLength) + BATCH_LOG_OVERHEAD;
}

export function baseOffsetAt(buf: Buffer, pos: number): number {
  return readInt64(buf, pos + BatchField.baseOffset);
}

/** The offset of the last record of the batch at `pos` (baseOffset + lastOffsetDelta). */
export function lastOffsetAt(buf: Buffer, pos: number): number {
  return readInt64(buf, pos + BatchField.baseOffset) + buf.readInt32BE(pos + BatchField.lastOffsetDelta);
}

export function recordCountAt(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos + BatchField.recordCount);
}

/** The header fields a segment walk reports for every batch (see segment.ts `BatchInfo`). */
export interface BatchHeaderFields {
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

/** Decodes the fields of `BatchHeaderFields` of the batch at `pos`. */
export function readHeaderFields(buf: Buffer, pos: number): BatchHeaderFields {
  return {
    baseOffset: baseOffsetAt(buf, pos),
    lastOffset: lastOffsetAt(buf, pos),
    maxTimestamp: readInt64(buf, pos + BatchField.maxTimestamp),
    producerId: readInt64(buf, pos + BatchField.producerId),
    producerEpoch: buf.readInt16BE(pos + BatchField.producerEpoch),
    baseSequence: buf.readInt32BE(pos + BatchField.baseSequence),
  };
}
