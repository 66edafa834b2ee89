/**
 * `npm run bench -- kafka [--records N] [--rounds R] [--value-bytes B] [--partitions P] [--view] [--workers N] [--client perf|kcat] [--cpu-prof DIR]`
 *
 * Kappa's Kafka listener against a real Kafka client and against Kappa's own log in-process. The
 * client (`--client`) is librdkafka 2.0.2 either way: `perf` (the default) is bench/kafka/perf.c,
 * built by the bench, which drives librdkafka's producer and consumer as fast as they go (as
 * rdkafka_performance and kafka-producer-perf-test do); `kcat` is Debian's kcat, whose stdio line
 * handling costs as much CPU as the protocol on this 2-core machine.
 *
 *  1. Produce: the client sends `--records` records of `--value-bytes`-byte values, no key, one per
 *     line of a pre-generated file, with enable.idempotence=true, acks=all,
 *     linger.ms=5, to partition 0 of a one-partition topic of `kappa start --kafka-port 0` (fsync
 *     `always`, the default: acks=all is answered once the records are on disk). Wall time of the client
 *     process, from spawn to exit (connect, metadata, InitProducerId and the final flush included).
 *     `--partitions P` (default 1) gives the topic P partitions, which librdkafka fills at random.
 *  2. Consume: the client reads them back from offset 0 until it has them all; the bench checks
 *     every partition's count and last offset (kcat prints each record's; perf.c counts them).
 *  `--view`: the values are JSON objects (`{"g":"g07","pad":"…"}`, 16 groups) and each round's topic
 *  has a view counting them by group (engine on the main thread unless `--workers N`, default 0); the round also
 *  reports when the view had counted every record, from the start of the produce.
 *  Kappa's own account of each phase comes from its /metrics: Produce and Fetch requests, the time it
 *  spent on them, and the group-commit fsyncs (count and seconds).
 *  3. Peers, measured in every round next to the Kafka figures:
 *     - the in-process append: the same values through `FileLog.appendBatch` in this process, batches
 *       of 1,000, up to 8 appends in flight, fsync `always`, on the same disk (bench/log.ts's code path);
 *       `produce_vs_inprocess_ratio` is the best produce round / the best in-process round (each side's
 *       best of the run; the per-round ratios, which swing with the disk, are printed and returned too);
 *     - `FileLog.appendEncoded` of the same batches already encoded, the path the Kafka listener takes;
 *     - `appendEncoded` in the shape librdkafka's idempotent producer sends on one partition: batches
 *       of 9,000 records, one at a time (the log's ceiling for that access pattern);
 *     - the client's ceiling: the same produce command against librdkafka's own mock broker (in memory,
 *       no disk), so a figure close to it says the client, not Kappa, is the limit.
 *  Once per run: python3-confluent-kafka producing to the mock broker with the same settings (a Python
 *  loop calling produce() per record), to show why the bench's producer is written in C and not Python.
 *
 * peak_rss_mb is the kappa process's VmHWM (/proc/<pid>/status) at the end of the run; its CPU time
 * per phase (/proc/<pid>/stat) is reported as cores used. `--cpu-prof DIR` runs kappa start under
 * `node --cpu-prof --cpu-prof-dir DIR` (the profile is written when it stops; figures are then lower).
 * Everything is written under one directory in os.tmpdir(), deleted at the end, even on failure.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type EncodableRecord, type FileLog, encodeBatch, openFileLog } from '../src/log/index.ts';
import {
  type Kappa,
  type ServerTimes,
  type Timed,
  processCpuSeconds,
  missingClients,
  processPeakRssBytes,
  buildPerfClient,
  runClient,
  runPythonProduce,
  serverTimes,
  since,
  startKappa,
  startMockBroker,
  stopAll,
} from './kafka/clients.ts';
import { BenchUsageError, type Figure, formatCount, formatTable, nowMs } from './lib/harness.ts';

export const description =
  'librdkafka producing into and consuming from kappa start, against the in-process append and a mock broker';

const SRC_INDEX = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const RECORDS_DEFAULT = 5_000_000;
const ROUNDS_DEFAULT = 3;
const VALUE_BYTES_DEFAULT = 100;
const BATCH_RECORDS = 1000;
const IN_FLIGHT = 8;
/**
 * The shape of librdkafka's idempotent producer on one partition: one request in flight (it never
 * sends the next before the answer, seen with -X debug=protocol) of about 9,000 records (its 1 MB
 * batch.size). The third in-process peer appends batches of this shape one at a time.
 */
