/**
 * `npm run bench -- log [--records N] [--in-flight N] [--rounds N] [--appenders N] [--concurrent-records N]`
 *
 * The streaming layer (`src/log`, FileLog) against the disk it runs on, in one process:
 *
 *  1. Append with fsync `always`: one appender, batches of 1,000 records with 100-byte values, one
 *     partition, through `appendBatch`. The appender keeps up to `--in-flight` appends outstanding,
 *     as a Kafka producer does with max.in.flight, so that group commit has batches to coalesce.
 *     Peer: the same number of bytes written with plain `fs` writes of 1 MiB and one fsync per MiB.
 *  2. A full scan of what phase 1 wrote: every batch's CRC checked, every record decoded, values
 *     left as Buffers. Also a batches-only scan (CRC checked, records not decoded). Peer: plain
 *     1 MiB reads of the same segment files. Up to 3 rounds of each (`--rounds`); the figure is
 *     the fastest round, its slowest is `scan_records_per_s_worst`.
 *  3. Append with fsync `never`. Peer: the same bytes with plain writes and no fsync.
 *  4. `--appenders` concurrent appenders of 100-record batches with fsync `always`, each waiting for
 *     its ack before sending the next: how many acks each group-commit fsync covers.
 *
 * Each append phase alternates with its disk peer in `--rounds` rounds (log, then disk, then log, …)
 * instead of running one after the other, because a cloud disk's speed drifts within a run (burst
 * credits run out after a few GB): alternating makes both sides see the same disk.
 * fsyncs are counted by handing the log a wrapped `fs` (the `fs` option) whose fsync counts calls.
 * Everything is written under one directory in os.tmpdir(), deleted at the end, even on failure.
 */
import { randomBytes } from 'node:crypto';
import {
  type NoParamCallback,
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type EncodableRecord,
  type FileLog,
  type LogFs,
  defaultFs,
  encodeBatch,
  openFileLog,
} from '../src/log/index.ts';
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

export const description =
  'FileLog append (fsync always/never), full scan and concurrent group commit, against raw disk writes';

const RECORDS_DEFAULT = 5_000_000;
const VALUE_BYTES = 100;
const BATCH_RECORDS = 1000;
const IN_FLIGHT_DEFAULT = 8;
const ROUNDS_DEFAULT = 5;
const APPENDERS_DEFAULT = 8;
const CONCURRENT_BATCH_RECORDS = 100;
const CONCURRENT_RECORDS_DEFAULT = 1_000_000;
/** Distinct batches the appenders cycle through, so the encoder does not see one buffer over and over. */
const TEMPLATE_BATCHES = 8;
/** Full scans of the 5M records are ~1-2 s each: three rounds show the spread without doubling the run. */
const SCAN_ROUNDS_MAX = 3;
const DISK_CHUNK_BYTES = 1 << 20;
const TOPIC = 'bench';

const TARGET_APPEND_ALWAYS_RECORDS_PER_S = 1_500_000;
const TARGET_APPEND_VS_DISK_RATIO = 0.6;
const TARGET_SCAN_RECORDS_PER_S = 3_000_000;

interface Options {
  records: number;
  inFlight: number;
  rounds: number;
  appenders: number;
  concurrentRecords: number;
}

interface FsyncCounts {
  /** Asynchronous fsyncs: the group commits of fsync `always`. (Rolls, metadata and close use fsyncSync, not counted.) */
  fsync: number;
}

interface AppendResult {
  logMs: number;
  diskMs: number;
  /** The disk peer's speed in its slowest and fastest round: how much the disk drifted during the phase. */
  diskRoundBytesPerSMin: number;
  diskRoundBytesPerSMax: number;
  bytes: number;
  groupFsyncs: number;
}

