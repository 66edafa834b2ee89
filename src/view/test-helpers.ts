/**
 * Helpers shared by the view layer's tests (the unit tests beside this file and the store contract
 * suites in test/contract): a compact way to write a version's table, so each test shows only
 * what it is about; the tables, deltas and checkpoints the store suites share; and the hooks that
 * give each test of a suite a fresh store. Nothing in src/view imports this file, and the build
 * leaves it out.
 */
import { afterEach, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { type ErrorCode, isKappaError } from '../errors.ts';
import type { Checkpoint, ColumnType, MergeRule, OutputColumn, RowDelta, StateColumn, VersionTable } from './types.ts';
import type { ViewStore } from './view-store.ts';

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

// ---- the store suites' tables, deltas and reads ---------------------------------------------

export function salesDef(version = 1, over: Partial<VersionTable> = {}): VersionTable {
  const def = versionTable('sales', {
    version,
    fingerprint: `sales-fp-${version}`,
    keys: ['region TEXT', 'year INTEGER'],
    state: ['total REAL add', 'orders INTEGER add'],
    outputs: ['total', 'orders', 'avg_amount = total / NULLIF(orders, 0)'],
  });
  return { ...def, ...over };
}

/** One column per merge rule. The `by` columns come first so SET order cannot matter. */
export function rulesDef(): VersionTable {
  const state = ['first_time INTEGER min', 'last_time INTEGER max', 'first_v TEXT earliest first_time'];
  state.push('last_v TEXT latest last_time', 'lo REAL min', 'hi REAL max');
  const outputs = ['first_v', 'first_time', 'last_v', 'last_time', 'lo', 'hi'].map((c) => `out_${c} = ${c}`);
  return versionTable('rules', { fingerprint: 'rules-fp', keys: ['k TEXT'], state, outputs });
}

/** A custom mergeable aggregate: the sorted set of tags seen, stored as JSON. */
export function tagsDef(onMerge: (stored: unknown, delta: unknown) => void = () => {}): VersionTable {
  const merge = (stored: unknown, delta: unknown): unknown => {
    onMerge(stored, delta);
    return [...new Set([...(stored as string[]), ...(delta as string[])])].sort();
  };
  return versionTable('tags', {
    fingerprint: 'tags-fp',
    keys: ['user_id INTEGER'],
    state: ['events INTEGER add', { name: 'tags', type: 'TEXT', merge: { kind: 'custom', merge } }],
    outputs: ['events', 'tags', 'tag_count = json_array_length(tags)'],
  });
}

/** A one-column count: `totals` without key columns, or `per_minute` keyed by region and window. */
export const countDef = (name: string, spec: TableSpec): VersionTable =>
  versionTable(name, { state: ['n INTEGER add'], ...spec });
export const totalsDef = (): VersionTable => countDef('totals', { fingerprint: 'totals-fp', outputs: ['events = n'] });

export const sale = (region: string | null, year: number | null, total: number, orders = 1): RowDelta => ({
  key: [region, year],
  state: [total, orders],
});
export const cp = (offset: number, partition = 0, watermark = 1_000 + offset, outputSequence = 0): Checkpoint => ({
  topic: 'sales',
  partition,
  offset,
  watermark,
  outputSequence,
});

export async function rowsOf(store: ViewStore, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  return (await store.query(sql, params)).rows;
}

/** Rows of `view` as plain objects in key order, for comparing whole states. */
export async function snapshot(store: ViewStore, view = 'sales'): Promise<Record<string, unknown>[]> {
  return rowsOf(store, `SELECT * FROM ${view} ORDER BY 1, 2`);
}

// ---- running a store suite ------------------------------------------------------------------

/**
 * Registers hooks that open a fresh harness before each test of the enclosing suite (handing it to
 * `use`) and clean it up after, even when the test failed. Shared by the store contract suites.
 */
export function freshForEachTest<H extends { cleanup(): Promise<void> }>(
  open: () => Promise<H>,
  use: (h: H) => void,
): void {
  let current: H | null = null;
  beforeEach(async () => {
    current = await open();
    use(current);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = null;
  });
}

/** Rejects with a KappaError of `code` (and a message matching `message`, when given). */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isKappaError(err), `expected a KappaError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}
