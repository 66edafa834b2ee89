/**
 * The SQLite adapter of the `ViewStore` port (better-sqlite3): the embedded default serving layer.
 *
 * Connections: one writer connection does every change (catalog, tables, flushes, swaps), always
 * in `BEGIN IMMEDIATE` transactions; `readers` read-only connections (`readonly: true`) serve
 * `query`. The database is in WAL mode, so a reader reads the last committed snapshot and is never
 * blocked by the writer's open transaction, and the writer is never blocked by readers.
 *
 * Durability: `synchronous = NORMAL`. In WAL mode that syncs the WAL at checkpoints, not at every
 * commit, so after a power loss (not a process crash: the WAL is already in the OS) SQLite may roll
 * back the last few committed transactions. That keeps the exactly-once promise because a flush
 * commits a version's rows and the checkpoints they reflect in ONE transaction: a rolled-back flush
 * takes its checkpoints with it, the view is still the fold of the log up to its (older)
 * checkpoint, and the tasks re-read the gap from the log, which is the durable source of truth.
 * `FULL` would buy nothing a user can observe and cost an fsync per flush.
 *
 * On-disk layout (see ./sql.ts for the version tables and the NULL-key encoding):
 *   kappa_views(name, version, state, fingerprint, definition_json, created_at, live_at)
 *       PRIMARY KEY (name, version); at most one 'live' row per name (partial unique index).
 *   kappa_checkpoints(view, version, topic, partition, offset, watermark, output_sequence)
 *       PRIMARY KEY (view, version, topic, partition).
 *   kappa_output_checkpoints(output, topic, partition, offset, sequences)
 *       PRIMARY KEY (output, topic, partition); sequences is a JSON array, one per target partition.
 *   kappa_view_code(name, version, code)   the bundled config each version's logic came from.
 *   kappa_builds(name, version, info_json)  builds in progress and their progress (BuildInfo).
 *   kappa_requests(id, view, action, from_spec, created_at, state, message, version)
 *       replay / rollback / cancel requests from other processes to the running engine.
 *   "<name>__v<version>"  one table per version; "<name>" a VIEW over the live version.
 *   PRAGMA user_version = 1 marks this layout.
 *
 * Invariants (checked, they throw): a checkpoint's offset and output sequence never go backwards
 * for the same (view, version, topic, partition); at most one live version per view.
 *
 * Custom merges: the stored JSON text is read inside the flush transaction, merged in JS with the
 * rule's `merge(stored, delta)`, and written back by the same upsert as every other column. A NULL
 * on either side counts as "no state yet": the other side is kept and `merge` is not called.
 *
 * Thread-safety: none needed; better-sqlite3 is synchronous and the store is used from one thread.
 * Every write is one transaction run synchronously, except a flush of more than
 * FLUSH_ROWS_PER_STEP rows, which stays one transaction but lets the event loop run between steps;
 * while it holds the writer, other writes wait for it (`writeWhenFree`), so no two transactions
 * ever interleave.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { crashPoint } from '../../crash-point.ts';
import { TimedReader } from './timed-reader.ts';
import { RESULT_BYTES_MAX, SQL_CHARS_MAX, collectRows } from './query-limits.cjs';
import { KappaError, ioError, isKappaError } from '../../errors.ts';
import {
  checkVersion,
  checkViewName,
  definitionJson,
  parseDefinitionJson,
  validateCheckpoints,
  validateDeltas,
  validateDefinition,
} from '../definition.ts';
import type { BuildInfo, Checkpoint, MergeRule, ViewRequest, ViewRequestAction, OutputCheckpoint, QueryOptions, QueryResult, RowDelta, VersionTable, ViewState, ViewStore, ViewVersionInfo } from '../types.ts';
import type { ControlStore } from '../control-store.ts';
import { createTableSql, publicSelectSql, quoteIdent, selectCustomSql, selectRowByKeySql, startsWithKeyword, tableIdent, upsertSql } from './sql.ts';

export interface SqliteStoreOptions {
  /** The database file; its directory is created if missing. */
  path: string;
  /** Read-only connections for `query` (default 1, at most READERS_MAX). */
  readers?: number;
  /** How long a statement waits for a lock held by another process before failing (default 5000). */
  busyTimeoutMs?: number;
  /** `query` fails rather than return more rows than this (default 100,000): add a LIMIT. */
  queryRowsMax?: number;
  /** The time source for `created_at` and `live_at` (default `Date.now`). */
  clock?: { now(): number };
}

export const READERS_MAX = 16;
export const QUERY_ROWS_MAX_DEFAULT = 100_000;
const SCHEMA_VERSION = 1;
/** After a checkpoint, the WAL file is truncated to this size so it does not stay at its peak. */
const WAL_BYTES_LIMIT = 64 * 1024 * 1024;
/** How a NULL key is bound (see ./sql.ts): the empty BLOB. */
const NULL_KEY = Buffer.alloc(0);

