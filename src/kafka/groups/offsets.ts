/**
 * OffsetCommit, OffsetFetch and DeleteGroups: committed offsets kept in the ConsumerOffsetStore.
 *
 * Who may commit (Kafka's validateOffsetCommit):
 * - generation -1 with no member id ("simple" commits: a consumer that assigns itself partitions,
 *   or an admin tool) while the group has no members; refused with UNKNOWN_MEMBER_ID once it has;
 * - otherwise the member must be known (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID for a replaced
 *   static member) and of the current generation (ILLEGAL_GENERATION: a member that missed a
 *   rebalance must not overwrite what the new owner of a partition commits);
 * - during CompletingRebalance: REBALANCE_IN_PROGRESS. During PreparingRebalance a member of the
 *   current generation may still commit, as in Kafka: consumers commit what they processed before
 *   they give partitions up and rejoin.
 * A commit that is accepted is stored in one transaction and durable before it is acknowledged.
 */
import type { CommittedOffset } from '../../view/index.ts';
import type { GroupCore } from './core.ts';
import { GROUP_ERRORS } from './errors.ts';
import type { ClassicGroup } from './group.ts';
import { memberError } from './join.ts';
import type {
  DeleteGroupsResponse,
  GroupRequestContext,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchGroup,
  OffsetFetchPartition,
  OffsetFetchRequest,
  OffsetFetchResponse,
  OffsetFetchTopics,
} from './types.ts';

