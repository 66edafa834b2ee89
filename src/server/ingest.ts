/**
 * HTTP ingestion: records in (one JSON object, a JSON array, or NDJSON streamed line by line),
 * checked against the topic's schema, appended, acknowledged only once durable.
 *
 * All or nothing: every record of a request is checked before any is appended, so a bad record
 * anywhere means a 400 listing each bad record (index, field path, reason) and an untouched log —
 * unless the topic says `onInvalid: 'dlq'`, in which case the good records are appended and the bad
 * ones go to `<topic>.dlq` with headers saying where they came from and why. An NDJSON body is
 * never held whole: its checked lines wait in memory up to SPOOL_MEMORY_BYTES and in a temporary
 * file beyond, and are appended from there in batches.
 *
 * Retries: a request with an Idempotency-Key is appended as an idempotent producer of the log
 * (idempotency.ts), so a retry is recognised even after a crash; the running server also keeps the
 * answers of recent keys in memory and gives them back without reading the log.
 *
 * Limits: JSON nested deeper than JSON_DEPTH_MAX, an NDJSON line longer than LINE_BYTES_MAX, and an
 * event time outside what a Date can hold are refused. A refusal of the body's size is answered
 * only after the rest of the body (up to TOO_LARGE_DRAIN_BYTES) has been read, so the client sees
 * the 413 rather than a reset connection.
 *
 * Load: at most `inFlightBytesMax` of request bodies are being ingested at once; a request past it
 * gets 429 with Retry-After before anything is read. A full disk is a 503 with Retry-After; in both
 * cases nothing was appended.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { KappaError } from '../errors.ts';
import type { Log, ProducerRecord, RecordHeader } from '../log/index.ts';
import { type FlatDecoder, type RecordSchema, type SchemaIssue, compileFlatDecoder, compileSchema, formatPath } from '../schema/index.ts';
import type { AppDef, TopicDef } from '../stream/index.ts';
import { KeyedRequest } from './idempotency.ts';

/** Checked NDJSON lines kept in memory before they spill to a temporary file. */
const SPOOL_MEMORY_BYTES = 8 * 1024 * 1024;
/** Bytes past the body limit read (and dropped) so the client gets its 413; past them the connection is cut. */
const TOO_LARGE_DRAIN_BYTES = 16 * 1024 * 1024;
/** Longest NDJSON line (one record) accepted. */
export const LINE_BYTES_MAX = 16 * 1024 * 1024;
/** Deepest nesting of arrays and objects accepted in any JSON the server parses (Jackson's default is 1,000 too). */
export const JSON_DEPTH_MAX = 1000;
/** Largest event time a record may have, either way of 1970: what a JavaScript Date can hold. */
export const EVENT_TIME_MS_MAX = 8.64e15;
/** Records per append call. */
const APPEND_BATCH = 2000;
/** Bad records listed in a 400 at most (the count is always given). */
const ERRORS_LISTED_MAX = 100;
const IDEMPOTENCY_KEYS_MAX = 10_000;
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** Acknowledgements kept for retries at most (about 16 bytes each); the oldest keys go first. */
const IDEMPOTENCY_ACKS_MAX = 10_000_000;

export interface RecordError {
  index: number;
  path: string;
  reason: string;
}

/** Column-wise, so a million acknowledgements are three packed arrays, not a million objects. */
export interface Acks {
  /** The record's position in the request (0-based, counting every record, bad ones included). */
  index: number[];
  partition: number[];
  offset: number[];
}

export interface IngestResult {
  /** Where each appended record went, in request order (records sent to the DLQ are left out). */
  acks: Acks;
  /** Records that failed the schema and went to `<topic>.dlq` (topics with onInvalid 'dlq'). */
  deadLettered: (RecordError & { partition: number; offset: number })[];
}

interface TopicIngest {
  def: TopicDef<unknown>;
  schema: RecordSchema<unknown> | null;
  /** Top-level properties the schema types as integer: checked to be exact (safe) integers. */
  integerFields: string[];
  /** The fast decoder of compact flat records (null when the schema is not a flat object of scalars). */
  flat: FlatDecoder | null;
}

