/**
 * One rebuild of the formats bench (bench/formats.ts), in a process of its own as in
 * bench/lib/process-run.ts: the config's one view built from offset 0 of the log into a fresh
 * SQLite store, timed from the engine's start (worker threads, and for a topic with a format its
 * schema's registration) until every task's committed checkpoint reaches the end of its partition.
 * Unlike process-run.ts it reads the view's rows back before deleting the store, so the bench can
 * check every total, not only the number of rows. Prints one JSON line (`RebuildFigures`).
 *
 *   node --import tsx bench/lib/formats-rebuild.ts <json: RebuildRequest>
 */
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openFileLog } from '../../src/log/index.ts';
import { type AppDef, Engine, loadApp } from '../../src/stream/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import type { RegionDayRow } from './sales-events.ts';

export interface RebuildRequest {
  dataDir: string;
  dbPath: string;
  configPath: string;
  topic: string;
  /** A view selecting region, day, amount and orders. */
  view: string;
  workers: number;
  flushIntervalMs: number;
}

export interface RebuildFigures {
  ms: number;
  /** Until every task had moved to its worker thread (start-up), and the events folded by then; 0 and 0 without workers. */
  startMs: number;
  startEvents: number;
  events: number;
  /** CPU time of the whole process (all threads) / wall time. */
  cores: number;
  /** process.resourceUsage().maxRSS, in bytes: the whole process, worker threads included. */
  maxRssBytes: number;
  rows: RegionDayRow[];
}

const quiet = { info() {}, warn() {} };

async function main(req: RebuildRequest): Promise<RebuildFigures> {
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
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await engine.start();
    let started: { ms: number; events: number } | null = req.workers === 0 ? { ms: 0, events: 0 } : null;
    for (;;) {
      const status = engine.status();
      if (started === null && status.every((t) => t.worker !== null))
        started = { ms: performance.now() - t0, events: status.reduce((s, t) => s + t.eventsProcessed, 0) };
      if (status.every((t) => t.topic !== req.topic || t.committedOffset >= ends[t.partition])) break;
      await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 5))]);
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const processed = engine.status().reduce((s, t) => s + t.eventsProcessed, 0);
    if (processed !== events)
      throw new Error(`invariant: the engine folded ${processed} events, the log holds ${events}`);
    await engine.stop();
    const rows = (await store.query(`SELECT region, day, amount, orders FROM ${req.view}`))
      .rows as unknown as RegionDayRow[];
    return {
      ms,
      startMs: started?.ms ?? ms,
      startEvents: started?.events ?? events,
      events,
      cores: (cpu.user + cpu.system) / 1000 / ms,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      rows: rows.map((r) => ({ region: r.region, day: Number(r.day), amount: r.amount, orders: Number(r.orders) })),
    };
  } finally {
    await engine.close();
    await store.close();
    await log.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${req.dbPath}${suffix}`, { force: true });
  }
}

process.stdout.write(JSON.stringify(await main(JSON.parse(process.argv[2]) as RebuildRequest)) + '\n');
