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
 * event time outside what a Date can hold are refused (the checks are in record-check.ts, the line
 * splitting in lines.ts, the spool in spool.ts). A refusal of the body's size is answered
 * only after the rest of the body (up to TOO_LARGE_DRAIN_BYTES) has been read, so the client sees
 * the 413 rather than a reset connection.
 *
 * Topics with a format (Avro, Protobuf, JSON Schema; record-formats.ts): JSON records are encoded
 * in the topic's format with its registered schema id, a record that does not fit refused like any
 * bad record (index, field path, reason); a framed body (`application/vnd.kappa.framed`) is one
 * record already encoded, stored as sent once its schema id is known and its payload decodes.
 * Dead letters of such topics hold the record as it was sent (its JSON, or its framed bytes).
 *
 * Load: at most `inFlightBytesMax` of request bodies are being ingested at once; a request past it
 * gets 429 with Retry-After before anything is read. A full disk is a 503 with Retry-After; in both
 * cases nothing was appended.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { KappaError } from '../errors.ts';
import type { Log, ProducerRecord, RecordHeader, RecordMetadata } from '../log/index.ts';
import type { AppDef } from '../stream/index.ts';
import { BadRecords, asStored, provenance, safeStringify, unspooled } from './bad-records.ts';
import { KeyedRequest } from './idempotency.ts';
import { lines } from './lines.ts';
import {
  type Checked,
  type RecordError,
  type TopicIngest,
  checkLine,
  checkFramedBody,
  checkValue,
  compileTopic,
} from './record-check.ts';
import type { TopicCodecs } from './record-formats.ts';
import { Spool } from './spool.ts';

const IDEMPOTENCY_KEYS_MAX = 10_000;
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** Acknowledgements kept for retries at most (about 16 bytes each); the oldest keys go first. */
const IDEMPOTENCY_ACKS_MAX = 10_000_000;

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
  /** The codecs of topics with a format (required when the app has any). */
  codecs?: TopicCodecs;
  /** Called with the count, bytes and duration (seconds, until durable) of each append (metrics). */
  onAppended?: (topic: string, records: number, bytes: number, seconds: number) => void;
}

export class Ingestor {
  private readonly topics = new Map<string, TopicIngest>();
  private inFlightBytes = 0;
  private readonly inFlightBytesMax: number;
  private readonly idempotent = new Map<
    string,
    { digest: Promise<string>; atMs: number; result: Promise<IngestResult>; acks: number }
  >();
  /** Acknowledgements kept for idempotent retries, over every key. */
  private heldAcks = 0;

  constructor(private readonly opts: IngestorOptions) {
    for (const def of opts.app.topics) this.topics.set(def.name, compileTopic(def));
    this.inFlightBytesMax = opts.inFlightBytesMax ?? 256 * 1024 * 1024;
  }

  /** The topic's ingestion settings; 404 for a topic the config does not define. */
  private topic(name: string): TopicIngest {
    const t = this.topics.get(name);
    if (t === undefined) {
      throw new KappaError(
        'KAPPA_UNKNOWN_TOPIC',
        `Topic "${name}" is not defined in the config, so records cannot be sent to it. Topics: ${[...this.topics.keys()].join(', ') || 'none'}.`,
        { topic: name },
      );
    }
    return t;
  }