/** A checked record waiting to be appended. */
interface Checked {
  index: number;
  key: string | null;
  timestamp: number | undefined;
  /** The record's JSON: the request's own bytes for an NDJSON line (already checked as UTF-8), else a string. */
  value: string | Buffer;
  /** For a dead letter: JSON [path, reason]. */
  error?: string;
}

/** A request's Idempotency-Key and its body's digest (SHA-256, hex; asked for once the whole body is read). */
export interface IdempotencyKey {
  key: string;
  digest: () => string;
}

/** A digest computed as the body streams by, once. */
export class BodyDigest {
  private readonly hash = createHash('sha256');
  private hex: string | null = null;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }

  value(): string {
    return (this.hex ??= this.hash.digest('hex'));
  }
}

export interface IngestorOptions {
  log: Log;
  app: AppDef;
  /** Bytes of request bodies being ingested at once before requests get 429 (default 256 MiB). */
  inFlightBytesMax?: number;
  /** Called with the count, bytes and duration (seconds, until durable) of each append (metrics). */
  onAppended?: (topic: string, records: number, bytes: number, seconds: number) => void;
}

export class Ingestor {
  private readonly topics = new Map<string, TopicIngest>();
  private inFlightBytes = 0;
  private readonly inFlightBytesMax: number;
  private readonly idempotent = new Map<string, { digest: Promise<string>; atMs: number; result: Promise<IngestResult>; acks: number }>();
  /** Acknowledgements kept for idempotent retries, over every key. */
  private heldAcks = 0;

  constructor(private readonly opts: IngestorOptions) {
    for (const def of opts.app.topics) {
      const properties = (def.schema as { properties?: Record<string, { type?: unknown }> } | null)?.properties ?? {};
      const integerFields = Object.keys(properties).filter((k) => properties[k]?.type === 'integer');
      this.topics.set(def.name, { def, schema: def.schema ? compileSchema(def.schema as object, { name: def.name }) : null, integerFields, flat: def.schema ? compileFlatDecoder(def.schema as object) : null });
    }
    this.inFlightBytesMax = opts.inFlightBytesMax ?? 256 * 1024 * 1024;
  }

  /** The topic's ingestion settings; 404 for a topic the config does not define. */
  private topic(name: string): TopicIngest {
    const t = this.topics.get(name);
    if (t === undefined) {
      throw new KappaError('KAPPA_UNKNOWN_TOPIC', `Topic "${name}" is not defined in the config, so records cannot be sent to it. Topics: ${[...this.topics.keys()].join(', ') || 'none'}.`, { topic: name });
    }
    return t;
  }

  /** Throws 404 for an unknown topic, before a body is read. */
  checkTopic(name: string): void {
    this.topic(name);
  }

