/**
 * Torn tails: a crash in the middle of a write leaves the last batch of the active segment cut off
 * at any byte. For every such length, recovery must cut back to exactly the previous batch, say so
 * through the logger, keep every earlier record and let appends continue the offsets.
 *
 * A torn tail only exists after a crash, so each case deletes `.clean-shutdown` (which the clean
 * close that wrote the data left behind). With the marker present every byte was durable, and the
 * same damage must be reported as corruption instead of being cut.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { isKappaError } from '../../src/errors.ts';
import { encodeBatch, openFileLog, verifyLog } from '../../src/log/index.ts';
import { valueFor } from './records.ts';
import {
  type BatchLayout,
  TOPIC,
  assertRecords,
  batchLayout,
  readPartition,
  recordingLogger,
  segmentFiles,
  tempDir,
} from './helpers.ts';

const SEGMENT_BYTES = 4096;

/** A small last batch (about 150 bytes), so checking every byte position stays quick. */
const LAST_BATCH = ['torn-tail record one', 'torn-tail record two, a little longer', 'three'];

interface Pristine {
  dir: string;
  values: string[];
  /** The active segment. */
  file: string;
  /** Its last batch, LAST_BATCH. */
  last: BatchLayout;
}

/**
 * Writes a log of several 4 KiB segments whose last batch is LAST_BATCH, closed cleanly. With
 * `alone` the last batch starts a segment of its own; otherwise batches precede it in its segment.
 */
async function pristineLog(root: string, alone: boolean): Promise<Pristine> {
  const dir = join(root, 'pristine');
  const lastBytes = encodeBatch(
    LAST_BATCH.map((value) => ({ key: null, value, timestamp: 0 })),
    { baseOffset: 0 },
  ).length;
  const values: string[] = [];
  const log = await openFileLog({ dir, logger: recordingLogger() });
  try {
    await log.createTopic(TOPIC, { partitions: 1, segmentBytes: SEGMENT_BYTES });
    const append = async (batch: string[]): Promise<void> => {
      const [ack] = await log.append(
        TOPIC,
        batch.map((value) => ({ value })),
      );
      assert.equal(ack.offset, values.length);
      values.push(...batch);
    };
    const active = (): { segments: number; bytes: number } => {
      const files = segmentFiles(dir, TOPIC, 0);
      return { segments: files.length, bytes: statSync(files[files.length - 1]).size };
    };
    // Batches of 1 to 4 records of 3 to 600 bytes until the log has three segments.
    for (let seq = 0; active().segments < 3;)
      await append(Array.from({ length: 1 + (seq % 4) }, () => valueFor(seq++)));
    if (alone) {
      // Small batches until LAST_BATCH no longer fits: appending it then rolls to a new segment.
      while (active().bytes + lastBytes <= SEGMENT_BYTES) await append([`filler ${values.length}`]);
    } else {
      await append(['middle batch one', valueFor(values.length)]);
      await append(['middle batch two']);
    }
    await append(LAST_BATCH);
  } finally {
    await log.close();
  }
  const files = segmentFiles(dir, TOPIC, 0);
  const file = files[files.length - 1];
  const layout = batchLayout(file);
  const last = layout[layout.length - 1];
  assert.ok(files.length >= 3, `the log should have several segments, has ${files.length}`);
  assert.equal(last.size, lastBytes);
  assert.equal(last.lastOffset, values.length - 1);
  if (alone) assert.equal(layout.length, 1, 'LAST_BATCH should be alone in its segment');
  else
    assert.ok(
      layout.length >= 3,
      `LAST_BATCH should follow other batches in its segment, layout ${JSON.stringify(layout)}`,
    );
  return { dir, values, file, last };
}

/** Copies the pristine log, cuts its active segment to `length` bytes and (by default) deletes the clean-shutdown marker. */
function tornCopy(p: Pristine, work: string, length: number, crashed = true): string {
  rmSync(work, { recursive: true, force: true });
  cpSync(p.dir, work, { recursive: true });
  const file = p.file.replace(p.dir, work);
  truncateSync(file, length);
  if (crashed) rmSync(join(work, '.clean-shutdown'));
  return file;
}

