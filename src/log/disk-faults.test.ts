import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { KappaError } from '../errors.ts';
import type { LogFs } from './fs.ts';
import { collectingLogger, errnoError, openTestLog, readRecords, useTestLog } from './test-helpers.ts';
import { verifyLog } from './verify.ts';

type Fault = null | 'eio' | 'enospc' | 'enospc-partial';

/** An fs whose fsync and segment writes fail on demand, the way a sick or full disk makes them fail. */
function faultyFs() {
  /** `failFromWrite`: the write with this number (counted in `writes`) and every later one fail with `write`. */
  const state = { fsync: null as Fault, fsyncSync: null as Fault, write: null as Fault, writes: 0, failFromWrite: 0 };
  const fs: LogFs = {
    ...nodeFs,
    fsync: ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      if (state.fsync === 'eio') setImmediate(() => callback(errnoError('EIO', 'fsync')));
      else nodeFs.fsync(fd, callback);
    }) as typeof nodeFs.fsync,
    fsyncSync: ((fd: number) => {
      if (state.fsyncSync === 'eio') throw errnoError('EIO', 'fsync');
      nodeFs.fsyncSync(fd);
    }) as typeof nodeFs.fsyncSync,
    writevSync: ((fd: number, buffers: NodeJS.ArrayBufferView[], position?: number) => {
      state.writes++;
      const failing = state.writes >= state.failFromWrite;
      if (failing && (state.write === 'enospc' || state.write === 'eio'))
        throw errnoError(state.write.toUpperCase(), 'writev');
      if (state.write === 'enospc-partial') {
        // The disk takes part of the data, then fills up: a short write followed by ENOSPC.
        const first = buffers[0] as Buffer;
        return nodeFs.writeSync(fd, first, 0, Math.ceil(first.length / 2), position);
      }
      return nodeFs.writevSync(fd, buffers, position);
    }) as typeof nodeFs.writevSync,
    writeSync: ((...args: unknown[]) => {
      if (state.write === 'enospc-partial' && typeof args[0] === 'number' && args.length === 5)
        throw errnoError('ENOSPC', 'write');
      return (nodeFs.writeSync as (...a: unknown[]) => number)(...args);
    }) as typeof nodeFs.writeSync,
  };
  return { fs, state };
}

