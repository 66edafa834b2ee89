/**
 * A subject's compatibility rule applied to a candidate schema, as Confluent's registry applies it:
 *
 *   BACKWARD   the candidate can read data written with the latest version  problems(candidate, latest)
 *   FORWARD    the latest version can read data written with the candidate  problems(latest, candidate)
 *   FULL       both
 *   *_TRANSITIVE  the same against every version not soft-deleted, not only the latest
 *   NONE       no check
 *
 * The format's own rules (Avro resolution, Protobuf field numbers, JSON Schema content) are the
 * codec's (`FormatCodec.problems`); this file only picks the pairs and words the messages, each
 * naming the version, the field path and the rule broken.
 */
import type { CompatibilityLevel, FormatCodec, ParsedSchema } from '../formats/index.ts';

export interface PreviousVersion {
  version: number;
  schema: ParsedSchema;
}

/** Which versions a level checks against (the caller passes the live versions in ascending order). */
export function versionsToCheck<T>(level: CompatibilityLevel, versions: readonly T[]): readonly T[] {
  if (level === 'NONE' || versions.length === 0) return [];
  return level.endsWith('_TRANSITIVE') ? versions : versions.slice(-1);
}

/**
 * The problems that stop `candidate` from joining a subject at `level`, one message each, in the
 * order of the versions; empty when it may. `previous` are the versions to check, as
 * `versionsToCheck` picks them (or the one version a client asked about).
 */
export function compatibilityMessages(
  codec: FormatCodec,
  level: CompatibilityLevel,
  candidate: ParsedSchema,
  previous: readonly PreviousVersion[],
): string[] {
  if (level === 'NONE') return [];
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const messages: string[] = [];
  for (const p of previous) {
    if (p.schema.type !== candidate.type) {
      messages.push(
        `version ${p.version}: the schema type changed from ${p.schema.type} to ${candidate.type}; a subject keeps one type`,
      );
      continue;
    }
    if (backward)
      for (const problem of codec.problems(candidate, p.schema))
        messages.push(
          `version ${p.version}: ${problem.path}: ${problem.rule} (${level}: the new schema must read data written with version ${p.version})`,
        );
    if (forward)
      for (const problem of codec.problems(p.schema, candidate))
        messages.push(
          `version ${p.version}: ${problem.path}: ${problem.rule} (${level}: version ${p.version} must read data written with the new schema)`,
        );
  }
  return messages;
}
