/**
 * The read side of a SQLite store: `readers` read-only connections (`readonly: true`) that serve
 * `query` and `rowsByKey`, in turn. The database is in WAL mode, so a reader reads the last
 * committed snapshot and is never blocked by the writer's open transaction (a stepped flush
 * included), and the writer is never blocked by readers.
 *
 * Bounds: a statement is refused past SQL_CHARS_MAX characters, and an answer past `queryRowsMax`
 * rows or RESULT_BYTES_MAX bytes (./query-limits.cjs). A query with a time limit runs in a child
 * process that is killed past it (./timed-reader.ts).
 */
import Database from 'better-sqlite3';
import { KappaError, closestNames } from '../../errors.ts';
import type { QueryOptions, QueryResult } from '../types.ts';
import type { VersionHandle } from './catalog.ts';
import { RESULT_BYTES_MAX, SQL_CHARS_MAX, collectRows } from './query-limits.cjs';
import { NULL_KEY, selectRowByKeySql, startsWithKeyword } from './sql.ts';
import { TimedReader } from './timed-reader.ts';

export interface ReaderOptions {
  path: string;
  count: number;
  busyTimeoutMs: number;
  queryRowsMax: number;
}

export class SqliteReaders {
  private nextReader = 0;
  /** Runs the queries that have a time limit (created on first need). */
  private timed: TimedReader | null = null;

  private constructor(
    private readonly readers: Database.Database[],
    private readonly opts: ReaderOptions,
  ) {}

  /** Opens the connections; call after the writer has created the file, the WAL and the catalog. */
  static open(opts: ReaderOptions): SqliteReaders {
    const readers: Database.Database[] = [];
    try {
      for (let i = 0; i < opts.count; i++) {
        readers.push(new Database(opts.path, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs }));
      }
    } catch (err) {
      for (const db of readers.reverse()) db.close();
      throw err;
    }
    return new SqliteReaders(readers, opts);
  }

  async query(sql: string, params: unknown[], opts: QueryOptions): Promise<QueryResult> {
    checkQueryInput(sql, params);
    const stmt = this.prepareReadOnly(sql);
    const columns = stmt.columns().map((c) => c.name);
    if (opts.timeoutMs !== undefined) {
      this.timed ??= new TimedReader(this.opts.path, this.opts.busyTimeoutMs, this.opts.queryRowsMax);
      return this.timed.query(sql, params, columns, opts.timeoutMs);
    }
    // In this process (`kappa query`, the server's reads of views): the same limits on rows and bytes.
    let result: ReturnType<typeof collectRows>;
    try {
      const rows = stmt.iterate(...params) as IterableIterator<Record<string, unknown>>;
      result = collectRows(rows, this.opts.queryRowsMax, RESULT_BYTES_MAX);
    } catch (err) {
      throw sqlError(err);
    }
    if (result.refused !== undefined)
      throw new KappaError(result.refused.code, result.refused.message, result.refused.details);
    return { columns, rows: result.rows };
  }

  /** The rows of the public view of `h`'s version with these keys, each found by its primary key (null: none). */
  rowsByKey(
    h: VersionHandle,
    keys: readonly (readonly (string | number | null)[])[],
  ): (Record<string, unknown> | null)[] {
    h.selectByKey ??= this.readers[0].prepare(selectRowByKeySql(h.def));
    const nk = h.def.keyColumns.length;
    const params = new Array<unknown>(nk);
    const rows: (Record<string, unknown> | null)[] = [];
    for (const key of keys) {
      for (let k = 0; k < nk; k++) params[k] = key[k] ?? NULL_KEY;
      rows.push((h.selectByKey.get(params) as Record<string, unknown> | undefined) ?? null);
    }
    return rows;
  }

  async close(): Promise<void> {
    await this.timed?.close();
    for (const reader of this.readers) reader.close();
  }

  /** Prepares `sql` on the next reader, refusing anything that is not one read-only statement. */
  private prepareReadOnly(sql: string): Database.Statement<unknown[]> {
    const reader = this.readers[this.nextReader];
    this.nextReader = (this.nextReader + 1) % this.readers.length;
    let stmt: Database.Statement<unknown[]>;
    try {
      stmt = reader.prepare(sql);
    } catch (err) {
      throw explained(sqlError(err), reader);
    }
    // `readonly` is false for anything that writes the database; `reader` is false for statements
    // that return nothing, which also catches those that change the connection instead (ATTACH,
    // BEGIN, PRAGMA assignments). PRAGMA is refused outright: some assignments return a row.
    if (!stmt.readonly || !stmt.reader || startsWithKeyword(sql, 'pragma')) {
      throw new KappaError(
        'KAPPA_QUERY_NOT_READ_ONLY',
        'Queries are read-only: this statement would change data or the database connection, so it was not run. ' +
          'Use a single SELECT (or WITH … SELECT); ' +
          "for table information use SELECT * FROM pragma_table_info('<view>').",
        { sql: sql.slice(0, 200) },
      );
    }
    return stmt;
  }
}

