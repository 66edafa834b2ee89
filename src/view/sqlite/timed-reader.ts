/**
 * Queries with a time limit: users' SQL (POST /v1/sql). SQLite runs a statement to its end on the
 * thread that called it; better-sqlite3 cannot interrupt it, and a worker thread busy inside SQLite
 * does not stop when terminated. So a query that must stop in time runs in a child process with its
 * own read-only connection (timed-reader-child.cjs), which is SIGKILLed past the limit; a fresh one
 * serves the next query. The caller has already checked the statement is read-only on its own
 * connection.
 *
 * The child also keeps everything else a query could cost out of this process: it reads only the
 * views (KAPPA_QUERY_NOT_A_VIEW), refuses an answer past `resultBytesMax` before sending any of it,
 * and is ended past `memoryBytesMax` of memory (both KAPPA_QUERY_RESULT_TOO_LARGE). Parameters are
 * checked here before they are sent: scalars only, so nothing nested reaches the serialiser.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { KappaError } from '../../errors.ts';
import type { QueryResult } from '../types.ts';
import { RESULT_BYTES_MAX, type Refusal } from './query-limits.cjs';

const SQLITE = createRequire(import.meta.url).resolve('better-sqlite3');
const CHILD = fileURLToPath(new URL('./timed-reader-child.cjs', import.meta.url));
/** Processes running queries at once; more queries wait their turn. */
const PROCESSES_MAX = 2;
/** Queries waiting for a process at most; more are refused (429). */
const QUEUE_MAX = 64;
/**
 * A query process is ended when its resident memory passes this: a process at rest takes about
 * 50 MiB, an answer at RESULT_BYTES_MAX a few times that as JavaScript objects.
 */
export const QUERY_MEMORY_BYTES_MAX = 512 * 1024 * 1024;
/** SQLite's limit on `?` placeholders in one statement (SQLITE_MAX_VARIABLE_NUMBER). */
const PARAMS_MAX = 32_766;
/** The signal the child's memory watchdog ends it with (see timed-reader-child.cjs). */
const MEMORY_SIGNAL = 'SIGUSR2';

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

export interface QueryLimits {
  /** The largest answer, in bytes of JSON (about); default RESULT_BYTES_MAX. */
  resultBytesMax?: number;
  /** The most resident memory a query process may use; default QUERY_MEMORY_BYTES_MAX. */
  memoryBytesMax?: number;
}

/**
 * Query parameters as SQLite binds them: strings, numbers, null, bytes, and booleans as 1 or 0.
 * Anything else (an array, an object) is refused naming the parameter. Never recursive: a value
 * nested 100,000 deep is refused by its first level.
 */
export function bindableParams(params: readonly unknown[]): unknown[] {
  if (params.length > PARAMS_MAX)
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `A query takes at most ${PARAMS_MAX} parameters; ${params.length} were sent.`,
      { paramsMax: PARAMS_MAX },
    );
  return params.map((value, i) => {
    if (
      value === null ||
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'bigint' ||
      value instanceof Uint8Array
    )
      return value;
    if (typeof value === 'boolean') return value ? 1 : 0;
    const kind = Array.isArray(value)
      ? 'an array'
      : value === undefined
        ? 'undefined'
        : `a${typeof value === 'object' ? 'n' : ''} ${typeof value}`;
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `Query parameter ${i + 1} (params[${i}]) is ${kind}; each parameter must be a string, a number, a boolean or null, one per ? placeholder.`,
      { param: i },
    );
  });
}

function refusedError(r: Refusal): KappaError {
  return new KappaError(r.code, r.message, r.details);
}

function outOfMemory(bytesMax: number): KappaError {
  return new KappaError(
    'KAPPA_QUERY_RESULT_TOO_LARGE',
    `The query needed more than ${Math.round(bytesMax / (1024 * 1024))} MiB of memory (a value or the result is too large), so it was stopped. Add a LIMIT, or select fewer or smaller values.`,
    { memoryBytesMax: bytesMax },
  );
}

function timedOut(timeoutMs: number): KappaError {
  return new KappaError(
    'KAPPA_QUERY_TIMEOUT',
    `The query ran for more than ${timeoutMs} ms (waiting for its turn included) and was stopped. Query less: add a WHERE clause or a LIMIT.`,
    { timeoutMs },
  );
}

export class TimedReader {
  private idle: ChildProcess[] = [];
  private busy = 0;
  private readonly queue: Job[] = [];
  private closed = false;

  private readonly resultBytesMax: number;
  private readonly memoryBytesMax: number;

  constructor(
    private readonly path: string,
    private readonly busyTimeoutMs: number,
    private readonly rowsMax: number,
    limits: QueryLimits = {},
  ) {
    this.resultBytesMax = limits.resultBytesMax ?? RESULT_BYTES_MAX;
    this.memoryBytesMax = limits.memoryBytesMax ?? QUERY_MEMORY_BYTES_MAX;
  }

  query(sql: string, params: unknown[], columns: string[], timeoutMs: number): Promise<QueryResult> {
    try {
      params = bindableParams(params);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.queue.length >= QUEUE_MAX) {
      return Promise.reject(
        new KappaError('KAPPA_OVERLOADED', `${QUEUE_MAX} queries are already waiting for their turn; retry shortly.`, {
          retryAfterSeconds: 1,
        }),
      );
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
    const worker = reused ?? this.spawn();
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
      try {
        worker.send({ sql: job.sql, params: job.params });
      } catch (err) {
        finish(false);
        const message = `The query could not be sent to its process: ${(err as Error).message}`;
        job.reject(new KappaError('KAPPA_SQL_ERROR', message, {}, err));
      }
    };
    worker.on(
      'message',
      (m: { ready?: boolean; rows?: Record<string, unknown>[]; refused?: Refusal; error?: string; code?: string }) => {
        if (m.ready) {
          job.deadline += Date.now() - spawnedAt; // a new process's start-up is not the query's time
          return send();
        }
        if (settled) return;
        finish(true);
        if (m.rows !== undefined) job.resolve({ columns: job.columns, rows: m.rows });
        else if (m.refused !== undefined) job.reject(refusedError(m.refused));
        else
          job.reject(new KappaError('KAPPA_SQL_ERROR', `SQL error: ${m.error}`, m.code ? { sqliteCode: m.code } : {}));
      },
    );
    worker.once('error', (err) => {
      if (settled) return;
      finish(false);
      job.reject(new KappaError('KAPPA_SQL_ERROR', `The query could not run: ${err.message}`, {}, err));
    });
    worker.once('exit', (code, signal) => {
      if (settled) return;
      finish(false);
      if (signal === MEMORY_SIGNAL) job.reject(outOfMemory(this.memoryBytesMax));
      else {
        const message = `The query process ended (${signal ?? `exit code ${code}`}) before answering.`;
        job.reject(new KappaError('KAPPA_SQL_ERROR', message, {}));
      }
    });
    if (reused !== undefined) send();
  }

  /** A new child process for queries (it says `ready` once its database is open). */
  private spawn(): ChildProcess {
    const args = [SQLITE, this.path, String(this.busyTimeoutMs), String(this.rowsMax)];
    args.push(String(this.resultBytesMax), String(this.memoryBytesMax));
    return fork(CHILD, args, { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('The view store is closed.'));
    for (const w of this.idle.splice(0)) w.disconnect();
  }
}
