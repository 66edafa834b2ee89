/**
 * One query run of the nexmark bench (bench/nexmark.ts), in a process of its own as in
 * bench/lib/formats-rebuild.ts: the config's one output pipeline (`from(nexmark)....to(topic)`) or
 * view of that name, run from offset 0 of the log with a fresh SQLite store, timed from the engine's
 * start (worker threads included) until every task's committed checkpoint reaches the end of its
 * partition. Prints one JSON line (`QueryFigures`; for a view, the answers of SQL checks over it). The output topic stays in the log for the bench to check; the store is deleted.
 *
 *   node --import tsx bench/lib/nexmark-run.ts <json: QueryRequest>
 */
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openFileLog } from '../../src/log/index.ts';
import { type AppDef, Engine, loadApp } from '../../src/stream/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';

export interface QueryRequest {
  dataDir: string;
  dbPath: string;
  configPath: string;
  topic: string;
  /** The output pipeline's (or view's) name. */
  output: string;
  /** For a view: SQL queries over it, each answering one row `{ n, s }`, reported as they answer. */
  checks?: string[];
  workers: number;
  flushIntervalMs: number;
}

export interface QueryFigures {
  ms: number;
  events: number;
  /** CPU time of the whole process (all threads), in ms. */
  cpuMs: number;
  maxRssBytes: number;
  /** For a view: the answers of the request's `checks`. */
  view?: { n: number; s: number }[];
}

const quiet = { info() {}, warn() {} };

async function main(req: QueryRequest): Promise<QueryFigures> {
  const full = await loadApp(req.configPath);
  const app: AppDef = {
    ...full,
    views: full.views.filter((v) => v.name === req.output),
    outputs: full.outputs.filter((o) => o.name === req.output),
  };
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
    // q3 and q4 hold a broadcast table of 200,000 persons or 600,000 auctions in every worker thread.
    workerHeapMb: 2048,
  });
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await engine.start();
    for (;;) {
      const mine = engine.status().filter((t) => t.topic === req.topic && t.view === req.output);
      if (mine.length === info.partitions && mine.every((t) => t.committedOffset >= ends[t.partition])) break;
      await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 5))]);
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const processed = engine
      .status()
      .filter((t) => t.view === req.output)
      .reduce((s, t) => s + t.eventsProcessed, 0);
    if (processed !== events)
      throw new Error(`invariant: the engine read ${processed} events, the log holds ${events}`);
    await engine.stop();
    const figures: QueryFigures = {
      ms,
      events,
      cpuMs: (cpu.user + cpu.system) / 1000,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    if (req.checks === undefined) return figures;
    const view: { n: number; s: number }[] = [];
    for (const sql of req.checks) {
      const [row] = (await store.query(sql)).rows as { n: number; s: number }[];
      view.push({ n: row.n, s: row.s });
    }
    return { ...figures, view };
  } finally {
    await engine.close();
    await store.close();
    await log.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${req.dbPath}${suffix}`, { force: true });
  }
}

process.stdout.write(JSON.stringify(await main(JSON.parse(process.argv[2]) as QueryRequest)) + '\n');
