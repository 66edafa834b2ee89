/**
 * The schemas of topics that declare a format (dsl-formats.ts), on a log's schema registry
 * (src/registry/, the `_schemas` topic):
 *
 * - `registerTopicSchemas`, at engine start: each such topic's schema is registered under the
 *   subject `<topic>-value` (the name Confluent serializers use), so a schema that does not parse,
 *   or breaks the subject's compatibility level, stops the start with the reason. The id it gets is
 *   the one records Kappa writes to the topic (HTTP ingestion) carry.
 * - `SchemaCatalog`, one per log object: what decoding a record needs, the writer schema its id
 *   names, synchronously. A record naming an id the catalog has not seen makes the lookup throw
 *   `SchemaRefreshNeeded`; the task's loop then reads the registry's new records (`learn`) and goes
 *   on from that record (`processLearning`). An id still unknown after that is unknown for
 *   ABSENT_MS: its records go to the dead-letter topic with the reason, without reading the
 *   registry again for each.
 */
import { KappaError } from '../errors.ts';
import { CODECS, type ParsedSchema, type WriterSchemaLookup } from '../formats/index.ts';
import type { Log } from '../log/index.ts';
import { Registry, RegistryError } from '../registry/index.ts';
import type { TopicDef } from './dsl.ts';
import type { TopicFormat } from './dsl-formats.ts';
import { formatReader } from './value-decoder.ts';
import { FoldPause, type TaskPlan, type TaskState } from './task-plan.ts';

/** How long an id the registry does not know stays unknown before a record naming it reads the registry again. */
const ABSENT_MS = 1_000;

/** Thrown by a catalog's lookup for an id it has not seen: the task reads the registry and goes on from `offset`. */
export class SchemaRefreshNeeded extends FoldPause {
  constructor(readonly schemaId: number) {
    super(`schema id ${schemaId} is not known yet; the schema registry is read again`);
  }

  resume(state: TaskState): Promise<void> {
    if (state.catalog === null) throw this;
    return state.catalog.learn(this.schemaId);
  }
}

/** The FoldPause behind an error a fold threw (a decoder may wrap the catalog's), or null. */
export function pauseIn(err: unknown): FoldPause | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++)
    if (e instanceof FoldPause) return e;
  return null;
}

const catalogs = new WeakMap<Log, SchemaCatalog>();

/** The writer schemas of one log's registry, as decoders need them. */
export class SchemaCatalog {
  private registry: Registry | null = null;
  private opening: Promise<Registry> | null = null;
  private readonly absent = new Map<number, number>();

  private constructor(private readonly log: Log) {}

  /** The catalog of a log object (one per log and thread). */
  static of(log: Log): SchemaCatalog {
    let c = catalogs.get(log);
    if (c === undefined) catalogs.set(log, (c = new SchemaCatalog(log)));
    return c;
  }

  /** The registry on the log, opened on first use. */
  open(): Promise<Registry> {
    this.opening ??= Registry.open({ log: this.log, codecs: CODECS }).then(
      (r) => (this.registry = r),
      (err) => {
        this.opening = null;
        throw err;
      },
    );
    return this.opening;
  }

  /** The writer schema of an id; throws SchemaRefreshNeeded for one not seen yet, undefined for one the registry does not know. */
  readonly lookup: WriterSchemaLookup = (id) => {
    const found = this.registry?.schemaFor(id);
    if (found !== undefined) return found;
    const until = this.absent.get(id);
    if (until !== undefined && Date.now() < until) return undefined;
    throw new SchemaRefreshNeeded(id);
  };

  /** Reads the registry's new records, so that `lookup(id)` knows the id or (for a while) knows it is unknown. */
  async learn(id: number): Promise<void> {
    const registry = await this.open();
    await registry.refresh();
    if (registry.schemaFor(id) === undefined) this.absent.set(id, Date.now() + ABSENT_MS);
    else this.absent.delete(id);
  }
}

/**
 * Folds a batch with `plan.processBatch` from `fromOffset`: when the fold pauses at a record (it
 * names a schema id the catalog has not seen, or a joined table is not read far enough: a
 * FoldPause), waits for what it needs and goes on from that record. Returns how many records were
 * folded; when what it waits for is not there yet, the fold stops at that record and says so in
 * `state.stoppedAt`. Synchronous (no promise) in the usual case, when no record has to wait. `pausedAt(offset)`
 * is told, before each wait, that every record before `offset` is folded (a drain during the wait
 * covers exactly those).
 */
