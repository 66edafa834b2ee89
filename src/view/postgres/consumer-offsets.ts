/**
 * The PostgreSQL adapter of the `ConsumerOffsetStore` port (../consumer-offsets.ts): Kafka consumer
 * groups' committed offsets in `kappa_consumer_offsets` (layout in ./schema.ts), in the store's
 * database. A commit is one statement (all its offsets through unnest), so it is stored whole or
 * not at all, and durable once it resolves as PostgreSQL's commits are. Group ids compare
 * case-sensitively, as in Kafka; text is ordered bytewise (COLLATE "C"), as SQLite orders it.
 */
import { KappaError } from '../../errors.ts';
import type { CommittedOffset, ConsumerOffsetStore } from '../consumer-offsets.ts';
import type { Connections } from './pool.ts';

const COLUMNS = 'topic, "partition" AS partition, "offset" AS offset, leader_epoch, metadata, committed_at';

interface OffsetRow {
  topic: string;
  partition: number;
  offset: number;
  leader_epoch: number;
  metadata: string | null;
  committed_at: number;
}

export class PostgresConsumerOffsets implements ConsumerOffsetStore {
  constructor(private readonly db: Connections) {}

  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    this.db.checkOpen();
    checkGroup(group);
    for (const o of offsets) checkOffset(group, o);
    if (offsets.length === 0) return;
    const column = <T>(f: (o: CommittedOffset) => T): T[] => offsets.map(f);
    await this.db.run(
      `commit the offsets of consumer group "${group}"`,
      'INSERT INTO kappa_consumer_offsets (group_id, topic, "partition", "offset", leader_epoch, metadata, committed_at) ' +
        'SELECT $1, * FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::integer[], $6::text[], $7::bigint[]) ' +
        // The last of a (topic, partition) named twice in one commit wins, as it would one by one.
        'ON CONFLICT (group_id, topic, "partition") DO UPDATE SET "offset" = excluded."offset", ' +
        'leader_epoch = excluded.leader_epoch, metadata = excluded.metadata, committed_at = excluded.committed_at',
      [
        group,
        ...lastPerPartition(offsets, [
          column((o) => o.topic),
          column((o) => o.partition),
          column((o) => o.offset),
          column((o) => o.leaderEpoch),
          column((o) => o.metadata),
          column((o) => o.committedAtMs),
        ]),
      ],
    );
  }

  async committed(group: string, topics?: readonly string[]): Promise<CommittedOffset[]> {
    this.db.checkOpen();
    checkGroup(group);
    const action = `read the offsets of consumer group "${group}"`;
    const order = 'ORDER BY topic COLLATE "C", "partition"';
    const rows =
      topics === undefined
        ? await this.db.run<OffsetRow>(
            action,
            `SELECT ${COLUMNS} FROM kappa_consumer_offsets WHERE group_id = $1 ${order}`,
            [group],
          )
        : await this.db.run<OffsetRow>(
            action,
            `SELECT ${COLUMNS} FROM kappa_consumer_offsets WHERE group_id = $1 AND topic = ANY($2::text[]) ${order}`,
            [group, [...topics]],
          );
    return rows.rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      leaderEpoch: r.leader_epoch,
      metadata: r.metadata,
      committedAtMs: r.committed_at,
    }));
  }

  async groups(): Promise<string[]> {
    this.db.checkOpen();
    const rows = await this.db.run<{ group_id: string }>(
      'list the consumer groups',
      'SELECT group_id FROM kappa_consumer_offsets GROUP BY group_id ORDER BY group_id COLLATE "C"',
    );
    return rows.rows.map((r) => r.group_id);
  }

  async delete(group: string): Promise<number> {
    this.db.checkOpen();
    checkGroup(group);
    const result = await this.db.run(
      `delete the offsets of consumer group "${group}"`,
      'DELETE FROM kappa_consumer_offsets WHERE group_id = $1',
      [group],
    );
    return result.rowCount ?? 0;
  }
}

/** The columns with only the last entry of each (topic, partition) kept (one statement may not update a row twice). */
function lastPerPartition(offsets: readonly CommittedOffset[], columns: unknown[][]): unknown[][] {
  const last = new Map<string, number>();
  offsets.forEach((o, i) => last.set(`${o.topic}\u0000${o.partition}`, i));
  if (last.size === offsets.length) return columns;
  const keep = [...last.values()].sort((a, b) => a - b);
  return columns.map((column) => keep.map((i) => column[i]));
}

function checkGroup(group: string): void {
  if (typeof group !== 'string')
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'A consumer group id must be a string.', { group });
  if (group.includes('\u0000'))
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'A consumer group id cannot contain the character U+0000.', {
      group,
    });
}

/** Refuses an offset that Kafka's wire format could not carry, before anything is written. */
function checkOffset(group: string, o: CommittedOffset): void {
  const bad = (what: string): never => {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `Cannot commit an offset of consumer group "${group}": ${what}. Nothing was stored.`,
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
  if (!Number.isSafeInteger(o.leaderEpoch) || Math.abs(o.leaderEpoch) > 0x7fffffff)
    bad(`the leader epoch of ${o.topic}/${o.partition} must be a whole number (got ${String(o.leaderEpoch)})`);
  if (o.metadata !== null && typeof o.metadata !== 'string')
    bad(`the metadata of ${o.topic}/${o.partition} must be a string or null`);
  if (typeof o.metadata === 'string' && o.metadata.includes('\u0000'))
    bad(`the metadata of ${o.topic}/${o.partition} cannot contain the character U+0000`);
  if (!Number.isSafeInteger(o.committedAtMs))
    bad(`the commit time of ${o.topic}/${o.partition} must be ms since the epoch`);
}
