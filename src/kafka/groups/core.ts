/**
 * What moves a group over time, modelled on Kafka's GroupCoordinator (classic protocol): the join
 * phase and its timers (the initial rebalance delay, the rebalance timeout), the session timeouts
 * that remove silent members, the wait for every member's SyncGroup, and the answers to requests
 * parked meanwhile. The request handlers (./join.ts, ./membership.ts, ./offsets.ts) validate a
 * request and call in here.
 *
 * Every parked request is a promise's resolve function held by its member (`joinWaiter`,
 * `syncWaiter`); each code path that drops a member or ends a phase answers them first, and
 * `close` answers every one left, so no request waits forever.
 *
 * Thread-safety: none needed; it runs on the event loop, and no method awaits between reading and
 * changing a group.
 */
import { randomUUID } from 'node:crypto';
import { invariant } from '../../assert.ts';
import type { Logger } from '../../log/index.ts';
import type { ConsumerOffsetStore } from '../../view/index.ts';
import { GROUP_ERRORS } from './errors.ts';
import { ClassicGroup, EMPTY_BYTES, type JoinWaiter, type Member } from './group.ts';
import { type GroupTime, REAL_TIME } from './time.ts';
import type { JoinGroupResponse, SyncGroupResponse } from './types.ts';

export interface GroupCoordinatorOptions {
  /** Where committed offsets are kept (the SQLite store's `consumerOffsets` in `kappa start`). */
  offsets: ConsumerOffsetStore;
  /** Clock and timers (default: real ones); tests pass a ManualTime. */
  time?: GroupTime;
  /**
   * How long the first rebalance of an empty group waits for more members before it completes
   * (Kafka's group.initial.rebalance.delay.ms, 3000 there), extended by that much while members keep
   * arriving, up to the rebalance timeout. Default 300: a group of consumers started together
   * still gets one generation, and a lone consumer starts fast. 0 in tests.
   */
  initialRebalanceDelayMs?: number;
  /** Session timeouts outside [min, max] are refused with INVALID_SESSION_TIMEOUT (Kafka: 6 s, 30 min). */
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  /** Members per group (GROUP_MAX_SIZE_REACHED past it). Default 1000. */
  groupMaxSize?: number;
  /** Groups held in memory with members; a JoinGroup creating one more answers COORDINATOR_NOT_AVAILABLE. Default 10,000. */
  groupsMax?: number;
  /** How long a member that joined for the first time may wait for the rebalance before it is dropped (Kafka: 5 min). */
  newMemberJoinTimeoutMs?: number;
  /** Longest commit metadata string (Kafka's offset.metadata.max.bytes, 4096). */
  offsetMetadataBytesMax?: number;
  /** The number of partitions of a topic, or null when there is no such topic: commits to it are refused. */
  partitionCount?: (topic: string) => Promise<number | null> | number | null;
  logger?: Logger;
}

export const GROUP_DEFAULTS = {
  initialRebalanceDelayMs: 300,
  minSessionTimeoutMs: 6_000,
  maxSessionTimeoutMs: 1_800_000,
  groupMaxSize: 1_000,
  groupsMax: 10_000,
  newMemberJoinTimeoutMs: 300_000,
  offsetMetadataBytesMax: 4_096,
} as const;

export type GroupConfig = { -readonly [K in keyof typeof GROUP_DEFAULTS]: number };

const QUIET: Logger = { info() {}, warn() {} };

export class GroupCore {
  readonly groups = new Map<string, ClassicGroup>();
  readonly time: GroupTime;
  readonly config: GroupConfig;
  readonly logger: Logger;
  closed = false;

