/**
 * The `TableStateStore` port: the tables that stream–table joins read (`table(topic, …)`, in
 * stream/tables.ts), materialised beside the views so a restart reads each table's topic only from
 * where the last save got to, not from its beginning (and a table outlives its topic's retention).
 * Adapters: SQLite (`view/sqlite/table-states.ts`) and PostgreSQL (`view/postgres/table-states.ts`),
 * in the view store's database. Tests: test/contract/view-store.contract.ts ("table states").
 *
 * A table is saved by id (the engine derives it from the table's topic and definition, so a
 * changed definition starts afresh) as every version of every key (the value's record bytes, null
 * for a tombstone, from the event time it took effect at) and how far each partition was read.
 *
 * Promises every adapter keeps:
 * - `save` is all or nothing, in one transaction: the versions of each key it names are replaced by
 *   the given ones (a key with none given is deleted), and the partitions are stored;
 * - a save that would move a partition backwards (another process saved further) changes nothing
 *   and resolves false: several processes may keep the same table, and the furthest wins;
 * - `load` returns what the saves left (versions by key, then time), or null for a table never saved.
 */

/** How far a table's partition was read when it was saved. */
export interface StoredTablePartition {
  partition: number;
  /** The next offset to read. */
  offset: number;
  maxEventMs: number;
  watermarkMs: number;
}

/** One version of a key: the record's value bytes (null: deleted) from event time `fromMs` on. */
export interface StoredTableVersion {
  key: string;
  fromMs: number;
  value: Uint8Array | null;
}

export interface StoredTable {
  partitions: StoredTablePartition[];
  /** Versions superseded before this event time were dropped (the table's retention); -8.64e15: none. */
  prunedBelowMs: number;
  versions: StoredTableVersion[];
}

export interface TableStateChange {
  /** The keys whose versions change: each key's stored versions are replaced by those of `versions`. */
  keys: readonly string[];
  versions: readonly StoredTableVersion[];
  partitions: readonly StoredTablePartition[];
  prunedBelowMs: number;
}

export interface TableStateStore {
  /** The table as the saves left it, or null if it was never saved. */
  load(id: string): Promise<StoredTable | null>;
  /** Saves a change (see the promises above); false when another process had saved further. */
  save(id: string, change: TableStateChange): Promise<boolean>;
  /** Forgets every table of `topic` (its topic was deleted); resolves to how many there were. */
  forget(topic: string): Promise<number>;
}

/** The ids of a topic's tables start with this (the engine makes them `<topic>:<digest>`). */
export function tableIdPrefix(topic: string): string {
  return `${topic}:`;
}

/** Checks a change before anything is written. */
export function checkTableChange(id: string, change: TableStateChange): void {
  const keys = new Set(change.keys);
  for (const v of change.versions)
    if (!keys.has(v.key) || !Number.isFinite(v.fromMs))
      throw new TypeError(
        `table state "${id}": version of key "${v.key}" at ${v.fromMs} is not among the keys saved, or has no time`,
      );
  for (const p of change.partitions)
    if (!Number.isSafeInteger(p.partition) || !Number.isSafeInteger(p.offset) || p.offset < 0)
      throw new TypeError(`table state "${id}": partition ${p.partition} has a bad offset ${p.offset}`);
}
