/**
 * The versions of views in a PostgreSQL store: the `kappa_views` catalog, each version's table,
 * the public SQL view over the live one, and what each version is written with (its handle).
 *
 * Invariants (as in SQLite): at most one live version per view (a partial unique index enforces
 * it too); the swap (`makeLive`) retires the old version, marks the new one live and replaces the
 * public view in one transaction. PostgreSQL's DDL is transactional and DROP VIEW takes an
 * exclusive lock on the view until the commit, so a reader sees the old view or the new one,
 * never neither (a query that arrives during the swap waits for it, then reads the new one).
 *
 * Several processes: every change of a view's versions (create, swap, drop) first takes a
 * transaction-level advisory lock on the view's name, so two processes creating the same version
 * at once end with one table, and a swap never interleaves with a drop.
 *
 * Custom merge functions cannot be stored: as in SQLite, a handle carries the definition this
 * process passed to `ensureVersion`; one built from the catalog has custom merges that refuse to
 * run until `ensureVersion` registers them again.
 */
import type pg from 'pg';
import { crashPoint } from '../../crash-point.ts';
import { KappaError } from '../../errors.ts';
import { checkVersion, checkViewName, definitionJson, parseDefinitionJson, validateDefinition } from '../definition.ts';
import type { VersionTable, ViewState, ViewVersionInfo } from '../types.ts';
import { LAYOUT_LOCK } from './schema.ts';
import {
  createTableSql,
  publicSelectSql,
  quoteIdent,
  selectCustomSql,
  tableIdent,
  upsertSql,
  viewIdent,
} from './sql.ts';
import { notifyQuery } from './changes.ts';
import type { Connections } from './pool.ts';

interface CatalogRow {
  name: string;
  version: number;
  state: ViewState;
  fingerprint: string;
  definition_json: string;
  created_at: number;
  live_at: number | null;
}

/** What one version is written with, built once per process. */
export interface VersionHandle {
  def: VersionTable;
  upsert: string;
  /** Reads the stored custom-merge columns of a batch's keys; null when the view has none. */
  selectCustom: string | null;
  /** Indexes (into `stateColumns`) of the custom-merge columns. */
  customIndexes: number[];
}

export class VersionCatalog {
  private readonly handles = new Map<string, VersionHandle>();

  constructor(
    private readonly db: Connections,
    private readonly clock: { now(): number },
    /** The role queries run as, granted SELECT on each version table and public view; null when none. */
    private readonly readerRole: string | null,
    /** This store instance, in the NOTIFY each swap sends (./changes.ts); null sends none. */
    private readonly source: string | null = null,
  ) {}

  async ensureVersion(def: VersionTable): Promise<ViewVersionInfo> {
    this.db.checkOpen();
    validateDefinition(def);
    const json = definitionJson(def);
    const row = await this.db.tx(`create view "${def.name}" v${def.version}`, (c) => this.ensureTx(c, def, json));
    this.handles.set(handleKey(def.name, def.version), prepareVersion(def));
    return (await this.infos([row]))[0];
  }

