/**
 * Queries with a time limit. SQLite runs a statement to its end on the thread that called it;
 * better-sqlite3 cannot interrupt it, and a worker thread busy inside SQLite does not stop when
 * terminated. So a query that must stop in time runs in a child process with its own read-only
 * connection (timed-reader-child.cjs), which is SIGKILLed past the limit; a fresh one serves the
 * next query. The caller has already checked the statement is read-only on its own connection.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { KappaError } from '../../errors.ts';
import type { QueryResult } from '../types.ts';

const SQLITE = createRequire(import.meta.url).resolve('better-sqlite3');
const CHILD = fileURLToPath(new URL('./timed-reader-child.cjs', import.meta.url));
/** Processes running queries at once; more queries wait their turn. */
const PROCESSES_MAX = 2;
/** Queries waiting for a process at most; more are refused (429). */
const QUEUE_MAX = 64;

interface Job {
  sql: string;
  params: unknown[];
  columns: string[];
  timeoutMs: number;
  /** The limit counts from when the query was asked for: time waiting for a free process counts. */
  deadline: number;
  resolve: (r: QueryResult) => void;
  reject: (e: Error) => void;
}

function timedOut(timeoutMs: number): KappaError {
  return new KappaError('KAPPA_QUERY_TIMEOUT', `The query ran for more than ${timeoutMs} ms (waiting for its turn included) and was stopped. Query less: add a WHERE clause or a LIMIT.`, { timeoutMs });
}

export class TimedReader {
  private idle: ChildProcess[] = [];
  private busy = 0;
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly busyTimeoutMs: number,
    private readonly rowsMax: number,
  ) {}

  query(sql: string, params: unknown[], columns: string[], timeoutMs: number): Promise<QueryResult> {
    if (this.queue.length >= QUEUE_MAX) {
      return Promise.reject(new KappaError('KAPPA_OVERLOADED', `${QUEUE_MAX} queries are already waiting for their turn; retry shortly.`, { retryAfterSeconds: 1 }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ sql, params, columns, timeoutMs, deadline: Date.now() + timeoutMs, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.closed || this.queue.length === 0) return;
    if (this.idle.length === 0 && this.busy >= PROCESSES_MAX) return;
    const job = this.queue.shift()!;
    if (Date.now() >= job.deadline) {
      job.reject(timedOut(job.timeoutMs));
      return this.next();
    }
    const reused = this.idle.pop();
    const spawnedAt = Date.now();
    const worker = reused ?? fork(CHILD, [SQLITE, this.path, String(this.busyTimeoutMs), String(this.rowsMax)], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.busy++;
    let settled = false;
    const finish = (keep: boolean): void => {
      settled = true;
      clearTimeout(timer);
      worker.removeAllListeners('message');
      worker.removeAllListeners('error');
      worker.removeAllListeners('exit');
      this.busy--;
      if (keep && !this.closed) this.idle.push(worker);
      else worker.kill('SIGKILL');
      this.next();
    };
    let timer: NodeJS.Timeout | undefined;
    // The limit counts from when the query is handed to a ready process, not the process's start.
    const send = (): void => {
      timer = setTimeout(
        () => {
          if (settled) return;
          finish(false);
          job.reject(timedOut(job.timeoutMs));
        },
        Math.max(1, job.deadline - Date.now()),
      );
      worker.send({ sql: job.sql, params: job.params });
    };
    worker.on('message', (m: { ready?: boolean; rows?: Record<string, unknown>[]; tooMany?: boolean; error?: string; code?: string }) => {
      if (m.ready) {
        job.deadline += Date.now() - spawnedAt; // a new process's start-up is not the query's time
        return send();
      }
      if (settled) return;
      finish(true);
      if (m.rows !== undefined) job.resolve({ columns: job.columns, rows: m.rows });
      else if (m.tooMany) job.reject(new KappaError('KAPPA_SQL_ERROR', `The query returns more than ${this.rowsMax} rows; add a LIMIT (and OFFSET to page).`, { rowsMax: this.rowsMax }));
      else job.reject(new KappaError('KAPPA_SQL_ERROR', `SQL error: ${m.error}`, m.code ? { sqliteCode: m.code } : {}));
    });
    worker.once('error', (err) => {
      if (settled) return;
      finish(false);
      job.reject(new KappaError('KAPPA_SQL_ERROR', `The query could not run: ${err.message}`, {}, err));
    });
    worker.once('exit', (code) => {
      if (settled) return;
      finish(false);
      job.reject(new KappaError('KAPPA_SQL_ERROR', `The query process ended (exit code ${code}) before answering.`, {}));
    });
    if (reused !== undefined) send();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('The view store is closed.'));
    for (const w of this.idle.splice(0)) w.disconnect();
  }
}
