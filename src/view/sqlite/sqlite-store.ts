/**
 * The SQLite adapter of the `ViewStore` and `ControlStore` ports (better-sqlite3): the embedded
 * default. One database file serves both ports, so a flush commits rows and checkpoints in one
 * transaction, and a drop forgets the version's code and build in the transaction that drops it.
 *
 * This file opens the connections and wires the parts; each part is one job over the same file:
 *   ./schema.ts         the on-disk layout, WAL and durability settings
 *   ./writer.ts         the one writer connection: every change is one IMMEDIATE transaction
 *   ./catalog.ts        versions: create, swap (makeLive), drop, each version's prepared statements
 *   ./flush.ts          deltas merged by rule and checkpoints, committed together
 *   ./readers.ts        read-only connections: bounded `query`, `rowsByKey`
 *   ./control-store.ts  output checkpoints, saved code, build records, requests between processes
 *
 * Thread-safety: none needed; better-sqlite3 is synchronous and the store is used from one thread
 * (see ./writer.ts for how writes never interleave).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KappaError, ioError } from '../../errors.ts';
import type { BuildHistoryEntry, ControlStore } from '../control-store.ts';
import type {
  BuildInfo,
  Checkpoint,
  OutputCheckpoint,
  QueryOptions,
  QueryResult,
  Deltas,
  FlushResult,
  VersionTable,
  ViewRequest,
  ViewRequestAction,
  ViewVersionInfo,
} from '../types.ts';
import type { ViewStore } from '../view-store.ts';
import { VersionCatalog } from './catalog.ts';
import { SqliteControlStore } from './control-store.ts';
import type { TableStateStore } from '../table-states.ts';
import { SqliteTableStates } from './table-states.ts';
import { DeltaWriter } from './flush.ts';
import { type VersionDiff, diffVersions } from './diff.ts';
import { SqliteReaders } from './readers.ts';
import { prepareWriter } from './schema.ts';
import { SqliteWriter, storageError } from './writer.ts';

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

/** The SQLite store: both ports over one database file, and the comparison of two versions of a view. */
export type SqliteStore = ViewStore &
  ControlStore & { diffVersions(view: string, a: number, b: number, rowsMax?: number): Promise<VersionDiff> };

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  const readers = opts.readers ?? 1;
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  const queryRowsMax = opts.queryRowsMax ?? QUERY_ROWS_MAX_DEFAULT;
  checkOptions(opts, readers, busyTimeoutMs, queryRowsMax);
  let writer: Database.Database | null = null;
  try {
    mkdirSync(dirname(opts.path), { recursive: true });
    writer = new Database(opts.path, { timeout: busyTimeoutMs });
    prepareWriter(writer, opts.path);
    // From here on the writer never waits inside SQLite, which would block the event loop (its
    // busy handler sleeps on this thread): a write that finds the lock taken by another process
    // waits between attempts with timers instead (see ./writer.ts).
    writer.pragma('busy_timeout = 0');
    // Readers open after the writer has created the file, the WAL and the catalog.
    const readSide = SqliteReaders.open({ path: opts.path, count: readers, busyTimeoutMs, queryRowsMax });
    return new SqliteStoreImpl(new SqliteWriter(writer, busyTimeoutMs), readSide, opts.clock ?? { now: Date.now });
  } catch (err) {
    writer?.close();
    if (err instanceof KappaError || err instanceof Database.SqliteError)
      throw storageError(err, `open the view store at ${opts.path}`);
    throw ioError(err, 'open the view store at', opts.path);
  }
}

function checkOptions(opts: SqliteStoreOptions, readers: number, busyTimeoutMs: number, queryRowsMax: number): void {
  const path = opts.path;
  if (typeof path !== 'string' || path.length === 0 || path === ':memory:' || path.startsWith('file:')) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      'The view store needs a database file path (readers open the same file, so ":memory:" cannot work).',
      { path },
    );
  }
  if (!Number.isSafeInteger(readers) || readers < 1 || readers > READERS_MAX) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `readers must be a whole number from 1 to ${READERS_MAX}.`, {
      readers: opts.readers,
    });
  }
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'busyTimeoutMs must be a whole number from 0.', { busyTimeoutMs });
  }
  if (!Number.isSafeInteger(queryRowsMax) || queryRowsMax < 1) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'queryRowsMax must be a whole number from 1.', { queryRowsMax });
  }
}

/** Both ports, each call handed to the part that does that job. */
class SqliteStoreImpl implements ViewStore, ControlStore {
  private readonly catalog: VersionCatalog;
  private readonly deltas: DeltaWriter;
  readonly tables: TableStateStore;
  private readonly control: SqliteControlStore;
  private readonly forget: (name: string, version: number) => void;

