/**
 * Compares two versions of a view (`kappa views diff <view> <a> <b>`, `GET /v1/views/:view/diff`):
 * the rows of each, the total of each numeric measure, and the rows that differ, matched by the
 * view's key: only in a, only in b, or in both with other values. What a user asks after a replay
 * or before a rollback: "what did the new logic change?".
 *
 * Shared by every ViewStore adapter: the adapter gives its SELECT of a version's public rows (its
 * own dialect and table names), and everything else happens here, in JS, so SQLite and
 * PostgreSQL answer the same. Both versions are read whole through the store's read-only `query`
 * (bounded by the store's queryRowsMax, so a view too large to compare fails with a clear error
 * instead of eating memory); the lists of differing rows are capped at `rowsMax`, with the full
 * counts beside them, and ordered by key the same way on every store (numbers, then text by code
 * unit, then NULL), whatever order the database returned the rows in.
 */
import { KappaError } from '../errors.ts';
import type { QueryResult, VersionTable, ViewVersionInfo } from './types.ts';

/** Differing rows listed per kind unless the caller asks for another cap. */
export const DIFF_ROWS_MAX_DEFAULT = 20;
/** The largest cap a caller may ask for. */
export const DIFF_ROWS_MAX_LIMIT = 1000;

export interface VersionSide {
  version: number;
  state: ViewVersionInfo['state'];
  rows: number;
  /** The sum of each numeric measure (a non-key column whose values are numbers) over the rows. */
  totals: Record<string, number>;
}

export interface RowsDiffering<T> {
  /** How many rows differ this way, in all. */
  count: number;
  /** The first `rowsMax` of them, ordered by key. */
  rows: T[];
  /** count - rows.length: how many more are not listed. */
  more: number;
}

export interface VersionDiff {
  view: string;
  keyColumns: string[];
  /** The numeric measures compared in `totals`. */
  measures: string[];
  a: VersionSide;
  b: VersionSide;
  onlyInA: RowsDiffering<Record<string, unknown>>;
  onlyInB: RowsDiffering<Record<string, unknown>>;
  changed: RowsDiffering<{ key: Record<string, unknown>; a: Record<string, unknown>; b: Record<string, unknown> }>;
  /** True when both versions hold the same rows with the same values. */
  same: boolean;
}

/** What the diff needs of the store: the versions, a version's definition, and a bounded read. */
export interface DiffSource {
  versions(): Promise<ViewVersionInfo[]>;
  definition(name: string, version: number): Promise<VersionTable | null>;
  query(sql: string, params?: unknown[]): Promise<QueryResult>;
}

/** The adapter's SELECT of every row of a version as its public view shows them (key and output columns). */
export type SelectOf = (def: VersionTable) => string;

type Row = Record<string, unknown>;

export async function diffVersions(
  store: DiffSource,
  selectOf: SelectOf,
  view: string,
  a: number,
  b: number,
  rowsMax = DIFF_ROWS_MAX_DEFAULT,
): Promise<VersionDiff> {
  if (!Number.isSafeInteger(rowsMax) || rowsMax < 0 || rowsMax > DIFF_ROWS_MAX_LIMIT) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The number of differing rows to list must be a whole number from 0 to ${DIFF_ROWS_MAX_LIMIT}; got ${String(rowsMax)}.`,
      { limit: rowsMax },
    );
  }
  const mine = (await store.versions()).filter((v) => v.name === view);
  const [defA, infoA] = await side(store, view, a, mine);
  const [defB, infoB] = await side(store, view, b, mine);
  const keyColumns = defB.keyColumns.map((k) => k.name);
  const sameKeys = defA.keyColumns.map((k) => k.name).join('\0') === keyColumns.join('\0');
  if (!sameKeys) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `Versions ${a} and ${b} of view "${view}" are keyed differently (${defA.keyColumns.map((k) => k.name).join(', ') || 'no key'} against ${keyColumns.join(', ') || 'no key'}), so their rows cannot be matched; compare their row counts with \`kappa views\` instead.`,
      { view, a, b },
    );
  }
  const rowsA = (await store.query(selectOf(defA))).rows;
  const rowsB = (await store.query(selectOf(defB))).rows;
  const measures = numericMeasures([...rowsA, ...rowsB], [defA, defB], keyColumns);
  return {
    view,
    keyColumns,
    measures,
    a: { version: a, state: infoA.state, rows: rowsA.length, totals: totals(rowsA, measures) },
    b: { version: b, state: infoB.state, rows: rowsB.length, totals: totals(rowsB, measures) },
    ...compareRows(rowsA, rowsB, keyColumns, rowsMax),
  };
}

