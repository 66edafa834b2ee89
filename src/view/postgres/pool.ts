/**
 * The store's connections to PostgreSQL: a pool of writer connections (every change is one
 * transaction on one of them, `tx`) and a pool of reader connections for `query` and `rowsByKey`,
 * so a long query never holds a connection a flush needs, nor the other way round.
 *
 * Thread-safety: node-postgres runs one statement at a time per connection; concurrent calls each
 * take their own connection from the pool (or wait for one). Transactions of different calls never
 * share a connection, so they interleave only as PostgreSQL's own isolation allows.
 *
 * Failures: a call while the server is down fails with KAPPA_STORE_UNAVAILABLE naming the server
 * (./errors.ts); the pool drops broken connections (`release(err)`), and an idle connection the
 * server closes is dropped by the pool's 'error' handler (without one, node-postgres would throw it
 * as an uncaught exception), so the next call after the server is back opens fresh ones.
 * A transaction that dies of a deadlock or a serialization failure is run again, whole, a few times.
 */
import pg from 'pg';
import { storeError } from './errors.ts';
import { TYPE_PARSERS } from './values.ts';

/** Transient conflicts between concurrent transactions: the transaction is run again from the start. */
const RETRY_STATES = new Set(['40P01', '40001']);
const TX_ATTEMPTS_MAX = 5;

export interface PoolOptions {
  connectionString: string;
  schema: string;
  size: number;
  connectTimeoutMs: number;
  /** A writer statement unanswered for this long fails and its connection is dropped (a server cut off, paused or hung). */
  responseTimeoutMs: number;
  applicationName: string;
}

export class Connections {
  private closed = false;
  readonly writer: pg.Pool;
  readonly reader: pg.Pool;

  /** How long a statement may go unanswered (see PoolOptions). */
  readonly responseTimeoutMs: number;

  constructor(
    opts: PoolOptions & { readers: number },
    readonly server: string,
  ) {
    this.responseTimeoutMs = opts.responseTimeoutMs;
    this.writer = makePool(opts, opts.size, 'writer');
    this.reader = makePool(opts, opts.readers, 'reader');
  }

  checkOpen(): void {
    if (this.closed) throw new Error('The view store is closed.');
  }

  /** Runs `fn` in one transaction on a writer connection; rolled back if it throws. */
  async tx<T>(action: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(this.writer, action, async (client) => {
          await client.query('BEGIN');
          try {
            const result = await fn(client);
            await client.query('COMMIT');
            return result;
          } catch (err) {
            await client.query('ROLLBACK').catch(() => {});
            throw err;
          }
        });
      } catch (err) {
        const state = (err as { code?: unknown })?.code;
        if (attempt >= TX_ATTEMPTS_MAX || typeof state !== 'string' || !RETRY_STATES.has(state)) throw err;
      }
    }
  }

  /**
   * One transaction whose statements `fn` sends without waiting for their answers (`send`): the
   * writer connections run in node-postgres's pipeline mode, so BEGIN, the statements and COMMIT
   * go out together and the whole transaction costs one round trip (unless `fn` awaits an answer
   * it needs). A statement that fails aborts the transaction in the server: the ones behind it
   * fail too, COMMIT ends it as a rollback, and the first failure (the cause) is thrown. So a
   * statement that must stop the transaction has to fail in the server (raise), not just touch
   * no row. Transient conflicts run the whole transaction again, as `tx` does.
   */
  async pipelined(action: string, fn: (send: Send) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(this.writer, action, (client) => runPipelined(client, fn));
      } catch (err) {
        const state = (err as { code?: unknown })?.code;
        if (attempt >= TX_ATTEMPTS_MAX || typeof state !== 'string' || !RETRY_STATES.has(state)) throw err;
      }
    }
  }

  /** One statement on a writer connection, outside any transaction (it commits on its own). */
  async run<R extends pg.QueryResultRow = pg.QueryResultRow>(
    action: string,
    sql: string | pg.QueryConfig,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.withClient(this.writer, action, (client) =>
      typeof sql === 'string' ? client.query<R>(sql, params) : client.query<R>(sql),
    );
  }

  /** Runs `fn` with a connection of `pool`; errors become typed, and a broken connection is dropped. */
  async withClient<T>(pool: pg.Pool, action: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.checkOpen();
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw storeError(err, action, this.server);
    }
    let broken: Error | undefined;
    // A connection that dies between two statements of a call (no query in flight) emits 'error'
    // on the client, which the pool listens to only while the client is idle: without a listener
    // here it would be an uncaught exception. The next statement fails, and the call with it.
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (err) {
      // A connection error leaves the connection useless; one that died mid-transaction too.
      const mapped = storeError(err, action, this.server);
      if (mapped !== err || (client as unknown as { _ending?: boolean })._ending) broken = err as Error;
      throw mapped;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Marks the store closed (later calls are refused) and ends both pools. False if it was already closed. */
  async close(): Promise<boolean> {
    if (this.closed) return false;
    this.closed = true;
    await Promise.all([this.writer.end(), this.reader.end()]);
    return true;
  }
}

