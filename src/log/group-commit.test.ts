import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BATCH_LOG_OVERHEAD, BatchField, readInt64 } from './format/index.ts';
import type { LogFs } from './fs.ts';
import { encodeBatch } from './record-batch.ts';
import { openTestLog, partitionDir, readRecords, segmentFiles, useTestLog } from './test-helpers.ts';

type FsyncCallback = (err: NodeJS.ErrnoException | null) => void;

/** An fsync the test holds: `run` lets it go on to the disk, `fail` answers it with EIO instead. */
interface ParkedFsync {
  fd: number;
  run: () => void;
  fail: () => void;
}

/**
 * An fs whose async fsync (the one group commit uses) is counted and, while `hold` is set, parked
 * until the test releases it, so a test can see what happens while fsyncs are in flight.
 */
function controllableFs() {
  const state = {
    fsyncs: 0,
    hold: false,
    parked: [] as ParkedFsync[],
    sizes: [] as number[],
    fds: [] as number[],
    running: 0,
    maxRunning: 0,
  };
  const fs: LogFs = {
    ...nodeFs,
    fsync: ((fd: number, done: FsyncCallback) => {
      state.fsyncs++;
      state.fds.push(fd);
      state.sizes.push(nodeFs.fstatSync(fd).size);
      state.maxRunning = Math.max(state.maxRunning, ++state.running);
      const callback: FsyncCallback = (err) => {
        state.running--;
        done(err);
      };
      const run = (): void => nodeFs.fsync(fd, callback);
      const fail = (): void => callback(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
      if (state.hold) state.parked.push({ fd, run, fail });
      else run();
    }) as typeof nodeFs.fsync,
  };
  return {
    fs,
    state,
    releaseAll(): void {
      state.hold = false;
      for (const parked of state.parked.splice(0)) parked.run();
    },
  };
}

/** A value of 70 KiB starting with `tag`: an append large enough to be fsynced beside others. */
function large(tag: string): string {
  return tag.padEnd(70 * 1024, '.');
}

/** The descriptors this process has open on `path`. */
function openFdsOn(path: string): number {
  let n = 0;
  for (const fd of nodeFs.readdirSync('/proc/self/fd')) {
    try {
      if (nodeFs.readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      /* closed meanwhile (the descriptor readdirSync itself used) */
    }
  }
  return n;
}

/** For each batch in a segment's bytes, the position it ends at and the offset after its last record. */
function batchEnds(bytes: Buffer): Map<number, number> {
  const ends = new Map<number, number>();
  for (let pos = 0; pos < bytes.length;) {
    const end = pos + BATCH_LOG_OVERHEAD + bytes.readInt32BE(pos + BatchField.batchLength);
    ends.set(
      end,
      readInt64(bytes, pos + BatchField.baseOffset) + bytes.readInt32BE(pos + BatchField.lastOffsetDelta) + 1,
    );
    pos = end;
  }
  return ends;
}

async function settled(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  return (await Promise.race([p.then(() => true), sleep(30).then(() => marker)])) !== marker;
}

describe('group commit (fsync: always)', () => {
  let disk: ReturnType<typeof controllableFs>;
  const ctx = useTestLog({
    options: () => ({ fs: (disk = controllableFs()).fs, fsync: 'always' }),
    topic: { name: 't', partitions: 1 },
    beforeClose: () => disk.releaseAll(),
  });

  test('8 concurrent appenders need fewer fsyncs than appends, and every append gets its own offset', async () => {
    const perAppender = 25;
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, a) => {
        const offsets: number[] = [];
        for (let i = 0; i < perAppender; i++) {
          const [meta] = await ctx.log.append('t', [{ key: null, value: `${a}:${i}` }]);
          offsets.push(meta.offset);
        }
        return offsets;
      }),
    );
    const appends = 8 * perAppender;
    assert.ok(disk.state.fsyncs > 0, 'appends were fsynced');
    assert.ok(disk.state.fsyncs < appends, `${disk.state.fsyncs} fsyncs for ${appends} appends`);
    const all = results.flat().sort((x, y) => x - y);
    assert.deepEqual(
      all,
      Array.from({ length: appends }, (_, i) => i),
    );
    // Each appender's own appends are acknowledged in order, and each offset holds what was sent.
    const records = await readRecords(ctx.log, 't', 0);
    results.forEach((offsets, a) => {
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
      );
      offsets.forEach((offset, i) => assert.equal(records[offset].value!.toString(), `${a}:${i}`));
    });
  });

  test('does not acknowledge an append, or show it to readers, before its fsync completes', async () => {
    disk.state.hold = true;
    const pending = ctx.log.append('t', [{ value: 'a' }]);
    assert.equal(await settled(pending), false, 'acknowledged before the fsync finished');
    assert.equal(disk.state.fsyncs, 1);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 0 });
    assert.equal((await readRecords(ctx.log, 't', 0)).length, 0);
    disk.releaseAll();
    assert.equal((await pending)[0].offset, 0);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 1 });
  });

  test('small appends that arrive while an fsync is in flight wait for it and share the next single fsync', async () => {
    disk.state.hold = true;
    const first = ctx.log.append('t', [{ value: 'first' }]);
    await sleep(5);
    assert.equal(disk.state.fsyncs, 1);
    const later = [
      ctx.log.append('t', [{ value: 'b' }]),
      ctx.log.append('t', [{ value: 'c' }]),
      ctx.log.append('t', [{ value: 'd' }]),
    ];
    await sleep(5);
    assert.equal(disk.state.fsyncs, 1, 'no second fsync for a few bytes while the first is in flight');
    disk.releaseAll();
    await first;
    const metas = await Promise.all(later);
    assert.deepEqual(
      metas.map((m) => m[0].offset),
      [1, 2, 3],
    );
    assert.equal(disk.state.fsyncs, 2, 'one fsync for the whole second group');
  });

  test('large appends that arrive while an fsync is in flight start the next one beside it; a later fsync acknowledges the earlier group too', async () => {
    disk.state.hold = true;
    const first = ctx.log.append('t', [{ value: large('first') }]);
    await sleep(5);
    assert.equal(disk.state.fsyncs, 1);
    const later = [
      ctx.log.append('t', [{ value: large('b') }]),
      ctx.log.append('t', [{ value: large('c') }]),
      ctx.log.append('t', [{ value: large('d') }]),
    ];
    await sleep(5);
    assert.equal(disk.state.fsyncs, 2, 'one more fsync, for all three, while the first is in flight');
    assert.notEqual(disk.state.fds[0], disk.state.fds[1], 'fsyncs side by side use a descriptor each');
    assert.equal(await settled(first), false);
    // The second fsync returns first: it made everything written before it durable, the first group too.
    disk.state.parked[1].run();
    assert.equal((await first)[0].offset, 0);
    const metas = await Promise.all(later);
    assert.deepEqual(
      metas.map((m) => m[0].offset),
      [1, 2, 3],
    );
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 4 });
    disk.state.hold = false;
    disk.state.parked[0].run(); // returning late changes nothing
    await ctx.log.append('t', [{ value: 'e' }]);
    assert.equal((await readRecords(ctx.log, 't', 0)).length, 5);
  });

  test('at most four fsyncs are in flight; large appends queued behind them go in the next one', async () => {
    disk.state.hold = true;
    const acked: number[] = [];
    const append = (value: string): Promise<void> =>
      ctx.log.append('t', [{ value: large(value) }]).then(([m]) => void acked.push(m.offset));
    const appends: Promise<void>[] = [];
    for (const value of ['a', 'b', 'c', 'd', 'e', 'f']) {
      appends.push(append(value));
      await sleep(5);
    }
    assert.equal(disk.state.fsyncs, 4, 'e and f wait');
    assert.deepEqual(acked, []);
    disk.state.parked[0].run();
    await appends[0];
    await sleep(5);
    assert.deepEqual(acked, [0]);
    assert.equal(disk.state.fsyncs, 5, 'e and f share the fsync that starts when one returns');
    disk.releaseAll();
    await Promise.all(appends);
    assert.deepEqual(acked, [0, 1, 2, 3, 4, 5]);
  });

  test('a failed fsync rejects every append not yet acknowledged, even one whose own fsync then succeeds', async () => {
    disk.state.hold = true;
    const first = ctx.log.append('t', [{ value: large('a') }]);
    await sleep(5);
    const second = ctx.log.append('t', [{ value: large('b') }]);
    await sleep(5);
    assert.equal(disk.state.fsyncs, 2);
    disk.state.parked[0].fail();
    await assert.rejects(first, { code: 'KAPPA_IO_ERROR' });
    await assert.rejects(second, { code: 'KAPPA_IO_ERROR' });
    disk.state.parked[1].run();
    await sleep(5);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 0 }, 'nothing became visible');
    await assert.rejects(ctx.log.append('t', [{ value: large('c') }]), /stopped accepting appends/);
    disk.state.parked.splice(0);
  });

  test('the descriptors opened for fsyncs side by side are closed with the log', async () => {
    const path = join(partitionDir(ctx.dir, 't', 0), segmentFiles(ctx.dir, 't', 0)[0]);
    disk.state.hold = true;
    const appends = [ctx.log.append('t', [{ value: large('a') }])];
    await sleep(5);
    appends.push(ctx.log.append('t', [{ value: large('b') }]));
    await sleep(5);
    appends.push(ctx.log.append('t', [{ value: large('c') }]));
    await sleep(5);
    assert.equal(new Set(disk.state.fds).size, 3);
    disk.releaseAll();
    await Promise.all(appends);
    assert.ok(openFdsOn(path) >= 3, 'kept for the next fsyncs');
    await ctx.log.close();
    assert.equal(openFdsOn(path), 0);
    ctx.log = await openTestLog(ctx.dir, { fs: disk.fs, fsync: 'always' });
  });

  /** Appends `appends` records (`value(i)`) keeping 8 in flight; returns the appends each fsync covered. */
  async function appendWindowed(appends: number, value: (i: number) => string): Promise<number[]> {
    const window: Promise<unknown>[] = [];
    for (let i = 0; i < appends; i++) {
      if (window.length === 8) await window.shift();
      window.push(ctx.log.append('t', [{ value: value(i) }]));
    }
    await Promise.all(window);
    // The records each fsync covered: the file's size at each fsync, turned into the offset it ends at.
    const [segment] = segmentFiles(ctx.dir, 't', 0);
    const endOffsetAt = batchEnds(nodeFs.readFileSync(join(partitionDir(ctx.dir, 't', 0), segment)));
    const groups = disk.state.sizes.map(
      (size, i) => endOffsetAt.get(size)! - (i === 0 ? 0 : endOffsetAt.get(disk.state.sizes[i - 1])!),
    );
    assert.equal(
      groups.reduce((a, b) => a + b, 0),
      appends,
    );
    return groups;
  }

  test('an appender with 8 small appends in flight gets fsyncs of half its window, not of one and then seven', async () => {
    const groups = await appendWindowed(64, (i) => `value ${String(i).padStart(3, '0')}`);
    // The first fsync covers the first 8; after it, groups of 4 (the old behaviour alternated 1 and 7).
    assert.deepEqual(groups.slice(1, -1), Array(groups.length - 2).fill(4), `appends per fsync: ${groups.join(' ')}`);
    assert.equal(disk.state.maxRunning, 1, 'one fsync at a time for a few bytes each');
  });

  test('an appender with 8 large appends in flight gets fsyncs side by side, each of part of its window', async () => {
    const groups = await appendWindowed(64, (i) => large(String(i)));
    // The first fsync covers the first 8; after it, up to four side by side share the window, each
    // covering the appends queued since the one before (the disk's timing varies how many).
    assert.equal(groups[0], 8);
    assert.ok(groups.length <= 64 / 2 + 2, `appends per fsync: ${groups.join(' ')}`);
    assert.ok(disk.state.maxRunning > 1, 'fsyncs ran side by side');
  });

  test('small appends waiting for the same fsync share one batch; each keeps its own offset', async () => {
    await ctx.log.append('t', [{ value: 'first' }]);
    disk.state.hold = true;
    const held = ctx.log.append('t', [{ value: 'during the fsync' }]);
    await sleep(5);
    // Queued while that fsync runs: 30 single-record appends and a 2-record one (merged); a record
    // whose value is a Buffer the caller refills at once (encoded at once, so it keeps its bytes);
    // an encoded batch (kept whole, as it came); then two more small ones.
    const singles = Array.from({ length: 30 }, (_, i) =>
      ctx.log.append('t', [{ value: `s${i}`, timestamp: 1000 + i }]),
    );
    const pair = ctx.log.append('t', [{ value: 'p0' }, { key: 'k', value: 'p1' }]);
    const reused = Buffer.from('buffer');
    const fromBuffer = ctx.log.append('t', [{ value: reused, headers: [{ key: 'h', value: Buffer.from('x') }] }]);
    reused.write('BUFFER');
    const encoded = ctx.log.appendEncoded(
      't',
      0,
      encodeBatch([{ key: 'k', value: 'e', timestamp: 5 }], { baseOffset: 0 }),
    );
    const tail = [ctx.log.append('t', [{ value: 't0' }]), ctx.log.append('t', [{ value: 't1' }])];
    disk.releaseAll();
    await held;
    assert.deepEqual(
      (await Promise.all(singles)).map(([m]) => m.offset),
      Array.from({ length: 30 }, (_, i) => 2 + i),
    );
    assert.deepEqual(
      (await pair).map((m) => m.offset),
      [32, 33],
    );
    assert.equal((await fromBuffer)[0].offset, 34);
    assert.equal((await encoded).baseOffset, 35);
    assert.deepEqual(
      (await Promise.all(tail)).map(([m]) => m.offset),
      [36, 37],
    );
    const [segment] = segmentFiles(ctx.dir, 't', 0);
    const ends = [...batchEnds(nodeFs.readFileSync(join(partitionDir(ctx.dir, 't', 0), segment))).values()];
    // first | during | 30 singles + the pair | the Buffer record | encoded | the two after it
    assert.deepEqual(ends, [1, 2, 34, 35, 36, 38]);
    const records = await readRecords(ctx.log, 't', 0);
    assert.deepEqual(
      records.map((r) => r.value!.toString()),
      [
        'first',
        'during the fsync',
        ...Array.from({ length: 30 }, (_, i) => `s${i}`),
        'p0',
        'p1',
        'buffer',
        'e',
        't0',
        't1',
      ],
    );
    assert.deepEqual(
      records.slice(2, 32).map((r) => r.timestamp),
      Array.from({ length: 30 }, (_, i) => 1000 + i),
    );
    assert.equal(records[33].key!.toString(), 'k');
    assert.equal(records[34].headers[0].value!.toString(), 'x');
  });

  test('batch buffers reused once written never change bytes still waiting to be written', async () => {
    // 40 KiB batches (pooled) with 12 in flight while fsyncs are held: the writes of later groups
    // reuse the buffers of earlier ones; every record must read back as it was appended.
    const value = (i: number, r: number): string => `${i}:${r}:`.padEnd(400, String.fromCharCode(97 + ((i + r) % 26)));
    const batch = (i: number) =>
      Array.from({ length: 100 }, (_, r) => ({ key: null, value: value(i, r), timestamp: i }));
    const appended: Promise<{ baseOffset: number }>[] = [];
    for (let i = 0; i < 60; i++) {
      disk.state.hold = i % 12 !== 11;
      appended.push(ctx.log.appendBatch('t', 0, batch(i)));
      if (i % 12 === 11) disk.releaseAll();
      await sleep(0);
    }
    disk.releaseAll();
    assert.deepEqual(
      (await Promise.all(appended)).map((r) => r.baseOffset),
      Array.from({ length: 60 }, (_, i) => i * 100),
    );
    const records = await readRecords(ctx.log, 't', 0);
    assert.equal(records.length, 6000);
    for (const [n, rec] of records.entries()) assert.equal(rec.value!.toString(), value(Math.floor(n / 100), n % 100));
  });

  test('fsync: never acknowledges without any fsync of the segment', async () => {
    await ctx.log.close();
    disk = controllableFs();
    ctx.log = await openTestLog(ctx.dir, { fs: disk.fs, fsync: 'never' });
    for (let i = 0; i < 10; i++) await ctx.log.append('t', [{ value: `${i}` }]);
    assert.equal(disk.state.fsyncs, 0);
    assert.equal((await readRecords(ctx.log, 't', 0)).length, 10);
  });

  describe('a segment roll', () => {
    /** Under fsync `never` (the roll's fsync is then the only one), three 200-byte appends fill a 1,024-byte segment. */
    async function fullSegment(): Promise<(i: number) => string> {
      await ctx.log.close();
      disk = controllableFs();
      ctx.log = await openTestLog(ctx.dir, { fs: disk.fs, fsync: 'never' });
      await ctx.log.createTopic('r', { partitions: 1, segmentBytes: 1024 });
      const value = (i: number): string => `v${i}-`.padEnd(200, 'x');
      for (let i = 0; i < 3; i++) await ctx.log.append('r', [{ value: value(i), partition: 0 }]);
      return value;
    }

    test('fsyncs the full segment off the event loop and writes what was queued meanwhile into the next', async () => {
      const value = await fullSegment();
      disk.state.hold = true;
      const rolling = ctx.log.append('r', [{ value: value(3), partition: 0 }]);
      await sleep(5);
      assert.equal(disk.state.fsyncs, 1, "the old segment's fsync runs");
      const queued = ctx.log.append('r', [{ value: value(4), partition: 0 }]);
      await sleep(5);
      assert.equal(await settled(rolling), false);
      assert.deepEqual(segmentFiles(ctx.dir, 'r', 0).length, 1, 'the next segment waits for the fsync');
      disk.releaseAll();
      assert.equal((await rolling)[0].offset, 3);
      assert.equal((await queued)[0].offset, 4);
      assert.equal(segmentFiles(ctx.dir, 'r', 0).length, 2);
      assert.deepEqual(
        (await readRecords(ctx.log, 'r', 0)).map((r) => r.value!.toString()),
        [0, 1, 2, 3, 4].map(value),
      );
    });

    test('whose fsync fails stops the partition, rejecting what waited for it', async () => {
      const value = await fullSegment();
      disk.state.hold = true;
      const rolling = ctx.log.append('r', [{ value: value(3), partition: 0 }]);
      await sleep(5);
      const queued = ctx.log.append('r', [{ value: value(4), partition: 0 }]);
      disk.state.parked[0].fail();
      await assert.rejects(rolling, { code: 'KAPPA_IO_ERROR' });
      await assert.rejects(queued, /Restart Kappa/);
      assert.equal(segmentFiles(ctx.dir, 'r', 0).length, 1);
      disk.state.hold = false;
      await ctx.log.close();
      ctx.log = await openTestLog(ctx.dir, { fsync: 'never' });
      assert.deepEqual(
        (await readRecords(ctx.log, 'r', 0)).map((r) => r.value!.toString()),
        [0, 1, 2].map(value),
      );
    });
  });

  test('fsync: interval acknowledges after the write and fsyncs on a timer', async () => {
    await ctx.log.close();
    disk = controllableFs();
    ctx.log = await openTestLog(ctx.dir, { fs: disk.fs, fsync: 'interval', fsyncIntervalMs: 10 });
    disk.state.hold = true; // even a stuck fsync does not hold acknowledgements back
    await ctx.log.append('t', [{ value: 'x' }]);
    assert.equal((await ctx.log.offsets('t', 0)).end, 1);
    const deadline = Date.now() + 1000;
    while (disk.state.fsyncs === 0 && Date.now() < deadline) await sleep(5);
    assert.ok(disk.state.fsyncs >= 1, 'the interval timer fsynced the written bytes');
    disk.releaseAll();
  });
});
