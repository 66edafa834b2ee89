/**
 * The heart of Kappa: a view's logic changes (refunds are excluded) while sales keep arriving.
 * The engine builds version 2 by replaying the log while version 1, running from its stored code,
 * keeps up and keeps serving; a reader in another thread (its own SQLite connection, as another
 * process would have) queries the public view thousands of times. Every answer must be a complete
 * answer of one version: exactly the fold of that version's logic over the log up to the
 * checkpoints read in the same snapshot. After the swap, v2 equals the fold over the whole log,
 * events that arrived during the build included. Then a rollback (asked through the store, as
 * `kappa rollback` does from another process) brings v1's logic back, caught up to the head, and
 * a restart with the changed config keeps the rolled-back version live without rebuilding.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { Engine, loadApp } from '../../src/stream/index.ts';
import { type ViewStore } from '../../src/view/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { tempDataProject, totalsConfig } from '../support/project.ts';
import { REGIONS, type Sale, salesSource } from '../support/sales.ts';

const SQLITE = createRequire(import.meta.url).resolve('better-sqlite3');
const PARTITIONS = 2;
const FIRST_EVENTS = 150_000;

function config(excludeRefunds: boolean): string {
  return totalsConfig({
    partitions: PARTITIONS,
    refund: true,
    filter: excludeRefunds ? '.filter((s) => !s.refund)' : '',
  });
}

/** Prefix folds of each partition under both logics, so any (version, offsets) answer is checked in O(1). */
class Oracle {
  /** [partition][logic 0 = all, 1 = no refunds][region] → cumulative cents and counts per offset. */
  private readonly cents: Float64Array[][][] = [];
  private readonly counts: Float64Array[][][] = [];

  constructor(partitions: Sale[][]) {
    for (const sales of partitions) {
      const c = [0, 1].map(() => REGIONS.map(() => new Float64Array(sales.length + 1)));
      const n = [0, 1].map(() => REGIONS.map(() => new Float64Array(sales.length + 1)));
      sales.forEach((s, i) => {
        for (let l = 0; l < 2; l++) {
          for (let r = 0; r < REGIONS.length; r++) {
            const counted = REGIONS[r] === s.region && (l === 0 || !s.refund);
            c[l][r][i + 1] = c[l][r][i] + (counted ? s.cents : 0);
            n[l][r][i + 1] = n[l][r][i] + (counted ? 1 : 0);
          }
        }
      });
      this.cents.push(c);
      this.counts.push(n);
    }
  }

  /** The rows a version with `excludeRefunds` logic shows after folding each partition up to `offsets`. */
  rows(excludeRefunds: boolean, offsets: number[]): { region: string; cents: number; n: number }[] {
    const l = excludeRefunds ? 1 : 0;
    return REGIONS.map((region, r) => ({
      region,
      cents: offsets.reduce((s, o, p) => s + this.cents[p][l][r][o], 0),
      n: offsets.reduce((s, o, p) => s + this.counts[p][l][r][o], 0),
    }))
      .filter((row) => row.n > 0)
      .sort((a, b) => (a.region < b.region ? -1 : 1));
  }
}

async function readAll(log: FileLog): Promise<Sale[][]> {
  const out: Sale[][] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const sales: Sale[] = [];
    for await (const batch of log.read('sales', p, 0))
      for (const r of batch.records()) sales.push(JSON.parse(r.value!.toString()) as Sale);
    out.push(sales);
  }
  return out;
}

const sales = salesSource();

