/**
 * The processes of the Kafka bench (bench/kafka.ts): `kappa start` with its Kafka listener,
 * librdkafka's mock broker (bench/kafka/mock-broker.py) and the client runs, each timed from spawn to
 * exit with the CPU time it used. Every process started here is killed by `stopAll` (the bench
 * calls it in a `finally`), so a failed or interrupted run leaves nothing behind.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nowMs } from '../lib/harness.ts';

const BIN = fileURLToPath(new URL('../../bin/kappa.js', import.meta.url));
const MOCK_BROKER = fileURLToPath(new URL('./mock-broker.py', import.meta.url));
const PYTHON_PRODUCE = fileURLToPath(new URL('./python-produce.py', import.meta.url));
const PERF_SOURCE = fileURLToPath(new URL('./perf.c', import.meta.url));
const RDKAFKA_HEADER = '/usr/include/librdkafka/rdkafka.h';
/** Debian's Python, which has python3-confluent-kafka (the python3 on PATH may be another one). */
export const PYTHON = '/usr/bin/python3';
const START_TIMEOUT_MS = 120_000;
/** Linux's clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every mainstream kernel). */
const CLOCK_TICKS = 100;

const running = new Set<ChildProcess>();

/**
 * What is missing for the bench's clients, or null: Debian's kcat and python3-confluent-kafka, and
 * a C compiler with librdkafka's headers for bench/kafka/perf.c.
 */
export function missingClients(): string | null {
  const missing: string[] = [];
  if (spawnSync('kcat', ['-V']).status !== 0) missing.push('kcat');
  if (spawnSync(PYTHON, ['-c', 'import confluent_kafka']).status !== 0)
    missing.push(`python3-confluent-kafka (for ${PYTHON})`);
  if (spawnSync('cc', ['--version']).status !== 0) missing.push('a C compiler (cc)');
  if (!existsSync(RDKAFKA_HEADER)) missing.push(`librdkafka's headers (${RDKAFKA_HEADER})`);
  return missing.length === 0
    ? null
    : `${missing.join(', ')}; install with: apt-get install kcat python3-confluent-kafka gcc librdkafka-dev`;
}

/** Compiles bench/kafka/perf.c into `dir`; returns the executable's path. */
export function buildPerfClient(dir: string): string {
  const out = join(dir, 'perf');
  const cc = spawnSync('cc', ['-O2', '-o', out, PERF_SOURCE, '-lrdkafka'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc could not build ${PERF_SOURCE}:\n${cc.stderr}`);
  return out;
}

/** Kills every process this module started and has not seen exit. */
export function stopAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Waits until `pattern` appears in what `child` writes on stderr; throws with that output if it exits first. */
function waitForStderr(child: ChildProcess, what: string, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => fail(`did not start within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`${what} ${why}. It wrote:\n${text}`));
    };
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      text += s;
      const m = text.match(pattern);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => fail(`exited (status ${code})`));
  });
}

export interface Kappa {
  pid: number;
  broker: string;
  /** The HTTP API's base URL (for /metrics). */
  http: string;
  /** Stops it with SIGINT (as Ctrl-C does: the log is flushed and closed) and waits for its exit. */
  stop(): Promise<void>;
}

