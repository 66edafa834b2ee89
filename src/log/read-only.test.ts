import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { FileLog } from './file-log.ts';
import type { LogRecord } from './record-batch.ts';
import { readAsync, syncReadFs } from './fs.ts';
import { manualClock, openTestLog, readRecords, segmentFiles, tempDir } from './test-helpers.ts';

const T0 = 1_700_000_000_000;

/** Path → size and mtime of every file: enough to see whether a reader changed anything. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const st = fs.statSync(join(dir, rel));
    out[rel] = st.isDirectory() ? 'dir' : `${st.size}@${st.mtimeMs}`;
  }
  return out;
}

describe('read-only open beside a writer', () => {
  let tmp: ReturnType<typeof tempDir>;
  let writer: FileLog;
  let reader: FileLog;

  beforeEach(async () => {
    tmp = tempDir();
    writer = await openTestLog(tmp.dir, { fsync: 'never' });
    await writer.createTopic('t', { partitions: 2, segmentBytes: 1024 });
    await writer.append('t', [{ value: 'first', partition: 0, timestamp: T0 }]);
    reader = await openTestLog(tmp.dir, { readOnly: true, pollIntervalMs: 10 });
  });
  afterEach(async () => {
    await reader.close();
    await writer.close();
    tmp.cleanup();
  });

  test('sees records the writer appends later, on the next offsets() or read', async () => {
    assert.deepEqual(await reader.offsets('t', 0), { start: 0, end: 1 });
    await writer.append('t', [
      { value: 'second', partition: 0 },
      { value: 'third', partition: 0 },
    ]);
    assert.deepEqual(await reader.offsets('t', 0), { start: 0, end: 3 });
    await writer.append('t', [{ value: 'fourth', partition: 0 }]);
    assert.deepEqual(
      (await readRecords(reader, 't', 0)).map((r) => r.value!.toString()),
      ['first', 'second', 'third', 'fourth'],
    );
  });

  test('follows the writer into new segments, reading every offset exactly once', async () => {
    assert.equal(segmentFiles(tmp.dir, 't', 0).length, 1);
    for (let i = 1; i < 25; i++)
      await writer.append('t', [{ value: `${i}`.padEnd(150, '.'), partition: 0, timestamp: T0 + i }]);
    assert.ok(segmentFiles(tmp.dir, 't', 0).length >= 4);
    assert.deepEqual(await reader.offsets('t', 0), { start: 0, end: 25 });
    assert.deepEqual(
      (await readRecords(reader, 't', 0)).map((r) => r.offset),
      Array.from({ length: 25 }, (_, i) => i),
    );
  });

  test('offsetForTime finds records the writer added to a segment that has since rolled', async () => {
    assert.deepEqual(await reader.offsets('t', 0), { start: 0, end: 1 });
    // Written into the segment the reader still thinks is active, which then rolls.
    await writer.append('t', [{ value: 'late', partition: 0, timestamp: T0 + 5000 }]);
    for (let i = 0; i < 20; i++)
      await writer.append('t', [{ value: 'x'.repeat(150), partition: 0, timestamp: T0 + 9000 + i }]);
    assert.equal(await writer.offsetForTime('t', 0, T0 + 1), 1);
    assert.equal(await reader.offsetForTime('t', 0, T0 + 1), 1);
    assert.equal(await reader.offsetForTime('t', 0, T0 + 9005), await writer.offsetForTime('t', 0, T0 + 9005));
  });

  test('a follower polls for appends from another writer and receives them', async () => {
    const controller = new AbortController();
    const got: LogRecord[] = [];
    const done = (async () => {
      for await (const batch of reader.read('t', 1, 0, { follow: true, signal: controller.signal }))
        got.push(...batch.records());
    })();
    await writer.append('t', [{ value: 'a', partition: 1 }]);
    await writer.append('t', [{ value: 'b', partition: 1 }]);
    const deadline = Date.now() + 2000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await done;
    assert.deepEqual(
      got.map((r) => r.value!.toString()),
      ['a', 'b'],
    );
  });

  test('sees topics the writer creates after the reader opened', async () => {
    await writer.createTopic('later', { partitions: 1 });
    await writer.append('later', [{ value: 'hello' }]);
    assert.deepEqual(
      (await reader.topics()).map((t) => t.name),
      ['later', 't'],
    );
    assert.equal((await readRecords(reader, 'later', 0))[0].value!.toString(), 'hello');
  });

  test('refuses to create topics or append with KAPPA_READ_ONLY', async () => {
    await assert.rejects(reader.createTopic('new', { partitions: 1 }), { code: 'KAPPA_READ_ONLY' });
    await assert.rejects(reader.append('t', [{ value: 'x' }]), { code: 'KAPPA_READ_ONLY' });
    await assert.rejects(reader.appendBatch('t', 0, [{ key: null, value: 'x', timestamp: 1 }]), {
      code: 'KAPPA_READ_ONLY',
    });
    assert.equal(reader.enforceRetention(), 0);
  });

  test('changes nothing on disk: no lock, no marker, no truncation, no index files', async () => {
    for (let i = 0; i < 30; i++) await writer.append('t', [{ value: `${i}`.padEnd(100, '-'), partition: 0 }]);
    await writer.close();
    // An unfinished batch at the end, as if a writer were in the middle of a write.
    const active = join(tmp.dir, 'topics', 't', '0', segmentFiles(tmp.dir, 't', 0).at(-1)!);
    fs.appendFileSync(active, Buffer.alloc(30, 7));
    fs.unlinkSync(join(tmp.dir, '.clean-shutdown'));
    const before = snapshot(tmp.dir);
    await reader.close();
    reader = await openTestLog(tmp.dir, { readOnly: true });
    const records = await readRecords(reader, 't', 0);
    assert.equal(records.length, 31);
    await reader.offsetForTime('t', 0, 0);
    await reader.topics();
    assert.deepEqual(snapshot(tmp.dir), before);
    writer = await openTestLog(tmp.dir, { fsync: 'never' }); // for afterEach
  });

  test('sees the start offset move when the writer’s retention deletes segments', async () => {
    await writer.close();
    const clock = manualClock(T0);
    writer = await openTestLog(tmp.dir, { fsync: 'never', clock });
    await writer.createTopic('r', { partitions: 1, segmentBytes: 1024, retentionMs: 1000 });
    for (let i = 0; i < 12; i++) await writer.append('r', [{ value: 'x'.repeat(150), timestamp: T0 }]);
    assert.equal((await reader.offsets('r', 0)).start, 0);
    clock.set(T0 + 10_000);
    assert.ok(writer.enforceRetention() > 0);
    const { start, end } = await writer.offsets('r', 0);
    assert.deepEqual(await reader.offsets('r', 0), { start, end });
    assert.equal((await readRecords(reader, 'r', 0, start)).length, end - start);
  });
});

describe('read-only open of a damaged partition', () => {
  test('large batches are found by their headers; a bit flip in one still fails the read that reaches it', async () => {
    const tmp = tempDir();
    try {
      const writer = await openTestLog(tmp.dir);
      await writer.createTopic('t', { partitions: 1 });
      // Batches of 100 records of 1,000 bytes (~100 KB each): walked by their headers on a read-only open.
      for (let b = 0; b < 5; b++)
        await writer.appendBatch(
          't',
          0,
          Array.from({ length: 100 }, (_, i) => ({
            key: null,
            value: `b${b}-r${i}`.padEnd(1000, '.'),
            timestamp: T0 + b,
          })),
        );
      await writer.append('t', [{ value: 'small', timestamp: T0 + 9 }]); // then a small one: the checked scan
      await writer.close();
      const file = join(tmp.dir, 'topics', 't', '0', segmentFiles(tmp.dir, 't', 0)[0]);
      const clean = await openTestLog(tmp.dir, { readOnly: true });
      try {
        assert.equal((await clean.offsets('t', 0)).end, 501);
        let n = 0;
        for await (const batch of clean.read('t', 0, 0)) n += [...batch.records()].length;
        assert.equal(n, 501);
        assert.equal(await clean.offsetForTime('t', 0, T0 + 3), 300);
      } finally {
        await clean.close();
      }
      const bytes = fs.readFileSync(file);
      const third = 2 * (bytes.readInt32BE(8) + 12);
      bytes[third + 5_000] ^= 0x10;
      fs.writeFileSync(file, bytes);
      const reader = await openTestLog(tmp.dir, { readOnly: true });
      try {
        const seen: number[] = [];
        await assert.rejects(
          (async () => {
            for await (const batch of reader.read('t', 0, 0)) seen.push(batch.baseOffset);
          })(),
          (err: Error & { code?: string }) => err.code === 'KAPPA_CORRUPT_DATA' && err.message.includes(file),
        );
        assert.deepEqual(seen, [0, 100]);
      } finally {
        await reader.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  test('a bit flip in an earlier batch of the active segment fails reads instead of ending them quietly', async () => {
    const tmp = tempDir();
    try {
      const writer = await openTestLog(tmp.dir);
      await writer.createTopic('t', { partitions: 1 });
      for (let i = 0; i < 5; i++)
        await writer.append('t', [{ value: `record-${i}`.padEnd(200, '.'), timestamp: T0 + i }]);
      await writer.close();
      // Flip one bit inside the value of the second batch (each batch is one ~270-byte record).
      const file = join(tmp.dir, 'topics', 't', '0', segmentFiles(tmp.dir, 't', 0)[0]);
      const bytes = fs.readFileSync(file);
      const second = bytes.readInt32BE(8) + 12;
      bytes[second + 150] ^= 0x10;
      fs.writeFileSync(file, bytes);
      const reader = await openTestLog(tmp.dir, { readOnly: true });
      try {
        const seen: string[] = [];
        await assert.rejects(
          (async () => {
            for await (const batch of reader.read('t', 0, 0))
              for (const r of batch.records()) seen.push(r.value!.toString().slice(0, 8));
          })(),
          (err: Error & { code?: string }) => err.code === 'KAPPA_CORRUPT_DATA' && err.message.includes(file),
        );
        assert.deepEqual(seen, ['record-0']);
        assert.equal(fs.statSync(file).size, bytes.length);
      } finally {
        await reader.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe('synchronous reads (syncReadFs: how engine worker threads read)', () => {
  test('a read-only log reading with readSync sees the same records as one reading through the thread pool', async () => {
    const tmp = tempDir();
    try {
      const writer = await openTestLog(tmp.dir, { fsync: 'never' });
      await writer.createTopic('t', { partitions: 1, segmentBytes: 4096 });
      for (let i = 0; i < 20; i++)
        await writer.append(
          't',
          Array.from({ length: 25 }, (_, j) => ({
            value: `v-${i}-${j}-${'x'.repeat(j * 3)}`,
            partition: 0,
            timestamp: T0 + i,
          })),
        );
      const sync = await openTestLog(tmp.dir, { readOnly: true, fs: syncReadFs });
      const pooled = await openTestLog(tmp.dir, { readOnly: true });
      try {
        const fromSync = await readRecords(sync, 't', 0);
        assert.equal(fromSync.length, 500);
        assert.ok(segmentFiles(tmp.dir, 't', 0).length > 3, 'the records span several segments');
        assert.deepEqual(fromSync, await readRecords(pooled, 't', 0));
      } finally {
        await sync.close();
        await pooled.close();
        await writer.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  test('the callback comes in a later turn of the event loop, as the callback of an asynchronous read does', async () => {
    const tmp = tempDir();
    const file = join(tmp.dir, 'f');
    fs.writeFileSync(file, 'abcdef');
    const fd = fs.openSync(file, 'r');
    try {
      const turns: string[] = [];
      const read = new Promise<number>((resolve, reject) =>
        syncReadFs.read(fd, Buffer.alloc(6), 0, 6, 0, (err, n) => (err ? reject(err) : resolve(n))),
      );
      void read.then(() => turns.push('read'));
      setImmediate(() => turns.push('other'));
      await Promise.resolve();
      assert.deepEqual(turns, [], 'not called at once');
      assert.equal(await read, 6);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(turns.sort(), ['other', 'read']);
    } finally {
      fs.closeSync(fd);
      tmp.cleanup();
    }
  });

  test('a failed read reaches its caller as the error, through the same callback', async () => {
    await assert.rejects(
      readAsync(syncReadFs, 2_000_000_000, Buffer.alloc(8), 8, 0),
      (err: NodeJS.ErrnoException) => err.code === 'EBADF',
    );
  });
});