/**
 * Rows a flush merges per step. A flush of more rows stays one transaction (rows and checkpoint
 * commit together), but between steps the event loop runs: a 10,000-row flush took 100-150 ms of
 * one synchronous call on a loaded 2-core machine, long enough to stall HTTP answers during a
 * backfill. 1,000 rows are a few ms.
 */
const FLUSH_ROWS_PER_STEP = 1000;

const CATALOG_SQL = `
CREATE TABLE IF NOT EXISTS kappa_views (
  name TEXT NOT NULL COLLATE NOCASE,
  version INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('building', 'live', 'retired')),
  fingerprint TEXT NOT NULL,
  definition_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  live_at INTEGER,
  PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS kappa_views_one_live ON kappa_views (name) WHERE state = 'live';
CREATE TABLE IF NOT EXISTS kappa_checkpoints (
  view TEXT NOT NULL COLLATE NOCASE,
  version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  "partition" INTEGER NOT NULL,
  "offset" INTEGER NOT NULL,
  watermark REAL NOT NULL,
  output_sequence INTEGER NOT NULL,
  PRIMARY KEY (view, version, topic, "partition")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kappa_output_checkpoints (
  output TEXT NOT NULL,
  topic TEXT NOT NULL,
  "partition" INTEGER NOT NULL,
  "offset" INTEGER NOT NULL,
  sequences TEXT NOT NULL,
  PRIMARY KEY (output, topic, "partition")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kappa_view_code (
  name TEXT NOT NULL COLLATE NOCASE,
  version INTEGER NOT NULL,
  code TEXT NOT NULL,
  PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kappa_builds (
  name TEXT NOT NULL COLLATE NOCASE,
  version INTEGER NOT NULL,
  info_json TEXT NOT NULL,
  PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kappa_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  view TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('replay', 'rollback', 'cancel')),
  from_spec TEXT,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'taken', 'done', 'failed')),
  message TEXT,
  version INTEGER
);
`;

interface RequestRow {
  id: number;
  view: string;
  action: ViewRequestAction;
  from_spec: string | null;
  created_at: number;
  state: ViewRequest['state'];
  message: string | null;
  version: number | null;
}

interface CatalogRow {
  name: string;
  version: number;
  state: ViewState;
  fingerprint: string;
  definition_json: string;
  created_at: number;
  live_at: number | null;
}

interface CheckpointRow {
  topic: string;
  partition: number;
  offset: number;
  watermark: number;
  output_sequence: number;
}

/** The prepared statements of one version, built once and reused by every flush. */
interface VersionHandle {
  def: VersionTable;
  upsert: Database.Statement<unknown[]>;
  /** Reads the stored custom-merge columns by key; null when the view has none. */
  selectCustom: Database.Statement<unknown[]> | null;
  /** Indexes (into `stateColumns`) of the custom-merge columns. */
  customIndexes: number[];
  /** Reads one row of the public view by key, on a reader connection; prepared on first use. */
  selectByKey: Database.Statement<unknown[]> | null;
  /** Reused parameter arrays (one row's keys and state; one row's keys) so a flush allocates none. */
  params: unknown[];
  keyParams: unknown[];
}

/**
 * The SQLite store: one database file serves both ports, so a flush, a swap or a drop can change
 * view rows and control records in one transaction.
 */
export type SqliteStore = ViewStore & ControlStore;

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  return SqliteViewStore.open(opts);
}

class SqliteViewStore implements ViewStore, ControlStore {
  private readonly handles = new Map<string, VersionHandle>();
  private nextReader = 0;
  private closed = false;
  /** Set while a stepped flush holds the writer in an open transaction (see writeInSteps). */
  private steppedWrite: Promise<void> | null = null;
  private readonly sql: ReturnType<typeof catalogStatements>;

  private constructor(
    private readonly writer: Database.Database,
    private readonly readers: Database.Database[],
    private readonly clock: { now(): number },
    private readonly queryRowsMax: number,
    private readonly path: string,
    private readonly busyTimeoutMs: number,
  ) {
    this.sql = catalogStatements(writer);
  }

  /** Runs the queries that have a time limit (created on first need). */
  private timed: TimedReader | null = null;

