/**
 * A schema's fingerprint: the SHA-256 (hex) of its canonical JSON. Two schemas that differ only in
 * the order of object keys, or of the names in a `required` list, get the same fingerprint; any
 * other change gives a new one. Schema versions are keyed by it, so the rendering must never
 * change: a change would make every stored schema look new.
 *
 * Canonical JSON here: object keys sorted by UTF-16 code units (JavaScript's default sort), no
 * whitespace, values rendered as `JSON.stringify` renders them, keys whose value is undefined, a
 * function or a symbol left out (as JSON.stringify does, which also drops TypeBox's symbol-keyed
 * metadata), and `required` arrays of strings sorted because their order means nothing.
 */
import { createHash } from 'node:crypto';
import { KappaError } from '../errors.ts';

/** Deepest nesting accepted; a schema deeper than this is almost surely a cycle or a mistake. */
const SCHEMA_DEPTH_MAX = 256;

export function schemaFingerprint(schema: object): string {
  return createHash('sha256').update(canonicalJson(schema)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  return render(value, 0, undefined) ?? 'null';
}

/** Returns undefined for values JSON leaves out (undefined, functions, symbols). */
function render(value: unknown, depth: number, key: string | undefined): string | undefined {
  if (depth > SCHEMA_DEPTH_MAX) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The schema is nested more than ${SCHEMA_DEPTH_MAX} levels deep (or refers to itself); it cannot be fingerprinted.`,
    );
  }
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return JSON.stringify(value);
  if (typeof value === 'bigint') {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', 'The schema contains a BigInt, which JSON cannot represent.');
  }
  if (typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    const items = key === 'required' && value.every((v) => typeof v === 'string') ? [...value].sort() : value;
    return `[${items.map((item) => render(item, depth + 1, undefined) ?? 'null').join(',')}]`;
  }
  const parts: string[] = [];
  for (const name of Object.keys(value).sort()) {
    const rendered = render((value as Record<string, unknown>)[name], depth + 1, name);
    if (rendered !== undefined) parts.push(`${JSON.stringify(name)}:${rendered}`);
  }
  return `{${parts.join(',')}}`;
}
