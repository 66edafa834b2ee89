/**
 * JoinGroup, as Kafka's GroupCoordinator.handleJoinGroup answers it (classic protocol):
 *
 * - an empty member id from a v4+ client gets MEMBER_ID_REQUIRED and a new member id to come back
 *   with (a "pending" member, dropped if it does not return within its session timeout);
 * - a new member, or a known one whose protocols changed, or the leader, starts a rebalance (or
 *   joins the one under way) and its request waits until the join phase completes;
 * - a follower that rejoins with unchanged protocols while the group is Stable or completing its
 *   rebalance gets the current generation at once (cooperative-sticky clients rejoin a second
 *   time after revoking: they start the second rebalance through the leader or changed metadata);
 * - static members (groupInstanceId, v5+) keep their place across restarts: a returning instance
 *   replaces its old member id, and a request from the replaced one gets FENCED_INSTANCE_ID.
 */
import { GROUP_ERRORS } from './errors.ts';
import type { GroupCore } from './core.ts';
import { type ClassicGroup, EMPTY_BYTES, Member, type Protocol } from './group.ts';
import type { GroupRequestContext, JoinGroupRequest, JoinGroupResponse } from './types.ts';

/** JoinGroup: resolves at once for errors and known generations, else when the join phase completes. */
export async function joinGroup(
  core: GroupCore,
  req: JoinGroupRequest,
  ctx: GroupRequestContext,
): Promise<JoinGroupResponse> {
  const memberId = req.memberId ?? '';
  const fail = (errorCode: number, id = memberId): JoinGroupResponse =>
    core.joinAnswer(ctx.apiVersion, { errorCode, memberId: id });
  if (typeof req.groupId !== 'string' || req.groupId.length === 0) return fail(GROUP_ERRORS.INVALID_GROUP_ID);
  if (core.closed) return fail(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  const sessionTimeoutMs = req.sessionTimeoutMs;
  if (
    !Number.isSafeInteger(sessionTimeoutMs) ||
    sessionTimeoutMs < core.config.minSessionTimeoutMs ||
    sessionTimeoutMs > core.config.maxSessionTimeoutMs
  )
    return fail(GROUP_ERRORS.INVALID_SESSION_TIMEOUT);
  const rebalanceTimeoutMs =
    req.rebalanceTimeoutMs === undefined || req.rebalanceTimeoutMs < 0 ? sessionTimeoutMs : req.rebalanceTimeoutMs;
  const isUnknownMember = memberId === '';
  const group = core.group(req.groupId, isUnknownMember);
  if (group === null)
    return fail(isUnknownMember ? GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE : GROUP_ERRORS.UNKNOWN_MEMBER_ID);
  if (!acceptJoiningMember(core, group, memberId)) {
    core.maybeForget(group);
    return fail(GROUP_ERRORS.GROUP_MAX_SIZE_REACHED, '');
  }
  const join: Join = {
    ctx,
    groupInstanceId: req.groupInstanceId ?? null,
    protocolType: req.protocolType ?? '',
    protocols: distinctProtocols(req.protocols ?? []),
    sessionTimeoutMs,
    rebalanceTimeoutMs,
  };
  const answer = new Promise<JoinGroupResponse>((resolve) => {
    const waiter = { resolve, apiVersion: ctx.apiVersion };
    if (isUnknownMember) newMemberJoin(core, group, join, waiter);
    else currentMemberJoin(core, group, memberId, join, waiter);
  });
  core.tryCompleteJoin(group);
  core.maybeForget(group);
  return answer;
}

interface Join {
  ctx: GroupRequestContext;
  groupInstanceId: string | null;
  protocolType: string;
  protocols: Protocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
}

type Waiter = { resolve(r: JoinGroupResponse): void; apiVersion: number };

function acceptJoiningMember(core: GroupCore, group: ClassicGroup, memberId: string): boolean {
  const max = core.config.groupMaxSize;
  // Member ids handed out with MEMBER_ID_REQUIRED are held until they come back or time out: bound them too.
  if (memberId === '' && group.pendingMembers.size >= max) return false;
  switch (group.state) {
    case 'Empty':
    case 'Dead':
      return true;
    case 'PreparingRebalance':
      return (group.has(memberId) && group.get(memberId).isAwaitingJoin) || group.awaitingJoinCount() < max;
    default:
      return group.has(memberId) || group.members.size < max;
  }
}

function newMemberJoin(core: GroupCore, group: ClassicGroup, join: Join, waiter: Waiter): void {
  const fail = (errorCode: number, memberId = ''): void =>
    waiter.resolve(core.joinAnswer(waiter.apiVersion, { errorCode, memberId }));
  if (group.is('Dead')) return fail(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  if (!group.supportsProtocols(join.protocolType, join.protocols))
    return fail(GROUP_ERRORS.INCONSISTENT_GROUP_PROTOCOL);
  const newMemberId = core.newMemberId(join.ctx.clientId ?? '', join.groupInstanceId);
  if (join.groupInstanceId !== null) {
    const oldMemberId = group.staticMembers.get(join.groupInstanceId);
    if (oldMemberId !== undefined) return replaceStaticMember(core, group, oldMemberId, newMemberId, join, waiter);
  } else if (join.ctx.apiVersion >= 4) {
    // Kafka asks a v4+ client to come back with a member id, so a client that retries after a
    // lost answer does not leave a second, phantom member in the group.
    core.addPendingMember(group, newMemberId, join.sessionTimeoutMs);
    return fail(GROUP_ERRORS.MEMBER_ID_REQUIRED, newMemberId);
  }
  core.addMemberAndRebalance(group, memberOf(newMemberId, join), waiter);
}

function memberOf(memberId: string, join: Join): Member {
  return new Member(
    memberId,
    join.groupInstanceId,
    join.ctx.clientId ?? '',
    join.ctx.clientHost,
    join.rebalanceTimeoutMs,
    join.sessionTimeoutMs,
    join.protocolType,
    join.protocols,
  );
}

/** Kafka's validateCurrentMember: the instance id (if any) must map to this member id, which must be a member. */
export function memberError(group: ClassicGroup, memberId: string, groupInstanceId: string | null): number | null {
  if (groupInstanceId !== null) {
    const current = group.staticMembers.get(groupInstanceId);
    if (current === undefined) return GROUP_ERRORS.UNKNOWN_MEMBER_ID;
    if (current !== memberId) return GROUP_ERRORS.FENCED_INSTANCE_ID;
    return null;
  }
  return group.has(memberId) ? null : GROUP_ERRORS.UNKNOWN_MEMBER_ID;
}

function currentMemberJoin(core: GroupCore, group: ClassicGroup, memberId: string, join: Join, waiter: Waiter): void {
  const fail = (errorCode: number): void => waiter.resolve(core.joinAnswer(waiter.apiVersion, { errorCode, memberId }));
  if (group.is('Dead')) return fail(GROUP_ERRORS.COORDINATOR_NOT_AVAILABLE);
  if (!group.supportsProtocols(join.protocolType, join.protocols))
    return fail(GROUP_ERRORS.INCONSISTENT_GROUP_PROTOCOL);
  if (group.pendingMembers.has(memberId)) {
    // A pending member is never static (it got its id from MEMBER_ID_REQUIRED).
    if (join.groupInstanceId !== null) return fail(GROUP_ERRORS.UNKNOWN_MEMBER_ID);
    return core.addMemberAndRebalance(group, memberOf(memberId, join), waiter);
  }
  const error = memberError(group, memberId, join.groupInstanceId);
  if (error !== null) return fail(error);
  const member = group.get(memberId);
  const update = {
    protocols: join.protocols,
    rebalanceTimeoutMs: join.rebalanceTimeoutMs,
    sessionTimeoutMs: join.sessionTimeoutMs,
    waiter,
  };
  switch (group.state) {
    case 'PreparingRebalance':
      return core.updateMemberAndRebalance(group, member, update, `member ${memberId} rejoined`);
    case 'CompletingRebalance':
      // The same metadata: it lost the first answer; give it again.
      if (member.matches(join.protocols))
        return waiter.resolve(core.generationAnswer(group, memberId, waiter.apiVersion));
      return core.updateMemberAndRebalance(group, member, update, `member ${memberId} changed its metadata`);
    case 'Stable':
      // The leader rejoining forces a rebalance: that is how a client asks for one (new topics,
      // the second round of a cooperative rebalance).
      if (group.isLeader(memberId))
        return core.updateMemberAndRebalance(group, member, update, `leader ${memberId} rejoined`);
      if (!member.matches(join.protocols))
        return core.updateMemberAndRebalance(group, member, update, `member ${memberId} changed its metadata`);
      core.heartbeatFrom(group, member);
      return waiter.resolve(core.generationAnswer(group, memberId, waiter.apiVersion));
    default:
      return fail(GROUP_ERRORS.UNKNOWN_MEMBER_ID);
  }
}

/** A static member came back with no member id: it takes its old place under a new id. */
function replaceStaticMember(
  core: GroupCore,
  group: ClassicGroup,
  oldMemberId: string,
  newMemberId: string,
  join: Join,
  waiter: Waiter,
): void {
  const instanceId = join.groupInstanceId as string;
  const currentLeader = group.leaderId;
  const old = group.get(oldMemberId);
  // Whoever still waits under the old id is a duplicate of this instance: fence it.
  if (old.joinWaiter !== null)
    core.answerJoin(
      old,
      core.joinAnswer(old.joinWaiter.apiVersion, { errorCode: GROUP_ERRORS.FENCED_INSTANCE_ID, memberId: oldMemberId }),
    );
  core.answerSync(old, core.syncAnswer(GROUP_ERRORS.FENCED_INSTANCE_ID));
  const member = group.replaceStaticMember(instanceId, oldMemberId, newMemberId);
  core.heartbeatFrom(group, member);
  group.updateProtocols(member, join.protocols);
  member.rebalanceTimeoutMs = join.rebalanceTimeoutMs;
  member.sessionTimeoutMs = join.sessionTimeoutMs;
  member.joinWaiter = waiter;
  switch (group.state) {
    case 'Stable': {
      if (group.protocolName !== group.selectProtocol()) {
        core.maybePrepareRebalance(group, `static member ${instanceId} rejoined with other protocols`);
        return;
      }
      // Nothing changes for the group: the instance gets the current generation. From v9 the
      // leader is told to skip the assignment; before, the old leader id keeps it from assigning.
      const skip = waiter.apiVersion >= 9;
      const answer = skip
        ? {
            ...core.generationAnswer(group, newMemberId, waiter.apiVersion),
            skipAssignment: group.isLeader(newMemberId),
          }
        : core.generationAnswer(group, newMemberId, waiter.apiVersion, currentLeader);
      core.answerJoin(member, answer);
      return;
    }
    case 'CompletingRebalance':
      // The leader may already be assigning to the old id: start over.
      core.prepareRebalance(group, `static member ${instanceId} rejoined during the sync phase`);
      return;
    default:
      // PreparingRebalance: the member waits with the others.
      return;
  }
}

/** A member that lists a protocol twice keeps the first (Kafka's request map keys by name). */
function distinctProtocols(protocols: JoinGroupRequest['protocols']): Protocol[] {
  const seen = new Set<string>();
  const out: Protocol[] = [];
  for (const p of protocols) {
    if (typeof p?.name !== 'string' || seen.has(p.name)) continue;
    seen.add(p.name);
    out.push({ name: p.name, metadata: p.metadata ?? EMPTY_BYTES });
  }
  return out;
}
