/**
 * The SQLite store's on-disk layout, and the settings its writer connection opens with. One
 * database file serves both ports (`ViewStore` and `ControlStore`), so a flush commits rows and
 * checkpoints together and a drop forgets a version's code and build in the same transaction.
 *
 * Tables (see ./sql.ts for the version tables and the NULL-key encoding):
 *   kappa_views(name, version, state, fingerprint, definition_json, created_at, live_at)
 *       PRIMARY KEY (name, version); at most one 'live' row per name (partial unique index).
 *   kappa_checkpoints(view, version, topic, partition, offset, watermark, output_sequence)
 *       PRIMARY KEY (view, version, topic, partition).
 *   kappa_output_checkpoints(output, topic, partition, offset, sequences, watermark)
 *       PRIMARY KEY (output, topic, partition); sequences is a JSON array, one per target partition;
 *       watermark (added by ALTER TABLE on open to older files) the newest event time the task had reached.
 *   kappa_view_code(name, version, code)   the bundled config each version's logic came from.
 *   kappa_builds(name, version, info_json)  builds in progress and their progress (BuildInfo).
 *   kappa_requests(id, view, action, from_spec, created_at, state, message, version)
 *       replay / rollback / cancel requests from other processes to the running engine.
 *   kappa_build_history(id, name, entry_json)  finished builds (BuildHistoryEntry), the newest
 *       BUILD_HISTORY_MAX per view; added by CREATE IF NOT EXISTS, so older files gain it on open.
 *   kappa_consumer_offsets(group_id, topic, partition, offset, leader_epoch, metadata, committed_at)
 *       PRIMARY KEY (group_id, topic, partition): Kafka consumer groups' committed offsets
 *       (./consumer-offsets.ts); added by CREATE IF NOT EXISTS, so older files gain it on open.
 *   kappa_table_versions, kappa_table_partitions: the tables stream–table joins read, materialised
 *       (./table-states.ts); added by CREATE IF NOT EXISTS, so older files gain them on open.
 *   "<name>__v<version>"  one table per version; "<name>" a VIEW over the live version.
 *   PRAGMA user_version = 1 marks this layout; a newer layout is refused, not guessed at.
 *
 * Durability: WAL with `synchronous = NORMAL`. In WAL mode that syncs the WAL at checkpoints, not
 * at every commit, so after a power loss (not a process crash: the WAL is already in the OS)
 * SQLite may roll back the last few committed transactions. That keeps the exactly-once promise
 * because a flush commits a version's rows and the checkpoints they reflect in ONE transaction: a
 * rolled-back flush takes its checkpoints with it, the view is still the fold of the log up to its
 * (older) checkpoint, and the tasks re-read the gap from the log, which is the durable source of
 * truth. `FULL` would buy nothing a user can observe and cost an fsync per flush.
 */
import type Database from 'better-sqlite3';
import { KappaError } from '../../errors.ts';

const SCHEMA_VERSION = 1;
/** After a checkpoint, the WAL file is truncated to this size so it does not stay at its peak. */
const WAL_BYTES_LIMIT = 64 * 1024 * 1024;
/**
 * The writer's page cache (SQLite's default is 2 MiB). A flush of a view with many keys touches
 * pages all over its table; with the default cache they were read back from the file and spilled
 * again within one transaction. 32 MiB holds a 1M-row view's table (about 25 MiB); the memory is
 * only taken as pages are read.
 */
const WRITER_CACHE_KIB = 32 * 1024;
/**
 * WAL pages after which a commit copies them into the database file (SQLite's default is 1,000,
 * 4 MiB). A flush of a 1M-key view writes ~20 MiB of pages, so with the default every flush also
 * copied them into the file and synced it; with 64 MiB a page rewritten by several flushes in a
 * row is copied once. Durability is unchanged: the WAL holds every commit until it is copied.
 */
const WAL_CHECKPOINT_PAGES = 16384;

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
  watermark REAL NOT NULL DEFAULT -8.64e15,
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
CREATE TABLE IF NOT EXISTS kappa_build_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL COLLATE NOCASE,
  entry_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kappa_build_history_by_name ON kappa_build_history (name, id);
CREATE TABLE IF NOT EXISTS kappa_consumer_offsets (
  group_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  "partition" INTEGER NOT NULL,
  "offset" INTEGER NOT NULL,
  leader_epoch INTEGER NOT NULL,
  metadata TEXT,
  committed_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, topic, "partition")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kappa_table_versions (
  table_id TEXT NOT NULL,
  key TEXT NOT NULL,
  from_ms REAL NOT NULL,
  value BLOB,
  PRIMARY KEY (table_id, key, from_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kappa_table_partitions (
  table_id TEXT NOT NULL,
  "partition" INTEGER NOT NULL,
  "offset" INTEGER NOT NULL,
  max_event_ms REAL NOT NULL,
  watermark_ms REAL NOT NULL,
  pruned_below_ms REAL NOT NULL,
  PRIMARY KEY (table_id, "partition")
) WITHOUT ROWID;
`;

/** WAL + NORMAL (see the file comment), the writer's cache and checkpoint size, the layout version, and the catalog tables. */
export function prepareWriter(db: Database.Database, path: string): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new KappaError(
      'KAPPA_IO_ERROR',
      `The view store at ${path} cannot use WAL mode (got "${String(mode)}"); put it on a local file system.`,
      { path },
    );
  }
  db.pragma('synchronous = NORMAL');
  db.pragma(`journal_size_limit = ${WAL_BYTES_LIMIT}`);
  db.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
  db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
  const layout = db.pragma('user_version', { simple: true }) as number;
  if (layout > SCHEMA_VERSION) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The view store at ${path} was written by a newer Kappa (layout ${layout}, ` +
        `this one knows ${SCHEMA_VERSION}); upgrade Kappa.`,
      { path, layout },
    );
  }
  db.transaction(() => {
    db.exec(CATALOG_SQL);
    // Added later: files made before it gain the column (their checkpoints read as "no watermark").
    const columns = db.pragma('table_info(kappa_output_checkpoints)') as { name: string }[];
    if (!columns.some((c) => c.name === 'watermark'))
      db.exec('ALTER TABLE kappa_output_checkpoints ADD COLUMN watermark REAL NOT NULL DEFAULT -8.64e15');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