  static open(opts: SqliteStoreOptions): SqliteViewStore {
    const readerCount = opts.readers ?? 1;
    const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
    const queryRowsMax = opts.queryRowsMax ?? QUERY_ROWS_MAX_DEFAULT;
    if (typeof opts.path !== 'string' || opts.path.length === 0 || opts.path === ':memory:' || opts.path.startsWith('file:')) {
      throw new KappaError('KAPPA_INVALID_ARGUMENT', 'The view store needs a database file path (readers open the same file, so ":memory:" cannot work).', { path: opts.path });
    }
    if (!Number.isSafeInteger(readerCount) || readerCount < 1 || readerCount > READERS_MAX) {
      throw new KappaError('KAPPA_INVALID_ARGUMENT', `readers must be a whole number from 1 to ${READERS_MAX}.`, { readers: opts.readers });
    }
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new KappaError('KAPPA_INVALID_ARGUMENT', 'busyTimeoutMs must be a whole number from 0.', { busyTimeoutMs });
    if (!Number.isSafeInteger(queryRowsMax) || queryRowsMax < 1) throw new KappaError('KAPPA_INVALID_ARGUMENT', 'queryRowsMax must be a whole number from 1.', { queryRowsMax });

    const opened: Database.Database[] = [];
    try {
      mkdirSync(dirname(opts.path), { recursive: true });
      const writer = new Database(opts.path, { timeout: busyTimeoutMs });
      opened.push(writer);
      prepareWriter(writer, opts.path);
      // From here on the writer never waits inside SQLite, which would block the event loop (its
      // busy handler sleeps on this thread): a write that finds the lock taken by another process
      // waits between attempts with timers instead (see writeWhenFree).
      writer.pragma('busy_timeout = 0');
      // Readers open after the writer has created the file, the WAL and the catalog.
      for (let i = 0; i < readerCount; i++) opened.push(new Database(opts.path, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs }));
      return new SqliteViewStore(writer, opened.slice(1), opts.clock ?? { now: Date.now }, queryRowsMax, opts.path, busyTimeoutMs);
    } catch (err) {
      for (const db of opened.reverse()) db.close();
      if (err instanceof KappaError || err instanceof Database.SqliteError) throw storageError(err, `open the view store at ${opts.path}`);
      throw ioError(err, 'open the view store at', opts.path);
    }
  }

  async ensureVersion(def: VersionTable): Promise<ViewVersionInfo> {
    this.checkOpen();
    validateDefinition(def);
    const json = definitionJson(def);
    await this.writeWhenFree(`create view "${def.name}" v${def.version}`, () => this.ensureTx(def, json));
    // Register (or re-register) the statements with this process's definition: it carries the
    // custom merge functions, which the catalog cannot store.
    this.handles.set(handleKey(def.name, def.version), this.prepareVersion(def));
    return this.info(this.catalogRow(def.name, def.version));
  }

  private ensureTx(def: VersionTable, json: string): void {
    const existing = this.sql.get.get(def.name, def.version) as CatalogRow | undefined;
    if (existing !== undefined) {
      if (existing.definition_json !== json) {
        throw new KappaError(
          'KAPPA_VIEW_CONFLICT',
          `View "${def.name}" v${def.version} already exists with a different definition (fingerprint ${existing.fingerprint}, now ${def.fingerprint}). A changed view needs a new version number.`,
          { view: def.name, version: def.version, stored: JSON.parse(existing.definition_json), given: JSON.parse(json) },
        );
      }
      return;
    }
    this.writer.exec(createTableSql(def));
    checkOutputSql(this.writer, def);
    const live = this.sql.live.get(def.name) as CatalogRow | undefined;
    const now = this.clock.now();
    this.sql.insert.run(def.name, def.version, live === undefined ? 'live' : 'building', def.fingerprint, json, now, live === undefined ? now : null);
    if (live === undefined) this.pointPublicView(def);
  }

  async flush(name: string, version: number, deltas: RowDelta[], checkpoints: Checkpoint[]): Promise<void> {
    this.checkOpen();
    const handle = this.handle(name, version);
    validateDeltas(handle.def, deltas);
    validateCheckpoints(name, checkpoints);
    const apply = handle.selectCustom === null ? applyDeltas : applyCustomDeltas;
    const steps = Math.max(1, Math.ceil(deltas.length / FLUSH_ROWS_PER_STEP));
    await this.writeInSteps(`flush view "${name}" v${version}`, steps, (step) => {
      apply(handle, deltas, step * FLUSH_ROWS_PER_STEP, Math.min(deltas.length, (step + 1) * FLUSH_ROWS_PER_STEP));
      if (step === steps - 1) for (const cp of checkpoints) this.saveCheckpoint(handle.def, cp);
    });
  }

  /** Upserts one checkpoint; refuses (throws, rolling back the flush) if it would go backwards. */
  private saveCheckpoint(def: VersionTable, cp: Checkpoint): void {
    const result = this.sql.saveCheckpoint.run(def.name, def.version, cp.topic, cp.partition, cp.offset, cp.watermark, cp.outputSequence);
    if (result.changes === 1) return;
    const stored = this.sql.checkpoint.get(def.name, def.version, cp.topic, cp.partition) as CheckpointRow;
    throw new Error(
      `invariant: checkpoint of view "${def.name}" v${def.version} for ${cp.topic}/${cp.partition} would go backwards ` +
        `(offset ${stored.offset} → ${cp.offset}, output sequence ${stored.output_sequence} → ${cp.outputSequence}); the flush was rolled back. ` +
        'Two tasks may be writing the same partition.',
    );
  }

  async checkpoints(name: string, version: number): Promise<Checkpoint[]> {
    this.checkOpen();
    this.catalogRow(name, version);
    const rows = this.sql.checkpoints.all(name, version) as CheckpointRow[];
    return rows.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset, watermark: r.watermark, outputSequence: r.output_sequence }));
  }

  async saveOutputCheckpoint(output: string, cp: OutputCheckpoint): Promise<void> {
    this.checkOpen();
    checkViewName(output);
    if (!Number.isSafeInteger(cp.offset) || cp.offset < 0 || !Number.isInteger(cp.partition) || cp.partition < 0) {
      throw new KappaError('KAPPA_INVALID_ARGUMENT', `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} has an invalid offset ${cp.offset}`);
    }
    if (!cp.sequences.every((q) => Number.isInteger(q) && q >= 0 && q < 2 ** 31)) {
      throw new KappaError('KAPPA_INVALID_ARGUMENT', `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} has invalid sequences ${JSON.stringify(cp.sequences)}`);
    }
    await this.writeWhenFree(`save the checkpoint of output "${output}"`, () => {
      const result = this.sql.saveOutputCheckpoint.run(output, cp.topic, cp.partition, cp.offset, JSON.stringify(cp.sequences));
      if (result.changes === 1) return;
      const stored = this.sql.outputCheckpoint.get(output, cp.topic, cp.partition) as { offset: number };
      throw new Error(`invariant: checkpoint of output "${output}" for ${cp.topic}/${cp.partition} would go backwards (offset ${stored.offset} → ${cp.offset}). Two tasks may be writing the same partition.`);
    });
  }

  async outputCheckpoints(output: string): Promise<OutputCheckpoint[]> {
    this.checkOpen();
    checkViewName(output);
    const rows = this.sql.outputCheckpoints.all(output) as { topic: string; partition: number; offset: number; sequences: string }[];
    return rows.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset, sequences: JSON.parse(r.sequences) as number[] }));
  }

  async outputs(): Promise<string[]> {
    this.checkOpen();
    return (this.sql.outputs.all() as { output: string }[]).map((r) => r.output);
  }

  /**
   * The definition from this process's `ensureVersion` if there was one (it carries the custom merge
   * functions), else as the catalog stored it: custom merges then refuse to run until
   * `ensureVersion` registers them again.
   */
  async definition(name: string, version: number): Promise<VersionTable | null> {
    this.checkOpen();
    checkViewName(name);
    checkVersion(version);
    const row = this.sql.get.get(name, version) as CatalogRow | undefined;
    if (row === undefined) return null;
    return this.handles.get(handleKey(name, version))?.def ?? parseDefinitionJson(row.definition_json);
  }

  async rowsByKey(name: string, version: number, keys: readonly (readonly (string | number | null)[])[]): Promise<Record<string, unknown>[]> {
    this.checkOpen();
    const h = this.handle(name, version);
    h.selectByKey ??= this.readers[0].prepare(selectRowByKeySql(h.def));
    const nk = h.def.keyColumns.length;
    const params = new Array<unknown>(nk);
    const rows: Record<string, unknown>[] = [];
    for (const key of keys) {
      for (let k = 0; k < nk; k++) params[k] = key[k] ?? NULL_KEY;
      const row = h.selectByKey.get(params) as Record<string, unknown> | undefined;
      if (row !== undefined) rows.push(row);
    }
    return rows;
  }

  async versions(): Promise<ViewVersionInfo[]> {
    this.checkOpen();
    return (this.sql.all.all() as CatalogRow[]).map((row) => this.info(row));
  }

  async makeLive(name: string, version: number): Promise<void> {
    this.checkOpen();
    await this.writeWhenFree(`make view "${name}" v${version} live`, () => {
      const row = this.catalogRow(name, version);
      if (row.state === 'live') return;
      this.sql.retire.run(name);
      this.sql.setLive.run(this.clock.now(), name, version);
      this.pointPublicView(parseDefinitionJson(row.definition_json));
      crashPoint('swap-before-commit');
    });
  }

  async dropVersion(name: string, version: number): Promise<void> {
    this.checkOpen();
    await this.writeWhenFree(`drop view "${name}" v${version}`, () => {
      const row = this.catalogRow(name, version);
      if (row.state === 'live') {
        throw new KappaError(
          'KAPPA_VIEW_CONFLICT',
          `View "${name}" v${version} is live, so it cannot be dropped. Make another version live first (or roll back), then drop this one.`,
          { view: name, version },
        );
      }
      this.writer.exec(`DROP TABLE IF EXISTS ${tableIdent({ name: row.name, version })}`);
      this.sql.dropCheckpoints.run(name, version);
      this.sql.deleteCode.run(name, version);
      this.sql.deleteBuild.run(name, version);
      this.sql.delete.run(name, version);
    });
    this.handles.delete(handleKey(name, version));
  }

  async saveCode(name: string, version: number, code: string): Promise<void> {
    this.checkOpen();
    checkViewName(name);
    checkVersion(version);
    if (typeof code !== 'string' || code.length === 0) throw new KappaError('KAPPA_INVALID_ARGUMENT', `The code of view "${name}" v${version} must be a non-empty string.`, { view: name, version });
    await this.writeWhenFree(`save the code of view "${name}" v${version}`, () => this.sql.saveCode.run(name, version, code));
  }

  async code(name: string, version: number): Promise<string | null> {
    this.checkOpen();
    checkViewName(name);
    checkVersion(version);
    return (this.sql.code.get(name, version) as { code: string } | undefined)?.code ?? null;
  }

  async saveBuild(build: BuildInfo): Promise<void> {
    this.checkOpen();
    checkViewName(build.name);
    checkVersion(build.version);
    await this.writeWhenFree(`save the build of view "${build.name}" v${build.version}`, () => this.sql.saveBuild.run(build.name, build.version, JSON.stringify(build)));
  }

  async builds(): Promise<BuildInfo[]> {
    this.checkOpen();
    return (this.sql.builds.all() as { info_json: string }[]).map((r) => JSON.parse(r.info_json) as BuildInfo);
  }

  async deleteBuild(name: string, version: number): Promise<void> {
    this.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.writeWhenFree(`delete the build of view "${name}" v${version}`, () => this.sql.deleteBuild.run(name, version));
  }

  async forgetVersion(name: string, version: number): Promise<void> {
    this.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.writeWhenFree(`forget the code and build of view "${name}" v${version}`, () => {
      this.sql.deleteCode.run(name, version);
      this.sql.deleteBuild.run(name, version);
    });
  }

  async addRequest(view: string, action: ViewRequestAction, from: string | null): Promise<number> {
    this.checkOpen();
    checkViewName(view);
    if (!['replay', 'rollback', 'cancel'].includes(action)) throw new KappaError('KAPPA_INVALID_ARGUMENT', `Unknown request "${String(action)}": use replay, rollback or cancel.`, { action });
    return this.writeWhenFree(`request ${action} of view "${view}"`, () => Number(this.sql.addRequest.run(view, action, from, this.clock.now()).lastInsertRowid));
  }

  async takeRequests(): Promise<ViewRequest[]> {
    this.checkOpen();
    // Most polls find nothing: look before taking the write lock.
    if (this.sql.anyPending.get() === undefined) return [];
    return this.writeWhenFree('take the pending requests', () => {
      const rows = this.sql.pending.all() as RequestRow[];
      for (const r of rows) this.sql.answer.run('taken', null, null, r.id);
      return rows.map((r) => requestOf({ ...r, state: 'taken' }));
    });
  }

  async answerRequest(id: number, state: 'done' | 'failed', message: string, version: number | null): Promise<void> {
    this.checkOpen();
    await this.writeWhenFree(`answer request ${id}`, () => this.sql.answer.run(state, message, version, id));
  }

  async request(id: number): Promise<ViewRequest | null> {
    this.checkOpen();
    const row = this.sql.request.get(id) as RequestRow | undefined;
    return row === undefined ? null : requestOf(row);
  }

  async query(sql: string, params: unknown[] = [], opts: QueryOptions = {}): Promise<QueryResult> {
    this.checkOpen();
    if (typeof sql !== 'string') throw new KappaError('KAPPA_INVALID_ARGUMENT', 'A query must be a SQL string.', {});
    if (sql.length > SQL_CHARS_MAX) throw new KappaError('KAPPA_INVALID_ARGUMENT', `The SQL statement has ${sql.length} characters, more than ${SQL_CHARS_MAX}: pass long values as parameters (?), or query in parts.`, { sqlCharsMax: SQL_CHARS_MAX });
    if (!Array.isArray(params)) throw new KappaError('KAPPA_INVALID_ARGUMENT', 'Query parameters must be an array (positional parameters, `?`).', {});
    const reader = this.readers[this.nextReader];
    this.nextReader = (this.nextReader + 1) % this.readers.length;
    let stmt: Database.Statement<unknown[]>;
    try {
      stmt = reader.prepare(sql);
    } catch (err) {
      throw sqlError(err);
    }
    // `readonly` is false for anything that writes the database; `reader` is false for statements
    // that return nothing, which also catches those that change the connection instead (ATTACH,
    // BEGIN, PRAGMA assignments). PRAGMA is refused outright: some assignments return a row.
    if (!stmt.readonly || !stmt.reader || startsWithKeyword(sql, 'pragma')) {
      throw new KappaError(
        'KAPPA_QUERY_NOT_READ_ONLY',
        'Queries are read-only: this statement would change data or the database connection, so it was not run. Use a single SELECT (or WITH … SELECT); for table information use SELECT * FROM pragma_table_info(\'<view>\').',
        { sql: sql.slice(0, 200) },
      );
    }
    const columns = stmt.columns().map((c) => c.name);
    if (opts.timeoutMs !== undefined) {
      this.timed ??= new TimedReader(this.path, this.busyTimeoutMs, this.queryRowsMax);
      return this.timed.query(sql, params, columns, opts.timeoutMs);
    }
    // In this process (`kappa query`, the server's reads of views): the same limits on rows and bytes.
    let result: ReturnType<typeof collectRows>;
    try {
      result = collectRows(stmt.iterate(...params) as IterableIterator<Record<string, unknown>>, this.queryRowsMax, RESULT_BYTES_MAX);
    } catch (err) {
      throw sqlError(err);
    }
    if (result.refused !== undefined) throw new KappaError(result.refused.code, result.refused.message, result.refused.details);
    return { columns, rows: result.rows };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A stepped flush under way finishes (or fails) before the connection closes under it.
    while (this.steppedWrite !== null) await this.steppedWrite.catch(() => {});
    await this.timed?.close();
    this.handles.clear();
    for (const reader of this.readers) reader.close();
    this.writer.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('The view store is closed.');
  }

  /** Runs `fn` in one IMMEDIATE transaction on the writer; SQLite's storage errors become typed. */
  private write<T>(action: string, fn: () => T): T {
    // A write inside a stepped flush would join its transaction (better-sqlite3 nests it as a savepoint).
    if (this.steppedWrite !== null) throw new Error(`invariant: ${action} was attempted while a flush holds the writer (use writeWhenFree)`);
    try {
      return this.writer.transaction(fn).immediate();
    } catch (err) {
      throw storageError(err, action);
    }
  }

  /**
   * `write`, once no stepped flush holds the writer. The check and the write run in one turn of
   * the event loop, so no other write can slip in between.
   */
  private async writeWhenFree<T>(action: string, fn: () => T): Promise<T> {
    const startedMs = Date.now();
    for (let attempt = 0; ; attempt++) {
      while (this.steppedWrite !== null) await this.steppedWrite;
      this.checkOpen();
      try {
        return this.write(action, fn);
      } catch (err) {
        await this.backOffIfLocked(err, attempt, startedMs);
      }
    }
  }

  /**
   * After a write found the write lock held by another process (nothing was written): rethrows
   * once `busyTimeoutMs` has passed since the first attempt, else waits a little longer each time
   * (5 ms doubling up to 200 ms) without blocking the event loop. Any other error is rethrown.
   */
  private async backOffIfLocked(err: unknown, attempt: number, startedMs: number): Promise<void> {
    if (!isKappaError(err, 'KAPPA_DATA_DIR_LOCKED') || Date.now() - startedMs >= this.busyTimeoutMs) throw err;
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt)));
  }

  /**
   * Runs `step(0) … step(steps - 1)` in one IMMEDIATE transaction, letting the event loop run
   * between steps; other writes wait for it (`writeWhenFree`). A throw rolls everything back; a
   * crash mid-way leaves an uncommitted transaction that SQLite discards.
   */
  private async writeInSteps(action: string, steps: number, step: (i: number) => void): Promise<void> {
    if (steps === 1) return this.writeWhenFree(action, () => step(0));
    const startedMs = Date.now();
    for (let attempt = 0; ; attempt++) {
      while (this.steppedWrite !== null) await this.steppedWrite;
      this.checkOpen();
      try {
        this.writer.exec('BEGIN IMMEDIATE');
        break;
      } catch (err) {
        await this.backOffIfLocked(storageError(err, action), attempt, startedMs);
      }
    }
    let release!: () => void;
    this.steppedWrite = new Promise<void>((resolve) => (release = resolve));
    try {
      try {
        for (let i = 0; i < steps; i++) {
          if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          step(i);
        }
        this.writer.exec('COMMIT');
      } catch (err) {
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      throw storageError(err, action);
    } finally {
      this.steppedWrite = null;
      release();
    }
  }

  /** Points the public SQL view at `def`'s table. Runs inside the caller's transaction. */
  private pointPublicView(def: VersionTable): void {
    this.writer.exec(`DROP VIEW IF EXISTS ${quoteIdent(def.name)}`);
    this.writer.exec(`CREATE VIEW ${quoteIdent(def.name)} AS ${publicSelectSql(def)}`);
  }

  private catalogRow(name: string, version: number): CatalogRow {
    checkViewName(name);
    checkVersion(version);
    const row = this.sql.get.get(name, version) as CatalogRow | undefined;
    if (row === undefined) throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${name}" v${version}.`, { view: name, version });
    return row;
  }

  private info(row: CatalogRow): ViewVersionInfo {
    const count = this.writer.prepare(`SELECT count(*) AS n FROM ${tableIdent({ name: row.name, version: row.version })}`).get() as { n: number };
    return {
      name: row.name,
      version: row.version,
      state: row.state,
      fingerprint: row.fingerprint,
      createdAtMs: row.created_at,
      liveAtMs: row.live_at,
      rows: count.n,
    };
  }

  /** The version's prepared statements; built from the catalog if this process has not seen it. */
  private handle(name: string, version: number): VersionHandle {
    checkViewName(name);
    checkVersion(version);
    const key = handleKey(name, version);
    let handle = this.handles.get(key);
    if (handle === undefined) {
      handle = this.prepareVersion(parseDefinitionJson(this.catalogRow(name, version).definition_json));
      this.handles.set(key, handle);
    }
    return handle;
  }

  private prepareVersion(def: VersionTable): VersionHandle {
    const customIndexes: number[] = [];
    def.stateColumns.forEach((c, i) => c.merge.kind === 'custom' && customIndexes.push(i));
    const width = def.keyColumns.length + def.stateColumns.length;
    return {
      def,
      upsert: this.writer.prepare(upsertSql(def)),
      selectCustom: customIndexes.length === 0 ? null : this.writer.prepare(selectCustomSql(def, customIndexes.map((i) => def.stateColumns[i].name))).raw(),
      customIndexes,
      selectByKey: null,
      params: new Array(width),
      keyParams: new Array(def.keyColumns.length),
    };
  }
}

