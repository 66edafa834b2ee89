/**
 * Metadata 0-12: one broker (node id 0, at the address the client reached, or the advertised one),
 * controller 0, and for each topic its partitions, every one led by node 0 with replicas and ISR
 * [0]. A topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION unless the listener was started
 * with auto-creation and the request allows it; with tokens, "all topics" lists only the topics the
 * principal may produce to or consume, and a named topic it may not is TOPIC_AUTHORIZATION_FAILED.
 */
import { isKappaError } from '../../../errors.ts';
import { type TopicInfo, checkTopicName } from '../../../log/index.ts';
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';
import { ZERO_TOPIC_ID, topicIdOf } from '../topic-ids.ts';

interface MetadataRequest {
  topics: { name: string | null; topicId?: string }[] | null;
  allowAutoTopicCreation?: boolean;
}

const NODE_ID = 0;

export const metadataHandler: Handler = {
  key: API_KEYS.Metadata,
  minVersion: 0,
  maxVersion: 12,
  async handle(ctx, body) {
    const req = body as MetadataRequest;
    const infos = new Map((await ctx.deps.log.topics()).map((t) => [t.name, t]));
    const everything = req.topics === null || (ctx.header.apiVersion === 0 && req.topics.length === 0);
    const topics = everything
      ? [...infos.values()].filter((t) => visible(ctx, t.name)).map((t) => topicEntry(t))
      : await Promise.all(req.topics!.map((t) => namedTopic(ctx, req, infos, t)));
    return {
      throttleTimeMs: 0,
      brokers: [
        {
          nodeId: NODE_ID,
          host: ctx.deps.advertisedHost ?? ctx.session.localAddress,
          port: ctx.deps.advertisedPort,
          rack: null,
        },
      ],
      clusterId: ctx.deps.clusterId,
      controllerId: NODE_ID,
      topics,
    };
  },
  errorBody(body, errorCode) {
    const req = body as MetadataRequest;
    return {
      brokers: [],
      controllerId: -1,
      topics: (req.topics ?? []).map((t) => ({
        errorCode,
        name: t.name,
        topicId: t.topicId ?? ZERO_TOPIC_ID,
        partitions: [],
      })),
    };
  },
};

function visible(ctx: RequestContext, topic: string): boolean {
  return ctx.allowed(`consume:${topic}`) || ctx.allowed(`produce:${topic}`);
}

async function namedTopic(
  ctx: RequestContext,
  req: MetadataRequest,
  infos: Map<string, TopicInfo>,
  t: { name: string | null; topicId?: string },
): Promise<object> {
  let name = t.name;
  if (name === null) name = [...infos.keys()].find((n) => topicIdOf(n) === t.topicId) ?? null;
  if (name === null) return errorEntry(null, t.topicId ?? ZERO_TOPIC_ID, ERRORS.UNKNOWN_TOPIC_ID);
  try {
    checkTopicName(name);
  } catch {
    return errorEntry(name, ZERO_TOPIC_ID, ERRORS.INVALID_TOPIC_EXCEPTION);
  }
  if (!visible(ctx, name)) return errorEntry(name, ZERO_TOPIC_ID, ERRORS.TOPIC_AUTHORIZATION_FAILED);
  let info = infos.get(name);
  const auto = ctx.deps.autoCreateTopics;
  if (info === undefined && auto !== null && req.allowAutoTopicCreation !== false && ctx.allowed(`produce:${name}`)) {
    try {
      info = await ctx.deps.log.createTopic(name, { partitions: auto.partitions });
    } catch (err) {
      // Another request created it meanwhile: use that one.
      if (!isKappaError(err, 'KAPPA_TOPIC_EXISTS')) throw err;
      info = await ctx.deps.log.topic(name);
    }
  }
  if (info === undefined) return errorEntry(name, ZERO_TOPIC_ID, ERRORS.UNKNOWN_TOPIC_OR_PARTITION);
  return topicEntry(info);
}

function errorEntry(name: string | null, topicId: string, errorCode: number): object {
  return { errorCode, name, topicId, isInternal: false, partitions: [] };
}

function topicEntry(t: TopicInfo): object {
  const partitions = new Array<object>(t.partitions);
  for (let p = 0; p < t.partitions; p++) {
    partitions[p] = {
      errorCode: 0,
      partitionIndex: p,
      leaderId: NODE_ID,
      leaderEpoch: 0,
      replicaNodes: [NODE_ID],
      isrNodes: [NODE_ID],
      offlineReplicas: [],
    };
  }
  return { errorCode: 0, name: t.name, topicId: topicIdOf(t.name), isInternal: false, partitions };
}
