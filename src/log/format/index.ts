/**
 * The wire format pieces, one home each: zigzag varints (varint.ts), big-endian int64 fields
 * (int64.ts) and the RecordBatch v2 header with its named field offsets (batch-header.ts). The
 * record codec built on them is ../record-batch.ts.
 */
export { type Cursor, readVarint, varintSize, writeVarint } from './varint.ts';
export { readInt64, writeInt64 } from './int64.ts';
export * from './batch-header.ts';