  /** The topic's ingestion settings with its codec, for a topic with a format. */
  private async ready(name: string): Promise<TopicIngest> {
    const t = this.topic(name);
    if (t.def.format === null) return t;
    if (this.opts.codecs === undefined) throw new Error(`invariant: no codecs for topic "${name}", which has a format`);
    return { ...t, codec: await this.opts.codecs.codecOf(t.def) };
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
          throw new KappaError(
            'KAPPA_IDEMPOTENCY_KEY_REUSED',
            `Idempotency-Key "${key}" was already used for a different request to topic "${topic}". Use a new key for new records.`,
            { key },
          );
        }
        return seen.result;
      }
    }
    const bytes = this.reserve(declaredBytes);
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

  /** `admit` for a request without an Idempotency-Key: the in-flight budget only. */
  async admitUnkeyed(declaredBytes: number, run: () => Promise<IngestResult>): Promise<IngestResult> {
    const bytes = this.reserve(declaredBytes);
    try {
      return await run();
    } finally {
      this.inFlightBytes -= bytes;
    }
  }

  /** Counts a request's bytes in the in-flight budget (429 when over it, unless nothing else is in flight). */
  private reserve(declaredBytes: number): number {
    const bytes = Math.max(declaredBytes, 1);
    if (this.inFlightBytes > 0 && this.inFlightBytes + bytes > this.inFlightBytesMax) {
      throw new KappaError(
        'KAPPA_OVERLOADED',
        `The server is already ingesting ${Math.round(this.inFlightBytes / 1048576)} MiB; nothing was appended. Retry shortly.`,
        { retryAfterSeconds: 1 },
      );
    }
    this.inFlightBytes += bytes;
    return bytes;
  }

  private expireKeys(): void {
    const now = Date.now();
    for (const [k, v] of this.idempotent) {
      if (
        this.idempotent.size <= IDEMPOTENCY_KEYS_MAX &&
        this.heldAcks <= IDEMPOTENCY_ACKS_MAX &&
        now - v.atMs < IDEMPOTENCY_TTL_MS
      )
        break;
      this.idempotent.delete(k); // oldest first: a Map iterates in insertion order
      this.heldAcks -= v.acks;
    }
  }

  /**
   * A parsed JSON body without an Idempotency-Key, under the in-flight budget. One good record of a
   * topic without a format (the single-record POST) goes straight to the log, with no promise
   * between the request and the append but the log's own; anything else takes `ingestJson`.
   */
  ingestUnkeyed(topicName: string, body: unknown, declaredBytes: number): Promise<IngestResult> {
    const topic = this.topic(topicName);
    const r = topic.def.format === null && !Array.isArray(body) ? checkValue(topic, 0, body, null) : null;
    if (r === null || 'reason' in r) return this.admitUnkeyed(declaredBytes, () => this.ingestJson(topicName, body));
    const bytes = this.reserve(declaredBytes);
    const started = performance.now();
    const name = topic.def.name;
    let appended: Promise<RecordMetadata[]>;
    try {
      appended = this.opts.log.append(name, [{ key: r.key, value: r.value, timestamp: r.timestamp }]);
    } catch (err) {
      this.inFlightBytes -= bytes;
      throw err;
    }
    return appended.then(
      ([meta]) => {
        this.inFlightBytes -= bytes;
        this.opts.onAppended?.(name, 1, r.value.length, (performance.now() - started) / 1000);
        return { acks: { index: [0], partition: [meta.partition], offset: [meta.offset] }, deadLettered: [] };
      },
      (err: unknown) => {
        this.inFlightBytes -= bytes;
        throw err;
      },
    );
  }

  /** A parsed JSON body: one object, or an array of records. */
  async ingestJson(topicName: string, body: unknown, idempotency: IdempotencyKey | null = null): Promise<IngestResult> {
    const known = this.topic(topicName);
    const topic = known.def.format === null ? known : await this.ready(topicName);
    if (!Array.isArray(body) && idempotency === null) {
      // One good record, no key: appended at once (a bad one takes the path below, which refuses or dead-letters it).
      const r = checkValue(topic, 0, body, null);
      if (!('reason' in r)) {
        const meta = await this.append(null, topic.def.name, unspooled([r], topic.codec !== null), noop);
        return { acks: { index: [0], partition: meta.partition, offset: meta.offset }, deadLettered: [] };
      }
    }
    const values = Array.isArray(body) ? body : [body];
    const good = new Spool();
    const bad = new BadRecords(topic.def.onInvalid === 'dlq');
    try {
      for (let index = 0; index < values.length; index++) {
        const r = checkValue(topic, index, values[index], null);
        const wait =
          'reason' in r
            ? bad.add(r, asStored(topic, safeStringify(values[index])))
            : bad.count === 0 || bad.dlq
              ? good.add(r)
              : undefined;
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
  async ingestNdjson(
    topicName: string,
    body: Readable,
    limitBytes: number,
    idempotency: IdempotencyKey | null = null,
    digest?: BodyDigest,
  ): Promise<IngestResult> {
    const topic = await this.ready(topicName);
    const good = new Spool();
    const bad = new BadRecords(topic.def.onInvalid === 'dlq');
    try {
      let index = 0;
      for await (const chunk of lines(body, limitBytes, digest)) {
        for (const line of chunk) {
          let bytes = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
          // A byte order mark is not part of the record: validated and stored without it.
          if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
            bytes = bytes.subarray(3);
          if (bytes.length === 0) continue;
          const r = checkLine(topic, index, bytes);
          // Once the request is refused, good records are not kept.
          const wait =
            'reason' in r
              ? bad.add(r, topic.codec === null ? bytes.toString('utf8') : bytes.toString('base64'))
              : bad.count === 0 || bad.dlq
                ? good.add(r)
                : undefined;
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

  /**
   * One Confluent-framed record (a topic with a format): stored as sent once its schema id is known
   * and its payload decodes. Not framed, or an unknown id: refused whatever the topic's onInvalid.
   */
  async ingestFramed(
    topicName: string,
    body: Buffer,
    idempotency: IdempotencyKey | null = null,
  ): Promise<IngestResult> {
    const topic = await this.ready(topicName);
    const r = await checkFramedBody(topic, body);
    const good = new Spool();
    const bad = new BadRecords(topic.def.onInvalid === 'dlq');
    try {
      const wait = 'reason' in r ? bad.add(r, body.toString('base64')) : good.add(r);
      if (wait !== undefined) await wait;
      return await this.finish(topic, good, bad, idempotency);
    } finally {
      good.dispose();
      bad.dispose();
    }
  }

  /** Refuses the request (400) if it has bad records, or dead-letters them; then appends the good ones. */
  private async finish(
    topic: TopicIngest,
    good: Spool,
    bad: BadRecords,
    idempotency: IdempotencyKey | null,
  ): Promise<IngestResult> {
    const name = topic.def.name;
    if (bad.count === 0 && good.size === 0)
      throw new KappaError(
        'KAPPA_INVALID_RECORD',
        'The request holds no records: send a JSON object, a non-empty array, or NDJSON lines.',
        { topic: name },
      );
    if (bad.count > 0 && !bad.dlq) {
      const first = bad.listed[0];
      throw new KappaError(
        'KAPPA_SCHEMA_VIOLATION',
        `${bad.count} record${bad.count === 1 ? '' : 's'} of the request ${bad.count === 1 ? 'is' : 'are'} invalid (the first: record ${first.index}${first.path ? ` at ${first.path}` : ''} ${first.reason}); nothing was appended.`,
        { topic: name, invalid: bad.count, records: bad.listed },
      );
    }
    const keyed =
      idempotency === null
        ? null
        : new KeyedRequest(this.opts.log, idempotency.key, idempotency.digest, this.opts.onAppended);
    const binary = topic.codec !== null;
    const acks = await this.appendGood(keyed, name, good, binary);
    const deadLettered = bad.count > 0 ? await this.deadLetter(keyed, name, bad.spool!, binary) : [];
    // Originals of a retry that the log's producer state no longer holds (big requests): looked up.
    await keyed?.resolve();
    return { acks, deadLettered };
  }

  /** Appends the request's good records, in order; a failure part-way says how many are in the log. */
  private async appendGood(keyed: KeyedRequest | null, name: string, good: Spool, binary: boolean): Promise<Acks> {
    const acks: Acks = { index: [], partition: [], offset: [] };
    try {
      await good.drain(async (batch) => {
        const at = acks.index.length;
        const meta = await this.append(
          keyed,
          name,
          unspooled(batch, binary),
          (i, offset) => (acks.offset[at + i] = offset),
        );
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
    return acks;
  }

  /** Appends the bad records to `<topic>.dlq` (created with the topic's partitions if missing), with their provenance. */
  private async deadLetter(
    keyed: KeyedRequest | null,
    name: string,
    spool: Spool,
    binary: boolean,
  ): Promise<IngestResult['deadLettered']> {
    const deadLettered: IngestResult['deadLettered'] = [];
    const dlq = `${name}.dlq`;
    if (!(await this.opts.log.topics()).some((t) => t.name === dlq)) {
      await this.opts.log
        .createTopic(dlq, { partitions: (await this.opts.log.topic(name)).partitions })
        .catch((err: unknown) => {
          if (!(err instanceof KappaError && err.code === 'KAPPA_TOPIC_EXISTS')) throw err;
        });
    }
    await spool.drain(async (batch) => {
      const at = deadLettered.length;
      const meta = await this.append(
        keyed,
        dlq,
        unspooled(batch, binary).map((c) => ({ ...c, key: null, headers: provenance(name, c.index, c.error!) })),
        (i, offset) => (deadLettered[at + i].offset = offset),
      );
      batch.forEach((c, i) => {
        const [path, reason] = JSON.parse(c.error!) as [string, string];
        deadLettered.push({ index: c.index, path, reason, partition: meta.partition[i], offset: meta.offset[i] });
      });
    });
    return deadLettered;
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
      records.map((c): ProducerRecord => ({
        key: c.key,
        value: c.value,
        timestamp: c.timestamp,
        ...(c.headers ? { headers: c.headers } : {}),
      })),
    );
    let bytes = 0;
    for (const r of records) bytes += r.value.length;
    this.opts.onAppended?.(topic, records.length, bytes, (performance.now() - started) / 1000);
    return { partition: meta.map((m) => m.partition), offset: meta.map((m) => m.offset) };
  }
}

function noop(): void {}

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
