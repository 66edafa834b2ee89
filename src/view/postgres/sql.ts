/**
 * The PostgreSQL text of a view version: its table, its one-statement upsert of a whole batch,
 * and the SELECT behind its public view. Built once per (view, version); names reach this file
 * already validated as plain identifiers (../definition.ts) and are quoted anyway.
 *
 * Table layout of `<name>__v<version>` (the table and view names lower-cased, so an unquoted name
 * in psql or Grafana finds them, as SQLite's case-insensitive names do; column names keep their
 * case and are always quoted):
 *
 *   "<key>"   <type>   -- one per key column, in order; together a UNIQUE NULLS NOT DISTINCT key
 *   "<state>" <type>   -- one per state column, nullable
 *
 * Types: INTEGER is `bigint`, REAL `double precision`, TEXT `text`, and ANY `jsonb`: SQLite's
 * ANY keeps whatever scalar it gets, a string or a number, and jsonb is the PostgreSQL type that
 * keeps both and gives each back as it was (the first()/last() value of a field). A query sees
 * a jsonb value; compare it as jsonb (`col = '"eu"'`) or cast it (`col #>> '{}'`).
 *
 * NULL keys: the key is a UNIQUE NULLS NOT DISTINCT constraint (PostgreSQL 15 and later) on
 * nullable columns, so NULL is stored as NULL, two NULL keys are the same row, and ON CONFLICT
 * finds it. (SQLite needs NOT NULL keys and stores NULL as the empty BLOB; here no encoding is
 * needed and the public view shows the table's columns as they are.) A view without key columns
 * gets one synthetic key column `kappa_unit`, always 0.
 *
 * The batch upsert: `INSERT INTO t AS t (cols) SELECT * FROM unnest($1::type[], …) ORDER BY keys
 * ON CONFLICT (keys) DO UPDATE SET …`, one parameter per column, each an array of the batch's
 * values (sent as array literals built by ./values.ts). One
 * statement may not touch a row twice, so a batch holds each key at most once (./flush.ts splits
 * repeated keys into rounds). Merge expressions, evaluated (as in SQLite) against the row as it
 * was before the statement, whatever the order of the SET list:
 *   add        coalesce(t.c + excluded.c, t.c, excluded.c)   NULL on one side counts as nothing
 *   min / max  least(t.c, excluded.c) / greatest(…)          PostgreSQL's least/greatest skip NULLs
 *   earliest / latest, with or without a tie-break: exactly the CASE of view/sqlite/sql.ts
 *   custom     excluded.c                                    (merged in JS before the upsert)
 */
import { versionTableName } from '../definition.ts';
import type { ColumnType, MergeRule, VersionTable } from '../types.ts';

/** The column that keys a view without key columns. */
export const UNIT_KEY_COLUMN = 'kappa_unit';

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal (for names in DDL, which cannot take parameters). */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The version's table, lower-cased (see the file comment). */
export function tableIdent(def: Pick<VersionTable, 'name' | 'version'>): string {
  return quoteIdent(versionTableName(def.name, def.version).toLowerCase());
}

/** The public view of a view name, lower-cased. */
export function viewIdent(name: string): string {
  return quoteIdent(name.toLowerCase());
}

export function pgType(type: ColumnType): string {
  switch (type) {
    case 'INTEGER':
      return 'bigint';
    case 'REAL':
      return 'double precision';
    case 'TEXT':
      return 'text';
    case 'ANY':
      return 'jsonb';
  }
}

function keyNames(def: VersionTable): string[] {
  return def.keyColumns.length === 0 ? [UNIT_KEY_COLUMN] : def.keyColumns.map((c) => c.name);
}

/**
 * Pages are filled to 70% on insert: every flush that touches a key updates its row, and an update
 * that finds room on the row's own page is a HOT update (no new index entry, the old version pruned
 * in place). Measured on a 10,000-key upsert repeated 10 times: 120-150 ms per flush at the default
 * 100%, as the table and its index bloat; 50-60 ms at 70% (37-45 ms of it in the server).
 */
