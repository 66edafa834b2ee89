/**
 * `npm run bench -- formats [--events N] [--decode-records N] [--rounds N] [--rebuild-rounds N]`
 *
 * Record formats (issue 17): what reading a topic's records costs in each format, in one run.
 *
 *  1. Decode + validate on one thread. `--decode-records` distinct sales (default 200,000; the
 *     sales of bench/lib/sales-events.ts, six fields, about 100 bytes as JSON) are encoded once in
 *     each format and laid end to end in one buffer per format, as a batch holds them. Then each
 *     decoder reads every record, as the engine's fold would:
 *       - JSON: today's path, `valueDecoder(topic)` with bench/rebuild.ts's TypeBox schema, on the
 *         record's byte range (the flat-object decoder, then the schema check);
 *       - Avro: `avroDecoder(reader)` on `encodeAvro(id, schema, sale)` values, the writer schema
 *         looked up by `(id) => schema`; the record's bytes are a subarray of the batch buffer,
 *         since the decoder takes a Uint8Array (that subarray is part of the time);
 *       - Protobuf: `protobufDecoder(reader, 'Sale')` on `encodeProtobuf(id, schema, 'Sale', sale)`
 *         values, the same way.
 *     Every decoded value is first checked equal to the sale it was made from (not timed). A round
 *     runs each decoder over all the records once, in a rotating order; the fastest of `--rounds`
 *     rounds (default 15) counts, after one untimed warm-up pass each.
 *  2. Rebuild. `--events` sales (default 5,000,000; also BENCH_EVENTS; 0 skips this part) are
 *     written to two FileLogs: as JSON by bench/lib/sales-events.ts (the rebuild bench's log), and
 *     as Avro in the Confluent wire format, the writer schema registered under `sales-value` in the
 *     log's own schema registry first. The engine (one worker per core, as `kappa start`) then
 *     rebuilds `region_day` from offset 0 of each into a fresh SQLite store, in a process of its own
 *     (bench/lib/formats-rebuild.ts), the JSON topic declared with `schema:` and the Avro one with
 *     `format: avro(…)`. The view's rows are checked against the exact totals kept while writing.
 *     `--rebuild-rounds` (default 3) alternates the two; the fastest of each counts. Also reported:
 *     each rebuild's CPU time (all threads, least of the rounds) and its rate once every task is on
 *     its worker thread, steadier than wall time when other work shares the machine.
 *
 * BENCH_CPU_PROF=<dir> writes a CPU profile of every rebuild, workers included, into <dir>.
 *
 * Targets: Avro and Protobuf decode ≥ 1.5 × the JSON path's rate; the Avro rebuild ≥ 1.3 × faster
 * than the JSON one (rebuild_avro_vs_json_ratio = JSON's time / Avro's time). Everything is
 * written under one directory in os.tmpdir(), deleted at the end, even on failure.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openFileLog } from '../src/log/index.ts';
import { CODECS, encodeAvro, parseAvroSchema } from '../src/formats/index.ts';
import { Registry } from '../src/registry/index.ts';
import { runDecodeBench, type DecodeResult } from './lib/formats-decode.ts';
import type { RebuildFigures, RebuildRequest } from './lib/formats-rebuild.ts';
import { SALE_AVSC, SALE_TYPEBOX_SOURCE, writeSales } from './lib/formats-sales.ts';
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
import { BATCH_RECORDS, DAY_MS, type OracleRow, PARTITIONS, TOPIC, diffRows, writeEvents } from './lib/sales-events.ts';

export const description =
  'decoding the sales record as JSON, Avro and Protobuf on one thread, and rebuilding region_day from Avro against JSON';

const EVENTS_DEFAULT = 5_000_000;
const DECODE_RECORDS_DEFAULT = 200_000;
const DECODE_ROUNDS_DEFAULT = 15;
const REBUILD_ROUNDS_DEFAULT = 3;
const TARGET_DECODE_RATIO_MIN = 1.5;
const TARGET_REBUILD_RATIO_MIN = 1.3;
const VIEW = 'region_day';
const SUBJECT = `${TOPIC}-value`;
const FLUSH_INTERVAL_MS = 500;
const DIFF_LINES_MAX = 10;

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SRC = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const REBUILD_SCRIPT = fileURLToPath(new URL('./lib/formats-rebuild.ts', import.meta.url));

type Format = 'json' | 'avro';

/** The region_day view of bench/rebuild.ts over a topic declared by `topicOptions`. */
function config(imports: string, preamble: string, topicOptions: string): string {
  return `
import { ${imports}, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
${preamble}
const sales = topic(${JSON.stringify(TOPIC)}, { partitions: ${PARTITIONS}, ${topicOptions}, key: (s) => s.orderId, time: (s) => s.ts });
export default defineApp({
  topics: [sales],
  views: [
    view(${JSON.stringify(VIEW)}, from(sales).groupBy((s) => ({ region: s.region, day: Math.floor(s.ts / ${DAY_MS}) })).aggregate({ amount: sum((s) => s.amount), orders: count() })),
  ],
});
`;
}

