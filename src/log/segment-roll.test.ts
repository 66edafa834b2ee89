import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { FileLog } from './file-log.ts';
import { encodeBatch } from './record-batch.ts';
import { openTestLog, partitionDir, readRecords, segmentFiles, tempDir, useTestLog } from './test-helpers.ts';

const T0 = 1_700_000_000_000;
const VALUE = 'v'.repeat(100);

/** Bytes one single-record batch of this test's shape takes on disk. */
const BATCH_BYTES = encodeBatch([{ key: null, value: VALUE, timestamp: T0 }], { baseOffset: 0 }).length;

function baseOf(file: string): number {
  return Number(file.slice(0, 20));
}

describe('segment rolling', () => {
  const ctx = useTestLog({ options: () => ({ fsync: 'never' }) });

  test('rolls to a new segment when the active one would exceed segmentBytes', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024 });
    const perSegment = Math.floor(1024 / BATCH_BYTES);
    for (let i = 0; i < 20; i++) await ctx.log.append('t', [{ value: VALUE, timestamp: T0 }]);
    const files = segmentFiles(ctx.dir, 't', 0);
    const expectedBases = [];
    for (let base = 0; base < 20; base += perSegment) expectedBases.push(base);
    assert.deepEqual(files.map(baseOf), expectedBases, `segments of ${perSegment} batches of ${BATCH_BYTES} bytes`);
    for (const f of files.slice(0, -1)) {
      const size = fs.statSync(join(partitionDir(ctx.dir, 't', 0), f)).size;
      assert.ok(size <= 1024, `${f} is ${size} bytes`);
      assert.ok(size + BATCH_BYTES > 1024, `${f} rolled early at ${size} bytes`);
    }
  });

  test('rolls in the middle of one group commit when the group does not fit', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024 });
    // Issued together, these land in one group-commit write (their records merged into batches of
    // at most one segment's worth) that spans several segments.
    await Promise.all(Array.from({ length: 20 }, (_, i) => ctx.log.append('t', [{ value: VALUE, timestamp: T0 + i }])));
    const files = segmentFiles(ctx.dir, 't', 0);
    assert.ok(files.length >= 2, `one group spread over ${files.length} segments`);
    assert.equal(baseOf(files[0]), 0);
    for (const f of files) {
      const size = fs.statSync(join(partitionDir(ctx.dir, 't', 0), f)).size;
      assert.ok(size <= 1024, `${f} is ${size} bytes`);
    }
    assert.deepEqual(
      (await readRecords(ctx.log, 't', 0)).map((r) => [r.offset, r.timestamp]),
      Array.from({ length: 20 }, (_, i) => [i, T0 + i]),
    );
  });

  test('keeps a batch larger than the remaining space whole, in the next segment', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 4096 });
    await ctx.log.append('t', [{ value: 'a'.repeat(1000), timestamp: T0 }]);
    const big = Array.from({ length: 30 }, (_, i) => ({ value: `${i}`.padEnd(100, '.'), timestamp: T0 }));
    await ctx.log.append('t', big);
    assert.deepEqual(segmentFiles(ctx.dir, 't', 0).map(baseOf), [0, 1]);
    assert.equal((await readRecords(ctx.log, 't', 0)).length, 31);
  });

  test('refuses a batch larger than segmentBytes with KAPPA_RECORD_TOO_LARGE', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024 });
    await assert.rejects(ctx.log.append('t', [{ value: 'x'.repeat(2000) }]), { code: 'KAPPA_RECORD_TOO_LARGE' });
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 0 });
    await ctx.log.append('t', [{ value: 'small' }]);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 1 });
  });

  test('rolls when a batch is more than segmentMs of record time after the first batch of the segment', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentMs: 1000 });
    const times = [T0, T0 + 500, T0 + 1000, /* roll */ T0 + 1001, T0 + 1500, T0 + 2001, /* roll */ T0 + 2002];
    for (const timestamp of times) await ctx.log.append('t', [{ value: 'x', timestamp }]);
    assert.deepEqual(segmentFiles(ctx.dir, 't', 0).map(baseOf), [0, 3, 6]);
  });

  test('does not roll by time for out-of-order (older) timestamps or for wall-clock time passing', async () => {
    let now = T0;
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never', clock: { now: () => now } });
    await ctx.log.createTopic('t', { partitions: 1, segmentMs: 1000 });
    await ctx.log.append('t', [{ value: 'x', timestamp: T0 }]);
    await ctx.log.append('t', [{ value: 'x', timestamp: T0 - 50_000 }]);
    now = T0 + 3_600_000;
    await ctx.log.append('t', [{ value: 'x', timestamp: T0 + 900 }]);
    assert.deepEqual(segmentFiles(ctx.dir, 't', 0).map(baseOf), [0]);
  });

  test('remembers the active segment’s first record time across a reopen', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentMs: 1000 });
    await ctx.log.append('t', [{ value: 'x', timestamp: T0 }]);
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never' });
    await ctx.log.append('t', [{ value: 'x', timestamp: T0 + 999 }]);
    await ctx.log.append('t', [{ value: 'x', timestamp: T0 + 1001 }]);
    assert.deepEqual(segmentFiles(ctx.dir, 't', 0).map(baseOf), [0, 2]);
  });

  test('writes the indexes of a segment when it rolls', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024 });
    for (let i = 0; i < 10; i++) await ctx.log.append('t', [{ value: VALUE, timestamp: T0 + i }]);
    const [first, second] = segmentFiles(ctx.dir, 't', 0).map(baseOf);
    const names = fs.readdirSync(partitionDir(ctx.dir, 't', 0));
    const pad = (n: number): string => String(n).padStart(20, '0');
    assert.ok(names.includes(`${pad(first)}.index`) && names.includes(`${pad(first)}.timeindex`));
    assert.ok(!names.includes(`${pad(second)}.index`), 'the active segment’s index is written at close');
    assert.ok(!names.some((n) => n.endsWith('.tmp')));
  });
});

