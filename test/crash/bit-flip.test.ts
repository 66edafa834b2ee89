/**
 * Bit flips below the durable point: one flipped bit in a batch that is not the last, in a closed
 * segment and in the active segment. Such damage is never a torn write, so it must never be cut:
 * `verifyLog` names the file and the damaged batch's byte position, a read that reaches it fails
 * with KAPPA_CORRUPT_DATA naming the file, the records before it still read, and no file shrinks.
 *
 * Bytes 12-15 of a batch (partitionLeaderEpoch) are left out of the sweeps: RecordBatch v2 keeps
 * them outside the CRC (Kafka rewrites them on the broker), so a flip there is undetectable by
 * design and changes no record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isKappaError } from '../../src/errors.ts';
import { type LogRecord, openFileLog, verifyLog } from '../../src/log/index.ts';
import { type Owner } from '../support/cleanup.ts';
import { valueFor } from './records.ts';
import {
  type BatchLayout,
  TOPIC,
  assertRecords,
  batchLayout,
  flipBit,
  readPartition,
  recordingLogger,
  segmentFiles,
  segmentSizes,
  tempDir,
  writeLog,
} from './helpers.ts';

const SMALL_SEGMENT_BYTES = 4096;
const LARGE_SEGMENT_BYTES = 1 << 20;
/** partitionLeaderEpoch, outside the CRC (see the file comment). */
const UNCHECKED_BYTES = new Set([12, 13, 14, 15]);
const BATCH_HEADER_BYTES = 61;

/** Batches of 1 to 4 records; every fourth is small, so a sweep over its bytes stays quick. */
function batches(count: number): string[][] {
  const out: string[][] = [];
  let seq = 0;
  for (let i = 0; i < count; i++) {
    if (i % 4 === 2) out.push([`small batch ${i}`, `#${seq++}`]);
    else out.push(Array.from({ length: 1 + (i % 4) }, () => valueFor(seq++)));
  }
  return out;
}

interface Target {
  dir: string;
  values: string[];
  /** The segment that holds the damaged batch. */
  file: string;
  batch: BatchLayout;
}

/**
 * A cleanly closed log and the batch to damage: in the first of several small segments
 * (`closed`) or in the middle of the only, active segment. Always a small batch with batches
 * before and after it in its segment.
 */
/** A temp folder (removed when `t` ends) and the target log written in it by targetLog. */
async function tempTarget(t: Owner, where: 'closed' | 'active'): Promise<{ root: string; target: Target }> {
  const root = tempDir(t);
  return { root, target: await targetLog(root, where) };
}

async function targetLog(root: string, where: 'closed' | 'active'): Promise<Target> {
  const dir = join(root, `pristine-${where}`);
  const values = await writeLog(
    dir,
    where === 'closed' ? SMALL_SEGMENT_BYTES : LARGE_SEGMENT_BYTES,
    batches(where === 'closed' ? 40 : 12),
  );
  const files = segmentFiles(dir, TOPIC, 0);
  if (where === 'closed') assert.ok(files.length >= 3, `expected several segments, got ${files.length}`);
  else assert.equal(files.length, 1);
  const file = files[0];
  const layout = batchLayout(file);
  const smallest = layout.slice(1, -1).reduce((a, b) => (b.size < a.size ? b : a));
  return { dir, values, file, batch: smallest };
}

/** baseOffset, batchLength and magic: fields a reader interprets before it can check the CRC. */
const STRUCTURAL_BYTES_END = 17;

/**
 * Which bits to flip: every bit of the structural fields (a flipped length or offset bit each
 * misleads a reader differently), and one bit of every other byte (the CRC covers them all alike).
 */
function flips(batch: BatchLayout): { byte: number; bit: number }[] {
  const out: { byte: number; bit: number }[] = [];
  for (let byte = 0; byte < batch.size; byte++) {
    if (UNCHECKED_BYTES.has(byte)) continue;
    if (byte < STRUCTURAL_BYTES_END) for (let bit = 0; bit < 8; bit++) out.push({ byte, bit });
    else out.push({ byte, bit: byte % 8 });
  }
  return out;
}

