/**
 * One consumer group of the classic protocol and its members: the data Kafka's `GroupMetadata` and
 * `MemberMetadata` hold (core/src/main/scala/kafka/coordinator/group), and the rules that read it
 * alone. What happens over time (timers, rebalances, waiting requests) is in ./core.ts.
 *
 * States and their transitions (Kafka's):
 *   Empty                no members (or only offsets)        -> PreparingRebalance (a member joins)
 *   PreparingRebalance   waiting for members to (re)join     -> CompletingRebalance, Empty
 *   CompletingRebalance  waiting for the leader's assignment -> Stable, PreparingRebalance
 *   Stable               every member has its assignment     -> PreparingRebalance
 *   Dead                 the coordinator closed, or the group was deleted; final
 *
 * Invariants: the leader, when set, is a member; a static member's instance id maps to its member
 * id in `staticMembers`; `supportedProtocols` counts, per protocol name, the members that name it.
 */
import { InvariantError, invariant } from '../../assert.ts';
import type { JoinGroupMember, JoinGroupResponse, SyncGroupResponse } from './types.ts';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

const VALID_PREVIOUS: Record<GroupState, readonly GroupState[]> = {
  PreparingRebalance: ['Stable', 'CompletingRebalance', 'Empty'],
  CompletingRebalance: ['PreparingRebalance'],
  Stable: ['CompletingRebalance'],
  Dead: ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'],
  Empty: ['PreparingRebalance'],
};

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

export interface Protocol {
  name: string;
  metadata: Uint8Array;
}

/** A JoinGroup request parked until the rebalance completes; `apiVersion` shapes its answer. */
export interface JoinWaiter {
  resolve(response: JoinGroupResponse): void;
  apiVersion: number;
}

export class Member {
  assignment: Uint8Array = EMPTY_BYTES;
  joinWaiter: JoinWaiter | null = null;
  syncWaiter: ((response: SyncGroupResponse) => void) | null = null;
  /** A member added by this rebalance: it cannot heartbeat yet, so it has its own join deadline. */
  isNew = false;
  /** The member is removed if nothing shows it alive by then (see GroupCore.armSession). */
  sessionDeadlineMs = 0;
  sessionTimer: unknown = null;
  sessionTimerAtMs = Infinity;

  constructor(
    public memberId: string,
    readonly groupInstanceId: string | null,
    readonly clientId: string,
    readonly clientHost: string,
    public rebalanceTimeoutMs: number,
    public sessionTimeoutMs: number,
    readonly protocolType: string,
    public protocols: Protocol[],
  ) {}

  get isAwaitingJoin(): boolean {
    return this.joinWaiter !== null;
  }

  get isAwaitingSync(): boolean {
    return this.syncWaiter !== null;
  }

  metadata(protocol: string): Uint8Array {
    const found = this.protocols.find((p) => p.name === protocol);
    if (found === undefined) throw new InvariantError(`member ${this.memberId} does not support protocol ${protocol}`);
    return found.metadata;
  }

  /** Same protocols, same order, same metadata bytes. */
  matches(protocols: readonly Protocol[]): boolean {
    if (protocols.length !== this.protocols.length) return false;
    return protocols.every(
      (p, i) => p.name === this.protocols[i].name && bytesEqual(p.metadata, this.protocols[i].metadata),
    );
  }

  /** The member's first choice among `candidates` (its protocols are in order of preference). */
  vote(candidates: ReadonlySet<string>): string {
    const found = this.protocols.find((p) => candidates.has(p.name));
    if (found === undefined)
      throw new InvariantError(`member ${this.memberId} supports none of the candidate protocols`);
    return found.name;
  }
}

export class ClassicGroup {
  state: GroupState = 'Empty';
  stateSinceMs: number;
  protocolType: string | null = null;
  protocolName: string | null = null;
  generationId = 0;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** Static membership: group instance id -> member id. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, not yet back; each with its expiry timer. */
  readonly pendingMembers = new Map<string, unknown>();
  /** Members of this generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  private readonly supportedProtocols = new Map<string, number>();
  /** A member joined during the initial delay: the delay may be extended (InitialDelayedJoin). */
  newMemberAdded = false;
  /** The timer that completes the join phase (the rebalance timeout or the initial delay). */
  joinTimer: unknown = null;
  /** True while the join phase waits out group.initial.rebalance.delay.ms: it never completes early. */
  initialDelay = false;
  /** The timer that removes members who never sent SyncGroup. */
  syncTimer: unknown = null;

  constructor(
    readonly groupId: string,
    nowMs: number,
  ) {
    this.stateSinceMs = nowMs;
  }

