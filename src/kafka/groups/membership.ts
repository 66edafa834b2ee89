/**
 * SyncGroup, Heartbeat and LeaveGroup, as Kafka's GroupCoordinator answers them:
 *
 * - SyncGroup while completing a rebalance: the leader's request carries the assignment, which
 *   every member's SyncGroup then returns; followers that arrive first wait for it. Once Stable, a
 *   SyncGroup returns the member's assignment at once; while preparing a rebalance it answers
 *   REBALANCE_IN_PROGRESS (rejoin).
 * - Heartbeat keeps the member's session alive, and says REBALANCE_IN_PROGRESS while the group
 *   prepares a rebalance (that is how members learn they must rejoin), ILLEGAL_GENERATION for a
 *   stale generation, UNKNOWN_MEMBER_ID for a member the group does not know.
 * - LeaveGroup removes members (v0-2: one; v3+: a batch, by member id or by static instance id)
 *   and rebalances the rest.
 */
import type { GroupCore } from './core.ts';
import { GROUP_ERRORS } from './errors.ts';
import type { ClassicGroup } from './group.ts';
import { memberError } from './join.ts';
import type {
  GroupRequestContext,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from './types.ts';

export async function syncGroup(core: GroupCore, req: SyncGroupRequest): Promise<SyncGroupResponse> {
  const fail = (errorCode: number): SyncGroupResponse => core.syncAnswer(errorCode);
  if (typeof req.groupId !== 'string' || req.groupId.length === 0) return fail(GROUP_ERRORS.INVALID_GROUP_ID);
  if (core.closed) return fail(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  const group = core.group(req.groupId, false);
  if (group === null) return fail(GROUP_ERRORS.UNKNOWN_MEMBER_ID);
  const error = validateSync(group, req);
  if (error !== null) return fail(error);
  const memberId = req.memberId;
  switch (group.state) {
    case 'Empty':
      return fail(GROUP_ERRORS.UNKNOWN_MEMBER_ID);
    case 'PreparingRebalance':
      return fail(GROUP_ERRORS.REBALANCE_IN_PROGRESS);
    case 'Stable': {
      core.syncReceived(group, memberId);
      const member = group.get(memberId);
      core.heartbeatFrom(group, member);
      return core.syncAnswer(GROUP_ERRORS.NONE, group, member.assignment);
    }
    case 'CompletingRebalance': {
      const member = group.get(memberId);
      const answer = new Promise<SyncGroupResponse>((resolve) => {
        // A SyncGroup parked before under this member (the client retried) is told to rejoin.
        core.answerSync(member, core.syncAnswer(GROUP_ERRORS.REBALANCE_IN_PROGRESS));
        member.syncWaiter = resolve;
      });
      core.syncReceived(group, memberId);
      if (group.isLeader(memberId)) {
        const assignment = new Map<string, Uint8Array>();
        for (const a of req.assignments ?? []) {
          if (typeof a?.memberId === 'string' && group.has(a.memberId) && a.assignment != null)
            assignment.set(a.memberId, a.assignment);
        }
        core.setAndPropagateAssignment(group, assignment);
      }
      return answer;
    }
    default:
      return fail(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  }
}

function validateSync(group: ClassicGroup, req: SyncGroupRequest): number | null {
  if (group.is('Dead')) return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  const error = memberError(group, req.memberId ?? '', req.groupInstanceId ?? null);
  if (error !== null) return error;
  if (req.generationId !== group.generationId) return GROUP_ERRORS.ILLEGAL_GENERATION;
  // v5+ clients say which protocol they think was chosen: it must be the group's.
  if (req.protocolType != null && req.protocolType !== group.protocolType)
    return GROUP_ERRORS.INCONSISTENT_GROUP_PROTOCOL;
  if (req.protocolName != null && req.protocolName !== group.protocolName)
    return GROUP_ERRORS.INCONSISTENT_GROUP_PROTOCOL;
  return null;
}

export function heartbeat(core: GroupCore, req: HeartbeatRequest): HeartbeatResponse {
  return { throttleTimeMs: 0, errorCode: heartbeatError(core, req) };
}

function heartbeatError(core: GroupCore, req: HeartbeatRequest): number {
  if (typeof req.groupId !== 'string' || req.groupId.length === 0) return GROUP_ERRORS.INVALID_GROUP_ID;
  if (core.closed) return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  const group = core.group(req.groupId, false);
  if (group === null) return GROUP_ERRORS.UNKNOWN_MEMBER_ID;
  if (group.is('Dead')) return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  const error = memberError(group, req.memberId ?? '', req.groupInstanceId ?? null);
  if (error !== null) return error;
  if (req.generationId !== group.generationId) return GROUP_ERRORS.ILLEGAL_GENERATION;
  switch (group.state) {
    case 'Empty':
      return GROUP_ERRORS.UNKNOWN_MEMBER_ID;
    case 'PreparingRebalance':
      core.heartbeatFrom(group, group.get(req.memberId));
      return GROUP_ERRORS.REBALANCE_IN_PROGRESS;
    default:
      // CompletingRebalance too: a member may heartbeat between its JoinGroup and SyncGroup.
      core.heartbeatFrom(group, group.get(req.memberId));
      return GROUP_ERRORS.NONE;
  }
}

export function leaveGroup(core: GroupCore, req: LeaveGroupRequest, ctx: GroupRequestContext): LeaveGroupResponse {
  const batch = ctx.apiVersion >= 3;
  const leaving = batch
    ? (req.members ?? []).map((m) => ({ memberId: m?.memberId ?? '', groupInstanceId: m?.groupInstanceId ?? null }))
    : [{ memberId: req.memberId ?? '', groupInstanceId: null }];
  const answer = (errorCode: number, members: LeaveGroupResponse['members']): LeaveGroupResponse => {
    // v0-2 carry one member and say its error at the top.
    if (!batch) return { throttleTimeMs: 0, errorCode: errorCode || (members[0]?.errorCode ?? 0), members: [] };
    return { throttleTimeMs: 0, errorCode, members };
  };
  if (typeof req.groupId !== 'string' || req.groupId.length === 0) return answer(GROUP_ERRORS.INVALID_GROUP_ID, []);
  if (core.closed) return answer(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE, []);
  const group = core.group(req.groupId, false);
  const results = leaving.map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    errorCode: group === null ? GROUP_ERRORS.UNKNOWN_MEMBER_ID : leaveOne(core, group, m.memberId, m.groupInstanceId),
  }));
  if (group !== null) core.maybeForget(group);
  return answer(GROUP_ERRORS.NONE, results);
}

function leaveOne(core: GroupCore, group: ClassicGroup, memberId: string, groupInstanceId: string | null): number {
  if (group.is('Dead')) return GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE;
  if (memberId === '') {
    // An administrator removing a static member by its instance id.
    const current = groupInstanceId === null ? undefined : group.staticMembers.get(groupInstanceId);
    if (current === undefined) return GROUP_ERRORS.UNKNOWN_MEMBER_ID;
    core.removeMemberAndUpdateGroup(group, group.get(current));
    return GROUP_ERRORS.NONE;
  }
  if (group.pendingMembers.has(memberId)) {
    core.removePendingMember(group, memberId);
    return GROUP_ERRORS.NONE;
  }
  const error = memberError(group, memberId, groupInstanceId);
  if (error !== null) return error;
  core.logger.info(`Kafka group ${group.groupId}: member ${memberId} left.`);
  core.removeMemberAndUpdateGroup(group, group.get(memberId));
  return GROUP_ERRORS.NONE;
}
