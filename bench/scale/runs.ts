/**
 * One timed build of the scale bench (bench/scale.ts): `kappa start` processes spawned at once, the
 * clock running from just before the first spawn until every task's checkpoint (kappa_checkpoints,
 * in PostgreSQL or in the data dir's SQLite file) reaches the end of its partition. Then the view's
 * count column is summed (it must equal the events: exactly once), each process's CPU time and peak
 * RSS are read from /proc, and the processes are killed. Every process started here is also killed
 * by `killAll` (the bench calls it in a `finally`), so a failed run leaves nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { processCpuSeconds, processPeakRssBytes } from '../kafka/clients.ts';
import { nowMs } from '../lib/harness.ts';

const BIN = fileURLToPath(new URL('../../bin/kappa.js', import.meta.url));
const POLL_MS = 100;
const STOP_GENTLY_MS = 15_000;
/** Kept of each process's stderr, for the error when it exits early. */
const STDERR_KEEP = 16_384;

const running = new Set<ChildProcess>();

/** SIGKILLs every process this module started that has not exited. */
export function killAll(): void {
  for (const child of running) killGroup(child);
  running.clear();
}

/** SIGKILLs a process started here and whatever it started (`kappa start` runs `kappa check` in the background). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL'); // its group is gone already
  }
}

/** Where the checkpoints and the view are read: `committed` gives the checkpoint offset of each partition seen so far. */
export interface Progress {
  committed(): Promise<Map<number, number>>;
  /** The sum of the view's count column (every event counted once). */
  counted(): Promise<number>;
  /** How many of the view's tasks each process holds, largest first ("3+1"); null for one process. */
  split(): Promise<string | null>;
  close(): Promise<void>;
}

export interface ProcessFigures {
  cpuS: number;
  peakRssBytes: number;
}

export interface BuildFigures {
  ms: number;
  /** When some checkpoint first moved, and how many events it covered then (start-up excluded from `steady`). */
  firstMs: number | null;
  firstEvents: number;
  processes: ProcessFigures[];
  /** Tasks per process at the end (see Progress.split). */
  split: string | null;
}

export interface Build {
  /** `kappa` arguments of each process, all spawned at once. */
  argvs: string[][];
  ends: number[];
  progress: Progress;
  /** The events the view must have counted. */
  events: number;
  timeoutMs: number;
  /** Node flags before the `kappa` script (`--cpu-prof …`); the processes are then stopped with SIGTERM, so profiles get written. */
  nodeFlags: string[];
}