const CLIENT_BATCH_RECORDS = 9000;
/** Distinct blocks of 1,000 values the data file cycles through (the in-process peers use the first ones). */
const BLOCKS = 64;
const TEMPLATE_BATCHES = 8;
/** The Python check produces at most this many records: its rate is steady well before. */
const PYTHON_RECORDS_MAX = 1_000_000;
/** `{"g":"g07","pad":"…"}`: 20 bytes around the padding. */
const JSON_VALUE_BYTES_MIN = 21;
/** Groups of the --view variant's view. */
const VIEW_GROUPS = 16;
const VIEW_TIMEOUT_MS = 15 * 60_000;
const PRODUCER_SETTINGS = ['enable.idempotence=true', 'acks=all', 'linger.ms=5'];

const TARGET_PRODUCE_RECORDS_PER_S = 500_000;
const TARGET_PRODUCE_VS_INPROCESS = 0.6;
const TARGET_CONSUME_RECORDS_PER_S = 1_000_000;
const TARGET_RSS_MB = 400;

interface Options {
  records: number;
  rounds: number;
  valueBytes: number;
  partitions: number;
  /** Values are JSON and each round's topic has a view counting them by group. */
  view: boolean;
  /** kappa start's --workers (0: the engine on the main thread, beside the listener). */
  workers: number;
  /** `perf`: bench/kafka/perf.c; `kcat`: Debian's kcat. */
  client: 'perf' | 'kcat';
  cpuProfDir: string | null;
}

interface Round {
  appendBatchMs: number;
  appendEncodedMs: number;
  /** appendEncoded of 9,000-record batches, one at a time: the log under librdkafka's access pattern. */
  appendSerialMs: number;
  mock: Timed;
  produce: Timed;
  consume: Timed;
  kappaProduceCpuS: number;
  kappaConsumeCpuS: number;
  /** Produce and Fetch requests as kappa counted them during each phase, with the fsyncs. */
  produceServer: ServerTimes;
  consumeServer: ServerTimes;
  /** --view: ms from the start of the produce until the view had counted every record; else null. */
  viewMs: number | null;
  load: number;
}

