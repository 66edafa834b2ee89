import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { manualClock, openTestLog, partitionDir, readRecords, segmentFiles, useTestLog } from './test-helpers.ts';
import { seededRandom } from '../random.ts';

const T0 = 1_700_000_000_000;

/** The answer offsetForTime must give, computed by brute force over every record. */
function oracle(records: { offset: number; timestamp: number }[], t: number, end: number): number {
  for (const r of records) if (r.timestamp >= t) return r.offset;
  return end;
}

describe('offsetForTime', () => {
  const ctx = useTestLog({ options: () => ({ fsync: 'never' }) });

  test('finds the first offset whose timestamp is at or after t, across segments', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 16 * 1024 });
    // 400 records, 10 ms apart, ~250 bytes each: many segments, each with several index entries.
    for (let i = 0; i < 400; i += 4) {
      await ctx.log.append(
        't',
        [0, 1, 2, 3].map((j) => ({ value: 'x'.repeat(250), timestamp: T0 + (i + j) * 10 })),
      );
    }
    assert.ok(segmentFiles(ctx.dir, 't', 0).length >= 5);
    assert.equal(await ctx.log.offsetForTime('t', 0, 0), 0);
    assert.equal(await ctx.log.offsetForTime('t', 0, T0), 0);
    assert.equal(await ctx.log.offsetForTime('t', 0, T0 + 1), 1);
    assert.equal(await ctx.log.offsetForTime('t', 0, T0 + 10), 1);
    assert.equal(await ctx.log.offsetForTime('t', 0, T0 + 2345), 235);
    assert.equal(await ctx.log.offsetForTime('t', 0, T0 + 3990), 399);
    assert.equal(await ctx.log.offsetForTime('t', 0, T0 + 3991), 400, 'the end offset when no record is that new');
    assert.equal(await ctx.log.offsetForTime('t', 0, Number.MAX_SAFE_INTEGER), 400);
  });

  test('handles out-of-order timestamps: the first offset in log order, not the earliest time', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 8 * 1024 });
    const next = seededRandom(42);
    for (let i = 0; i < 300; i++) {
      const n = 1 + Math.floor(next() * 3);
      await ctx.log.append(
        't',
        Array.from({ length: n }, () => ({ value: 'y'.repeat(150), timestamp: T0 + Math.floor(next() * 100_000) })),
      );
    }
    const records = await readRecords(ctx.log, 't', 0);
    const { end } = await ctx.log.offsets('t', 0);
    assert.ok(segmentFiles(ctx.dir, 't', 0).length >= 5);
    const probes = [
      0,
      T0,
      T0 + 1,
      T0 + 99_999,
      T0 + 100_000,
      ...Array.from({ length: 150 }, () => T0 + Math.floor(next() * 100_500)),
    ];
    for (const t of probes)
      assert.equal(await ctx.log.offsetForTime('t', 0, t), oracle(records, t, end), `t = T0 + ${t - T0}`);
  });

  test('returns the same answers after a reopen, from index files and from rebuilt ones', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 8 * 1024 });
    const next = seededRandom(7);
    for (let i = 0; i < 200; i++)
      await ctx.log.append('t', [{ value: 'z'.repeat(120), timestamp: T0 + Math.floor(next() * 50_000) }]);
    const records = await readRecords(ctx.log, 't', 0);
    const end = records.length;
    const probes = Array.from({ length: 60 }, () => T0 + Math.floor(next() * 51_000));
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never' });
    for (const t of probes) assert.equal(await ctx.log.offsetForTime('t', 0, t), oracle(records, t, end));
    await ctx.log.close();
    const dir = partitionDir(ctx.dir, 't', 0);
    for (const f of fs.readdirSync(dir))
      if (f.endsWith('.timeindex') || f.endsWith('.index')) fs.unlinkSync(join(dir, f));
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never' });
    for (const t of probes) assert.equal(await ctx.log.offsetForTime('t', 0, t), oracle(records, t, end));
  });

  test('answers from the start offset when older segments were deleted by retention', async () => {
    const clock = manualClock(T0);
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never', clock });
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024, retentionMs: 60_000 });
    for (let i = 0; i < 10; i++) await ctx.log.append('t', [{ value: 'o'.repeat(200), timestamp: T0 + i }]);
    for (let i = 0; i < 3; i++) await ctx.log.append('t', [{ value: 'n'.repeat(200), timestamp: T0 + 600_000 + i }]);
    clock.set(T0 + 600_000);
    ctx.log.enforceRetention();
    const { start } = await ctx.log.offsets('t', 0);
    assert.ok(start > 0);
    assert.equal(await ctx.log.offsetForTime('t', 0, 0), start);
  });

  test('returns 0 for an empty partition, which is its end offset', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    assert.equal(await ctx.log.offsetForTime('t', 0, T0), 0);
  });

  test('refuses a timestamp that is not a number with KAPPA_INVALID_ARGUMENT', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    await assert.rejects(ctx.log.offsetForTime('t', 0, Number.NaN), { code: 'KAPPA_INVALID_ARGUMENT' });
    await assert.rejects(ctx.log.offsetForTime('t', 0, Number.POSITIVE_INFINITY), { code: 'KAPPA_INVALID_ARGUMENT' });
  });
});