export async function timeBuild(b: Build): Promise<BuildFigures> {
  const t0 = nowMs();
  const children = b.argvs.map((argv) => start(argv, b.nodeFlags));
  try {
    let first: { ms: number; events: number } | null = null;
    for (;;) {
      for (const c of children) if (c.child.exitCode !== null || c.child.signalCode !== null) throw exited(c);
      const offsets = await b.progress.committed();
      const done = b.ends.every((end, p) => (offsets.get(p) ?? 0) >= end);
      const events = [...offsets.values()].reduce((s, o) => s + o, 0);
      if (first === null && events > 0) first = { ms: nowMs() - t0, events };
      if (done) break;
      if (nowMs() - t0 > b.timeoutMs)
        throw new Error(
          `the views were not built within ${Math.round(b.timeoutMs / 1000)} s (${events} events checkpointed of ${b.events})`,
        );
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const ms = nowMs() - t0;
    const counted = await b.progress.counted();
    if (counted !== b.events)
      throw new Error(`invariant: the view counted ${counted} events; the log holds ${b.events}`);
    const split = await b.progress.split();
    const processes = children.map((c) => ({
      cpuS: processCpuSeconds(c.child.pid!),
      peakRssBytes: processPeakRssBytes(c.child.pid!),
    }));
    return { ms, firstMs: first?.ms ?? null, firstEvents: first?.events ?? 0, processes, split };
  } finally {
    await Promise.all(children.map((c) => kill(c.child, b.nodeFlags.length > 0)));
  }
}

interface Started {
  child: ChildProcess;
  argv: string[];
  stderr: string;
}

function start(argv: string[], nodeFlags: string[]): Started {
  // A process group of its own, so that killing it also kills what it started.
  const child = spawn(process.execPath, [...nodeFlags, BIN, ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const s: Started = { child, argv, stderr: '' };
  const t0 = nowMs();
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    s.stderr = (s.stderr + d).slice(-STDERR_KEEP);
    if (process.env.BENCH_TRACE)
      for (const line of d.trimEnd().split('\n'))
        console.log(`    [${child.pid} +${Math.round(nowMs() - t0)} ms] ${line}`);
  });
  return s;
}

function exited(s: Started): Error {
  const how = s.child.exitCode !== null ? `status ${s.child.exitCode}` : s.child.signalCode;
  return new Error(`kappa ${s.argv.join(' ')} exited (${how}) before the views were built. It wrote:\n${s.stderr}`);
}

/** SIGKILLs `child`'s group; with `gently`, first a SIGTERM and up to STOP_GENTLY_MS to exit (a profile is written on exit). */
function kill(child: ChildProcess, gently: boolean): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = gently ? setTimeout(() => killGroup(child), STOP_GENTLY_MS) : undefined;
    child.once('exit', () => {
      clearTimeout(timer);
      killGroup(child); // what it started (its background type check)
      resolve();
    });
    if (gently) child.kill('SIGTERM');
    else killGroup(child);
  });
}

/** Checkpoints and rows of `view` in a PostgreSQL database. */
export function postgresProgress(url: string, view: string, countColumn: string): Progress {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return {
    async committed() {
      const map = new Map<number, number>();
      try {
        const res = await pool.query<{ partition: number; offset: string }>(
          'SELECT "partition" AS partition, max("offset") AS offset FROM kappa_checkpoints WHERE lower(view) = lower($1) GROUP BY "partition"',
          [view],
        );
        for (const r of res.rows) map.set(r.partition, Number(r.offset));
      } catch (err) {
        // Before the first process has created the tables.
        if ((err as { code?: string }).code !== '42P01') throw err;
      }
      return map;
    },
    async counted() {
      const res = await pool.query<{ n: string }>(`SELECT sum(${countColumn}) AS n FROM ${view}`);
      return Number(res.rows[0].n);
    },
    async split() {
      // Leases of the view's tasks (the coordinator's lease is not a task of the view).
      const res = await pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM kappa_task_leases WHERE owner IS NOT NULL AND task <> 'coordinator' GROUP BY owner ORDER BY n DESC",
      );
      return res.rows.map((r) => r.n).join('+');
    },
    close: () => pool.end(),
  };
}

/** Checkpoints and rows of `view` in the SQLite file of a data dir, read beside the writer (WAL). */
export function sqliteProgress(path: string, view: string, countColumn: string): Progress {
  let db: Database.Database | null = null;
  const open = (): Database.Database | null => {
    if (db === null && existsSync(path)) db = new Database(path, { readonly: true, fileMustExist: true });
    return db;
  };
  return {
    async committed() {
      const map = new Map<number, number>();
      try {
        const rows = open()
          ?.prepare(
            'SELECT "partition" AS partition, max("offset") AS offset FROM kappa_checkpoints WHERE view = ? GROUP BY "partition"',
          )
          .all(view) as { partition: number; offset: number }[] | undefined;
        for (const r of rows ?? []) map.set(r.partition, r.offset);
      } catch (err) {
        // The file exists before its tables do.
        if (!/no such table/.test((err as Error).message)) throw err;
      }
      return map;
    },
    async counted() {
      const row = open()!.prepare(`SELECT sum(${countColumn}) AS n FROM ${view}`).get() as { n: number };
      return row.n;
    },
    split: async () => null,
    async close() {
      db?.close();
      db = null;
    },
  };
}
