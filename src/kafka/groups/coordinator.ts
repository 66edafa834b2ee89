/**
 * The consumer-group coordinator of Kappa's Kafka listener: Kafka's classic group protocol
 * (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with generations, rebalances and session
 * timeouts, and committed offsets (OffsetCommit, OffsetFetch) kept durably in a
 * ConsumerOffsetStore. Modelled on Kafka's GroupCoordinator and GroupMetadata
 * (core/src/main/scala/kafka/coordinator/group); the differences are written where they are.
 *
 * The listener's handlers call one method per API with the decoded request body and encode what it
 * returns. JoinGroup resolves when the rebalance's join phase completes, and a follower's SyncGroup
 * when the leader's assignment arrives; every other call answers at once (or after the store).
 * Assignors (range, roundrobin, cooperative-sticky) run in the group's leader, in the client: the
 * coordinator picks the protocol every member supports by the members' votes and relays the bytes.
 *
 * What is not kept across a restart: group membership and generations (Kafka keeps them in
 * __consumer_offsets). After a restart, members' heartbeats get UNKNOWN_MEMBER_ID and they rejoin;
 * their committed offsets are there.
 *
 * `close()` answers every parked request (NOT_COORDINATOR) and stops every timer.
 */
import type { ConsumerOffsetStore } from '../../view/index.ts';
import { GroupCore, type GroupCoordinatorOptions } from './core.ts';
import { type GroupOverview, describeGroups, listGroups, overviewAll } from './describe.ts';
import { joinGroup } from './join.ts';
import { heartbeat, leaveGroup, syncGroup } from './membership.ts';
import { deleteGroups, offsetCommit, offsetFetch } from './offsets.ts';
import type {
  DeleteGroupsResponse,
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  GroupRequestContext,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from './types.ts';

export class GroupCoordinator {
  private readonly core: GroupCore;

  constructor(opts: GroupCoordinatorOptions) {
    this.core = new GroupCore(opts);
  }

  /** The store the committed offsets are kept in. */
  get offsets(): ConsumerOffsetStore {
    return this.core.opts.offsets;
  }

  joinGroup(req: JoinGroupRequest, ctx: GroupRequestContext): Promise<JoinGroupResponse> {
    return joinGroup(this.core, req, ctx);
  }

  syncGroup(req: SyncGroupRequest, _ctx?: GroupRequestContext): Promise<SyncGroupResponse> {
    return syncGroup(this.core, req);
  }

  heartbeat(req: HeartbeatRequest, _ctx?: GroupRequestContext): HeartbeatResponse {
    return heartbeat(this.core, req);
  }

  leaveGroup(req: LeaveGroupRequest, ctx: GroupRequestContext): LeaveGroupResponse {
    return leaveGroup(this.core, req, ctx);
  }

  offsetCommit(req: OffsetCommitRequest, _ctx?: GroupRequestContext): Promise<OffsetCommitResponse> {
    return offsetCommit(this.core, req);
  }

  offsetFetch(req: OffsetFetchRequest, ctx: GroupRequestContext): Promise<OffsetFetchResponse> {
    return offsetFetch(this.core, req, ctx);
  }

  describeGroups(req: DescribeGroupsRequest, _ctx?: GroupRequestContext): Promise<DescribeGroupsResponse> {
    return describeGroups(this.core, req);
  }

  listGroups(req: ListGroupsRequest, _ctx?: GroupRequestContext): Promise<ListGroupsResponse> {
    return listGroups(this.core, req);
  }

  /** DeleteGroups (API 42): the body's `groupsNames`. */
  deleteGroups(groupIds: readonly string[]): Promise<DeleteGroupsResponse> {
    return deleteGroups(this.core, groupIds);
  }

  /** Every group: live ones with members, state and protocol, and those known only by committed offsets. */
  overview(): Promise<GroupOverview[]> {
    return overviewAll(this.core);
  }

  /** Answers every parked request (NOT_COORDINATOR), stops every timer; later requests get COORDINATOR_NOT_AVAILABLE. */
  close(): void {
    this.core.close();
  }
}