async function side(
  store: DiffSource,
  view: string,
  version: number,
  mine: ViewVersionInfo[],
): Promise<[VersionTable, ViewVersionInfo]> {
  const info = mine.find((v) => v.version === version);
  const def = info === undefined ? null : await store.definition(view, version);
  if (info === undefined || def === null) {
    const kept = mine.map((v) => `${v.version} (${v.state})`).join(', ');
    throw new KappaError(
      'KAPPA_UNKNOWN_VIEW',
      mine.length === 0
        ? `There is no view "${view}": \`kappa views\` lists the views.`
        : `View "${view}" has no version ${version}: it was never built or has been dropped. Its versions: ${kept}.`,
      { view, version },
    );
  }
  return [def, info];
}

/** Output columns (not keys) of either version whose non-null values are all numbers. */
function numericMeasures(rows: Row[], defs: VersionTable[], keyColumns: string[]): string[] {
  const names = [...new Set(defs.flatMap((d) => d.outputColumns.map((c) => c.name)))].filter(
    (n) => !keyColumns.includes(n),
  );
  return names.filter((n) => rows.every((r) => r[n] === undefined || r[n] === null || typeof r[n] === 'number'));
}

function totals(rows: Row[], measures: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of measures) {
    let sum = 0;
    for (const r of rows) if (typeof r[m] === 'number') sum += r[m];
    // Sums of REAL columns pick up float noise (0.1 + 0.2); a diff of totals should not show it.
    out[m] = Number(sum.toPrecision(12));
  }
  return out;
}

function compareRows(
  rowsA: Row[],
  rowsB: Row[],
  keyColumns: string[],
  rowsMax: number,
): Pick<VersionDiff, 'onlyInA' | 'onlyInB' | 'changed' | 'same'> {
  const keyOf = (r: Row): string => JSON.stringify(keyColumns.map((k) => r[k] ?? null));
  const byKeyB = new Map(rowsB.map((r) => [keyOf(r), r]));
  const seen = new Set<string>();
  const onlyInA: Row[] = [];
  const changed: VersionDiff['changed']['rows'] = [];
  for (const ra of rowsA) {
    const k = keyOf(ra);
    seen.add(k);
    const rb = byKeyB.get(k);
    if (rb === undefined) onlyInA.push(ra);
    else if (!sameValues(ra, rb)) {
      const key = Object.fromEntries(keyColumns.map((c) => [c, ra[c]]));
      changed.push({ key, a: ra, b: rb });
    }
  }
  const onlyInB = rowsB.filter((r) => !seen.has(keyOf(r)));
  const byKey = keyOrder(keyColumns);
  const cap = <T>(rows: T[], order: (x: T, y: T) => number): RowsDiffering<T> => ({
    count: rows.length,
    rows: rows.sort(order).slice(0, rowsMax),
    more: Math.max(0, rows.length - rowsMax),
  });
  return {
    onlyInA: cap(onlyInA, byKey),
    onlyInB: cap(onlyInB, byKey),
    changed: cap(changed, (x, y) => byKey(x.key, y.key)),
    same: onlyInA.length === 0 && onlyInB.length === 0 && changed.length === 0,
  };
}

/** Rows ordered by their key columns in turn: numbers first, then text (by code unit), then anything else, NULL last. */
function keyOrder(keyColumns: string[]): (x: Row, y: Row) => number {
  const rank = (v: unknown): number => (typeof v === 'number' ? 0 : typeof v === 'string' ? 1 : v == null ? 3 : 2);
  return (x, y) => {
    for (const k of keyColumns) {
      const [vx, vy] = [x[k], y[k]];
      const byRank = rank(vx) - rank(vy);
      if (byRank !== 0) return byRank;
      if (rank(vx) === 3) continue;
      const [sx, sy] = rank(vx) === 0 ? [vx as number, vy as number] : [String(vx), String(vy)];
      if (sx !== sy) return sx < sy ? -1 : 1;
    }
    return 0;
  };
}

function sameValues(a: Row, b: Row): boolean {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const n of names) if (!Object.is(a[n] ?? null, b[n] ?? null)) return false;
  return true;
}
