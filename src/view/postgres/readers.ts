/**
 * The read side of a PostgreSQL store: `query` (`POST /v1/sql`, `kappa query`) and `rowsByKey`, on
 * the reader pool (./pool.ts).
 *
 * A query runs as:
 *   BEGIN READ ONLY; SET LOCAL statement_timeout; SET LOCAL ROLE <reader role>;
 *   DECLARE kappa_query NO SCROLL CURSOR FOR <the statement>;  FETCH 1000 … until done or a cap;
 *   ROLLBACK; SELECT pg_advisory_unlock_all()
 * - read-only: a statement that starts with a command other than a query (SET, BEGIN, DO, …), or
 *   that names a writing command anywhere (INSERT, UPDATE, DELETE, MERGE, DROP, …, FOR UPDATE) is refused with
 *   KAPPA_QUERY_NOT_READ_ONLY before it is sent; behind that check, the transaction is READ ONLY
 *   (PostgreSQL refuses any write, a superuser's too, with SQLSTATE 25006, reported the same way),
 *   DECLARE takes only a query, and the transaction is always rolled back: that undoes whatever a
 *   function could have changed on the pooled connection (set_config, even not local), except
 *   session advisory locks, which are released after it;
 * - the reader role may read the public views and the version tables, not Kappa's own kappa_*
 *   tables (KAPPA_QUERY_NOT_A_VIEW); without the role (the store's user may not create one) the
 *   query runs as the store's user (said in `readerRole` of the store's options);
 * - one statement: the extended protocol refuses several (KAPPA_SQL_ERROR);
 * - bounded: at most SQL_CHARS_MAX characters of SQL, `queryRowsMax` rows (KAPPA_SQL_ERROR asking
 *   for a LIMIT) and RESULT_BYTES_MAX bytes of answer (KAPPA_QUERY_RESULT_TOO_LARGE), counted as
 *   rows arrive in batches, so a huge answer is never held whole; `timeoutMs` stops the statement
 *   in the server (statement_timeout, KAPPA_QUERY_TIMEOUT).
 * Parameters are positional: `?` (as in SQLite; outside literals, quoted names and comments) or
 * PostgreSQL's own `$1`.
 *
 * A query reads one snapshot, committed rows only, and never waits for a flush (MVCC).
 */
import type pg from 'pg';
import { KappaError, closestNames } from '../../errors.ts';
import type { QueryOptions, QueryResult, VersionTable } from '../types.ts';
import { isConnectionError } from './errors.ts';
import type { Connections } from './pool.ts';
import { quoteIdent, selectRowByKeySql } from './sql.ts';
import { firstKeyword, numberPlaceholders, writingKeyword } from './statement.ts';
import { toColumn } from './values.ts';

/** The largest answer a query may give, in bytes of JSON (about); the same as SQLite's. */
export const RESULT_BYTES_MAX = 32 * 1024 * 1024;
/** The longest SQL text a query may have; the same as SQLite's. */
export const SQL_CHARS_MAX = 1024 * 1024;
const FETCH_ROWS = 1000;
/** The longest a timer can wait (node's limit), for a statement that may run as long as it takes. */
const FOREVER_MS = 2 ** 31 - 1;
/** Statements that change data, the schema, the session or the transaction: refused by their first word. */
const NOT_READ_STATEMENTS = new Set(
  (
    'insert update delete merge truncate create drop alter grant revoke copy call do set reset lock vacuum analyze ' +
    'cluster reindex refresh listen unlisten notify prepare execute deallocate discard comment security import load ' +
    'checkpoint begin commit rollback savepoint release start abort end'
  ).split(' '),
);

export class PostgresReaders {
  constructor(
    private readonly db: Connections,
    private readonly queryRowsMax: number,
    private readonly readerRole: string | null,
  ) {}