/** Sends one statement of a pipelined transaction; its answer can be awaited, or not. */
export type Send = (query: string | pg.QueryConfig) => Promise<pg.QueryResult>;

async function runPipelined(client: pg.PoolClient, fn: (send: Send) => Promise<void>): Promise<void> {
  const sent: Promise<pg.QueryResult>[] = [];
  const send: Send = (query) => {
    const answer = typeof query === 'string' ? client.query(query) : client.query(query);
    answer.catch(() => {}); // read below, in order
    sent.push(answer);
    return answer;
  };
  send('BEGIN');
  let thrown: { error: unknown } | null = null;
  try {
    await fn(send);
  } catch (error) {
    thrown = { error };
  }
  if (thrown === null) send('COMMIT');
  const answers = await Promise.allSettled(sent);
  const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
  if (failed === undefined && thrown === null) return;
  // COMMIT was not sent, or it ended an aborted transaction: either way nothing is committed.
  await client.query('ROLLBACK').catch(() => {});
  throw failed !== undefined ? failed.reason : thrown!.error;
}

function makePool(opts: PoolOptions, max: number, role: string): pg.Pool {
  const pool = new pg.Pool({
    // Writers send a flush's statements together (see `pipelined`); readers read a cursor in turn.
    pipeline: role === 'writer',
    connectionString: opts.connectionString,
    max,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: `${opts.applicationName} (${role})`,
    // Every connection reads and writes the store's schema (see ./schema.ts). A writer's session
    // that sits in an open transaction for responseTimeoutMs (its process frozen or cut off after
    // BEGIN) is ended by the server, so the row locks it holds (a task's lease row, taken by the
    // fence) cannot block another process's takeover for longer than that.
    options:
      role === 'writer'
        ? `-c search_path=${opts.schema} -c idle_in_transaction_session_timeout=${opts.responseTimeoutMs}`
        : `-c search_path=${opts.schema}`,
    types: TYPE_PARSERS,
    // A server that stops answering without closing the connection (a network split, a paused
    // host) would leave a call waiting forever: TCP keepalives notice a dead peer eventually, and
    // a statement unanswered for responseTimeoutMs fails at once, its connection dropped. (A
    // user's query gets its own time limit plus that, or none without one: ./readers.ts.)
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    query_timeout: opts.responseTimeoutMs,
  });
  // An idle connection the server closed (a restart, a failover): the pool drops it; the next
  // call opens a new one. Without this listener node-postgres would crash the process.
  pool.on('error', () => {});
  // And a connection the server ends while no call uses it but it is not idle in the pool either
  // (between a release and the pool taking it back, or a pipelined answer after the last
  // statement): its 'error' event would have no listener and crash the process (seen when the
  // server stopped under a cluster). Calls still learn of it from their next statement.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}