  /**
   * Runs an ingestion under the in-flight budget (429 when over it) and an idempotency key: a
   * request whose key this server saw gets the first attempt's result (422 if its body differs)
   * without reading the log. `run` starts the ingestion and says the body's digest once it is known;
   * `digestOfRetry` reads a retried body only to compare it. Keys the server did not see (it
   * restarted) are recognised by the log (idempotency.ts).
   */
  async admit(
    topic: string,
    declaredBytes: number,
    key: string | null,
    digestOfRetry: () => Promise<string>,
    run: () => { digest: Promise<string>; result: Promise<IngestResult> },
  ): Promise<IngestResult> {
    const id = `${topic}\u0000${key}`;
    if (key !== null) {
      this.expireKeys();
      const seen = this.idempotent.get(id);
      if (seen !== undefined) {
        const [mine, theirs] = await Promise.all([digestOfRetry(), seen.digest]);
        if (mine !== theirs) {
          throw new KappaError('KAPPA_IDEMPOTENCY_KEY_REUSED', `Idempotency-Key "${key}" was already used for a different request to topic "${topic}". Use a new key for new records.`, { key });
        }
        return seen.result;
      }
    }
    const bytes = Math.max(declaredBytes, 1);
    if (this.inFlightBytes > 0 && this.inFlightBytes + bytes > this.inFlightBytesMax) {
      throw new KappaError('KAPPA_OVERLOADED', `The server is already ingesting ${Math.round(this.inFlightBytes / 1048576)} MiB; nothing was appended. Retry shortly.`, { retryAfterSeconds: 1 });
    }
    this.inFlightBytes += bytes;
    try {
      const attempt = run();
      attempt.digest.catch(() => {}); // fails with the result, which is what the caller sees
      if (key !== null) {
        // Kept before it settles, so a retry racing the first attempt waits for it. A failure frees
        // the key: a retry then goes to the log, which drops whatever part of the request the
        // failed attempt appended and appends the rest.
        const entry = { ...attempt, atMs: Date.now(), acks: 0 };
        this.idempotent.set(id, entry);
        attempt.result.then(
          (r) => {
            if (this.idempotent.get(id) !== entry) return; // expired meanwhile
            entry.acks = r.acks.index.length;
            this.heldAcks += entry.acks;
            this.expireKeys();
          },
          () => {
            if (this.idempotent.get(id) === entry) this.idempotent.delete(id);
          },
        );
      }
      return await attempt.result;
    } finally {
      this.inFlightBytes -= bytes;
    }
  }

  private expireKeys(): void {
    const now = Date.now();
    for (const [k, v] of this.idempotent) {
      if (this.idempotent.size <= IDEMPOTENCY_KEYS_MAX && this.heldAcks <= IDEMPOTENCY_ACKS_MAX && now - v.atMs < IDEMPOTENCY_TTL_MS) break;
      this.idempotent.delete(k); // oldest first: a Map iterates in insertion order
      this.heldAcks -= v.acks;
    }
  }

  /** A parsed JSON body: one object, or an array of records. */
  async ingestJson(topicName: string, body: unknown, idempotency: IdempotencyKey | null = null): Promise<IngestResult> {
    const topic = this.topic(topicName);
    const values = Array.isArray(body) ? body : [body];
    const good = new Spool();
    const bad = new BadRecords(topic.def.onInvalid === 'dlq');
    try {
      for (let index = 0; index < values.length; index++) {
        const r = this.check(topic, index, values[index], null);
        const wait = 'reason' in r ? bad.add(r, safeStringify(values[index])) : bad.count === 0 || bad.dlq ? good.add(r) : undefined;
        if (wait !== undefined) await wait;
      }
      return await this.finish(topic, good, bad, idempotency);
    } finally {
      good.dispose();
      bad.dispose();
    }
  }

  /**
   * An NDJSON body, read as it streams; `limitBytes` caps it (413 past it, nothing appended).
   * `digest` sees every byte of the body.
   */
  async ingestNdjson(topicName: string, body: Readable, limitBytes: number, idempotency: IdempotencyKey | null = null, digest?: BodyDigest): Promise<IngestResult> {
    const topic = this.topic(topicName);
    const good = new Spool();
    const bad = new BadRecords(topic.def.onInvalid === 'dlq');
    try {
      let index = 0;
      for await (const chunk of lines(body, limitBytes, digest)) {
        for (const line of chunk) {
          let bytes = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
          // A byte order mark is not part of the record: validated and stored without it.
          if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
          if (bytes.length === 0) continue;
          const r = this.checkBytes(topic, index, bytes);
          // Once the request is refused, good records are not kept.
          const wait = 'reason' in r ? bad.add(r, bytes.toString('utf8')) : bad.count === 0 || bad.dlq ? good.add(r) : undefined;
          if (wait !== undefined) await wait;
          index++;
        }
      }
      return await this.finish(topic, good, bad, idempotency);
    } finally {
      good.dispose();
      bad.dispose();
    }
  }