const FILLFACTOR = 70;

export function createTableSql(def: VersionTable): string {
  const keys =
    def.keyColumns.length === 0
      ? [`${quoteIdent(UNIT_KEY_COLUMN)} smallint NOT NULL DEFAULT 0 CHECK (${quoteIdent(UNIT_KEY_COLUMN)} = 0)`]
      : def.keyColumns.map((c) => `${quoteIdent(c.name)} ${pgType(c.type)}`);
  const state = def.stateColumns.map((c) => `${quoteIdent(c.name)} ${pgType(c.type)}`);
  const unique = `UNIQUE NULLS NOT DISTINCT (${keyNames(def).map(quoteIdent).join(', ')})`;
  return `CREATE TABLE ${tableIdent(def)} (${[...keys, ...state, unique].join(', ')}) WITH (fillfactor = ${FILLFACTOR})`;
}

/**
 * The batch upsert (see the file comment). Parameters: one array per key column (none for a
 * keyless view), then one per state column.
 */
export function upsertSql(def: VersionTable): string {
  const unit = def.keyColumns.length === 0;
  const stored = [...(unit ? [] : def.keyColumns), ...def.stateColumns];
  const columns = stored.map((c) => quoteIdent(c.name)).join(', ');
  const arrays = stored.map((c, i) => `$${i + 1}::${pgType(c.type)}[]`).join(', ');
  const target = keyNames(def).map(quoteIdent).join(', ');
  const action =
    def.stateColumns.length === 0
      ? 'NOTHING'
      : `UPDATE SET ${def.stateColumns.map((c) => `${quoteIdent(c.name)} = ${mergeExpr(c.name, c.merge, tieBreak(def, c.merge))}`).join(', ')}`;
  if (stored.length === 0) {
    // A keyless view without state columns: one row, nothing to merge.
    return `INSERT INTO ${tableIdent(def)} AS t DEFAULT VALUES ON CONFLICT (${target}) DO NOTHING`;
  }
  // Rows are upserted in key order (the server sorts them, which is cheaper than sorting in JS),
  // so two processes flushing overlapping keys lock them in the same order and never deadlock.
  const names = stored.map((_, i) => `c${i}`);
  const order = unit ? '' : ` ORDER BY ${def.keyColumns.map((_, i) => `c${i}`).join(', ')}`;
  return (
    `INSERT INTO ${tableIdent(def)} AS t (${columns}) SELECT * FROM unnest(${arrays}) AS u(${names.join(', ')})${order} ` +
    `ON CONFLICT (${target}) DO ${action}`
  );
}

/** The tie-break columns (partition, offset) of an earliest/latest rule, if the table has them (as in SQLite). */
export function tieBreak(def: VersionTable, rule: MergeRule): [string, string] | null {
  if ((rule.kind !== 'earliest' && rule.kind !== 'latest') || !rule.by.endsWith('__time')) return null;
  const base = rule.by.slice(0, -'__time'.length);
  const part = `${base}__part`;
  const offset = `${base}__offset`;
  const has = (name: string): boolean => def.stateColumns.some((c) => c.name === name);
  return has(part) && has(offset) ? [part, offset] : null;
}

/** When the delta's event wins an earliest/latest merge: view/sqlite/sql.ts's rule, in PostgreSQL. */
function winsExpr(kind: 'earliest' | 'latest', by: string, tie: [string, string] | null): string {
  const op = kind === 'earliest' ? '<' : '>';
  const [ex, old] = [`excluded.${by}`, `t.${by}`];
  if (tie === null) return kind === 'earliest' ? `${ex} < ${old}` : `${ex} >= ${old}`;
  const [p, o] = tie.map(quoteIdent);
  const tied =
    kind === 'earliest'
      ? `t.${p} IS NOT NULL AND (excluded.${p}, excluded.${o}) < (t.${p}, t.${o})`
      : `t.${p} IS NULL OR (excluded.${p}, excluded.${o}) >= (t.${p}, t.${o})`;
  return `${ex} ${op} ${old} OR (${ex} = ${old} AND (${tied}))`;
}

