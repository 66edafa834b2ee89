/**
 * The PostgreSQL adapter of the serving layer's ports (through `pg`): `ViewStore` and `ControlStore`
 * on one database, with the Kafka consumer groups' offsets (`consumerOffsets`) and the task leases
 * of several Kappa processes (`leases`) beside them. One database serves them all, so a flush
 * commits rows, checkpoints and its fence check in one transaction, and a drop forgets a version's
 * code and build in the transaction that drops it.
 *
 * This file opens the connections and wires the parts; each part is one job:
 *   ./schema.ts            the layout (catalog tables, the reader role), created on open
 *   ./pool.ts              the writer and reader connection pools, transactions, typed errors
 *   ./catalog.ts           versions: create, swap (makeLive), drop
 *   ./flush.ts             deltas merged by rule (one unnest upsert per round) and checkpoints
 *   ./readers.ts           `query` (read-only, bounded) and `rowsByKey`
 *   ../diff.ts             two versions of a view compared (over ./sql.ts's SELECT of a version)
 *   ./control-store.ts     output checkpoints, code, builds, build history, requests
 *   ./consumer-offsets.ts  Kafka consumer groups' committed offsets
 *   ./task-leases.ts       which process runs which task, and the epoch that fences the others
 *   ./in-doubt.ts          fenced writes cut off with the connection: the epoch moved past them
 *
 * Unlike SQLite's, a PostgreSQL store is shared: several processes (on several machines) open it
 * at once. Opening is safe to race (./schema.ts); changes of a view's versions serialize on an
 * advisory lock per view (./catalog.ts); flushes of different tasks run in parallel.
 */
import { hostname } from 'node:os';
import { KappaError } from '../../errors.ts';
import type { ConsumerOffsetStore } from '../consumer-offsets.ts';
import type { BuildHistoryEntry, ControlStore } from '../control-store.ts';
import { checkIdentifier, checkViewName } from '../definition.ts';
import type { TaskFence, TaskLeases } from '../leases.ts';
import type {
  BuildInfo,
  Checkpoint,
  OutputCheckpoint,
  QueryOptions,
  QueryResult,
  Deltas,
  FlushResult,
  StoreChange,
  VersionTable,
  ViewRequest,
  ViewRequestAction,
  ViewVersionInfo,
} from '../types.ts';
import type { ViewStore } from '../view-store.ts';
import { type VersionDiff, diffVersions } from '../diff.ts';
import { type ForgetInTx, VersionCatalog } from './catalog.ts';
import type { TableStateStore } from '../table-states.ts';
import { PostgresTableStates } from './table-states.ts';
import { PostgresConsumerOffsets } from './consumer-offsets.ts';
import { PostgresControlStore } from './control-store.ts';
import { serverName, storeError } from './errors.ts';
import { DeltaWriter } from './flush.ts';
import { InDoubtWrites } from './in-doubt.ts';
import { Connections } from './pool.ts';
import { PostgresReaders } from './readers.ts';
import { prepareLayout } from './schema.ts';
import { publicSelectSql } from './sql.ts';
import { watchChanges } from './changes.ts';
import { randomBytes } from 'node:crypto';
import { PostgresTaskLeases } from './task-leases.ts';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (any form node-postgres takes). */
  connectionString: string;
  /**
   * The schema holding the catalog, the version tables and the public views (default `public`,
   * where psql, Grafana and Metabase look first). Lower-case letters, digits and underscores.
   */
  schema?: string;
  /** Writer connections: flushes of different tasks, swaps and control writes run on these at once (default 4). */
  poolSize?: number;
  /** Reader connections for `query` and `rowsByKey` (default 2, at most READERS_MAX). */
  readers?: number;
  /** `query` fails rather than return more rows than this (default 100,000): add a LIMIT. */
  queryRowsMax?: number;
  /**
   * The role queries run as (default `kappa_reader`): created if missing when the store's user
   * may create roles, and granted SELECT on each version table and public view only. Without it
   * (no CREATEROLE, and no such role this user may switch to), queries run as the store's user,
   * still in read-only transactions.
   */
  readerRole?: string;
  /** How long opening a connection may take before the call fails as the server unreachable (default 5000). */
  connectTimeoutMs?: number;
  /**
   * How long a write (a flush, a swap, a lease) waits for the server's answer to one statement
   * before the call fails as the server unreachable and its connection is dropped (default
   * 60,000): a server cut off by a network split or paused answers nothing, and this is what ends
   * the wait. Longer than the slowest statement a flush may need.
   */
  responseTimeoutMs?: number;
  /** The time source for `created_at`, `live_at` and requests (default `Date.now`; leases use the server's clock). */
  clock?: { now(): number };
}