  constructor(
    private readonly writer: SqliteWriter,
    private readonly readers: SqliteReaders,
    clock: { now(): number },
  ) {
    this.catalog = new VersionCatalog(writer, clock);
    this.deltas = new DeltaWriter(writer, this.catalog);
    this.tables = new SqliteTableStates(writer);
    this.control = new SqliteControlStore(writer, clock);
    this.forget = (name, version) => this.control.forgetInTx(name, version);
  }

  // ---- ViewStore ----

  ensureVersion(def: VersionTable): Promise<ViewVersionInfo> {
    return this.catalog.ensureVersion(def);
  }
  flush(name: string, version: number, deltas: Deltas, checkpoints: Checkpoint[]): Promise<FlushResult> {
    return this.deltas.flush(name, version, deltas, checkpoints);
  }
  checkpoints(name: string, version: number): Promise<Checkpoint[]> {
    return this.deltas.checkpoints(name, version);
  }
  definition(name: string, version: number): Promise<VersionTable | null> {
    return this.catalog.definition(name, version);
  }
  async rowsByKey(
    name: string,
    version: number,
    keys: readonly (readonly (string | number | null)[])[],
  ): Promise<(Record<string, unknown> | null)[]> {
    this.writer.checkOpen();
    return this.readers.rowsByKey(this.catalog.handle(name, version), keys);
  }
  versions(): Promise<ViewVersionInfo[]> {
    return this.catalog.versions();
  }
  makeLive(name: string, version: number): Promise<void> {
    return this.catalog.makeLive(name, version);
  }
  /** Also forgets the version's code and build record, in the same transaction. */
  dropVersion(name: string, version: number): Promise<void> {
    return this.catalog.dropVersion(name, version, this.forget);
  }
  /** Also forgets each version's code and build record (builds not yet in the catalog too), in the same transaction. */
  async dropView(name: string): Promise<number[]> {
    const building = (await this.control.builds()).filter((b) => b.name.toLowerCase() === name.toLowerCase());
    return this.catalog.dropView(
      name,
      building.map((b) => b.version),
      this.forget,
    );
  }
  async query(sql: string, params: unknown[] = [], opts: QueryOptions = {}): Promise<QueryResult> {
    this.writer.checkOpen();
    return this.readers.query(sql, params, opts);
  }
  /** Row counts, totals per numeric measure and the differing rows of two versions (see ./diff.ts). */
  diffVersions(view: string, a: number, b: number, rowsMax?: number): Promise<VersionDiff> {
    return diffVersions(this, view, a, b, rowsMax);
  }

  // ---- ControlStore ----

  saveOutputCheckpoint(output: string, checkpoint: OutputCheckpoint): Promise<void> {
    return this.control.saveOutputCheckpoint(output, checkpoint);
  }
  outputCheckpoints(output: string): Promise<OutputCheckpoint[]> {
    return this.control.outputCheckpoints(output);
  }
  outputs(): Promise<string[]> {
    return this.control.outputs();
  }
  resetOutputSource(output: string, topic: string): Promise<void> {
    return this.control.resetOutputSource(output, topic);
  }
  saveCode(name: string, version: number, code: string): Promise<void> {
    return this.control.saveCode(name, version, code);
  }
  code(name: string, version: number): Promise<string | null> {
    return this.control.code(name, version);
  }
  saveBuild(build: BuildInfo): Promise<void> {
    return this.control.saveBuild(build);
  }
  builds(): Promise<BuildInfo[]> {
    return this.control.builds();
  }
  deleteBuild(name: string, version: number): Promise<void> {
    return this.control.deleteBuild(name, version);
  }
  recordBuild(entry: BuildHistoryEntry): Promise<void> {
    return this.control.recordBuild(entry);
  }
  buildHistory(name: string): Promise<BuildHistoryEntry[]> {
    return this.control.buildHistory(name);
  }
  addRequest(view: string, action: ViewRequestAction, from: string | null): Promise<number> {
    return this.control.addRequest(view, action, from);
  }
  takeRequests(): Promise<ViewRequest[]> {
    return this.control.takeRequests();
  }
  answerRequest(id: number, state: 'done' | 'failed', message: string, version: number | null): Promise<void> {
    return this.control.answerRequest(id, state, message, version);
  }
  request(id: number): Promise<ViewRequest | null> {
    return this.control.request(id);
  }
  forgetVersion(name: string, version: number): Promise<void> {
    return this.control.forgetVersion(name, version);
  }

  // ---- both ----

  async close(): Promise<void> {
    if (!(await this.writer.beginClose())) return;
    await this.readers.close();
    this.catalog.forgetHandles();
    this.writer.close();
  }
}
