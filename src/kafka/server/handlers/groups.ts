/**
 * The consumer-group APIs (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups), handed to the group coordinator (src/kafka/groups), which takes
 * and returns the decoded bodies. What the listener adds is authorization:
 * - tokens carry no group scopes, so any group API needs a token with some consume:<topic> scope
 *   (GROUP_AUTHORIZATION_FAILED otherwise): a token that may only produce cannot join groups;
 * - OffsetCommit and OffsetFetch need consume:<topic> per topic: the topics the token may not read
 *   get TOPIC_AUTHORIZATION_FAILED and the coordinator never sees them; an OffsetFetch of "every
 *   topic" shows only those the token may read.
 */
import type { GroupCoordinator } from '../../groups/index.ts';
import type {
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchGroup,
  OffsetFetchRequest,
  OffsetFetchResponse,
  OffsetFetchTopics,
} from '../../groups/index.ts';
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';

/** What the handlers use of the coordinator. */
export type GroupsPort = Pick<
  GroupCoordinator,
  | 'joinGroup'
  | 'syncGroup'
  | 'heartbeat'
  | 'leaveGroup'
  | 'offsetCommit'
  | 'offsetFetch'
  | 'describeGroups'
  | 'listGroups'
  | 'deleteGroups'
>;

const DENIED = ERRORS.GROUP_AUTHORIZATION_FAILED;
const EMPTY = Buffer.alloc(0);

function groupsOf(ctx: RequestContext): GroupsPort {
  return ctx.deps.groups!;
}

function groupContext(ctx: RequestContext): { apiVersion: number; clientId: string | null; clientHost: string } {
  return {
    apiVersion: ctx.header.apiVersion,
    clientId: ctx.header.clientId,
    clientHost: `/${ctx.session.remoteAddress}`,
  };
}

const mayUseGroups = (ctx: RequestContext): boolean => ctx.allowedAny('consume:');

/** A handler for an API whose only authorization is "may use groups". */
function simple(
  key: number,
  maxVersion: number,
  call: (groups: GroupsPort, body: never, ctx: RequestContext) => Promise<object> | object,
  errorBody: (body: never, errorCode: number, apiVersion: number) => object,
): Handler {
  return {
    key,
    minVersion: 0,
    maxVersion,
    async handle(ctx, body) {
      if (!mayUseGroups(ctx)) return errorBody(body as never, DENIED, ctx.header.apiVersion);
      return asBuffers(await call(groupsOf(ctx), body as never, ctx));
    },
    errorBody: (body, errorCode, apiVersion) => errorBody(body as never, errorCode, apiVersion),
  };
}

const joinGroup = simple(
  API_KEYS.JoinGroup,
  9,
  (g, body, ctx) => g.joinGroup(body, groupContext(ctx)),
  (body: { memberId?: string }, errorCode, apiVersion) => ({
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: apiVersion >= 7 ? null : '',
    leader: '',
    skipAssignment: false,
    memberId: body.memberId ?? '',
    members: [],
  }),
);

const syncGroup = simple(
  API_KEYS.SyncGroup,
  5,
  (g, body, ctx) => g.syncGroup(body, groupContext(ctx)),
  (_body, errorCode) => ({ errorCode, protocolType: null, protocolName: null, assignment: EMPTY }),
);

const heartbeat = simple(
  API_KEYS.Heartbeat,
  4,
  (g, body, ctx) => g.heartbeat(body, groupContext(ctx)),
  (_body, errorCode) => ({ errorCode }),
);

const leaveGroup = simple(
  API_KEYS.LeaveGroup,
  5,
  (g, body, ctx) => g.leaveGroup(body, groupContext(ctx)),
  (body: { members?: { memberId: string; groupInstanceId?: string | null }[] }, errorCode) => ({
    errorCode,
    members: (body.members ?? []).map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId ?? null,
      errorCode,
    })),
  }),
);

const describeGroups = simple(
  API_KEYS.DescribeGroups,
  5,
  (g, body, ctx) => g.describeGroups(body, groupContext(ctx)),
  (body: { groups: string[] }, errorCode) => ({
    groups: body.groups.map((groupId) => ({
      errorCode,
      groupId,
      groupState: '',
      protocolType: '',
      protocolData: '',
      members: [],
      authorizedOperations: -2147483648,
    })),
  }),
);

const listGroups = simple(
  API_KEYS.ListGroups,
  5,
  (g, body, ctx) => g.listGroups(body, groupContext(ctx)),
  (_body, errorCode) => ({ errorCode, groups: [] }),
);

/**
 * DeleteGroups: removes the committed offsets of groups without members (as
 * `kafka-consumer-groups --delete`). Deleting what others committed takes the admin scope.
 */
const deleteGroupsErrors = (body: { groupsNames: string[] }, errorCode: number): object => ({
  results: body.groupsNames.map((groupId) => ({ groupId, errorCode })),
});
const deleteGroups: Handler = {
  key: API_KEYS.DeleteGroups,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, body) {
    const req = body as { groupsNames: string[] };
    if (!ctx.allowed('admin')) return deleteGroupsErrors(req, DENIED);
    return groupsOf(ctx).deleteGroups(req.groupsNames);
  },
  errorBody: (body, errorCode) => deleteGroupsErrors(body as { groupsNames: string[] }, errorCode),
};

