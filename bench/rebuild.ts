/**
 * `npm run bench -- rebuild [--sizes N,N,...] [--events N] [--rounds N]`
 * (BENCH_CPU_PROF=<dir> writes a CPU profile of every run, workers included, into <dir>.)
 *
 * Rebuilding a view, Kappa's way against a Lambda architecture's batch layer, on the same events, at
 * several log sizes. For each size, that many sales events of about 100 bytes of JSON, the same as
 * bench/process.ts's, are written to a 4-partition topic of the FileLog and, value for value, to a
 * JSON Lines file (bench/lib/sales-events.ts). Neither write is timed.
 *
 * Sizes: by default 1,000,000, 10,000,000 and 30,000,000 events, run one after the other, smallest
 * first; each size's files are deleted before the next size's are written (30M events is about
 * 3.6 GB of log and 3 GB of JSON Lines under os.tmpdir()). `--sizes` chooses the sizes
 * (comma-separated); `--events N` (also BENCH_EVENTS) runs the one size N.
 *
 *  - Kappa: the engine builds the `region_day` view (sum of amounts and count per region × day:
 *    6 regions over 7 days, plus an eighth day for the few events of the last minute that their
 *    time jitter carries past midnight) from offset 0 of the log into a fresh SQLite store, with
 *    one worker thread per core (`kappa start`'s default), until every task's committed checkpoint
 *    reaches the end of its partition. This runs in a process of its own (bench/lib/process-run.ts),
 *    which reports the time and its peak RSS (worker threads included). events/s = events / time.
 *    The time includes starting the worker threads, as a real rebuild's does, so at small sizes it
 *    is mostly start-up: only large runs say anything about the rate. The threads' code is the
 *    config bundled on top of Kappa's own code, which is bundled once and kept between runs
 *    (src/stream/worker-runtime.ts), as it is between two `kappa start`s: the first run after
 *    Kappa's sources changed (or on a fresh machine) bundles it too, 150-190 ms more.
 *  - DuckDB: the same aggregation in SQL over the JSON Lines file with read_ndjson, the batch job a
 *    Lambda architecture would run over its master dataset, with as many threads as the engine has
 *    workers. Also a process of its own (bench/lib/rebuild-duckdb.ts). The time runs from the
 *    query's submission until its rows are in JavaScript, so it includes reading and parsing the
 *    whole file. DuckDB is given the topic's column types, as a batch job would declare them.
 *
 * Targets: Kappa's rebuild takes at most 2 × DuckDB's time at 10M and at 30M events (when neither
 * size is run, at the largest size run; smaller sizes are reported, not judged, as their times are
 * largely start-up). Linearity: a rebuild's cost must grow linearly with the log, so its events/s
 * must hold as the log grows; the bench reports events/s at the largest size as a fraction of
 * events/s at the next size down (by default 30M against 10M: 1.00 means exactly linear, below 1
 * means the cost grows faster than the log). Both sides read files the bench has just written, so
 * both read from the page cache (at 30M that needs some 7 GB of free memory). DuckDB's rows must
 * equal the exact totals kept while the events were generated, else the bench fails. The engine run
 * deletes its SQLite file when it ends and reports only the view's row count, so on the Kappa side
 * only the number of rows is checked against those totals. With `--rounds N` both sides run N times
 * per size, alternating, and the fastest run of each counts (noise on this shared machine only ever
 * slows a run down). Everything is written under one directory in os.tmpdir(), deleted at the end,
 * even on failure.
 *
 * Last-line JSON: the keys without a size in their name (`ratio_vs_duckdb`, `events_per_s`,
 * `rebuild_s`, `duckdb_s`, ...) describe the 10M size, or the largest size run when 10M is not
 * among them; per size, `events_per_s_<size>`, `duckdb_events_per_s_<size>` and
 * `ratio_vs_duckdb_<size>` (size as `1m`, `10m`, `30m`, `40k`, ...); `linearity_<big>_vs_<small>`
 * (Kappa) and `duckdb_linearity_<big>_vs_<small>`; `judged_sizes` and `targets_met` over them. The
 * report across sizes is in bench/lib/rebuild-sizes.ts.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openFileLog } from '../src/log/index.ts';
import {
  BenchUsageError,
  type Figure,
  formatCount,
  formatMBps,
  formatMiB,
  nowMs,
  peakRssBytes,
} from './lib/harness.ts';
import type { RunFigures, RunRequest } from './lib/process-run.ts';
import type { DuckFigures, DuckRequest } from './lib/rebuild-duckdb.ts';
import {
  type Run,
  type SizeResult,
  TARGET_RATIO_VS_DUCKDB_MAX,
  judgedSizes,
  perS,
  printLinearity,
  printSizesTable,
  printTargets,
  ratioOf,
  round2,
  sizeLabel,
} from './lib/rebuild-sizes.ts';
import {
  BATCH_RECORDS,
  DAY_MS,
  type OracleRow,
  PARTITIONS,
  TOPIC,
  diffRows,
  sortRows,
  writeEvents,
} from './lib/sales-events.ts';

export const description =
  'rebuilding a region × day view from offset 0 of the log at 1M, 10M and 30M events, against DuckDB over the same events as JSON Lines';

const SIZES_DEFAULT = [1_000_000, 10_000_000, 30_000_000];
/** The size the keys without a size in their name describe, when it is run. */
const HEADLINE_SIZE = 10_000_000;
const VIEW = 'region_day';
const FLUSH_INTERVAL_MS = 500;
/** Lines of a mismatch shown before the bench fails. */
const DIFF_LINES_MAX = 10;

