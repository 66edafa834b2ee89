/**
 * The PostgreSQL store's layout, in one schema of one database (default `public`, so psql,
 * Grafana and Metabase see the views without a search path). Every name below is in that schema;
 * every connection of the store has it as its search_path.
 *
 *   kappa_views(name, version, state, fingerprint, definition_json, created_at, live_at)
 *       one row per version; name kept as given and compared case-insensitively (a unique index on
 *       lower(name), version, and at most one 'live' row per lower(name)).
 *   kappa_checkpoints(view, version, topic, partition, offset, watermark, output_sequence)
 *   kappa_output_checkpoints(output, topic, partition, offset, sequences integer[])
 *   kappa_view_code(name, version, code), kappa_builds(name, version, info_json)
 *   kappa_requests(id identity, view, action, from_spec, created_at, state, message, version)
 *   kappa_build_history(id identity, name, entry_json)
 *   kappa_consumer_offsets(group_id, topic, partition, offset, leader_epoch, metadata, committed_at)
 *   kappa_table_versions, kappa_table_partitions: the tables joins read, materialised (./table-states.ts)
 *   kappa_members(id, host, pid, http_url, started_at, ttl_ms, heartbeat_at timestamptz)
 *   kappa_task_leases(task, owner, epoch, expires_at timestamptz, flushed_at timestamptz)
 *       the TaskLeases port (../leases.ts): times from the server's clock (now()), never a caller's.
 *   "<name>__v<version>"  one table per version; "<name>" a VIEW over the live version.
 *   kappa_fence(task, epoch), kappa_save_checkpoint(…)  the first and last statements of a flush,
 *       as functions that raise (KF001, KF002) instead of touching no row, so a flush's statements
 *       can be sent together and still stop the transaction (./flush.ts, ./pool.ts `pipelined`).
 *   json_array_length(text)  SQLite's json_array_length over JSON text (PostgreSQL's takes json),
 *       so output columns written for both databases over a custom aggregate's JSON state run here.
 *   kappa_layout(version)  one row: the layout version (1); a newer layout is refused, not guessed at.
 *
 * Offsets, sequences and times in ms are bigint, read back as numbers (./values.ts).
 *
 * Creating it is idempotent and safe when several processes open the store at once: the DDL runs
 * in one transaction that first takes a transaction-level advisory lock (LAYOUT_LOCK), so a second
 * process waits for the first, then finds every table there.
 *
 * The reader role (option `readerRole`, default `kappa_reader`; roles are cluster-wide, the grants
 * are per database and schema): queries from
 * `POST /v1/sql` run with `SET LOCAL ROLE` to a role that may read the public views and version
 * tables and nothing else (not Kappa's own kappa_* tables), inside a read-only transaction. The
 * role is created here when the store's user may create roles; otherwise queries run as the
 * store's user, still read-only, and the catalog tables are readable to them (said at open).
 *
 * Durability: PostgreSQL's own (a commit is durable per its synchronous_commit setting); a flush
 * commits rows and checkpoints in one transaction, so whatever a crash or failover keeps, the view
 * is the fold of the log up to its checkpoint.
 */
import type pg from 'pg';
import { KappaError } from '../../errors.ts';
import { quoteIdent, quoteLiteral, tableIdent, viewIdent } from './sql.ts';

const LAYOUT_VERSION = 1;
/** The SQLSTATE kappa_fence raises when the task's epoch has moved on (./flush.ts turns it into KAPPA_FENCED). */
export const FENCED_STATE = 'KF001';
/** The SQLSTATE kappa_save_checkpoint raises for a checkpoint that would go backwards. */
export const BACKWARDS_STATE = 'KF002';
/** The advisory lock (first key) taken around the layout's DDL, and around changes of a view's versions. */
export const LAYOUT_LOCK = 0x6b617070; // 'kapp'

