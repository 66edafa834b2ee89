/**
 * Topics with a format (issue 17: `topic(name, { format: avro(…) | protobuf(…) | jsonSchema(…) })`)
 * at the HTTP server. Their records are stored in Confluent's wire format: magic byte 0, the
 * writer schema's registry id (4 bytes, big-endian), then the payload.
 *
 * - Ingestion of JSON: each record is encoded with the schema registered under `<topic>-value` and
 *   then decoded again as the topic's readers (pipelines) will read it; a value that does not fit
 *   is refused with the field's path. The key and event-time extractors see the decoded value.
 * - Ingestion of framed bodies (`application/vnd.kappa.framed`, one record per request): the value
 *   must carry the magic byte and a schema id the registry knows, and its payload must decode to
 *   the topic's schema; it is stored as sent.
 * - Reads: values decoded to JSON (FormattedValues), a value that does not decode shown with the
 *   reason and its bytes in base64 (record-json.ts).
 *
 * The registered id comes from the engine, which registers each format's schema at start
 * (`engine.topicSchemas`). A server running without an engine registers the schema itself, as the
 * engine would (the same schema again keeps its id), on the first request that needs it.
 */
import { KappaError } from '../errors.ts';
import {
  FRAME_HEADER_BYTES,
  MAGIC_BYTE,
  type ParsedSchema,
  encodeAvro,
  encodeJson,
  encodeProtobuf,
} from '../formats/index.ts';
import { type Registry, RegistryError } from '../registry/index.ts';
import { formatPath } from '../schema/index.ts';
import { type Engine, type TopicDef, type TopicFormat, formatReader } from '../stream/index.ts';

/** How a topic with a format writes and reads its values, with the id of its registered schema. */
export interface TopicCodec {
  topic: string;
  format: TopicFormat;
  subject: string;
  /** The registry id of the topic's schema: what records Kappa encodes carry. */
  id: number;
  /** The value framed with `id`; throws KAPPA_SCHEMA_VIOLATION whose `details.path` names the field. */
  encode(value: unknown): Buffer;
  /** A framed value as the topic's readers see it (resolved to the topic's schema); throws the reason it cannot be. */
  decode(bytes: Uint8Array): unknown;
  /** Whether the registry knows a schema id (read again once when it does not). */
  knows(id: number): Promise<boolean>;
}

/** Why bytes are not a Confluent-framed value (too short, wrong magic byte), or null when they are framed. */
export function frameProblem(bytes: Uint8Array): string | null {
  if (bytes.length < FRAME_HEADER_BYTES)
    return `is ${bytes.length} bytes long, shorter than the ${FRAME_HEADER_BYTES}-byte header of Confluent's wire format (magic byte 0, then a 4-byte schema id)`;
  if (bytes[0] !== MAGIC_BYTE)
    return `starts with the byte 0x${bytes[0].toString(16).padStart(2, '0')}, not the magic byte 0 of Confluent's wire format${bytes[0] === 0x7b ? ' (it looks like plain JSON: send JSON as application/json)' : ''}`;
  return null;
}

/** The schema id of a framed value (check frameProblem first). */
export function frameSchemaId(bytes: Uint8Array): number {
  return ((bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4]) >>> 0;
}

/** The codecs of an app's topics with a format, built on first use and rebuilt when the registered id changes. */
export class TopicCodecs {
  private readonly built = new Map<string, Promise<TopicCodec>>();

  constructor(
    private readonly engine: Engine | null,
    private readonly registry: () => Promise<Registry>,
  ) {}

  /** The codec of a topic with a format. */
  async codecOf(def: TopicDef<unknown>): Promise<TopicCodec> {
    const registered = this.engine?.topicSchemas.get(def.name);
    let codec = this.built.get(def.name);
    if (codec !== undefined && registered !== undefined && (await codec).id !== registered.id) codec = undefined;
    if (codec === undefined) {
      codec = this.build(def, registered);
      this.built.set(def.name, codec);
      codec.catch(() => this.built.get(def.name) === codec && this.built.delete(def.name));
    }
    return codec;
  }

  private async build(
    def: TopicDef<unknown>,
    registered: { id: number; subject: string; schema: ParsedSchema } | undefined,
  ): Promise<TopicCodec> {
    const format = def.format!;
    const registry = await this.registry();
    const { id, subject, schema } = registered ?? (await register(registry, def.name, format));
    const reader = formatReader(format);
    const lookup = (n: number): ParsedSchema | undefined => (n === id ? schema : registry.schemaFor(n));
    const encode =
      format.type === 'AVRO'
        ? (v: unknown) => encodeAvro(id, schema, v)
        : format.type === 'PROTOBUF'
          ? (v: unknown) => encodeProtobuf(id, schema, format.message!, v)
          : (v: unknown) => encodeJson(id, v);
    return {
      topic: def.name,
      format,
      subject,
      id,
      encode,
      decode: (bytes) => reader.decode(bytes, lookup),
      async knows(n) {
        if (n === id || registry.schemaFor(n) !== undefined) return true;
        await registry.refresh();
        return registry.schemaFor(n) !== undefined;
      },
    };
  }
}

/** Registers a topic's schema under `<topic>-value` (the same schema again keeps its id), as the engine does at start. */
async function register(
  registry: Registry,
  topic: string,
  format: TopicFormat,
): Promise<{ id: number; subject: string; schema: ParsedSchema }> {
  const subject = `${topic}-value`;
  try {
    const { id } = await registry.register(subject, { schemaType: format.type, schema: format.schema, references: [] });
    return { id, subject, schema: registry.schemaFor(id)! };
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    throw new KappaError(
      'KAPPA_CONFIG_INVALID',
      `Topic "${topic}" has a ${format.type} format whose schema the schema registry refuses under subject "${subject}", so its records cannot be encoded: ${err.message} Nothing was appended.`,
      { topic, subject },
      err,
    );
  }
}

/**
 * The field path and reason of a value an encoder or decoder refused, as a RecordError gives them:
 * the path within the record (the Avro/Protobuf root name left out, as JSON topics' paths have none).
 */
export function refusal(codec: TopicCodec, err: unknown): { path: string; reason: string } {
  if (!(err instanceof KappaError)) return { path: '', reason: `cannot be encoded: ${(err as Error)?.message ?? err}` };
  const d = (err.details ?? {}) as { path?: unknown; issues?: { path?: unknown; message?: unknown }[] };
  const issue = Array.isArray(d.issues) ? d.issues[0] : undefined;
  if (issue !== undefined && typeof issue.message === 'string')
    return { path: issuePath(issue.path), reason: issue.message };
  let path = typeof d.path === 'string' ? d.path : '';
  const root = rootName(codec);
  if (root !== null && (path === root || path === '(root)')) path = '';
  else if (root !== null && path.startsWith(`${root}.`)) path = path.slice(root.length + 1);
  return { path, reason: err.message };
}

/** The name Avro and Protobuf paths start with (the record's or message's short name), or null. */
function rootName(codec: TopicCodec): string | null {
  if (codec.format.type === 'PROTOBUF') return codec.format.message!.split('.').at(-1)!;
  if (codec.format.type !== 'AVRO') return null;
  try {
    const name = (JSON.parse(codec.format.schema) as { name?: unknown }).name;
    return typeof name === 'string' ? name.split('.').at(-1)! : null;
  } catch {
    return null;
  }
}

/** An issue's path: a JSON pointer (`/items/0/qty`) as `items[0].qty`; a path already in that form as it is. */
function issuePath(p: unknown): string {
  const s = typeof p === 'string' ? p : '';
  return s.startsWith('/') ? formatPath(s) : s;
}