function damagedCopy(target: Target, work: string, byte: number, bit: number, crashed: boolean): string {
  rmSync(work, { recursive: true, force: true });
  cpSync(target.dir, work, { recursive: true });
  const file = target.file.replace(target.dir, work);
  flipBit(file, target.batch.position + byte, bit);
  if (crashed) rmSync(join(work, '.clean-shutdown'));
  return file;
}

/**
 * The problems with one damaged copy, as sentences; empty when everything behaves. That the records
 * before the damage still read is checked by the two single-flip tests, so that a reader bug does
 * not drown out what these sweeps are for: detection, and never cutting.
 */
async function checkDamage(target: Target, work: string, file: string): Promise<string[]> {
  const problems: string[] = [];
  const position = target.batch.position;
  const report = verifyLog({ dir: work });
  const named = report.findings.find((f) => f.severity === 'error' && f.file === file && f.position === position);
  if (report.ok || !named)
    problems.push(
      `verifyLog did not report an error at ${file} byte ${position}: ${JSON.stringify(report.findings.map((f) => [f.severity, f.position, f.message]))}`,
    );

  const sizes = segmentSizes(work);
  const logger = recordingLogger();
  const log = await openFileLog({ dir: work, logger });
  try {
    const read = await readPartition(log, TOPIC, 0);
    if (!isKappaError(read.error, 'KAPPA_CORRUPT_DATA'))
      problems.push(`a read from offset 0 did not fail with KAPPA_CORRUPT_DATA but with ${String(read.error)}`);
    else if (!read.error.message.includes(file))
      problems.push(`the read error does not name ${file}: ${read.error.message}`);
    const leaked = read.records.filter((r) => r.offset >= target.batch.baseOffset);
    if (leaked.length > 0)
      problems.push(
        `a read from offset 0 returned offsets ${leaked.map((r) => r.offset).join(',')} of the damaged batch${describeWrong(leaked, target.values)}`,
      );
    const inside = await readPartition(log, TOPIC, 0, target.batch.baseOffset);
    if (!isKappaError(inside.error, 'KAPPA_CORRUPT_DATA'))
      problems.push(
        `a read from offset ${target.batch.baseOffset} (the damaged batch) did not fail with KAPPA_CORRUPT_DATA but with ${String(inside.error)}`,
      );
    if (inside.records.length > 0)
      problems.push(
        `a read from offset ${target.batch.baseOffset} returned offsets ${inside.records.map((r) => r.offset).join(',')}${describeWrong(inside.records, target.values)}`,
      );
  } finally {
    await log.close();
  }
  const after = segmentSizes(work);
  for (const [path, size] of sizes)
    if (after.get(path) !== size) problems.push(`${path} changed size from ${size} to ${after.get(path)} bytes`);
  if (logger.warnings.some((w) => w.includes('torn tail')))
    problems.push(`recovery treated the damage as a torn tail: ${logger.warnings.join(' | ')}`);
  return problems;
}

/** Names the records that came back under an offset whose value is not theirs. */
function describeWrong(records: readonly LogRecord[], values: readonly string[]): string {
  const wrong = records.filter((r) => r.value?.toString() !== values[r.offset]);
  if (wrong.length === 0) return '';
  return `, ${wrong.map((r) => `offset ${r.offset} carrying the value of offset ${values.indexOf(r.value?.toString() ?? '')}`).join(', ')}`;
}

/** Damages a copy of `target` once per flip, with the clean-shutdown marker removed (recovery runs as after a crash). */
async function sweep(target: Target, root: string): Promise<{ cases: number; failures: string[] }> {
  const work = join(root, 'work');
  const failures: string[] = [];
  const list = flips(target.batch);
  for (const { byte, bit } of list) {
    const file = damagedCopy(target, work, byte, bit, true);
    const problems = await checkDamage(target, work, file);
    if (problems.length > 0) failures.push(`byte ${byte} bit ${bit}: ${problems.join('; ')}`);
  }
  return { cases: list.length, failures };
}

/** At most `n` failures, one per line, and how many more there were. */
function summary(failures: string[], n = 10): string {
  return failures.slice(0, n).join('\n') + (failures.length > n ? `\n… and ${failures.length - n} more` : '');
}

