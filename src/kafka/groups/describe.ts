/**
 * DescribeGroups and ListGroups, and the same facts for Kappa's own views of consumer groups
 * (`GroupCoordinator.overview`, used for lag): a group is what the coordinator holds in memory
 * (members, state, protocol) or, when it has none, what the offset store knows (an Empty group with
 * committed offsets, as after a restart).
 */
import { assignedPartitions, type TopicPartitions } from './consumer-protocol.ts';
import type { GroupCore } from './core.ts';
import { GROUP_ERRORS } from './errors.ts';
import { EMPTY_BYTES, type ClassicGroup, type GroupState } from './group.ts';
import type {
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  DescribedGroup,
  ListGroupsRequest,
  ListGroupsResponse,
} from './types.ts';

/** Kafka's "not asked for" value of AuthorizedOperations. */
const NO_OPERATIONS = -2147483648;

export async function describeGroups(core: GroupCore, req: DescribeGroupsRequest): Promise<DescribeGroupsResponse> {
  const groups: DescribedGroup[] = [];
  for (const groupId of req.groups ?? []) groups.push(await describeOne(core, groupId));
  return { throttleTimeMs: 0, groups };
}

async function describeOne(core: GroupCore, groupId: string): Promise<DescribedGroup> {
  const none = (groupState: string, errorCode: number = GROUP_ERRORS.NONE): DescribedGroup => ({
    errorCode,
    groupId: groupId ?? '',
    groupState,
    protocolType: '',
    protocolData: '',
    members: [],
    authorizedOperations: NO_OPERATIONS,
  });
  if (typeof groupId !== 'string') return none('', GROUP_ERRORS.INVALID_GROUP_ID);
  if (core.closed) return none('', GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  const group = core.group(groupId, false);
  if (group === null) return (await hasOffsets(core, groupId)) ? none('Empty') : none('Dead');
  // Kafka shows each member's metadata and assignment only once the group is Stable.
  const stable = group.is('Stable');
  return {
    errorCode: GROUP_ERRORS.NONE,
    groupId,
    groupState: group.state,
    protocolType: group.protocolType ?? '',
    protocolData: stable ? (group.protocolName ?? '') : '',
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberMetadata: stable && group.protocolName !== null ? m.metadata(group.protocolName) : EMPTY_BYTES,
      memberAssignment: stable ? m.assignment : EMPTY_BYTES,
    })),
    authorizedOperations: NO_OPERATIONS,
  };
}

async function hasOffsets(core: GroupCore, groupId: string): Promise<boolean> {
  try {
    return (await core.opts.offsets.committed(groupId)).length > 0;
  } catch {
    return false;
  }
}

export async function listGroups(core: GroupCore, req: ListGroupsRequest): Promise<ListGroupsResponse> {
  if (core.closed) return { throttleTimeMs: 0, errorCode: GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE, groups: [] };
  const states = new Set((req.statesFilter ?? []).map((s) => s.toLowerCase()));
  const types = new Set((req.typesFilter ?? []).map((s) => s.toLowerCase()));
  // Every group here is a classic one; a filter for other types (the new "consumer" protocol) matches none.
  if (types.size > 0 && !types.has('classic')) return { throttleTimeMs: 0, errorCode: GROUP_ERRORS.NONE, groups: [] };
  const listed: ListGroupsResponse['groups'] = [];
  for (const o of await overviewAll(core)) {
    if (states.size > 0 && !states.has(o.state.toLowerCase())) continue;
    listed.push({ groupId: o.groupId, protocolType: o.protocolType, groupState: o.state, groupType: 'classic' });
  }
  return { throttleTimeMs: 0, errorCode: GROUP_ERRORS.NONE, groups: listed };
}

export interface GroupMemberOverview {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** The partitions the member was assigned (consumer groups, once Stable); null if its assignment is not a consumer's. */
  assignment: TopicPartitions[] | null;
}

export interface GroupOverview {
  groupId: string;
  state: GroupState;
  protocolType: string;
  /** The protocol chosen for the generation (the assignor's name for consumers: range, roundrobin, cooperative-sticky). */
  protocol: string | null;
  generationId: number;
  members: GroupMemberOverview[];
}

export function overviewOf(group: ClassicGroup): GroupOverview {
  const consumer = group.protocolType === 'consumer';
  return {
    groupId: group.groupId,
    state: group.state,
    protocolType: group.protocolType ?? '',
    protocol: group.protocolName,
    generationId: group.generationId,
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      assignment: consumer ? assignedPartitions(m.assignment) : null,
    })),
  };
}

/** Every group the coordinator holds, and every other group with committed offsets (as Empty), by id. */
export async function overviewAll(core: GroupCore): Promise<GroupOverview[]> {
  const out = new Map<string, GroupOverview>();
  for (const group of core.groups.values()) out.set(group.groupId, overviewOf(group));
  let stored: string[] = [];
  try {
    stored = await core.opts.offsets.groups();
  } catch (err) {
    core.logger.warn(`Kafka groups: could not list the groups with committed offsets: ${(err as Error).message}`);
  }
  for (const groupId of stored) {
    if (!out.has(groupId))
      out.set(groupId, { groupId, state: 'Empty', protocolType: '', protocol: null, generationId: 0, members: [] });
  }
  return [...out.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
}
