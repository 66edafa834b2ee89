/**
 * Where the schema registry keeps its state: the `_schemas` topic of Kappa's own log, one partition,
 * as Confluent's registry keeps its state in the Kafka topic `_schemas`. So it works the same on the
 * embedded FileLog and on Kafka, survives restarts, and is shared by every Kappa process on that log.
 *
 * Record format. Key: the subject (UTF-8; empty for a global setting). Value: one JSON object, the
 * change it makes; every one has `v: 1` and `base`, the log offset the writer's state was built to
 * (it had applied every record before `base`):
 *
 *   {"v":1,"op":"register","base":N,"subject":"s","version":3,"id":7,"schemaType":"AVRO",
 *    "schema":"<text>","references":[{"name","subject","version"}],"key":"<sha256 of type, canonical text, references>"}
 *   {"v":1,"op":"delete","base":N,"subject":"s","version":2|null,"permanent":false}   (null: every version)
 *   {"v":1,"op":"config","base":N,"subject":"s"|null,"compatibility":"BACKWARD"|null}  (null: remove the subject's)
 *   {"v":1,"op":"mode","base":N,"subject":"s"|null,"mode":"READONLY"|null}
 *
 * Invariant (the compare-and-set that keeps ids unique when two processes write): a record at offset
 * `o` takes effect only if `base === o`, that is, if nothing was appended between the state its
 * writer decided on and the record itself. Every reader applies the same rule to the same log, so
 * every process ends with the same state. A writer that lost the race (another record landed first)
 * sees its record void when it reads up to it, reads what came before, decides again on the newer
 * state (the other writer's schema may already carry the id it wanted, or the schema it registers)
 * and appends again. Within one process writes are serialised, so only another process can race.
 * Records that do not parse, or break a rule of the state (state.ts) are void as well, and logged.
 *
 * Crash behaviour: an append is one record, durable when `append` resolves (the log's promise); a
 * crash before that leaves nothing or the whole record, and a whole record left unacknowledged is
 * applied on the next read like any other (the writer's client saw an error and may retry: the same
 * schema registered again gets the same id).
 */
import { KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import type { CompatibilityLevel, SchemaReference, SchemaType } from '../formats/index.ts';

export const SCHEMAS_TOPIC = '_schemas';

export type RegistryMode = 'READWRITE' | 'READONLY' | 'READONLY_OVERRIDE' | 'IMPORT';
export const REGISTRY_MODES: readonly RegistryMode[] = ['READWRITE', 'READONLY', 'READONLY_OVERRIDE', 'IMPORT'];

export interface RegisterRecord {
  op: 'register';
  subject: string;
  version: number;
  id: number;
  schemaType: SchemaType;
  schema: string;
  references: SchemaReference[];
  key: string;
}
export interface DeleteRecord {
  op: 'delete';
  subject: string;
  version: number | null;
  permanent: boolean;
}
export interface ConfigRecord {
  op: 'config';
  subject: string | null;
  compatibility: CompatibilityLevel | null;
}
export interface ModeRecord {
  op: 'mode';
  subject: string | null;
  mode: RegistryMode | null;
}
export type Change = RegisterRecord | DeleteRecord | ConfigRecord | ModeRecord;

/** A change read back from the log: its offset and the offset its writer had read to. */
export interface StoredChange {
  offset: number;
  base: number;
  change: Change | null;
  /** Why `change` is null (the record does not parse). */
  problem?: string;
}

export function encodeChange(change: Change, base: number): string {
  return JSON.stringify({ v: 1, ...change, base });
}

const TYPES = new Set(['AVRO', 'PROTOBUF', 'JSON']);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isSubject = (v: unknown): v is string => typeof v === 'string' && v !== '';

function isReferences(v: unknown): v is SchemaReference[] {
  return (
    Array.isArray(v) &&
    v.every((r: Partial<SchemaReference>) => typeof r?.name === 'string' && isSubject(r.subject) && isInt(r.version))
  );
}

/** The change a record's value holds, or why it holds none. */
export function decodeChange(value: Buffer | null, offset: number): StoredChange {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(value === null ? 'null' : value.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { offset, base: -1, change: null, problem: 'not JSON' };
  }
  if (raw === null || typeof raw !== 'object' || raw.v !== 1 || !isInt(raw.base))
    return { offset, base: -1, change: null, problem: 'not a version 1 registry record' };
  const change = asChange(raw);
  return change === null
    ? { offset, base: raw.base, change: null, problem: `a "${String(raw.op)}" record with missing or wrong fields` }
    : { offset, base: raw.base, change };
}

function asChange(r: Record<string, unknown>): Change | null {
  switch (r.op) {
    case 'register':
      return isSubject(r.subject) &&
        isInt(r.version) &&
        isInt(r.id) &&
        TYPES.has(r.schemaType as string) &&
        typeof r.schema === 'string' &&
        isReferences(r.references) &&
        typeof r.key === 'string'
        ? (r as unknown as RegisterRecord)
        : null;
    case 'delete':
      return isSubject(r.subject) && (r.version === null || isInt(r.version)) && typeof r.permanent === 'boolean'
        ? (r as unknown as DeleteRecord)
        : null;
    case 'config':
      return (r.subject === null || isSubject(r.subject)) &&
        (r.compatibility === null || typeof r.compatibility === 'string')
        ? (r as unknown as ConfigRecord)
        : null;
    case 'mode':
      return (r.subject === null || isSubject(r.subject)) && (r.mode === null || typeof r.mode === 'string')
        ? (r as unknown as ModeRecord)
        : null;
    default:
      return null;
  }
}

/** The `_schemas` topic: created on first open, read from its start, appended one record at a time. */
export class SchemaStore {
  private constructor(private readonly log: Log) {}

  static async open(log: Log): Promise<SchemaStore> {
    const exists = (await log.topics()).some((t) => t.name === SCHEMAS_TOPIC);
    if (!exists) {
      if (log.readOnly)
        throw new KappaError(
          'KAPPA_READ_ONLY',
          `The schema registry's topic ${SCHEMAS_TOPIC} does not exist yet and this log is read-only, so it cannot be created.`,
          { topic: SCHEMAS_TOPIC },
        );
      try {
        // Kept forever, as every topic by default: the registry's history is its state.
        await log.createTopic(SCHEMAS_TOPIC, { partitions: 1, retentionMs: -1 });
      } catch (err) {
        // Another process created it between the check and here.
        if (!(err instanceof KappaError && err.code === 'KAPPA_TOPIC_EXISTS')) throw err;
      }
    }
    const info = await log.topic(SCHEMAS_TOPIC);
    if (info.partitions !== 1)
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `The topic ${SCHEMAS_TOPIC} holds the schema registry and must have exactly one partition; it has ${info.partitions}.`,
        { topic: SCHEMAS_TOPIC, partitions: info.partitions },
      );
    return new SchemaStore(log);
  }

  /** The offset after the last durable record. */
  async end(): Promise<number> {
    return (await this.log.offsets(SCHEMAS_TOPIC, 0)).end;
  }

  /** The first offset still in the log (0 unless someone changed the topic's retention). */
  async start(): Promise<number> {
    return (await this.log.offsets(SCHEMAS_TOPIC, 0)).start;
  }

  /** The changes at offsets from `from` (inclusive) to `to` (exclusive), in order. */
  async *read(from: number, to: number): AsyncGenerator<StoredChange> {
    if (from >= to) return;
    for await (const batch of this.log.read(SCHEMAS_TOPIC, 0, from)) {
      for (const record of batch.records(from)) {
        if (record.offset >= to) return;
        yield decodeChange(record.value, record.offset);
      }
      if (batch.lastOffset + 1 >= to) return;
    }
  }

  /** Appends one change with the offset its writer's state was built to; resolves with its offset once durable. */
  async append(change: Change, base: number): Promise<number> {
    const [meta] = await this.log.append(SCHEMAS_TOPIC, [
      { key: change.subject ?? '', value: encodeChange(change, base), partition: 0 },
    ]);
    return meta.offset;
  }
}