const CATALOG_SQL = `
CREATE TABLE IF NOT EXISTS kappa_layout (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS kappa_views (
  name text NOT NULL,
  version integer NOT NULL,
  state text NOT NULL CHECK (state IN ('building', 'live', 'retired')),
  fingerprint text NOT NULL,
  definition_json text NOT NULL,
  created_at bigint NOT NULL,
  live_at bigint
);
CREATE UNIQUE INDEX IF NOT EXISTS kappa_views_key ON kappa_views (lower(name), version);
CREATE UNIQUE INDEX IF NOT EXISTS kappa_views_one_live ON kappa_views (lower(name)) WHERE state = 'live';
CREATE TABLE IF NOT EXISTS kappa_checkpoints (
  view text NOT NULL,
  version integer NOT NULL,
  topic text NOT NULL,
  "partition" integer NOT NULL,
  "offset" bigint NOT NULL,
  watermark double precision NOT NULL,
  output_sequence bigint NOT NULL,
  PRIMARY KEY (view, version, topic, "partition")
);
CREATE TABLE IF NOT EXISTS kappa_output_checkpoints (
  output text NOT NULL,
  topic text NOT NULL,
  "partition" integer NOT NULL,
  "offset" bigint NOT NULL,
  sequences integer[] NOT NULL,
  PRIMARY KEY (output, topic, "partition")
);
DO $$ BEGIN
  -- Added later: databases made before it gain the column (its lock only taken when it is missing).
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = 'kappa_output_checkpoints' AND column_name = 'watermark') THEN
    ALTER TABLE kappa_output_checkpoints ADD COLUMN watermark double precision NOT NULL DEFAULT -8.64e15;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS kappa_view_code (
  name text NOT NULL,
  version integer NOT NULL,
  code text NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS kappa_builds (
  name text NOT NULL,
  version integer NOT NULL,
  info_json text NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS kappa_requests (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  view text NOT NULL,
  action text NOT NULL CHECK (action IN ('replay', 'rollback', 'cancel')),
  from_spec text,
  created_at bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'taken', 'done', 'failed')),
  message text,
  version integer
);
CREATE INDEX IF NOT EXISTS kappa_requests_pending ON kappa_requests (id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS kappa_build_history (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  entry_json text NOT NULL
);
CREATE INDEX IF NOT EXISTS kappa_build_history_by_name ON kappa_build_history (lower(name), id);
CREATE TABLE IF NOT EXISTS kappa_consumer_offsets (
  group_id text NOT NULL,
  topic text NOT NULL,
  "partition" integer NOT NULL,
  "offset" bigint NOT NULL,
  leader_epoch integer NOT NULL,
  metadata text,
  committed_at bigint NOT NULL,
  PRIMARY KEY (group_id, topic, "partition")
);
CREATE TABLE IF NOT EXISTS kappa_table_versions (
  table_id text NOT NULL,
  key text NOT NULL,
  from_ms double precision NOT NULL,
  value bytea,
  PRIMARY KEY (table_id, key, from_ms)
);
CREATE TABLE IF NOT EXISTS kappa_table_partitions (
  table_id text NOT NULL,
  "partition" integer NOT NULL,
  "offset" bigint NOT NULL,
  max_event_ms double precision NOT NULL,
  watermark_ms double precision NOT NULL,
  pruned_below_ms double precision NOT NULL,
  PRIMARY KEY (table_id, "partition")
);
CREATE TABLE IF NOT EXISTS kappa_members (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  http_url text,
  started_at bigint NOT NULL,
  ttl_ms integer NOT NULL,
  heartbeat_at timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION kappa_fence(p_task text, p_epoch bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE kappa_task_leases SET flushed_at = now() WHERE task = p_task AND epoch = p_epoch;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % is no longer held at epoch %', p_task, p_epoch USING ERRCODE = '${FENCED_STATE}';
  END IF;
END $$;
CREATE OR REPLACE FUNCTION kappa_save_checkpoint(
  p_view text, p_version integer, p_topic text, p_partition integer, p_offset bigint, p_watermark double precision,
  p_sequence bigint
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  was record;
BEGIN
  INSERT INTO kappa_checkpoints AS c (view, version, topic, "partition", "offset", watermark, output_sequence)
    VALUES (p_view, p_version, p_topic, p_partition, p_offset, p_watermark, p_sequence)
    ON CONFLICT (view, version, topic, "partition") DO UPDATE SET "offset" = excluded."offset",
      watermark = excluded.watermark, output_sequence = excluded.output_sequence
    WHERE excluded."offset" >= c."offset" AND excluded.output_sequence >= c.output_sequence;
  IF NOT FOUND THEN
    SELECT "offset", output_sequence INTO was FROM kappa_checkpoints
      WHERE view = p_view AND version = p_version AND topic = p_topic AND "partition" = p_partition;
    RAISE EXCEPTION 'offset % → %, output sequence % → %', was."offset", p_offset, was.output_sequence, p_sequence
      USING ERRCODE = '${BACKWARDS_STATE}';
  END IF;
END $$;
REVOKE EXECUTE ON FUNCTION kappa_fence(text, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION kappa_save_checkpoint(text, integer, text, integer, bigint, double precision, bigint) FROM PUBLIC;
CREATE OR REPLACE FUNCTION json_array_length(text) RETURNS integer
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN json_array_length($1::json);
CREATE TABLE IF NOT EXISTS kappa_task_leases (
  task text PRIMARY KEY,
  owner text,
  epoch bigint NOT NULL,
  expires_at timestamptz,
  flushed_at timestamptz
);
`;

