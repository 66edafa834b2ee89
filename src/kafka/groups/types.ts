/**
 * The request and response bodies of the group APIs, as the listener's codec decodes and encodes
 * them: Kafka's JSON message-spec field names in lowerCamelCase (`GenerationId` -> `generationId`).
 * Request fields a version does not carry may be missing; the coordinator reads them with the
 * spec's defaults. Responses carry every field of the newest version; the encoder writes only those
 * of the version asked.
 */

/** Who sent a request: the version decides a few answers (JoinGroup v4+ needs a member id first). */
export interface GroupRequestContext {
  apiVersion: number;
  clientId: string | null;
  /** The client's address, as DescribeGroups shows it (Kafka writes "/127.0.0.1"). */
  clientHost: string;
}

export interface JoinGroupRequest {
  groupId: string | null;
  sessionTimeoutMs: number;
  /** v1+; -1 (or missing, v0): the session timeout. */
  rebalanceTimeoutMs?: number;
  memberId: string;
  /** v5+: static membership. */
  groupInstanceId?: string | null;
  protocolType: string;
  protocols: { name: string; metadata: Uint8Array | null }[];
  reason?: string | null;
}

export interface JoinGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  metadata: Uint8Array;
}

export interface JoinGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  /** Null only from v7 (older versions say ''). */
  protocolName: string | null;
  leader: string;
  skipAssignment: boolean;
  memberId: string;
  members: JoinGroupMember[];
}

export interface SyncGroupRequest {
  groupId: string | null;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null;
  protocolType?: string | null;
  protocolName?: string | null;
  assignments: { memberId: string; assignment: Uint8Array | null }[];
}

export interface SyncGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Uint8Array;
}

export interface HeartbeatRequest {
  groupId: string | null;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null;
}

export interface HeartbeatResponse {
  throttleTimeMs: number;
  errorCode: number;
}

export interface LeaveGroupRequest {
  groupId: string | null;
  /** v0-2: the one member leaving. */
  memberId?: string;
  /** v3+: the members leaving (by member id, or by instance id with member id ''). */
  members?: { memberId: string; groupInstanceId?: string | null; reason?: string | null }[];
}

export interface LeaveGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  members: { memberId: string; groupInstanceId: string | null; errorCode: number }[];
}

export interface OffsetCommitRequest {
  groupId: string | null;
  /** v1+ (named GenerationId in older specs). */
  generationIdOrMemberEpoch?: number;
  generationId?: number;
  memberId?: string;
  groupInstanceId?: string | null;
  topics: {
    name: string;
    partitions: {
      partitionIndex: number;
      committedOffset: number;
      committedLeaderEpoch?: number;
      committedMetadata: string | null;
    }[];
  }[];
}

export interface OffsetCommitResponse {
  throttleTimeMs: number;
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
}

/** Topics asked for: null means every committed offset of the group. */
export type OffsetFetchTopics = { name: string; partitionIndexes: number[] }[] | null;

export interface OffsetFetchRequest {
  /** v0-7: one group. */
  groupId?: string | null;
  topics?: OffsetFetchTopics;
  /** v8+: several groups. */
  groups?: { groupId: string | null; topics: OffsetFetchTopics }[];
  requireStable?: boolean;
}

export interface OffsetFetchPartition {
  partitionIndex: number;
  /** -1 when the group has committed nothing for the partition. */
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

export interface OffsetFetchGroup {
  groupId: string;
  topics: { name: string; partitions: OffsetFetchPartition[] }[];
  errorCode: number;
}

export interface OffsetFetchResponse {
  throttleTimeMs: number;
  /** v0-7. */
  topics?: { name: string; partitions: OffsetFetchPartition[] }[];
  errorCode?: number;
  /** v8+. */
  groups?: OffsetFetchGroup[];
}

export interface DescribeGroupsRequest {
  groups: string[];
  includeAuthorizedOperations?: boolean;
}

export interface DescribedGroup {
  errorCode: number;
  groupId: string;
  /** Kafka's words: 'Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead'. */
  groupState: string;
  protocolType: string;
  /** The chosen protocol (the assignor's name for consumers), '' unless the group is Stable. */
  protocolData: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    memberMetadata: Uint8Array;
    memberAssignment: Uint8Array;
  }[];
  authorizedOperations: number;
}

export interface DescribeGroupsResponse {
  throttleTimeMs: number;
  groups: DescribedGroup[];
}

export interface ListGroupsRequest {
  statesFilter?: string[];
  typesFilter?: string[];
}

export interface ListGroupsResponse {
  throttleTimeMs: number;
  errorCode: number;
  groups: { groupId: string; protocolType: string; groupState: string; groupType: string }[];
}

export interface DeleteGroupsRequest {
  groupsNames: string[];
}

export interface DeleteGroupsResponse {
  throttleTimeMs: number;
  results: { groupId: string; errorCode: number }[];
}