export async function run(args: string[]): Promise<Record<string, Figure>> {
  const opts = parseOptions(args);
  const missing = missingClients();
  if (missing !== null) throw new BenchUsageError(`The kafka bench needs ${missing}.`);
  const root = mkdtempSync(join(tmpdir(), 'kappa-bench-kafka-'));
  const cleanUp = (): void => {
    stopAll();
    rmSync(root, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  try {
    const loadBefore = loadavg()[0];
    const valuesFile = join(root, 'values.txt');
    const templates = writeValues(valuesFile, opts);
    const client = opts.client === 'perf' ? perfClient(buildPerfClient(root), valuesFile) : kcatClient(valuesFile);
    console.log(
      `kafka bench: ${formatCount(opts.records)} records of ${opts.valueBytes}-byte values (no key${opts.view ? `, JSON, a view counting them by group` : ''}), ${opts.partitions} partition(s), ${opts.rounds} rounds, kappa start --workers ${opts.workers}, in ${root}` +
        `\nproducer: ${client.produceCommand}` +
        `\nconsumer: ${client.consumeCommand} (the bench checks every partition's offsets)` +
        `\nload average before the run: ${loadBefore.toFixed(1)} on ${availableParallelism()} cores\n`,
    );

    const pythonRecords = Math.min(opts.records, PYTHON_RECORDS_MAX);
    const pythonMs = await runPythonProduce(pythonRecords, opts.valueBytes);
    const pythonRate = perS(pythonRecords, pythonMs);
    console.log(
      `python3-confluent-kafka, produce() per record into librdkafka's mock broker (same settings, ${formatCount(pythonRecords)} records): ${formatCount(pythonRate)} records/s\n`,
    );

    const config = writeConfig(root, opts);
    const mock = await startMockBroker();
    const kappa = await startKappa(
      join(root, 'data'),
      config,
      opts.workers,
      opts.cpuProfDir === null ? [] : profileFlags(opts),
    );
    const rounds: Round[] = [];
    let peakRss: number;
    try {
      for (let r = 1; r <= opts.rounds; r++) {
        rounds.push(await runRound(r, root, client, templates, opts, mock.broker, kappa));
        printRound(rounds.length, rounds.at(-1)!, opts.records, client.name);
      }
      peakRss = processPeakRssBytes(kappa.pid);
    } finally {
      await kappa.stop();
      mock.stop();
    }
    return report(opts, client.name, rounds, pythonRate, peakRss, loadBefore);
  } finally {
    cleanUp();
  }
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      records: { type: 'string' },
      rounds: { type: 'string' },
      'value-bytes': { type: 'string' },
      partitions: { type: 'string' },
      view: { type: 'boolean' },
      workers: { type: 'string' },
      client: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  const records = positiveInt(
    '--records (or BENCH_RECORDS)',
    values.records ?? process.env.BENCH_RECORDS,
    RECORDS_DEFAULT,
  );
  if (records % BATCH_RECORDS !== 0)
    throw new BenchUsageError(`--records must be a multiple of ${BATCH_RECORDS}; got ${records}.`);
  const valueBytes = positiveInt('--value-bytes', values['value-bytes'], VALUE_BYTES_DEFAULT);
  if (values.view === true && valueBytes < JSON_VALUE_BYTES_MIN)
    throw new BenchUsageError(
      `--view needs --value-bytes of at least ${JSON_VALUE_BYTES_MIN} (a JSON object); got ${valueBytes}.`,
    );
  const client = values.client ?? 'perf';
  if (client !== 'perf' && client !== 'kcat')
    throw new BenchUsageError(`--client must be perf (bench/kafka/perf.c) or kcat; got "${client}".`);
  return {
    records,
    client,
    view: values.view === true,
    workers: values.workers === undefined ? 0 : nonNegativeInt('--workers', values.workers),
    rounds: positiveInt('--rounds', values.rounds, ROUNDS_DEFAULT),
    valueBytes,
    partitions: positiveInt('--partitions', values.partitions, 1),
    cpuProfDir: values['cpu-prof'] ?? null,
  };
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 1)
    throw new BenchUsageError(`${name} must be a positive whole number; got "${text}".`);
  return n;
}

function nonNegativeInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new BenchUsageError(`${name} must be 0 or a whole number; got "${text}".`);
  return n;
}

function profileFlags(opts: Options): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir!];
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function perS(records: number, ms: number): number {
  return (records * 1000) / ms;
}

/**
 * Writes `opts.records` lines of `opts.valueBytes` base64 characters (kcat -P's input: one record
 * per line) cycling through BLOCKS random blocks of 1,000 values; returns the first blocks as batches
 * for the in-process peers, so both sides append the same values.
 */
function writeValues(path: string, opts: Options): EncodableRecord[][] {
  const timestamp = Date.now();
  const blocks: Buffer[] = [];
  const templates: EncodableRecord[][] = [];
  for (let b = 0; b < BLOCKS; b++) {
    const chars = randomBytes(Math.ceil((opts.valueBytes * BATCH_RECORDS * 3) / 4) + 3).toString('base64');
    const lines: string[] = [];
    for (let i = 0; i < BATCH_RECORDS; i++) {
      if (!opts.view) lines.push(chars.slice(i * opts.valueBytes, (i + 1) * opts.valueBytes));
      else {
        const pad = chars.slice(i * opts.valueBytes, i * opts.valueBytes + opts.valueBytes - 20);
        lines.push(`{"g":"g${String(i % VIEW_GROUPS).padStart(2, '0')}","pad":"${pad}"}`);
      }
    }
    blocks.push(Buffer.from(lines.join('\n') + '\n'));
    if (b < TEMPLATE_BATCHES) templates.push(lines.map((line) => ({ key: null, value: Buffer.from(line), timestamp })));
  }
  const fd = openSync(path, 'w');
  try {
    for (let b = 0; b < opts.records / BATCH_RECORDS; b++) {
      const block = blocks[b % BLOCKS];
      for (let done = 0; done < block.length;) done += writeSync(fd, block, done);
    }
  } finally {
    closeSync(fd);
  }
  return templates;
}

