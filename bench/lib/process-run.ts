/**
 * One engine run of the process bench (bench/process.ts), in a process of its own so that its
 * peak RSS is the engine's alone (worker threads included), not the bench's data generation and
 * decode loop. Builds one view of the bench's config from offset 0 into a fresh SQLite store and
 * prints one JSON line (`RunFigures`) on stdout.
 *
 *   node --import tsx bench/lib/process-run.ts <json: RunRequest>
 */
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openFileLog } from '../../src/log/index.ts';
import { type AppDef, Engine, loadApp } from '../../src/stream/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';

export interface RunRequest {
  dataDir: string;
  dbPath: string;
  configPath: string;
  topic: string;
  view: string;
  workers: number;
  flushIntervalMs: number;
}

export interface RunFigures {
  ms: number;
  /** Until every task had moved to its worker thread; null if that never happened before the end. */
  movedMs: number | null;
  /** Events folded by then. */
  movedEvents: number;
  events: number;
  /** Share of the run the engine's own thread was busy (event-loop utilisation). */
  mainBusy: number;
  /** CPU time of the whole process (all threads) / wall time. */
  cores: number;
  /** process.resourceUsage().maxRSS, in bytes: the whole process, worker threads included. */
  maxRssBytes: number;
  rows: number;
}

const quiet = { info() {}, warn() {} };

async function main(req: RunRequest): Promise<RunFigures> {
  const full = await loadApp(req.configPath);
  const app: AppDef = { ...full, views: full.views.filter((v) => v.name === req.view), outputs: [] };
  const log = await openFileLog({ dir: req.dataDir, fsync: 'never', logger: quiet });
  const store = await openSqliteStore({ path: req.dbPath });
  const info = await log.topic(req.topic);
  const ends: number[] = [];
  for (let p = 0; p < info.partitions; p++) ends.push((await log.offsets(req.topic, p)).end);
  const events = ends.reduce((s, e) => s + e, 0);
  const engine = new Engine({
    log,
    store,
    control: store,
    app,
    logger: quiet,
    workers: req.workers,
    configPath: req.configPath,
    flushIntervalMs: req.flushIntervalMs,
  });
  try {
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await engine.start();
    let moved: { ms: number; events: number } | null = req.workers === 0 ? { ms: 0, events: 0 } : null;
    for (;;) {
      const status = engine.status();
      if (moved === null && status.every((t) => t.worker !== null))
        moved = { ms: performance.now() - t0, events: status.reduce((s, t) => s + t.eventsProcessed, 0) };
      if (status.every((t) => t.committedOffset >= ends[t.partition])) break;
      await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 5))]);
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const processed = engine.status().reduce((s, t) => s + t.eventsProcessed, 0);
    if (processed !== events)
      throw new Error(`invariant: the engine folded ${processed} events, the log holds ${events}`);
    await engine.stop();
    const rows = (await store.query(`SELECT count(*) AS n FROM ${req.view}`)).rows[0].n as number;
    return {
      ms,
      movedMs: moved?.ms ?? null,
      movedEvents: moved?.events ?? events,
      events,
      mainBusy: elu.utilization,
      cores: (cpu.user + cpu.system) / 1000 / ms,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      rows,
    };
  } finally {
    await engine.close();
    await store.close();
    await log.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${req.dbPath}${suffix}`, { force: true });
  }
}

process.stdout.write(JSON.stringify(await main(JSON.parse(process.argv[2]) as RunRequest)) + '\n');