test('a bit flip in a closed segment is reported by verifyLog and fails reads that reach it; earlier records read, nothing is cut', async (t) => {
  const { root, target } = await tempTarget(t, 'closed');
  const file = damagedCopy(target, join(root, 'one'), BATCH_HEADER_BYTES + 3, 4, false);
  const report = verifyLog({ dir: join(root, 'one') });
  assert.equal(report.ok, false);
  const errors = report.findings.filter((f) => f.severity === 'error');
  assert.equal(errors.length, 1, JSON.stringify(report.findings));
  assert.equal(errors[0].file, file);
  assert.equal(errors[0].position, target.batch.position);
  assert.match(errors[0].message, /CRC/);

  const sizeBefore = statSync(file).size;
  const log = await openFileLog({ dir: join(root, 'one'), logger: recordingLogger() });
  try {
    const read = await readPartition(log, TOPIC, 0);
    assert.ok(isKappaError(read.error, 'KAPPA_CORRUPT_DATA'), `expected KAPPA_CORRUPT_DATA, got ${String(read.error)}`);
    assert.ok(read.error.message.includes(file), read.error.message);
    assert.equal(read.error.details?.file, file);
    assert.equal(read.error.details?.position, target.batch.position);
    const inside = await readPartition(log, TOPIC, 0, target.batch.baseOffset);
    assert.ok(
      isKappaError(inside.error, 'KAPPA_CORRUPT_DATA'),
      `a read from the damaged batch: expected KAPPA_CORRUPT_DATA, got ${String(inside.error)}`,
    );
    assertRecords(read.records, target.values.slice(0, target.batch.baseOffset), 'records before the damaged batch');
  } finally {
    await log.close();
  }
  assert.equal(statSync(file).size, sizeBefore, 'the damaged segment must not be cut');
});

test('a bit flip in an earlier batch of the active segment marks the partition corrupted after a crash, without cutting it', async (t) => {
  const { root, target } = await tempTarget(t, 'active');
  const work = join(root, 'one');
  const file = damagedCopy(target, work, BATCH_HEADER_BYTES + 3, 4, true);
  const report = verifyLog({ dir: work });
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.findings.map((f) => [f.severity, f.file, f.position]),
    [['error', file, target.batch.position]],
  );

  const sizeBefore = statSync(file).size;
  const logger = recordingLogger();
  const log = await openFileLog({ dir: work, logger });
  try {
    assert.equal(statSync(file).size, sizeBefore, 'recovery must not cut a damaged batch that valid batches follow');
    assert.ok(
      logger.warnings.some((w) => w.includes('damaged') && w.includes(file)),
      JSON.stringify(logger.warnings),
    );
    assert.deepEqual(
      log.health(TOPIC)[0].corruption && {
        file: log.health(TOPIC)[0].corruption!.file,
        position: log.health(TOPIC)[0].corruption!.position,
      },
      { file, position: target.batch.position },
    );
    await assert.rejects(log.append(TOPIC, [{ value: 'refused' }]), (err) => isKappaError(err, 'KAPPA_CORRUPT_DATA'));
    const read = await readPartition(log, TOPIC, 0);
    assert.ok(isKappaError(read.error, 'KAPPA_CORRUPT_DATA'), `expected KAPPA_CORRUPT_DATA, got ${String(read.error)}`);
    assert.ok(read.error.message.includes(file), read.error.message);
    assertRecords(read.records, target.values.slice(0, target.batch.baseOffset), 'records before the damaged batch');
  } finally {
    await log.close();
  }
  assert.equal(statSync(file).size, sizeBefore, 'closing must not cut it either');
});

const SWEEPS = {
  closed: 'in a batch of a closed segment is reported and never cut',
  active: 'in an earlier batch of the active segment is reported and never cut after a crash',
} as const;

for (const [where, what] of Object.entries(SWEEPS) as ['closed' | 'active', string][]) {
  test(`every detectable single-bit flip ${what}`, async (t) => {
    const { root, target } = await tempTarget(t, where);
    const { cases, failures } = await sweep(target, root);
    t.diagnostic(`${cases} flips in a ${target.batch.size}-byte batch at ${target.file} byte ${target.batch.position}`);
    assert.equal(failures.length, 0, `${failures.length} of ${cases} flips misbehaved:\n${summary(failures)}`);
  });
}