const SRC = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));
const ENGINE_RUN_SCRIPT = fileURLToPath(new URL('./lib/process-run.ts', import.meta.url));
const DUCKDB_RUN_SCRIPT = fileURLToPath(new URL('./lib/rebuild-duckdb.ts', import.meta.url));

/** The bench's app: workers import this file, so it is written to disk. Its view is process.ts's `region_day`. */
const CONFIG = `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ orderId: Type.String(), sku: Type.String(), region: Type.String(), qty: Type.Integer(), amount: Type.Number(), ts: Type.Integer() });
const sales = topic(${JSON.stringify(TOPIC)}, { partitions: ${PARTITIONS}, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts });
export default defineApp({
  topics: [sales],
  views: [
    view(${JSON.stringify(VIEW)}, from(sales).groupBy((s) => ({ region: s.region, day: Math.floor(s.ts / ${DAY_MS}) })).aggregate({ amount: sum((s) => s.amount), orders: count() })),
  ],
});
`;

/** The same view as a batch query. `//` is DuckDB's integer division, which floors like Math.floor for positive times. */
function duckdbSql(jsonlPath: string): string {
  const columns = `{orderId: 'VARCHAR', sku: 'VARCHAR', region: 'VARCHAR', qty: 'INTEGER', amount: 'DOUBLE', ts: 'BIGINT'}`;
  return (
    `SELECT region, ts // ${DAY_MS} AS day, sum(amount) AS amount, count(*) AS orders` +
    ` FROM read_ndjson('${jsonlPath.replaceAll("'", "''")}', columns = ${columns})` +
    ` GROUP BY ALL`
  );
}

interface Options {
  /** Event counts, ascending, no repeats. */
  sizes: number[];
  rounds: number;
}

/** Where a size's runs happen: the files shared by every size, and the workers. */
interface Setup {
  root: string;
  configPath: string;
  workers: number;
  rounds: number;
}

const quiet = { info() {}, warn() {} };

export async function run(args: string[]): Promise<Record<string, Figure>> {
  const opts = parseOptions(args);
  const workers = availableParallelism();
  const root = mkdtempSync(join(tmpdir(), 'kappa-bench-rebuild-'));
  const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    removeRoot();
    process.exit(130);
  });
  console.log(
    `rebuild bench: ${opts.sizes.map(formatCount).join(', ')} sales events (~100-byte JSON) in ${PARTITIONS} partitions; the ${VIEW} view built from offset 0 with ${workers} worker${workers === 1 ? '' : 's'},` +
      ` against DuckDB with ${workers} thread${workers === 1 ? '' : 's'} over the same events as JSON Lines; ${availableParallelism()} cores; in ${root}\n`,
  );
  try {
    const configPath = join(root, 'kappa.config.ts');
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(configPath, CONFIG);
    const setup: Setup = { root, configPath, workers, rounds: opts.rounds };
    const results: SizeResult[] = [];
    for (const [i, events] of opts.sizes.entries()) {
      console.log(`size ${i + 1} of ${opts.sizes.length}: ${formatCount(events)} events`);
      results.push(await measureSize(setup, events));
    }
    return report(opts, workers, results);
  } finally {
    removeRoot();
  }
}

