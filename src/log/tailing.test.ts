import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FileLog } from './file-log.ts';
import type { LogFs } from './fs.ts';
import type { LogRecord } from './record-batch.ts';
import { openTestLog, tempDir } from './test-helpers.ts';

/** Follows a partition in the background, collecting records, until the signal aborts or the log closes. */
function follow(log: FileLog, topic: string, partition: number, from: number, signal: AbortSignal) {
  const records: LogRecord[] = [];
  const arrivals: number[] = [];
  const wake: { notify: (() => void) | null } = { notify: null };
  const done = (async () => {
    for await (const batch of log.read(topic, partition, from, { follow: true, signal })) {
      for (const r of batch.records(from)) {
        records.push(r);
        arrivals.push(performance.now());
      }
      wake.notify?.();
    }
  })();
  /** Resolves once at least `n` records arrived (rejects after `timeoutMs`). */
  async function until(n: number, timeoutMs = 2000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (records.length < n) {
      if (performance.now() > deadline) throw new Error(`only ${records.length} of ${n} records arrived`);
      await new Promise<void>((resolve) => {
        wake.notify = resolve;
        setTimeout(resolve, 20);
      });
    }
  }
  return { records, arrivals, done, until };
}

describe('tailing with follow: true', () => {
  let tmp: ReturnType<typeof tempDir>;
  let log: FileLog;
  let fsCalls: { reads: number };
  let controller: AbortController;

  beforeEach(async () => {
    tmp = tempDir();
    fsCalls = { reads: 0 };
    const counting: LogFs = {
      ...nodeFs,
      read: ((...args: Parameters<typeof nodeFs.read>) => {
        fsCalls.reads++;
        return (nodeFs.read as (...a: unknown[]) => void)(...args);
      }) as typeof nodeFs.read,
      readSync: ((...args: Parameters<typeof nodeFs.readSync>) => {
        fsCalls.reads++;
        return (nodeFs.readSync as (...a: unknown[]) => number)(...args);
      }) as typeof nodeFs.readSync,
    };
    log = await openTestLog(tmp.dir, { fs: counting });
    await log.createTopic('t', { partitions: 2 });
    controller = new AbortController();
  });
  afterEach(async () => {
    controller.abort();
    await log.close();
    tmp.cleanup();
  });

  test('a reader at the end receives records appended later, in order, exactly once', async () => {
    await log.append('t', [{ value: 'before', partition: 0 }]);
    const reader = follow(log, 't', 0, 1, controller.signal);
    await sleep(20);
    assert.equal(reader.records.length, 0);
    for (let i = 0; i < 5; i++) await log.append('t', [{ value: `a${i}`, partition: 0 }]);
    await log.append('t', [
      { value: 'b0', partition: 0 },
      { value: 'b1', partition: 0 },
    ]);
    await reader.until(7);
    assert.deepEqual(
      reader.records.map((r) => [r.offset, r.value!.toString()]),
      [
        [1, 'a0'],
        [2, 'a1'],
        [3, 'a2'],
        [4, 'a3'],
        [5, 'a4'],
        [6, 'b0'],
        [7, 'b1'],
      ],
    );
    controller.abort();
    await reader.done;
  });

  test('a reader that starts behind reads the backlog, then follows new records', async () => {
    for (let i = 0; i < 3; i++) await log.append('t', [{ value: `old${i}`, partition: 1 }]);
    const reader = follow(log, 't', 1, 0, controller.signal);
    await reader.until(3);
    await log.append('t', [{ value: 'new', partition: 1 }]);
    await reader.until(4);
    assert.deepEqual(
      reader.records.map((r) => r.offset),
      [0, 1, 2, 3],
    );
  });

  test('wakes on append without polling the disk while it waits', async () => {
    const reader = follow(log, 't', 0, 0, controller.signal);
    await sleep(30);
    const readsWhileIdle = fsCalls.reads;
    await sleep(250);
    assert.equal(fsCalls.reads, readsWhileIdle, 'an idle follower must not read the disk');
    const appendedAt = performance.now();
    await log.append('t', [{ value: 'wake', partition: 0 }]);
    await reader.until(1);
    const latencyMs = reader.arrivals[0] - appendedAt;
    assert.ok(latencyMs < 100, `woke ${latencyMs.toFixed(1)} ms after the append`);
  });

  test('wakes every reader waiting on the partition, and only readers of that partition', async () => {
    const a = follow(log, 't', 0, 0, controller.signal);
    const b = follow(log, 't', 0, 0, controller.signal);
    const other = follow(log, 't', 1, 0, controller.signal);
    await sleep(20);
    await log.append('t', [{ value: 'x', partition: 0 }]);
    await a.until(1);
    await b.until(1);
    await sleep(30);
    assert.equal(other.records.length, 0);
  });

  test('stops when its AbortSignal aborts while waiting', async () => {
    const reader = follow(log, 't', 0, 0, controller.signal);
    await sleep(20);
    const abortedAt = performance.now();
    controller.abort();
    await reader.done;
    assert.ok(performance.now() - abortedAt < 100, 'the reader finished promptly');
    await log.append('t', [{ value: 'late', partition: 0 }]);
    assert.equal(reader.records.length, 0);
  });

  test('stops after the batch in hand when aborted while records keep coming', async () => {
    const reader = follow(log, 't', 0, 0, controller.signal);
    await log.append('t', [{ value: 'one', partition: 0 }]);
    await reader.until(1);
    controller.abort();
    await log.append('t', [{ value: 'two', partition: 0 }]);
    await reader.done;
    assert.deepEqual(
      reader.records.map((r) => r.value!.toString()),
      ['one'],
    );
  });

  test('yields nothing for a signal that is already aborted', async () => {
    await log.append('t', [{ value: 'x', partition: 0 }]);
    const reader = follow(log, 't', 0, 0, AbortSignal.abort());
    await reader.done;
    assert.equal(reader.records.length, 0);
  });

  test('ends quietly when the log closes', async () => {
    const reader = follow(log, 't', 0, 0, controller.signal);
    await sleep(20);
    await log.close();
    await reader.done;
    assert.equal(reader.records.length, 0);
  });

  test('a reader still reading when the log closes fails with KAPPA_LOG_CLOSED instead of touching closed files', async () => {
    for (let i = 0; i < 20; i++) await log.append('t', [{ value: 'x'.repeat(1000), partition: 0 }]);
    const iterator = log.read('t', 0, 0, { maxBytes: 4096 })[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false);
    await log.close();
    await assert.rejects(
      (async () => {
        for (;;) if ((await iterator.next()).done) break;
      })(),
      { code: 'KAPPA_LOG_CLOSED' },
    );
  });
});
