/**
 * The SQLite text of a view version: its table, its upsert, and the SELECT behind its public view.
 * Every statement here is built once per (view, version) and prepared once; nothing is built per
 * row. Names reach this file already validated as plain identifiers (see ../definition.ts) and are
 * quoted anyway.
 *
 * Table layout of `<name>__v<version>` (WITHOUT ROWID: the primary key is the only b-tree, which
 * is also the fastest shape for upserts by key):
 *
 *   "<key>"   <type> NOT NULL   -- one per key column, in order; together the PRIMARY KEY
 *   "<state>" <type>            -- one per state column, nullable
 *
 * NULL keys: SQL treats NULLs as distinct in a PRIMARY KEY or UNIQUE constraint, so a NULL group
 * key would make a new row on every flush. Key columns are therefore NOT NULL and a NULL key is
 * stored as the empty BLOB `x''`. No real key can collide with it: keys are strings and numbers,
 * and SQLite never converts a BLOB by column affinity nor compares it equal to any TEXT (not even
 * '') or number. The public view decodes it back with `NULLIF(col, x'')`.
 * The cost: a filter on a key column of the public view goes through NULLIF, so it cannot use the
 * primary key index; a lookup that needs the index can query the version table with the raw value.
 *
 * A view without key columns (a global aggregate) gets one synthetic key column `kappa_unit`,
 * always 0, so it still has exactly one row and the same upsert.
 *
 * Merge expressions (ON CONFLICT DO UPDATE SET). SQLite evaluates every SET expression against the
 * row as it was before the update, so `earliest`/`latest` compare against the OLD `by` value even
 * though the `by` column is itself updated in the same SET, in whatever order they are listed.
 *   add        coalesce(c + excluded.c, c, excluded.c)        NULL on one side counts as nothing
 *   min / max  coalesce(min(c, excluded.c), c, excluded.c)    scalar min() is NULL if any arg is
 *   earliest   delta wins when excluded.by < by               (a tie keeps the stored value: first seen)
 *   latest     delta wins when excluded.by >= by              (a tie takes the delta: last seen)
 *              either side's `by` NULL: the non-NULL one wins; both NULL: the stored value stays
 *              With a tie-break (below), equal `by` values compare (part, offset) instead:
 *              earliest wins when smaller, latest when greater or equal; a stored row without a
 *              tie-break (NULL) loses to the delta for latest and keeps its value for earliest.
 *   custom     excluded.c                                     (merged in JS before the upsert)
 *
 * Tie-breaks: when the `by` column of an earliest/latest rule is named `<x>__time` and the table
 * also has state columns `<x>__part` and `<x>__offset` (first() and last(), stream/aggregates.ts),
 * equal times are ordered by (partition, offset), so the merged row is the same whatever order the
 * deltas of different partitions arrive in. The tie-break columns merge by the same rule as the
 * value, so the three always describe one event. Tables without them merge by `by` alone.
 */
import { versionTableName } from '../definition.ts';
import type { MergeRule, VersionTable } from '../types.ts';

/** The column that keys a view without key columns. */
export const UNIT_KEY_COLUMN = 'kappa_unit';
/** How a NULL key value is stored (see the file comment). */
export const NULL_KEY_SQL = "x''";
/** How a NULL key value is bound as a parameter: the empty BLOB. */
export const NULL_KEY = Buffer.alloc(0);

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function tableIdent(def: Pick<VersionTable, 'name' | 'version'>): string {
  return quoteIdent(versionTableName(def.name, def.version));
}

function keyNames(def: VersionTable): string[] {
  return def.keyColumns.length === 0 ? [UNIT_KEY_COLUMN] : def.keyColumns.map((c) => c.name);
}

/** SQLite declared type. `ANY` is declared with no type, which gives no affinity (a declared "ANY" would mean NUMERIC). */
function columnType(type: VersionTable['keyColumns'][number]['type']): string {
  return type === 'ANY' ? '' : type;
}

export function createTableSql(def: VersionTable): string {
  const keys =
    def.keyColumns.length === 0
      ? [`${quoteIdent(UNIT_KEY_COLUMN)} INTEGER NOT NULL CHECK (${quoteIdent(UNIT_KEY_COLUMN)} = 0)`]
      : def.keyColumns.map((c) => `${quoteIdent(c.name)} ${columnType(c.type)} NOT NULL`);
  const state = def.stateColumns.map((c) => `${quoteIdent(c.name)} ${columnType(c.type)}`);
  const pk = `PRIMARY KEY (${keyNames(def).map(quoteIdent).join(', ')})`;
  return `CREATE TABLE ${tableIdent(def)} (${[...keys, ...state, pk].join(', ')}) WITHOUT ROWID`;
}

/**
 * `INSERT … VALUES (…) ON CONFLICT (keys) DO UPDATE SET …` for one row. Parameters: the key values
 * (NULL encoded; none for a keyless view), then the state values.
 */
export function upsertSql(def: VersionTable): string {
  const unit = def.keyColumns.length === 0;
  const columns = [...keyNames(def), ...def.stateColumns.map((c) => c.name)].map(quoteIdent).join(', ');
  const row = `(${[...(unit ? ['0'] : def.keyColumns.map(() => '?')), ...def.stateColumns.map(() => '?')].join(', ')})`;
  const target = keyNames(def).map(quoteIdent).join(', ');
  const action =
    def.stateColumns.length === 0
      ? 'NOTHING'
      : `UPDATE SET ${def.stateColumns.map((c) => `${quoteIdent(c.name)} = ${mergeExpr(quoteIdent(c.name), c.merge, tieBreak(def, c.merge))}`).join(', ')}`;
  return `INSERT INTO ${tableIdent(def)} (${columns}) VALUES ${row} ON CONFLICT (${target}) DO ${action}`;
}

