import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { encodeBatch } from './record-batch.ts';
import type { ProducerRecord } from './types.ts';
import { collectingLogger, openTestLog, partitionDir, readRecords, segmentFiles, useTestLog } from './test-helpers.ts';
import { verifyLog } from './verify.ts';

const T0 = 1_700_000_000_000;

function pad(base: number): string {
  return String(base).padStart(20, '0');
}

describe('reopening and recovery', () => {
  let logger: ReturnType<typeof collectingLogger>;
  const ctx = useTestLog({ options: () => ({ logger: (logger = collectingLogger()) }) });

  /** Closes the log, then makes the directory look as if the process had died instead. */
  async function simulateCrash(): Promise<void> {
    await ctx.log.close();
    fs.unlinkSync(join(ctx.dir, '.clean-shutdown'));
  }

  function activeLogPath(topic: string, partition: number): string {
    const files = segmentFiles(ctx.dir, topic, partition);
    return join(partitionDir(ctx.dir, topic, partition), files[files.length - 1]);
  }

  /** Appends `records(i)` to topic t for i = 0 to 5, one call each; returns t/0's active file size after each. */
  async function appendSix(records: (i: number) => ProducerRecord[]): Promise<number[]> {
    const sizes = [];
    for (let i = 0; i < 6; i++) {
      await ctx.log.append('t', records(i));
      sizes.push(fs.statSync(activeLogPath('t', 0)).size);
    }
    return sizes;
  }

  /** Makes the log look crashed, flips the low bit of byte `at` of t/0's active segment, and reopens it. */
  async function crashFlipAndReopen(at: number): Promise<{ path: string; bytes: Buffer }> {
    await simulateCrash();
    const path = activeLogPath('t', 0);
    const bytes = fs.readFileSync(path);
    bytes[at] ^= 0x01;
    fs.writeFileSync(path, bytes);
    logger = collectingLogger();
    ctx.log = await openTestLog(ctx.dir, { logger });
    return { path, bytes };
  }

  test('a reopen after a clean close keeps topics, offsets and every byte of every record', async () => {
    await ctx.log.createTopic('a', { partitions: 3, retentionMs: 86_400_000, segmentBytes: 2048 });
    await ctx.log.createTopic('b', { partitions: 1 });
    const sent: { key: string | null; value: string | null; headers: Record<string, string>; timestamp: number }[] = [];
    for (let i = 0; i < 60; i++) {
      sent.push({
        key: i % 4 === 0 ? null : `key-${i % 7}`,
        value: i % 9 === 0 ? null : `value ${i} ✓`.repeat(3),
        headers: { i: String(i) },
        timestamp: T0 + i * 3,
      });
    }
    const metas = await ctx.log.append('a', sent);
    await ctx.log.append('b', [{ value: 'only' }]);
    const topicsBefore = await ctx.log.topics();
    const before = await Promise.all([0, 1, 2].map((p) => readRecords(ctx.log, 'a', p)));
    await ctx.log.close();
    assert.ok(fs.existsSync(join(ctx.dir, '.clean-shutdown')));
    assert.ok(!fs.existsSync(join(ctx.dir, '.lock')), 'close releases the lock');
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.ok(!fs.existsSync(join(ctx.dir, '.clean-shutdown')), 'the marker only vouches for one open');
    assert.deepEqual(await ctx.log.topics(), topicsBefore);
    const after = await Promise.all([0, 1, 2].map((p) => readRecords(ctx.log, 'a', p)));
    assert.deepEqual(after, before);
    metas.forEach((m, i) => {
      const r = after[m.partition].find((x) => x.offset === m.offset)!;
      assert.equal(r.value?.toString() ?? null, sent[i].value);
      assert.equal(r.timestamp, sent[i].timestamp);
    });
    assert.deepEqual(logger.warnings, []);
    const [next] = await ctx.log.append('b', [{ value: 'next' }]);
    assert.equal(next.offset, 1);
  });

  test('rebuilds a deleted .index/.timeindex of a closed segment; reads and time lookups still work', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 32 * 1024 });
    for (let i = 0; i < 150; i++)
      await ctx.log.appendBatch('t', 0, [{ key: null, value: `${i}:`.padEnd(1000, '#'), timestamp: T0 + i * 10 }]);
    const files = segmentFiles(ctx.dir, 't', 0);
    assert.ok(files.length >= 4);
    const dir = partitionDir(ctx.dir, 't', 0);
    const first = Number(files[0].slice(0, 20));
    const second = Number(files[1].slice(0, 20));
    const third = Number(files[2].slice(0, 20));
    assert.ok(fs.statSync(join(dir, `${pad(first)}.index`)).size > 0, 'the closed segment has index entries');
    await ctx.log.close();
    fs.unlinkSync(join(dir, `${pad(first)}.index`));
    fs.unlinkSync(join(dir, `${pad(first)}.timeindex`));
    fs.unlinkSync(join(dir, `${pad(second)}.timeindex`));
    fs.writeFileSync(join(dir, `${pad(third)}.index`), Buffer.from('garbage'));
    ctx.log = await openTestLog(ctx.dir, { logger });
    for (const from of [0, 1, 15, first + 31, second, second + 7, third + 3, 149]) {
      const records = await readRecords(ctx.log, 't', 0, from);
      assert.deepEqual(
        records.map((r) => r.offset),
        Array.from({ length: 150 - from }, (_, i) => from + i),
        `from ${from}`,
      );
      assert.ok(records[0].value!.toString().startsWith(`${from}:`));
    }
    for (const i of [0, 5, 33, 77, 149]) assert.equal(await ctx.log.offsetForTime('t', 0, T0 + i * 10 - 3), i);
    assert.equal(verifyLog({ dir: ctx.dir }).ok, true);
  });

  test('ignores an index whose entries point past the end of its segment', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 16 * 1024 });
    for (let i = 0; i < 60; i++) await ctx.log.append('t', [{ value: `${i}:`.padEnd(1000, '#'), timestamp: T0 }]);
    await ctx.log.close();
    const dir = partitionDir(ctx.dir, 't', 0);
    const bogus = Buffer.alloc(8);
    bogus.writeUInt32BE(3, 0);
    bogus.writeUInt32BE(10_000_000, 4);
    fs.writeFileSync(join(dir, `${pad(0)}.index`), bogus);
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.equal((await readRecords(ctx.log, 't', 0, 3))[0].value!.toString().slice(0, 2), '3:');
  });

  test('removes leftover temporary and orphaned index files on open', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    await ctx.log.append('t', [{ value: 'x' }]);
    await ctx.log.close();
    const dir = partitionDir(ctx.dir, 't', 0);
    fs.writeFileSync(join(dir, `${pad(0)}.index.tmp`), 'half');
    fs.writeFileSync(join(dir, `${pad(500)}.index`), '');
    fs.writeFileSync(join(dir, `${pad(500)}.timeindex`), '');
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.deepEqual(fs.readdirSync(dir).sort(), [`${pad(0)}.index`, `${pad(0)}.log`, `${pad(0)}.timeindex`]);
    assert.equal((await readRecords(ctx.log, 't', 0)).length, 1);
  });

  test('cuts a torn tail after a crash, reports it, and continues at the next offset', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 5; i++) await ctx.log.append('t', [{ value: `r${i}` }]);
    await simulateCrash();
    const path = activeLogPath('t', 0);
    const sizeBefore = fs.statSync(path).size;
    const unfinished = encodeBatch([{ key: null, value: 'never acknowledged', timestamp: T0 }], { baseOffset: 5 });
    fs.appendFileSync(path, unfinished.subarray(0, unfinished.length - 4));
    logger = collectingLogger();
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.equal(fs.statSync(path).size, sizeBefore);
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0], /torn tail/);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 5 });
    const [meta] = await ctx.log.append('t', [{ value: 'r5' }]);
    assert.equal(meta.offset, 5);
    assert.deepEqual(
      (await readRecords(ctx.log, 't', 0)).map((r) => r.value!.toString()),
      ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'],
    );
  });

  test('cuts a damaged last batch after a crash, when no valid batch follows it', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 3; i++) await ctx.log.append('t', [{ value: `r${i}` }]);
    await simulateCrash();
    const path = activeLogPath('t', 0);
    const bytes = fs.readFileSync(path);
    bytes[bytes.length - 2] ^= 0xff; // the last batch was being written when power failed
    fs.writeFileSync(path, bytes);
    logger = collectingLogger();
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 2 });
    assert.match(logger.warnings.join('\n'), /torn tail/);
  });

  test('never cuts damage followed by valid batches: marks the partition damaged, fails reads there, refuses appends', async () => {
    await ctx.log.createTopic('t', { partitions: 2 });
    const sizes = await appendSix((i) => [{ value: `r${i}`, partition: 0 }]);
    await ctx.log.append('t', [{ value: 'healthy', partition: 1 }]);
    const damagedAt = sizes[2]; // the batch holding offset 3
    const { path, bytes } = await crashFlipAndReopen(sizes[3] - 3); // inside its records, covered by its CRC
    assert.equal(fs.statSync(path).size, bytes.length, 'nothing was cut');
    assert.match(logger.warnings.join('\n'), /damaged/);
    // A read from before the damage gets every intact record, then fails when it reaches the damage.
    const early: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const batch of ctx.log.read('t', 0, 0)) early.push(...batch.records().map((r) => r.offset));
      })(),
      { code: 'KAPPA_CORRUPT_DATA' },
    );
    assert.deepEqual(early, [0, 1, 2]);
    await assert.rejects(readRecords(ctx.log, 't', 0, 3), { code: 'KAPPA_CORRUPT_DATA' });
    await assert.rejects(ctx.log.append('t', [{ value: 'buried?', partition: 0 }]), { code: 'KAPPA_CORRUPT_DATA' });
    const health = ctx.log.health('t');
    assert.equal(health[0].corruption?.position, damagedAt);
    assert.equal(health[1].corruption, null);
    assert.equal(
      (await ctx.log.append('t', [{ value: 'fine', partition: 1 }]))[0].offset,
      1,
      'other partitions keep working',
    );
    const report = verifyLog({ dir: ctx.dir });
    assert.equal(report.ok, false);
    assert.ok(report.findings.some((f) => f.severity === 'error' && f.file === path && f.position === damagedAt));
  });

  test('detects a damaged base offset (which the CRC does not cover) as damage, and still serves the records before it', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    const sizes = await appendSix((i) => [{ value: `r${i}` }]);
    await crashFlipAndReopen(sizes[3]); // top byte of the base offset of the batch holding offset 4
    assert.equal(ctx.log.health('t')[0].corruption?.position, sizes[3]);
    const early: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const batch of ctx.log.read('t', 0, 0)) early.push(...batch.records().map((r) => r.offset));
      })(),
      { code: 'KAPPA_CORRUPT_DATA' },
    );
    assert.deepEqual(early, [0, 1, 2, 3]);
  });

  test('never cuts a batch whose damaged length makes it look unfinished when valid batches follow it', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    const sizes = await appendSix((i) => [{ value: `r${i}` }]);
    // The batch holding offset 2 now claims 64 KiB more than the file has.
    const { path, bytes } = await crashFlipAndReopen(sizes[1] + 9);
    assert.equal(fs.statSync(path).size, bytes.length, 'acknowledged records after it were not cut');
    assert.ok(!logger.warnings.some((w) => /torn tail/.test(w)));
    assert.equal(ctx.log.health('t')[0].corruption?.position, sizes[1]);
    await assert.rejects(ctx.log.append('t', [{ value: 'x' }]), { code: 'KAPPA_CORRUPT_DATA' });
    await assert.rejects(readRecords(ctx.log, 't', 0, 2), { code: 'KAPPA_CORRUPT_DATA' });
  });

  test('a damaged base offset in a closed segment fails the read instead of shifting the offsets of its records', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 2048 });
    const sizes = await appendSix((i) => [{ value: `a${i}` }, { value: `b${i}` }]); // offsets 2i and 2i+1
    for (let i = 0; i < 20; i++) await ctx.log.append('t', [{ value: 'filler'.repeat(30) }]);
    await ctx.log.close();
    const first = join(partitionDir(ctx.dir, 't', 0), segmentFiles(ctx.dir, 't', 0)[0]);
    const bytes = fs.readFileSync(first);
    bytes[sizes[2] + 7] ^= 0x01; // batch 3 (offsets 6-7) now claims base offset 7
    fs.writeFileSync(first, bytes);
    ctx.log = await openTestLog(ctx.dir, { logger });
    for (const from of [0, 6, 7]) {
      const seen: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const batch of ctx.log.read('t', 0, from))
            for (const r of batch.records(from)) seen.push(`${r.offset}=${r.value!.toString()}`);
        })(),
        { code: 'KAPPA_CORRUPT_DATA' },
        `reading from ${from}`,
      );
      for (const entry of seen) {
        const [offset, value] = entry.split('=');
        assert.equal(
          value,
          `${Number(offset) % 2 === 0 ? 'a' : 'b'}${Math.floor(Number(offset) / 2)}`,
          `offset ${offset} carries its own value`,
        );
      }
      assert.equal(seen.length, Math.max(0, 6 - from));
    }
  });

  test('after a clean shutdown even an unfinished last batch counts as damage, not a torn write', async () => {
    await ctx.log.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 3; i++) await ctx.log.append('t', [{ value: `r${i}` }]);
    await ctx.log.close();
    const path = activeLogPath('t', 0);
    const size = fs.statSync(path).size;
    fs.truncateSync(path, size - 3);
    logger = collectingLogger();
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.equal(fs.statSync(path).size, size - 3, 'nothing was cut');
    await assert.rejects(ctx.log.append('t', [{ value: 'x' }]), { code: 'KAPPA_CORRUPT_DATA' });
    assert.deepEqual(
      await readRecords(ctx.log, 't', 0, 0).catch((e: { code: string }) => e.code),
      'KAPPA_CORRUPT_DATA',
    );
  });

  test('a damaged batch in a closed segment fails the read with KAPPA_CORRUPT_DATA instead of being skipped', async () => {
    await ctx.log.createTopic('t', { partitions: 1, segmentBytes: 1024 });
    for (let i = 0; i < 12; i++) await ctx.log.append('t', [{ value: `${i}`.padEnd(150, '.') }]);
    await ctx.log.close();
    const dir = partitionDir(ctx.dir, 't', 0);
    const firstSegment = join(dir, segmentFiles(ctx.dir, 't', 0)[0]);
    const bytes = fs.readFileSync(firstSegment);
    bytes[bytes.length - 10] ^= 0x40;
    fs.writeFileSync(firstSegment, bytes);
    ctx.log = await openTestLog(ctx.dir, { logger });
    await assert.rejects(readRecords(ctx.log, 't', 0), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'KAPPA_CORRUPT_DATA');
      assert.match(err.message, /kappa verify/);
      return true;
    });
    assert.equal(verifyLog({ dir: ctx.dir }).ok, false);
  });
});
