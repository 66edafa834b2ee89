/**
 * The SQLite adapter of the `ConsumerOffsetStore` port (../consumer-offsets.ts): Kafka consumer
 * groups' committed offsets in the table `kappa_consumer_offsets` of the view store's database
 * file (layout in ./schema.ts):
 *
 *   kappa_consumer_offsets(group_id, topic, partition, offset, leader_epoch, metadata, committed_at)
 *       PRIMARY KEY (group_id, topic, partition); group ids compare case-sensitively, as in Kafka.
 *
 * It writes through its own connection to that file, with the store's `SqliteWriter` rules (one
 * IMMEDIATE transaction per change; a write that finds the lock taken, say by a long stepped flush
 * of the view store, waits between attempts with timers, never blocking the event loop).
 *
 * Durability: the file is in WAL mode and this connection uses `synchronous = NORMAL`, like the
 * store's writer. A commit has been written to the WAL file (in the operating system's cache) when
 * `commit` resolves, so a crash of the process (SIGKILL included) cannot lose it; a power loss or
 * an operating-system crash may roll back the last few commits (the WAL is synced at checkpoints),
 * which a consumer sees as re-reading a few records: at-least-once, as Kafka's own commits are.
 *
 * `openSqliteStoreWithOffsets` is what `view/sqlite/index.ts` exports as `openSqliteStore`: the
 * store with this adapter as `consumerOffsets`, closed with it.
 */
import Database from 'better-sqlite3';
import { KappaError } from '../../errors.ts';
import type { CommittedOffset, ConsumerOffsetStore } from '../consumer-offsets.ts';
import { type SqliteStore, type SqliteStoreOptions, openSqliteStore } from './sqlite-store.ts';
import { SqliteWriter, storageError } from './writer.ts';

/** The SQLite store, with the Kafka consumer groups' committed offsets beside the views. */
export type SqliteStoreWithOffsets = SqliteStore & { readonly consumerOffsets: ConsumerOffsetStore };

/** Opens the view store and its consumer-offset store on the same file; closing the store closes both. */
export async function openSqliteStoreWithOffsets(opts: SqliteStoreOptions): Promise<SqliteStoreWithOffsets> {
  const store = await openSqliteStore(opts);
  let offsets: SqliteConsumerOffsets;
  try {
    offsets = SqliteConsumerOffsets.open(opts.path, opts.busyTimeoutMs ?? 5000);
  } catch (err) {
    await store.close();
    throw storageError(err, `open the consumer offsets at ${opts.path}`);
  }
  const closeStore = store.close.bind(store);
  return Object.assign(store, {
    consumerOffsets: offsets as ConsumerOffsetStore,
    async close(): Promise<void> {
      await offsets.close();
      await closeStore();
    },
  });
}

interface OffsetRow {
  topic: string;
  partition: number;
  offset: number;
  leader_epoch: number;
  metadata: string | null;
  committed_at: number;
}

export class SqliteConsumerOffsets implements ConsumerOffsetStore {
  private readonly sql: ReturnType<typeof statements>;

  private constructor(private readonly writer: SqliteWriter) {
    this.sql = statements(writer.db);
  }

