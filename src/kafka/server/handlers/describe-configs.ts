/**
 * DescribeConfigs 0-4: a topic's configs (../topic-configs.ts; needs consume:<topic> or
 * produce:<topic>) and a few of the broker's (needs admin), enough for admin tools and for clients
 * that look up max.message.bytes. Every config is read-only: Kappa has no AlterConfigs.
 */
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';
import { kafkaCodeOf, messageOf } from '../kafka-errors.ts';
import { type ConfigEntry, topicConfigEntries } from '../topic-configs.ts';

interface DescribeConfigsRequest {
  resources: { resourceType: number; resourceName: string; configurationKeys: string[] | null }[];
  includeDocumentation?: boolean;
}

const TOPIC = 2;
const BROKER = 4;
/** ConfigSource: 1 = set on the topic, 4 = static broker config, 5 = default. */
const SOURCE_TOPIC = 1;
const SOURCE_STATIC_BROKER = 4;
const SOURCE_DEFAULT = 5;

export const describeConfigsHandler: Handler = {
  key: API_KEYS.DescribeConfigs,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, body) {
    const req = body as DescribeConfigsRequest;
    const results = [];
    for (const r of req.resources) results.push(await describe(ctx, r));
    return { throttleTimeMs: 0, results };
  },
  errorBody(body, errorCode) {
    const req = body as DescribeConfigsRequest;
    return {
      results: req.resources.map((r) => ({
        errorCode,
        errorMessage: null,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        configs: [],
      })),
    };
  },
};

async function describe(ctx: RequestContext, r: DescribeConfigsRequest['resources'][number]): Promise<object> {
  const base = { resourceType: r.resourceType, resourceName: r.resourceName };
  const refuse = (errorCode: number, errorMessage: string): object => ({
    ...base,
    errorCode,
    errorMessage,
    configs: [],
  });
  let entries: ConfigEntry[];
  let sourceOf: (e: ConfigEntry) => number;
  if (r.resourceType === TOPIC) {
    if (!ctx.allowed(`consume:${r.resourceName}`) && !ctx.allowed(`produce:${r.resourceName}`))
      return refuse(ERRORS.TOPIC_AUTHORIZATION_FAILED, `The token may not read topic "${r.resourceName}".`);
    try {
      entries = topicConfigEntries(await ctx.deps.log.topic(r.resourceName));
    } catch (err) {
      const code = kafkaCodeOf(err);
      if (code === null) throw err;
      return refuse(code, messageOf(err));
    }
    sourceOf = (e) => (e.isDefault ? SOURCE_DEFAULT : SOURCE_TOPIC);
  } else if (r.resourceType === BROKER) {
    if (!ctx.allowed('admin'))
      return refuse(ERRORS.CLUSTER_AUTHORIZATION_FAILED, 'Broker configs need a token with the admin scope.');
    entries = brokerEntries(ctx);
    sourceOf = () => SOURCE_STATIC_BROKER;
  } else
    return refuse(
      ERRORS.INVALID_REQUEST,
      `Kappa describes topic (2) and broker (4) configs, not resource type ${r.resourceType}.`,
    );
  const keys = r.configurationKeys;
  const chosen = keys === null || keys.length === 0 ? entries : entries.filter((e) => keys.includes(e.name));
  return {
    ...base,
    errorCode: 0,
    errorMessage: null,
    configs: chosen.map((e) => ({
      name: e.name,
      value: e.value,
      readOnly: e.readOnly,
      isDefault: e.isDefault,
      configSource: sourceOf(e),
      isSensitive: false,
      synonyms: [],
      configType: 0,
      documentation: null,
    })),
  };
}

function brokerEntries(ctx: RequestContext): ConfigEntry[] {
  const fixed: [string, string][] = [
    ['broker.id', '0'],
    ['num.partitions', '1'],
    ['default.replication.factor', '1'],
    ['auto.create.topics.enable', String(ctx.deps.autoCreateTopics !== null)],
    ['log.cleanup.policy', 'delete'],
    ['compression.type', 'producer'],
    ['message.max.bytes', String(256 << 20)],
    ['fetch.max.bytes', String(ctx.deps.fetchBytesMax)],
  ];
  return fixed.map(([name, value]) => ({ name, value, isDefault: false, readOnly: true }));
}