export function mergeExpr(column: string, rule: MergeRule, tie: [string, string] | null = null): string {
  const col = `t.${quoteIdent(column)}`;
  const ex = `excluded.${quoteIdent(column)}`;
  switch (rule.kind) {
    case 'add':
      return `coalesce(${col} + ${ex}, ${col}, ${ex})`;
    case 'min':
      return `least(${col}, ${ex})`;
    case 'max':
      return `greatest(${col}, ${ex})`;
    case 'earliest':
    case 'latest': {
      const by = quoteIdent(rule.by);
      const wins = winsExpr(rule.kind, by, tie);
      return `CASE WHEN excluded.${by} IS NOT NULL AND (t.${by} IS NULL OR ${wins}) THEN ${ex} ELSE ${col} END`;
    }
    case 'custom':
      return ex;
  }
}

/**
 * An output expression as PostgreSQL reads it. The engine writes output columns in SQL both
 * databases share, with one difference in meaning: `CAST(x AS REAL)` is an 8-byte float in SQLite
 * but a 4-byte one in PostgreSQL, which would round a sum to 7 digits. So REAL as a cast target
 * becomes `double precision` (a column's own type is mapped by pgType).
 */
export function outputSql(sql: string): string {
  return sql.replace(/\bAS\s+REAL\b/gi, 'AS double precision');
}

/** The SELECT behind the public view: the key columns as they are, then the output expressions. */
export function publicSelectSql(def: VersionTable, where = ''): string {
  const columns = [
    ...def.keyColumns.map((c) => quoteIdent(c.name)),
    ...def.outputColumns.map((c) => `(${outputSql(c.sql)}) AS ${quoteIdent(c.name)}`),
  ];
  return `SELECT ${columns.join(', ')} FROM ${tableIdent(def)}${where}`;
}

/**
 * The public view's row with one key (parameters: the key's non-NULL values, in order). A NULL
 * key value is matched with IS NULL, which the unique index serves like `=`.
 */
export function selectRowByKeySql(def: VersionTable, nulls: readonly boolean[]): string {
  if (def.keyColumns.length === 0) return publicSelectSql(def);
  let n = 0;
  const where = def.keyColumns
    .map((c, i) => (nulls[i] ? `${quoteIdent(c.name)} IS NULL` : `${quoteIdent(c.name)} = $${++n}`))
    .join(' AND ');
  return publicSelectSql(def, ` WHERE ${where}`);
}

/** The stored custom-merge columns of the rows with these keys (one array parameter per key column). */
export function selectCustomSql(def: VersionTable, customColumns: string[]): string {
  const keys = def.keyColumns;
  if (keys.length === 0)
    return `SELECT 1 AS kappa_i, ${customColumns.map(quoteIdent).join(', ')} FROM ${tableIdent(def)}`;
  const arrays = keys.map((c, i) => `$${i + 1}::${pgType(c.type)}[]`).join(', ');
  const names = keys.map((_, i) => `k${i}`);
  // `=` or both NULL, written so the unique index can serve each side (IS NOT DISTINCT FROM cannot).
  const on = keys
    .map((c, i) => `(t.${quoteIdent(c.name)} = u.k${i} OR (t.${quoteIdent(c.name)} IS NULL AND u.k${i} IS NULL))`)
    .join(' AND ');
  return (
    `SELECT u.kappa_i, ${customColumns.map((c) => `t.${quoteIdent(c)}`).join(', ')} ` +
    `FROM unnest(${arrays}) WITH ORDINALITY AS u(${names.join(', ')}, kappa_i) ` +
    `JOIN ${tableIdent(def)} AS t ON ${on} FOR UPDATE OF t`
  );
}
