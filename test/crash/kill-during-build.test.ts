/**
 * Versioned views under crashes: `kappa start` runs in a child process and dies by SIGKILL while it
 * builds a new version after a logic change, and at both sides of the swap's commit (crash points
 * inside the store transaction that makes a version live, and right after it). After each restart
 * exactly one version is live, the other either resumed (and went live) or stayed retired, and the
 * live view equals a plain fold of the whole log under the live version's logic.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openFileLog } from '../../src/log/index.ts';
import { startKappa } from '../support/processes.ts';
import { tempDataProject, totalsConfig } from '../support/project.ts';
import { type Sale, salesSource } from '../support/sales.ts';

const PARTITIONS = 2;
const FIRST_EVENTS = 1_200_000;

/** The logics the view goes through: a filter, as config source and as the oracle's predicate. */
const LOGICS: Record<string, { source: string; keep: (s: Sale) => boolean }> = {
  all: { source: '', keep: () => true },
  noRefunds: { source: '.filter((s) => !s.refund)', keep: (s) => !s.refund },
  large: { source: '.filter((s) => s.cents >= 500)', keep: (s) => s.cents >= 500 },
  largeNoRefunds: { source: '.filter((s) => s.cents >= 500 && !s.refund)', keep: (s) => s.cents >= 500 && !s.refund },
};

function config(logic: string): string {
  return totalsConfig({ partitions: PARTITIONS, refund: true, filter: LOGICS[logic].source });
}

const sales = salesSource();