describe('disk faults', () => {
  let disk: ReturnType<typeof faultyFs>;
  let logger: ReturnType<typeof collectingLogger>;
  const ctx = useTestLog({
    options: () => {
      disk = faultyFs();
      logger = collectingLogger();
      return { fs: disk.fs, logger };
    },
    topic: { name: 't', partitions: 2 },
    beforeClose: () => {
      disk.state.fsync = null;
      disk.state.fsyncSync = null;
      disk.state.write = null;
    },
  });

  async function values(partition: number): Promise<string[]> {
    return (await readRecords(ctx.log, 't', partition)).map((r) => r.value!.toString());
  }

  test('a failed fsync rejects the append with KAPPA_IO_ERROR and the records stay invisible', async () => {
    await ctx.log.append('t', [{ value: 'safe', partition: 0 }]);
    disk.state.fsync = 'eio';
    const err = await ctx.log.append('t', [{ value: 'unsure', partition: 0 }]).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof KappaError, 'a typed Kappa error');
    assert.equal(err.code, 'KAPPA_IO_ERROR');
    assert.match(err.message, /fsync/);
    assert.match(err.message, /Restart Kappa/);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 1 });
    assert.deepEqual(await values(0), ['safe']);
  });

  test('after a failed fsync the partition refuses later appends clearly, even once fsync works again', async () => {
    disk.state.fsync = 'eio';
    await assert.rejects(ctx.log.append('t', [{ value: 'a', partition: 0 }]), { code: 'KAPPA_IO_ERROR' });
    disk.state.fsync = null;
    const writesBefore = disk.state.writes;
    await assert.rejects(ctx.log.append('t', [{ value: 'b', partition: 0 }]), (err: KappaError) => {
      assert.equal(err.code, 'KAPPA_IO_ERROR');
      assert.match(err.message, /stopped accepting appends after an I\/O error/);
      return true;
    });
    assert.equal(disk.state.writes, writesBefore, 'nothing more was written to the failed partition');
    assert.equal(
      (await ctx.log.append('t', [{ value: 'other', partition: 1 }]))[0].offset,
      0,
      'other partitions keep working',
    );
  });

  test('appends queued behind a failed fsync are rejected too, none acknowledged', async () => {
    disk.state.fsync = 'eio';
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => ctx.log.append('t', [{ value: `${i}`, partition: 0 }])),
    );
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.equal((await ctx.log.offsets('t', 0)).end, 0);
  });

  test('after a failed fsync, close leaves no clean-shutdown marker and a reopen recovers the partition', async () => {
    await ctx.log.append('t', [{ value: 'acked', partition: 0 }]);
    disk.state.fsync = 'eio';
    await assert.rejects(ctx.log.append('t', [{ value: 'x', partition: 0 }]));
    disk.state.fsync = null;
    await ctx.log.close();
    assert.ok(!nodeFs.existsSync(join(ctx.dir, '.clean-shutdown')), 'the next open must not trust the files blindly');
    ctx.log = await openTestLog(ctx.dir, { logger });
    const recovered = await values(0);
    assert.equal(recovered[0], 'acked');
    const [next] = await ctx.log.append('t', [{ value: 'again', partition: 0 }]);
    assert.equal(next.offset, recovered.length);
  });

  test('ENOSPC on write rejects with KAPPA_DISK_FULL; once space is back, appends work and offsets stay contiguous', async () => {
    await ctx.log.append('t', [{ value: 'r0', partition: 0 }]);
    disk.state.write = 'enospc';
    await assert.rejects(ctx.log.append('t', [{ value: 'lost', partition: 0 }]), (err: KappaError) => {
      assert.ok(err instanceof KappaError);
      assert.equal(err.code, 'KAPPA_DISK_FULL');
      assert.equal(err.retriable, true);
      assert.match(err.message, /disk is full/);
      return true;
    });
    await assert.rejects(ctx.log.append('t', [{ value: 'lost too', partition: 0 }]), { code: 'KAPPA_DISK_FULL' });
    disk.state.write = null;
    const [m1] = await ctx.log.append('t', [{ value: 'r1', partition: 0 }]);
    const [m2] = await ctx.log.append('t', [{ value: 'r2', partition: 0 }]);
    assert.deepEqual([m1.offset, m2.offset], [1, 2]);
    assert.deepEqual(await values(0), ['r0', 'r1', 'r2']);
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.deepEqual(await values(0), ['r0', 'r1', 'r2']);
    assert.deepEqual(logger.warnings, [], 'no torn tail or damage to recover from');
    assert.equal(verifyLog({ dir: ctx.dir }).ok, true);
  });

  test('a short write that ends in ENOSPC is cut back, so the partially written batch never surfaces', async () => {
    await ctx.log.append('t', [{ value: 'r0', partition: 0 }]);
    disk.state.write = 'enospc-partial';
    await assert.rejects(ctx.log.append('t', [{ value: 'half written'.repeat(20), partition: 0 }]), {
      code: 'KAPPA_DISK_FULL',
    });
    disk.state.write = null;
    const [m] = await ctx.log.append('t', [{ value: 'r1', partition: 0 }]);
    assert.equal(m.offset, 1);
    assert.deepEqual(await values(0), ['r0', 'r1']);
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.deepEqual(await values(0), ['r0', 'r1']);
    assert.deepEqual(logger.warnings, []);
  });

  test('every append queued behind a failed write is rejected, and their offsets are handed out again', async () => {
    disk.state.write = 'enospc';
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => ctx.log.append('t', [{ value: `${i}`, partition: 0 }])),
    );
    assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as KappaError).code === 'KAPPA_DISK_FULL'));
    disk.state.write = null;
    const metas = await Promise.all(
      Array.from({ length: 3 }, (_, i) => ctx.log.append('t', [{ value: `ok${i}`, partition: 0 }])),
    );
    assert.deepEqual(
      metas.map((m) => m[0].offset),
      [0, 1, 2],
    );
  });

  test('an I/O error other than a full disk on write is reported as KAPPA_IO_ERROR with the errno', async () => {
    disk.state.write = 'eio';
    await assert.rejects(ctx.log.append('t', [{ value: 'x', partition: 0 }]), (err: KappaError) => {
      assert.equal(err.code, 'KAPPA_IO_ERROR');
      assert.equal(err.details?.errno, 'EIO');
      return true;
    });
  });

  test('a write that fails after the group rolled to a new segment keeps what went into the old one', async () => {
    await ctx.log.createTopic('r', { partitions: 1, segmentBytes: 1024 });
    await ctx.log.append('r', [{ value: 'first', partition: 0 }]);
    disk.state.write = 'enospc';
    disk.state.failFromWrite = disk.state.writes + 2;
    // One group of eight 200-byte appends: the first ones fill the segment (one write), the roll
    // closes it, and the write into the new segment fails.
    const value = (i: number): string => `v${i}-`.padEnd(200, 'x');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        ctx.log.appendBatch('r', 0, [{ key: null, value: value(i), timestamp: Date.now() }]),
      ),
    );
    const kept = results.findIndex((r) => r.status === 'rejected');
    assert.ok(kept > 0, `the appends written before the roll are acknowledged: ${JSON.stringify(results)}`);
    assert.ok(
      results.slice(kept).every((r) => r.status === 'rejected' && (r.reason as KappaError).code === 'KAPPA_DISK_FULL'),
    );
    const written = ['first', ...Array.from({ length: kept }, (_, i) => value(i))];
    assert.deepEqual(
      (await readRecords(ctx.log, 'r', 0)).map((r) => r.value!.toString()),
      written,
    );
    disk.state.write = null;
    const [next] = await ctx.log.append('r', [{ value: 'after', partition: 0 }]);
    assert.equal(next.offset, written.length, 'the offsets handed back are handed out again');
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.deepEqual(
      (await readRecords(ctx.log, 'r', 0)).map((r) => r.value!.toString()),
      [...written, 'after'],
    );
    assert.deepEqual(logger.warnings, []);
    assert.equal(verifyLog({ dir: ctx.dir }).ok, true);
  });

  test('a segment roll that fails stops the partition until a restart, which keeps what was acknowledged', async () => {
    await ctx.log.createTopic('r', { partitions: 1, segmentBytes: 1024 });
    const value = (i: number): string => `v${i}-`.padEnd(200, 'x');
    // Three fill the 1,024-byte segment; the fourth makes it roll.
    for (let i = 0; i < 3; i++)
      await ctx.log.appendBatch('r', 0, [{ key: null, value: value(i), timestamp: Date.now() }]);
    disk.state.fsyncSync = 'eio';
    await assert.rejects(
      ctx.log.appendBatch('r', 0, [{ key: null, value: value(3), timestamp: Date.now() }]),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_IO_ERROR');
        assert.match(err.message, /Restart Kappa/);
        return true;
      },
    );
    disk.state.fsyncSync = null;
    await assert.rejects(
      ctx.log.appendBatch('r', 0, [{ key: null, value: 'later', timestamp: Date.now() }]),
      /Restart Kappa/,
    );
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { logger });
    const after = (await readRecords(ctx.log, 'r', 0)).map((r) => r.value!.toString());
    assert.deepEqual(after.slice(0, 3), [0, 1, 2].map(value), 'every acknowledged record is still there');
    const [next] = await ctx.log.append('r', [{ value: 'after restart', partition: 0 }]);
    assert.equal(next.offset, after.length);
    assert.equal(verifyLog({ dir: ctx.dir }).ok, true);
  });
});
