/**
 * `npm run bench -- rebuild [--events N] [--rounds N]`
 * (BENCH_CPU_PROF=<dir> writes a CPU profile of every run, workers included, into <dir>.)
 *
 * Rebuilding a view, Kappa's way against a Lambda architecture's batch layer, on the same events.
 * `--events` sales events of about 100 bytes of JSON (default 10,000,000; also BENCH_EVENTS), the
 * same as bench/process.ts's, are written to a 4-partition topic of the FileLog and, value for
 * value, to a JSON Lines file (bench/lib/sales-events.ts). Neither write is timed.
 *
 *  - Kappa: the engine builds the `region_day` view (sum of amounts and count per region × day:
 *    6 regions over 7 days, plus an eighth day for the few events of the last minute that their
 *    time jitter carries past midnight) from offset 0 of the log into a fresh SQLite store, with
 *    one worker thread per core (`kappa start`'s default), until every task's committed checkpoint
 *    reaches the end of its partition. This runs in a process of its own (bench/lib/process-run.ts),
 *    which reports the time and its peak RSS (worker threads included). events/s = events / time.
 *    The time includes starting the worker threads, as a real rebuild's does, so at small
 *    `--events` it is mostly start-up: only large runs say anything about the rate.
 *  - DuckDB: the same aggregation in SQL over the JSON Lines file with read_ndjson, the batch job a
 *    Lambda architecture would run over its master dataset, with as many threads as the engine has
 *    workers. Also a process of its own (bench/lib/rebuild-duckdb.ts). The time runs from the
 *    query's submission until its rows are in JavaScript, so it includes reading and parsing the
 *    whole file. DuckDB is given the topic's column types, as a batch job would declare them.
 *
 * Target: Kappa's rebuild takes at most 2 × DuckDB's time. Both sides read files the bench has just
 * written, so both read from the page cache. DuckDB's rows must equal the exact totals kept while
 * the events were generated, else the bench fails. The engine run deletes its SQLite file when it
 * ends and reports only the view's row count, so on the Kappa side only the number of rows is
 * checked against those totals. With `--rounds N` both sides run N times, alternating, and the
 * fastest run of each counts (noise on this shared machine only ever slows a run down).
 * Everything is written under one directory in os.tmpdir(), deleted at the end, even on failure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  formatTable,
  nowMs,
  peakRssBytes,
} from './lib/harness.ts';
import type { RunFigures, RunRequest } from './lib/process-run.ts';
import type { DuckFigures, DuckRequest } from './lib/rebuild-duckdb.ts';
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
  'rebuilding a region × day view from offset 0 of the log, against DuckDB over the same events as JSON Lines';

const EVENTS_DEFAULT = 10_000_000;
const VIEW = 'region_day';
const FLUSH_INTERVAL_MS = 500;
const TARGET_RATIO_VS_DUCKDB_MAX = 2;
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
  events: number;
  rounds: number;
}

interface Run {
  ms: number;
  rssPeakBytes: number;
  rows: number;
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
    `rebuild bench: ${formatCount(opts.events)} sales events (~100-byte JSON) in ${PARTITIONS} partitions; the ${VIEW} view built from offset 0 with ${workers} worker${workers === 1 ? '' : 's'},` +
      ` against DuckDB with ${workers} thread${workers === 1 ? '' : 's'} over the same events as JSON Lines; ${availableParallelism()} cores; in ${root}\n`,
  );
  try {
    const configPath = join(root, 'kappa.config.ts');
    const dataDir = join(root, 'data');
    const jsonlPath = join(root, 'sales.jsonl');
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(configPath, CONFIG);
    const t0 = nowMs();
    const log = await openFileLog({ dir: dataDir, fsync: 'never', logger: quiet });
    let oracle: OracleRow[];
    try {
      oracle = await writeEvents(log, opts.events, jsonlPath);
    } finally {
      await log.close();
    }
    const logBytes = treeBytes(dataDir);
    const jsonlBytes = statSync(jsonlPath).size;
    console.log(
      `wrote ${formatCount(opts.events)} events in ${((nowMs() - t0) / 1000).toFixed(1)} s: ${formatMBps(logBytes)} MB of log, ${formatMBps(jsonlBytes)} MB of JSON Lines; ${oracle.length} region × day groups\n`,
    );

    const engineReq: RunRequest = {
      dataDir,
      dbPath: join(root, `${VIEW}.db`),
      configPath,
      topic: TOPIC,
      view: VIEW,
      workers,
      flushIntervalMs: FLUSH_INTERVAL_MS,
    };
    const duckReq: DuckRequest = { sql: duckdbSql(jsonlPath), threads: workers };
    const kappaRuns: Run[] = [];
    const duckRuns: Run[] = [];
    let version = '';
    for (let round = 0; round < opts.rounds; round++) {
      const k = await runChild<RunFigures>(ENGINE_RUN_SCRIPT, engineReq, `the engine's rebuild of ${VIEW}`);
      if (k.events !== opts.events)
        throw new Error(`invariant: the engine found ${k.events} events in the log, the bench wrote ${opts.events}`);
      if (k.rows !== oracle.length)
        throw new Error(
          `Kappa's ${VIEW} view has ${k.rows} rows; the events written have ${oracle.length} region × day groups.`,
        );
      kappaRuns.push({ ms: k.ms, rssPeakBytes: k.maxRssBytes, rows: k.rows });
      console.log(
        `  Kappa rebuild: ${(k.ms / 1000).toFixed(2)} s, ${formatCount((opts.events / k.ms) * 1000)} events/s, peak RSS ${formatMiB(k.maxRssBytes)}`,
      );

      const d = await runChild<DuckFigures>(DUCKDB_RUN_SCRIPT, duckReq, 'the DuckDB query');
      const diffs = diffRows(sortRows(d.rows), oracle);
      if (diffs.length > 0) {
        throw new Error(
          `DuckDB's region × day totals differ from the events written (${diffs.length} difference${diffs.length === 1 ? '' : 's'}):\n  ` +
            diffs.slice(0, DIFF_LINES_MAX).join('\n  '),
        );
      }
      version = d.version;
      duckRuns.push({ ms: d.ms, rssPeakBytes: d.maxRssBytes, rows: d.rows.length });
      console.log(
        `  DuckDB ${d.version}: ${(d.ms / 1000).toFixed(2)} s, ${formatCount((opts.events / d.ms) * 1000)} events/s, peak RSS ${formatMiB(d.maxRssBytes)}`,
      );
    }
    return report(opts, workers, fastest(kappaRuns), fastest(duckRuns), version, logBytes, jsonlBytes);
  } finally {
    removeRoot();
  }
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({ args, options: { events: { type: 'string' }, rounds: { type: 'string' } } });
  const raw = values.events ?? process.env.BENCH_EVENTS;
  const events = raw === undefined ? EVENTS_DEFAULT : Number(raw);
  if (!Number.isSafeInteger(events) || events < BATCH_RECORDS * PARTITIONS) {
    throw new BenchUsageError(
      `--events (or BENCH_EVENTS) must be a whole number of at least ${BATCH_RECORDS * PARTITIONS}; got ${raw}.`,
    );
  }
  const rounds = Number(values.rounds ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new BenchUsageError(`--rounds must be a whole number of at least 1, not "${values.rounds}".`);
  return { events, rounds };
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

function report(
  opts: Options,
  workers: number,
  kappa: Run,
  duck: Run,
  version: string,
  logBytes: number,
  jsonlBytes: number,
): Record<string, Figure> {
  const kappaS = kappa.ms / 1000;
  const duckS = duck.ms / 1000;
  const ratio = kappaS / duckS;
  const perS = (run: Run): number => (opts.events / run.ms) * 1000;
  const mbPerS = (bytes: number, run: Run): string => formatMBps((bytes / run.ms) * 1000);
  console.log('');
  console.log(
    formatTable(
      ['system', 'reads', 'seconds', 'events/s', 'MB/s read', 'peak RSS', 'rows'],
      [
        [
          `Kappa: engine, ${workers} worker${workers === 1 ? '' : 's'}`,
          `log, ${formatMBps(logBytes)} MB`,
          kappaS.toFixed(2),
          formatCount(perS(kappa)),
          mbPerS(logBytes, kappa),
          formatMiB(kappa.rssPeakBytes),
          String(kappa.rows),
        ],
        [
          `DuckDB ${version}, ${workers} thread${workers === 1 ? '' : 's'}`,
          `JSON Lines, ${formatMBps(jsonlBytes)} MB`,
          duckS.toFixed(2),
          formatCount(perS(duck)),
          mbPerS(jsonlBytes, duck),
          formatMiB(duck.rssPeakBytes),
          String(duck.rows),
        ],
      ],
    ),
  );
  console.log(
    `\nKappa's rebuild takes ${ratio.toFixed(2)} × DuckDB's time (${kappaS.toFixed(2)} s against ${duckS.toFixed(2)} s). DuckDB's totals equal the events' exact totals;` +
      ` Kappa's view has the same number of rows (its values are not read back: the engine run deletes its store).` +
      ` Peak RSS is each run's whole process; the bench's own process: ${formatMiB(peakRssBytes())}.`,
  );
  const met = ratio <= TARGET_RATIO_VS_DUCKDB_MAX;
  console.log('');
  console.log(
    formatTable(
      ['target', 'measured', 'result'],
      [
        [
          `Kappa rebuild ≤ ${TARGET_RATIO_VS_DUCKDB_MAX} × DuckDB's time`,
          `${ratio.toFixed(2)} ×`,
          met ? 'met' : 'MISSED',
        ],
      ],
    ),
  );
  return {
    events: opts.events,
    partitions: PARTITIONS,
    cores: availableParallelism(),
    workers,
    rounds: opts.rounds,
    duckdb_version: version,
    log_bytes: logBytes,
    jsonl_bytes: jsonlBytes,
    rows: kappa.rows,
    rebuild_s: round3(kappaS),
    events_per_s: Math.round(perS(kappa)),
    peak_rss_mb: Math.round(kappa.rssPeakBytes / (1 << 20)),
    duckdb_s: round3(duckS),
    duckdb_events_per_s: Math.round(perS(duck)),
    duckdb_peak_rss_mb: Math.round(duck.rssPeakBytes / (1 << 20)),
    ratio_vs_duckdb: Math.round(ratio * 100) / 100,
    target_ratio_vs_duckdb_max: TARGET_RATIO_VS_DUCKDB_MAX,
    duckdb_matches_events: true,
    bench_process_peak_rss_mb: Math.round(peakRssBytes() / (1 << 20)),
    targets_met: met,
  };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