/**
 * Creates the layout if missing (idempotent, under the advisory lock) and the reader role when the
 * store's user may. Returns the reader role's name, or null when queries run as the store's user.
 */
export async function prepareLayout(client: pg.PoolClient, schema: string, readerRole: string): Promise<string | null> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LAYOUT_LOCK, `layout:${schema}`]);
    if (schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(CATALOG_SQL);
    const layout = await client.query<{ version: number }>('SELECT version FROM kappa_layout');
    const found = layout.rows[0]?.version;
    if (found === undefined) await client.query('INSERT INTO kappa_layout (version) VALUES ($1)', [LAYOUT_VERSION]);
    else if (found > LAYOUT_VERSION) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `The view store in schema "${schema}" was written by a newer Kappa (layout ${found}, this one knows ${LAYOUT_VERSION}); upgrade Kappa.`,
        { schema, layout: found },
      );
    }
    const role = await readerRoleIn(client, schema, readerRole);
    if (role !== null) await grantExisting(client, role);
    await client.query('COMMIT');
    return role;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Makes sure the reader role exists and this user may switch to it; null when it cannot be made
 * (no CREATEROLE) and does not exist. Runs inside the layout transaction, in a savepoint, so a
 * refusal does not abort it.
 */
async function readerRoleIn(client: pg.PoolClient, schema: string, role: string): Promise<string | null> {
  await client.query('SAVEPOINT kappa_reader_role');
  try {
    // CREATE ROLE is cluster-wide: two stores (databases) creating it at once make one of them
    // fail with duplicate_object or unique_violation, which means it exists. Both are caught.
    await client.query(
      `DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN
           CREATE ROLE ${quoteIdent(role)} NOLOGIN;
         END IF;
       EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
       END $$`,
    );
    await client.query(`GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)}`);
    await client.query('RELEASE SAVEPOINT kappa_reader_role');
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT kappa_reader_role');
    return null;
  }
  // A superuser may switch to any role; another user needs to be a member (a creator is not
  // always one: PostgreSQL 16 gives it only the ADMIN option by default).
  await client.query('SAVEPOINT kappa_reader_grant');
  try {
    await client.query(`GRANT ${quoteIdent(role)} TO CURRENT_USER`);
    await client.query('RELEASE SAVEPOINT kappa_reader_grant');
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT kappa_reader_grant');
  }
  const may = await client.query<{ ok: boolean }>(
    'SELECT pg_has_role(current_user, $1, $2) OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS ok',
    [role, 'MEMBER'],
  );
  return may.rows[0]?.ok === true ? role : null;
}

/**
 * Grants the reader role SELECT on the views and version tables already there: a database made by
 * a store opened with another role (or none) still answers queries under this one.
 */
async function grantExisting(client: pg.PoolClient, role: string): Promise<void> {
  const versions = await client.query<{ name: string; version: number; state: string }>(
    'SELECT name, version, state FROM kappa_views',
  );
  const objects = versions.rows.flatMap((v) => [tableIdent(v), ...(v.state === 'live' ? [viewIdent(v.name)] : [])]);
  if (objects.length > 0) await client.query(`GRANT SELECT ON ${objects.join(', ')} TO ${quoteIdent(role)}`);
}