  /** Refuses the request (400) if it has bad records, or dead-letters them; then appends the good ones. */
  private async finish(topic: TopicIngest, good: Spool, bad: BadRecords, idempotency: IdempotencyKey | null): Promise<IngestResult> {
    const name = topic.def.name;
    if (bad.count === 0 && good.size === 0) throw new KappaError('KAPPA_INVALID_RECORD', 'The request holds no records: send a JSON object, a non-empty array, or NDJSON lines.', { topic: name });
    if (bad.count > 0 && !bad.dlq) {
      const first = bad.listed[0];
      throw new KappaError(
        'KAPPA_SCHEMA_VIOLATION',
        `${bad.count} record${bad.count === 1 ? '' : 's'} of the request ${bad.count === 1 ? 'is' : 'are'} invalid (the first: record ${first.index}${first.path ? ` at ${first.path}` : ''} ${first.reason}); nothing was appended.`,
        { topic: name, invalid: bad.count, records: bad.listed },
      );
    }
    const keyed = idempotency === null ? null : new KeyedRequest(this.opts.log, idempotency.key, idempotency.digest, this.opts.onAppended);
    const acks: Acks = { index: [], partition: [], offset: [] };
    try {
      await good.drain(async (batch) => {
        const at = acks.index.length;
        const meta = await this.append(keyed, name, batch, (i, offset) => (acks.offset[at + i] = offset));
        for (let i = 0; i < batch.length; i++) {
          acks.index.push(batch[i].index);
          acks.partition.push(meta.partition[i]);
          acks.offset.push(meta.offset[i]);
        }
      });
    } catch (err) {
      // A large request is appended in several calls: say how much of it is in the log.
      if (acks.index.length === 0 || !(err instanceof KappaError)) throw err;
      throw new KappaError(
        err.code,
        `${err.message} The first ${acks.index.length} records of the request (up to index ${acks.index[acks.index.length - 1]}) were appended before it; the rest were not.${keyed === null ? '' : ' Send the request again with the same Idempotency-Key to append only the rest.'}`,
        { ...err.details, appended: acks.index.length, lastAppendedIndex: acks.index[acks.index.length - 1] },
        err,
      );
    }
    const deadLettered: IngestResult['deadLettered'] = [];
    if (bad.count > 0) {
      const dlq = `${name}.dlq`;
      if (!(await this.opts.log.topics()).some((t) => t.name === dlq)) {
        await this.opts.log.createTopic(dlq, { partitions: (await this.opts.log.topic(name)).partitions }).catch((err: unknown) => {
          if (!(err instanceof KappaError && err.code === 'KAPPA_TOPIC_EXISTS')) throw err;
        });
      }
      await bad.spool!.drain(async (batch) => {
        const at = deadLettered.length;
        const meta = await this.append(
          keyed,
          dlq,
          batch.map((c) => ({ ...c, key: null, headers: provenance(name, c.index, c.error!) })),
          (i, offset) => (deadLettered[at + i].offset = offset),
        );
        batch.forEach((c, i) => {
          const [path, reason] = JSON.parse(c.error!) as [string, string];
          deadLettered.push({ index: c.index, path, reason, partition: meta.partition[i], offset: meta.offset[i] });
        });
      });
    }
    // Originals of a retry that the log's producer state no longer holds (big requests): looked up.
    await keyed?.resolve();
    return { acks, deadLettered };
  }

  /** Appends checked records; with a key, as the request's idempotent producer (`found` then gets offsets looked up later). */
  private async append(
    keyed: KeyedRequest | null,
    topic: string,
    records: (Checked & { headers?: RecordHeader[] })[],
    found: (i: number, offset: number) => void,
  ): Promise<{ partition: number[]; offset: number[] }> {
    if (keyed !== null) return keyed.append(topic, records, found);
    const started = performance.now();
    const meta = await this.opts.log.append(
      topic,
      records.map((c): ProducerRecord => ({ key: c.key, value: c.value, timestamp: c.timestamp, ...(c.headers ? { headers: c.headers } : {}) })),
    );
    let bytes = 0;
    for (const r of records) bytes += r.value.length;
    this.opts.onAppended?.(topic, records.length, bytes, (performance.now() - started) / 1000);
    return { partition: meta.map((m) => m.partition), offset: meta.map((m) => m.offset) };
  }

