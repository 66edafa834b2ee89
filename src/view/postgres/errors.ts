/**
 * PostgreSQL's failures as Kappa's typed errors, said for someone who has not seen the code.
 *
 * - The server cannot be reached, or went away mid-call (refused, reset, shut down, starting up):
 *   KAPPA_STORE_UNAVAILABLE naming the server (host, port, database; never the password), and
 *   retriable: the pool opens new connections on the next call, so once the server is back the
 *   store works again without a restart.
 * - A fenced write (the task's epoch moved on: another process owns it now): KAPPA_FENCED.
 * - Disk full: KAPPA_DISK_FULL. Anything else passes unchanged.
 */
import { KappaError } from '../../errors.ts';

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);
/** SQLSTATEs of a server that is going away or not there yet (class 08: connection exceptions). */
const GONE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** True when `err` says the server cannot be reached or dropped the connection (not a SQL error). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  // 08P01 (protocol violation) is class 08 too, but it is what a wrong number of parameters gives.
  if (CONNECTION_ERRNOS.has(code) || GONE_STATES.has(code) || (code.startsWith('08') && code !== '08P01')) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable/i.test(
    message,
  );
}

/** The server as a user knows it: `host:port/database`, from the connection string, without credentials. */
export function serverName(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname || '/'}`;
  } catch {
    return 'the PostgreSQL server';
  }
}

/** Typed Kappa errors for what PostgreSQL reports while doing `action`; anything else passes unchanged. */
export function storeError(err: unknown, action: string, server: string): unknown {
  if (err instanceof KappaError) return err;
  if (isConnectionError(err)) {
    return new KappaError(
      'KAPPA_STORE_UNAVAILABLE',
      `Could not ${action}: the PostgreSQL server at ${server} cannot be reached or closed the connection ` +
        `(${(err as Error).message || (err as { code?: string }).code}). Nothing was changed by this call; ` +
        'it will work again once the server is back (check that it is running and reachable).',
      { server, cause: (err as { code?: string }).code },
      err,
    );
  }
  const code = (err as { code?: unknown })?.code;
  if (code === '53100') {
    return new KappaError(
      'KAPPA_DISK_FULL',
      `The PostgreSQL server at ${server} is out of disk space: could not ${action}. Nothing was changed.`,
      { server, sqlState: code },
      err,
    );
  }
  return err;
}

/** The write of a task whose epoch has moved on: another process took the task. */
export function fencedError(task: string, epoch: number, action: string): KappaError {
  return new KappaError(
    'KAPPA_FENCED',
    `Could not ${action}: task ${task} is no longer this process's (it held epoch ${epoch}, and another ` +
      'process has taken the task since). Nothing of this write was committed; the new owner continues from the last ' +
      'committed checkpoint.',
    { task, epoch },
  );
}
