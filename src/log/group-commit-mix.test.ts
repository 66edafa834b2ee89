/**
 * The group-commit writer under a mixed load: concurrent appenders of small and large appends
 * (single records merged into shared batches, batches of up to 60 KB fsynced side by side), through
 * `append` and `appendBatch`, into partitions whose 1 MB segments roll every few dozen appends.
 * Every acknowledged record must read back at the offset it was acknowledged with, in the running
 * log and after a reopen, and `verifyLog` must find nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FileLog } from './file-log.ts';
import { openTestLog, readRecords, segmentFiles, useTestLog } from './test-helpers.ts';
import { verifyLog } from './verify.ts';

const PARTITIONS = 3;

/** A small linear congruential generator: the same load on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

/** 8 appenders × `appends` appends; returns, per partition, the value acknowledged at each offset. */
async function appendMixed(log: FileLog, appends: number): Promise<string[][]> {
  const acknowledged: string[][] = Array.from({ length: PARTITIONS }, () => []);
  const next = random(7);
  await Promise.all(
    Array.from({ length: 8 }, async (_, a) => {
      for (let i = 0; i < appends; i++) {
        const partition = Math.floor(next() * PARTITIONS);
        const size = next() < 0.5 ? 50 : 20_000 + Math.floor(next() * 40_000);
        const records = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, r) => ({
          key: null,
          value: `${a}:${i}:${r}:`.padEnd(size, 'z'),
          timestamp: 1_700_000_000_000 + i,
        }));
        const baseOffset =
          next() < 0.5
            ? (await log.appendBatch('m', partition, records)).baseOffset
            : (
                await log.append(
                  'm',
                  records.map((r) => ({ ...r, partition })),
                )
              )[0].offset;
        records.forEach((r, k) => (acknowledged[partition][baseOffset + k] = r.value));
      }
    }),
  );
  return acknowledged;
}

async function assertStored(log: FileLog, acknowledged: string[][]): Promise<void> {
  for (let p = 0; p < PARTITIONS; p++) {
    const stored = (await readRecords(log, 'm', p)).map((r) => r.value!.toString());
    assert.equal(stored.length, acknowledged[p].length, `partition ${p}`);
    assert.ok(
      stored.every((value, offset) => value === acknowledged[p][offset]),
      `partition ${p}: a record differs from the one acknowledged at its offset`,
    );
  }
}

describe('group commit under mixed appends across rolls', () => {
  const ctx = useTestLog();

  for (const fsync of ['always', 'never'] as const) {
    test(
      `fsync ${fsync}: every acknowledged record is where its acknowledgement said, before and after a reopen`,
      { timeout: 60_000 },
      async () => {
        await ctx.log.close();
        ctx.log = await openTestLog(ctx.dir, { fsync });
        await ctx.log.createTopic('m', { partitions: PARTITIONS, segmentBytes: 1_000_000 });
        const acknowledged = await appendMixed(ctx.log, 120);
        await assertStored(ctx.log, acknowledged);
        assert.ok(segmentFiles(ctx.dir, 'm', 0).length >= 3, 'the segments rolled');
        await ctx.log.close();
        ctx.log = await openTestLog(ctx.dir, { fsync });
        await assertStored(ctx.log, acknowledged);
        const report = verifyLog({ dir: ctx.dir });
        assert.deepEqual(report.findings, []);
      },
    );
  }
});