export async function offsetCommit(core: GroupCore, req: OffsetCommitRequest): Promise<OffsetCommitResponse> {
  const topics = req.topics ?? [];
  const all = (errorCode: number): OffsetCommitResponse => ({
    throttleTimeMs: 0,
    topics: topics.map((t) => ({
      name: t.name,
      partitions: (t.partitions ?? []).map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
    })),
  });
  if (typeof req.groupId !== 'string') return all(GROUP_ERRORS.INVALID_GROUP_ID);
  if (core.closed) return all(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  const generationId = req.generationIdOrMemberEpoch ?? req.generationId ?? -1;
  const memberId = req.memberId ?? '';
  const groupInstanceId = req.groupInstanceId ?? null;
  const group = core.group(req.groupId, false);
  const refusal =
    group === null
      ? generationId < 0
        ? null
        : GROUP_ERRORS.ILLEGAL_GENERATION
      : commitRefusal(core, group, generationId, memberId, groupInstanceId);
  if (refusal !== null) return all(refusal);
  return storeCommit(core, req.groupId, topics);
}

function commitRefusal(
  core: GroupCore,
  group: ClassicGroup,
  generationId: number,
  memberId: string,
  groupInstanceId: string | null,
): number | null {
  if (group.is('Dead')) return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  if (generationId < 0 && group.is('Empty')) return null;
  if (generationId >= 0 || memberId !== '' || groupInstanceId !== null) {
    const error = memberError(group, memberId, groupInstanceId);
    if (error !== null) return error;
    if (generationId !== group.generationId) return GROUP_ERRORS.ILLEGAL_GENERATION;
  } else if (!group.is('Empty')) {
    // Only members may commit for a group that has some.
    return GROUP_ERRORS.UNKNOWN_MEMBER_ID;
  }
  switch (group.state) {
    case 'CompletingRebalance':
      return GROUP_ERRORS.REBALANCE_IN_PROGRESS;
    case 'Stable':
    case 'PreparingRebalance':
      // A commit shows the member alive, like a heartbeat.
      core.heartbeatFrom(group, group.get(memberId));
      return null;
    default:
      return null;
  }
}

async function storeCommit(
  core: GroupCore,
  groupId: string,
  topics: OffsetCommitRequest['topics'],
): Promise<OffsetCommitResponse> {
  const nowMs = core.now();
  const accepted: CommittedOffset[] = [];
  const errors: number[][] = [];
  for (const t of topics) {
    const partitionCount = await knownPartitions(core, t.name);
    errors.push(
      (t.partitions ?? []).map((p) => {
        const error = partitionError(core, t.name, partitionCount, p);
        if (error === GROUP_ERRORS.NONE)
          accepted.push({
            topic: t.name,
            partition: p.partitionIndex,
            offset: p.committedOffset,
            leaderEpoch: p.committedLeaderEpoch ?? -1,
            metadata: p.committedMetadata ?? null,
            committedAtMs: nowMs,
          });
        return error;
      }),
    );
  }
  let storeError: number = GROUP_ERRORS.NONE;
  try {
    await core.opts.offsets.commit(groupId, accepted);
  } catch (err) {
    // The store failed (disk full, the file locked): nothing was stored; the client retries.
    core.logger.warn(`Kafka group ${groupId}: could not store committed offsets: ${(err as Error).message}`);
    storeError = GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  }
  return {
    throttleTimeMs: 0,
    topics: topics.map((t, i) => ({
      name: t.name,
      partitions: (t.partitions ?? []).map((p, j) => ({
        partitionIndex: p.partitionIndex,
        errorCode: errors[i][j] === GROUP_ERRORS.NONE ? storeError : errors[i][j],
      })),
    })),
  };
}

async function knownPartitions(core: GroupCore, topic: string): Promise<number | null | undefined> {
  const count = core.opts.partitionCount;
  if (count === undefined) return undefined;
  try {
    return await count(topic);
  } catch {
    return null;
  }
}

function partitionError(
  core: GroupCore,
  topic: string,
  partitionCount: number | null | undefined,
  p: OffsetCommitRequest['topics'][number]['partitions'][number],
): number {
  if (typeof topic !== 'string' || topic.length === 0) return GROUP_ERRORS.UNKNOWN_TOPIC_OR_PARTITION;
  if (!Number.isSafeInteger(p.partitionIndex) || p.partitionIndex < 0) return GROUP_ERRORS.UNKNOWN_TOPIC_OR_PARTITION;
  if (partitionCount === null || (partitionCount !== undefined && p.partitionIndex >= partitionCount))
    return GROUP_ERRORS.UNKNOWN_TOPIC_OR_PARTITION;
  if (!Number.isSafeInteger(p.committedOffset)) return GROUP_ERRORS.UNKNOWN_SERVER_ERROR;
  const metadata = p.committedMetadata ?? null;
  if (metadata !== null && Buffer.byteLength(metadata, 'utf8') > core.config.offsetMetadataBytesMax)
    return GROUP_ERRORS.OFFSET_METADATA_TOO_LARGE;
  return GROUP_ERRORS.NONE;
}

export async function offsetFetch(
  core: GroupCore,
  req: OffsetFetchRequest,
  ctx: GroupRequestContext,
): Promise<OffsetFetchResponse> {
  if (ctx.apiVersion >= 8) {
    const groups: OffsetFetchGroup[] = [];
    for (const g of req.groups ?? []) groups.push(await fetchGroup(core, g.groupId, g.topics ?? null));
    return { throttleTimeMs: 0, groups };
  }
  // v0-1 have no "every topic" form: a null list only means that from v2.
  const one = await fetchGroup(core, req.groupId ?? null, req.topics ?? (ctx.apiVersion >= 2 ? null : []));
  return { throttleTimeMs: 0, topics: one.topics, errorCode: one.errorCode };
}

const NO_OFFSET = { committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: GROUP_ERRORS.NONE };

async function fetchGroup(
  core: GroupCore,
  groupId: string | null,
  topics: OffsetFetchTopics,
): Promise<OffsetFetchGroup> {
  if (typeof groupId !== 'string') return { groupId: '', topics: [], errorCode: GROUP_ERRORS.INVALID_GROUP_ID };
  if (core.closed) return { groupId, topics: [], errorCode: GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE };
  let stored: CommittedOffset[];
  try {
    stored = await core.opts.offsets.committed(groupId, topics === null ? undefined : topics.map((t) => t.name));
  } catch (err) {
    core.logger.warn(`Kafka group ${groupId}: could not read committed offsets: ${(err as Error).message}`);
    return { groupId, topics: [], errorCode: GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE };
  }
  const byTopic = new Map<string, Map<number, OffsetFetchPartition>>();
  for (const o of stored) {
    let partitions = byTopic.get(o.topic);
    if (partitions === undefined) byTopic.set(o.topic, (partitions = new Map()));
    partitions.set(o.partition, {
      partitionIndex: o.partition,
      committedOffset: o.offset,
      committedLeaderEpoch: o.leaderEpoch,
      metadata: o.metadata ?? '',
      errorCode: GROUP_ERRORS.NONE,
    });
  }
  if (topics === null) {
    return {
      groupId,
      topics: [...byTopic].map(([name, partitions]) => ({ name, partitions: [...partitions.values()] })),
      errorCode: GROUP_ERRORS.NONE,
    };
  }
  return {
    groupId,
    topics: topics.map((t) => ({
      name: t.name,
      partitions: (t.partitionIndexes ?? []).map(
        (p) => byTopic.get(t.name)?.get(p) ?? { partitionIndex: p, ...NO_OFFSET },
      ),
    })),
    errorCode: GROUP_ERRORS.NONE,
  };
}

/** DeleteGroups: only an Empty group (or one known only by its offsets) may be deleted; its offsets go too. */
export async function deleteGroups(core: GroupCore, groupIds: readonly string[]): Promise<DeleteGroupsResponse> {
  const results: DeleteGroupsResponse['results'] = [];
  for (const groupId of groupIds) results.push({ groupId, errorCode: await deleteOne(core, groupId) });
  return { throttleTimeMs: 0, results };
}

async function deleteOne(core: GroupCore, groupId: string): Promise<number> {
  if (typeof groupId !== 'string') return GROUP_ERRORS.INVALID_GROUP_ID;
  if (core.closed) return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  const group = core.group(groupId, false);
  if (group !== null && !group.is('Empty')) return GROUP_ERRORS.NON_EMPTY_GROUP;
  try {
    const removed = await core.opts.offsets.delete(groupId);
    if (group === null) return removed > 0 ? GROUP_ERRORS.NONE : GROUP_ERRORS.GROUP_ID_NOT_FOUND;
    // Forgotten unless a member started joining meanwhile (then the group lives on, without offsets).
    core.maybeForget(group);
    return GROUP_ERRORS.NONE;
  } catch (err) {
    core.logger.warn(`Kafka group ${groupId}: could not delete its offsets: ${(err as Error).message}`);
    return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  }
}