/** Writes `events` events, rebuilds and queries them `rounds` times each, then deletes that size's files. */
async function measureSize(setup: Setup, events: number): Promise<SizeResult> {
  const dir = join(setup.root, `events-${events}`);
  mkdirSync(dir);
  try {
    const dataDir = join(dir, 'data');
    const jsonlPath = join(dir, 'sales.jsonl');
    const t0 = nowMs();
    const log = await openFileLog({ dir: dataDir, fsync: 'never', logger: quiet });
    let oracle: OracleRow[];
    try {
      oracle = await writeEvents(log, events, jsonlPath);
    } finally {
      await log.close();
    }
    const logBytes = treeBytes(dataDir);
    const jsonlBytes = statSync(jsonlPath).size;
    console.log(
      `  wrote ${formatCount(events)} events in ${((nowMs() - t0) / 1000).toFixed(1)} s: ${formatMBps(logBytes)} MB of log, ${formatMBps(jsonlBytes)} MB of JSON Lines; ${oracle.length} region × day groups`,
    );
    const engineReq: RunRequest = {
      dataDir,
      dbPath: join(dir, `${VIEW}.db`),
      configPath: setup.configPath,
      topic: TOPIC,
      view: VIEW,
      workers: setup.workers,
      flushIntervalMs: FLUSH_INTERVAL_MS,
    };
    const duckReq: DuckRequest = { sql: duckdbSql(jsonlPath), threads: setup.workers };
    const kappaRuns: Run[] = [];
    const duckRuns: Run[] = [];
    let version = '';
    for (let round = 0; round < setup.rounds; round++) {
      kappaRuns.push(await runKappa(engineReq, events, oracle));
      const d = await runDuck(duckReq, events, oracle);
      version = d.version;
      duckRuns.push(d.run);
    }
    console.log('');
    return { events, kappa: fastest(kappaRuns), duck: fastest(duckRuns), version, logBytes, jsonlBytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One engine rebuild; its row count must equal the oracle's. */
async function runKappa(req: RunRequest, events: number, oracle: OracleRow[]): Promise<Run> {
  const k = await runChild<RunFigures>(ENGINE_RUN_SCRIPT, req, `the engine's rebuild of ${VIEW}`);
  if (k.events !== events)
    throw new Error(`invariant: the engine found ${k.events} events in the log, the bench wrote ${events}`);
  if (k.rows !== oracle.length)
    throw new Error(
      `Kappa's ${VIEW} view has ${k.rows} rows; the events written have ${oracle.length} region × day groups.`,
    );
  console.log(
    `  Kappa rebuild: ${(k.ms / 1000).toFixed(2)} s, ${formatCount((events / k.ms) * 1000)} events/s, peak RSS ${formatMiB(k.maxRssBytes)}`,
  );
  return { ms: k.ms, rssPeakBytes: k.maxRssBytes, rows: k.rows };
}

/** One DuckDB query; its rows must equal the oracle's totals. */
async function runDuck(req: DuckRequest, events: number, oracle: OracleRow[]): Promise<{ run: Run; version: string }> {
  const d = await runChild<DuckFigures>(DUCKDB_RUN_SCRIPT, req, 'the DuckDB query');
  const diffs = diffRows(sortRows(d.rows), oracle);
  if (diffs.length > 0) {
    throw new Error(
      `DuckDB's region × day totals differ from the events written (${diffs.length} difference${diffs.length === 1 ? '' : 's'}):\n  ` +
        diffs.slice(0, DIFF_LINES_MAX).join('\n  '),
    );
  }
  console.log(
    `  DuckDB ${d.version}: ${(d.ms / 1000).toFixed(2)} s, ${formatCount((events / d.ms) * 1000)} events/s, peak RSS ${formatMiB(d.maxRssBytes)}`,
  );
  return { run: { ms: d.ms, rssPeakBytes: d.maxRssBytes, rows: d.rows.length }, version: d.version };
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: { events: { type: 'string' }, sizes: { type: 'string' }, rounds: { type: 'string' } },
  });
  if (values.events !== undefined && values.sizes !== undefined)
    throw new BenchUsageError('Give either --events N (one size) or --sizes N,N,... (several sizes), not both.');
  const minimum = BATCH_RECORDS * PARTITIONS;
  let sizes = SIZES_DEFAULT;
  if (values.sizes !== undefined) {
    sizes = values.sizes.split(',').map((s) => Number(s.trim()));
    if (sizes.some((n) => !Number.isSafeInteger(n) || n < minimum)) {
      throw new BenchUsageError(
        `--sizes must be whole numbers of events, each at least ${minimum}, separated by commas (e.g. 1000000,10000000); got "${values.sizes}".`,
      );
    }
  } else {
    const raw = values.events ?? process.env.BENCH_EVENTS;
    if (raw !== undefined) sizes = [Number(raw)];
    if (!Number.isSafeInteger(sizes[0]) || sizes[0] < minimum) {
      throw new BenchUsageError(
        `--events (or BENCH_EVENTS) must be a whole number of at least ${minimum}; got ${raw}.`,
      );
    }
  }
  const rounds = Number(values.rounds ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new BenchUsageError(`--rounds must be a whole number of at least 1, not "${values.rounds}".`);
  return { sizes: [...new Set(sizes)].sort((a, b) => a - b), rounds };
}

/** Runs `script` in a process of its own (so its peak RSS is its alone) and returns the JSON line it prints last. */
function runChild<T>(script: string, req: object, what: string): Promise<T> {
  // BENCH_CPU_PROF=<dir>: profile each run (Kappa's main thread and workers, DuckDB's JavaScript side) into <dir>.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...prof, '--import', 'tsx', script, JSON.stringify(req)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${what} failed (exit ${code}): ${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as T);
    });
  });
}

