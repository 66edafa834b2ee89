/**
 * Consumer-group lag: per group, topic and partition, the committed offset, the log's end offset
 * and how far behind the group is, for `kappa lag`, `GET /v1/pipelines` and the dashboard.
 *
 * Given the running coordinator, groups carry their live state, protocol and members, and each
 * partition its owner; given only the offset store (a CLI beside a running `kappa start`), groups
 * are those with committed offsets, and their state is unknown (null).
 */
import type { Log } from '../../log/index.ts';
import type { ConsumerOffsetStore } from '../../view/index.ts';
import type { GroupCoordinator } from './coordinator.ts';
import type { GroupMemberOverview, GroupOverview } from './describe.ts';
import type { GroupState } from './group.ts';

export interface PartitionLag {
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  /** Records the group has not committed yet: end - committed, never below 0. */
  lag: number;
  /** The member the partition is assigned to now (consumer groups, Stable), or null. */
  owner: Pick<GroupMemberOverview, 'memberId' | 'clientId' | 'clientHost'> | null;
}

export interface GroupLag {
  groupId: string;
  /** Null when read from the offset store alone (the coordinator runs in another process, or not at all). */
  state: GroupState | null;
  protocolType: string;
  protocol: string | null;
  generationId: number;
  members: GroupMemberOverview[];
  partitions: PartitionLag[];
  /** The sum of the partitions' lag. */
  lag: number;
}

export async function groupLag(source: GroupCoordinator | ConsumerOffsetStore, log: Log): Promise<GroupLag[]> {
  const live = 'overview' in source;
  const store = live ? source.offsets : source;
  const overviews: GroupOverview[] = live
    ? await source.overview()
    : (await store.groups()).map((groupId) => ({
        groupId,
        state: 'Empty',
        protocolType: '',
        protocol: null,
        generationId: 0,
        members: [],
      }));
  const topics = new Set((await log.topics()).map((t) => t.name));
  const out: GroupLag[] = [];
  for (const o of overviews) {
    const owners = ownersOf(o.members);
    const partitions: PartitionLag[] = [];
    for (const c of await store.committed(o.groupId)) {
      // A topic deleted since the commit has no lag to show.
      if (!topics.has(c.topic)) continue;
      let end: number;
      try {
        end = (await log.offsets(c.topic, c.partition)).end;
      } catch {
        continue;
      }
      partitions.push({
        topic: c.topic,
        partition: c.partition,
        committedOffset: c.offset,
        logEndOffset: end,
        lag: Math.max(0, end - c.offset),
        owner: owners.get(`${c.topic}\u0000${c.partition}`) ?? null,
      });
    }
    out.push({
      groupId: o.groupId,
      state: live ? o.state : null,
      protocolType: o.protocolType,
      protocol: o.protocol,
      generationId: o.generationId,
      members: o.members,
      partitions,
      lag: partitions.reduce((sum, p) => sum + p.lag, 0),
    });
  }
  return out;
}

function ownersOf(members: readonly GroupMemberOverview[]): Map<string, PartitionLag['owner']> {
  const owners = new Map<string, PartitionLag['owner']>();
  for (const m of members) {
    for (const tp of m.assignment ?? []) {
      for (const p of tp.partitions)
        owners.set(`${tp.topic}\u0000${p}`, { memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost });
    }
  }
  return owners;
}