test(
  'SIGKILL during a build and on both sides of the swap: one live version, the build resumes, the oracle matches',
  { timeout: 300_000 },
  async (t) => {
    const { dir, config: configPath } = tempDataProject(t, 'kappa-crash-build-');

    async function append(n: number): Promise<void> {
      const log = await openFileLog({ dir });
      try {
        if ((await log.topics()).length === 0) await log.createTopic('sales', { partitions: PARTITIONS });
        for (let i = 0; i < n; i += 50_000) await log.append('sales', sales(Math.min(50_000, n - i)));
      } finally {
        await log.close();
      }
    }

    /** The rows of the fold of `logic` over the whole log, and the log's end offsets. */
    async function oracle(
      logic: string,
    ): Promise<{ rows: { region: string; cents: number; n: number }[]; ends: number[] }> {
      const log = await openFileLog({ dir, readOnly: true });
      try {
        const rows = new Map<string, { region: string; cents: number; n: number }>();
        const ends: number[] = [];
        for (let p = 0; p < PARTITIONS; p++) {
          ends.push((await log.offsets('sales', p)).end);
          for await (const batch of log.read('sales', p, 0)) {
            for (const r of batch.records()) {
              const s = JSON.parse(r.value!.toString()) as Sale;
              if (!LOGICS[logic].keep(s)) continue;
              const row = rows.get(s.region) ?? { region: s.region, cents: 0, n: 0 };
              row.cents += s.cents;
              row.n++;
              rows.set(s.region, row);
            }
          }
        }
        return { rows: [...rows.values()].sort((a, b) => (a.region < b.region ? -1 : 1)), ends };
      } finally {
        await log.close();
      }
    }

    /** Looks at the view store the way another process does: a read-only SQLite connection. */
    function look<T>(fn: (db: Database.Database) => T): T {
      const db = new Database(join(dir, 'views.db'), { readonly: true, fileMustExist: true, timeout: 5000 });
      try {
        return fn(db);
      } finally {
        db.close();
      }
    }
    const versions = (): [number, string][] =>
      look(
        (db) =>
          db.prepare("SELECT version, state FROM kappa_views WHERE name = 'totals' ORDER BY version").raw().all() as [
            number,
            string,
          ][],
      );
    const offsets = (version: number): number[] =>
      look((db) =>
        (
          db
            .prepare(
              'SELECT "offset" FROM kappa_checkpoints WHERE view = \'totals\' AND version = ? ORDER BY "partition"',
            )
            .raw()
            .all(version) as [number][]
        ).map(([o]) => o),
      );
    const builds = (): number =>
      look((db) => (db.prepare('SELECT count(*) FROM kappa_builds').raw().get() as [number])[0]);
    const rows = (): unknown => look((db) => db.prepare('SELECT region, cents, n FROM totals ORDER BY region').all());

    /** `kappa start` as a child; resolves with its stderr once `until` holds (then SIGTERM) or once it dies. */
    async function start(
      logic: string,
      opts: { crashAt?: string; until?: () => boolean; kill?: 'SIGKILL' | 'SIGTERM' } = {},
    ): Promise<{ stderr: string; code: number | null; signal: string | null }> {
      writeFileSync(configPath, config(logic));
      const child = startKappa(
        t,
        ['--data-dir', dir, '--config', configPath, 'start', '--port', '0', '--flush-interval-ms', '30'],
        { env: { KAPPA_TEST_CRASH_AT: opts.crashAt ?? '' } },
      );
      const deadline = Date.now() + 120_000;
      while (child.running && opts.until !== undefined) {
        let met = false;
        try {
          met = opts.until();
        } catch {
          // the store is not created yet
        }
        if (met) {
          child.kill(opts.kill ?? 'SIGTERM');
          break;
        }
        if (Date.now() > deadline) throw new Error(`timed out; kappa start said:\n${child.stderr}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const result = await child.exited; // before reading stderr: the last lines may still be in the pipe
      return { stderr: child.stderr, ...result };
    }

    const atHead = async (version: number): Promise<boolean> => {
      const { ends } = await oracle('all');
      const o = offsets(version);
      return o.length === PARTITIONS && o.every((x, p) => x === ends[p]);
    };
    /** Polled synchronously by `start`: the log's end offsets are read once up front (nothing appends while it runs). */
    async function liveAtHead(version: number): Promise<() => boolean> {
      const { ends } = await oracle('all');
      return () =>
        versions().some(([v, s]) => v === version && s === 'live') &&
        offsets(version).every((x, p) => x === ends[p]) &&
        offsets(version).length === PARTITIONS;
    }

    /**
     * Starts `logic` until `version` is live at the head of the log, then checks what every recovery must
     * leave: a clean exit, `version - 1` retired and `version` live, no build left, and the oracle's rows.
     */
    async function restartUntilLive(logic: string, version: number): Promise<Awaited<ReturnType<typeof start>>> {
      const run = await start(logic, { until: await liveAtHead(version) });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(versions(), [
        [version - 1, 'retired'],
        [version, 'live'],
      ]);
      assert.equal(builds(), 0);
      assert.deepEqual(rows(), (await oracle(logic)).rows);
      return run;
    }

    // Version 1: every sale.
    await append(FIRST_EVENTS);
    let run = await start('all', { until: await liveAtHead(1) });
    assert.equal(run.code, 0, run.stderr);

    // The logic changes; the build of version 2 is killed halfway.
    const ends = (await oracle('all')).ends;
    run = await start('noRefunds', {
      until: () => {
        const o = offsets(2);
        return o.length > 0 && o.reduce((a, b) => a + b, 0) < ends.reduce((a, b) => a + b, 0) / 2;
      },
      kill: 'SIGKILL',
    });
    assert.equal(run.signal, 'SIGKILL', run.stderr);
    assert.deepEqual(versions(), [
      [1, 'live'],
      [2, 'building'],
    ]);
    const killedAt = offsets(2).reduce((a, b) => a + b, 0);
    run = await restartUntilLive('noRefunds', 2);
    assert.match(run.stderr, /resuming the build of version 2 from its checkpoints/);
    assert.match(run.stderr, new RegExp(`version 2 caught up with the log and is now live`));
    assert.ok(killedAt > 0, 'the build had checkpointed before the kill');
    assert.ok(await atHead(2));

    // The swap dies inside its transaction: it never happened; version 2 stays live, version 3 resumes.
    await append(100_000);
    run = await start('large', { crashAt: 'swap-before-commit' });
    assert.equal(run.signal, 'SIGKILL', run.stderr);
    assert.deepEqual(versions(), [
      [1, 'retired'],
      [2, 'live'],
      [3, 'building'],
    ]);
    assert.equal(builds(), 1);
    await restartUntilLive('large', 3);

    // The swap dies right after its commit: version 4 is live; the restart finishes the cleanup.
    await append(100_000);
    run = await start('largeNoRefunds', { crashAt: 'swap-after-commit' });
    assert.equal(run.signal, 'SIGKILL', run.stderr);
    assert.deepEqual(
      versions().filter(([, s]) => s === 'live'),
      [[4, 'live']],
    );
    await append(50_000);
    run = await restartUntilLive('largeNoRefunds', 4);
    assert.doesNotMatch(run.stderr, /building version/, 'no rebuild after the restart');
  },
);
