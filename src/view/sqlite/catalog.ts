/**
 * The versions of views in a SQLite store: the `kappa_views` catalog, each version's table, the
 * public SQL view over the live one, and the prepared statements each version is written with.
 *
 * Invariants: at most one live version per view (a partial unique index enforces it too); the swap
 * (`makeLive`) retires the old version, marks the new one live and repoints the public view in one
 * transaction, so a reader sees either the old version or the new one, never neither; the live
 * version cannot be dropped.
 *
 * Custom merge functions cannot be stored: a version's handle carries the definition this process
 * passed to `ensureVersion`. After a restart, a handle built from the catalog has the stored JSON,
 * whose custom merges refuse to run until `ensureVersion` registers them again.
 */
import type Database from 'better-sqlite3';
import { crashPoint } from '../../crash-point.ts';
import { KappaError } from '../../errors.ts';
import { checkVersion, checkViewName, definitionJson, parseDefinitionJson, validateDefinition } from '../definition.ts';
import type { VersionTable, ViewState, ViewVersionInfo } from '../types.ts';
import { createTableSql, publicSelectSql, quoteIdent, selectCustomSql, tableIdent, upsertSql } from './sql.ts';
import type { SqliteWriter } from './writer.ts';

interface CatalogRow {
  name: string;
  version: number;
  state: ViewState;
  fingerprint: string;
  definition_json: string;
  created_at: number;
  live_at: number | null;
}

/** The prepared statements of one version, built once and reused by every flush. */
export interface VersionHandle {
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

export class VersionCatalog {
  private readonly handles = new Map<string, VersionHandle>();
  private readonly sql: ReturnType<typeof catalogStatements>;
  private readonly db: Database.Database;

  constructor(
    private readonly writer: SqliteWriter,
    private readonly clock: { now(): number },
  ) {
    this.db = writer.db;
    this.sql = catalogStatements(this.db);
  }

  async ensureVersion(def: VersionTable): Promise<ViewVersionInfo> {
    this.writer.checkOpen();
    validateDefinition(def);
    const json = definitionJson(def);
    await this.writer.writeWhenFree(`create view "${def.name}" v${def.version}`, () => this.ensureTx(def, json));
    // Register (or re-register) the statements with this process's definition: it carries the
    // custom merge functions, which the catalog cannot store.
    this.handles.set(handleKey(def.name, def.version), this.prepareVersion(def));
    return this.info(this.catalogRow(def.name, def.version));
  }

  /**
   * The definition from this process's `ensureVersion` if there was one (it carries the custom merge
   * functions), else as the catalog stored it: custom merges then refuse to run until
   * `ensureVersion` registers them again.
   */
  async definition(name: string, version: number): Promise<VersionTable | null> {
    this.writer.checkOpen();
    checkViewName(name);
    checkVersion(version);
    const row = this.sql.get.get(name, version) as CatalogRow | undefined;
    if (row === undefined) return null;
    return this.handles.get(handleKey(name, version))?.def ?? parseDefinitionJson(row.definition_json);
  }

  async versions(): Promise<ViewVersionInfo[]> {
    this.writer.checkOpen();
    return (this.sql.all.all() as CatalogRow[]).map((row) => this.info(row));
  }

  async makeLive(name: string, version: number): Promise<void> {
    this.writer.checkOpen();
    await this.writer.writeWhenFree(`make view "${name}" v${version} live`, () => {
      const row = this.catalogRow(name, version);
      if (row.state === 'live') return;
      this.sql.retire.run(name);
      this.sql.setLive.run(this.clock.now(), name, version);
      this.pointPublicView(parseDefinitionJson(row.definition_json));
      crashPoint('swap-before-commit');
    });
  }

  /** Drops a version that is not live; `alsoInTx` runs in the same transaction (the control store's records). */
  async dropVersion(name: string, version: number, alsoInTx: (name: string, version: number) => void): Promise<void> {
    this.writer.checkOpen();
    await this.writer.writeWhenFree(`drop view "${name}" v${version}`, () => {
      const row = this.catalogRow(name, version);
      if (row.state === 'live') {
        throw new KappaError(
          'KAPPA_VIEW_CONFLICT',
          `View "${name}" v${version} is live, so it cannot be dropped. ` +
            'Make another version live first (or roll back), then drop this one.',
          { view: name, version },
        );
      }
      this.db.exec(`DROP TABLE IF EXISTS ${tableIdent({ name: row.name, version })}`);
      this.sql.dropCheckpoints.run(name, version);
      alsoInTx(name, version);
      this.sql.delete.run(name, version);
    });
    this.handles.delete(handleKey(name, version));
  }