const CONFIGS: Record<Format, string> = {
  json: config('Type', `const Sale = ${SALE_TYPEBOX_SOURCE};`, 'schema: Sale'),
  avro: config(
    'avro',
    'interface Sale { orderId: string; sku: string; region: string; qty: number; amount: number; ts: number }',
    `format: avro<Sale>(${JSON.stringify(SALE_AVSC)})`,
  ),
};

interface Options {
  events: number;
  decodeRecords: number;
  rounds: number;
  rebuildRounds: number;
}

interface RebuildResult {
  ms: number;
  worstMs: number;
  /** The least CPU time (all threads) any round used: less sensitive than wall time to other work on the machine. */
  cpuMs: number;
  /** The best rate once every task was on its worker thread: the fold without start-up. */
  steadyPerS: number;
  /** Start-up (until every task was on its worker) in the fastest round. */
  startMs: number;
  rssPeakBytes: number;
  logBytes: number;
}

/** Why the Avro rebuild cannot run, or null when it can: it needs the topic option `format`. */
async function avroTopicsMissing(): Promise<string | null> {
  const api = (await import('../src/index.ts')) as Record<string, unknown>;
  return typeof api.avro === 'function'
    ? null
    : "this version of Kappa has no `avro` topic format to declare (import { avro } from 'kappa')";
}

export async function run(args: string[]): Promise<Record<string, Figure>> {
  const opts = parseOptions(args);
  const workers = availableParallelism();
  console.log(
    `formats bench: decode + validate of ${formatCount(opts.decodeRecords)} sales per format on one thread (best of ${opts.rounds} rounds);` +
      (opts.events === 0
        ? ' no rebuild (--events 0).\n'
        : ` the ${VIEW} view rebuilt from ${formatCount(opts.events)} events stored as JSON and as Avro, ${workers} worker${workers === 1 ? '' : 's'} (best of ${opts.rebuildRounds}); ${availableParallelism()} cores, load average ${loadavg()[0].toFixed(1)}.\n`),
  );
  const decode = runDecodeBench(opts.decodeRecords, opts.rounds);
  if (opts.events === 0) return report(opts, workers, decode, null, 'skipped: --events 0');
  const missing = await avroTopicsMissing();
  const rebuild = await rebuildBench(opts, workers, missing === null);
  return report(opts, workers, decode, rebuild, missing === null ? null : `skipped: ${missing}`);
}