function checkQueryInput(sql: unknown, params: unknown): void {
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
}

/** A driver error from `query` as KAPPA_SQL_ERROR with SQLite's message; Kappa errors pass. */
function sqlError(err: unknown): KappaError {
  if (err instanceof KappaError) return err;
  const code = (err as { code?: unknown }).code;
  const details = typeof code === 'string' ? { sqliteCode: code } : {};
  return new KappaError('KAPPA_SQL_ERROR', `SQL error: ${(err as Error)?.message ?? String(err)}`, details, err);
}

/** The names of the live views, sorted. */
function liveViews(reader: Database.Database): string[] {
  const rows = reader.prepare("SELECT name FROM kappa_views WHERE state = 'live' ORDER BY name").all();
  return (rows as { name: string }[]).map((r) => r.name);
}

/**
 * SQLite's "no such table" and "no such column", said for someone who knows the views and topics
 * but not SQLite: a name that is not a view (often a topic, which SQL cannot read) gets the list of
 * views and the closest view names; an unknown column gets the closest columns of the views.
 */
function explained(err: KappaError, reader: Database.Database): KappaError {
  if (err.code !== 'KAPPA_SQL_ERROR') return err;
  const table = /no such table: (?:main\.)?(\S+)/.exec(err.message)?.[1];
  const column = /no such column: (\S+)/.exec(err.message)?.[1];
  if (table === undefined && column === undefined) return err;
  let views: string[];
  try {
    views = liveViews(reader);
  } catch {
    return err; // a database without a catalog yet: SQLite's words will do
  }
  const list = views.length === 0 ? 'There are no views yet.' : `The views: ${views.join(', ')}.`;
  if (table !== undefined) {
    const close = closestNames(table, views);
    const message =
      `There is no view "${table}". ${list}` +
      (close.length > 0 ? ` Did you mean ${close.map((c) => `"${c}"`).join(' or ')}?` : '') +
      ` SQL reads only views, not topics: if "${table}" is a topic, define a view over it in the config (or read its records with \`kappa consume ${table}\`).`;
    return new KappaError('KAPPA_SQL_ERROR', message, { ...err.details, table, views }, err);
  }
  const name = column!.includes('.') ? column!.slice(column!.lastIndexOf('.') + 1) : column!;
  const owners = new Map<string, string[]>();
  for (const view of views)
    for (const c of reader.prepare('SELECT name FROM pragma_table_info(?)').all(view) as { name: string }[])
      owners.set(c.name, [...(owners.get(c.name) ?? []), view]);
  const close = closestNames(name, owners.keys());
  if (close.length === 0) return err;
  const where = (c: string): string => `"${c}" (${owners.get(c)!.slice(0, 3).join(', ')})`;
  const message = `${err.message}. Did you mean ${close.map(where).join(' or ')}?`;
  return new KappaError('KAPPA_SQL_ERROR', message, { ...err.details, column: name, didYouMean: close }, err);
}
