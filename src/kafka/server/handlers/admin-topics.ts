/**
 * CreateTopics 0-7 and DeleteTopics 0-6, for admin tools (kafkajs's admin, kafka-topics, AdminClient).
 * Both need the `admin` scope (TOPIC_AUTHORIZATION_FAILED otherwise). One broker: a replication
 * factor above 1 or an assignment to another node is refused with INVALID_REPLICATION_FACTOR or
 * INVALID_REPLICA_ASSIGNMENT; -1 asks for the default (1 partition, replication 1). Configs: see
 * ../topic-configs.ts. `validateOnly` checks everything and creates nothing. A topic the running
 * pipelines use is not deleted (TOPIC_DELETION_DISABLED, with the reason the listener was given),
 * as `kappa topics delete` refuses it.
 */
import { isKappaError } from '../../../errors.ts';
import { type TopicConfig, checkTopicName } from '../../../log/index.ts';
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';
import { kafkaCodeOf, messageOf } from '../kafka-errors.ts';
import { applyTopicConfigs, topicConfigEntries } from '../topic-configs.ts';
import { ZERO_TOPIC_ID, topicIdOf } from '../topic-ids.ts';

interface CreatableTopic {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  assignments: { partitionIndex: number; brokerIds: number[] }[];
  configs: { name: string; value: string | null }[];
}

interface CreateTopicsRequest {
  topics: CreatableTopic[];
  validateOnly?: boolean;
}

const PARTITIONS_DEFAULT = 1;
const PARTITIONS_MAX = 10_000;

export const createTopicsHandler: Handler = {
  key: API_KEYS.CreateTopics,
  minVersion: 0,
  maxVersion: 7,
  async handle(ctx, body) {
    const req = body as CreateTopicsRequest;
    const topics = [];
    for (const t of req.topics) topics.push(await createOne(ctx, t, req.validateOnly === true));
    return { throttleTimeMs: 0, topics };
  },
  errorBody(body, errorCode) {
    const req = body as CreateTopicsRequest;
    return { topics: req.topics.map((t) => ({ name: t.name, topicId: ZERO_TOPIC_ID, errorCode, errorMessage: null })) };
  },
};

async function createOne(ctx: RequestContext, t: CreatableTopic, validateOnly: boolean): Promise<object> {
  const refuse = (errorCode: number, errorMessage: string): object => ({
    name: t.name,
    topicId: ZERO_TOPIC_ID,
    errorCode,
    errorMessage,
    numPartitions: -1,
    replicationFactor: -1,
    configs: null,
  });
  if (!ctx.allowed('admin'))
    return refuse(ERRORS.TOPIC_AUTHORIZATION_FAILED, 'Creating topics needs a token with the admin scope.');
  try {
    checkTopicName(t.name);
  } catch (err) {
    return refuse(ERRORS.INVALID_TOPIC_EXCEPTION, messageOf(err));
  }
  const assigned = t.assignments.length > 0;
  const partitions = assigned ? t.assignments.length : t.numPartitions === -1 ? PARTITIONS_DEFAULT : t.numPartitions;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX)
    return refuse(ERRORS.INVALID_PARTITIONS, `A topic needs 1 to ${PARTITIONS_MAX} partitions, not ${partitions}.`);
  if (t.replicationFactor !== -1 && t.replicationFactor !== 1 && !assigned)
    return refuse(
      ERRORS.INVALID_REPLICATION_FACTOR,
      `Replication factor ${t.replicationFactor} is more than this single-node Kappa has brokers; use 1 (or -1 for the default).`,
    );
  if (assigned && t.assignments.some((a) => a.brokerIds.length !== 1 || a.brokerIds[0] !== 0))
    return refuse(ERRORS.INVALID_REPLICA_ASSIGNMENT, 'Kappa has one broker, node 0: assign every partition to [0].');
  const config: TopicConfig = { partitions };
  const bad = applyTopicConfigs(config, t.configs);
  if (bad !== null) return refuse(ERRORS.INVALID_CONFIG, bad);
  try {
    const exists = (await ctx.deps.log.topics()).some((x) => x.name === t.name);
    if (exists) return refuse(ERRORS.TOPIC_ALREADY_EXISTS, `Topic "${t.name}" already exists.`);
    const info = validateOnly ? null : await ctx.deps.log.createTopic(t.name, config);
    const entries = info === null ? [] : topicConfigEntries(info);
    return {
      name: t.name,
      topicId: validateOnly ? ZERO_TOPIC_ID : topicIdOf(t.name),
      errorCode: 0,
      errorMessage: null,
      numPartitions: partitions,
      replicationFactor: 1,
      configs: entries.map((e) => ({
        name: e.name,
        value: e.value,
        readOnly: e.readOnly,
        configSource: e.isDefault ? 5 : 1,
        isSensitive: false,
      })),
    };
  } catch (err) {
    if (isKappaError(err, 'KAPPA_INVALID_ARGUMENT')) return refuse(ERRORS.INVALID_CONFIG, messageOf(err));
    const code = kafkaCodeOf(err);
    if (code === null) throw err;
    return refuse(code, messageOf(err));
  }
}

interface DeleteTopicsRequest {
  topicNames?: string[];
  topics?: { name: string | null; topicId: string }[];
}

export const deleteTopicsHandler: Handler = {
  key: API_KEYS.DeleteTopics,
  minVersion: 0,
  maxVersion: 6,
  async handle(ctx, body) {
    const req = body as DeleteTopicsRequest;
    const names = await namesOf(ctx, req);
    const responses = [];
    for (const n of names) responses.push(await deleteOne(ctx, n.name, n.topicId));
    return { throttleTimeMs: 0, responses };
  },
  errorBody(body, errorCode) {
    const req = body as DeleteTopicsRequest;
    const names = req.topicNames ?? (req.topics ?? []).map((t) => t.name);
    return { responses: names.map((name) => ({ name, topicId: ZERO_TOPIC_ID, errorCode, errorMessage: null })) };
  },
};

/** The topics named, by name (v0-5) or by name or id (v6). */
async function namesOf(
  ctx: RequestContext,
  req: DeleteTopicsRequest,
): Promise<{ name: string | null; topicId: string }[]> {
  if (ctx.header.apiVersion < 6) return (req.topicNames ?? []).map((name) => ({ name, topicId: ZERO_TOPIC_ID }));
  const all = (await ctx.deps.log.topics()).map((t) => t.name);
  return (req.topics ?? []).map((t) => ({
    name: t.name ?? all.find((n) => topicIdOf(n) === t.topicId) ?? null,
    topicId: t.topicId,
  }));
}

async function deleteOne(ctx: RequestContext, name: string | null, topicId: string): Promise<object> {
  const answer = (errorCode: number, errorMessage: string | null): object => ({
    name,
    topicId: name === null ? topicId : topicIdOf(name),
    errorCode,
    errorMessage,
  });
  if (name === null) return answer(ERRORS.UNKNOWN_TOPIC_ID, `No topic has id ${topicId}.`);
  if (!ctx.allowed('admin'))
    return answer(ERRORS.TOPIC_AUTHORIZATION_FAILED, 'Deleting topics needs a token with the admin scope.');
  const inUse = ctx.deps.topicInUse(name);
  if (inUse !== null) return answer(ERRORS.TOPIC_DELETION_DISABLED, inUse);
  try {
    await ctx.deps.log.deleteTopic(name);
    return answer(0, null);
  } catch (err) {
    const code = kafkaCodeOf(err);
    if (code === null) throw err;
    return answer(code, messageOf(err));
  }
}
