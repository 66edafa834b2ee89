/**
 * `kappa verify` on damaged data: it must exit non-zero and tell the user which file is damaged
 * and where, and exit 0 on an intact log (so the first check cannot pass by always failing).
 * The CLI is run as a user runs it: `node bin/kappa.js verify --data-dir DIR`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { valueFor } from './records.ts';
import { TOPIC, batchLayout, flipBit, segmentFiles, tempDir, writeLog } from './helpers.ts';
import { runKappa } from '../support/processes.ts';

async function kappa(...args: string[]): Promise<{ status: number | null; output: string }> {
  const res = await runKappa(args, { timeoutMs: 30_000 });
  return { status: res.code, output: `${res.stdout}${res.stderr}` };
}

async function sampleLog(dir: string): Promise<void> {
  await writeLog(
    dir,
    4096,
    Array.from({ length: 30 }, (_, i) => [valueFor(2 * i), valueFor(2 * i + 1)]),
  );
}

test('kappa verify exits non-zero and names the damaged file and byte position', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  await sampleLog(dir);
  const [file] = segmentFiles(dir, TOPIC, 0);
  const damaged = batchLayout(file)[1];
  flipBit(file, damaged.position + 70, 2);

  const { status, output } = await kappa('verify', '--data-dir', dir);
  assert.notEqual(status, 0, `kappa verify should fail on a damaged log; it exited ${status}:\n${output}`);
  assert.ok(output.includes(file), `the output should name ${file}:\n${output}`);
  assert.match(
    output,
    new RegExp(`\\b${damaged.position}\\b`),
    `the output should give byte position ${damaged.position}:\n${output}`,
  );
});

test('kappa verify exits 0 on an intact log', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  await sampleLog(dir);
  const { status, output } = await kappa('verify', '--data-dir', dir);
  assert.equal(status, 0, `kappa verify should pass an intact log; it exited ${status}:\n${output}`);
});