  constructor(readonly opts: GroupCoordinatorOptions) {
    this.time = opts.time ?? REAL_TIME;
    this.logger = opts.logger ?? QUIET;
    const config = { ...GROUP_DEFAULTS } as GroupConfig;
    for (const key of Object.keys(GROUP_DEFAULTS) as (keyof GroupConfig)[]) {
      const value = opts[key];
      if (value === undefined) continue;
      invariant(Number.isSafeInteger(value) && value >= 0, `${key} must be a whole number from 0 (got ${value})`);
      config[key] = value;
    }
    invariant(config.minSessionTimeoutMs <= config.maxSessionTimeoutMs, 'minSessionTimeoutMs <= maxSessionTimeoutMs');
    this.config = config;
  }

  now(): number {
    return this.time.now();
  }

  newMemberId(clientId: string, groupInstanceId: string | null): string {
    return `${groupInstanceId ?? clientId}-${randomUUID()}`;
  }

  /** The group, created Empty when `create` and there is room. */
  group(groupId: string, create: boolean): ClassicGroup | null {
    const found = this.groups.get(groupId);
    if (found !== undefined || !create || this.groups.size >= this.config.groupsMax) return found ?? null;
    const group = new ClassicGroup(groupId, this.now());
    this.groups.set(groupId, group);
    return group;
  }

  /** Drops an Empty group nobody is joining from memory (its offsets stay in the store). */
  maybeForget(group: ClassicGroup): void {
    if (group.is('Empty') && group.members.size === 0 && group.pendingMembers.size === 0 && group.joinTimer === null)
      this.groups.delete(group.groupId);
  }

  // ---- answers ----

  joinAnswer(apiVersion: number, fields: Partial<JoinGroupResponse> & { errorCode: number }): JoinGroupResponse {
    const answer: JoinGroupResponse = {
      throttleTimeMs: 0,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: '',
      skipAssignment: false,
      memberId: '',
      members: [],
      ...fields,
    };
    // ProtocolName is nullable from v7 only; older versions say ''.
    if (apiVersion < 7 && answer.protocolName === null) answer.protocolName = '';
    return answer;
  }

  /** The JoinGroup answer of a member once the group has a generation (the leader gets the members). */
  generationAnswer(
    group: ClassicGroup,
    memberId: string,
    apiVersion: number,
    leader = group.leaderId,
  ): JoinGroupResponse {
    return this.joinAnswer(apiVersion, {
      errorCode: GROUP_ERRORS.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: leader ?? '',
      memberId,
      members: group.isLeader(memberId) && leader === group.leaderId ? group.currentMemberMetadata() : [],
    });
  }

  syncAnswer(
    errorCode: number,
    group: ClassicGroup | null = null,
    assignment: Uint8Array = EMPTY_BYTES,
  ): SyncGroupResponse {
    const ok = errorCode === GROUP_ERRORS.NONE && group !== null;
    return {
      throttleTimeMs: 0,
      errorCode,
      protocolType: ok ? group.protocolType : null,
      protocolName: ok ? group.protocolName : null,
      assignment,
    };
  }

  answerJoin(member: Member, response: JoinGroupResponse): void {
    const waiter = member.joinWaiter;
    if (waiter === null) return;
    member.joinWaiter = null;
    waiter.resolve(response);
  }

  answerSync(member: Member, response: SyncGroupResponse): boolean {
    const waiter = member.syncWaiter;
    if (waiter === null) return false;
    member.syncWaiter = null;
    waiter(response);
    return true;
  }

  /** Parks a JoinGroup for `member`; one it had parked before is answered REBALANCE_IN_PROGRESS (it retried). */
  parkJoin(member: Member, waiter: JoinWaiter | null): void {
    if (member.joinWaiter !== null && waiter !== null) {
      this.answerJoin(
        member,
        this.joinAnswer(member.joinWaiter.apiVersion, {
          errorCode: GROUP_ERRORS.REBALANCE_IN_PROGRESS,
          memberId: member.memberId,
        }),
      );
    }
    member.joinWaiter = waiter;
  }

  // ---- sessions ----