  /** A record's bytes (one NDJSON line): UTF-8 and JSON checked, then the schema. */
  private checkBytes(topic: TopicIngest, index: number, bytes: Buffer): Checked | RecordError {
    // Nesting deeper than the limit needs more bytes than the limit: short lines are not scanned.
    if (bytes.length > JSON_DEPTH_MAX && jsonTooDeep(bytes, JSON_DEPTH_MAX)) return { index, path: '', reason: `nests arrays and objects more than ${JSON_DEPTH_MAX} deep` };
    if (topic.flat !== null) {
      // The common compact flat object, scanned once (ASCII only, so valid UTF-8); anything else takes the full path.
      const fast = topic.flat(bytes, 0, bytes.length);
      if (fast !== undefined) {
        if (!topic.schema!.validate(fast)) return issueError(index, topic.schema!.lastIssues());
        return this.check(topic, index, fast, bytes);
      }
    }
    if (topic.schema !== null) {
      const decoded = topic.schema.decode(bytes);
      if (!decoded.ok) return issueError(index, decoded.issues);
      return this.check(topic, index, decoded.value, bytes);
    }
    const text = bytes.toString('utf8');
    if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(bytes)) return { index, path: '', reason: 'is not valid UTF-8' };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { index, path: '', reason: `is not valid JSON: ${(err as Error).message.slice(0, 200)}` };
    }
    return this.check(topic, index, value, text);
  }

  /** A parsed value: the schema, then the key and time extractors. `text` is its JSON when already known. */
  private check(topic: TopicIngest, index: number, value: unknown, text: string | Buffer | null): Checked | RecordError {
    if (topic.schema !== null && text === null && !topic.schema.validate(value)) return issueError(index, topic.schema.lastIssues());
    const huge = nonFinite(value, '');
    if (huge !== null) return { index, path: huge, reason: 'is a number too large for a double (JSON.parse makes it Infinity)' };
    if (typeof value === 'object' && value !== null) {
      for (const k of topic.integerFields) {
        const n = (value as Record<string, unknown>)[k];
        if (typeof n === 'number' && !Number.isSafeInteger(n)) return { index, path: k, reason: 'is a whole number beyond ±9007199254740991 (2^53 - 1), which cannot be held exactly; send it as a string' };
      }
    }
    let key: string | null = null;
    let timestamp: number | undefined;
    try {
      if (topic.def.key !== null) {
        const k = topic.def.key(value);
        key = k === null || k === undefined ? null : String(k);
      }
      if (topic.def.time !== null) {
        const t = topic.def.time(value);
        if (typeof t !== 'number' || !Number.isFinite(t)) return { index, path: '', reason: `has no event time: the topic's time extractor returned ${JSON.stringify(t) ?? 'undefined'}` };
        if (Math.abs(t) > EVENT_TIME_MS_MAX) {
          return { index, path: pathOf(value, t, ''), reason: `gives the event time ${t}, outside what a date can hold (±${EVENT_TIME_MS_MAX} ms around 1970, years -271821 to 275760)` };
        }
        timestamp = Math.trunc(t);
      }
    } catch (err) {
      return { index, path: '', reason: `could not be keyed or timed: ${(err as Error)?.message ?? String(err)}` };
    }
    return { index, key, timestamp, value: text ?? JSON.stringify(value) };
  }
}

