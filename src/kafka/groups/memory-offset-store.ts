/**
 * A ConsumerOffsetStore in memory: for tests and for a listener run without a data directory.
 * It keeps the port's promises except durability (nothing survives the process).
 */
import type { CommittedOffset, ConsumerOffsetStore } from '../../view/index.ts';

export class MemoryOffsetStore implements ConsumerOffsetStore {
  private readonly byGroup = new Map<string, Map<string, CommittedOffset>>();

  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    for (const o of offsets) {
      if (typeof o?.topic !== 'string' || o.topic === '' || !Number.isSafeInteger(o.partition) || o.partition < 0)
        throw new Error(
          `Cannot commit an offset of consumer group "${group}": a bad topic or partition. Nothing was stored.`,
        );
      if (!Number.isSafeInteger(o.offset))
        throw new Error(`Cannot commit an offset of consumer group "${group}": a bad offset. Nothing was stored.`);
    }
    if (offsets.length === 0) return;
    let stored = this.byGroup.get(group);
    if (stored === undefined) this.byGroup.set(group, (stored = new Map()));
    for (const o of offsets) stored.set(`${o.topic}\u0000${o.partition}`, { ...o });
  }

  async committed(group: string, topics?: readonly string[]): Promise<CommittedOffset[]> {
    const wanted = topics === undefined ? null : new Set(topics);
    return [...(this.byGroup.get(group)?.values() ?? [])]
      .filter((o) => wanted === null || wanted.has(o.topic))
      .map((o) => ({ ...o }))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  async groups(): Promise<string[]> {
    return [...this.byGroup.keys()].sort();
  }

  async delete(group: string): Promise<number> {
    const n = this.byGroup.get(group)?.size ?? 0;
    this.byGroup.delete(group);
    return n;
  }
}