/**
 * A reader thread: in one read transaction (one snapshot), the live version, its checkpoints and
 * the public view's rows; as fast as it can until told to stop.
 */
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true, timeout: 5000 });
const live = db.prepare("SELECT version FROM kappa_views WHERE name = 'totals' AND state = 'live'");
const cps = db.prepare('SELECT "partition" AS p, "offset" AS o FROM kappa_checkpoints WHERE view = ? AND version = ? ORDER BY "partition"');
const rows = db.prepare('SELECT region, cents, n FROM totals ORDER BY region');
const snapshot = db.transaction(() => {
  const version = live.get().version;
  return { version, offsets: cps.all('totals', version).map((c) => c.o), rows: rows.all() };
});
let stop = false;
parentPort.on('message', () => (stop = true));
const answers = [];
let errors = [];
(function loop() {
  for (let i = 0; i < 50; i++) {
    try {
      answers.push(snapshot());
    } catch (err) {
      errors.push(String(err && err.message));
    }
  }
  if (stop) parentPort.postMessage({ answers, errors });
  else setImmediate(loop);
})();
`;

interface Answer {
  version: number;
  offsets: number[];
  rows: { region: string; cents: number; n: number }[];
}

async function until(what: string, cond: () => Promise<boolean> | boolean, engine: Engine, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 10))]);
  }
}

async function ends(log: FileLog): Promise<number[]> {
  return Promise.all(Array.from({ length: PARTITIONS }, async (_, p) => (await log.offsets('sales', p)).end));
}

/** True once version `version` is live and its checkpoints are at the end of the log. */
async function liveAtHead(store: ViewStore, log: FileLog, version: number): Promise<boolean> {
  const v = (await store.versions()).find((x) => x.name === 'totals' && x.version === version);
  if (v?.state !== 'live') return false;
  const cps = await store.checkpoints('totals', version);
  const e = await ends(log);
  return cps.length === PARTITIONS && cps.every((c) => c.offset === e[c.partition]);
}

test(
  'a logic change rebuilds beside the live version; readers see complete versions only; rollback restores the old logic',
  { timeout: 180_000 },
  async (t) => {
    const { root, dir } = tempDataProject(t, 'kappa-replay-');
    const dbPath = join(dir, 'views.db');
    const fileA = join(root, 'a.config.ts');
    const fileB = join(root, 'b.config.ts');
    writeFileSync(fileA, config(false));
    writeFileSync(fileB, config(true));
    const log = await openFileLog({ dir, logger: quiet });
    let store = await openSqliteStore({ path: dbPath });
    const engineOpts = {
      log,
      logger: quiet,
      workers: 2,
      flushIntervalMs: 20,
      progressIntervalMs: 50,
      readBytesMax: 32 * 1024,
    };
    try {
      await log.createTopic('sales', { partitions: PARTITIONS });
      for (let i = 0; i < FIRST_EVENTS; i += 10_000) await log.append('sales', sales(10_000));

      // Version 1: every sale counts.
      const a = new Engine({ ...engineOpts, store, control: store, app: await loadApp(fileA), configPath: fileA });
      await a.start();
      await until('version 1 is live at the head', () => liveAtHead(store, log, 1), a);
      await a.stop();
      const v1Before = (await store.checkpoints('totals', 1)).map((c) => c.offset);
      assert.ok((await store.code('totals', 1))?.includes('sales'), 'version 1 keeps its code');

      // The logic changes while sales keep arriving; a reader queries all along.
      const reader = new Worker(READER, { eval: true, workerData: { sqlite: SQLITE, path: dbPath } });
      const readerDone = new Promise<{ answers: Answer[]; errors: string[] }>((resolve, reject) => {
        reader.once('message', resolve);
        reader.once('error', reject);
      });
      let producing = true;
      const producer = (async () => {
        while (producing) {
          await log.append('sales', sales(300));
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const b = new Engine({ ...engineOpts, store, control: store, app: await loadApp(fileB), configPath: fileB });
      let sawProgress = false;
      let bStopped = false;
      try {
        try {
          await b.start();
          assert.deepEqual(
            b.builds().map((x) => [x.version, x.reason]),
            [[2, 'logic changed']],
          );
          await until(
            'version 2 is live',
            async () => {
              sawProgress ||= (await store.builds()).some(
                (x) => x.version === 2 && x.offsetsDone > 0 && x.offsetsDone < x.offsetsTotal,
              );
              return (await store.versions()).some((v) => v.version === 2 && v.state === 'live');
            },
            b,
          );
          await new Promise((r) => setTimeout(r, 300)); // more sales after the swap
        } finally {
          producing = false;
          await producer;
        }
        await until('version 2 is at the head', () => liveAtHead(store, log, 2), b);
        reader.postMessage('stop');
        const { answers, errors } = await readerDone;
        await reader.terminate();

        const oracle = new Oracle(await readAll(log));
        assert.deepEqual(errors, [], 'no query failed');
        assert.ok(answers.length >= 2000, `the reader queried ${answers.length} times`);
        const byVersion = new Map<number, number>();
        let v1KeptUp = false;
        for (const ans of answers) {
          byVersion.set(ans.version, (byVersion.get(ans.version) ?? 0) + 1);
          assert.equal(ans.offsets.length, PARTITIONS);
          assert.deepEqual(
            ans.rows,
            oracle.rows(ans.version === 2, ans.offsets),
            `answer of version ${ans.version} at offsets ${ans.offsets} is that version's complete fold`,
          );
          if (ans.version === 1 && ans.offsets.some((o, p) => o > v1Before[p])) v1KeptUp = true;
        }
        assert.ok(
          (byVersion.get(1) ?? 0) > 0 && (byVersion.get(2) ?? 0) > 0,
          `answers of both versions: ${JSON.stringify([...byVersion])}`,
        );
        assert.ok(v1KeptUp, 'version 1 folded new sales while version 2 was building');
        assert.ok(sawProgress, 'the build reported its progress in the store');
        const e = await ends(log);
        assert.ok(e.reduce((s, x) => s + x, 0) > FIRST_EVENTS, 'sales arrived during the build');
        assert.deepEqual(
          (await store.query('SELECT region, cents, n FROM totals ORDER BY region')).rows,
          oracle.rows(true, e),
          'v2 is the fold of the new logic over the whole log',
        );
        assert.deepEqual(
          (await store.versions()).map((v) => [v.version, v.state]),
          [
            [1, 'retired'],
            [2, 'live'],
          ],
        );

        // Rollback, asked from "another process" (another store connection), while sales arrive.
        const other = await openSqliteStore({ path: dbPath });
        const id = await other.addRequest('totals', 'rollback', null);
        await log.append('sales', sales(5000));
        await until('the rollback request is answered', async () => (await other.request(id))?.state === 'done', b);
        assert.match((await other.request(id))!.message!, /version 1/);
        await other.close();
        await until('version 1 is live again at the head', () => liveAtHead(store, log, 1), b);
        await b.stop();
        bStopped = true;
      } finally {
        if (!bStopped) {
          reader.terminate();
          await b.stop().catch(() => {});
        }
      }
      const afterRollback = new Oracle(await readAll(log));
      assert.deepEqual(
        (await store.query('SELECT region, cents, n FROM totals ORDER BY region')).rows,
        afterRollback.rows(false, await ends(log)),
        "the old logic's results, caught up to the head",
      );

      // A restart with the changed config keeps the rolled-back version; it keeps up from its stored code.
      await store.close();
      store = await openSqliteStore({ path: dbPath });
      const c = new Engine({ ...engineOpts, store, control: store, app: await loadApp(fileB), configPath: fileB });
      await c.start();
      try {
        assert.deepEqual(c.builds(), [], 'no rebuild after a rollback');
        await log.append('sales', sales(3000));
        await until('version 1 is at the head', () => liveAtHead(store, log, 1), c);
      } finally {
        await c.stop();
      }
      const final = new Oracle(await readAll(log));
      assert.deepEqual(
        (await store.query('SELECT region, cents, n FROM totals ORDER BY region')).rows,
        final.rows(false, await ends(log)),
      );
      assert.deepEqual(
        (await store.versions()).map((v) => [v.version, v.state]),
        [
          [1, 'live'],
          [2, 'retired'],
        ],
      );
    } finally {
      await store.close();
      await log.close();
    }
  },
);
