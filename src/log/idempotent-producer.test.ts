import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { FileLog } from './file-log.ts';
import type { AppendBatchResult } from './types.ts';
import type { RecordBatch } from './record-batch.ts';
import {
  collectingLogger,
  errnoError,
  openTestLog,
  partitionDir,
  readRecords,
  segmentFiles,
  tempDir,
  useTestLog,
} from './test-helpers.ts';
import { verifyLog } from './verify.ts';
import { spawnOwned } from '../../test/support/processes.ts';

const T0 = 1_700_000_000_000;
const P1 = 7_000_000_000_123; // above 2^32, so the 64-bit header field is exercised
const P2 = 42;

function valueOf(producerId: number, seq: number): string {
  return `p${producerId}-s${seq}`;
}

/** Sends sequences `from` to `to` (inclusive) of `producerId` as one batch. */
function send(
  log: FileLog,
  producerId: number,
  from: number,
  to: number,
  epoch = 0,
  topic = 't',
  partition = 0,
): Promise<AppendBatchResult> {
  const records = [];
  for (let seq = from; seq <= to; seq++)
    records.push({ key: null, value: valueOf(producerId, seq), timestamp: T0 + seq });
  return log.appendBatch(topic, partition, records, { producerId, producerEpoch: epoch, baseSequence: from });
}

async function values(log: FileLog, topic = 't', partition = 0): Promise<string[]> {
  return (await readRecords(log, topic, partition)).map((r) => r.value!.toString());
}