export async function run(args: string[]): Promise<Record<string, Figure>> {
  const opts = parseOptions(args);
  const batches = opts.records / BATCH_RECORDS;
  const templates = makeTemplates(TEMPLATE_BATCHES, BATCH_RECORDS);
  const bytesPerBatch = encodeBatch(templates[0], { baseOffset: 0 }).length;
  const root = mkdtempSync(join(tmpdir(), 'kappa-bench-log-'));
  const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    removeRoot();
    process.exit(130);
  });

  console.log(
    `log bench: ${formatCount(opts.records)} records of ${VALUE_BYTES}-byte values (no key, no headers; ${(bytesPerBatch / BATCH_RECORDS).toFixed(1)} bytes each on disk),` +
      ` batches of ${formatCount(BATCH_RECORDS)}, one partition, in ${root}`,
  );
  console.log(
    `The single appender keeps up to ${opts.inFlight} appends in flight (like a Kafka producer's max.in.flight) so group commit can coalesce them;` +
      ` log and disk alternate in ${opts.rounds} rounds so both see the same disk.\n`,
  );

  try {
    const counts: FsyncCounts = { fsync: 0 };
    const fs = countingFs(counts);

    // Phases 1 and 2: append with fsync `always`, then scan what was written.
    const alwaysLog = await openFileLog({ dir: join(root, 'always'), fsync: 'always', fs });
    await alwaysLog.createTopic(TOPIC, { partitions: 1 });
    const always = await appendAlternating(
      alwaysLog,
      join(root, 'disk-fsync.raw'),
      true,
      templates,
      batches,
      opts,
      counts,
    );
    checkStoredBytes(join(root, 'always'), batches * bytesPerBatch);
    const { scanDecoded, scanBatches, readMs } = await scanRounds(
      alwaysLog,
      join(root, 'always', 'topics', TOPIC, '0'),
      opts,
    );
    await alwaysLog.close();

    // Phase 3: append with fsync `never`.
    const neverLog = await openFileLog({ dir: join(root, 'never'), fsync: 'never', fs });
    await neverLog.createTopic(TOPIC, { partitions: 1 });
    const never = await appendAlternating(
      neverLog,
      join(root, 'disk-nofsync.raw'),
      false,
      templates,
      batches,
      opts,
      counts,
    );
    await neverLog.close();

    // Phase 4: concurrent appenders, fsync `always`.
    const concurrentLog = await openFileLog({ dir: join(root, 'concurrent'), fsync: 'always', fs });
    await concurrentLog.createTopic(TOPIC, { partitions: 1 });
    const concurrent = await appendConcurrently(concurrentLog, opts, counts);
    await concurrentLog.close();

    return report(opts, bytesPerBatch, always, never, scanDecoded, scanBatches, readMs, concurrent);
  } finally {
    removeRoot();
  }
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      records: { type: 'string' },
      'in-flight': { type: 'string' },
      rounds: { type: 'string' },
      appenders: { type: 'string' },
      'concurrent-records': { type: 'string' },
    },
  });
  const records = positiveInt(
    '--records (or BENCH_RECORDS)',
    values.records ?? process.env.BENCH_RECORDS,
    RECORDS_DEFAULT,
  );
  if (records % BATCH_RECORDS !== 0)
    throw new BenchUsageError(`--records must be a multiple of the batch size ${BATCH_RECORDS}; got ${records}.`);
  const concurrentRecords = positiveInt(
    '--concurrent-records',
    values['concurrent-records'],
    Math.min(records, CONCURRENT_RECORDS_DEFAULT),
  );
  if (concurrentRecords % CONCURRENT_BATCH_RECORDS !== 0) {
    throw new BenchUsageError(
      `--concurrent-records must be a multiple of ${CONCURRENT_BATCH_RECORDS}; got ${concurrentRecords}.`,
    );
  }
  const rounds = positiveInt('--rounds', values.rounds, ROUNDS_DEFAULT);
  return {
    records,
    inFlight: positiveInt('--in-flight', values['in-flight'], IN_FLIGHT_DEFAULT),
    rounds: Math.min(rounds, records / BATCH_RECORDS),
    appenders: positiveInt('--appenders', values.appenders, APPENDERS_DEFAULT),
    concurrentRecords,
  };
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 1)
    throw new BenchUsageError(`${name} must be a positive whole number; got "${text}".`);
  return n;
}

/** Batches of `size` records, each with its own random 100-byte values, all stamped with the current time. */
function makeTemplates(count: number, size: number): EncodableRecord[][] {
  const timestamp = Date.now();
  const templates: EncodableRecord[][] = [];
  for (let t = 0; t < count; t++) {
    const values = randomBytes(size * VALUE_BYTES);
    const batch: EncodableRecord[] = [];
    for (let i = 0; i < size; i++)
      batch.push({ key: null, value: values.subarray(i * VALUE_BYTES, (i + 1) * VALUE_BYTES), timestamp });
    templates.push(batch);
  }
  return templates;
}

function countingFs(counts: FsyncCounts): LogFs {
  return {
    ...defaultFs,
    // The cast drops `fsync.__promisify__`, which the log never uses.
    fsync: ((fd: number, callback: NoParamCallback) => {
      counts.fsync++;
      defaultFs.fsync(fd, callback);
    }) as LogFs['fsync'],
  };
}

/**
 * Appends `batches` batches in `opts.rounds` rounds; after each round, writes the bytes that round
 * appended to a plain file (1 MiB writes, with `fsync` an fsync after each). Times both sides.
 */
