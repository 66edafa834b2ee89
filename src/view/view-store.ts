/**
 * The `ViewStore` port: the serving layer as the processing engine sees it. Adapters: SQLite
 * (`view/sqlite/`, the embedded default) now, PostgreSQL later. Contract suite, run against every
 * adapter: `test/contract/view-store.contract.ts`. What the engine keeps about its own work (code,
 * builds, requests, output checkpoints) is the other port, `ControlStore` (./control-store.ts).
 *
 * Physical form: each view version is a real table `<name>__v<version>` with one column per group
 * key (windowed views also have `window_start` and `window_end`, ms since the epoch) and one column
 * per aggregate *state* column. The public name `<name>` is a SQL VIEW over the live version that
 * exposes the *output* columns (for example `avg` = `avg__sum / avg__count`).
 *
 * Deltas: a task never reads rows. It folds events into per-group state deltas and hands them to
 * `flush`, which merges each delta into the stored row by the column's merge rule (for `add`:
 * `total = total + excluded.total`). So tasks for different partitions update the same group
 * without a shuffle.
 *
 * Promises every adapter keeps:
 * - one flush is one transaction: its deltas and its checkpoints are committed together or not at
 *   all, and a flush that fails (bad delta, checkpoint going backwards, a merge that throws, a
 *   crash) leaves rows and checkpoints as they were;
 * - a checkpoint never moves backwards: a flush whose checkpoint has a smaller offset or output
 *   sequence than the stored one for the same (view, version, topic, partition) fails whole;
 * - `ensureVersion` is idempotent: the same definition again changes nothing, a different one
 *   under an existing (name, version) is refused (KAPPA_VIEW_CONFLICT);
 * - the swap (`makeLive`) is atomic for readers: a query sees the old live version or the new
 *   one, never neither and never a mix; at most one version of a view is live;
 * - the live version cannot be dropped (KAPPA_VIEW_CONFLICT) on its own; `dropView` drops a whole
 *   view, every version and its public SQL view, in one transaction;
 * - queries are read-only (a statement that would write data or change the connection is refused
 *   with KAPPA_QUERY_NOT_READ_ONLY, before it runs) and bounded (statement length, rows and bytes
 *   of the answer, and a time limit when one is given); they read a whole committed state and
 *   never wait for a flush;
 * - everything committed survives closing and reopening the store.
 */
import type { VersionDiff } from './diff.ts';
import type { TaskFence } from './leases.ts';
import type { TableStateStore } from './table-states.ts';
import type {
  Checkpoint,
  FlushResult,
  QueryOptions,
  QueryResult,
  Deltas,
  StoreChange,
  VersionTable,
  ViewVersionInfo,
} from './types.ts';

export interface ViewStore {
  /** The tables stream–table joins read, materialised beside the views (absent: every start reads them from their topic). */
  readonly tables?: TableStateStore;
  /**
   * Creates the version's table and catalog row if they do not exist (state `building`, or `live`
   * when no version of the view is live yet, in which case the public SQL view points at it).
   * Idempotent: a second call with the same definition changes nothing. A different definition
   * under an existing (name, version) is refused.
   */
  ensureVersion(def: VersionTable): Promise<ViewVersionInfo>;
  /**
   * In one transaction: merge every delta into the version's table and upsert the checkpoints.
   * Deltas come as rows or as columns (the engine's worker threads send columns; ./deltas.ts).
   * With a `fence` (several processes sharing the work, ./leases.ts), the transaction first checks
   * that the task's epoch is still the fence's and fails whole with KAPPA_FENCED when another
   * process has taken the task since. The SQLite adapter ignores it: one process owns an embedded
   * data dir (its lock), so there is no other owner to fence out. A session view's flush may delete
   * rows (sessions merged into a wider one; each delta's key is changed in place to its merged
   * window): their keys come back in `removed`.
   */
  flush(
    name: string,
    version: number,
    deltas: Deltas,
    checkpoints: Checkpoint[],
    fence?: TaskFence,
  ): Promise<FlushResult>;
  /** The checkpoints the version's flushes saved, by topic and partition (KAPPA_UNKNOWN_VIEW without the version). */
  checkpoints(name: string, version: number): Promise<Checkpoint[]>;
  /** The definition a version was created with (null if the version does not exist). */
  definition(name: string, version: number): Promise<VersionTable | null>;
  /**
   * The rows of a version with these group keys, as its public view shows them, one per key in
   * order (null for a key with no row). Each is found by its primary key, so the cost is per key,
   * whatever the table holds.
   */
  rowsByKey(
    name: string,
    version: number,
    keys: readonly (readonly (string | number | null)[])[],
  ): Promise<(Record<string, unknown> | null)[]>;
  /** Every version of every view in the catalog, with row counts. */
  versions(): Promise<ViewVersionInfo[]>;
  /** Repoints the public SQL view at `version` and marks it live (others live → retired), atomically. */
  makeLive(name: string, version: number): Promise<void>;
  /**
   * Drops a version's table, checkpoints and catalog row. Refused for the live version. (The SQLite
   * adapter, which also serves the control store, forgets the version's code and build record in
   * the same transaction; callers still call `ControlStore.forgetVersion`.)
   */
  dropVersion(name: string, version: number): Promise<void>;
  /**
   * Drops every version of a view, the live one included, with their tables, checkpoints and
   * catalog rows, and the public SQL view, in one transaction: afterwards the view is as if it had
   * never been built (a config that still defines it builds it again from the start of its topic).
   * Returns the versions dropped; KAPPA_UNKNOWN_VIEW when the store has no view of that name.
   * (The SQLite adapter also forgets each version's code and build record in that transaction.)
   * The caller makes sure no engine is writing the view (`kappa views drop` holds the data dir).
   */
  dropView(name: string): Promise<number[]>;
  /**
   * Runs one read-only SQL statement on a reader connection; a write is refused with
   * KAPPA_QUERY_NOT_READ_ONLY. The adapter bounds the statement's length and the answer's rows and
   * bytes, and stops it past `opts.timeoutMs` (KAPPA_QUERY_TIMEOUT).
   */
  query(sql: string, params?: unknown[], opts?: QueryOptions): Promise<QueryResult>;
  /**
   * Compares two versions of a view (./diff.ts): row counts, the total of each numeric measure,
   * and the rows that differ by key, the first `rowsMax` (default 20, at most 1000) of each kind.
   * KAPPA_UNKNOWN_VIEW for a version the catalog does not hold; KAPPA_INVALID_ARGUMENT when the two
   * are keyed differently. Reads both versions through `query`, so its bounds apply.
   */
  diffVersions(view: string, a: number, b: number, rowsMax?: number): Promise<VersionDiff>;
  /**
   * Only on a store several processes share (PostgreSQL): calls `listener` with what the other
   * processes' flushes and swaps committed, as they commit (this process's own are not repeated),
   * so every process's change streams see every change. Returns the function that stops it.
   */
  watchChanges?(listener: (change: StoreChange) => void): () => Promise<void>;
  close(): Promise<void>;
}