  /**
   * Drops every version of a view, the live one too, and its public SQL view, in one transaction;
   * `alsoInTx` runs for each version and for each of `moreVersions` (builds with no catalog row
   * yet). Returns the versions dropped; KAPPA_UNKNOWN_VIEW when there is nothing of that name.
   */
  async dropView(
    name: string,
    moreVersions: readonly number[],
    alsoInTx: (name: string, version: number) => void,
  ): Promise<number[]> {
    this.writer.checkOpen();
    checkViewName(name);
    const versions = await this.writer.writeWhenFree(`drop view "${name}"`, () => {
      const rows = this.sql.byName.all(name) as CatalogRow[];
      const all = [...new Set([...rows.map((r) => r.version), ...moreVersions])].sort((a, b) => a - b);
      if (all.length === 0)
        throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${name}" to drop.`, { view: name });
      // The public view first: it reads the live version's table.
      this.db.exec(`DROP VIEW IF EXISTS ${quoteIdent(rows[0]?.name ?? name)}`);
      for (const version of all) {
        this.db.exec(`DROP TABLE IF EXISTS ${tableIdent({ name: rows[0]?.name ?? name, version })}`);
        this.sql.dropCheckpoints.run(name, version);
        alsoInTx(name, version);
        this.sql.delete.run(name, version);
      }
      return all;
    });
    for (const version of versions) this.handles.delete(handleKey(name, version));
    return versions;
  }

  /** The version's prepared statements; built from the catalog if this process has not seen it. */
  handle(name: string, version: number): VersionHandle {
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

  /** Throws KAPPA_UNKNOWN_VIEW unless the version is in the catalog. */
  checkExists(name: string, version: number): void {
    this.catalogRow(name, version);
  }

  forgetHandles(): void {
    this.handles.clear();
  }

  private ensureTx(def: VersionTable, json: string): void {
    const existing = this.sql.get.get(def.name, def.version) as CatalogRow | undefined;
    if (existing !== undefined) {
      if (existing.definition_json === json) return;
      throw new KappaError(
        'KAPPA_VIEW_CONFLICT',
        `View "${def.name}" v${def.version} already exists with a different definition ` +
          `(fingerprint ${existing.fingerprint}, now ${def.fingerprint}). A changed view needs a new version number.`,
        { view: def.name, version: def.version, stored: JSON.parse(existing.definition_json), given: JSON.parse(json) },
      );
    }
    this.db.exec(createTableSql(def));
    checkOutputSql(this.db, def);
    const live = this.sql.live.get(def.name) as CatalogRow | undefined;
    const now = this.clock.now();
    const state: ViewState = live === undefined ? 'live' : 'building';
    this.sql.insert.run(def.name, def.version, state, def.fingerprint, json, now, live === undefined ? now : null);
    if (live === undefined) this.pointPublicView(def);
  }

  /** Points the public SQL view at `def`'s table. Runs inside the caller's transaction. */
  private pointPublicView(def: VersionTable): void {
    this.db.exec(`DROP VIEW IF EXISTS ${quoteIdent(def.name)}`);
    this.db.exec(`CREATE VIEW ${quoteIdent(def.name)} AS ${publicSelectSql(def)}`);
  }

  private catalogRow(name: string, version: number): CatalogRow {
    checkViewName(name);
    checkVersion(version);
    const row = this.sql.get.get(name, version) as CatalogRow | undefined;
    if (row === undefined)
      throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${name}" v${version}.`, { view: name, version });
    return row;
  }

  private info(row: CatalogRow): ViewVersionInfo {
    const table = tableIdent({ name: row.name, version: row.version });
    const count = this.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number };
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

  private prepareVersion(def: VersionTable): VersionHandle {
    const customIndexes: number[] = [];
    def.stateColumns.forEach((c, i) => c.merge.kind === 'custom' && customIndexes.push(i));
    const customNames = customIndexes.map((i) => def.stateColumns[i].name);
    const width = def.keyColumns.length + def.stateColumns.length;
    return {
      def,
      upsert: this.db.prepare(upsertSql(def)),
      selectCustom: customIndexes.length === 0 ? null : this.db.prepare(selectCustomSql(def, customNames)).raw(),
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
    byName: db.prepare('SELECT * FROM kappa_views WHERE name = ? ORDER BY version'),
    insert: db.prepare(
      'INSERT INTO kappa_views (name, version, state, fingerprint, definition_json, created_at, live_at) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    retire: db.prepare("UPDATE kappa_views SET state = 'retired' WHERE name = ? AND state = 'live'"),
    setLive: db.prepare("UPDATE kappa_views SET state = 'live', live_at = ? WHERE name = ? AND version = ?"),
    delete: db.prepare('DELETE FROM kappa_views WHERE name = ? AND version = ?'),
    dropCheckpoints: db.prepare('DELETE FROM kappa_checkpoints WHERE view = ? AND version = ?'),
  };
}

/** Prepares the public SELECT so a bad output expression is refused when the version is created. */
function checkOutputSql(db: Database.Database, def: VersionTable): void {
  try {
    db.prepare(publicSelectSql(def));
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

function handleKey(name: string, version: number): string {
  return `${name.toLowerCase()}\u0000${version}`;
}
