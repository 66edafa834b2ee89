/**
 * A task with nothing to do sleeps. `kappa start` that has caught up with its log, and one whose
 * task cannot go on because another process holds the view store's write lock, must each use at
 * most 5% of a core, measured from the kernel's account of the process (every thread) over 10 s.
 * A busy loop that makes no progress (the failure this guards against) shows as a whole core.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openFileLog } from '../../src/log/index.ts';
import { startKappa } from '../support/processes.ts';
import { bigSalesConfig } from '../support/project.ts';
import { tempDir } from '../crash/helpers.ts';

const MEASURE_MS = 10_000;
const CPU_SHARE_MAX = 0.05;

const CONFIG = bigSalesConfig({ bigCents: 8000 });
/** CPU seconds (user + system, every thread) the process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime and stime: fields 14 and 15 of stat(5)
  return ticks / 100; // USER_HZ is 100 on Linux
}

async function cpuShareOver(pid: number, ms: number): Promise<number> {
  const before = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return (cpuSeconds(pid) - before) / ((performance.now() - t0) / 1000);
}

async function setUp(t: { after(fn: () => void): void }): Promise<{ dir: string; config: string }> {
  const root = tempDir(t, 'kappa-idle-');
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  const config = join(root, 'kappa.config.ts');
  writeFileSync(config, CONFIG);
  const dir = join(root, 'data');
  const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
  try {
    await log.createTopic('sales', { partitions: 3 });
    const batch = [];
    for (let id = 0; id < 20_000; id++)
      batch.push({
        key: String(id),
        value: JSON.stringify({
          id,
          region: ['n', 's', 'e', 'w'][id % 4],
          cents: (id * 7919) % 10_000,
          ts: 1_767_225_600_000 + id * 1000,
        }),
      });
    await log.append('sales', batch);
  } finally {
    await log.close();
  }
  return { dir, config };
}

async function caughtUp(url: string, deadlineMs: number): Promise<void> {
  let zeroInARow = 0;
  while (zeroInARow < 2) {
    assert.ok(Date.now() < deadlineMs, 'kappa start did not catch up in time');
    const { tasks } = (await (await fetch(`${url}/v1/pipelines`)).json()) as { tasks: { lag: number }[] };
    zeroInARow = tasks.length === 11 && tasks.every((x) => x.lag === 0) ? zeroInARow + 1 : 0;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a caught-up kappa start uses at most 5% of a core', { timeout: 120_000 }, async (t) => {
  const { dir, config } = await setUp(t);
  const start = startKappa(t, ['--data-dir', dir, 'start', '--config', config, '--port', '0']);
  const [, url] = await start.waitForOutput(/HTTP API on (\S+) /, { timeoutMs: 30_000 });
  await caughtUp(url, Date.now() + 60_000);
  const share = await cpuShareOver(start.pid, MEASURE_MS);
  t.diagnostic(`caught up: ${(share * 100).toFixed(1)}% of a core over ${MEASURE_MS / 1000} s`);
  assert.ok(
    share <= CPU_SHARE_MAX,
    `kappa start used ${(share * 100).toFixed(1)}% of a core while it had nothing to do`,
  );
  assert.equal((await start.stop()).code, 0, start.stderr);
});

test(
  'a task blocked by another process holding the view store sleeps, then catches up when the lock is released',
  { timeout: 120_000 },
  async (t) => {
    const { dir, config } = await setUp(t);
    const start = startKappa(t, ['--data-dir', dir, 'start', '--config', config, '--port', '0']);
    const [, url] = await start.waitForOutput(/HTTP API on (\S+) /, { timeoutMs: 30_000 });
    await caughtUp(url, Date.now() + 60_000);

    // Another process (here: this one) takes the store's write lock, as a backup tool or a
    // sqlite3 shell with an open write transaction would; then more events arrive.
    const other = new Database(join(dir, 'views.db'));
    t.after(() => other.close());
    other.exec('BEGIN IMMEDIATE');
    const records = Array.from({ length: 500 }, (_, i) => ({
      id: 100_000 + i,
      region: 'n',
      cents: 9000,
      ts: 1_767_300_000_000 + i,
    }));
    const posted = await fetch(`${url}/v1/topics/sales/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(records),
    });
    assert.equal(posted.status, 200, await posted.text());
    await new Promise((r) => setTimeout(r, 1000));
    const share = await cpuShareOver(start.pid, MEASURE_MS);
    t.diagnostic(`blocked: ${(share * 100).toFixed(1)}% of a core over ${MEASURE_MS / 1000} s`);
    assert.ok(start.running, `kappa start gave up while the store was locked:\n${start.stderr}`);
    assert.ok(
      share <= CPU_SHARE_MAX,
      `kappa start used ${(share * 100).toFixed(1)}% of a core while its tasks were blocked`,
    );
    // The wait is reported once a flush has waited out the store's busy timeout (5 s): on a loaded
    // machine that may come after the measurement above, so wait for it rather than look once.
    await start.waitForOutput(/locked/, { timeoutMs: 30_000, stream: 'stderr' });
    // The /healthz answers while tasks wait.
    assert.equal((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).status, 200);

    other.exec('ROLLBACK');
    await caughtUp(url, Date.now() + 60_000);
    const res = await fetch(`${url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: "SELECT orders FROM by_region WHERE region = 'n'" }),
    });
    assert.deepEqual(((await res.json()) as { rows: unknown[] }).rows, [{ orders: 5000 + 500 }]);
    assert.equal((await start.stop()).code, 0, start.stderr);
  },
);
