/**
 * Helpers shared by the log's unit tests (`*.test.ts` beside this file): a temporary data
 * directory that removes itself, quiet loggers, a controllable clock, and readers that collect a
 * partition's records. Nothing in the log itself imports this file.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLog, type FileLogOptions, openFileLog } from './file-log.ts';
import type { Clock, Logger, TopicConfig } from './types.ts';
import type { LogRecord } from './record-batch.ts';

export const silentLogger: Logger = { info() {}, warn() {} };

/** A logger that keeps every message, for tests that check what the log reported. */
export function collectingLogger(): Logger & { infos: string[]; warnings: string[] } {
  const infos: string[] = [];
  const warnings: string[] = [];
  return { infos, warnings, info: (m) => infos.push(m), warn: (m) => warnings.push(m) };
}

/** A clock that only moves when a test moves it. */
export function manualClock(nowMs = 1_700_000_000_000): Clock & { set(ms: number): void; advance(ms: number): void } {
  let now = nowMs;
  return {
    now: () => now,
    set: (ms) => void (now = ms),
    advance: (ms) => void (now += ms),
  };
}

/** A fresh directory under the OS temp dir; `cleanup` removes it and everything in it. */
export function tempDir(prefix = 'kappa-log-test-'): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Opens a FileLog on `dir` with a silent logger unless the test passes its own options. */
export function openTestLog(dir: string, opts: Partial<FileLogOptions> = {}): Promise<FileLog> {
  return openFileLog({ dir, logger: silentLogger, ...opts });
}

/** What `useTestLog` sets up for each test. */
export interface TestLogContext {
  /** The data directory: a fresh temp dir per test. */
  dir: string;
  /** The open log. A test that reopens the log assigns the new one here; that one is closed after the test. */
  log: FileLog;
}

export interface UseTestLogOptions {
  /** Options of the log, built again for each test (so a clock, logger or faulty fs is fresh per test). */
  options?: () => Partial<FileLogOptions>;
  /** A topic created in every fresh log. */
  topic?: TopicConfig & { name: string };
  /** Runs after each test before the log is closed (say, to let a held fsync go). */
  beforeClose?: () => void;
}

/**
 * Registers, in the enclosing `describe`: before each test, a temp dir and a log opened on it
 * (with `topic` created); after each test, the log closed and the dir removed.
 */
export function useTestLog(setup: UseTestLogOptions = {}): TestLogContext {
  let tmp: ReturnType<typeof tempDir> | null = null;
  const ctx = {} as TestLogContext;
  beforeEach(async () => {
    tmp = tempDir();
    ctx.dir = tmp.dir;
    ctx.log = await openTestLog(tmp.dir, setup.options?.() ?? {});
    if (setup.topic) {
      const { name, ...config } = setup.topic;
      await ctx.log.createTopic(name, config);
    }
  });
  afterEach(async () => {
    setup.beforeClose?.();
    await ctx.log.close();
    tmp?.cleanup();
  });
  return ctx;
}

/** Every record of a partition from `from` to the current end (no follow), in order. */
export async function readRecords(
  log: FileLog,
  topic: string,
  partition: number,
  from = 0,
  maxBytes?: number,
): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const batch of log.read(topic, partition, from, { maxBytes })) out.push(...batch.records(from));
  return out;
}

/** The `.log` files of a partition, sorted, as names. */
export function segmentFiles(dataDir: string, topic: string, partition: number, ext = '.log'): string[] {
  return fs
    .readdirSync(join(dataDir, 'topics', topic, String(partition)))
    .filter((n) => n.endsWith(ext))
    .sort();
}

export function partitionDir(dataDir: string, topic: string, partition: number): string {
  return join(dataDir, 'topics', topic, String(partition));
}

/** An index file of fixed-size entries, each written by `write` at byte `at`: for tests of what `load` accepts. */
export function indexFile<E>(
  entries: E[],
  entryBytes: number,
  write: (buf: Buffer, entry: E, at: number) => void,
): Buffer {
  const buf = Buffer.alloc(entries.length * entryBytes);
  entries.forEach((entry, i) => write(buf, entry, i * entryBytes));
  return buf;
}

/** An Error that looks like the one Node throws for `code` (ENOSPC, EIO, ...). */
export function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: simulated fault, ${syscall}`);
  err.code = code;
  err.syscall = syscall;
  return err;
}