  /** The member must show it is alive within `timeoutMs` (a heartbeat, a join, a sync, a commit). */
  armSession(group: ClassicGroup, member: Member, timeoutMs: number): void {
    member.sessionDeadlineMs = this.now() + timeoutMs;
    if (member.sessionTimer !== null && member.sessionTimerAtMs <= member.sessionDeadlineMs) return;
    if (member.sessionTimer !== null) this.time.clear(member.sessionTimer);
    member.sessionTimerAtMs = member.sessionDeadlineMs;
    member.sessionTimer = this.time.set(() => this.onSessionTimer(group, member), timeoutMs);
  }

  heartbeatFrom(group: ClassicGroup, member: Member): void {
    this.armSession(group, member, member.sessionTimeoutMs);
  }

  stopSession(member: Member): void {
    if (member.sessionTimer !== null) this.time.clear(member.sessionTimer);
    member.sessionTimer = null;
    member.sessionTimerAtMs = Infinity;
  }

  private onSessionTimer(group: ClassicGroup, member: Member): void {
    member.sessionTimer = null;
    member.sessionTimerAtMs = Infinity;
    if (group.is('Dead') || group.members.get(member.memberId) !== member) return;
    const remainingMs = member.sessionDeadlineMs - this.now();
    if (remainingMs > 0) {
      this.armSession(group, member, remainingMs);
      return;
    }
    // A member parked in JoinGroup or SyncGroup is alive by Kafka's rule, unless it is new: a new
    // member's JoinGroup may belong to a client that has long gone.
    if (!member.isNew && (member.isAwaitingJoin || member.isAwaitingSync)) {
      this.armSession(group, member, member.sessionTimeoutMs);
      return;
    }
    this.logger.info(`Kafka group ${group.groupId}: member ${member.memberId} timed out and leaves the group.`);
    this.removeMemberAndUpdateGroup(group, member);
  }

  addPendingMember(group: ClassicGroup, memberId: string, timeoutMs: number): void {
    const timer = this.time.set(() => {
      if (!group.pendingMembers.has(memberId)) return;
      group.pendingMembers.delete(memberId);
      if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
      this.maybeForget(group);
    }, timeoutMs);
    group.pendingMembers.set(memberId, timer);
  }

  removePendingMember(group: ClassicGroup, memberId: string): void {
    const timer = group.pendingMembers.get(memberId);
    if (timer !== undefined) this.time.clear(timer);
    group.remove(memberId);
    if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
  }

  // ---- membership changes ----

  addMemberAndRebalance(group: ClassicGroup, member: Member, waiter: JoinWaiter): void {
    member.isNew = true;
    if (group.is('PreparingRebalance') && group.generationId === 0) group.newMemberAdded = true;
    const pendingTimer = group.pendingMembers.get(member.memberId);
    if (pendingTimer !== undefined) this.time.clear(pendingTimer);
    group.add(member);
    member.joinWaiter = waiter;
    // A new member cannot heartbeat until its JoinGroup returns, and a client that gave up may
    // retry as another member: its JoinGroup is dropped after newMemberJoinTimeoutMs.
    this.armSession(group, member, this.config.newMemberJoinTimeoutMs);
    this.maybePrepareRebalance(group, `member ${member.memberId} joined`);
  }

  updateMemberAndRebalance(group: ClassicGroup, member: Member, join: JoinUpdate, why: string): void {
    group.updateProtocols(member, join.protocols);
    member.rebalanceTimeoutMs = join.rebalanceTimeoutMs;
    member.sessionTimeoutMs = join.sessionTimeoutMs;
    this.parkJoin(member, join.waiter);
    this.maybePrepareRebalance(group, why);
  }

  /** Removes a member, answering its parked requests UNKNOWN_MEMBER_ID, and rebalances the rest. */
  removeMemberAndUpdateGroup(group: ClassicGroup, member: Member): void {
    this.dropMember(group, member);
    switch (group.state) {
      case 'Stable':
      case 'CompletingRebalance':
        this.maybePrepareRebalance(group, `member ${member.memberId} left`);
        break;
      case 'PreparingRebalance':
        this.tryCompleteJoin(group);
        break;
      default:
        break;
    }
    this.maybeForget(group);
  }