export function processLearning(
  plan: TaskPlan,
  bytes: Buffer,
  fromOffset: number,
  state: TaskState,
  pausedAt?: (offset: number) => void,
): number | Promise<number> {
  state.tables?.stale(); // each batch looks at the tables' ends again
  try {
    return plan.processBatch(bytes, fromOffset, state);
  } catch (err) {
    const paused = pauseIn(err);
    if (paused === null) throw err;
    return (async () => {
      let folded = 0;
      let next: FoldPause | null = paused;
      let from = fromOffset;
      while (next !== null) {
        folded += next.offset - from;
        from = next.offset;
        pausedAt?.(from);
        if ((await next.resume(state)) === false) {
          state.stoppedAt = from;
          return folded;
        }
        try {
          folded += plan.processBatch(bytes, from, state);
          next = null;
        } catch (again) {
          next = pauseIn(again);
          if (next === null) throw again;
        }
      }
      return folded;
    })();
  }
}

/** A topic's registered schema: the id records Kappa writes carry, and the schema itself. */
export interface TopicSchema {
  topic: string;
  subject: string;
  id: number;
  version: number;
  schema: ParsedSchema;
}

/**
 * Registers the schema of every topic with a format under `<topic>-value` (the same schema again
 * keeps its id and version). A schema the registry refuses stops the start: KAPPA_CONFIG_INVALID
 * naming the topic and the reason (the field and the rule, for an incompatible one).
 */
export async function registerTopicSchemas(
  log: Log,
  topics: readonly TopicDef<unknown>[],
): Promise<Map<string, TopicSchema>> {
  const out = new Map<string, TopicSchema>();
  const formatted = topics.filter((t) => t.format !== null);
  if (formatted.length === 0) return out;
  const registry = await SchemaCatalog.of(log).open();
  for (const t of formatted) {
    const subject = `${t.name}-value`;
    const format = t.format!;
    let got: { id: number; version: number };
    try {
      got = await registry.register(subject, { schemaType: format.type, schema: format.schema, references: [] });
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `Topic "${t.name}": its ${format.type} schema cannot be registered under subject "${subject}": ${err.message}`,
        { topic: t.name, subject },
        err,
      );
    }
    out.set(t.name, { topic: t.name, subject, ...got, schema: registry.schemaFor(got.id)! });
  }
  return out;
}

/**
 * Record values of topics with a format, decoded to plain values for people and JSON clients
 * (HTTP reads, event streams, `kappa consume`): each read with its writer schema resolved to the
 * topic's schema, as a pipeline sees it. One per log; decoders are built once per topic.
 */
export class FormattedValues {
  private readonly decoders = new Map<string, ReturnType<typeof formatReader>['decode']>();
  private readonly catalog: SchemaCatalog;

  constructor(
    log: Log,
    private readonly formats: ReadonlyMap<string, TopicFormat>,
  ) {
    this.catalog = SchemaCatalog.of(log);
  }

  /** The format of a topic, or null when its records are plain JSON (or the topic is not in the config). */
  formatOf(topic: string): TopicFormat | null {
    return this.formats.get(topic) ?? null;
  }

  /**
   * A value of a topic with a format, decoded; `{ error }` says why it cannot be (the reason its
   * record went, or would go, to the dead-letter topic).
   */
  async decode(topic: string, bytes: Uint8Array): Promise<{ value: unknown } | { error: string }> {
    const format = this.formats.get(topic);
    if (format === undefined) throw new Error(`invariant: topic "${topic}" has no format`);
    let decode = this.decoders.get(topic);
    if (decode === undefined) this.decoders.set(topic, (decode = formatReader(format).decode));
    for (let attempt = 0; ; attempt++) {
      try {
        return { value: decode(bytes, this.catalog.lookup) };
      } catch (err) {
        const needed = pauseIn(err);
        if (needed instanceof SchemaRefreshNeeded && attempt === 0) {
          await this.catalog.learn(needed.schemaId);
          continue;
        }
        return { error: (err as Error).message };
      }
    }
  }
}

/** A decoded value as JSON can hold it: bigints as decimal strings, bytes as base64, Maps as objects. */
export function jsonSafe(v: unknown, depth = 0): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v !== 'object' || v === null || depth > 1000) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (Array.isArray(v)) return v.map((x) => jsonSafe(x, depth + 1));
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonSafe(x, depth + 1)]));
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = jsonSafe(x, depth + 1);
  return out;
}
