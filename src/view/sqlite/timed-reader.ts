/**
 * Queries with a time limit. SQLite runs a statement to its end on the thread that called it, and
 * better-sqlite3 has no way to interrupt it, so a query that must stop in time runs on a worker
 * thread with its own read-only connection; past the limit the thread is terminated (which ends
 * the statement and closes its connection) and a fresh one is started for the next query. The
 * caller has already checked the statement is read-only on its own connection.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { KappaError } from '../../errors.ts';
import type { QueryResult } from '../types.ts';

const SQLITE = createRequire(import.meta.url).resolve('better-sqlite3');
/** Threads running queries at once; more queries wait their turn. */
const THREADS_MAX = 2;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true, timeout: workerData.busyTimeoutMs });
parentPort.on('message', ({ sql, params }) => {
  try {
    const stmt = db.prepare(sql);
    const rows = [];
    for (const row of stmt.iterate(...params)) {
      if (rows.length === workerData.rowsMax) {
        parentPort.postMessage({ tooMany: true });
        return;
      }
      rows.push(row);
    }
    parentPort.postMessage({ rows });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message), code: err && err.code });
  }
});
`;

interface Job {
  sql: string;
  params: unknown[];
  columns: string[];
  timeoutMs: number;
  resolve: (r: QueryResult) => void;
  reject: (e: Error) => void;
}

export class TimedReader {
  private idle: Worker[] = [];
  private busy = 0;
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly busyTimeoutMs: number,
    private readonly rowsMax: number,
  ) {}

  query(sql: string, params: unknown[], columns: string[], timeoutMs: number): Promise<QueryResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ sql, params, columns, timeoutMs, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.closed || this.queue.length === 0) return;
    if (this.idle.length === 0 && this.busy >= THREADS_MAX) return;
    const job = this.queue.shift()!;
    const worker = this.idle.pop() ?? new Worker(WORKER, { eval: true, workerData: { sqlite: SQLITE, path: this.path, busyTimeoutMs: this.busyTimeoutMs, rowsMax: this.rowsMax } });
    this.busy++;
    let settled = false;
    const finish = (keep: boolean): void => {
      settled = true;
      clearTimeout(timer);
      worker.removeAllListeners('message');
      worker.removeAllListeners('error');
      this.busy--;
      if (keep && !this.closed) this.idle.push(worker);
      else void worker.terminate();
      this.next();
    };
    const timer = setTimeout(() => {
      if (settled) return;
      finish(false);
      job.reject(new KappaError('KAPPA_QUERY_TIMEOUT', `The query ran for more than ${job.timeoutMs} ms and was stopped. Query less: add a WHERE clause or a LIMIT.`, { timeoutMs: job.timeoutMs }));
    }, job.timeoutMs);
    worker.on('message', (m: { rows?: Record<string, unknown>[]; tooMany?: boolean; error?: string; code?: string }) => {
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
    worker.postMessage({ sql: job.sql, params: job.params });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('The view store is closed.'));
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }
}