export const POOL_SIZE_DEFAULT = 4;
export const POOL_SIZE_MAX = 64;
export const READERS_MAX = 16;
export const QUERY_ROWS_MAX_DEFAULT = 100_000;

/** The PostgreSQL store: both ports, the consumer offsets and the task leases, on one database. */
export type PostgresStore = ViewStore &
  ControlStore & {
    readonly consumerOffsets: ConsumerOffsetStore;
    readonly leases: TaskLeases;
    /** Whether queries run as the reader role (its name), or as the store's user (null). */
    readonly readerRole: string | null;
    /** The server, as `host:port/database` (no credentials), for messages. */
    readonly server: string;
  };

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const o = checkOptions(opts);
  const server = serverName(o.connectionString);
  const db = new Connections(
    {
      connectionString: o.connectionString,
      schema: o.schema,
      size: o.poolSize,
      readers: o.readers,
      connectTimeoutMs: o.connectTimeoutMs,
      responseTimeoutMs: o.responseTimeoutMs,
      applicationName: `kappa ${hostname()}:${process.pid}`,
    },
    server,
  );
  try {
    const role = await db.withClient(db.writer, `open the view store at ${server}`, (c) =>
      prepareLayout(c, o.schema, o.readerRole),
    );
    return new PostgresStoreImpl(db, role, o.queryRowsMax, o.clock, o.connectionString);
  } catch (err) {
    await db.close();
    throw storeError(err, `open the view store at ${server}`, server);
  }
}

function checkOptions(opts: PostgresStoreOptions): Required<PostgresStoreOptions> {
  const invalid = (message: string, details: Record<string, unknown>): KappaError =>
    new KappaError('KAPPA_INVALID_ARGUMENT', message, details);
  if (
    opts === null ||
    typeof opts !== 'object' ||
    typeof opts.connectionString !== 'string' ||
    opts.connectionString === ''
  )
    throw invalid('The PostgreSQL store needs a connection string (postgres://user@host:port/database).', {});
  const o = {
    connectionString: opts.connectionString,
    schema: opts.schema ?? 'public',
    poolSize: opts.poolSize ?? POOL_SIZE_DEFAULT,
    readers: opts.readers ?? 2,
    queryRowsMax: opts.queryRowsMax ?? QUERY_ROWS_MAX_DEFAULT,
    readerRole: opts.readerRole ?? 'kappa_reader',
    connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
    responseTimeoutMs: opts.responseTimeoutMs ?? 60_000,
    clock: opts.clock ?? { now: Date.now },
  };
  if (!/^[a-z_][a-z0-9_]*$/.test(o.schema) || o.schema.length > 63)
    throw invalid('schema must be 1-63 lower-case letters, digits and underscores, not starting with a digit.', {
      schema: o.schema,
    });
  checkIdentifier('reader role', o.readerRole);
  const whole = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(value) || value < min || value > max)
      throw invalid(`${name} must be a whole number from ${min} to ${max}.`, { [name]: value });
  };
  whole('poolSize', o.poolSize, 1, POOL_SIZE_MAX);
  whole('readers', o.readers, 1, READERS_MAX);
  whole('queryRowsMax', o.queryRowsMax, 1, Number.MAX_SAFE_INTEGER);
  whole('connectTimeoutMs', o.connectTimeoutMs, 1, 600_000);
  whole('responseTimeoutMs', o.responseTimeoutMs, 1, 3_600_000);
  return o;
}