/** The path of the first number in `v` that is not finite (1e400 parses as Infinity), or null. */
function nonFinite(v: unknown, path: string): string | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : path;
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = nonFinite(v[i], `${path}[${i}]`);
      if (p !== null) return p;
    }
    return null;
  }
  for (const k of Object.keys(v)) {
    const p = nonFinite((v as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`);
    if (p !== null) return p;
  }
  return null;
}

/** The path of the first number in `v` equal to `n` ('' when none is: the time extractor computed it). */
function pathOf(v: unknown, n: number, path: string): string {
  if (typeof v !== 'object' || v === null) return '';
  for (const [k, x] of Object.entries(v)) {
    const p = Array.isArray(v) ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`;
    if (x === n) return p;
    const inner = pathOf(x, n, p);
    if (inner !== '') return inner;
  }
  return '';
}

/**
 * Whether JSON text nests arrays and objects more than `max` deep, by one pass over its bytes
 * (brackets inside strings do not count). Deeper values would overflow the stack of the recursive
 * code that walks them, so they are refused before any of it runs.
 */
export function jsonTooDeep(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // the escaped character, whatever it is
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function issueError(index: number, issues: readonly SchemaIssue[]): RecordError {
  const first = issues[0];
  return { index, path: first ? formatPath(first.path) : '', reason: first?.message ?? 'does not match the schema' };
}

function provenance(topic: string, index: number, error: string): RecordHeader[] {
  const [path, reason] = JSON.parse(error) as [string, string];
  return [
    { key: 'kappa.error', value: Buffer.from(`${path ? `${path} ` : ''}${reason}`) },
    { key: 'kappa.source', value: Buffer.from('http') },
    { key: 'kappa.source.topic', value: Buffer.from(topic) },
    { key: 'kappa.request.index', value: Buffer.from(String(index)) },
  ];
}

/** A request's bad records: counted, the first ERRORS_LISTED_MAX listed, and kept (spooled) only to dead-letter them. */
class BadRecords {
  count = 0;
  readonly listed: RecordError[] = [];
  readonly spool: Spool | null;

  constructor(readonly dlq: boolean) {
    this.spool = dlq ? new Spool() : null;
  }

  add(e: RecordError, value: string): Promise<void> | undefined {
    this.count++;
    if (this.listed.length < ERRORS_LISTED_MAX) this.listed.push(e);
    return this.spool?.add({ index: e.index, key: null, timestamp: Date.now(), value, error: JSON.stringify([e.path, e.reason]) });
  }

  dispose(): void {
    this.spool?.dispose();
  }
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? 'null';
  } catch {
    return String(v);
  }
}

/**
 * The lines of a byte stream (without their '\n'), a chunk's worth at a time. Fails with 413 once
 * more than `limitBytes` arrived or a line grew past LINE_BYTES_MAX, but only after reading on
 * (dropping the bytes) to the end of the body, or TOO_LARGE_DRAIN_BYTES further: a server that
 * stops reading and closes resets the connection, and the client never sees the answer.
 */
async function* lines(body: Readable, limitBytes: number, digest?: BodyDigest): AsyncGenerator<Buffer[]> {
  /** The start of an unfinished line, in pieces (only the new chunk is searched for its end). */
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let total = 0;
  let refusal: KappaError | null = null;
  let refusedAtBytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    digest?.update(chunk);
    if (refusal === null && total > limitBytes) {
      refusal = new KappaError('KAPPA_BODY_TOO_LARGE', `The request body is over the ${limitBytes} bytes the server accepts; nothing was appended. Send fewer records per request.`, { limitBytes });
      refusedAtBytes = total;
    }
    if (refusal !== null) {
      // Past the bound, stop reading: leaving the loop destroys the stream, and with it the connection.
      if (total > refusedAtBytes + TOO_LARGE_DRAIN_BYTES) break;
      continue;
    }
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      if (partialBytes + nl - start > LINE_BYTES_MAX) break;
      if (partialBytes > 0) {
        partial.push(chunk.subarray(0, nl));
        out.push(Buffer.concat(partial));
        partial = [];
        partialBytes = 0;
      } else out.push(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) {
      partial.push(chunk.subarray(start));
      partialBytes += chunk.length - start;
      // Over the limit whether it ends in this chunk (the loop above stopped at it) or not.
      if (partialBytes > LINE_BYTES_MAX) {
        refusal = new KappaError('KAPPA_BODY_TOO_LARGE', `A line of the NDJSON body is over ${LINE_BYTES_MAX} bytes (one record per line, each ending with a newline); nothing was appended.`, { lineBytesMax: LINE_BYTES_MAX });
        refusedAtBytes = total;
        partial = [];
        partialBytes = 0;
        continue;
      }
    }
    if (out.length > 0) yield out;
  }
  if (refusal !== null) throw refusal;
  if (partialBytes > 0) yield [Buffer.concat(partial)];
}