async function batches(log: FileLog, topic = 't', partition = 0): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for await (const b of log.read(topic, partition, 0)) out.push(b);
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('idempotent producers', () => {
  let logger: ReturnType<typeof collectingLogger>;
  const ctx = useTestLog({
    options: () => ({ logger: (logger = collectingLogger()) }),
    topic: { name: 't', partitions: 1 },
  });

  async function reopen(opts: { crash?: boolean } = {}): Promise<void> {
    await ctx.log.close();
    if (opts.crash) fs.unlinkSync(join(ctx.dir, '.clean-shutdown'));
    ctx.log = await openTestLog(ctx.dir, { logger });
  }

  test('appends a producer’s batches in sequence and writes its id, epoch and sequence in the headers', async () => {
    assert.deepEqual(await send(ctx.log, P1, 0, 2, 3), {
      baseOffset: 0,
      lastOffset: 2,
      duplicates: 0,
      duplicateOffsets: [],
    });
    assert.deepEqual(await send(ctx.log, P1, 3, 3, 3), {
      baseOffset: 3,
      lastOffset: 3,
      duplicates: 0,
      duplicateOffsets: [],
    });
    const [first, second] = await batches(ctx.log);
    assert.deepEqual([first.producerId, first.producerEpoch, first.baseSequence], [P1, 3, 0]);
    assert.deepEqual([second.producerId, second.producerEpoch, second.baseSequence], [P1, 3, 3]);
  });

  test('drops a whole re-sent batch and reports the offsets of the originals', async () => {
    await send(ctx.log, P1, 0, 4);
    await ctx.log.append('t', [{ value: 'plain' }]);
    const again = await send(ctx.log, P1, 0, 4);
    assert.deepEqual(again, { baseOffset: 0, lastOffset: 4, duplicates: 5, duplicateOffsets: [0, 1, 2, 3, 4] });
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 6 });
    assert.deepEqual(await values(ctx.log), [...range(0, 4).map((s) => valueOf(P1, s)), 'plain']);
  });

  test('appends only the new suffix of a re-send whose batch boundaries differ, with its sequence adjusted', async () => {
    await send(ctx.log, P1, 0, 3); // offsets 0-3
    await send(ctx.log, P2, 0, 1); // offsets 4-5
    await send(ctx.log, P1, 4, 9); // offsets 6-11
    // The re-send after a crash cuts the same records into other batches.
    assert.deepEqual(await send(ctx.log, P1, 2, 7), {
      baseOffset: 2,
      lastOffset: 9,
      duplicates: 6,
      duplicateOffsets: [2, 3, 6, 7, 8, 9],
    });
    assert.deepEqual(await send(ctx.log, P1, 8, 12), {
      baseOffset: 10,
      lastOffset: 14,
      duplicates: 2,
      duplicateOffsets: [10, 11],
    });
    const all = await batches(ctx.log);
    const last = all[all.length - 1];
    assert.deepEqual([last.baseOffset, last.lastOffset, last.baseSequence, last.count], [12, 14, 10, 3]);
    const p1 = (await values(ctx.log)).filter((v) => v.startsWith(`p${P1}-`));
    assert.deepEqual(
      p1,
      range(0, 12).map((s) => valueOf(P1, s)),
      'every record of P1 exactly once, in sequence order',
    );
    // The next batch continues after the re-sent records.
    assert.equal((await send(ctx.log, P1, 13, 13)).baseOffset, 15);
  });

  test('reports -1 for duplicates older than the last five batches of the producer', async () => {
    for (let seq = 0; seq < 7; seq++) await send(ctx.log, P1, seq, seq);
    const again = await send(ctx.log, P1, 0, 6);
    assert.deepEqual(again, {
      baseOffset: -1,
      lastOffset: 6,
      duplicates: 7,
      duplicateOffsets: [-1, -1, 2, 3, 4, 5, 6],
    });
    assert.equal((await ctx.log.offsets('t', 0)).end, 7);
  });

  test('with sequenceGaps: allow, a sequence may skip ahead while re-sends at or below the last one are still dropped', async () => {
    const gaps = (seq: number, value: string) =>
      ctx.log.appendBatch('t', 0, [{ key: null, value, timestamp: 1 }], {
        producerId: P1,
        producerEpoch: 0,
        baseSequence: seq,
        sequenceGaps: 'allow',
      });
    assert.equal((await gaps(3, 'a')).duplicates, 0);
    assert.equal((await gaps(40, 'b')).duplicates, 0);
    assert.equal((await gaps(3, 'a')).duplicates, 1);
    assert.equal((await gaps(40, 'b')).duplicates, 1);
    assert.equal((await gaps(41, 'c')).duplicates, 0);
    await reopen({ crash: true });
    assert.equal((await gaps(40, 'b')).duplicates, 1);
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 3 });
    // Without the option the same producer's gap is refused, as Kafka does.
    await assert.rejects(send(ctx.log, P1, 50, 50), { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' });
  });

  test('refuses a gap in the sequence with KAPPA_OUT_OF_ORDER_SEQUENCE and appends nothing of the batch', async () => {
    await send(ctx.log, P1, 0, 4);
    await assert.rejects(
      send(ctx.log, P1, 7, 9),
      (err: Error & { code?: string; status?: number; retriable?: boolean }) => {
        assert.equal(err.code, 'KAPPA_OUT_OF_ORDER_SEQUENCE');
        assert.equal(err.status, 409);
        assert.equal(err.retriable, false);
        assert.match(err.message, /sequence 7 to t\/0.*last appended record had sequence 4.*Resend from sequence 5/);
        return true;
      },
    );
    assert.deepEqual(await ctx.log.offsets('t', 0), { start: 0, end: 5 });
    // A batch that overlaps what is in the log but also reaches past a gap cannot exist (sequences are
    // contiguous within a batch), so after a refusal the producer simply resends from 5.
    assert.deepEqual(await send(ctx.log, P1, 5, 9), {
      baseOffset: 5,
      lastOffset: 9,
      duplicates: 0,
      duplicateOffsets: [],
    });
  });

  test('fences an older epoch; a newer epoch continues the producer’s sequence, dropping what is already in', async () => {
    await send(ctx.log, P1, 0, 4, 1);
    assert.deepEqual(await send(ctx.log, P1, 3, 6, 2), {
      baseOffset: 3,
      lastOffset: 6,
      duplicates: 2,
      duplicateOffsets: [3, 4],
    });
    await assert.rejects(
      send(ctx.log, P1, 7, 7, 1),
      (err: Error & { code?: string; status?: number; retriable?: boolean }) => {
        assert.equal(err.code, 'KAPPA_PRODUCER_FENCED');
        assert.equal(err.status, 409);
        assert.equal(err.retriable, false);
        assert.match(err.message, /epoch 1.*epoch 2/);
        return true;
      },
    );
    // Even a re-send of old records by the fenced epoch is refused.
    await assert.rejects(send(ctx.log, P1, 0, 0, 1), { code: 'KAPPA_PRODUCER_FENCED' });
    assert.equal((await send(ctx.log, P1, 0, 0, 2)).duplicates, 1);
    assert.equal((await send(ctx.log, P1, 7, 7, 2)).baseOffset, 7);
    const headers = (await batches(ctx.log)).map((b) => [b.producerEpoch, b.baseSequence]);
    assert.deepEqual(headers, [
      [1, 0],
      [2, 5],
      [2, 7],
    ]);
  });

  test('keeps an independent sequence per producer on one partition', async () => {
    await send(ctx.log, P1, 0, 2);
    await send(ctx.log, P2, 0, 2);
    await send(ctx.log, P2, 3, 4);
    // P1's new record 3 lands after P2's records; P2 continues after it.
    assert.deepEqual(await send(ctx.log, P1, 0, 3), {
      baseOffset: 0,
      lastOffset: 8,
      duplicates: 3,
      duplicateOffsets: [0, 1, 2],
    });
    assert.deepEqual(await send(ctx.log, P2, 4, 5), {
      baseOffset: 7,
      lastOffset: 9,
      duplicates: 1,
      duplicateOffsets: [7],
    });
    await assert.rejects(send(ctx.log, P2, 9, 9), { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' });
    assert.equal((await send(ctx.log, 3, 100, 100)).duplicates, 0, 'an unknown producer may start at any sequence');
    assert.equal((await ctx.log.offsets('t', 0)).end, 11);
  });

  test('leaves plain appends alone: no producer id in the header, nothing ever dropped', async () => {
    const batch = [{ key: null, value: 'x', timestamp: T0 }];
    await send(ctx.log, P1, 0, 0);
    assert.deepEqual(await ctx.log.appendBatch('t', 0, batch), {
      baseOffset: 1,
      lastOffset: 1,
      duplicates: 0,
      duplicateOffsets: [],
    });
    assert.deepEqual(await ctx.log.appendBatch('t', 0, batch, { producerId: -1 }), {
      baseOffset: 2,
      lastOffset: 2,
      duplicates: 0,
      duplicateOffsets: [],
    });
    await ctx.log.append('t', [{ value: 'x' }, { value: 'x' }]);
    assert.deepEqual(await values(ctx.log), [valueOf(P1, 0), 'x', 'x', 'x', 'x']);
    const plain = (await batches(ctx.log)).slice(1);
    assert.ok(plain.every((b) => b.producerId === -1 && b.producerEpoch === -1 && b.baseSequence === -1));
  });

  test('refuses producer options it cannot honour with KAPPA_INVALID_ARGUMENT', async () => {
    const batch = [{ key: null, value: 'x', timestamp: T0 }];
    const cases = [
      { producerId: -2, producerEpoch: 0, baseSequence: 0 },
      { producerId: 2 ** 53, producerEpoch: 0, baseSequence: 0 },
      { producerId: 1.5, producerEpoch: 0, baseSequence: 0 },
      { producerId: 1, baseSequence: 0 },
      { producerId: 1, producerEpoch: 0 },
      { producerId: 1, producerEpoch: 0x8000, baseSequence: 0 },
      { producerId: 1, producerEpoch: 0, baseSequence: 2 ** 31 },
      { producerEpoch: 0, baseSequence: 0 },
      { baseSequence: 0 },
    ];
    for (const opts of cases)
      await assert.rejects(
        ctx.log.appendBatch('t', 0, batch, opts),
        { code: 'KAPPA_INVALID_ARGUMENT' },
        JSON.stringify(opts),
      );
    await assert.rejects(ctx.log.appendBatch('t', 0, [], { producerId: 1, producerEpoch: 0, baseSequence: 0 }), {
      code: 'KAPPA_INVALID_ARGUMENT',
    });
    assert.equal((await ctx.log.offsets('t', 0)).end, 0);
  });

  test('a re-send racing its original resolves after the original is durable and appends nothing', async () => {
    const settled: string[] = [];
    const original = send(ctx.log, P1, 0, 4).then((r) => (settled.push('original'), r));
    const resend = send(ctx.log, P1, 0, 4).then((r) => (settled.push('resend'), r));
    const overlap = send(ctx.log, P1, 3, 6).then((r) => (settled.push('overlap'), r));
    assert.deepEqual(await resend, { baseOffset: 0, lastOffset: 4, duplicates: 5, duplicateOffsets: [0, 1, 2, 3, 4] });
    assert.deepEqual(await original, { baseOffset: 0, lastOffset: 4, duplicates: 0, duplicateOffsets: [] });
    assert.deepEqual(await overlap, { baseOffset: 3, lastOffset: 6, duplicates: 2, duplicateOffsets: [3, 4] });
    assert.deepEqual(settled, ['original', 'resend', 'overlap']);
    assert.deepEqual(
      await values(ctx.log),
      range(0, 6).map((s) => valueOf(P1, s)),
    );
  });

  test('sequence numbers wrap from 2147483647 to 0, as in Kafka', async () => {
    const top = 2 ** 31 - 1;
    const records = (seqs: number[]) => seqs.map((s) => ({ key: null, value: `s${s}`, timestamp: T0 }));
    await ctx.log.appendBatch('t', 0, records([top - 2, top - 1, top, 0, 1]), {
      producerId: P1,
      producerEpoch: 0,
      baseSequence: top - 2,
    });
    const again = await ctx.log.appendBatch('t', 0, records([top, 0, 1, 2]), {
      producerId: P1,
      producerEpoch: 0,
      baseSequence: top,
    });
    assert.deepEqual(again, { baseOffset: 2, lastOffset: 5, duplicates: 3, duplicateOffsets: [2, 3, 4] });
    assert.equal((await batches(ctx.log))[1].baseSequence, 2);
    await assert.rejects(
      ctx.log.appendBatch('t', 0, records([9]), { producerId: P1, producerEpoch: 0, baseSequence: 9 }),
      { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' },
    );
  });

  test('keeps the producer state across a clean close and reopen, and across segment rolls', async () => {
    await ctx.log.createTopic('small', { partitions: 1, segmentBytes: 1024 });
    for (let seq = 0; seq < 60; seq += 3) {
      await send(ctx.log, P1, seq, seq + 2, 0, 'small');
      await send(ctx.log, P2, seq, seq + 2, 0, 'small');
    }
    const files = segmentFiles(ctx.dir, 'small', 0);
    assert.ok(files.length >= 4, `${files.length} segments`);
    const snapshots = segmentFiles(ctx.dir, 'small', 0, '.snapshot');
    assert.deepEqual(
      snapshots.map((n) => n.slice(0, 20)),
      files.slice(1).map((n) => n.slice(0, 20)),
      'each roll writes the snapshot of the new segment',
    );
    const before = await values(ctx.log, 'small');
    await reopen();
    // The last batches of P1 live in closed segments now: the snapshot remembers their offsets.
    const again = await send(ctx.log, P1, 54, 62, 0, 'small');
    assert.equal(again.duplicates, 6);
    assert.ok(again.duplicateOffsets.every((o) => o >= 0));
    assert.equal((await send(ctx.log, P2, 0, 59, 0, 'small')).duplicates, 60);
    await assert.rejects(send(ctx.log, P2, 61, 61, 0, 'small'), { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' });
    const after = await values(ctx.log, 'small');
    assert.deepEqual(after, [...before, ...range(60, 62).map((s) => valueOf(P1, s))]);
    assert.deepEqual(logger.warnings, []);
  });

  test('keeps the producer state across a crash (no clean-shutdown marker)', async () => {
    await send(ctx.log, P1, 0, 9);
    await send(ctx.log, P2, 0, 0);
    await reopen({ crash: true });
    assert.deepEqual(await send(ctx.log, P1, 5, 11), {
      baseOffset: 5,
      lastOffset: 12,
      duplicates: 5,
      duplicateOffsets: [5, 6, 7, 8, 9],
    });
    await assert.rejects(send(ctx.log, P2, 2, 2), { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' });
    assert.equal((await ctx.log.offsets('t', 0)).end, 13);
  });

  test('rebuilds the producer state from segment headers when snapshots are missing or damaged', async () => {
    await ctx.log.createTopic('small', { partitions: 1, segmentBytes: 1024 });
    for (let seq = 0; seq < 60; seq += 3) await send(ctx.log, P1, seq, seq + 2, 0, 'small');
    await ctx.log.close();
    const dir = partitionDir(ctx.dir, 'small', 0);
    const snapshots = segmentFiles(ctx.dir, 'small', 0, '.snapshot');
    // The newest snapshot is damaged and the one before it is gone: recovery walks back further.
    const newest = join(dir, snapshots[snapshots.length - 1]);
    const bytes = fs.readFileSync(newest);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(newest, bytes);
    fs.unlinkSync(join(dir, snapshots[snapshots.length - 2]));
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.ok(
      logger.warnings.some((w) => /ignoring producer snapshot .*CRC/.test(w)),
      logger.warnings.join('\n'),
    );
    assert.deepEqual(await send(ctx.log, P1, 50, 61, 0, 'small').then((r) => r.duplicates), 10);
    // And with no snapshot at all, from the first segment on.
    await ctx.log.close();
    for (const name of segmentFiles(ctx.dir, 'small', 0, '.snapshot')) fs.unlinkSync(join(dir, name));
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.equal((await send(ctx.log, P1, 0, 62, 0, 'small')).duplicates, 62);
    assert.ok(
      fs.existsSync(join(dir, segmentFiles(ctx.dir, 'small', 0).at(-1)!.replace('.log', '.snapshot'))),
      'the active segment’s snapshot is written again',
    );
    assert.deepEqual(
      (await values(ctx.log, 'small')).map((v) => Number(v.split('-s')[1])),
      range(0, 62),
    );
  });

  test('a torn tail takes the cut batch out of the producer state, so its re-send is appended', async () => {
    await send(ctx.log, P1, 0, 4);
    await send(ctx.log, P1, 5, 9);
    await ctx.log.close();
    fs.unlinkSync(join(ctx.dir, '.clean-shutdown'));
    const active = join(partitionDir(ctx.dir, 't', 0), segmentFiles(ctx.dir, 't', 0).at(-1)!);
    fs.truncateSync(active, fs.statSync(active).size - 3);
    ctx.log = await openTestLog(ctx.dir, { logger });
    assert.ok(logger.warnings.some((w) => /torn tail/.test(w)));
    assert.deepEqual(await send(ctx.log, P1, 3, 9), {
      baseOffset: 3,
      lastOffset: 9,
      duplicates: 2,
      duplicateOffsets: [3, 4],
    });
    assert.deepEqual(
      await values(ctx.log),
      range(0, 9).map((s) => valueOf(P1, s)),
    );
  });

  test('retention forgets a producer once all its batches are deleted', async () => {
    await ctx.log.createTopic('r', { partitions: 1, segmentBytes: 1024, retentionBytes: 1 });
    await send(ctx.log, P1, 0, 4, 0, 'r');
    for (let i = 0; i < 30; i++)
      await ctx.log.appendBatch('r', 0, [{ key: null, value: 'filler'.repeat(10), timestamp: T0 }]);
    ctx.log.enforceRetention();
    assert.ok((await ctx.log.offsets('r', 0)).start > 4);
    // Forgotten, the producer may start anywhere again (Kafka does the same).
    assert.equal((await send(ctx.log, P1, 100, 100, 0, 'r')).duplicates, 0);
  });

  test(
    'keeps an idempotent producer exactly-once across SIGKILL: re-sending everything appends each record once',
    { timeout: 60_000 },
    async (t) => {
      const fileLogUrl = new URL('./file-log.ts', import.meta.url).href;
      // The child appends sequences 0.. of one producer in batches of 1-20, several in flight, printing
      // the last acknowledged sequence, until it is killed.
      const child = `
      import { openFileLog } from ${JSON.stringify(fileLogUrl)};
      const log = await openFileLog({ dir: ${JSON.stringify(ctx.dir)}, logger: { info() {}, warn() {} } });
      process.stdout.write('ready\\n');
      let next = 0;
      const worker = async () => {
        for (;;) {
          const n = 1 + Math.floor(Math.random() * 20);
          const from = next;
          next += n;
          const records = Array.from({ length: n }, (_, i) => ({ key: null, value: 's' + (from + i), timestamp: 1 }));
          await log.appendBatch('t', 0, records, { producerId: ${P1}, producerEpoch: 0, baseSequence: from });
          process.stdout.write('ack ' + (from + n - 1) + '\\n');
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    `;
      await ctx.log.close();
      const proc = spawnOwned(t, process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child]);
      await proc.waitForOutput(/^ready$/m, { timeoutMs: 20_000, stream: 'stdout' });
      // Killed once it has acknowledged appends (a loaded machine may take longer than the 300 ms below to).
      await proc.waitForOutput(/^ack \d+$/m, { timeoutMs: 20_000, stream: 'stdout' });
      await new Promise((r) => setTimeout(r, 300));
      proc.kill('SIGKILL');
      const { signal } = await proc.exited;
      assert.equal(signal, 'SIGKILL', `the child ended without being killed: ${proc.stderr}`);
      const acks = [...proc.stdout.matchAll(/^ack (\d+)$/gm)].map((m) => Number(m[1]));
      const acked = acks.length > 0 ? Math.max(...acks) : -1;
      assert.ok(acked > 0, 'the child acknowledged some appends before it was killed');
      ctx.log = await openTestLog(ctx.dir, { logger });
      const kept = (await ctx.log.offsets('t', 0)).end;
      assert.ok(kept >= acked + 1, `every acknowledged record survived (${kept} kept, ${acked + 1} acknowledged)`);
      // The replay re-sends everything from sequence 0, cut differently, and goes a bit further.
      let duplicates = 0;
      for (let from = 0; from <= kept + 10; from += 7)
        duplicates += (await send(ctx.log, P1, from, from + 6)).duplicates;
      assert.equal(duplicates, kept);
      const seqs = (await values(ctx.log)).map((v) => Number(v.replace(/^p\d+-s|^s/, '')));
      assert.deepEqual(seqs, range(0, seqs.length - 1), 'each sequence exactly once, in order');
      assert.equal(verifyLog({ dir: ctx.dir }).ok, true);
    },
  );
});

describe('idempotent producers on a failing disk', () => {
  test('a failed write hands back its offsets and sequences, so the re-send is appended, not dropped', async () => {
    const tmp = tempDir();
    let failWrites = false;
    const faulty = {
      ...fs,
      writevSync: ((fd: number, buffers: NodeJS.ArrayBufferView[], position?: number) => {
        if (failWrites) throw errnoError('ENOSPC', 'writev');
        return fs.writevSync(fd, buffers, position);
      }) as typeof fs.writevSync,
    };
    const log = await openTestLog(tmp.dir, { fs: faulty });
    try {
      await log.createTopic('t', { partitions: 1 });
      await send(log, P1, 0, 2);
      failWrites = true;
      const failed = await Promise.allSettled([send(log, P1, 3, 5), send(log, P1, 6, 7)]);
      assert.deepEqual(
        failed.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code),
        ['KAPPA_DISK_FULL', 'KAPPA_DISK_FULL'],
      );
      failWrites = false;
      assert.deepEqual(await send(log, P1, 3, 7), {
        baseOffset: 3,
        lastOffset: 7,
        duplicates: 0,
        duplicateOffsets: [],
      });
      assert.deepEqual(
        await values(log),
        range(0, 7).map((s) => valueOf(P1, s)),
      );
    } finally {
      await log.close();
      tmp.cleanup();
    }
  });
});