function catalogStatements(db: Database.Database) {
  return {
    get: db.prepare('SELECT * FROM kappa_views WHERE name = ? AND version = ?'),
    live: db.prepare("SELECT * FROM kappa_views WHERE name = ? AND state = 'live'"),
    all: db.prepare('SELECT * FROM kappa_views ORDER BY name, version'),
    insert: db.prepare('INSERT INTO kappa_views (name, version, state, fingerprint, definition_json, created_at, live_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    retire: db.prepare("UPDATE kappa_views SET state = 'retired' WHERE name = ? AND state = 'live'"),
    setLive: db.prepare("UPDATE kappa_views SET state = 'live', live_at = ? WHERE name = ? AND version = ?"),
    delete: db.prepare('DELETE FROM kappa_views WHERE name = ? AND version = ?'),
    checkpoints: db.prepare('SELECT topic, "partition", "offset", watermark, output_sequence FROM kappa_checkpoints WHERE view = ? AND version = ? ORDER BY topic, "partition"'),
    checkpoint: db.prepare('SELECT "offset", output_sequence FROM kappa_checkpoints WHERE view = ? AND version = ? AND topic = ? AND "partition" = ?'),
    saveCheckpoint: db.prepare(
      'INSERT INTO kappa_checkpoints (view, version, topic, "partition", "offset", watermark, output_sequence) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (view, version, topic, "partition") DO UPDATE SET "offset" = excluded."offset", watermark = excluded.watermark, output_sequence = excluded.output_sequence ' +
        'WHERE excluded."offset" >= kappa_checkpoints."offset" AND excluded.output_sequence >= kappa_checkpoints.output_sequence',
    ),
    dropCheckpoints: db.prepare('DELETE FROM kappa_checkpoints WHERE view = ? AND version = ?'),
    saveCode: db.prepare('INSERT INTO kappa_view_code (name, version, code) VALUES (?, ?, ?) ON CONFLICT (name, version) DO UPDATE SET code = excluded.code'),
    code: db.prepare('SELECT code FROM kappa_view_code WHERE name = ? AND version = ?'),
    deleteCode: db.prepare('DELETE FROM kappa_view_code WHERE name = ? AND version = ?'),
    saveBuild: db.prepare('INSERT INTO kappa_builds (name, version, info_json) VALUES (?, ?, ?) ON CONFLICT (name, version) DO UPDATE SET info_json = excluded.info_json'),
    builds: db.prepare('SELECT info_json FROM kappa_builds ORDER BY name, version'),
    deleteBuild: db.prepare('DELETE FROM kappa_builds WHERE name = ? AND version = ?'),
    addRequest: db.prepare("INSERT INTO kappa_requests (view, action, from_spec, created_at, state) VALUES (?, ?, ?, ?, 'pending')"),
    anyPending: db.prepare("SELECT 1 FROM kappa_requests WHERE state = 'pending' LIMIT 1"),
    pending: db.prepare("SELECT * FROM kappa_requests WHERE state = 'pending' ORDER BY id"),
    answer: db.prepare('UPDATE kappa_requests SET state = ?, message = ?, version = ? WHERE id = ?'),
    request: db.prepare('SELECT * FROM kappa_requests WHERE id = ?'),
    outputCheckpoints: db.prepare('SELECT topic, "partition", "offset", sequences FROM kappa_output_checkpoints WHERE output = ? ORDER BY topic, "partition"'),
    outputs: db.prepare('SELECT DISTINCT output FROM kappa_output_checkpoints ORDER BY output'),
    outputCheckpoint: db.prepare('SELECT "offset" FROM kappa_output_checkpoints WHERE output = ? AND topic = ? AND "partition" = ?'),
    saveOutputCheckpoint: db.prepare(
      'INSERT INTO kappa_output_checkpoints (output, topic, "partition", "offset", sequences) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (output, topic, "partition") DO UPDATE SET "offset" = excluded."offset", sequences = excluded.sequences WHERE excluded."offset" >= kappa_output_checkpoints."offset"',
    ),
  };
}

/** WAL + NORMAL (see the file comment), the layout version, and the catalog. */
function prepareWriter(db: Database.Database, path: string): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new KappaError('KAPPA_IO_ERROR', `The view store at ${path} cannot use WAL mode (got "${String(mode)}"); put it on a local file system.`, { path });
  db.pragma('synchronous = NORMAL');
  db.pragma(`journal_size_limit = ${WAL_BYTES_LIMIT}`);
  const layout = db.pragma('user_version', { simple: true }) as number;
  if (layout > SCHEMA_VERSION) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `The view store at ${path} was written by a newer Kappa (layout ${layout}, this one knows ${SCHEMA_VERSION}); upgrade Kappa.`, { path, layout });
  }
  db.transaction(() => {
    db.exec(CATALOG_SQL);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Prepares the public SELECT so a bad output expression is refused when the version is created. */
function checkOutputSql(db: Database.Database, def: VersionTable): void {
  try {
    db.prepare(publicSelectSql(def));
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The output columns of view "${def.name}" v${def.version} are not valid SQL over its key and state columns: ${(err as Error).message}`,
      { view: def.name, version: def.version },
      err,
    );
  }
}

/**
 * The common case, no custom merges: one prepared single-row upsert per delta. (Multi-row VALUES
 * statements were measured: up to 1.5x faster when most rows already exist and 8 rows per
 * statement, but slower from 16 rows on and slower for mostly-new rows, so not worth the code.)
 */
function applyDeltas(h: VersionHandle, deltas: readonly RowDelta[], from: number, to: number): void {
  const nk = h.def.keyColumns.length;
  const ns = h.def.stateColumns.length;
  const params = h.params;
  const upsert = h.upsert;
  for (let i = from; i < to; i++) {
    fillRow(params, deltas[i], nk, ns);
    upsert.run(params);
  }
}

function fillRow(params: unknown[], delta: RowDelta, nk: number, ns: number): void {
  const key = delta.key;
  const state = delta.state;
  for (let k = 0; k < nk; k++) params[k] = key[k] ?? NULL_KEY;
  for (let s = 0; s < ns; s++) params[nk + s] = state[s];
}

/** Views with custom merges: per row, read the stored custom state, merge in JS, then upsert. */
function applyCustomDeltas(h: VersionHandle, deltas: readonly RowDelta[], from: number, to: number): void {
  const nk = h.def.keyColumns.length;
  const ns = h.def.stateColumns.length;
  const selectCustom = h.selectCustom as Database.Statement<unknown[]>;
  for (let i = from; i < to; i++) {
    const delta = deltas[i];
    for (let k = 0; k < nk; k++) h.keyParams[k] = delta.key[k] ?? NULL_KEY;
    const stored = selectCustom.get(h.keyParams) as unknown[] | undefined;
    fillRow(h.params, delta, nk, ns);
    for (let j = 0; j < h.customIndexes.length; j++) {
      const s = h.customIndexes[j];
      const column = h.def.stateColumns[s];
      h.params[nk + s] = mergeCustom(h.def, column.name, column.merge, stored === undefined ? null : (stored[j] as string | null), delta.state[s]);
    }
    h.upsert.run(h.params);
  }
}

/** Merges one custom column: stored JSON text + a delta value → JSON text (NULL = no state yet). */
function mergeCustom(def: VersionTable, column: string, rule: MergeRule, stored: string | null, delta: unknown): string | null {
  if (delta === null || delta === undefined) return stored;
  const merged = stored === null ? delta : (rule as Extract<MergeRule, { kind: 'custom' }>).merge(JSON.parse(stored), delta);
  if (merged === null || merged === undefined) return null;
  try {
    return JSON.stringify(merged);
  } catch (err) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `The custom state of column "${column}" of view "${def.name}" v${def.version} cannot be stored as JSON: ${(err as Error).message}`, { view: def.name, column }, err);
  }
}

function requestOf(r: RequestRow): ViewRequest {
  return { id: r.id, view: r.view, action: r.action, from: r.from_spec, createdAtMs: r.created_at, state: r.state, message: r.message, version: r.version };
}

function handleKey(name: string, version: number): string {
  return `${name.toLowerCase()}\u0000${version}`;
}

/** A driver error from `query` as KAPPA_SQL_ERROR with SQLite's message; Kappa errors pass. */
function sqlError(err: unknown): KappaError {
  if (err instanceof KappaError) return err;
  const code = (err as { code?: unknown }).code;
  return new KappaError('KAPPA_SQL_ERROR', `SQL error: ${(err as Error)?.message ?? String(err)}`, typeof code === 'string' ? { sqliteCode: code } : {}, err);
}

/** SQLite's storage failures on the writer as typed errors; anything else passes unchanged. */
function storageError(err: unknown, action: string): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const details = { sqliteCode: err.code };
  if (err.code === 'SQLITE_FULL') return new KappaError('KAPPA_DISK_FULL', `The disk is full: could not ${action}. Free some space and retry; nothing was changed.`, details, err);
  if (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED')) {
    return new KappaError('KAPPA_DATA_DIR_LOCKED', `Could not ${action}: another process holds the view store's write lock (${err.message}).`, details, err);
  }
  if (err.code.startsWith('SQLITE_CORRUPT') || err.code === 'SQLITE_NOTADB') {
    return new KappaError('KAPPA_CORRUPT_DATA', `Could not ${action}: the view store is damaged (${err.message}). Views can be rebuilt from the log.`, details, err);
  }
  if (err.code.startsWith('SQLITE_IOERR') || err.code.startsWith('SQLITE_CANTOPEN') || err.code.startsWith('SQLITE_READONLY')) {
    return new KappaError('KAPPA_IO_ERROR', `Could not ${action}: ${err.message}`, details, err);
  }
  return err;
}