function fastest(runs: Run[]): Run {
  return runs.reduce((a, b) => (b.ms < a.ms ? b : a));
}

/** Bytes of every file under `dir`. */
function treeBytes(dir: string): number {
  let bytes = 0;
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = statSync(join(dir, name));
    if (st.isFile()) bytes += st.size;
  }
  return bytes;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function report(opts: Options, workers: number, results: SizeResult[]): Record<string, Figure> {
  printSizesTable(workers, results);
  // The size the figures without a size in their name describe.
  const h = results.find((r) => r.events === HEADLINE_SIZE) ?? results[results.length - 1];
  console.log(
    `\nAt ${formatCount(h.events)} events Kappa's rebuild takes ${ratioOf(h).toFixed(2)} × DuckDB's time (${(h.kappa.ms / 1000).toFixed(2)} s against ${(h.duck.ms / 1000).toFixed(2)} s). DuckDB's totals equal the events' exact totals at every size;` +
      ` Kappa's view has the same number of rows (its values are not read back: the engine run deletes its store).` +
      ` Peak RSS is each run's whole process; the bench's own process: ${formatMiB(peakRssBytes())}.`,
  );
  if (h.events !== HEADLINE_SIZE) {
    console.log(
      `${formatCount(HEADLINE_SIZE)} events is not among the sizes run, so the JSON figures without a size in their name (ratio_vs_duckdb, events_per_s, rebuild_s, duckdb_s, ...) describe the largest size run, ${formatCount(h.events)} events.`,
    );
  }
  const linearity = printLinearity(results);
  const judged = judgedSizes(results);
  const met = printTargets(results, judged);
  const figures: Record<string, Figure> = {
    ...headlineFigures(opts, workers, h),
    sizes: results.map((r) => sizeLabel(r.events)).join(','),
  };
  for (const r of results) {
    const label = sizeLabel(r.events);
    figures[`events_per_s_${label}`] = Math.round(perS(r, r.kappa));
    figures[`duckdb_events_per_s_${label}`] = Math.round(perS(r, r.duck));
    figures[`ratio_vs_duckdb_${label}`] = round2(ratioOf(r));
  }
  Object.assign(figures, linearity, {
    judged_sizes: judged.map((r) => sizeLabel(r.events)).join(','),
    bench_process_peak_rss_mb: Math.round(peakRssBytes() / (1 << 20)),
    targets_met: met,
  });
  return figures;
}

/** The figures the bench reported before it ran several sizes, for one size. */
function headlineFigures(opts: Options, workers: number, h: SizeResult): Record<string, Figure> {
  return {
    events: h.events,
    partitions: PARTITIONS,
    cores: availableParallelism(),
    workers,
    rounds: opts.rounds,
    duckdb_version: h.version,
    log_bytes: h.logBytes,
    jsonl_bytes: h.jsonlBytes,
    rows: h.kappa.rows,
    rebuild_s: round3(h.kappa.ms / 1000),
    events_per_s: Math.round(perS(h, h.kappa)),
    peak_rss_mb: Math.round(h.kappa.rssPeakBytes / (1 << 20)),
    duckdb_s: round3(h.duck.ms / 1000),
    duckdb_events_per_s: Math.round(perS(h, h.duck)),
    duckdb_peak_rss_mb: Math.round(h.duck.rssPeakBytes / (1 << 20)),
    ratio_vs_duckdb: round2(ratioOf(h)),
    target_ratio_vs_duckdb_max: TARGET_RATIO_VS_DUCKDB_MAX,
    duckdb_matches_events: true,
  };
}
