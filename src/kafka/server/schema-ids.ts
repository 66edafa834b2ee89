/**
 * Schema-id checks on produced records (issue 17). A topic whose config declares a format
 * (`avro(…)`, `protobuf(…)`, `jsonSchema(…)`) with `checkSchemaIds` (the default) holds records in
 * Confluent's wire format: magic byte 0, then the 4-byte id of the writer schema in Kappa's registry.
 * Before a produced batch of such a topic is appended, each record's value is checked:
 *
 * - it is framed (at least 5 bytes, the first 0): otherwise it was most likely written without a
 *   schema-registry serializer, and no task could read it;
 * - its id is one the registry knows (the registry is read again once before an id is refused, so
 *   a schema a producer registered a moment ago is found);
 * - that schema is of the topic's type (an Avro topic does not take a Protobuf-framed record).
 *
 * The payload itself is not decoded here: a payload the writer schema cannot read goes to the
 * topic's dead-letter topic when a task reads it. A null value (a tombstone) is accepted. A batch
 * whose records cannot be read at all is left to the log's own checks, which refuse it.
 *
 * Order: when a check must wait (the registry is opened or read), the appends of later batches to
 * the same partition wait behind it (`sequence`), so pipelined requests are stored in the order
 * they were sent, as an idempotent producer needs.
 */
import { RecordBatch, checkBatch, decompressBatch, type Log } from '../../log/index.ts';
import { protobufFrameProblem } from '../../formats/index.ts';
import type { Registry } from '../../registry/index.ts';
import { SchemaCatalog, type TopicDef } from '../../stream/index.ts';

type TopicFormat = NonNullable<TopicDef<unknown>['format']>;

/** Magic byte + 4-byte schema id (formats/types.ts FRAME_HEADER_BYTES). */
const FRAME_HEADER_BYTES = 5;

/** Why a partition's batches are refused: the record (its index within its batch) and the reason. */
export interface RecordProblem {
  /** Index of the refused batch among the partition's batches (0 for the usual single batch). */
  batch: number;
  /** Index of the record within its batch (Kafka's record_errors.batch_index). */
  record: number;
  message: string;
}

/** What a record names, once read: its value's schema id, or why it has none. */
type Framing = { record: number; batch: number; id: number; value: Buffer } | RecordProblem;

export class SchemaIdChecks {
  private registry: Registry | null = null;
  private readonly tails = new Map<string, Promise<void>>();

  constructor(
    private readonly log: Log,
    private readonly formats: ReadonlyMap<string, TopicFormat>,
  ) {}

  /** The topics of a config, keeping those whose format asks for the check; null when none does. */
  static of(log: Log, topics: readonly { name: string; format: TopicFormat | null }[]): SchemaIdChecks | null {
    const formats = new Map<string, TopicFormat>();
    for (const t of topics) if (t.format !== null && t.format.checkSchemaIds) formats.set(t.name, t.format);
    return formats.size === 0 ? null : new SchemaIdChecks(log, formats);
  }

  /** Whether produced records of `topic` are checked. */
  covers(topic: string): boolean {
    return this.formats.has(topic);
  }

  /**
   * The first record of `batches` (raw RecordBatch v2, as produced) that must be refused, or null.
   * Synchronous when every id named is already known; a promise when the registry must be read.
   */
  check(topic: string, batches: readonly Buffer[]): RecordProblem | null | Promise<RecordProblem | null> {
    const format = this.formats.get(topic)!;
    const framings: Framing[] = [];
    for (let b = 0; b < batches.length; b++) {
      const found = framingsOf(batches[b], b);
      if (found === null) return null; // unreadable: the log refuses it
      framings.push(...found);
    }
    const verdict = this.verdict(topic, format, framings);
    if (verdict !== 'unknown') return verdict;
    return (async () => {
      const registry = await this.open();
      await registry.refresh();
      const again = this.verdict(topic, format, framings);
      return again === 'unknown' ? this.unknownProblem(framings) : again;
    })();
  }

