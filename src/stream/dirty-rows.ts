/**
 * The rows a task touched since its last flush, found by their key values without building a
 * string per event: one Map level per key column (the group keys, then window_start), keyed by the
 * values themselves. A JSON.stringify'd or concatenated key cost more per event than decoding the
 * event's JSON on the process bench; two Map lookups on values that already exist cost almost
 * nothing.
 *
 * Map keys compare with SameValueZero, so 1 and '1' are different rows (they are different SQL
 * values), while 0 and -0 are the same row (as SQL has them). Booleans arrive as 0 / 1.
 * A task's key arity is fixed (its group-key names are fixed by its first group), so every row of
 * one `DirtyRows` sits at the same depth.
 */
import type { KeyValue } from './dsl.ts';

export interface DirtyRow {
  key: KeyValue[];
  state: unknown[];
}

type Level = Map<KeyValue | undefined, unknown>;

export class DirtyRows {
  size = 0;
  private root: Level = new Map();
  /** Key values per row, set by the first insert. */
  private depth = -1;

  /** The row whose first `n` key values are `values[0..n)`, if it is dirty. */
  get(values: readonly KeyValue[], n: number): DirtyRow | undefined {
    let level = this.root;
    for (let i = 0; i < n - 1; i++) {
      const next = level.get(values[i]) as Level | undefined;
      if (next === undefined) return undefined;
      level = next;
    }
    // With n = 0 (no group keys, no window) the one row sits under `undefined`.
    return level.get(n === 0 ? undefined : values[n - 1]) as DirtyRow | undefined;
  }

  /** Adds `row` under `values[0..n)`, which `get` just reported missing. */
  insert(values: readonly KeyValue[], n: number, row: DirtyRow): void {
    if (this.depth === -1) this.depth = n;
    else if (this.depth !== n) throw new Error(`invariant: a task's rows all have ${this.depth} key values, got ${n}`);
    let level = this.root;
    for (let i = 0; i < n - 1; i++) {
      let next = level.get(values[i]) as Level | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(values[i], next);
      }
      level = next;
    }
    level.set(n === 0 ? undefined : values[n - 1], row);
    this.size++;
  }

  /** Every dirty row, in first-touched order within each level. */
  values(): DirtyRow[] {
    const out: DirtyRow[] = [];
    collect(this.root, this.depth <= 1 ? 1 : this.depth, out);
    return out;
  }
}

function collect(level: Level, depth: number, out: DirtyRow[]): void {
  if (depth === 1) {
    for (const row of level.values()) out.push(row as DirtyRow);
    return;
  }
  for (const next of level.values()) collect(next as Level, depth - 1, out);
}