  /** Opens a connection to a store file whose layout `prepareWriter` (./schema.ts) has already made. */
  static open(path: string, busyTimeoutMs: number): SqliteConsumerOffsets {
    const db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: true });
    try {
      // Per connection: see the file comment for what NORMAL keeps and loses.
      db.pragma('synchronous = NORMAL');
      // Waits for the lock happen in SqliteWriter with timers, never inside SQLite on this thread.
      db.pragma('busy_timeout = 0');
      return new SqliteConsumerOffsets(new SqliteWriter(db, busyTimeoutMs));
    } catch (err) {
      db.close();
      throw err;
    }
  }

  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    this.writer.checkOpen();
    checkGroup(group);
    for (const o of offsets) checkOffset(group, o);
    if (offsets.length === 0) return;
    await this.writer.writeWhenFree(`commit the offsets of consumer group "${group}"`, () => {
      for (const o of offsets)
        this.sql.upsert.run(group, o.topic, o.partition, o.offset, o.leaderEpoch, o.metadata, o.committedAtMs);
    });
  }

  async committed(group: string, topics?: readonly string[]): Promise<CommittedOffset[]> {
    this.writer.checkOpen();
    checkGroup(group);
    let rows: OffsetRow[];
    try {
      if (topics === undefined) rows = this.sql.byGroup.all(group) as OffsetRow[];
      else {
        rows = [];
        for (const topic of [...new Set(topics)].sort())
          rows.push(...(this.sql.byTopic.all(group, topic) as OffsetRow[]));
      }
    } catch (err) {
      throw storageError(err, `read the offsets of consumer group "${group}"`);
    }
    return rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      leaderEpoch: r.leader_epoch,
      metadata: r.metadata,
      committedAtMs: r.committed_at,
    }));
  }

  async groups(): Promise<string[]> {
    this.writer.checkOpen();
    try {
      return (this.sql.groups.all() as { group_id: string }[]).map((r) => r.group_id);
    } catch (err) {
      throw storageError(err, 'list the consumer groups');
    }
  }

  async delete(group: string): Promise<number> {
    this.writer.checkOpen();
    checkGroup(group);
    return this.writer.writeWhenFree(
      `delete the offsets of consumer group "${group}"`,
      () => this.sql.deleteGroup.run(group).changes,
    );
  }

  async close(): Promise<void> {
    if (!(await this.writer.beginClose())) return;
    this.writer.close();
  }
}

function statements(db: Database.Database) {
  const columns = 'topic, "partition", "offset", leader_epoch, metadata, committed_at';
  return {
    upsert: db.prepare(
      `INSERT INTO kappa_consumer_offsets (group_id, ${columns}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (group_id, topic, "partition") DO UPDATE SET "offset" = excluded."offset",
         leader_epoch = excluded.leader_epoch, metadata = excluded.metadata, committed_at = excluded.committed_at`,
    ),
    byGroup: db.prepare(`SELECT ${columns} FROM kappa_consumer_offsets WHERE group_id = ? ORDER BY topic, "partition"`),
    byTopic: db.prepare(
      `SELECT ${columns} FROM kappa_consumer_offsets WHERE group_id = ? AND topic = ? ORDER BY "partition"`,
    ),
    groups: db.prepare('SELECT DISTINCT group_id FROM kappa_consumer_offsets ORDER BY group_id'),
    deleteGroup: db.prepare('DELETE FROM kappa_consumer_offsets WHERE group_id = ?'),
  };
}

function checkGroup(group: string): void {
  if (typeof group !== 'string')
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'A consumer group id must be a string.', { group });
}

/** Refuses an offset that Kafka's wire format could not carry, before anything is written. */
function checkOffset(group: string, o: CommittedOffset): void {
  const where = `consumer group "${group}"`;
  const bad = (what: string): never => {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `Cannot commit an offset of ${where}: ${what}. Nothing was stored.`,
      {
        group,
        topic: o?.topic,
        partition: o?.partition,
      },
    );
  };
  if (o === null || typeof o !== 'object') bad('an offset must be an object');
  if (typeof o.topic !== 'string' || o.topic.length === 0) bad('the topic must be a non-empty string');
  if (!Number.isSafeInteger(o.partition) || o.partition < 0 || o.partition > 0x7fffffff)
    bad(`the partition of ${o.topic} must be a whole number from 0 (got ${String(o.partition)})`);
  if (!Number.isSafeInteger(o.offset))
    bad(`the offset of ${o.topic}/${o.partition} must be a whole number (got ${String(o.offset)})`);
  if (!Number.isSafeInteger(o.leaderEpoch))
    bad(`the leader epoch of ${o.topic}/${o.partition} must be a whole number (got ${String(o.leaderEpoch)})`);
  if (o.metadata !== null && typeof o.metadata !== 'string')
    bad(`the metadata of ${o.topic}/${o.partition} must be a string or null`);
  if (!Number.isSafeInteger(o.committedAtMs))
    bad(`the commit time of ${o.topic}/${o.partition} must be ms since the epoch`);
}
