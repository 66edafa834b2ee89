/**
 * A view's fingerprint: a hash of everything that decides its rows (source, schema, time
 * extractor, steps, window, key, aggregates, lateness), functions by their source text. A new
 * fingerprint means new logic, hence a new version (versions.ts). `describeChange` says in words
 * which parts differ between two definitions.
 */
import { createHash } from 'node:crypto';
import type { ViewDef } from './dsl.ts';
import { opSignature } from './ops.ts';
import type { TopicFormat } from './dsl-formats.ts';

/** What a view's fingerprint hashes, part by part (`describeChange` names the parts that differ). */
export function fingerprintParts(view: ViewDef): Record<string, unknown> {
  const a = view.aggregation;
  return {
    source: a.stream.source.name,
    schema: a.stream.source.schema,
    // Only when set, so views of plain JSON topics keep the fingerprints they had.
    ...(a.stream.source.format ? { format: formatPart(a.stream.source.format) } : {}),
    time: a.stream.source.time?.toString() ?? null,
    ops: a.stream.ops.map(opSignature),
    window: a.stream.windowSpec,
    key: a.keyFn.toString(),
    aggregates: Object.entries(a.aggregates).map(([name, agg]) => `${name}=${agg.signature}`),
    outOfOrdernessMs: view.outOfOrdernessMs,
    allowedLatenessMs: view.allowedLatenessMs,
  };
}

/** What of a format decides rows: the schema records are read as (not how the Kafka listener checks ids). */
function formatPart(f: TopicFormat): object {
  return { type: f.type, schema: f.schema, message: f.message };
}

export function fingerprintOf(view: ViewDef): string {
  return createHash('sha256')
    .update(JSON.stringify(fingerprintParts(view)))
    .digest('hex')
    .slice(0, 16);
}

const PART_NAMES: Record<string, string> = {
  source: 'the source topic',
  schema: "the source topic's schema",
  format: "the source topic's format",
  time: "the source topic's time extractor",
  window: 'the window',
  key: 'the groupBy key',
  aggregates: 'the aggregates',
  outOfOrdernessMs: 'the allowed out-of-orderness',
  allowedLatenessMs: 'the allowed lateness',
};

/**
 * In words, what differs between two definitions of a view, e.g. "step 2 (filter) and the
 * aggregates". Both must have been loaded the same way (both bundled, or both from source), since
 * the functions are compared by their source text.
 */
export function describeChange(before: ViewDef, after: ViewDef): string {
  const a = fingerprintParts(before);
  const b = fingerprintParts(after);
  const changed: string[] = [];
  const opsA = a.ops as string[];
  const opsB = b.ops as string[];
  if (opsA.length !== opsB.length)
    changed.push(
      `the steps (${opsA.length} → ${opsB.length}: ${opsB.map((o) => o.slice(0, o.indexOf(':'))).join(', ') || 'none'})`,
    );
  else opsB.forEach((op, i) => op !== opsA[i] && changed.push(`step ${i + 1} (${op.slice(0, op.indexOf(':'))})`));
  for (const [part, name] of Object.entries(PART_NAMES))
    if (JSON.stringify(a[part]) !== JSON.stringify(b[part])) changed.push(name);
  if (changed.length === 0) return 'nothing visible in the definition (a function it calls may have changed)';
  return changed.length === 1 ? changed[0] : `${changed.slice(0, -1).join(', ')} and ${changed[changed.length - 1]}`;
}
