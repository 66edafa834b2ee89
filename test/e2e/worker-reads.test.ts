/**
 * A worker thread reads its partitions through its own read-only view of the log, up to the high
 * watermark the engine's thread gives it. When a read finds nothing below that mark, the view trails
 * the files; the task must wait on timers (not spin), open the files again, and carry on once the
 * data is there. The high watermark is sent ahead of the data here on purpose: a controlled
 * version of a reader that has fallen behind the writer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { loadApp } from '../../src/stream/index.ts';
import { compileView } from '../../src/stream/plan.ts';
import { WorkerPool } from '../../src/stream/worker-pool.ts';
import { type Deltas, deltaCount } from '../../src/view/index.ts';

const SRC = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const CONFIG = `
import { Type, count, defineApp, from, topic, view } from ${JSON.stringify(SRC)};
const E = Type.Object({ k: Type.String() });
const events = topic('events', { partitions: 1, schema: E });
export default defineApp({ topics: [events], views: [view('by_k', from(events).groupBy((e) => ({ k: e.k })).aggregate({ n: count() }))] });
`;

interface Setup {
  log: FileLog;
  pool: WorkerPool;
  plan: ReturnType<typeof compileView>;
}

/** A log holding two records, and a one-thread pool that runs view by_k; both closed, and their files removed, when `t` ends. */
async function setUp(
  t: { after(fn: () => unknown): void },
  opts: { onFailure?: (err: Error) => void; onWarning?: (m: string) => void } = {},
): Promise<Setup> {
  const root = mkdtempSync(join(tmpdir(), 'kappa-worker-reads-'));
  // One hook, so the pool and the log close before their files are removed.
  let pool: WorkerPool | null = null;
  let log: FileLog | null = null;
  t.after(async () => {
    await pool?.close();
    await log?.close();
    rmSync(root, { recursive: true, force: true });
  });
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  const configPath = join(root, 'kappa.config.ts');
  writeFileSync(configPath, CONFIG);
  const dir = join(root, 'data');
  log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
  await log.createTopic('events', { partitions: 1 });
  await log.append('events', [{ value: '{"k":"a"}' }, { value: '{"k":"b"}' }]);
  pool = await WorkerPool.start({
    configPath,
    workers: 1,
    log: { kind: 'file', dir },
    readBytesMax: 1 << 16,
    pendingMax: 1000,
    onFailure: opts.onFailure ?? (() => {}),
    onWarning: opts.onWarning,
  });
  const plan = compileView((await loadApp(configPath)).views[0]);
  return { log, pool, plan };
}

test(
  'a worker whose reads find nothing below the high watermark sleeps, says so, and goes on once the data is there',
  { timeout: 60_000 },
  async (t) => {
    const warnings: string[] = [];
    const failures: Error[] = [];
    const { log, pool, plan } = await setUp(t, {
      onFailure: (err) => failures.push(err),
      onWarning: (m) => warnings.push(m),
    });
    pool.open({ id: 0, plan, partition: 0, watermarkMs: Number.NEGATIVE_INFINITY, keyNames: null, fromOffset: 0 });

    // The engine's thread says offsets up to 10 are durable, but only 0 and 1 exist yet.
    pool.setHighWatermark(0, 10);
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const cpu = process.cpuUsage(cpuBefore);
    const share = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
    t.diagnostic(`${(share * 100).toFixed(1)}% of a core while the reads found nothing`);
    assert.ok(
      share < 0.2,
      `the process used ${(share * 100).toFixed(1)}% of a core while its worker waited for data (a spin uses a whole one)`,
    );
    // The warning comes once the reads have found nothing for 2 s after the two records were folded:
    // a loaded machine (a slow first read in the worker) may get there after the 3 s above.
    const warned = Date.now() + 10_000;
    while ((warnings.length === 0 || pool.progress(0).offset !== 2) && Date.now() < warned)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.progress(0).offset, 2, 'the two records there were folded');
    assert.equal(failures.length, 0, String(failures[0]));
    assert.equal(warnings.length, 1, 'one warning when the partition is opened again');
    assert.match(
      warnings[0],
      /by_k\/events\/0: nothing could be read from offset 2 for \d+ ms though the log is durable up to offset 10; opening the partition's files again \(events\/0 holds offsets 0 to 1 here/,
    );

    // The data arrives: the task reads it without another word.
    await log.append(
      'events',
      Array.from({ length: 8 }, (_, i) => ({ value: JSON.stringify({ k: `k${i}` }) })),
    );
    const deadline = Date.now() + 10_000;
    while (pool.progress(0).offset !== 10) {
      assert.ok(Date.now() < deadline, `the task stayed at offset ${pool.progress(0).offset}`);
      await pool.nextProgress(0).catch(() => {});
    }
    const drained = await pool.drain(0);
    assert.equal(drained.offset, 10);
    assert.equal(deltaCount(drained.rows as Deltas), 10);
    assert.equal(warnings.length, 1);
  },
);

test('a progress report that arrives while nobody waits for one is not lost', { timeout: 60_000 }, async (t) => {
  const { pool, plan } = await setUp(t);
  pool.open({ id: 0, plan, partition: 0, watermarkMs: Number.NEGATIVE_INFINITY, keyNames: null, fromOffset: 0 });
  pool.setHighWatermark(0, 2);
  // The worker folds both records and reports once, then has nothing more to say. The engine was
  // busy (flushing) meanwhile; when it asks, it must hear of that report rather than wait for another.
  const deadline = Date.now() + 10_000;
  while (pool.progress(0).offset !== 2) {
    assert.ok(Date.now() < deadline, 'the worker did not report');
    await new Promise((r) => setTimeout(r, 20));
  }
  const heard = await Promise.race([
    pool.nextProgress(0).then(() => true),
    new Promise((r) => setTimeout(r, 2000, false)),
  ]);
  assert.equal(heard, true, 'nextProgress waited for a report that had already come');
});
