/**
 * The SQLite adapter of the `TableStateStore` port (../table-states.ts), in the view store's
 * database file, through the store's writer (a save is one transaction, written in steps so a large
 * first save lets the event loop run):
 *
 *   kappa_table_versions(table_id, key, from_ms, value)     PRIMARY KEY (table_id, key, from_ms)
 *   kappa_table_partitions(table_id, partition, offset, max_event_ms, watermark_ms, pruned_below_ms)
 *       PRIMARY KEY (table_id, partition)
 */
import type Database from 'better-sqlite3';
import {
  type StoredTable,
  type StoredTableVersion,
  type TableStateChange,
  type TableStateStore,
  checkTableChange,
  tableIdPrefix,
} from '../table-states.ts';
import { type SqliteWriter, storageError } from './writer.ts';

/** Keys rewritten per step of a save. */
const KEYS_PER_STEP = 2000;

/** Thrown inside a save's transaction to roll it back: a partition would go backwards. */
class Behind extends Error {}

export class SqliteTableStates implements TableStateStore {
  private readonly sql: ReturnType<typeof statements>;

  constructor(private readonly writer: SqliteWriter) {
    this.sql = statements(writer.db);
  }

  async load(id: string): Promise<StoredTable | null> {
    this.writer.checkOpen();
    try {
      const parts = this.sql.partitions.all(id) as {
        partition: number;
        offset: number;
        max_event_ms: number;
        watermark_ms: number;
        pruned_below_ms: number;
      }[];
      if (parts.length === 0) return null;
      const versions = (this.sql.versions.all(id) as { key: string; from_ms: number; value: Buffer | null }[]).map(
        (r) => ({ key: r.key, fromMs: r.from_ms, value: r.value }),
      );
      return {
        partitions: parts.map((p) => ({
          partition: p.partition,
          offset: p.offset,
          maxEventMs: p.max_event_ms,
          watermarkMs: p.watermark_ms,
        })),
        prunedBelowMs: parts[0].pruned_below_ms,
        versions,
      };
    } catch (err) {
      throw storageError(err, `read the stored table "${id}"`);
    }
  }

  async save(id: string, change: TableStateChange): Promise<boolean> {
    this.writer.checkOpen();
    checkTableChange(id, change);
    const byKey = new Map<string, StoredTableVersion[]>();
    for (const k of change.keys) byKey.set(k, []);
    for (const v of change.versions) byKey.get(v.key)!.push(v);
    const keys = [...byKey.keys()];
    const steps = Math.max(1, Math.ceil(keys.length / KEYS_PER_STEP));
    try {
      await this.writer.writeInSteps(`save the table "${id}"`, steps, (step) => {
        if (step === 0)
          for (const p of change.partitions) {
            const stored = this.sql.offset.get(id, p.partition) as { offset: number } | undefined;
            if (stored !== undefined && stored.offset > p.offset) throw new Behind();
          }
        for (const key of keys.slice(step * KEYS_PER_STEP, (step + 1) * KEYS_PER_STEP)) {
          this.sql.deleteKey.run(id, key);
          for (const v of byKey.get(key)!) this.sql.insert.run(id, key, v.fromMs, v.value);
        }
        if (step === steps - 1)
          for (const p of change.partitions)
            this.sql.savePartition.run(id, p.partition, p.offset, p.maxEventMs, p.watermarkMs, change.prunedBelowMs);
      });
      return true;
    } catch (err) {
      if (err instanceof Behind) return false;
      throw err;
    }
  }

  async forget(topic: string): Promise<number> {
    this.writer.checkOpen();
    const prefix = tableIdPrefix(topic);
    return this.writer.writeWhenFree(`forget the stored tables of topic "${topic}"`, () => {
      const ids = this.sql.ids.all(prefix.length, prefix) as { table_id: string }[];
      for (const { table_id: id } of ids) {
        this.sql.forgetVersions.run(id);
        this.sql.forgetPartitions.run(id);
      }
      return ids.length;
    });
  }
}

function statements(db: Database.Database) {
  return {
    partitions: db.prepare(
      'SELECT "partition", "offset", max_event_ms, watermark_ms, pruned_below_ms FROM kappa_table_partitions ' +
        'WHERE table_id = ? ORDER BY "partition"',
    ),
    versions: db.prepare(
      'SELECT key, from_ms, value FROM kappa_table_versions WHERE table_id = ? ORDER BY key, from_ms',
    ),
    offset: db.prepare('SELECT "offset" FROM kappa_table_partitions WHERE table_id = ? AND "partition" = ?'),
    deleteKey: db.prepare('DELETE FROM kappa_table_versions WHERE table_id = ? AND key = ?'),
    insert: db.prepare(
      'INSERT OR REPLACE INTO kappa_table_versions (table_id, key, from_ms, value) VALUES (?, ?, ?, ?)',
    ),
    ids: db.prepare('SELECT DISTINCT table_id FROM kappa_table_partitions WHERE substr(table_id, 1, ?) = ?'),
    forgetVersions: db.prepare('DELETE FROM kappa_table_versions WHERE table_id = ?'),
    forgetPartitions: db.prepare('DELETE FROM kappa_table_partitions WHERE table_id = ?'),
    savePartition: db.prepare(
      'INSERT OR REPLACE INTO kappa_table_partitions ' +
        '(table_id, "partition", "offset", max_event_ms, watermark_ms, pruned_below_ms) VALUES (?, ?, ?, ?, ?, ?)',
    ),
  };
}