  /** Forgets a member after answering what it has parked; no rebalance. */
  dropMember(group: ClassicGroup, member: Member): void {
    const unknown = GROUP_ERRORS.UNKNOWN_MEMBER_ID;
    if (member.joinWaiter !== null)
      this.answerJoin(member, this.joinAnswer(member.joinWaiter.apiVersion, { errorCode: unknown }));
    this.answerSync(member, this.syncAnswer(unknown));
    this.stopSession(member);
    group.remove(member.memberId);
  }

  // ---- the join phase ----

  maybePrepareRebalance(group: ClassicGroup, why: string): void {
    if (group.canRebalance()) this.prepareRebalance(group, why);
  }

  prepareRebalance(group: ClassicGroup, why: string): void {
    if (group.is('CompletingRebalance')) this.resetAndPropagateError(group, GROUP_ERRORS.REBALANCE_IN_PROGRESS);
    this.clearSyncTimer(group);
    group.pendingSyncMembers.clear();
    const wasEmpty = group.is('Empty');
    group.transitionTo('PreparingRebalance', this.now());
    this.logger.info(`Kafka group ${group.groupId}: rebalancing (generation ${group.generationId}): ${why}.`);
    this.clearJoinTimer(group);
    if (wasEmpty) {
      const delayMs = this.config.initialRebalanceDelayMs;
      this.scheduleInitialDelay(group, delayMs, Math.max(group.rebalanceTimeoutMs() - delayMs, 0));
    } else {
      this.scheduleJoinTimeout(group);
      this.tryCompleteJoin(group);
    }
  }

  /** Kafka's InitialDelayedJoin: wait `delayMs`; if members kept coming, wait again while time remains. */
  private scheduleInitialDelay(group: ClassicGroup, delayMs: number, remainingMs: number): void {
    group.initialDelay = true;
    group.joinTimer = this.time.set(() => {
      group.joinTimer = null;
      if (!group.is('PreparingRebalance')) return;
      if (group.newMemberAdded && remainingMs > 0) {
        group.newMemberAdded = false;
        const next = Math.min(this.config.initialRebalanceDelayMs, remainingMs);
        this.scheduleInitialDelay(group, next, Math.max(remainingMs - next, 0));
        return;
      }
      group.initialDelay = false;
      this.completeJoin(group);
    }, delayMs);
  }

  private scheduleJoinTimeout(group: ClassicGroup): void {
    group.initialDelay = false;
    group.joinTimer = this.time.set(() => {
      group.joinTimer = null;
      if (group.is('PreparingRebalance')) this.completeJoin(group);
    }, group.rebalanceTimeoutMs());
  }

  /** Completes the join phase now if every known member has rejoined (never during the initial delay). */
  tryCompleteJoin(group: ClassicGroup): void {
    if (!group.is('PreparingRebalance') || group.initialDelay || !group.hasAllMembersJoined()) return;
    this.clearJoinTimer(group);
    this.completeJoin(group);
  }

  /**
   * The join phase ends: dynamic members that did not rejoin are removed, the group moves to its
   * next generation, and every parked JoinGroup is answered (the leader's with the members).
   */
  completeJoin(group: ClassicGroup): void {
    for (const m of [...group.members.values()]) {
      if (m.isAwaitingJoin || m.groupInstanceId !== null) continue;
      this.logger.info(`Kafka group ${group.groupId}: member ${m.memberId} did not rejoin in time and leaves.`);
      this.dropMember(group, m);
    }
    if (!group.maybeElectNewJoinedLeader() && group.members.size > 0) {
      // Only static members that have not rejoined are left: wait another rebalance timeout
      // (their session timeouts remove them meanwhile).
      this.scheduleJoinTimeout(group);
      return;
    }
    group.initNextGeneration(this.now());
    if (group.is('Empty')) {
      this.logger.info(`Kafka group ${group.groupId}: generation ${group.generationId} is empty.`);
      this.maybeForget(group);
      return;
    }
    this.logger.info(
      `Kafka group ${group.groupId}: generation ${group.generationId} with ${group.members.size} member(s), ` +
        `protocol ${group.protocolName}.`,
    );
    for (const m of group.members.values()) {
      if (m.joinWaiter !== null) this.answerJoin(m, this.generationAnswer(group, m.memberId, m.joinWaiter.apiVersion));
      m.isNew = false;
      this.heartbeatFrom(group, m);
      group.pendingSyncMembers.add(m.memberId);
    }
    this.schedulePendingSync(group);
  }