describe('reading across segments', () => {
  let tmp: ReturnType<typeof tempDir>;
  let log: FileLog;
  const N = 120;

  beforeEach(async () => {
    tmp = tempDir();
    log = await openTestLog(tmp.dir, { fsync: 'never' });
    await log.createTopic('t', { partitions: 1, segmentBytes: 2048 });
    // Batches of 1 to 4 records, so batch boundaries and segment boundaries fall everywhere.
    let offset = 0;
    while (offset < N) {
      const n = Math.min(1 + (offset % 4), N - offset);
      await log.append(
        't',
        Array.from({ length: n }, (_, j) => ({
          key: `k${offset + j}`,
          value: `value-${offset + j}`.padEnd(60, '*'),
          timestamp: T0 + offset + j,
        })),
      );
      offset += n;
    }
  });
  afterEach(async () => {
    await log.close();
    tmp.cleanup();
  });

  test('returns every offset exactly once, in order, from any starting offset', async () => {
    assert.ok(segmentFiles(tmp.dir, 't', 0).length >= 4, 'the data spans several segments');
    for (const from of [0, 1, 2, 5, 17, 33, 59, 60, 61, 99, N - 1, N]) {
      const records = await readRecords(log, 't', 0, from);
      assert.deepEqual(
        records.map((r) => r.offset),
        Array.from({ length: N - from }, (_, i) => from + i),
        `reading from ${from}`,
      );
      for (const r of records) assert.equal(r.value!.toString(), `value-${r.offset}`.padEnd(60, '*'));
    }
  });

  test('returns every offset exactly once with the smallest maxBytes as well', async () => {
    for (const from of [0, 7, 64]) {
      const records = await readRecords(log, 't', 0, from, 1);
      assert.deepEqual(
        records.map((r) => r.offset),
        Array.from({ length: N - from }, (_, i) => from + i),
      );
    }
  });

  test('yields whole batches contiguously across segment boundaries', async () => {
    let expected = 0;
    for await (const batch of log.read('t', 0, 0, { maxBytes: 4096 })) {
      assert.equal(batch.baseOffset, expected);
      assert.equal(batch.count, batch.lastOffset - batch.baseOffset + 1);
      expected = batch.lastOffset + 1;
    }
    assert.equal(expected, N);
  });

  test('read(from) in the middle of a batch starts with that batch; records(from) skips the earlier records', async () => {
    await log.append(
      't',
      Array.from({ length: 10 }, (_, i) => ({ value: `m${i}`, timestamp: T0 })),
    );
    const from = N + 5;
    const batches = [];
    for await (const batch of log.read('t', 0, from)) batches.push(batch);
    assert.equal(batches.length, 1);
    assert.equal(batches[0].baseOffset, N);
    assert.equal(batches[0].lastOffset, N + 9);
    assert.deepEqual(
      batches[0].records(from).map((r) => [r.offset, r.value!.toString()]),
      [5, 6, 7, 8, 9].map((i) => [N + i, `m${i}`]),
    );
  });

  test('returns a batch bigger than maxBytes whole', async () => {
    await log.close();
    log = await openTestLog(tmp.dir, { fsync: 'never' });
    await log.createTopic('big', { partitions: 1 });
    await log.append(
      'big',
      Array.from({ length: 50 }, (_, i) => ({ value: `${i}`.padEnd(500, '-') })),
    );
    await log.append('big', [{ value: 'after' }]);
    const batches = [];
    for await (const batch of log.read('big', 0, 0, { maxBytes: 4096 })) batches.push(batch);
    assert.equal(batches.length, 2);
    assert.ok(batches[0].sizeBytes > 4096);
    assert.equal(batches[0].count, 50);
    assert.equal(batches[1].records()[0].value!.toString(), 'after');
  });

  test('finishes at the end offset when not following', async () => {
    const seen = [];
    for await (const batch of log.read('t', 0, N)) seen.push(batch);
    assert.equal(seen.length, 0);
  });
});