  async definition(name: string, version: number): Promise<VersionTable | null> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    const row = await this.find(name, version);
    if (row === undefined) return null;
    return this.handles.get(handleKey(name, version))?.def ?? parseDefinitionJson(row.definition_json);
  }

  async versions(): Promise<ViewVersionInfo[]> {
    this.db.checkOpen();
    const rows = await this.db.run<CatalogRow>(
      'list the views',
      'SELECT * FROM kappa_views ORDER BY lower(name) COLLATE "C", version',
    );
    return this.infos(rows.rows);
  }

  async makeLive(name: string, version: number): Promise<void> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.db.tx(`make view "${name}" v${version} live`, async (c) => {
      await lockView(c, name);
      const row = await catalogRow(c, name, version);
      if (row.state === 'live') return;
      await c.query("UPDATE kappa_views SET state = 'retired' WHERE lower(name) = lower($1) AND state = 'live'", [
        name,
      ]);
      await c.query(
        "UPDATE kappa_views SET state = 'live', live_at = $1 WHERE lower(name) = lower($2) AND version = $3",
        [this.clock.now(), name, version],
      );
      await this.pointPublicView(c, parseDefinitionJson(row.definition_json));
      if (this.source !== null) await c.query(notifyQuery(this.source, { kind: 'live', view: row.name, version }));
      crashPoint('swap-before-commit');
    });
  }

  /** Drops a version that is not live; `alsoInTx` runs in the same transaction (the control store's records). */
  async dropVersion(name: string, version: number, alsoInTx: ForgetInTx): Promise<void> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.db.tx(`drop view "${name}" v${version}`, async (c) => {
      await lockView(c, name);
      const row = await catalogRow(c, name, version);
      if (row.state === 'live') {
        throw new KappaError(
          'KAPPA_VIEW_CONFLICT',
          `View "${name}" v${version} is live, so it cannot be dropped. ` +
            'Make another version live first (or roll back), then drop this one.',
          { view: name, version },
        );
      }
      await dropVersionTx(c, name, version, alsoInTx);
    });
    this.handles.delete(handleKey(name, version));
  }

  /** Every version of a view and its public view, in one transaction (see ViewStore.dropView). */
  async dropView(name: string, moreVersions: readonly number[], alsoInTx: ForgetInTx): Promise<number[]> {
    this.db.checkOpen();
    checkViewName(name);
    const versions = await this.db.tx(`drop view "${name}"`, async (c) => {
      await lockView(c, name);
      const rows = await c.query<CatalogRow>('SELECT * FROM kappa_views WHERE lower(name) = lower($1)', [name]);
      const all = [...new Set([...rows.rows.map((r) => r.version), ...moreVersions])].sort((a, b) => a - b);
      if (all.length === 0)
        throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${name}" to drop.`, { view: name });
      // The public view first: it reads the live version's table.
      await c.query(`DROP VIEW IF EXISTS ${viewIdent(name)}`);
      for (const version of all) await dropVersionTx(c, name, version, alsoInTx);
      return all;
    });
    for (const version of versions) this.handles.delete(handleKey(name, version));
    return versions;
  }

  /** The version's handle; built from the catalog if this process has not seen it (KAPPA_UNKNOWN_VIEW without it). */
  async handle(name: string, version: number): Promise<VersionHandle> {
    checkViewName(name);
    checkVersion(version);
    const key = handleKey(name, version);
    const known = this.handles.get(key);
    if (known !== undefined) return known;
    const row = await this.find(name, version);
    if (row === undefined) throw unknownVersion(name, version);
    const handle = prepareVersion(parseDefinitionJson(row.definition_json));
    this.handles.set(key, handle);
    return handle;
  }

  /** Throws KAPPA_UNKNOWN_VIEW unless the version is in the catalog. */
  async checkExists(name: string, version: number): Promise<void> {
    checkViewName(name);
    checkVersion(version);
    if ((await this.find(name, version)) === undefined) throw unknownVersion(name, version);
  }

  /** Forgets what this process knows of a version another process dropped (its flush found no table). */
  forget(name: string, version: number): void {
    this.handles.delete(handleKey(name, version));
  }

  private async find(name: string, version: number): Promise<CatalogRow | undefined> {
    const rows = await this.db.run<CatalogRow>(
      `read view "${name}" v${version}`,
      'SELECT * FROM kappa_views WHERE lower(name) = lower($1) AND version = $2',
      [name, version],
    );
    return rows.rows[0];
  }

  private async ensureTx(c: pg.PoolClient, def: VersionTable, json: string): Promise<CatalogRow> {
    await lockView(c, def.name);
    const existing = await c.query<CatalogRow>(
      'SELECT * FROM kappa_views WHERE lower(name) = lower($1) AND version = $2',
      [def.name, def.version],
    );
    const found = existing.rows[0];
    if (found !== undefined) {
      if (found.definition_json === json) return found;
      throw new KappaError(
        'KAPPA_VIEW_CONFLICT',
        `View "${def.name}" v${def.version} already exists with a different definition ` +
          `(fingerprint ${found.fingerprint}, now ${def.fingerprint}). A changed view needs a new version number.`,
        { view: def.name, version: def.version, stored: JSON.parse(found.definition_json), given: JSON.parse(json) },
      );
    }
    await c.query(createTableSql(def));
    await checkOutputSql(c, def);
    if (this.readerRole !== null) await c.query(`GRANT SELECT ON ${tableIdent(def)} TO ${quoteIdent(this.readerRole)}`);
    const live = await c.query('SELECT 1 FROM kappa_views WHERE lower(name) = lower($1) AND state = $2', [
      def.name,
      'live',
    ]);
    const now = this.clock.now();
    const state: ViewState = live.rowCount === 0 ? 'live' : 'building';
    const inserted = await c.query<CatalogRow>(
      'INSERT INTO kappa_views (name, version, state, fingerprint, definition_json, created_at, live_at) ' +
        'VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *',
      [def.name, def.version, state, def.fingerprint, json, now, state === 'live' ? now : null],
    );
    if (state === 'live') await this.pointPublicView(c, def);
    return inserted.rows[0];
  }

  /** Points the public SQL view at `def`'s table, inside the caller's transaction. */
  private async pointPublicView(c: pg.PoolClient, def: VersionTable): Promise<void> {
    // Not CREATE OR REPLACE: that keeps the old columns, and a new version may have other ones.
    await c.query(`DROP VIEW IF EXISTS ${viewIdent(def.name)}`);
    await c.query(`CREATE VIEW ${viewIdent(def.name)} AS ${publicSelectSql(def)}`);
    if (this.readerRole !== null)
      await c.query(`GRANT SELECT ON ${viewIdent(def.name)} TO ${quoteIdent(this.readerRole)}`);
  }

  /** Each row as ViewVersionInfo, with its table's row count. */
  private async infos(rows: CatalogRow[]): Promise<ViewVersionInfo[]> {
    if (rows.length === 0) return [];
    const counts = rows.map((r, i) => `(SELECT count(*) FROM ${tableIdent(r)}) AS n${i}`).join(', ');
    const result = await this.db.run<Record<string, number>>('count the rows of the views', `SELECT ${counts}`);
    const n = rows.map((_, i) => result.rows[0][`n${i}`]);
    return rows.map((row, i) => ({
      name: row.name,
      version: row.version,
      state: row.state,
      fingerprint: row.fingerprint,
      createdAtMs: row.created_at,
      liveAtMs: row.live_at,
      rows: n[i],
    }));
  }
}