/** The tie-break columns (partition, offset) of an earliest/latest rule, if the table has them (see the file comment). */
export function tieBreak(def: VersionTable, rule: MergeRule): [string, string] | null {
  if ((rule.kind !== 'earliest' && rule.kind !== 'latest') || !rule.by.endsWith('__time')) return null;
  const base = rule.by.slice(0, -'__time'.length);
  const part = `${base}__part`;
  const offset = `${base}__offset`;
  const has = (name: string): boolean => def.stateColumns.some((c) => c.name === name);
  return has(part) && has(offset) ? [part, offset] : null;
}

/** The SQL condition under which the delta's event wins an earliest/latest merge (see the file comment). */
function winsExpr(kind: 'earliest' | 'latest', by: string, tie: [string, string] | null): string {
  const op = kind === 'earliest' ? '<' : '>';
  if (tie === null) return kind === 'earliest' ? `excluded.${by} < ${by}` : `excluded.${by} >= ${by}`;
  const [p, o] = tie.map(quoteIdent);
  const tied =
    kind === 'earliest'
      ? `${p} IS NOT NULL AND (excluded.${p}, excluded.${o}) < (${p}, ${o})`
      : `${p} IS NULL OR (excluded.${p}, excluded.${o}) >= (${p}, ${o})`;
  return `excluded.${by} ${op} ${by} OR (excluded.${by} = ${by} AND (${tied}))`;
}

export function mergeExpr(col: string, rule: MergeRule, tie: [string, string] | null = null): string {
  const ex = `excluded.${col}`;
  switch (rule.kind) {
    case 'add':
      return `coalesce(${col} + ${ex}, ${col}, ${ex})`;
    case 'min':
    case 'max':
      return `coalesce(${rule.kind}(${col}, ${ex}), ${col}, ${ex})`;
    case 'earliest':
    case 'latest': {
      const by = quoteIdent(rule.by);
      const wins = winsExpr(rule.kind, by, tie);
      return `CASE WHEN excluded.${by} IS NOT NULL AND (${by} IS NULL OR ${wins}) THEN ${ex} ELSE ${col} END`;
    }
    case 'custom':
      return ex;
  }
}

/** Reads the stored custom-merge columns of one row by key (parameters: the encoded key values). */
export function selectCustomSql(def: VersionTable, customColumns: string[]): string {
  const where =
    def.keyColumns.length === 0
      ? `${quoteIdent(UNIT_KEY_COLUMN)} = 0`
      : def.keyColumns.map((c) => `${quoteIdent(c.name)} = ?`).join(' AND ');
  return `SELECT ${customColumns.map(quoteIdent).join(', ')} FROM ${tableIdent(def)} WHERE ${where}`;
}

/**
 * The columns of the public view's two SELECTs: `inner` decodes the NULL keys and passes the state
 * columns; `outer` is the key columns, then the output expressions over them.
 */
function publicColumns(def: VersionTable): { inner: string[]; outer: string[] } {
  const inner = [
    ...def.keyColumns.map((c) => `NULLIF(${quoteIdent(c.name)}, ${NULL_KEY_SQL}) AS ${quoteIdent(c.name)}`),
    ...def.stateColumns.map((c) => quoteIdent(c.name)),
  ];
  const outer = [
    ...def.keyColumns.map((c) => quoteIdent(c.name)),
    ...def.outputColumns.map((c) => `(${c.sql}) AS ${quoteIdent(c.name)}`),
  ];
  return { inner, outer };
}

/**
 * The SELECT behind the public view: decoded key columns, then the output expressions. The inner
 * SELECT decodes NULL keys first, so output expressions see real NULLs; SQLite flattens it.
 */
export function publicSelectSql(def: VersionTable): string {
  const { inner, outer } = publicColumns(def);
  const from = inner.length === 0 ? tableIdent(def) : `(SELECT ${inner.join(', ')} FROM ${tableIdent(def)})`;
  return `SELECT ${outer.join(', ')} FROM ${from}`;
}

/**
 * The public view's SELECT for one row, found by its primary key (parameters: the encoded key
 * values; none for a keyless view). The key condition sits on the version table itself, so SQLite
 * looks the row up by its primary key instead of scanning the decoded keys of every row.
 */
export function selectRowByKeySql(def: VersionTable): string {
  const where = keyNames(def)
    .map((k) => (def.keyColumns.length === 0 ? `${quoteIdent(k)} = 0` : `${quoteIdent(k)} = ?`))
    .join(' AND ');
  const { inner, outer } = publicColumns(def);
  const innerColumns = inner.length === 0 ? '*' : inner.join(', ');
  return `SELECT ${outer.join(', ')} FROM (SELECT ${innerColumns} FROM ${tableIdent(def)} WHERE ${where})`;
}

/** True when the first word of `sql`, after whitespace and comments, is `keyword` (shared with the query process). */
export { startsWithKeyword } from './query-limits.cjs';
