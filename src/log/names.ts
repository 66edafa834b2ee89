/** Validation of user-supplied names and numbers before they touch the disk. */
import { KappaError } from '../errors.ts';
import type { TopicInfo } from './types.ts';

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Kafka's topic-name rule. Anything else (`../x`, `a/b`, empty) is refused before any file is touched. */
export function checkTopicName(name: string): void {
  if (typeof name !== 'string' || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new KappaError(
      'KAPPA_INVALID_TOPIC_NAME',
      `"${String(name)}" is not a valid topic name: use 1 to 249 letters, digits, '.', '_' or '-' (and not '.' or '..').`,
      { topic: name },
    );
  }
}

export function checkPartitionCount(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The partition count must be a whole number from 1 to 10000, not ${partitions}.`,
      { partitions },
    );
  }
}

/** Segment file names: the base offset padded to 20 digits, as Kafka names them. */
export function segmentFileName(baseOffset: number, ext: '.log' | '.index' | '.timeindex' | '.snapshot'): string {
  return String(baseOffset).padStart(20, '0') + ext;
}

/** Refuses topic settings out of range (retention, segment size and time). */
export function checkTopicLimits(info: TopicInfo): void {
  const bad = (field: string, why: string): never => {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `${field} ${why}.`, {
      [field]: (info as unknown as Record<string, unknown>)[field],
    });
  };
  if (!Number.isInteger(info.retentionMs) || info.retentionMs < -1)
    bad('retentionMs', 'must be -1 (keep forever) or a whole number of milliseconds');
  if (!Number.isInteger(info.retentionBytes) || info.retentionBytes < -1)
    bad('retentionBytes', 'must be -1 (no limit) or a whole number of bytes');
  if (!Number.isInteger(info.segmentBytes) || info.segmentBytes < 1024 || info.segmentBytes > 2 ** 31 - 1)
    bad('segmentBytes', 'must be between 1024 and 2147483647');
  if (!Number.isInteger(info.segmentMs) || info.segmentMs < 1)
    bad('segmentMs', 'must be a positive whole number of milliseconds');
}