  async query(sql: string, params: unknown[], opts: QueryOptions): Promise<QueryResult> {
    checkQueryInput(sql, params, opts);
    const text = numberPlaceholders(sql);
    return this.db.withClient(this.db.reader, 'run the query', async (client) => {
      try {
        // One round trip: the transaction stays open after this simple query (it began explicitly).
        const begin = ['BEGIN READ ONLY'];
        if (opts.timeoutMs !== undefined)
          begin.push(`SET LOCAL statement_timeout = ${Math.max(1, Math.ceil(opts.timeoutMs))}`);
        if (this.readerRole !== null) begin.push(`SET LOCAL ROLE ${quoteIdent(this.readerRole)}`);
        await client.query(begin.join('; '));
        // How long the client waits for the statement's answers: its time limit (which the server
        // enforces) and the usual margin for an unresponsive server; without a limit, as long as
        // the query runs (`kappa query` over a large view may take long).
        const waitMs = opts.timeoutMs === undefined ? FOREVER_MS : opts.timeoutMs + this.db.responseTimeoutMs;
        await client.query({
          text: `DECLARE kappa_query NO SCROLL CURSOR FOR ${text}`,
          values: params,
          queryMode: 'extended',
          query_timeout: waitMs,
        } as pg.QueryConfig);
        return await this.fetchAll(client, opts.timeoutMs, waitMs);
      } catch (err) {
        throw await queryError(err, client, opts.timeoutMs);
      } finally {
        await client.query('ROLLBACK; SELECT pg_advisory_unlock_all()').catch(() => {});
      }
    });
  }

  /** The public view's rows of `def`'s version with these keys, each found through the key's unique index (null: none). */
  async rowsByKey(
    def: VersionTable,
    keys: readonly (readonly (string | number | null)[])[],
  ): Promise<(Record<string, unknown> | null)[]> {
    const nk = def.keyColumns.length;
    return this.db.withClient(this.db.reader, `read rows of view "${def.name}" v${def.version}`, async (client) => {
      const rows: (Record<string, unknown> | null)[] = [];
      for (const key of keys) {
        const nulls = def.keyColumns.map((_, k) => key[k] === null || key[k] === undefined);
        const values: unknown[] = [];
        for (let k = 0; k < nk; k++) if (!nulls[k]) values.push(toColumn(def.keyColumns[k].type, key[k]));
        // A value the column could not hold matches no row.
        if (values.some((v) => typeof v === 'symbol')) {
          rows.push(null);
          continue;
        }
        const result = await client.query(selectRowByKeySql(def, nulls), values);
        rows.push((result.rows[0] as Record<string, unknown> | undefined) ?? null);
      }
      return rows;
    });
  }

  /** FETCHes the cursor in batches, refusing past the row and byte caps (and the time limit, between batches). */
  private async fetchAll(client: pg.PoolClient, timeoutMs: number | undefined, waitMs: number): Promise<QueryResult> {
    const startedMs = Date.now();
    const rows: Record<string, unknown>[] = [];
    let columns: string[] | null = null;
    let bytes = 0;
    for (;;) {
      const batch = await client.query({
        text: `FETCH FORWARD ${FETCH_ROWS} FROM kappa_query`,
        query_timeout: waitMs,
      } as pg.QueryConfig);
      columns ??= batch.fields.map((f) => f.name);
      for (const row of batch.rows) {
        if (rows.length === this.queryRowsMax) throw tooManyRows(this.queryRowsMax);
        bytes += rowJsonBytes(row);
        if (bytes > RESULT_BYTES_MAX) throw resultTooLarge();
        rows.push(row);
      }
      if (batch.rows.length < FETCH_ROWS) return { columns, rows };
      if (timeoutMs !== undefined && Date.now() - startedMs > timeoutMs) throw timedOut(timeoutMs);
    }
  }
}

