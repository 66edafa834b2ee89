/**
 * Kafka's topic configs as Kappa's TopicConfig: what CreateTopics accepts and DescribeConfigs
 * shows. Kappa keeps four settings per topic (retention by time and size, segment size and age);
 * the other Kafka configs a client commonly sets are accepted only with the one value Kappa
 * behaves as (cleanup.policy=delete: no compaction), and anything else is refused by name.
 */
import { TOPIC_DEFAULTS, type TopicConfig, type TopicInfo } from '../../log/index.ts';

/** The largest batch a partition accepts (the log's BATCH_BYTES_MAX, 256 MiB), capped by segment.bytes. */
const BATCH_BYTES_MAX = 256 << 20;

type NumericField = 'retentionMs' | 'retentionBytes' | 'segmentBytes' | 'segmentMs';

const NUMERIC: Record<string, { field: NumericField; min: number; max: number }> = {
  'retention.ms': { field: 'retentionMs', min: -1, max: Number.MAX_SAFE_INTEGER },
  'retention.bytes': { field: 'retentionBytes', min: -1, max: Number.MAX_SAFE_INTEGER },
  'segment.bytes': { field: 'segmentBytes', min: 1024, max: 2 ** 31 - 1 },
  'segment.ms': { field: 'segmentMs', min: 1, max: Number.MAX_SAFE_INTEGER },
};

/** Configs accepted with exactly one value: the way Kappa's log behaves. */
const FIXED: Record<string, string> = {
  'cleanup.policy': 'delete',
  'compression.type': 'producer',
  'message.timestamp.type': 'CreateTime',
  'min.insync.replicas': '1',
  'unclean.leader.election.enable': 'false',
};

/** Applies Kafka configs to `config`; returns a message naming the first one Kappa cannot honour, or null. */
export function applyTopicConfigs(
  config: TopicConfig,
  configs: readonly { name: string; value: string | null }[],
): string | null {
  for (const { name, value } of configs) {
    const numeric = NUMERIC[name];
    if (numeric !== undefined) {
      const n = value === null ? NaN : Number(value);
      if (!Number.isInteger(n) || n < numeric.min || n > numeric.max)
        return `${name} must be a whole number from ${numeric.min} to ${numeric.max}, not "${value}".`;
      config[numeric.field] = n;
      continue;
    }
    const fixed = FIXED[name];
    if (fixed !== undefined) {
      if (value !== null && value !== fixed)
        return `${name}=${value} is not supported: Kappa's topics always behave as ${name}=${fixed}.`;
      continue;
    }
    return `Kappa does not support the topic config ${name}; it supports ${[...Object.keys(NUMERIC), ...Object.keys(FIXED)].join(', ')}.`;
  }
  return null;
}

export interface ConfigEntry {
  name: string;
  value: string;
  /** True when the topic uses Kappa's default rather than a value set when it was created. */
  isDefault: boolean;
  readOnly: boolean;
}

/** A topic's configs as Kafka names them. */
export function topicConfigEntries(t: TopicInfo): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  for (const [name, { field }] of Object.entries(NUMERIC))
    entries.push({ name, value: String(t[field]), isDefault: t[field] === TOPIC_DEFAULTS[field], readOnly: true });
  for (const [name, value] of Object.entries(FIXED)) entries.push({ name, value, isDefault: true, readOnly: true });
  entries.push({
    name: 'max.message.bytes',
    value: String(Math.min(t.segmentBytes, BATCH_BYTES_MAX)),
    isDefault: true,
    readOnly: true,
  });
  return entries;
}
