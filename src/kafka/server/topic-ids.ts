/**
 * Kafka's topic ids (Metadata v10+, CreateTopics v7, DeleteTopics v6) for Kappa's topics, which
 * have none of their own: a UUID derived from the name (SHA-256, version and variant bits set as
 * for a name-based UUID), so it is the same on every request and after a restart. A topic deleted
 * and created again under the same name gets the same id; Kafka would give it a new one.
 */
import { createHash } from 'node:crypto';

export function topicIdOf(name: string): string {
  const b = createHash('sha256').update(`kappa-topic:${name}`, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const ZERO_TOPIC_ID = '00000000-0000-0000-0000-000000000000';