const offsetCommit: Handler = {
  key: API_KEYS.OffsetCommit,
  minVersion: 0,
  maxVersion: 8,
  async handle(ctx, body) {
    const req = body as OffsetCommitRequest;
    if (!mayUseGroups(ctx)) return commitErrors(req.topics, DENIED);
    const allowed = req.topics.filter((t) => ctx.allowed(`consume:${t.name}`));
    const denied = req.topics.filter((t) => !ctx.allowed(`consume:${t.name}`));
    const answer: OffsetCommitResponse =
      allowed.length > 0 || denied.length === 0
        ? await groupsOf(ctx).offsetCommit({ ...req, topics: allowed }, groupContext(ctx))
        : { throttleTimeMs: 0, topics: [] };
    return { ...answer, topics: [...answer.topics, ...commitErrors(denied, ERRORS.TOPIC_AUTHORIZATION_FAILED).topics] };
  },
  errorBody(body, errorCode) {
    return commitErrors((body as OffsetCommitRequest).topics, errorCode);
  },
};

function commitErrors(topics: OffsetCommitRequest['topics'], errorCode: number): OffsetCommitResponse {
  return {
    throttleTimeMs: 0,
    topics: topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
    })),
  };
}

const offsetFetch: Handler = {
  key: API_KEYS.OffsetFetch,
  minVersion: 0,
  maxVersion: 8,
  async handle(ctx, body) {
    const req = body as OffsetFetchRequest;
    if (!mayUseGroups(ctx)) return fetchErrors(req, DENIED);
    const may = (topic: string): boolean => ctx.allowed(`consume:${topic}`);
    const allowedOnly = (topics: OffsetFetchTopics | undefined): OffsetFetchTopics =>
      topics === null || topics === undefined ? null : topics.filter((t) => may(t.name));
    const asked: OffsetFetchRequest = {
      ...req,
      topics: req.topics === undefined ? undefined : allowedOnly(req.topics),
      groups: req.groups?.map((g) => ({ groupId: g.groupId, topics: allowedOnly(g.topics) })),
    };
    const answer = await groupsOf(ctx).offsetFetch(asked, groupContext(ctx));
    return withDeniedTopics(answer, req, may);
  },
  errorBody(body, errorCode) {
    return fetchErrors(body as OffsetFetchRequest, errorCode);
  },
};

type FetchedTopic = NonNullable<OffsetFetchResponse['topics']>[number];

/** The coordinator's answer without topics the token may not read, and with the refused ones named. */
function withDeniedTopics(
  answer: OffsetFetchResponse,
  req: OffsetFetchRequest,
  may: (topic: string) => boolean,
): OffsetFetchResponse {
  const merge = (got: FetchedTopic[] | undefined, asked: OffsetFetchTopics | undefined): FetchedTopic[] => [
    ...(got ?? []).filter((t) => may(t.name)),
    ...deniedTopics(asked, may),
  ];
  return {
    ...answer,
    topics: answer.topics === undefined ? undefined : merge(answer.topics, req.topics),
    groups: answer.groups?.map((g: OffsetFetchGroup, i: number): OffsetFetchGroup => ({
      ...g,
      topics: merge(g.topics, req.groups?.[i]?.topics),
    })),
  };
}

function deniedTopics(asked: OffsetFetchTopics | undefined, may: (topic: string) => boolean): FetchedTopic[] {
  return (asked ?? [])
    .filter((t) => !may(t.name))
    .map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) => refusedPartition(p, ERRORS.TOPIC_AUTHORIZATION_FAILED)),
    }));
}

function refusedPartition(partitionIndex: number, errorCode: number): FetchedTopic['partitions'][number] {
  return { partitionIndex, committedOffset: -1, committedLeaderEpoch: -1, metadata: null, errorCode };
}

function fetchErrors(req: OffsetFetchRequest, errorCode: number): OffsetFetchResponse {
  const topics = (asked: OffsetFetchTopics | undefined): FetchedTopic[] =>
    (asked ?? []).map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) => refusedPartition(p, errorCode)),
    }));
  return {
    throttleTimeMs: 0,
    errorCode,
    topics: topics(req.topics),
    groups: (req.groups ?? []).map((g) => ({ groupId: g.groupId ?? '', topics: topics(g.topics), errorCode })),
  };
}

/**
 * The coordinator answers with Uint8Array bytes (member metadata, assignments); the codec writes
 * Buffers. Converted in place, without copying the bytes.
 */
function asBuffers<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = asBuffers(value[i], depth + 1);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const v = record[key];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) record[key] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    else if (v !== null && typeof v === 'object') asBuffers(v, depth + 1);
  }
  return value;
}

export function groupHandlers(): Handler[] {
  return [
    joinGroup,
    syncGroup,
    heartbeat,
    leaveGroup,
    offsetCommit,
    offsetFetch,
    describeGroups,
    listGroups,
    deleteGroups,
  ];
}