  is(state: GroupState): boolean {
    return this.state === state;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  get(memberId: string): Member {
    const member = this.members.get(memberId);
    if (member === undefined) throw new InvariantError(`group ${this.groupId} has no member ${memberId}`);
    return member;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  transitionTo(state: GroupState, nowMs: number): void {
    invariant(
      VALID_PREVIOUS[state].includes(this.state),
      () => `group ${this.groupId} cannot go from ${this.state} to ${state}`,
    );
    this.state = state;
    this.stateSinceMs = nowMs;
  }

  canRebalance(): boolean {
    return VALID_PREVIOUS.PreparingRebalance.includes(this.state);
  }

  add(member: Member): void {
    if (member.groupInstanceId !== null) {
      invariant(!this.staticMembers.has(member.groupInstanceId), 'a static member is added once');
      this.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    if (this.members.size === 0) this.protocolType = member.protocolType;
    invariant(this.protocolType === member.protocolType, 'members of a group share its protocol type');
    if (this.leaderId === null) this.leaderId = member.memberId;
    this.members.set(member.memberId, member);
    this.countProtocols(member, 1);
    this.pendingMembers.delete(member.memberId);
  }

  /** Forgets the member (its waiting requests are the caller's to answer first). */
  remove(memberId: string): void {
    const member = this.members.get(memberId);
    if (member !== undefined) {
      this.members.delete(memberId);
      this.countProtocols(member, -1);
      if (member.groupInstanceId !== null) this.staticMembers.delete(member.groupInstanceId);
    }
    if (this.isLeader(memberId)) this.leaderId = this.members.keys().next().value ?? null;
    this.pendingMembers.delete(memberId);
    this.pendingSyncMembers.delete(memberId);
  }

  updateProtocols(member: Member, protocols: Protocol[]): void {
    this.countProtocols(member, -1);
    member.protocols = protocols;
    this.countProtocols(member, 1);
  }

  /** A static member came back with a new member id: the same member under the new id. */
  replaceStaticMember(groupInstanceId: string, oldMemberId: string, newMemberId: string): Member {
    const member = this.get(oldMemberId);
    this.members.delete(oldMemberId);
    member.memberId = newMemberId;
    this.members.set(newMemberId, member);
    if (this.isLeader(oldMemberId)) this.leaderId = newMemberId;
    this.staticMembers.set(groupInstanceId, newMemberId);
    return member;
  }

  hasAllMembersJoined(): boolean {
    if (this.pendingMembers.size > 0) return false;
    for (const m of this.members.values()) if (!m.isAwaitingJoin) return false;
    return true;
  }

  awaitingJoinCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.isAwaitingJoin) n++;
    return n;
  }

  /** The longest rebalance timeout any member asked for: how long the join phase waits. */
  rebalanceTimeoutMs(): number {
    let ms = 0;
    for (const m of this.members.values()) ms = Math.max(ms, m.rebalanceTimeoutMs);
    return ms;
  }

  /**
   * If the leader has not rejoined, the first member that has becomes leader. False when no
   * member rejoined (or there is no leader at all).
   */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    if (this.get(this.leaderId).isAwaitingJoin) return true;
    for (const m of this.members.values()) {
      if (m.isAwaitingJoin) {
        this.leaderId = m.memberId;
        return true;
      }
    }
    return false;
  }

  /** Whether a member with these protocols may join: the same type, and a protocol every member supports. */
  supportsProtocols(protocolType: string, protocols: readonly Protocol[]): boolean {
    if (this.is('Empty')) return protocolType.length > 0 && protocols.length > 0;
    return (
      this.protocolType === protocolType &&
      protocols.some((p) => (this.supportedProtocols.get(p.name) ?? 0) === this.members.size)
    );
  }

  /** Kafka's choice: among the protocols every member supports, the one most members list first. */
  selectProtocol(): string {
    invariant(this.members.size > 0, 'a protocol is selected for a group with members');
    const candidates = new Set<string>();
    for (const [name, count] of this.supportedProtocols) if (count === this.members.size) candidates.add(name);
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const choice = m.vote(candidates);
      votes.set(choice, (votes.get(choice) ?? 0) + 1);
    }
    let best = '';
    let bestVotes = -1;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    return best;
  }

  /** Next generation: CompletingRebalance with the chosen protocol, or Empty when nobody is left. */
  initNextGeneration(nowMs: number): void {
    this.generationId++;
    if (this.members.size > 0) {
      this.protocolName = this.selectProtocol();
      this.transitionTo('CompletingRebalance', nowMs);
    } else {
      this.protocolName = null;
      this.transitionTo('Empty', nowMs);
    }
    this.pendingSyncMembers.clear();
  }

  /** What the leader gets in its JoinGroup answer: every member with its metadata for the chosen protocol. */
  currentMemberMetadata(): JoinGroupMember[] {
    invariant(this.protocolName !== null, 'member metadata is read once a protocol is chosen');
    const protocol = this.protocolName;
    return [...this.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadata(protocol),
    }));
  }

  private countProtocols(member: Member, delta: number): void {
    for (const p of member.protocols)
      this.supportedProtocols.set(p.name, (this.supportedProtocols.get(p.name) ?? 0) + delta);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