async function appendAlternating(
  log: FileLog,
  diskPath: string,
  fsync: boolean,
  templates: EncodableRecord[][],
  batches: number,
  opts: Options,
  counts: FsyncCounts,
): Promise<AppendResult> {
  const bytesPerBatch = encodeBatch(templates[0], { baseOffset: 0 }).length;
  const disk = new DiskWriter(diskPath);
  const fsyncsBefore = counts.fsync;
  let logMs = 0;
  let diskMs = 0;
  let diskRoundBytesPerSMin = Infinity;
  let diskRoundBytesPerSMax = 0;
  let next = 0;
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const count = Math.floor((batches * (round + 1)) / opts.rounds) - next;
      const start = nowMs();
      await appendWindowed(log, templates, next, count, opts.inFlight);
      logMs += nowMs() - start;
      const roundMs = disk.write(count * bytesPerBatch, fsync);
      diskMs += roundMs;
      diskRoundBytesPerSMin = Math.min(diskRoundBytesPerSMin, (count * bytesPerBatch * 1000) / roundMs);
      diskRoundBytesPerSMax = Math.max(diskRoundBytesPerSMax, (count * bytesPerBatch * 1000) / roundMs);
      next += count;
    }
  } finally {
    disk.close();
  }
  return {
    logMs,
    diskMs,
    diskRoundBytesPerSMin,
    diskRoundBytesPerSMax,
    bytes: batches * bytesPerBatch,
    groupFsyncs: counts.fsync - fsyncsBefore,
  };
}

/** One producer with at most `inFlightMax` unacknowledged appends. Acks of one partition arrive in order. */
async function appendWindowed(
  log: FileLog,
  templates: EncodableRecord[][],
  first: number,
  count: number,
  inFlightMax: number,
): Promise<void> {
  const window: Promise<unknown>[] = [];
  for (let i = first; i < first + count; i++) {
    if (window.length >= inFlightMax) await window.shift();
    window.push(log.appendBatch(TOPIC, 0, templates[i % templates.length]));
  }
  await Promise.all(window);
}

/** The disk's own ceiling: plain sequential writes to one file, the way the log writes its segment. */
class DiskWriter {
  private readonly fd: number;
  private readonly chunk = randomBytes(DISK_CHUNK_BYTES);

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  /** Writes `bytes` in 1 MiB writes, with `fsync` an fsync after each; returns the time taken in ms. */
  write(bytes: number, fsync: boolean): number {
    const start = nowMs();
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, DISK_CHUNK_BYTES);
      for (let done = 0; done < n;) done += writeSync(this.fd, this.chunk, done, n - done);
      if (fsync) fsyncSync(this.fd);
      left -= n;
    }
    return nowMs() - start;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The bench's figures are only meaningful if the log stored exactly the bytes the disk peer wrote. */
function checkStoredBytes(dir: string, expected: number): void {
  const partitionDir = join(dir, 'topics', TOPIC, '0');
  let stored = 0;
  for (const f of readdirSync(partitionDir)) if (f.endsWith('.log')) stored += statSync(join(partitionDir, f)).size;
  if (stored !== expected) throw new Error(`the log stored ${stored} bytes but the bench expected ${expected}`);
}

/** One full scan of the partition; returns its time in ms. */
async function scan(log: FileLog, decode: boolean, expected: number): Promise<number> {
  const start = nowMs();
  let records = 0;
  let valueBytes = 0;
  for await (const batch of log.read(TOPIC, 0, 0)) {
    if (decode) {
      for (const r of batch.records()) {
        records++;
        valueBytes += r.value === null ? 0 : r.value.length;
      }
    } else records += batch.count;
  }
  const ms = nowMs() - start;
  if (records !== expected || (decode && valueBytes !== expected * VALUE_BYTES)) {
    throw new Error(`the scan read ${records} records (${valueBytes} value bytes); ${expected} were appended`);
  }
  return ms;
}

interface ScanResult {
  /** The fastest round's time, and the slowest's. */
  ms: number;
  worstMs: number;
}

/**
 * `opts.rounds` rounds (at most 3) of the two scans and the plain reads, one after the other, each
 * kept at its fastest round (the "best of the bench's rounds") and its slowest.
 */
