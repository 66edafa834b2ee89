/**
 * SIGKILL during appends: a child process (appender.ts) appends with several appends in flight and
 * prints every acknowledged record; the test kills it at a random moment, then checks the data
 * directory from the outside. Trials share one data directory, so every trial's child first has to
 * recover from the previous kill (and take over the lock the killed child left behind).
 *
 * Most trials check through a read-only open and leave recovery to the next child; every fourth
 * opens the log for writing (the test process recovers it) and closes it cleanly, so children also
 * start after a clean shutdown.
 *
 * Reproduce a run with KAPPA_CRASH_SEED=<seed printed in the diagnostics>; KAPPA_CRASH_TRIALS sets
 * the number of trials (default 24).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { openFileLog, verifyLog } from '../../src/log/index.ts';
import { CRASH_PARTITIONS, CRASH_TOPIC, seqOf } from './records.ts';
import { readPartition, recordingLogger, tempDir } from './helpers.ts';
import { seededRandom } from '../../src/random.ts';
import { type Owner, spawnOwned } from '../support/processes.ts';

const APPENDER = fileURLToPath(new URL('./appender.ts', import.meta.url));
const TRIALS = Number(process.env.KAPPA_CRASH_TRIALS ?? 24);
const KILL_AFTER_MS_MIN = 50;
const KILL_AFTER_MS_MAX = 400;
const READY_TIMEOUT_MS = 15_000;
/** Sequence numbers of trial n start at n * SEQ_STRIDE, so every record ever sent has its own. */
const SEQ_STRIDE = 10_000_000;

interface Ack {
  partition: number;
  offset: number;
  seq: number;
}

interface TrialResult {
  acks: Ack[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Runs one child, kills it `killAfterMs` after it reports ready, and returns what it acknowledged. */
async function runTrial(t: Owner, dir: string, firstSeq: number, killAfterMs: number): Promise<TrialResult> {
  const child = spawnOwned(t, process.execPath, ['--import', 'tsx', APPENDER, dir, String(firstSeq)]);
  try {
    await child.waitForOutput(/^ready\n/, { timeoutMs: READY_TIMEOUT_MS, stream: 'stdout' });
  } catch (err) {
    throw new Error(`the appender never reported ready: ${(err as Error).message}`, { cause: err });
  }
  await new Promise((r) => setTimeout(r, killAfterMs));
  child.kill('SIGKILL');
  const { code, signal } = await child.exited;
  // Only whole lines count: the kill may cut the last one short, and a cut line was never delivered.
  const acks: Ack[] = [];
  for (const line of child.stdout.split('\n').slice(1, -1)) {
    const m = /^ack (\d+) (\d+) (\d+)$/.exec(line);
    if (!m) throw new Error(`unexpected appender output line: ${JSON.stringify(line)}`);
    acks.push({ partition: Number(m[1]), offset: Number(m[2]), seq: Number(m[3]) });
  }
  return { acks, signal, code, stderr: child.stderr };
}

test(
  'acknowledged records survive SIGKILL at random moments, intact, contiguous and without duplicates',
  { timeout: 120_000 },
  async (t) => {
    const seed = Number(process.env.KAPPA_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    t.diagnostic(`KAPPA_CRASH_SEED=${seed}`);
    const random = seededRandom(seed);
    const dir = tempDir(t);
    /** Every record ever acknowledged, by partition then offset: its sequence number. */
    const acked = Array.from({ length: CRASH_PARTITIONS }, () => new Map<number, number>());
    let trialsWithAcks = 0;
    let totalAcked = 0;

    for (let trial = 0; trial < TRIALS; trial++) {
      const killAfterMs = KILL_AFTER_MS_MIN + Math.floor(random() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN + 1));
      const context = `trial ${trial} (seed ${seed}, killed ${killAfterMs} ms after ready)`;
      const result = await runTrial(t, dir, trial * SEQ_STRIDE, killAfterMs);
      assert.equal(
        result.signal,
        'SIGKILL',
        `${context}: the appender ended by itself (code ${result.code}) instead of being killed:\n${result.stderr}`,
      );

      for (const ack of result.acks) {
        const earlier = acked[ack.partition].get(ack.offset);
        assert.equal(
          earlier,
          undefined,
          `${context}: offset ${ack.partition}/${ack.offset} acknowledged twice (seq ${earlier}, then seq ${ack.seq})`,
        );
        acked[ack.partition].set(ack.offset, ack.seq);
      }
      if (result.acks.length > 0) trialsWithAcks++;
      totalAcked += result.acks.length;

      const report = verifyLog({ dir });
      const errors = report.findings.filter((f) => f.severity === 'error');
      assert.deepEqual(errors, [], `${context}: verifyLog found errors`);
      assert.equal(report.ok, true, `${context}: verifyLog is not ok`);

      const writable = trial % 4 === 3;
      const logger = recordingLogger();
      const log = await openFileLog({ dir, readOnly: !writable, logger });
      try {
        const seen = new Set<number>();
        for (let p = 0; p < CRASH_PARTITIONS; p++) {
          const { records, error } = await readPartition(log, CRASH_TOPIC, p);
          assert.equal(error, null, `${context}: reading partition ${p} failed: ${String(error)}`);
          const { start, end } = await log.offsets(CRASH_TOPIC, p);
          assert.equal(start, 0, `${context}: partition ${p} starts at ${start}`);
          assert.equal(
            records.length,
            end,
            `${context}: partition ${p} ends at ${end} but holds ${records.length} records`,
          );
          const bySeq = new Map<number, number>();
          records.forEach((r, i) => {
            assert.equal(
              r.offset,
              i,
              `${context}: partition ${p}: record ${i} has offset ${r.offset} (gap or reorder)`,
            );
            const seq = seqOf(r.value);
            assert.notEqual(
              seq,
              null,
              `${context}: partition ${p} offset ${r.offset}: value is damaged: ${r.value?.subarray(0, 40).toString()}`,
            );
            assert.ok(!seen.has(seq!), `${context}: seq ${seq} is stored twice (second time at ${p}/${r.offset})`);
            seen.add(seq!);
            bySeq.set(r.offset, seq!);
          });
          for (const [offset, seq] of acked[p]) {
            assert.ok(
              offset < records.length,
              `${context}: acknowledged record ${p}/${offset} (seq ${seq}) is missing; the partition ends at ${records.length}`,
            );
            assert.equal(
              bySeq.get(offset),
              seq,
              `${context}: acknowledged record ${p}/${offset} should hold seq ${seq}`,
            );
          }
        }
      } finally {
        await log.close();
      }
      if (writable)
        assert.deepEqual(
          verifyLog({ dir }).findings,
          [],
          `${context}: findings remain after a writable open recovered the log`,
        );
    }

    t.diagnostic(
      `${TRIALS} trials, ${totalAcked} acknowledged records, ${trialsWithAcks} trials with acknowledgements`,
    );
    // Without acknowledgements the checks above prove nothing; every kill comes at least 50 ms into appending.
    assert.ok(trialsWithAcks >= TRIALS / 2, `only ${trialsWithAcks} of ${TRIALS} trials acknowledged anything`);
  },
);
