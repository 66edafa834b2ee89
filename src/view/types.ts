/**
 * The data the serving layer's two ports share: a version's physical table (`VersionTable`), the
 * deltas and checkpoints a flush carries, what a query returns, and the control records (builds,
 * requests, output checkpoints). The ports themselves: `ViewStore` (./view-store.ts) and
 * `ControlStore` (./control-store.ts).
 */

/** `ANY` keeps whatever scalar it is given (no type affinity in SQLite). */
export type ColumnType = 'INTEGER' | 'REAL' | 'TEXT' | 'ANY';

/** How a state delta merges into the stored value of its column. */
export type MergeRule =
  /** stored + delta (count, sum). */
  | { kind: 'add' }
  /** the smaller / larger, ignoring NULL. */
  | { kind: 'min' }
  | { kind: 'max' }
  /** take the delta's value when the delta's `by` column is smaller (first by event time) / larger (last). `by` merges with min / max itself. */
  | { kind: 'earliest'; by: string }
  | { kind: 'latest'; by: string }
  /** a user-defined mergeable aggregate: state stored as JSON text, merged in JS (read, merge, write). */
  | { kind: 'custom'; merge: (stored: unknown, delta: unknown) => unknown };

export interface KeyColumn {
  name: string;
  type: ColumnType;
}

export interface StateColumn {
  name: string;
  type: ColumnType;
  merge: MergeRule;
}

export interface OutputColumn {
  name: string;
  /** A SQL expression over the version table's key and state columns. */
  sql: string;
}

/** The physical table of one version of a view (not to be confused with the DSL's `ViewDef`, what a config declares, or the engine's `ViewPlan`, what it compiles that into). */
export interface VersionTable {
  /** Public name: a SQL identifier ([a-z_][a-z0-9_]*). */
  name: string;
  version: number;
  /** Hash of the view's logic; a changed fingerprint means a new version must be built. */
  fingerprint: string;
  /** The row key: group keys, then window_start and window_end for windowed views. */
  keyColumns: KeyColumn[];
  stateColumns: StateColumn[];
  /** What the public SQL view shows: key columns first (as they are), then these. */
  outputColumns: OutputColumn[];
  /**
   * Session windows: the last two key columns are window_start and window_end, and a row written
   * whose window touches or overlaps stored rows of the same group is merged with them into one row
   * spanning them all (the stored rows removed). Absent for every other view.
   */
  session?: true;
}

/** One group's state delta: values aligned with `keyColumns` and `stateColumns`. */
export interface RowDelta {
  key: (string | number | null)[];
  state: unknown[];
}

/**
 * Row deltas as columns, as the engine's worker threads hand them over: row i's key values are
 * `keys[k][i]`, its state values `states[s][i]`; a column of numbers only is a Float64Array. Sent
 * between threads, a few arrays cost a tenth of an object and two arrays per row (by_order in the
 * process bench: 0.77 → 0.05-0.11 µs a row to receive), and they leave nothing per row to collect.
 */
export interface DeltaColumns {
  count: number;
  keys: ArrayLike<string | number | null>[];
  states: ArrayLike<unknown>[];
}

/** What a flush merges: rows, or the same as columns (./deltas.ts reads both). */
export type Deltas = RowDelta[] | DeltaColumns;

/** What a flush did beyond its deltas' rows. */
export interface FlushResult {
  /** The keys of rows the flush deleted: sessions merged into a wider one (a session view's flush), else none. */
  removed: (string | number | null)[][];
}

/** A task's position: the next source offset to process and the watermark it had reached. */
export interface Checkpoint {
  topic: string;
  partition: number;
  offset: number;
  watermark: number;
  /** Sequence number of the next record the task emits to a derived topic (idempotent producer). */
  outputSequence: number;
}

/**
 * The position of an output pipeline's task (`from(a)....to(b)`): the next source offset, and for
 * each partition of the target topic the idempotent-producer sequence of the next record the
 * task sends there. Saved after the records before `offset` are durable in the target, so a
 * restart re-sends from `offset` under the same sequences and the log drops the copies.
 */
export interface OutputCheckpoint {
  topic: string;
  partition: number;
  offset: number;
  /** Next sequence per target partition (index = partition). */
  sequences: number[];
  /**
   * The newest event time the task had reached (what a stream–stream join in the pipeline judges
   * lateness by); absent when none was saved (and for checkpoints saved before it was kept).
   */
  watermark?: number;
}

export type ViewState = 'building' | 'live' | 'retired';

export interface ViewVersionInfo {
  name: string;
  version: number;
  state: ViewState;
  fingerprint: string;
  createdAtMs: number;
  liveAtMs: number | null;
  rows: number;
}

/** Why a version is being built. */
export type BuildReason = 'new view' | 'logic changed' | 'replay' | 'scheduled' | 'rollback';

/**
 * A build in progress: a new version replaying the log (or, for a rollback, a retired version
 * catching up before it goes live again). The engine saves it when the build starts and updates
 * the progress about once a second, so other processes (`kappa views --json`, `kappa replay`) can
 * follow it; it is deleted when the version goes live or the build is cancelled.
 */
export interface BuildInfo {
  name: string;
  version: number;
  /** The fingerprint of the logic being built. */
  fingerprint: string;
  reason: BuildReason;
  /** Where the replay started: 'earliest', '@' and an ISO time, or 'checkpoints' (a rollback catching up). */
  from: string;
  /** The first offset of each source partition the build reads (it resumes from its checkpoints). */
  fromOffsets: { topic: string; partition: number; offset: number }[];
  startedAtMs: number;
  /** Records read so far, summed over the partitions (offsets past `fromOffsets`). */
  offsetsDone: number;
  /** Records from `fromOffsets` to the head of the log, summed over the partitions. */
  offsetsTotal: number;
  eventsPerSecond: number;
  /** Seconds left at the current rate; null before there is a rate. */
  etaSeconds: number | null;
  updatedAtMs: number;
}

export type ViewRequestAction = 'replay' | 'rollback' | 'cancel';

/**
 * A request to a running engine from another process (`kappa replay`, `kappa rollback`, or the
 * HTTP API): saved 'pending', taken by the engine ('taken'), then answered 'done' or 'failed'
 * with a message and, when one is concerned, the version.
 */
export interface ViewRequest {
  id: number;
  view: string;
  action: ViewRequestAction;
  /** For a replay: 'earliest' or '@<ISO time>'; for a rollback: the version to bring back, as decimal text (null: the previous version). */
  from: string | null;
  createdAtMs: number;
  state: 'pending' | 'taken' | 'done' | 'failed';
  message: string | null;
  version: number | null;
}

/**
 * A change another process committed to a store several processes share (PostgreSQL): rows of a
 * version, by their key (read them with `rowsByKey`), a version that went live, or `reset` when a
 * flush changed too many rows to name (read the view again).
 */
export type StoreChange =
  | { kind: 'rows'; view: string; version: number; keys: (string | number | null)[][] }
  | { kind: 'live'; view: string; version: number }
  | { kind: 'reset'; view: string; version: number };

export interface QueryOptions {
  /** Stop the query (KAPPA_QUERY_TIMEOUT) if it runs longer than this. */
  timeoutMs?: number;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
}