/** Checked records in memory, then (past SPOOL_MEMORY_BYTES) in a temporary file; read back in order by `drain`. */
class Spool {
  /** Records added. */
  size = 0;
  private memory: Checked[] = [];
  private memoryBytes = 0;
  private dir: string | null = null;
  private file: WriteStream | null = null;
  private error: Error | null = null;

  /** Adds a record; returns a promise only when the caller must wait (the spool spills or the file is busy). */
  add(c: Checked): Promise<void> | undefined {
    this.size++;
    if (this.file === null) {
      this.memory.push(c);
      this.memoryBytes += c.value.length + 64;
      return this.memoryBytes > SPOOL_MEMORY_BYTES ? this.spill() : undefined;
    }
    return this.write(c);
  }

  private async write(c: Checked): Promise<void> {
    const f = this.file!;
    if (this.error !== null) throw spoolError(this.error);
    f.write(`${JSON.stringify([c.index, c.key, c.timestamp ?? null, c.error ?? null])}\t`);
    f.write(c.value);
    if (!f.write('\n')) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          f.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          f.off('drain', onDrain);
          reject(spoolError(err));
        };
        f.once('drain', onDrain);
        f.once('error', onError);
      });
    }
  }

  private async spill(): Promise<void> {
    try {
      this.dir = mkdtempSync(join(tmpdir(), 'kappa-ingest-'));
    } catch (err) {
      throw spoolError(err as Error);
    }
    this.file = createWriteStream(join(this.dir, 'spool'));
    // A write error shows when the file is ended in drain(); after dispose() nobody waits for it.
    this.file.on('error', (err) => (this.error ??= err));
    const pending = this.memory;
    this.memory = [];
    this.size -= pending.length;
    for (const c of pending) {
      this.size++;
      await this.write(c);
    }
  }

  /** Hands every record to `append`, in order, in batches. */
  async drain(append: (batch: Checked[]) => Promise<void>): Promise<void> {
    if (this.file === null) {
      for (let i = 0; i < this.memory.length; i += APPEND_BATCH) await append(this.memory.slice(i, i + APPEND_BATCH));
      return;
    }
    await new Promise<void>((resolve, reject) => this.file!.end((err?: Error | null) => (err || this.error ? reject(spoolError((err ?? this.error)!)) : resolve())));
    let batch: Checked[] = [];
    // Split on '\n' only: a record may hold a '\r' (JSON allows one between tokens).
    for await (const chunk of lines(createReadStream(join(this.dir!, 'spool')), Infinity)) {
      for (const bytes of chunk) {
        const line = bytes.toString('utf8');
        const tab = line.indexOf('\t');
        const [index, key, timestamp, error] = JSON.parse(line.slice(0, tab)) as [number, string | null, number | null, string | null];
        batch.push({ index, key, timestamp: timestamp ?? undefined, value: line.slice(tab + 1), ...(error === null ? {} : { error }) });
        if (batch.length === APPEND_BATCH) {
          await append(batch);
          batch = [];
        }
      }
    }
    if (batch.length > 0) await append(batch);
  }

  dispose(): void {
    this.file?.destroy();
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A failure of the temporary spool file as the catalogue's error (a full temporary disk is a 503 to retry). */
function spoolError(err: Error): KappaError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new KappaError('KAPPA_DISK_FULL', `The disk holding the temporary directory is full, so the request could not be spooled; nothing was appended.`, {}, err);
  return new KappaError('KAPPA_IO_ERROR', `The request could not be spooled to a temporary file (${err.message}); nothing was appended.`, {}, err);
}

/** A digest of a body for idempotency checks. */
export function digestOf(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The digest of a streamed body, read to its end. */
export async function digestOfStream(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}