/** `kappa start` (sources through tsx, as in a clone) with its Kafka listener on a free port. */
export async function startKappa(
  dataDir: string,
  config: string,
  workers: number,
  nodeFlags: string[],
): Promise<Kappa> {
  const child = track(
    spawn(
      process.execPath,
      [
        ...nodeFlags,
        BIN,
        '--data-dir',
        dataDir,
        'start',
        '--config',
        config,
        '--port',
        '0',
        '--kafka-port',
        '0',
        '--workers',
        String(workers),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  );
  // It prints the HTTP API's line, then the Kafka API's.
  const [, http, broker] = await waitForStderr(
    child,
    'kappa start',
    /kappa: HTTP API on (http:\/\/\S+) [\s\S]*kappa: Kafka API on (\S+:\d+) /,
  );
  return {
    pid: child.pid!,
    broker,
    http,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

/** librdkafka's mock broker in a Python process; resolves with its address and a stop function. */
export async function startMockBroker(): Promise<{ broker: string; stop(): void }> {
  const child = track(spawn(PYTHON, [MOCK_BROKER], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const [, broker] = await waitForStderr(child, 'the librdkafka mock broker', /replaced with (\S+:\d+)/);
  return { broker, stop: () => child.kill('SIGTERM') };
}

export interface Timed {
  ms: number;
  /** CPU seconds the client process used (user + system). */
  cpuS: number;
}

/**
 * Runs `command args` (kcat, or the perf client) under bash, which reports the CPU time of its child
 * (`times`) on fd 3. Resolves with the wall time from spawn to exit; throws with the client's stderr
 * if it fails. `onStdout` sees its output.
 */
export function runClient(command: string, args: string[], onStdout?: (chunk: Buffer) => void): Promise<Timed> {
  const script = '"$0" "$@"; status=$?; times >&3; exit $status';
  const start = nowMs();
  const child = track(
    spawn('bash', ['-c', script, command, ...args], {
      stdio: ['ignore', onStdout === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    }),
  );
  let stderr = '';
  let times = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (s: string) => (times += s));
  if (onStdout !== undefined) child.stdout!.on('data', onStdout);
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      const ms = nowMs() - start;
      if (code !== 0 || /% ERROR/.test(stderr))
        return reject(new Error(`${command} ${args.join(' ')} failed (status ${code}):\n${stderr}`));
      resolve({ ms, cpuS: childCpuSeconds(times) });
    });
  });
}

/** bash's `times`: "0m0.001s 0m0.002s\n0m0.423s 0m0.108s\n", the second line its children's user and system time. */
function childCpuSeconds(times: string): number {
  const line = times.trim().split('\n')[1] ?? '';
  let total = 0;
  for (const m of line.matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2]);
  return total;
}

/** The Python client's own produce ceiling (bench/kafka/python-produce.py): ms from its first produce() to the end of its flush. */
export function runPythonProduce(records: number, valueBytes: number): Promise<number> {
  const child = track(
    spawn(PYTHON, [PYTHON_PRODUCE, String(records), String(valueBytes)], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${PYTHON} ${PYTHON_PRODUCE} failed (status ${code}):\n${stderr}`));
      resolve((JSON.parse(stdout) as { ms: number }).ms);
    });
  });
}

/** A process's CPU seconds so far (user + system, all its threads), from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, utime field 14 and stime field 15 (1-based, man 5 proc).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A process's peak resident memory (VmHWM), in bytes. */
export function processPeakRssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
  if (m === null) throw new Error(`/proc/${pid}/status has no VmHWM line`);
  return Number(m[1]) * 1024;
}

/** The server's own account of a phase, from its Prometheus metrics (GET /metrics). */
export interface ServerTimes {
  /** Requests of the API and the seconds kappa spent on them, from frame read to answer ready. */
  requests: number;
  requestS: number;
  /** Group-commit fsyncs and the seconds they took. */
  fsyncs: number;
  fsyncS: number;
}

/** kappa's counters for `api` (Produce, Fetch) and the log's fsyncs, as they stand now. */
export async function serverTimes(kappa: Kappa, api: string): Promise<ServerTimes> {
  const text = await (await fetch(`${kappa.http}/metrics`)).text();
  const value = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.slice(name.length + 1));
  };
  return {
    requests: value(`kappa_kafka_request_seconds_count{api="${api}"}`),
    requestS: value(`kappa_kafka_request_seconds_sum{api="${api}"}`),
    fsyncs: value('kappa_fsync_seconds_count'),
    fsyncS: value('kappa_fsync_seconds_sum'),
  };
}

/** What happened between two readings of serverTimes. */
export function since(before: ServerTimes, after: ServerTimes): ServerTimes {
  return {
    requests: after.requests - before.requests,
    requestS: after.requestS - before.requestS,
    fsyncs: after.fsyncs - before.fsyncs,
    fsyncS: after.fsyncS - before.fsyncS,
  };
}