/**
 * kappa start's config: one topic of `--partitions` partitions per round (`bench-1`, `bench-2`, ...);
 * no views, or with `--view` one per topic (`counts_1`, ...) counting its records by group.
 */
function writeConfig(root: string, opts: Options): string {
  const rounds = Array.from({ length: opts.rounds }, (_, i) => i + 1);
  const topics = rounds.map((r) => `const t${r} = topic('bench-${r}', { partitions: ${opts.partitions} });`);
  const views = opts.view
    ? rounds.map((r) => `view('counts_${r}', from(t${r}).groupBy((v) => ({ g: v.g })).aggregate({ n: count() }))`)
    : [];
  const path = join(root, 'kappa.config.ts');
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(
    path,
    `import { count, defineApp, from, topic, view } from ${JSON.stringify(SRC_INDEX)};\n${topics.join('\n')}\n` +
      `export default defineApp({ topics: [${rounds.map((r) => `t${r}`).join(', ')}], views: [${views.join(', ')}] });\n`,
  );
  return path;
}

/** Resolves with the ms from `start` until the view has counted all `records` records of the round. */
async function viewCaughtUp(kappa: Kappa, round: number, records: number, start: number): Promise<number> {
  for (;;) {
    const res = await fetch(`${kappa.http}/v1/views/counts_${round}?limit=1000`);
    if (res.ok) {
      const { rows } = (await res.json()) as { rows: { n: number }[] };
      const counted = rows.reduce((sum, r) => sum + r.n, 0);
      if (counted > records)
        throw new Error(`the view counts_${round} counted ${counted} records; ${records} were produced`);
      if (counted === records) return nowMs() - start;
    }
    if (nowMs() - start > VIEW_TIMEOUT_MS)
      throw new Error(`the view counts_${round} had not counted ${records} records after ${VIEW_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function runRound(
  round: number,
  root: string,
  client: Client,
  templates: EncodableRecord[][],
  opts: Options,
  mockBroker: string,
  kappa: Kappa,
): Promise<Round> {
  const topic = `bench-${round}`;
  const batches = opts.records / BATCH_RECORDS;
  const appendBatchMs = await inProcess(join(root, `inprocess-${round}`), (log) =>
    appendWindowed((i) => log.appendBatch('bench', 0, templates[i % templates.length]), batches, IN_FLIGHT),
  );
  const encoded = templates.map((t) => encodeBatch(t, { baseOffset: 0 }));
  const appendEncodedMs = await inProcess(join(root, `encoded-${round}`), (log) =>
    // A copy per append, as each arrives in its own network buffer: the log sets the base offset in place.
    appendWindowed((i) => log.appendEncoded('bench', 0, Buffer.from(encoded[i % encoded.length])), batches, IN_FLIGHT),
  );
  const big = encodeBatch(
    Array.from(
      { length: CLIENT_BATCH_RECORDS },
      (_, i) => templates[Math.floor(i / BATCH_RECORDS) % templates.length][i % BATCH_RECORDS],
    ),
    { baseOffset: 0 },
  );
  const bigBatches = Math.ceil(opts.records / CLIENT_BATCH_RECORDS);
  const appendSerialMs =
    ((await inProcess(join(root, `serial-${round}`), (log) =>
      appendWindowed((_) => log.appendEncoded('bench', 0, Buffer.from(big)), bigBatches, 1),
    )) *
      opts.records) /
    (bigBatches * CLIENT_BATCH_RECORDS);
  const mock = await client.produce(mockBroker, topic, opts.partitions);
  let cpu = processCpuSeconds(kappa.pid);
  let times = await serverTimes(kappa, 'Produce');
  const viewMs = opts.view ? viewCaughtUp(kappa, round, opts.records, nowMs()) : Promise.resolve(null);
  // Awaited after the consume; until then a failure must not count as unhandled.
  viewMs.catch(() => {});
  const produce = await client.produce(kappa.broker, topic, opts.partitions);
  const kappaProduceCpuS = processCpuSeconds(kappa.pid) - cpu;
  const produceServer = since(times, await serverTimes(kappa, 'Produce'));
  cpu = processCpuSeconds(kappa.pid);
  times = await serverTimes(kappa, 'Fetch');
  const consume = await client.consume(kappa.broker, topic, opts.records, opts.partitions);
  const kappaConsumeCpuS = processCpuSeconds(kappa.pid) - cpu;
  const consumeServer = since(times, await serverTimes(kappa, 'Fetch'));
  return {
    appendBatchMs,
    appendEncodedMs,
    appendSerialMs,
    mock,
    produce,
    consume,
    kappaProduceCpuS,
    kappaConsumeCpuS,
    produceServer,
    consumeServer,
    viewMs: await viewMs,
    load: loadavg()[0],
  };
}

/** Times `work` on a fresh FileLog (fsync `always`, topic `bench` of one partition), then deletes it. */
async function inProcess(dir: string, work: (log: FileLog) => Promise<void>): Promise<number> {
  const log = await openFileLog({ dir, fsync: 'always' });
  try {
    await log.createTopic('bench', { partitions: 1 });
    const start = nowMs();
    await work(log);
    return nowMs() - start;
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One producer with at most `inFlight` unacknowledged appends, as in bench/log.ts. */
async function appendWindowed(append: (i: number) => Promise<unknown>, count: number, inFlight: number): Promise<void> {
  const window: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    if (window.length >= inFlight) await window.shift();
    window.push(append(i));
  }
  await Promise.all(window);
}

/** One of the bench's Kafka clients (`--client`): how it produces the values file and consumes a topic. */
interface Client {
  /** As the tables name it. */
  name: string;
  produceCommand: string;
  consumeCommand: string;
  produce(broker: string, topic: string, partitions: number): Promise<Timed>;
  /** Reads every partition from the beginning until `records` have come; checks their offsets. */
  consume(broker: string, topic: string, records: number, partitions: number): Promise<Timed>;
}

/** One partition: partition 0. Several: librdkafka's partitioner spreads the key-less records at random. */
function partitionArgs(partitions: number): string[] {
  return partitions === 1 ? ['-p', '0'] : [];
}

const settingArgs = PRODUCER_SETTINGS.flatMap((s) => ['-X', s]);

/** bench/kafka/perf.c, built at `path`: it counts what it consumed and prints "partition count last-offset" lines. */
function perfClient(path: string, valuesFile: string): Client {
  return {
    name: 'perf.c',
    produceCommand: `bench/kafka/perf.c -P ${PRODUCER_SETTINGS.map((s) => `-X ${s}`).join(' ')} <file of one value per line>`,
    consumeCommand: 'bench/kafka/perf.c -C -n <partitions> -c <records> (librdkafka defaults)',
    produce: (broker, topic, partitions) =>
      runClient(path, ['-P', '-b', broker, '-t', topic, ...partitionArgs(partitions), ...settingArgs, valuesFile]),
    async consume(broker, topic, records, partitions) {
      let out = '';
      const args = ['-C', '-b', broker, '-t', topic, '-n', String(partitions), '-c', String(records)];
      const timed = await runClient(path, args, (chunk) => (out += chunk.toString()));
      const seen = new Map<number, { count: number; last: number }>();
      for (const line of out.trim().split('\n')) {
        const [p, count, last] = line.split(' ').map(Number);
        seen.set(p, { count, last });
      }
      checkOffsets('perf.c', seen, records);
      return timed;
    },
  };
}

/** Debian's kcat: `-P -l` reads the values file; `-C -f '%p %o'` prints each record's partition and offset. */
function kcatClient(valuesFile: string): Client {
  return {
    name: 'kcat',
    produceCommand: `kcat -P ${PRODUCER_SETTINGS.map((s) => `-X ${s}`).join(' ')} -l <file of one value per line>`,
    consumeCommand: "kcat -C -o beginning -c <records> -e -f '%p %o\\n'",
    produce: (broker, topic, partitions) =>
      runClient('kcat', [
        '-P',
        '-b',
        broker,
        '-t',
        topic,
        ...partitionArgs(partitions),
        ...settingArgs,
        '-l',
        valuesFile,
      ]),
    consume: consumeWithKcat,
  };
}

/**
 * kcat reads every partition from the beginning until it has `records` records (`-c`; `-e` too, so
 * a short topic ends the run instead of waiting). `-c` rather than `-e` alone: at the end `-e` waits
 * for an empty long poll (fetch.wait.max.ms, 500 ms), which no consumer that has its records pays.
 */
async function consumeWithKcat(broker: string, topic: string, records: number, partitions: number): Promise<Timed> {
  const seen = new Map<number, { count: number; last: number }>();
  // Lines "<partition> <offset>\n", parsed byte by byte as they stream in.
  let field = 0;
  let partition = 0;
  let offset = 0;
  const args = ['-C', '-b', broker, '-t', topic, ...partitionArgs(partitions), '-o', 'beginning'];
  const timed = await runClient('kcat', [...args, '-c', String(records), '-e', '-q', '-f', '%p %o\\n'], (chunk) => {
    for (const byte of chunk) {
      if (byte === 32) field = 1;
      else if (byte === 10) {
        const s = seen.get(partition) ?? { count: 0, last: -1 };
        seen.set(partition, { count: s.count + 1, last: Math.max(s.last, offset) });
        field = partition = offset = 0;
      } else if (field === 0) partition = partition * 10 + byte - 48;
      else offset = offset * 10 + byte - 48;
    }
  });
  checkOffsets('kcat', seen, records);
  return timed;
}

/** Each partition's offsets came once each, from 0 without a gap, and `records` in all. */
function checkOffsets(client: string, seen: Map<number, { count: number; last: number }>, records: number): void {
  let total = 0;
  for (const [p, { count, last }] of seen) {
    total += count;
    if (last !== count - 1)
      throw new Error(
        `${client} read ${count} records of partition ${p}, the last at offset ${last}: some came twice or not at all`,
      );
  }
  if (total !== records) throw new Error(`${client} read ${total} records; ${records} were produced`);
}

function printRound(n: number, r: Round, records: number, client: string): void {
  const rate = (ms: number): string => formatCount(perS(records, ms));
  console.log(
    `round ${n} (load ${r.load.toFixed(1)}): produce ${rate(r.produce.ms)}/s (kappa ${(r.kappaProduceCpuS / (r.produce.ms / 1000)).toFixed(2)} cores),` +
      ` consume ${rate(r.consume.ms)}/s (kappa ${(r.kappaConsumeCpuS / (r.consume.ms / 1000)).toFixed(2)} cores),` +
      ` appendBatch ${rate(r.appendBatchMs)}/s, appendEncoded ${rate(r.appendEncodedMs)}/s,` +
      ` appendEncoded 9,000/batch one at a time ${rate(r.appendSerialMs)}/s, ${client} to the mock broker ${rate(r.mock.ms)}/s`,
  );
  if (r.viewMs !== null)
    console.log(
      `  view: every record counted ${(r.viewMs / 1000).toFixed(1)} s after the produce started (${rate(r.viewMs)} records/s end to end)`,
    );
  const p = r.produceServer;
  const f = r.consumeServer;
  console.log(
    `  produce: ${formatCount(p.requests)} requests of ${formatCount(records / p.requests)} records, ${(r.produce.ms / p.requests).toFixed(1)} ms each as ${client} saw them,` +
      ` ${((p.requestS * 1000) / p.requests).toFixed(1)} ms in kappa, of which fsync ${((p.fsyncS * 1000) / Math.max(p.fsyncs, 1)).toFixed(1)} ms (${(p.fsyncs / p.requests).toFixed(2)} fsyncs per request)` +
      `\n  consume: ${formatCount(f.requests)} fetches of ${formatCount(records / f.requests)} records, ${(r.consume.ms / f.requests).toFixed(1)} ms each as ${client} saw them, ${((f.requestS * 1000) / f.requests).toFixed(1)} ms in kappa`,
  );
}

function report(
  opts: Options,
  client: string,
  rounds: Round[],
  pythonRate: number,
  peakRss: number,
  loadBefore: number,
): Record<string, Figure> {
  const rate = (ms: number): number => perS(opts.records, ms);
  const stat = (f: (r: Round) => number): { best: number; worst: number } => {
    const v = rounds.map(f);
    return { best: Math.max(...v), worst: Math.min(...v) };
  };
  const produce = stat((r) => rate(r.produce.ms));
  const consume = stat((r) => rate(r.consume.ms));
  const appendBatch = stat((r) => rate(r.appendBatchMs));
  const appendEncoded = stat((r) => rate(r.appendEncodedMs));
  const appendSerial = stat((r) => rate(r.appendSerialMs));
  const ratioSerial = stat((r) => r.appendSerialMs / r.produce.ms);
  const mock = stat((r) => rate(r.mock.ms));
  const ratio = stat((r) => r.appendBatchMs / r.produce.ms);
  const ratioEncoded = stat((r) => r.appendEncodedMs / r.produce.ms);
  const ratioMock = stat((r) => r.mock.ms / r.produce.ms);
  // The target's ratio: each side at its best in this run. A per-round ratio's best is often just a
  // round where the disk slowed the in-process side down.
  const ratioOfBests = produce.best / appendBatch.best;
  const cores = (cpuS: number, ms: number): number => cpuS / (ms / 1000);
  const kappaProduceCores = stat((r) => cores(r.kappaProduceCpuS, r.produce.ms));
  const kappaConsumeCores = stat((r) => cores(r.kappaConsumeCpuS, r.consume.ms));
  const clientProduceCores = stat((r) => cores(r.produce.cpuS, r.produce.ms));
  const clientConsumeCores = stat((r) => cores(r.consume.cpuS, r.consume.ms));
  const loadAfter = loadavg()[0];
  const view = opts.view ? stat((r) => rate(r.viewMs!)) : null;
  const peakRssMb = peakRss / (1 << 20);

  const row = (name: string, s: { best: number; worst: number }, digits = 0): string[] => [
    name,
    digits === 0 ? formatCount(s.best) : s.best.toFixed(digits),
    digits === 0 ? formatCount(s.worst) : s.worst.toFixed(digits),
  ];
  console.log('');
  console.log(
    formatTable(
      ['records/s (or ratio, cores)', 'best', 'worst'],
      [
        row(`produce: ${client} -> kappa start (idempotent, acks=all)`, produce),
        row(`consume: ${client} <- kappa start`, consume),
        ...(view === null ? [] : [row('view: produce start -> every record counted', view)]),
        row('  in-process appendBatch, 1,000/batch, fsync always', appendBatch),
        row('  in-process appendEncoded, same batches pre-encoded', appendEncoded),
        row(`  in-process appendEncoded, ${formatCount(CLIENT_BATCH_RECORDS)}/batch, 1 in flight`, appendSerial),
        row(`  client ceiling: ${client} -> librdkafka mock broker`, mock),
        row('produce / in-process appendBatch (same round)', ratio, 2),
        row('produce / in-process appendEncoded (same round)', ratioEncoded, 2),
        row(
          `produce / appendEncoded ${formatCount(CLIENT_BATCH_RECORDS)}/batch, 1 in flight (same round)`,
          ratioSerial,
          2,
        ),
        row(`produce / ${client} -> mock broker (same round)`, ratioMock, 2),
        ['produce best / in-process appendBatch best (the target)', ratioOfBests.toFixed(2), ''],
        row('kappa CPU cores while produce', kappaProduceCores, 2),
        row(`${client} CPU cores while produce`, clientProduceCores, 2),
        row('kappa CPU cores while consume', kappaConsumeCores, 2),
        row(`${client} CPU cores while consume`, clientConsumeCores, 2),
      ],
    ),
  );
  console.log(
    `\npython3-confluent-kafka into the mock broker: ${formatCount(pythonRate)} records/s` +
      ` (${(pythonRate / mock.best).toFixed(2)} × ${client}'s best): ${pythonRate < TARGET_PRODUCE_RECORDS_PER_S ? 'below the produce target by itself' : `below ${client} into the same broker`}, so the producer is not Python.`,
  );
  console.log(`kappa start's peak RSS (VmHWM): ${peakRssMb.toFixed(0)} MiB`);
  console.log(
    `load average: ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on ${availableParallelism()} cores`,
  );
  if (opts.cpuProfDir !== null) console.log(`kappa start ran under --cpu-prof: its profile is in ${opts.cpuProfDir}`);

  const targets = [
    {
      name: `produce ≥ ${formatCount(TARGET_PRODUCE_RECORDS_PER_S)} records/s`,
      value: formatCount(produce.best),
      met: produce.best >= TARGET_PRODUCE_RECORDS_PER_S,
    },
    {
      name: `produce ≥ ${TARGET_PRODUCE_VS_INPROCESS} × in-process append`,
      value: ratioOfBests.toFixed(2),
      met: ratioOfBests >= TARGET_PRODUCE_VS_INPROCESS,
    },
    {
      name: `consume ≥ ${formatCount(TARGET_CONSUME_RECORDS_PER_S)} records/s`,
      value: formatCount(consume.best),
      met: consume.best >= TARGET_CONSUME_RECORDS_PER_S,
    },
    {
      name: `kappa start's peak RSS ≤ ${TARGET_RSS_MB} MB`,
      value: `${peakRssMb.toFixed(0)} MiB`,
      met: peakRssMb <= TARGET_RSS_MB,
    },
  ];
  console.log('');
  console.log(
    formatTable(
      ['target (each side at its best in the run)', 'measured', 'result'],
      targets.map((t) => [t.name, t.value, t.met ? 'met' : 'MISSED']),
    ),
  );

  const r0 = Math.round;
  const r2 = (n: number): number => Math.round(n * 100) / 100;
  return {
    records: opts.records,
    value_bytes: opts.valueBytes,
    rounds: opts.rounds,
    partitions: opts.partitions,
    view: opts.view,
    workers: opts.workers,
    producer: `${client} (librdkafka 2.0.2)`,
    consumer: `${client} (librdkafka 2.0.2)`,
    produce_records_per_s: r0(produce.best),
    produce_records_per_s_worst: r0(produce.worst),
    consume_records_per_s: r0(consume.best),
    consume_records_per_s_worst: r0(consume.worst),
    ...(view === null ? {} : { view_records_per_s: r0(view.best), view_records_per_s_worst: r0(view.worst) }),
    inprocess_append_records_per_s: r0(appendBatch.best),
    inprocess_append_records_per_s_worst: r0(appendBatch.worst),
    inprocess_append_encoded_records_per_s: r0(appendEncoded.best),
    inprocess_append_client_shape_records_per_s: r0(appendSerial.best),
    client_ceiling_records_per_s: r0(mock.best),
    python_produce_ceiling_records_per_s: r0(pythonRate),
    produce_vs_inprocess_ratio: r2(ratioOfBests),
    produce_vs_inprocess_ratio_round_best: r2(ratio.best),
    produce_vs_inprocess_ratio_round_worst: r2(ratio.worst),
    produce_vs_append_encoded_ratio: r2(produce.best / appendEncoded.best),
    produce_vs_client_shape_append_ratio: r2(produce.best / appendSerial.best),
    produce_vs_client_ceiling_ratio: r2(produce.best / mock.best),
    kappa_produce_cores: r2(kappaProduceCores.best),
    produce_requests_per_round: r0(mean(rounds.map((r) => r.produceServer.requests))),
    produce_ms_per_request_client: r2(mean(rounds.map((r) => r.produce.ms / r.produceServer.requests))),
    produce_ms_per_request_kappa: r2(
      mean(rounds.map((r) => (r.produceServer.requestS * 1000) / r.produceServer.requests)),
    ),
    produce_fsync_ms: r2(
      mean(rounds.map((r) => (r.produceServer.fsyncS * 1000) / Math.max(r.produceServer.fsyncs, 1))),
    ),
    fetch_requests_per_round: r0(mean(rounds.map((r) => r.consumeServer.requests))),
    fetch_ms_per_request_kappa: r2(
      mean(rounds.map((r) => (r.consumeServer.requestS * 1000) / r.consumeServer.requests)),
    ),
    kappa_consume_cores: r2(kappaConsumeCores.best),
    peak_rss_mb: r0(peakRssMb),
    load_average_before: r2(loadBefore),
    load_average_after: r2(loadAfter),
    targets_met: targets.every((t) => t.met),
  };
}
