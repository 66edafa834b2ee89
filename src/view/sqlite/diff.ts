/**
 * Two versions of a view compared, on SQLite: the shared comparison (../diff.ts) over this
 * store's SELECT of a version's public rows (./sql.ts, which decodes the stored NULL keys).
 */
import { type DiffSource, type VersionDiff, diffVersions as diffWith } from '../diff.ts';
import { publicSelectSql } from './sql.ts';

export type { VersionDiff } from '../diff.ts';

export function diffVersions(
  store: DiffSource,
  view: string,
  a: number,
  b: number,
  rowsMax?: number,
): Promise<VersionDiff> {
  return diffWith(store, publicSelectSql, view, a, b, rowsMax);
}
