/**
 * The PostgreSQL adapter of the `TableStateStore` port (../table-states.ts): the tables stream–table
 * joins read, in the store's database (layout in ./schema.ts):
 *
 *   kappa_table_versions(table_id, key, from_ms, value bytea)   PRIMARY KEY (table_id, key, from_ms)
 *   kappa_table_partitions(table_id, partition, offset, max_event_ms, watermark_ms, pruned_below_ms)
 *
 * A save takes a transaction-scoped advisory lock on the table's id, so the processes of a cluster
 * that keep the same table save it in turn, and one behind the stored offsets changes nothing.
 */
import type pg from 'pg';
import {
  type StoredTable,
  type StoredTableVersion,
  type TableStateChange,
  type TableStateStore,
  checkTableChange,
  tableIdPrefix,
} from '../table-states.ts';
import type { Connections } from './pool.ts';

/** Versions inserted per statement. */
const ROWS_PER_STATEMENT = 10_000;

export class PostgresTableStates implements TableStateStore {
  constructor(private readonly db: Connections) {}

  async load(id: string): Promise<StoredTable | null> {
    this.db.checkOpen();
    const action = `read the stored table "${id}"`;
    return this.db.withClient(this.db.writer, action, async (client) => {
      // One snapshot for both reads: the versions belong to the offsets.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const parts = await client.query(
          'SELECT "partition", "offset", max_event_ms, watermark_ms, pruned_below_ms FROM kappa_table_partitions ' +
            'WHERE table_id = $1 ORDER BY "partition"',
          [id],
        );
        if (parts.rows.length === 0) return null;
        const versions = await client.query(
          'SELECT key, from_ms, value FROM kappa_table_versions WHERE table_id = $1 ORDER BY key COLLATE "C", from_ms',
          [id],
        );
        return {
          partitions: parts.rows.map((p) => ({
            partition: p.partition as number,
            offset: Number(p.offset),
            maxEventMs: p.max_event_ms as number,
            watermarkMs: p.watermark_ms as number,
          })),
          prunedBelowMs: parts.rows[0].pruned_below_ms as number,
          versions: versions.rows.map((r) => ({
            key: r.key as string,
            fromMs: r.from_ms as number,
            value: r.value as Buffer | null,
          })),
        };
      } finally {
        await client.query('ROLLBACK').catch(() => {});
      }
    });
  }

  async save(id: string, change: TableStateChange): Promise<boolean> {
    this.db.checkOpen();
    checkTableChange(id, change);
    // The last version of a (key, time) named twice wins, as it does in memory.
    const last = new Map<string, StoredTableVersion>();
    for (const v of change.versions) last.set(JSON.stringify([v.key, v.fromMs]), v);
    const versions = [...last.values()];
    return this.db.tx(`save the table "${id}"`, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kappa_table:${id}`]);
      const stored = await client.query(
        'SELECT "partition", "offset" FROM kappa_table_partitions WHERE table_id = $1',
        [id],
      );
      const offsets = new Map(stored.rows.map((r) => [r.partition as number, Number(r.offset)]));
      if (change.partitions.some((p) => (offsets.get(p.partition) ?? -1) > p.offset)) return false;
      await client.query('DELETE FROM kappa_table_versions WHERE table_id = $1 AND key = ANY($2::text[])', [
        id,
        change.keys,
      ]);
      for (let i = 0; i < versions.length; i += ROWS_PER_STATEMENT)
        await insert(client, id, versions.slice(i, i + ROWS_PER_STATEMENT));
      const ps = change.partitions;
      await client.query(
        'INSERT INTO kappa_table_partitions (table_id, "partition", "offset", max_event_ms, watermark_ms, pruned_below_ms) ' +
          'SELECT $1, p, o, m, w, $6 FROM unnest($2::integer[], $3::bigint[], $4::float8[], $5::float8[]) AS t(p, o, m, w) ' +
          'ON CONFLICT (table_id, "partition") DO UPDATE SET "offset" = excluded."offset", ' +
          'max_event_ms = excluded.max_event_ms, watermark_ms = excluded.watermark_ms, pruned_below_ms = excluded.pruned_below_ms',
        [
          id,
          ps.map((p) => p.partition),
          ps.map((p) => p.offset),
          ps.map((p) => p.maxEventMs),
          ps.map((p) => p.watermarkMs),
          change.prunedBelowMs,
        ],
      );
      return true;
    });
  }

  forget(topic: string): Promise<number> {
    this.db.checkOpen();
    return forgetTables(this.db, topic);
  }
}

async function forgetTables(db: Connections, topic: string): Promise<number> {
  const prefix = tableIdPrefix(topic);
  return db.tx(`forget the stored tables of topic "${topic}"`, async (client) => {
    const ids = await client.query(
      'SELECT DISTINCT table_id FROM kappa_table_partitions WHERE left(table_id, $1) = $2',
      [prefix.length, prefix],
    );
    const list = ids.rows.map((r) => r.table_id as string);
    await client.query('DELETE FROM kappa_table_versions WHERE table_id = ANY($1::text[])', [list]);
    await client.query('DELETE FROM kappa_table_partitions WHERE table_id = ANY($1::text[])', [list]);
    return list.length;
  });
}

function insert(client: pg.PoolClient, id: string, versions: readonly StoredTableVersion[]): Promise<unknown> {
  return client.query(
    'INSERT INTO kappa_table_versions (table_id, key, from_ms, value) ' +
      'SELECT $1, * FROM unnest($2::text[], $3::float8[], $4::bytea[])',
    [
      id,
      versions.map((v) => v.key),
      versions.map((v) => v.fromMs),
      versions.map((v) =>
        v.value === null ? null : Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength),
      ),
    ],
  );
}
