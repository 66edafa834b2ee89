/**
 * Helpers shared by the view layer's tests (the unit tests beside this file and the store contract
 * suites in test/contract): a compact way to write a version's table, so each test shows only
 * what it is about. Nothing in src/view imports this file, and the build leaves it out.
 */
import type { ColumnType, MergeRule, OutputColumn, StateColumn, VersionTable } from './types.ts';

export interface TableSpec {
  /** Default 1. */
  version?: number;
  /** Default 'fp'. */
  fingerprint?: string;
  /** 'name TYPE', in key order. */
  keys?: string[];
  /** 'name TYPE rule', the rule one of add, min, max, or 'earliest by' / 'latest by'; or a column (custom merges). */
  state?: (string | StateColumn)[];
  /** 'name' for a column shown as it is, or 'name = SQL expression'. */
  outputs?: string[];
}

/** `versionTable('sales', { keys: ['region TEXT'], state: ['total REAL add'], outputs: ['total'] })`. */
export function versionTable(name: string, spec: TableSpec): VersionTable {
  return {
    name,
    version: spec.version ?? 1,
    fingerprint: spec.fingerprint ?? 'fp',
    keyColumns: (spec.keys ?? []).map((k) => {
      const [column, type] = k.split(' ');
      return { name: column, type: type as ColumnType };
    }),
    stateColumns: (spec.state ?? []).map((s) => (typeof s === 'string' ? stateColumn(s) : s)),
    outputColumns: (spec.outputs ?? []).map(outputColumn),
  };
}

function stateColumn(spec: string): StateColumn {
  const [name, type, kind, by] = spec.split(' ');
  const merge = (kind === 'earliest' || kind === 'latest' ? { kind, by } : { kind }) as MergeRule;
  return { name, type: type as ColumnType, merge };
}

function outputColumn(spec: string): OutputColumn {
  const eq = spec.indexOf(' = ');
  return eq === -1 ? { name: spec, sql: spec } : { name: spec.slice(0, eq), sql: spec.slice(eq + 3) };
}
