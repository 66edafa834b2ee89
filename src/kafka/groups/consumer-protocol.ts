/**
 * Reading the bytes Kafka consumers put in their group messages (protocol type "consumer"), so
 * `kappa lag`, the HTTP API and the dashboard can say which member reads which partitions. The
 * coordinator itself never needs them: it relays them between members unread, as Kafka does.
 *
 *   Subscription (JoinGroup metadata): version int16, topics [int32 count][int16 len + utf8]..., then
 *       fields of later versions (user data, owned partitions, generation, rack) that are not read.
 *   Assignment (SyncGroup assignment): version int16, [int32 count] of (topic int16 len + utf8,
 *       [int32 count] of int32 partition), then user data (not read).
 * Both start the same way in every version (Kafka keeps version 0 a prefix of all later ones).
 * Anything malformed reads as null: the bytes come from clients.
 */

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

const ITEMS_MAX = 100_000;

class Reader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  private view(): DataView {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  int16(): number {
    if (this.at + 2 > this.bytes.length) throw new RangeError('short');
    const v = this.view().getInt16(this.at);
    this.at += 2;
    return v;
  }

  int32(): number {
    if (this.at + 4 > this.bytes.length) throw new RangeError('short');
    const v = this.view().getInt32(this.at);
    this.at += 4;
    return v;
  }

  count(): number {
    const n = this.int32();
    if (n < 0 || n > ITEMS_MAX) throw new RangeError('bad count');
    return n;
  }

  string(): string {
    const len = this.int16();
    if (len < 0 || this.at + len > this.bytes.length) throw new RangeError('bad string');
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.at, len).toString('utf8');
    this.at += len;
    return s;
  }
}

/** The topics a consumer subscribed to, from its JoinGroup metadata; null if the bytes are not a subscription. */
export function subscribedTopics(metadata: Uint8Array): string[] | null {
  try {
    const r = new Reader(metadata);
    r.int16();
    const n = r.count();
    const topics: string[] = [];
    for (let i = 0; i < n; i++) topics.push(r.string());
    return topics;
  } catch {
    return null;
  }
}

/** The partitions a member was assigned, from its SyncGroup assignment; null if the bytes are not an assignment. */
export function assignedPartitions(assignment: Uint8Array): TopicPartitions[] | null {
  if (assignment.length === 0) return [];
  try {
    const r = new Reader(assignment);
    r.int16();
    const n = r.count();
    const out: TopicPartitions[] = [];
    for (let i = 0; i < n; i++) {
      const topic = r.string();
      const m = r.count();
      const partitions: number[] = [];
      for (let j = 0; j < m; j++) partitions.push(r.int32());
      out.push({ topic, partitions });
    }
    return out;
  } catch {
    return null;
  }
}