/** Every port, each call handed to the part that does that job. */
class PostgresStoreImpl implements ViewStore, ControlStore {
  readonly consumerOffsets: ConsumerOffsetStore;
  readonly tables: TableStateStore;
  readonly leases: TaskLeases;
  readonly server: string;
  private readonly catalog: VersionCatalog;
  private readonly deltas: DeltaWriter;
  private readonly control: PostgresControlStore;
  private readonly readers: PostgresReaders;
  private readonly forget: ForgetInTx;
  /** This instance, in the NOTIFYs its flushes and swaps send, so its own `watchChanges` skips them. */
  private readonly source = randomBytes(8).toString('hex');

  constructor(
    private readonly db: Connections,
    readonly readerRole: string | null,
    queryRowsMax: number,
    clock: { now(): number },
    private readonly connectionString: string,
  ) {
    this.server = db.server;
    this.catalog = new VersionCatalog(db, clock, readerRole, this.source);
    const inDoubt = new InDoubtWrites(db);
    this.deltas = new DeltaWriter(db, this.catalog, inDoubt, this.source);
    this.control = new PostgresControlStore(db, clock);
    this.readers = new PostgresReaders(db, queryRowsMax, readerRole);
    this.consumerOffsets = new PostgresConsumerOffsets(db);
    this.tables = new PostgresTableStates(db);
    this.leases = new PostgresTaskLeases(db);
    this.forget = (c, name, version) => this.control.forgetInTx(c, name, version);
  }

  // ---- ViewStore ----

  ensureVersion(def: VersionTable): Promise<ViewVersionInfo> {
    return this.catalog.ensureVersion(def);
  }
  /** With a fence, commits only while the task's epoch is still the fence's (else KAPPA_FENCED, nothing written). */
  flush(
    name: string,
    version: number,
    deltas: Deltas,
    checkpoints: Checkpoint[],
    fence?: TaskFence,
  ): Promise<FlushResult> {
    return this.deltas.flush(name, version, deltas, checkpoints, fence);
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
    this.db.checkOpen();
    const handle = await this.catalog.handle(name, version);
    return this.readers.rowsByKey(handle.def, keys);
  }
  versions(): Promise<ViewVersionInfo[]> {
    return this.catalog.versions();
  }
  makeLive(name: string, version: number): Promise<void> {
    return this.catalog.makeLive(name, version);
  }

  /** What other processes' flushes and swaps committed, through LISTEN on a connection of its own (./changes.ts). */
  watchChanges(listener: (change: StoreChange) => void): () => Promise<void> {
    return watchChanges(this.connectionString, this.source, listener);
  }
  /** Also forgets the version's code and build record, in the same transaction. */
  dropVersion(name: string, version: number): Promise<void> {
    return this.catalog.dropVersion(name, version, this.forget);
  }
  /** Also forgets each version's code and build record (builds not yet in the catalog too), in the same transaction. */
  async dropView(name: string): Promise<number[]> {
    checkViewName(name);
    const building = (await this.control.builds()).filter((b) => b.name.toLowerCase() === name.toLowerCase());
    return this.catalog.dropView(
      name,
      building.map((b) => b.version),
      this.forget,
    );
  }
  async query(sql: string, params: unknown[] = [], opts: QueryOptions = {}): Promise<QueryResult> {
    this.db.checkOpen();
    return this.readers.query(sql, params, opts);
  }

  /** Row counts, totals per numeric measure and the differing rows of two versions (../diff.ts). */
  diffVersions(view: string, a: number, b: number, rowsMax?: number): Promise<VersionDiff> {
    return diffVersions(this, (def) => publicSelectSql(def), view, a, b, rowsMax);
  }

  // ---- ControlStore ----

  /** With a fence, commits only while the task's epoch is still the fence's (else KAPPA_FENCED, nothing written). */
  saveOutputCheckpoint(output: string, checkpoint: OutputCheckpoint, fence?: TaskFence): Promise<void> {
    return this.control.saveOutputCheckpoint(output, checkpoint, fence);
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

  // ---- all of them ----

  async close(): Promise<void> {
    await this.db.close();
  }
}
