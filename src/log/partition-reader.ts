/**
 * Reading one partition: whole batches from any offset, never past the high watermark, every batch
 * checked (CRC, record count, and that its offsets continue the ones before it, which the CRC does
 * not cover); and the lookup of an offset by record time.
 *
 * Damage: the intact batches before a damaged one are handed out first; the next read starts at
 * the damage and fails there with KAPPA_CORRUPT_DATA naming the file and byte. Nothing is skipped
 * silently.
 *
 * Thread-safety: none needed; reads run on the event loop beside the writer, and see only bytes
 * below `readableBytes`, which the writer moves after they are durable.
 */
import { KappaError } from '../errors.ts';
import { BATCH_LOG_OVERHEAD, batchSizeAt } from './format/index.ts';
import type { PartitionState } from './partition-state.ts';
import { RecordBatch, checkBatch } from './record-batch.ts';
import { BATCH_BYTES_MAX, type LogSegment } from './segment.ts';

/** Where a reader stopped, so its next fetch continues without an index lookup. */
export interface ReadCursor {
  segment: LogSegment;
  position: number;
  offset: number;
}

export interface FetchResult {
  batches: RecordBatch[];
  cursor: ReadCursor | null;
}

/** Bytes read per step of a time lookup. */
const TIME_SCAN_BYTES = 1 << 20;

/**
 * Reads whole batches starting with the one that holds `offset`, up to about `maxBytes` (at least
 * one batch). Every batch's CRC and offset continuity is checked; damage throws KAPPA_CORRUPT_DATA
 * once the intact batches before it have been returned.
 */
export async function fetchBatches(
  state: PartitionState,
  offset: number,
  maxBytes: number,
  cursor: ReadCursor | null,
): Promise<FetchResult> {
  // After close the segment fds are closed (and their numbers may already belong to other files).
  if (state.closed)
    throw new KappaError('KAPPA_LOG_CLOSED', `The log was closed while reading ${state.name}.`, {
      topic: state.topic.name,
      partition: state.id,
    });
  const { corruption } = state;
  if (corruption && offset >= corruption.offset)
    throw state.corruptError(corruption.file, corruption.position, corruption.detail);
  if (offset < state.startOffset) state.checkOffset(offset);
  if (offset >= state.highWatermark) return { batches: [], cursor };
  let seg: LogSegment;
  let pos: number;
  // The base offset the batch at `pos` must have. The CRC does not cover base offsets, so this is
  // what catches a damaged one (which would otherwise shift every offset of its batch).
  let firstBase: number;
  if (cursor && cursor.offset === offset && !cursor.segment.deleted) {
    seg = cursor.segment;
    pos = cursor.position;
    firstBase = offset;
  } else {
    seg = state.segmentFor(offset);
    ({ position: pos, baseOffset: firstBase } = seg.findPosition(offset, seg.readableBytes));
  }
  for (;;) {
    const limit = seg.readableBytes;
    if (pos < limit) return readChunk(state, seg, pos, offset, firstBase, maxBytes);
    const i = state.segments.indexOf(seg);
    if (i < 0 || i === state.segments.length - 1)
      return { batches: [], cursor: { segment: seg, position: pos, offset } };
    seg = state.segments[i + 1];
    pos = 0;
    firstBase = seg.baseOffset;
  }
}

/** Reads about `maxBytes` of `seg` at `pos` (at least the first batch whole) and checks the batches in it. */
async function readChunk(
  state: PartitionState,
  seg: LogSegment,
  pos: number,
  offset: number,
  firstBase: number,
  maxBytes: number,
): Promise<FetchResult> {
  const limit = seg.readableBytes;
  let buf = await seg.read(pos, Math.min(maxBytes, limit - pos));
  if (buf.length >= BATCH_LOG_OVERHEAD) {
    const first = batchSizeAt(buf, 0);
    if (first > buf.length && first <= limit - pos) buf = await seg.read(pos, first);
  }
  const batches: RecordBatch[] = [];
  let p = 0;
  let expected = offset;
  while (p < buf.length) {
    const check = checkBatch(buf, p, buf.length, BATCH_BYTES_MAX);
    if (check.problem) {
      const cutByChunk = check.problem === 'incomplete' && p > 0 && check.size > 0 && pos + p + check.size <= limit;
      if (cutByChunk || (check.problem === 'incomplete' && p > 0 && check.size === 0 && pos + buf.length < limit))
        break;
      // Hand out the intact batches before the damage first; the next fetch starts at the damage and fails there.
      if (batches.length > 0) break;
      throw state.corruptError(seg.logPath, pos + p, check.detail);
    }
    const batch = new RecordBatch(buf.subarray(p, p + check.size));
    const contiguous =
      batches.length === 0
        ? batch.baseOffset === firstBase && batch.baseOffset <= expected && batch.lastOffset >= expected
        : batch.baseOffset === expected;
    if (!contiguous) {
      if (batches.length > 0) break;
      throw state.corruptError(
        seg.logPath,
        pos + p,
        `batch holds offsets ${batch.baseOffset}-${batch.lastOffset}, expected one holding ${expected}`,
      );
    }
    if (batch.lastOffset >= state.highWatermark) break;
    batches.push(batch);
    expected = batch.lastOffset + 1;
    p += check.size;
  }
  return { batches, cursor: { segment: seg, position: pos + p, offset: expected } };
}

/** The first offset whose record timestamp is at or after `timestampMs`, or the high watermark. */
export async function offsetForTime(state: PartitionState, timestampMs: number): Promise<number> {
  let start = -1;
  for (const seg of state.segments) {
    if (seg !== state.active) seg.timeLookup(0); // loads indexes, and with them the segment's max timestamp
    if (seg.maxTimestamp >= timestampMs) {
      start = seg.timeLookup(timestampMs);
      break;
    }
  }
  if (start < 0) return state.highWatermark;
  let offset = start;
  let cursor: ReadCursor | null = null;
  while (offset < state.highWatermark) {
    const res = await fetchBatches(state, offset, TIME_SCAN_BYTES, cursor);
    if (res.batches.length === 0) break;
    for (const batch of res.batches) {
      if (batch.maxTimestamp >= timestampMs) {
        for (const r of batch.records(offset)) if (r.timestamp >= timestampMs) return r.offset;
      }
      offset = batch.lastOffset + 1;
    }
    cursor = res.cursor;
  }
  return state.highWatermark;
}