  /**
   * Checks `batches` of a partition, then calls `then` with the verdict (it starts the appends, or
   * answers the refusal). Synchronous when the check is and no earlier batch of the partition is
   * still waiting for its own; otherwise `then` runs once the earlier batches' appends have started.
   */
  checkInOrder<T>(
    topic: string,
    partition: number,
    batches: readonly Buffer[],
    then: (problem: RecordProblem | null) => Promise<T>,
  ): Promise<T> {
    const key = `${topic}\u0000${partition}`;
    const before = this.tails.get(key);
    const verdict = this.check(topic, batches);
    if (before === undefined && !(verdict instanceof Promise)) return then(verdict);
    let started!: () => void;
    const tail = new Promise<void>((resolve) => (started = resolve));
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    const run = async (): Promise<T> => {
      try {
        await before;
        return then(await verdict);
      } finally {
        started(); // `then` has started the appends (or refused): the next batch may go
      }
    };
    return run();
  }

  private open(): Promise<Registry> {
    if (this.registry !== null) return Promise.resolve(this.registry);
    return SchemaCatalog.of(this.log)
      .open()
      .then((r) => (this.registry = r));
  }

  /** The first problem, null when every record passes, or 'unknown' when an id must be looked up in the registry. */
  private verdict(topic: string, format: TopicFormat, framings: readonly Framing[]): RecordProblem | null | 'unknown' {
    for (const f of framings) {
      if ('message' in f) return f;
      const schema = this.registry?.schemaFor(f.id);
      if (schema === undefined) return 'unknown';
      if (schema.type !== format.type)
        return {
          batch: f.batch,
          record: f.record,
          message: `${where(f)} names schema id ${f.id}, which is a ${schema.type} schema, but topic "${topic}" holds ${format.type} records (its format in the config). Serialize with a ${format.type} serializer registered under "${topic}-value".`,
        };
      const frame = schema.type === 'PROTOBUF' ? protobufFrameProblem(schema, f.value) : null;
      if (frame !== null) return { batch: f.batch, record: f.record, message: `${where(f)} cannot be read: ${frame}.` };
    }
    return null;
  }

  private unknownProblem(framings: readonly Framing[]): RecordProblem {
    const f = framings.find((x) => !('message' in x) && this.registry!.schemaFor(x.id) === undefined) as {
      record: number;
      batch: number;
      id: number;
    };
    return {
      batch: f.batch,
      record: f.record,
      message: `${where(f)} names schema id ${f.id}, which Kappa's schema registry does not know. Register the schema first (the serializer does it when auto-registration is on; or POST it to /schemas/subjects/<topic>-value/versions on Kappa's HTTP API), and serialize with the id it gets.`,
    };
  }
}

function where(f: { batch: number; record: number }): string {
  return f.batch === 0 ? `Record ${f.record}` : `Record ${f.record} of batch ${f.batch}`;
}

/** Each record's schema id, or its problem; null when the batch cannot be read (the log refuses it). */
function framingsOf(raw: Buffer, batch: number): Framing[] | null {
  let records;
  try {
    if (checkBatch(raw, 0, raw.length).problem !== null) return null;
    records = new RecordBatch(decompressBatch(raw)).records();
  } catch {
    return null;
  }
  const out: Framing[] = [];
  for (let i = 0; i < records.length; i++) {
    const value = records[i].value;
    if (value === null) continue;
    if (value.length < FRAME_HEADER_BYTES || value[0] !== 0) {
      out.push({ batch, record: i, message: notFramed(batch, i, value) });
      break;
    }
    out.push({ batch, record: i, id: value.readInt32BE(1), value });
  }
  return out;
}

function notFramed(batch: number, record: number, value: Buffer): string {
  const what =
    value.length === 0
      ? 'is empty'
      : value[0] !== 0
        ? `starts with byte 0x${value[0].toString(16).padStart(2, '0')}, not the magic byte 0`
        : `is ${value.length} byte${value.length === 1 ? '' : 's'} long, too short`;
  return `${where({ batch, record })}'s value ${what}: this topic's records are in Confluent's wire format (magic byte 0, a 4-byte schema id, then the payload). Produce with a schema-registry serializer pointed at Kappa's registry (/schemas on its HTTP API).`;
}