export type ForgetInTx = (c: pg.PoolClient, name: string, version: number) => Promise<void>;

/** Serializes changes of one view's versions across processes, until the transaction ends. */
async function lockView(c: pg.PoolClient, name: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LAYOUT_LOCK, `view:${name.toLowerCase()}`]);
}

async function catalogRow(c: pg.PoolClient, name: string, version: number): Promise<CatalogRow> {
  const rows = await c.query<CatalogRow>('SELECT * FROM kappa_views WHERE lower(name) = lower($1) AND version = $2', [
    name,
    version,
  ]);
  if (rows.rows[0] === undefined) throw unknownVersion(name, version);
  return rows.rows[0];
}

async function dropVersionTx(c: pg.PoolClient, name: string, version: number, alsoInTx: ForgetInTx): Promise<void> {
  await c.query(`DROP TABLE IF EXISTS ${tableIdent({ name, version })}`);
  await c.query('DELETE FROM kappa_checkpoints WHERE lower(view) = lower($1) AND version = $2', [name, version]);
  await alsoInTx(c, name, version);
  await c.query('DELETE FROM kappa_views WHERE lower(name) = lower($1) AND version = $2', [name, version]);
}

/** Runs the public SELECT once so a bad output expression is refused when the version is created. */
async function checkOutputSql(c: pg.PoolClient, def: VersionTable): Promise<void> {
  try {
    // A failure aborts the transaction, which the caller rolls back: the table goes with it.
    await c.query(`${publicSelectSql(def)} LIMIT 0`);
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The output columns of view "${def.name}" v${def.version} are not valid SQL over its key and state columns: ` +
        (err as Error).message,
      { view: def.name, version: def.version },
      err,
    );
  }
}

function prepareVersion(def: VersionTable): VersionHandle {
  const customIndexes: number[] = [];
  def.stateColumns.forEach((c, i) => c.merge.kind === 'custom' && customIndexes.push(i));
  const customNames = customIndexes.map((i) => def.stateColumns[i].name);
  return {
    def,
    upsert: upsertSql(def),
    selectCustom: customIndexes.length === 0 ? null : selectCustomSql(def, customNames),
    customIndexes,
  };
}

function unknownVersion(name: string, version: number): KappaError {
  return new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${name}" v${version}.`, { view: name, version });
}

function handleKey(name: string, version: number): string {
  return `${name.toLowerCase()}\u0000${version}`;
}