async function scanRounds(
  log: FileLog,
  partitionDir: string,
  opts: Options,
): Promise<{ scanDecoded: ScanResult; scanBatches: ScanResult; readMs: number }> {
  const decoded: number[] = [];
  const batches: number[] = [];
  const reads: number[] = [];
  for (let round = 0; round < scanRoundCount(opts); round++) {
    decoded.push(await scan(log, true, opts.records));
    batches.push(await scan(log, false, opts.records));
    reads.push(readSegmentFiles(partitionDir));
  }
  const range = (ms: number[]): ScanResult => ({ ms: Math.min(...ms), worstMs: Math.max(...ms) });
  return { scanDecoded: range(decoded), scanBatches: range(batches), readMs: Math.min(...reads) };
}

const scanRoundCount = (opts: Options): number => Math.min(opts.rounds, SCAN_ROUNDS_MAX);

/** Reads the partition's segment files with plain 1 MiB reads: the ceiling for a scan (here mostly page cache). */
function readSegmentFiles(partitionDir: string): number {
  const buf = Buffer.allocUnsafe(DISK_CHUNK_BYTES);
  const start = nowMs();
  for (const f of readdirSync(partitionDir)) {
    if (!f.endsWith('.log')) continue;
    const fd = openSync(join(partitionDir, f), 'r');
    try {
      for (let pos = 0; ;) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) break;
        pos += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return nowMs() - start;
}

/** `opts.appenders` producers, each sending a 100-record batch and waiting for its ack before the next. */
async function appendConcurrently(
  log: FileLog,
  opts: Options,
  counts: FsyncCounts,
): Promise<{ ms: number; batches: number; groupFsyncs: number }> {
  const templates = makeTemplates(opts.appenders, CONCURRENT_BATCH_RECORDS);
  const batches = opts.concurrentRecords / CONCURRENT_BATCH_RECORDS;
  const fsyncsBefore = counts.fsync;
  const start = nowMs();
  await Promise.all(
    templates.map(async (template, a) => {
      const mine = Math.floor((batches * (a + 1)) / opts.appenders) - Math.floor((batches * a) / opts.appenders);
      for (let i = 0; i < mine; i++) await log.appendBatch(TOPIC, 0, template);
    }),
  );
  return { ms: nowMs() - start, batches, groupFsyncs: counts.fsync - fsyncsBefore };
}

function report(
  opts: Options,
  bytesPerBatch: number,
  always: AppendResult,
  never: AppendResult,
  scanDecoded: ScanResult,
  scanBatches: ScanResult,
  readMs: number,
  concurrent: { ms: number; batches: number; groupFsyncs: number },
): Record<string, Figure> {
  const batches = opts.records / BATCH_RECORDS;
  const perS = (n: number, ms: number): number => (n * 1000) / ms;
  const bytes = always.bytes;
  const appendAlways = perS(opts.records, always.logMs);
  const appendNever = perS(opts.records, never.logMs);
  const scanRecords = perS(opts.records, scanDecoded.ms);
  const scanRecordsWorst = perS(opts.records, scanDecoded.worstMs);
  const scanBatchRecords = perS(opts.records, scanBatches.ms);
  const diskBytes = perS(bytes, always.diskMs);
  const diskNoFsyncBytes = perS(bytes, never.diskMs);
  const readBytes = perS(bytes, readMs);
  const concurrentRecords = perS(opts.concurrentRecords, concurrent.ms);
  const concurrentBytesPerBatch = encodeBatch(makeTemplates(1, CONCURRENT_BATCH_RECORDS)[0], { baseOffset: 0 }).length;
  const acksPerFsync = concurrent.batches / concurrent.groupFsyncs;
  const ratioAlways = perS(bytes, always.logMs) / diskBytes;
  const ratioNever = perS(bytes, never.logMs) / diskNoFsyncBytes;
  const ratioScan = perS(bytes, scanDecoded.ms) / readBytes;

  const row = (
    phase: string,
    records: number | null,
    bytesPerS: number,
    perFsync: number | null,
    ms: number,
  ): string[] => [
    phase,
    records === null ? '-' : formatCount(records),
    formatMBps(bytesPerS),
    perFsync === null ? '-' : perFsync.toFixed(1),
    (ms / 1000).toFixed(2),
  ];
  console.log(
    formatTable(
      ['phase', 'records/s', 'MB/s', 'batches/fsync', 'seconds'],
      [
        row(
          `append, fsync always (≤ ${opts.inFlight} in flight)`,
          appendAlways,
          perS(bytes, always.logMs),
          batches / always.groupFsyncs,
          always.logMs,
        ),
        row('  disk: 1 MiB writes + fsync each', null, diskBytes, 1, always.diskMs),
        row(
          `append, fsync never (≤ ${opts.inFlight} in flight)`,
          appendNever,
          perS(bytes, never.logMs),
          null,
          never.logMs,
        ),
        row('  disk: 1 MiB writes, no fsync', null, diskNoFsyncBytes, null, never.diskMs),
        row(
          `scan: CRC + decode, values as bytes (best of ${scanRoundCount(opts)})`,
          scanRecords,
          perS(bytes, scanDecoded.ms),
          null,
          scanDecoded.ms,
        ),
        row(
          `scan: CRC only, batches not decoded (best of ${scanRoundCount(opts)})`,
          scanBatchRecords,
          perS(bytes, scanBatches.ms),
          null,
          scanBatches.ms,
        ),
        row('  disk: 1 MiB reads of the segments (page cache)', null, readBytes, null, readMs),
        row(
          `${opts.appenders} appenders × ${CONCURRENT_BATCH_RECORDS}-record batches, always`,
          concurrentRecords,
          perS(concurrent.batches * concurrentBytesPerBatch, concurrent.ms),
          acksPerFsync,
          concurrent.ms,
        ),
      ],
    ),
  );

  console.log(
    `\nThe disk's speed drifted between rounds: ${formatMBps(always.diskRoundBytesPerSMin)}-${formatMBps(always.diskRoundBytesPerSMax)} MB/s with fsync,` +
      ` ${formatMBps(never.diskRoundBytesPerSMin)}-${formatMBps(never.diskRoundBytesPerSMax)} MB/s without; compare ratios across runs, not absolute figures.\n`,
  );
  console.log(
    formatTable(
      ['ratio', 'value'],
      [
        ['append always / disk with fsync (bytes/s)', ratioAlways.toFixed(2)],
        ['append never / disk without fsync (bytes/s)', ratioNever.toFixed(2)],
        ['scan with decode / plain reads (bytes/s)', ratioScan.toFixed(2)],
        [
          `acks per fsync / appenders (1.00 = every appender in every fsync)`,
          (acksPerFsync / opts.appenders).toFixed(2),
        ],
      ],
    ),
  );

  const targets = [
    {
      name: `append always ≥ ${formatCount(TARGET_APPEND_ALWAYS_RECORDS_PER_S)} records/s`,
      value: formatCount(appendAlways),
      met: appendAlways >= TARGET_APPEND_ALWAYS_RECORDS_PER_S,
    },
    {
      name: `append always ≥ ${TARGET_APPEND_VS_DISK_RATIO} × disk with fsync`,
      value: ratioAlways.toFixed(2),
      met: ratioAlways >= TARGET_APPEND_VS_DISK_RATIO,
    },
    {
      name: `scan ≥ ${formatCount(TARGET_SCAN_RECORDS_PER_S)} records/s`,
      value: `${formatCount(scanRecords)} (worst ${formatCount(scanRecordsWorst)})`,
      met: scanRecords >= TARGET_SCAN_RECORDS_PER_S,
    },
  ];
  console.log('');
  console.log(
    formatTable(
      ['target', 'measured', 'result'],
      targets.map((t) => [t.name, t.value, t.met ? 'met' : 'MISSED']),
    ),
  );
  const rss = peakRssBytes();
  console.log(`\npeak RSS ${formatMiB(rss)}`);

  return {
    records: opts.records,
    value_bytes: VALUE_BYTES,
    batch_records: BATCH_RECORDS,
    stored_bytes_per_record: bytesPerBatch / BATCH_RECORDS,
    in_flight_max: opts.inFlight,
    append_always_records_per_s: Math.round(appendAlways),
    append_always_batches_per_fsync: round2(batches / always.groupFsyncs),
    append_never_records_per_s: Math.round(appendNever),
    scan_records_per_s: Math.round(scanRecords),
    scan_records_per_s_worst: Math.round(scanRecordsWorst),
    scan_batches_only_records_per_s: Math.round(scanBatchRecords),
    disk_bytes_per_s: Math.round(diskBytes),
    disk_round_bytes_per_s_min: Math.round(always.diskRoundBytesPerSMin),
    disk_round_bytes_per_s_max: Math.round(always.diskRoundBytesPerSMax),
    disk_nofsync_bytes_per_s: Math.round(diskNoFsyncBytes),
    disk_read_bytes_per_s: Math.round(readBytes),
    append_vs_disk_ratio: round2(ratioAlways),
    append_never_vs_disk_nofsync_ratio: round2(ratioNever),
    scan_vs_read_ratio: round2(ratioScan),
    concurrent_appenders: opts.appenders,
    concurrent_records: opts.concurrentRecords,
    concurrent_records_per_s: Math.round(concurrentRecords),
    concurrent_acks_per_fsync: round2(acksPerFsync),
    peak_rss_bytes: rss,
    targets_met: targets.every((t) => t.met),
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
