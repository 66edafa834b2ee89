/**
 * Checks of what a registry client sends (subject names, versions, ids, schema bodies, levels,
 * modes), each refused with the Confluent error a client expects and a message saying what to send.
 * Nothing here touches the state: bad input is refused before anything is decided or appended.
 */
import {
  COMPATIBILITY_LEVELS,
  type CompatibilityLevel,
  type SchemaReference,
  type SchemaType,
} from '../formats/index.ts';
import { RegistryError } from './errors.ts';
import { REGISTRY_MODES, type RegistryMode } from './store.ts';

/** Longest subject name, in characters (Confluent sets none; a bound keeps keys and messages small). */
export const SUBJECT_CHARS_MAX = 255;
/** Most references one schema may carry. */
export const REFERENCES_MAX = 1000;
const VERSION_MAX = 2 ** 31 - 1;

/** A schema as a client submits it (the body of a register, lookup or compatibility request). */
export interface SchemaInput {
  schemaType: SchemaType;
  schema: string;
  references: SchemaReference[];
}

export function checkSubject(subject: string): string {
  // Control characters would end up in keys, log lines and URLs; an empty name is no name.
  // eslint-disable-next-line no-control-regex
  if (subject === '' || subject.length > SUBJECT_CHARS_MAX || /[\u0000-\u001f\u007f]/.test(subject))
    throw new RegistryError(
      'INVALID_SUBJECT',
      `The subject name "${subject.slice(0, 100)}" is not valid: use 1 to ${SUBJECT_CHARS_MAX} characters without control characters (for a topic's values, "<topic>-value").`,
    );
  return subject;
}

/** A version in a path: a number from 1 to 2^31-1, or "latest" (also -1). */
export function parseVersion(raw: string): number | 'latest' {
  if (raw === 'latest' || raw === '-1') return 'latest';
  const n = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= VERSION_MAX))
    throw new RegistryError(
      'INVALID_VERSION',
      `The specified version '${raw.slice(0, 50)}' is not a valid version id. Allowed values are between [1, ${VERSION_MAX}] and the string "latest".`,
    );
  return n;
}

/** A schema id in a path; anything else names no schema. */
export function parseId(raw: string): number {
  const n = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= VERSION_MAX))
    throw new RegistryError('SCHEMA_NOT_FOUND', `Schema ${raw.slice(0, 50)} not found.`);
  return n;
}

/** The `?flag=true` query parameters (deleted, permanent, verbose, defaultToGlobal). */
export function flag(query: unknown, name: string): boolean {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  return v === 'true' || v === true;
}

function checkReferences(raw: unknown): SchemaReference[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > REFERENCES_MAX)
    throw new RegistryError('UNPROCESSABLE', `"references" must be an array of at most ${REFERENCES_MAX} references.`);
  return raw.map((r: unknown, i: number) => {
    const ref = r as Partial<SchemaReference> | null;
    if (
      ref === null ||
      typeof ref !== 'object' ||
      typeof ref.name !== 'string' ||
      typeof ref.subject !== 'string' ||
      typeof ref.version !== 'number' ||
      !Number.isInteger(ref.version)
    )
      throw new RegistryError(
        'UNPROCESSABLE',
        `references[${i}] must be an object {"name": string, "subject": string, "version": integer}.`,
      );
    return { name: ref.name, subject: checkSubject(ref.subject), version: ref.version };
  });
}

/**
 * The schema a request body carries: `{"schema": "<text>", "schemaType"?: "AVRO"|"PROTOBUF"|"JSON",
 * "references"?: [...]}`; other properties (metadata, ruleSet) are accepted and ignored.
 */
export function schemaInput(body: unknown, schemaBytesMax: number): SchemaInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new RegistryError(
      'UNPROCESSABLE',
      'The request body must be a JSON object: {"schema": "<schema text>", "schemaType": "AVRO" | "PROTOBUF" | "JSON"}.',
    );
  const b = body as Record<string, unknown>;
  if (typeof b.schema !== 'string' || b.schema.trim() === '')
    throw new RegistryError('INVALID_SCHEMA', 'The body has no "schema": send the schema text as a JSON string.');
  const bytes = Buffer.byteLength(b.schema, 'utf8');
  if (bytes > schemaBytesMax)
    throw new RegistryError(
      'UNPROCESSABLE',
      `The schema is ${bytes} bytes, more than the ${schemaBytesMax} bytes this registry accepts (registry.schemaBytesMax). Nothing was registered.`,
    );
  const type = b.schemaType ?? 'AVRO';
  if (type !== 'AVRO' && type !== 'PROTOBUF' && type !== 'JSON')
    throw new RegistryError(
      'INVALID_SCHEMA',
      `Unknown schemaType "${String(type).slice(0, 50)}": use AVRO (the default), PROTOBUF or JSON.`,
    );
  return { schemaType: type, schema: b.schema, references: checkReferences(b.references) };
}

/** `{"compatibility": "<LEVEL>"}`, the body of PUT /config. */
export function levelInput(body: unknown): CompatibilityLevel {
  // Confluent's request names it `compatibility`; some clients send `compatibilityLevel`, as GET answers.
  const b = body as { compatibility?: unknown; compatibilityLevel?: unknown } | null;
  const raw = b?.compatibility ?? b?.compatibilityLevel;
  const level = typeof raw === 'string' ? raw.toUpperCase() : raw;
  if (!COMPATIBILITY_LEVELS.includes(level as CompatibilityLevel))
    throw new RegistryError(
      'INVALID_COMPATIBILITY_LEVEL',
      `Invalid compatibility level "${String(raw).slice(0, 50)}". Valid values are ${COMPATIBILITY_LEVELS.join(', ')}.`,
    );
  return level as CompatibilityLevel;
}

/** `{"mode": "<MODE>"}`, the body of PUT /mode. */
export function modeInput(body: unknown): RegistryMode {
  const raw = (body as { mode?: unknown } | null)?.mode;
  const mode = typeof raw === 'string' ? raw.toUpperCase() : raw;
  if (!REGISTRY_MODES.includes(mode as RegistryMode))
    throw new RegistryError(
      'INVALID_MODE',
      `Invalid mode "${String(raw).slice(0, 50)}". Valid values are ${REGISTRY_MODES.join(', ')}.`,
    );
  return mode as RegistryMode;
}
