/**
 * The `ConsumerOffsetStore` port: the offsets Kafka consumer groups commit (OffsetCommit) and read
 * back (OffsetFetch) through Kappa's Kafka listener, kept where the views' checkpoints are so they
 * survive a restart of `kappa start` and a SIGKILL. Adapter: SQLite (`view/sqlite/consumer-offsets.ts`,
 * the same database file as the view store). Tests: `view/sqlite/consumer-offsets.test.ts`.
 *
 * Promises every adapter keeps:
 * - `commit` is all or nothing: every offset of the call is stored, or none is (bad input is
 *   refused before anything is written), and once it resolves the offsets are durable: a process
 *   crash (SIGKILL) right after cannot lose them;
 * - a commit replaces the stored offset of each (group, topic, partition) it names, whatever the
 *   old value (a consumer may rewind: Kafka does not refuse a smaller offset);
 * - `committed` returns what the last commit of each partition stored, ordered by topic then partition;
 * - group ids are case-sensitive, as in Kafka, and may be empty (Kafka allows commits for "").
 */

/** One committed position of a consumer group in one partition. */
export interface CommittedOffset {
  topic: string;
  partition: number;
  /** The next offset the group will read (Kafka's committed offset is "one past the last processed"). */
  offset: number;
  /** The leader epoch the client saw with the offset (-1 when it did not say). */
  leaderEpoch: number;
  /** Free text the client attached to the commit (Kafka's OffsetCommit metadata), or null. */
  metadata: string | null;
  /** When the commit was stored, ms since the epoch. */
  committedAtMs: number;
}

export interface ConsumerOffsetStore {
  /** Stores every offset of `offsets` for `group` in one transaction; durable once it resolves. */
  commit(group: string, offsets: readonly CommittedOffset[]): Promise<void>;
  /** The group's committed offsets (only those of `topics` when given), by topic then partition. */
  committed(group: string, topics?: readonly string[]): Promise<CommittedOffset[]>;
  /** The ids of the groups that have at least one committed offset, sorted. */
  groups(): Promise<string[]>;
  /** Forgets every committed offset of the group; resolves to how many there were. */
  delete(group: string): Promise<number>;
}
