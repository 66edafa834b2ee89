/**
 * Shared tools of the crash suites (temp dirs and the recording logger now live in test/support), a
 * reader that collects records (and the error that stopped it), and an independent parser of the
 * segment files, so the tests find batch boundaries without trusting the code under test.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type FileLog, type LogRecord, openFileLog } from '../../src/log/index.ts';
import { recordingLogger } from '../support/loggers.ts';

export { tempDir } from '../support/cleanup.ts';
export { type RecordingLogger, recordingLogger } from '../support/loggers.ts';

export interface ReadResult {
  records: LogRecord[];
  error: unknown;
}

/** Reads a partition from `from` to its end; an error stops the read and is returned, not thrown. */
export async function readPartition(log: FileLog, topic: string, partition: number, from = 0): Promise<ReadResult> {
  const records: LogRecord[] = [];
  try {
    for await (const batch of log.read(topic, partition, from)) records.push(...batch.records(from));
  } catch (error) {
    return { records, error };
  }
  return { records, error: null };
}

export function partitionDir(dataDir: string, topic: string, partition: number): string {
  return join(dataDir, 'topics', topic, String(partition));
}

/** The `.log` files of a partition, oldest first. */
export function segmentFiles(dataDir: string, topic: string, partition: number): string[] {
  const dir = partitionDir(dataDir, topic, partition);
  return readdirSync(dir)
    .filter((n) => /^\d{20}\.log$/.test(n))
    .sort()
    .map((n) => join(dir, n));
}

export interface BatchLayout {
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
}

/**
 * Walks the batch headers of a segment file (RecordBatch v2: baseOffset int64 at 0, batchLength
 * int32 at 8, lastOffsetDelta int32 at 23). No CRC check: it is only used on undamaged files.
 */
export function batchLayout(file: string): BatchLayout[] {
  const buf = readFileSync(file);
  const out: BatchLayout[] = [];
  let position = 0;
  while (position + 61 <= buf.length) {
    const baseOffset = Number(buf.readBigInt64BE(position));
    const size = buf.readInt32BE(position + 8) + 12;
    if (position + size > buf.length) break;
    out.push({ position, size, baseOffset, lastOffset: baseOffset + buf.readInt32BE(position + 23) });
    position += size;
  }
  if (position !== buf.length)
    throw new Error(`${file} does not end at a batch boundary (${position} of ${buf.length} bytes parsed)`);
  return out;
}

/** Flips bit `bit` (0 = least significant) of the byte at `position` in place. */
export function flipBit(file: string, position: number, bit: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, position) !== 1) throw new Error(`${file} has no byte ${position}`);
    b[0] ^= 1 << bit;
    writeSync(fd, b, 0, 1, position);
  } finally {
    closeSync(fd);
  }
}

/** The topic the torn-tail and bit-flip suites write: one partition, so every append is one batch. */
export const TOPIC = 'events';

/**
 * Creates `TOPIC` in a fresh log at `dir`, appends each element of `batches` as one batch (one
 * append, awaited), closes the log cleanly and returns every value by offset.
 */
export async function writeLog(
  dir: string,
  segmentBytes: number,
  batches: readonly (readonly string[])[],
): Promise<string[]> {
  const log = await openFileLog({ dir, logger: recordingLogger() });
  const values: string[] = [];
  try {
    await log.createTopic(TOPIC, { partitions: 1, segmentBytes });
    for (const batch of batches) {
      const acks = await log.append(
        TOPIC,
        batch.map((value) => ({ value })),
      );
      if (acks[0].offset !== values.length)
        throw new Error(`batch went to offset ${acks[0].offset}, expected ${values.length}`);
      values.push(...batch);
    }
  } finally {
    await log.close();
  }
  return values;
}

/** Asserts that `records` are exactly offsets 0.. with the given values. */
export function assertRecords(records: readonly LogRecord[], values: readonly string[], context: string): void {
  assert.equal(records.length, values.length, `${context}: expected ${values.length} records, read ${records.length}`);
  records.forEach((r, i) => {
    assert.equal(r.offset, i, `${context}: record ${i} has offset ${r.offset}`);
    assert.equal(r.value?.toString(), values[i], `${context}: record ${i} has the wrong value`);
  });
}

/** Sizes of every segment (`.log`) file under `dir`, by path, to show that nothing was cut. */
export function segmentSizes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.log')) {
      const path = join(entry.parentPath, entry.name);
      out.set(path, statSync(path).size);
    }
  }
  return out;
}