/** Cuts the last batch at every byte inside it and checks recovery; returns how many lengths were checked. */
async function recoverAtEveryLength(p: Pristine, work: string): Promise<number> {
  const before = p.values.slice(0, p.last.baseOffset);
  let cases = 0;
  for (let length = p.last.position; length < p.last.position + p.last.size; length++) {
    const cut = length - p.last.position;
    const context = `last batch cut to ${cut} of ${p.last.size} bytes`;
    const file = tornCopy(p, work, length);

    const report = verifyLog({ dir: work });
    assert.equal(
      report.ok,
      true,
      `${context}: verifyLog should not call a torn tail an error: ${JSON.stringify(report.findings)}`,
    );
    if (cut > 0) {
      assert.deepEqual(
        report.findings.map((f) => [f.severity, f.file, f.position]),
        [['warning', file, p.last.position]],
        `${context}: verifyLog should warn about the torn tail`,
      );
    } else assert.deepEqual(report.findings, [], `${context}: a file ending at a batch boundary has no torn tail`);

    const logger = recordingLogger();
    const log = await openFileLog({ dir: work, logger });
    try {
      if (cut > 0) {
        assert.equal(
          logger.warnings.length,
          1,
          `${context}: expected one warning, got ${JSON.stringify(logger.warnings)}`,
        );
        const m = /torn tail of (\d+) bytes/.exec(logger.warnings[0]);
        assert.ok(m, `${context}: the warning should say how many bytes were cut: ${logger.warnings[0]}`);
        assert.equal(Number(m[1]), cut, `${context}: the warning reports the wrong byte count: ${logger.warnings[0]}`);
        assert.ok(
          logger.warnings[0].includes(file),
          `${context}: the warning should name ${file}: ${logger.warnings[0]}`,
        );
      } else assert.deepEqual(logger.warnings, [], `${context}: nothing to cut, nothing to warn about`);
      assert.equal(
        statSync(file).size,
        p.last.position,
        `${context}: the segment should be cut back to the end of the previous batch`,
      );
      assert.deepEqual(
        await log.offsets(TOPIC, 0),
        { start: 0, end: p.last.baseOffset },
        `${context}: the log should end after the previous batch`,
      );
      assert.deepEqual(log.health(TOPIC)[0].corruption, null, `${context}: a torn tail is not corruption`);
      const read = await readPartition(log, TOPIC, 0);
      assert.equal(read.error, null, `${context}: reading the recovered log failed: ${String(read.error)}`);
      assertRecords(read.records, before, context);

      const acks = await log.append(TOPIC, [{ value: 'after recovery 1' }, { value: 'after recovery 2' }]);
      assert.deepEqual(
        acks.map((a) => a.offset),
        [p.last.baseOffset, p.last.baseOffset + 1],
        `${context}: appends should continue the offsets`,
      );
      const after = await readPartition(log, TOPIC, 0);
      assert.equal(after.error, null, `${context}: reading after the append failed: ${String(after.error)}`);
      assertRecords(after.records, [...before, 'after recovery 1', 'after recovery 2'], `${context}, after appending`);
    } finally {
      await log.close();
    }
    assert.deepEqual(verifyLog({ dir: work }).findings, [], `${context}: the recovered log should verify clean`);
    cases++;
  }
  return cases;
}

test('truncates a torn tail at every byte of the last batch back to the previous batch', async (t) => {
  const root = tempDir(t);
  const p = await pristineLog(root, false);
  const cases = await recoverAtEveryLength(p, join(root, 'work'));
  assert.equal(cases, p.last.size);
  t.diagnostic(`${cases} cut lengths of a ${p.last.size}-byte batch, active segment ${p.file}`);
});

test('truncates a torn tail when the torn batch is the only one in the active segment', async (t) => {
  const root = tempDir(t);
  const p = await pristineLog(root, true);
  assert.equal(p.last.position, 0);
  const cases = await recoverAtEveryLength(p, join(root, 'work'));
  assert.equal(cases, p.last.size);
});

test('after a clean shutdown a cut-off last batch is corruption: not cut, reads and appends refused', async (t) => {
  const root = tempDir(t);
  const p = await pristineLog(root, false);
  const before = p.values.slice(0, p.last.baseOffset);
  // Inside the fixed header, just past it, and one byte short of the whole batch.
  for (const cut of [1, 30, 61, 62, p.last.size - 1]) {
    const context = `clean shutdown, last batch cut to ${cut} of ${p.last.size} bytes`;
    const work = join(root, `clean-${cut}`);
    const length = p.last.position + cut;
    const file = tornCopy(p, work, length, false);
    const logger = recordingLogger();
    const log = await openFileLog({ dir: work, logger });
    try {
      assert.equal(statSync(file).size, length, `${context}: bytes that were durable must not be cut`);
      assert.ok(
        logger.warnings.some((w) => w.includes('damaged') && w.includes(file) && w.includes(`byte ${p.last.position}`)),
        `${context}: recovery should warn that ${file} is damaged at byte ${p.last.position}: ${JSON.stringify(logger.warnings)}`,
      );
      assert.ok(
        !logger.warnings.some((w) => w.includes('torn tail')),
        `${context}: must not be reported as a torn tail: ${JSON.stringify(logger.warnings)}`,
      );
      assert.deepEqual(
        log.health(TOPIC)[0].corruption?.file,
        file,
        `${context}: the partition should be marked corrupted`,
      );
      assert.deepEqual(await log.offsets(TOPIC, 0), { start: 0, end: p.last.baseOffset });

      await assert.rejects(
        log.append(TOPIC, [{ value: 'must be refused' }]),
        (err) => isKappaError(err, 'KAPPA_CORRUPT_DATA'),
        `${context}: appends should be refused`,
      );
      const read = await readPartition(log, TOPIC, 0);
      assert.ok(
        isKappaError(read.error, 'KAPPA_CORRUPT_DATA'),
        `${context}: a read that reaches the damage should fail with KAPPA_CORRUPT_DATA, got ${String(read.error)}`,
      );
      assert.ok(
        read.error.message.includes(file),
        `${context}: the read error should name ${file}: ${read.error.message}`,
      );
      assertRecords(read.records, before, `${context}: records before the damage`);
    } finally {
      await log.close();
    }
    assert.equal(statSync(file).size, length, `${context}: closing must not cut it either`);
  }
});

test('verifyLog reports a cut-off last batch after a clean shutdown as an error, as recovery treats it', async (t) => {
  const root = tempDir(t);
  const p = await pristineLog(root, false);
  const work = join(root, 'clean');
  const file = tornCopy(p, work, p.last.position + 30, false);
  const report = verifyLog({ dir: work });
  // The next writable open refuses this partition (previous test), so `kappa verify` must not
  // pass it as a harmless torn tail "cut off the next time the log is opened for writing".
  assert.equal(
    report.ok,
    false,
    `verifyLog should fail a log whose next open marks it corrupted: ${JSON.stringify(report.findings)}`,
  );
  assert.deepEqual(
    report.findings.map((f) => [f.severity, f.file, f.position]),
    [['error', file, p.last.position]],
  );
});
