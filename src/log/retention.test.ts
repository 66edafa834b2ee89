import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { TopicConfig } from './types.ts';
import {
  collectingLogger,
  manualClock,
  openTestLog,
  partitionDir,
  readRecords,
  segmentFiles,
  useTestLog,
} from './test-helpers.ts';

const T0 = 1_700_000_000_000;
const MINUTE = 60_000;
const VALUE = 'r'.repeat(200);

function baseOf(file: string): number {
  return Number(file.slice(0, 20));
}

describe('retention', () => {
  let clock: ReturnType<typeof manualClock>;
  let logger: ReturnType<typeof collectingLogger>;
  const ctx = useTestLog({
    options: () => {
      clock = manualClock(T0);
      logger = collectingLogger();
      return { fsync: 'never', clock, logger };
    },
  });

  async function createTopic(config: Omit<TopicConfig, 'partitions'>): Promise<void> {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024, ...config });
  }

  /** Appends `count` single-record batches with the given timestamp; returns their offsets. */
  async function appendAt(timestamp: number, count: number): Promise<number[]> {
    const offsets = [];
    for (let i = 0; i < count; i++) offsets.push((await ctx.log.append('t', [{ value: VALUE, timestamp }]))[0].offset);
    return offsets;
  }

  function files(): number[] {
    return segmentFiles(ctx.dir, 't', 0).map(baseOf);
  }

  test('deletes closed segments whose newest record is older than retentionMs, and moves the start offset', async () => {
    await createTopic({ retentionMs: 10 * MINUTE });
    await appendAt(T0, 12); // old: several closed segments
    const firstNew = (await appendAt(T0 + 30 * MINUTE, 1))[0];
    await appendAt(T0 + 30 * MINUTE, 5);
    const before = files();
    assert.ok(before.length >= 4);
    const oldSegments = before.filter((b) => b < firstNew || b === firstNew);
    clock.set(T0 + 35 * MINUTE);
    const deleted = ctx.log.enforceRetention();
    const after = files();
    // The segment holding firstNew holds old records too but its newest record is young: kept.
    const keptFrom = before.filter((b) => b <= firstNew).at(-1)!;
    assert.deepEqual(
      after,
      before.filter((b) => b >= keptFrom),
    );
    assert.equal(deleted, before.length - after.length);
    assert.ok(deleted >= 2 && oldSegments.length > 0);
    const { start, end } = await ctx.log.offsets('t', 0);
    assert.equal(start, keptFrom);
    assert.equal(end, 18);
    const names = fs.readdirSync(partitionDir(ctx.dir, 't', 0));
    for (const base of before.filter((b) => b < keptFrom)) {
      assert.ok(
        !names.some((n) => n.startsWith(String(base).padStart(20, '0'))),
        `every file of segment ${base} is gone`,
      );
    }
    assert.ok(logger.infos.some((m) => /retention: deleted segment .*older than retention\.ms/.test(m)));
  });

  test('reads below the new start offset fail with KAPPA_OFFSET_OUT_OF_RANGE; reads from it work', async () => {
    await createTopic({ retentionMs: MINUTE });
    await appendAt(T0, 12);
    await appendAt(T0 + 10 * MINUTE, 3);
    clock.set(T0 + 10 * MINUTE);
    assert.ok(ctx.log.enforceRetention() > 0);
    const { start, end } = await ctx.log.offsets('t', 0);
    assert.ok(start > 0);
    await assert.rejects(readRecords(ctx.log, 't', 0, 0), { code: 'KAPPA_OFFSET_OUT_OF_RANGE' });
    await assert.rejects(
      readRecords(ctx.log, 't', 0, start - 1),
      (err: Error & { details?: Record<string, unknown> }) => {
        assert.equal((err as { code?: string }).code, 'KAPPA_OFFSET_OUT_OF_RANGE');
        assert.equal(err.details?.start, start);
        return true;
      },
    );
    assert.deepEqual(
      (await readRecords(ctx.log, 't', 0, start)).map((r) => r.offset),
      Array.from({ length: end - start }, (_, i) => start + i),
    );
  });

  test('a reader in the middle of a segment that retention deletes gets KAPPA_OFFSET_OUT_OF_RANGE, not wrong data', async () => {
    await createTopic({ retentionMs: MINUTE });
    await appendAt(T0, 12);
    await appendAt(T0 + 10 * MINUTE, 2);
    const iterator = ctx.log.read('t', 0, 0, { maxBytes: 1 })[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    clock.set(T0 + 10 * MINUTE);
    ctx.log.enforceRetention();
    await assert.rejects(
      (async () => {
        for (;;) if ((await iterator.next()).done) break;
      })(),
      { code: 'KAPPA_OFFSET_OUT_OF_RANGE' },
    );
  });

  test('never deletes the active segment, even when every record in it has expired', async () => {
    await createTopic({ retentionMs: MINUTE });
    await appendAt(T0, 12);
    clock.set(T0 + 24 * 60 * MINUTE);
    const before = files();
    assert.ok(before.length >= 2);
    assert.equal(ctx.log.enforceRetention(), before.length - 1);
    assert.deepEqual(files(), before.slice(-1));
    const { start, end } = await ctx.log.offsets('t', 0);
    assert.equal(start, before.at(-1));
    assert.equal((await readRecords(ctx.log, 't', 0, start)).length, end - start);
    assert.ok(end - start > 0, 'the expired records of the active segment are still readable');
  });

  test('keeps a segment whose newest record is young even if its oldest one has expired', async () => {
    await createTopic({ retentionMs: 10 * MINUTE, segmentBytes: 4096 });
    await appendAt(T0 - 60 * MINUTE, 2);
    await appendAt(T0, 2); // same segment, newer
    await appendAt(T0, 30); // more segments
    clock.set(T0 + 5 * MINUTE);
    assert.equal(ctx.log.enforceRetention(), 0);
    assert.equal((await ctx.log.offsets('t', 0)).start, 0);
  });

  test('deletes the oldest closed segments while the partition would stay at or above retentionBytes', async () => {
    await createTopic({ retentionBytes: 2500 });
    await appendAt(T0, 30);
    const dir = partitionDir(ctx.dir, 't', 0);
    const sizeOf = (base: number): number => fs.statSync(join(dir, `${String(base).padStart(20, '0')}.log`)).size;
    // Rolling applies retention too, so the oldest segments are already gone; the active segment
    // has grown since the last roll, so settle the rest now.
    assert.ok(files()[0] > 0, 'rolling already deleted the oldest segments');
    ctx.log.enforceRetention();
    const after = files();
    const total = after.reduce((sum, b) => sum + sizeOf(b), 0);
    assert.ok(total >= 2500, `kept ${total} bytes, at least retentionBytes`);
    assert.ok(total - sizeOf(after[0]) < 2500, 'deleting one more segment would go below retentionBytes');
    assert.equal((await ctx.log.offsets('t', 0)).start, after[0]);
    assert.ok(logger.infos.some((m) => /over retention\.bytes/.test(m)));
  });

  test('applies retention when a segment rolls, without waiting for the timer', async () => {
    await createTopic({ retentionMs: MINUTE });
    await appendAt(T0, 12);
    const before = files();
    clock.set(T0 + 10 * MINUTE);
    await appendAt(T0 + 10 * MINUTE, 8); // rolls at least once
    const after = files();
    assert.ok(after[0] > before[0], `oldest segment ${after[0]} should be newer than ${before[0]}`);
  });

  test('retentionMs -1 keeps every segment forever', async () => {
    await createTopic({ retentionMs: -1 });
    await appendAt(T0 - 1000 * 24 * 60 * MINUTE, 12);
    clock.set(T0 + 365 * 24 * 60 * MINUTE);
    const before = files();
    assert.equal(ctx.log.enforceRetention(), 0);
    await appendAt(T0, 6); // rolling does not delete either
    assert.deepEqual(files().slice(0, before.length), before);
    assert.equal((await ctx.log.offsets('t', 0)).start, 0);
    assert.equal((await readRecords(ctx.log, 't', 0)).length, 18);
  });

  test('applies time retention to closed segments loaded from disk after a reopen, when all their records share one timestamp', async () => {
    await createTopic({ retentionMs: MINUTE, segmentBytes: 16 * 1024 });
    await appendAt(T0, 200); // every record has the same timestamp; several segments with index entries
    await appendAt(T0 + 10 * MINUTE, 1);
    const before = files();
    assert.ok(before.length >= 3);
    await ctx.log.close();
    clock.set(T0 + 10 * MINUTE);
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never', clock, logger });
    assert.equal(ctx.log.enforceRetention(), before.length - 1);
    assert.deepEqual(files(), before.slice(-1));
  });

  test('the start offset stays where retention left it after a reopen', async () => {
    await createTopic({ retentionMs: MINUTE });
    await appendAt(T0, 12);
    await appendAt(T0 + 10 * MINUTE, 1);
    clock.set(T0 + 10 * MINUTE);
    ctx.log.enforceRetention();
    const offsets = await ctx.log.offsets('t', 0);
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never', clock });
    assert.deepEqual(await ctx.log.offsets('t', 0), offsets);
    const next = await ctx.log.append('t', [{ value: 'x' }]);
    assert.equal(next[0].offset, offsets.end);
  });
});