/** Writes the logs and rebuilds from each; the Avro side only when `withAvro`. */
async function rebuildBench(opts: Options, workers: number, withAvro: boolean): Promise<Map<Format, RebuildResult>> {
  const root = mkdtempSync(join(tmpdir(), 'kappa-bench-formats-'));
  const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
  const onSigint = (): void => {
    removeRoot();
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  const formats: Format[] = withAvro ? ['json', 'avro'] : ['json'];
  try {
    const oracles = new Map<Format, OracleRow[]>();
    const requests = new Map<Format, RebuildRequest>();
    const logBytes = new Map<Format, number>();
    for (const format of formats) {
      const dir = join(root, format);
      mkdirSync(dir);
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
      writeFileSync(join(dir, 'kappa.config.ts'), CONFIGS[format]);
      const dataDir = join(dir, 'data');
      const t0 = nowMs();
      oracles.set(format, await writeLog(format, dataDir, opts.events));
      logBytes.set(format, treeBytes(dataDir));
      console.log(
        `wrote ${formatCount(opts.events)} events as ${format === 'json' ? 'JSON' : 'Avro'} in ${((nowMs() - t0) / 1000).toFixed(1)} s: ${formatMBps(logBytes.get(format)!)} MB of log`,
      );
      requests.set(format, {
        dataDir,
        dbPath: join(dir, `${VIEW}.db`),
        configPath: join(dir, 'kappa.config.ts'),
        topic: TOPIC,
        view: VIEW,
        workers,
        flushIntervalMs: FLUSH_INTERVAL_MS,
      });
    }
    if (withAvro && JSON.stringify(oracles.get('avro')) !== JSON.stringify(oracles.get('json')))
      throw new Error('invariant: the Avro log and the JSON log hold different sales');
    console.log('');
    const runs = new Map<Format, RebuildFigures[]>(formats.map((f) => [f, []]));
    for (let round = 0; round < opts.rebuildRounds; round++) {
      for (const format of formats) {
        const r = await runChild<RebuildFigures>(REBUILD_SCRIPT, requests.get(format)!, `the ${format} rebuild`);
        checkRebuild(format, r, opts.events, oracles.get(format)!);
        runs.get(format)!.push(r);
        console.log(
          `  ${format === 'json' ? 'JSON' : 'Avro'} rebuild: ${(r.ms / 1000).toFixed(2)} s, ${formatCount((opts.events / r.ms) * 1000)} events/s, ${r.cores.toFixed(2)} cores busy, peak RSS ${formatMiB(r.maxRssBytes)}`,
        );
      }
    }
    return new Map(
      formats.map((f) => {
        const ms = runs.get(f)!.map((r) => r.ms);
        const best = runs.get(f)!.reduce((a, b) => (b.ms < a.ms ? b : a));
        return [
          f,
          {
            ms: best.ms,
            worstMs: Math.max(...ms),
            cpuMs: Math.min(...runs.get(f)!.map((r) => r.cores * r.ms)),
            steadyPerS: Math.max(...runs.get(f)!.map((r) => ((r.events - r.startEvents) / (r.ms - r.startMs)) * 1000)),
            startMs: best.startMs,
            rssPeakBytes: best.maxRssBytes,
            logBytes: logBytes.get(f)!,
          },
        ];
      }),
    );
  } finally {
    process.removeListener('SIGINT', onSigint);
    removeRoot();
  }
}

/** Writes `events` sales to a new FileLog in `dataDir` in `format`; returns their exact totals. */
async function writeLog(format: Format, dataDir: string, events: number): Promise<OracleRow[]> {
  const log = await openFileLog({ dir: dataDir, fsync: 'never', logger: { info() {}, warn() {} } });
  try {
    if (format === 'json') return await writeEvents(log, events);
    // As a Confluent producer would: register the schema, then frame every value with its id. The
    // engine registers the topic's schema under the same subject when it starts, and gets this id.
    const registry = await Registry.open({ log, codecs: CODECS });
    const { id } = await registry.register(SUBJECT, { schemaType: 'AVRO', schema: SALE_AVSC, references: [] });
    const schema = parseAvroSchema(SALE_AVSC);
    return await writeSales(log, events, (sale) => encodeAvro(id, schema, sale));
  } finally {
    await log.close();
  }
}

function checkRebuild(format: Format, r: RebuildFigures, events: number, oracle: OracleRow[]): void {
  if (r.events !== events)
    throw new Error(`invariant: the engine found ${r.events} events in the ${format} log, the bench wrote ${events}`);
  const diffs = diffRows(r.rows, oracle);
  if (diffs.length > 0) {
    throw new Error(
      `The ${VIEW} view rebuilt from the ${format} log differs from the events written (${diffs.length} difference${diffs.length === 1 ? '' : 's'}):\n  ` +
        diffs.slice(0, DIFF_LINES_MAX).join('\n  '),
    );
  }
}

/** Runs `script` in a process of its own (so its peak RSS is its alone) and returns the JSON line it prints last. */
function runChild<T>(script: string, req: object, what: string): Promise<T> {
  // BENCH_CPU_PROF=<dir>: profile each rebuild (the engine's thread and its workers) into <dir>.
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

/** Bytes of every file under `dir`. */
function treeBytes(dir: string): number {
  let bytes = 0;
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = statSync(join(dir, name));
    if (st.isFile()) bytes += st.size;
  }
  return bytes;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: 'string' },
      'decode-records': { type: 'string' },
      rounds: { type: 'string' },
      'rebuild-rounds': { type: 'string' },
    },
  });
  const raw = values.events ?? process.env.BENCH_EVENTS;
  const events = raw === undefined ? EVENTS_DEFAULT : Number(raw);
  if (!Number.isSafeInteger(events) || (events !== 0 && events < BATCH_RECORDS * PARTITIONS)) {
    throw new BenchUsageError(
      `--events (or BENCH_EVENTS) must be 0 (no rebuild) or a whole number of at least ${BATCH_RECORDS * PARTITIONS}; got ${raw}.`,
    );
  }
  const whole = (name: string, value: string | undefined, fallback: number, min: number): number => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isSafeInteger(n) || n < min)
      throw new BenchUsageError(`--${name} must be a whole number of at least ${min}, not "${value}".`);
    return n;
  };
  return {
    events,
    decodeRecords: whole('decode-records', values['decode-records'], DECODE_RECORDS_DEFAULT, 1000),
    rounds: whole('rounds', values.rounds, DECODE_ROUNDS_DEFAULT, 1),
    rebuildRounds: whole('rebuild-rounds', values['rebuild-rounds'], REBUILD_ROUNDS_DEFAULT, 1),
  };
}