  // ---- the sync phase ----

  private schedulePendingSync(group: ClassicGroup): void {
    this.clearSyncTimer(group);
    const generation = group.generationId;
    group.syncTimer = this.time.set(() => {
      group.syncTimer = null;
      if (generation !== group.generationId || !(group.is('CompletingRebalance') || group.is('Stable'))) return;
      if (group.pendingSyncMembers.size === 0) return;
      const missing = [...group.pendingSyncMembers];
      for (const id of missing) {
        const m = group.members.get(id);
        if (m !== undefined) this.dropMember(group, m);
      }
      this.prepareRebalance(group, `member(s) ${missing.join(', ')} never sent SyncGroup`);
    }, group.rebalanceTimeoutMs());
  }

  syncReceived(group: ClassicGroup, memberId: string): void {
    group.pendingSyncMembers.delete(memberId);
    if (group.pendingSyncMembers.size === 0) this.clearSyncTimer(group);
  }

  /** The leader's assignment: every member gets its part (missing ones an empty one) and the group is Stable. */
  setAndPropagateAssignment(group: ClassicGroup, assignment: ReadonlyMap<string, Uint8Array>): void {
    invariant(group.is('CompletingRebalance'), 'an assignment is propagated while completing a rebalance');
    for (const m of group.members.values()) m.assignment = assignment.get(m.memberId) ?? EMPTY_BYTES;
    for (const m of group.members.values()) {
      if (this.answerSync(m, this.syncAnswer(GROUP_ERRORS.NONE, group, m.assignment))) this.heartbeatFrom(group, m);
    }
    group.transitionTo('Stable', this.now());
  }

  private resetAndPropagateError(group: ClassicGroup, errorCode: number): void {
    for (const m of group.members.values()) {
      m.assignment = EMPTY_BYTES;
      if (this.answerSync(m, this.syncAnswer(errorCode))) this.heartbeatFrom(group, m);
    }
  }

  private clearJoinTimer(group: ClassicGroup): void {
    if (group.joinTimer !== null) this.time.clear(group.joinTimer);
    group.joinTimer = null;
    group.initialDelay = false;
  }

  private clearSyncTimer(group: ClassicGroup): void {
    if (group.syncTimer !== null) this.time.clear(group.syncTimer);
    group.syncTimer = null;
  }

  // ---- shutdown ----

  /** Every group goes Dead; every parked request is answered NOT_COORDINATOR (clients look for the coordinator again). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const notCoordinator = GROUP_ERRORS.NOT_COORDINATOR;
    for (const group of this.groups.values()) {
      this.clearJoinTimer(group);
      this.clearSyncTimer(group);
      for (const timer of group.pendingMembers.values()) this.time.clear(timer);
      for (const m of group.members.values()) {
        if (m.joinWaiter !== null)
          this.answerJoin(
            m,
            this.joinAnswer(m.joinWaiter.apiVersion, { errorCode: notCoordinator, memberId: m.memberId }),
          );
        this.answerSync(m, this.syncAnswer(notCoordinator));
        this.stopSession(m);
      }
      group.transitionTo('Dead', this.now());
    }
    this.groups.clear();
  }
}

/** What a rejoining member brings: its protocols, timeouts and the JoinGroup to park. */
export interface JoinUpdate {
  protocols: Member['protocols'];
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  waiter: JoinWaiter | null;
}