function checkQueryInput(sql: unknown, params: unknown, opts: QueryOptions): asserts sql is string {
  if (typeof sql !== 'string') throw new KappaError('KAPPA_INVALID_ARGUMENT', 'A query must be a SQL string.', {});
  if (sql.length > SQL_CHARS_MAX) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The SQL statement has ${sql.length} characters, more than ${SQL_CHARS_MAX}: ` +
        'pass long values as parameters (?), or query in parts.',
      { sqlCharsMax: SQL_CHARS_MAX },
    );
  }
  if (!Array.isArray(params))
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      'Query parameters must be an array (positional parameters, `?`).',
      {},
    );
  if (opts.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0))
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'A query time limit must be a positive number of ms.', {});
  const first = firstKeyword(sql);
  const writing = writingKeyword(sql);
  if ((first !== null && NOT_READ_STATEMENTS.has(first)) || writing !== null) {
    throw new KappaError(
      'KAPPA_QUERY_NOT_READ_ONLY',
      'Queries are read-only: this statement would change data or the database connection, so it was not run ' +
        `(${writing !== null ? `it contains ${writing.toUpperCase()}` : `it starts with ${String(first).toUpperCase()}`}). ` +
        'Use a single SELECT (or WITH … SELECT); for table information use SELECT … FROM information_schema.columns.',
      { sql: sql.slice(0, 200) },
    );
  }
}

/** PostgreSQL's error for a query, as Kappa's: read-only, not a view, timeout, or a SQL error with its message. */
async function queryError(err: unknown, client: pg.PoolClient, timeoutMs: number | undefined): Promise<unknown> {
  if (err instanceof KappaError || isConnectionError(err)) return err; // the pool's caller says the server is gone
  const state = (err as { code?: unknown })?.code;
  const message = (err as Error)?.message ?? String(err);
  if (state === '25006' || (state === '0A000' && /data-modifying|read-only/i.test(message))) {
    return new KappaError(
      'KAPPA_QUERY_NOT_READ_ONLY',
      `Queries are read-only: this statement would change data, so it was not run (${message}).`,
      { sqlState: state },
      err,
    );
  }
  if (state === '42501') {
    return new KappaError(
      'KAPPA_QUERY_NOT_A_VIEW',
      `Queries read only the views and their version tables, not Kappa's own tables (${message}).`,
      { sqlState: state },
      err,
    );
  }
  if (state === '57014' && timeoutMs !== undefined) return timedOut(timeoutMs);
  if (typeof state !== 'string' || !/^[0-9A-Z]{5}$/.test(state)) return err; // not PostgreSQL's: a connection error
  return new KappaError('KAPPA_SQL_ERROR', await explained(message, client), { sqlState: state }, err);
}

/** PostgreSQL's "relation does not exist", with the views' names and the closest ones. */
async function explained(message: string, client: pg.PoolClient): Promise<string> {
  const table = /relation "([^"]+)" does not exist/.exec(message)?.[1];
  if (table === undefined) return `SQL error: ${message}`;
  let views: string[];
  try {
    await client.query('ROLLBACK');
    const rows = await client.query<{ name: string }>(
      "SELECT name FROM kappa_views WHERE state = 'live' ORDER BY name",
    );
    views = rows.rows.map((r) => r.name);
  } catch {
    return `SQL error: ${message}`;
  }
  const list = views.length === 0 ? 'There are no views yet.' : `The views: ${views.join(', ')}.`;
  const close = closestNames(table, views);
  return (
    `There is no view "${table}". ${list}` +
    (close.length > 0 ? ` Did you mean ${close.map((c) => `"${c}"`).join(' or ')}?` : '') +
    ` SQL reads only views, not topics: if "${table}" is a topic, define a view over it in the config.`
  );
}

function timedOut(timeoutMs: number): KappaError {
  return new KappaError(
    'KAPPA_QUERY_TIMEOUT',
    `The query ran longer than ${timeoutMs} ms, so it was stopped. Add a WHERE or a LIMIT, or query a smaller view.`,
    { timeoutMs },
  );
}

function tooManyRows(rowsMax: number): KappaError {
  return new KappaError(
    'KAPPA_SQL_ERROR',
    `The query returns more than ${rowsMax} rows; add a LIMIT (and OFFSET to page).`,
    {
      rowsMax,
    },
  );
}

function resultTooLarge(): KappaError {
  return new KappaError(
    'KAPPA_QUERY_RESULT_TOO_LARGE',
    `The result is larger than ${RESULT_BYTES_MAX / (1024 * 1024)} MiB, so the query was stopped. Add a LIMIT (and OFFSET to page), or select fewer or smaller columns.`,
    { resultBytesMax: RESULT_BYTES_MAX },
  );
}

/** About how many bytes `row` adds to the answer's JSON (the same count as SQLite's query-limits.cjs). */
function rowJsonBytes(row: Record<string, unknown>): number {
  let bytes = 2;
  for (const key in row) {
    const value = row[key];
    bytes += key.length + 4;
    if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8') + 2;
    else if (value instanceof Uint8Array) bytes += value.length * 4 + 24;
    else if (value === null || value === undefined) bytes += 4;
    else if (typeof value === 'object') bytes += Buffer.byteLength(JSON.stringify(value), 'utf8');
    else bytes += 24;
  }
  return bytes;
}