function report(
  opts: Options,
  workers: number,
  decode: DecodeResult,
  rebuild: Map<Format, RebuildResult> | null,
  avroSkipped: string | null,
): Record<string, Figure> {
  const avroRatio = decode.avro.perS / decode.json.perS;
  const protobufRatio = decode.protobuf.perS / decode.json.perS;
  console.log('');
  console.log(
    formatTable(
      ['decode + validate, 1 thread', 'bytes/record', 'records/s (best)', 'records/s (worst)', '× JSON'],
      (['json', 'avro', 'protobuf'] as const).map((f) => [
        {
          json: 'JSON (flat decoder + TypeBox check)',
          avro: 'Avro (avroDecoder)',
          protobuf: 'Protobuf (protobufDecoder)',
        }[f],
        decode[f].bytesPerRecord.toFixed(1),
        formatCount(decode[f].perS),
        formatCount(decode[f].worstPerS),
        (decode[f].perS / decode.json.perS).toFixed(2),
      ]),
    ),
  );
  console.log(
    `\nAvro decodes at ${avroRatio.toFixed(2)} × the JSON path's rate, Protobuf at ${protobufRatio.toFixed(2)} × (${formatCount(opts.decodeRecords)} records, every decoded value checked equal to its sale first).`,
  );
  const json = rebuild?.get('json');
  const avro = rebuild?.get('avro');
  const perS = (r: RebuildResult): number => (opts.events / r.ms) * 1000;
  const rebuildRatio = json && avro ? json.ms / avro.ms : null;
  const cpuRatio = json && avro ? json.cpuMs / avro.cpuMs : null;
  const steadyRatio = json && avro ? avro.steadyPerS / json.steadyPerS : null;
  if (rebuild !== null) {
    console.log('');
    console.log(
      formatTable(
        [
          'rebuild of region_day',
          'log MB',
          'seconds (best)',
          'seconds (worst)',
          'events/s',
          'start-up s',
          'events/s after start-up (best)',
          'CPU s (least)',
          'peak RSS',
        ],
        [...rebuild].map(([f, r]) => [
          f === 'json' ? 'JSON topic (schema:)' : 'Avro topic (format: avro)',
          formatMBps(r.logBytes),
          (r.ms / 1000).toFixed(2),
          (r.worstMs / 1000).toFixed(2),
          formatCount(perS(r)),
          (r.startMs / 1000).toFixed(2),
          formatCount(r.steadyPerS),
          (r.cpuMs / 1000).toFixed(2),
          formatMiB(r.rssPeakBytes),
        ]),
      ),
    );
  }
  if (rebuildRatio !== null)
    console.log(
      `\nThe Avro rebuild is ${rebuildRatio.toFixed(2)} × as fast as the JSON one (fastest rounds); in CPU time (all threads, least of the rounds) the JSON rebuild costs ${cpuRatio!.toFixed(2)} × the Avro one; after start-up (worker threads up) Avro folds ${steadyRatio!.toFixed(2)} × as fast; both views equal the exact totals.` +
        ` Wall time is what the target is about; CPU time is the steadier figure when other work shares the machine (load average now: ${loadavg()[0].toFixed(1)}).`,
    );
  if (avroSkipped !== null) console.log(`\nThe Avro rebuild was ${avroSkipped}.`);
  const decodeMet = avroRatio >= TARGET_DECODE_RATIO_MIN && protobufRatio >= TARGET_DECODE_RATIO_MIN;
  const rebuildMet = rebuildRatio !== null && rebuildRatio >= TARGET_REBUILD_RATIO_MIN;
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  console.log('');
  console.log(
    formatTable(
      ['target', 'measured', 'result'],
      [
        [
          `Avro decode ≥ ${TARGET_DECODE_RATIO_MIN} × JSON`,
          `${avroRatio.toFixed(2)} ×`,
          verdict(avroRatio >= TARGET_DECODE_RATIO_MIN),
        ],
        [
          `Protobuf decode ≥ ${TARGET_DECODE_RATIO_MIN} × JSON`,
          `${protobufRatio.toFixed(2)} ×`,
          verdict(protobufRatio >= TARGET_DECODE_RATIO_MIN),
        ],
        [
          `Avro rebuild ≥ ${TARGET_REBUILD_RATIO_MIN} × as fast as JSON`,
          rebuildRatio === null ? 'not measured' : `${rebuildRatio.toFixed(3)} ×`,
          rebuildRatio === null ? 'NOT MEASURED' : verdict(rebuildMet),
        ],
      ],
    ),
  );
  const figures: Record<string, Figure> = {
    cores: availableParallelism(),
    decode_records: opts.decodeRecords,
    decode_rounds: opts.rounds,
    json_bytes_per_record: round1(decode.json.bytesPerRecord),
    avro_bytes_per_record: round1(decode.avro.bytesPerRecord),
    protobuf_bytes_per_record: round1(decode.protobuf.bytesPerRecord),
    json_decode_per_s: Math.round(decode.json.perS),
    avro_decode_per_s: Math.round(decode.avro.perS),
    protobuf_decode_per_s: Math.round(decode.protobuf.perS),
    avro_vs_json_decode_ratio: round2(avroRatio),
    protobuf_vs_json_decode_ratio: round2(protobufRatio),
    target_decode_ratio_min: TARGET_DECODE_RATIO_MIN,
    events: opts.events,
  };
  if (json) {
    Object.assign(figures, {
      workers,
      rebuild_rounds: opts.rebuildRounds,
      json_log_bytes: json.logBytes,
      json_rebuild_s: round3(json.ms / 1000),
      json_rebuild_events_per_s: Math.round(perS(json)),
      json_rebuild_cpu_s: round3(json.cpuMs / 1000),
      json_rebuild_startup_s: round3(json.startMs / 1000),
      json_rebuild_after_startup_events_per_s: Math.round(json.steadyPerS),
    });
  }
  if (avro) {
    Object.assign(figures, {
      avro_log_bytes: avro.logBytes,
      avro_rebuild_s: round3(avro.ms / 1000),
      avro_rebuild_events_per_s: Math.round(perS(avro)),
      avro_rebuild_cpu_s: round3(avro.cpuMs / 1000),
      avro_rebuild_startup_s: round3(avro.startMs / 1000),
      avro_rebuild_after_startup_events_per_s: Math.round(avro.steadyPerS),
    });
  }
  if (rebuildRatio !== null) {
    figures.rebuild_avro_vs_json_ratio = round3(rebuildRatio);
    figures.rebuild_cpu_json_vs_avro_ratio = round2(cpuRatio!);
    figures.rebuild_after_startup_avro_vs_json_ratio = round2(steadyRatio!);
  } else figures.avro_rebuild = avroSkipped ?? 'skipped';
  figures.target_rebuild_ratio_min = TARGET_REBUILD_RATIO_MIN;
  figures.load_avg_1m_end = round2(loadavg()[0]);
  figures.bench_process_peak_rss_mb = Math.round(peakRssBytes() / (1 << 20));
  figures.targets_met = decodeMet && rebuildMet;
  return figures;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
