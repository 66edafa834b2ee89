/**
 * Idempotency-Key in the log, so that it survives a crash. The records of a request sent with a key
 * are appended as an idempotent producer whose id is derived from the topic and the key. The log's
 * producer state (written with the appends, rebuilt from the segments after a crash) then
 * recognises a retry's records as duplicates and reports their original offsets: a retry after a
 * SIGKILL and a restart gets the first answer back and appends nothing, and a retry of an attempt
 * that died midway appends only what the attempt had not.
 *
 * How a keyed request is appended:
 *
 *  1. The probe. The request's first record goes alone, as sequence 0 of the producer
 *     H('probe', topic, key), with the header `kappa.idempotency` holding the SHA-256 of the body,
 *     and is awaited before anything else is sent. Appended: the key is new. A duplicate: the key
 *     was used before, and the header of the original is read back. The same digest means a retry,
 *     which goes on; another one means the key was reused for another body: 422
 *     KAPPA_IDEMPOTENCY_KEY_REUSED, and nothing was appended (the probe was a duplicate).
 *  2. The rest, per topic, as the producer H('data', topic, key, where the probe is), sequences from
 *     0 per partition in request order. A retry sends the same records in the same order to the same
 *     partitions, so they get the same sequences. Deriving the id from the probe's offset means a key
 *     that is used again after the log forgot it (see the window) starts a fresh producer, and its
 *     records are never mistaken for re-sends of its first use.
 *  3. A duplicate's original offset is reported by the log only while it lies in the producer's last
 *     five batches on the partition. Older ones (a request with more than about 8,000 records on one
 *     partition) are found by reading the partition backwards from the earliest offset known, at most
 *     SCAN_BYTES_MAX per partition; an offset not found that way is answered as -1.
 *
 * Partitions: records with a key go by their key, as always. Keyless records of a keyed request all
 * go to one partition chosen by the Idempotency-Key rather than round-robin, so that a retry sends
 * them where the first attempt did.
 *
 * The window: the ids are in the log's short-lived producer range (2^52 up; the engine's tasks use
 * 52-bit ids below it). A partition remembers the SHORT_LIVED_PRODUCERS_MAX (100,000) short-lived
 * producers that appended to it last, and a keyed request uses at most two per partition, so a key
 * is honoured for at least the topic's last 50,000 keyed requests, with no time limit, as long as
 * retention has not deleted the request's first record. Older keys are forgotten, and a request with
 * one is appended as new (as Kafka forgets producer ids after producer.id.expiration.ms).
 *
 * Limits: the body's digest is compared through the first record, so a key reused for a body whose
 * every record is dead-lettered (while the first body had a valid one, or the other way round) is
 * not detected across a restart; the in-memory check of the running server still catches it.
 */
import { createHash } from 'node:crypto';
import { KappaError } from '../errors.ts';
import { type EncodableRecord, type Log, type RecordHeader, partitionForKey } from '../log/index.ts';

/** The first short-lived producer id (producer-state.ts's SHORT_LIVED_PRODUCER_ID_MIN); ids below are the engine's. */
const KEYED_PRODUCER_ID_MIN = 2 ** 52;
/** The header of a keyed request's first record: the SHA-256 (hex) of the request body. */
export const DIGEST_HEADER = 'kappa.idempotency';
/** Bytes read back per partition, at most, to find original offsets the log no longer remembers. */
const SCAN_BYTES_MAX = 256 * 1024 * 1024;
/** Records read back in the first step of that search (each further step reads twice as far). */
const SCAN_FIRST_STEP = 8192;
const SEQUENCE_MODULUS = 2 ** 31;

/** A record of a keyed request, ready to append. */
export interface KeyedRecord {
  key: string | null;
  value: string | Buffer;
  /** Event time; the append's wall-clock time when the topic has no time extractor. */
  timestamp: number | undefined;
  headers?: RecordHeader[];
}

/** A 52-bit hash of `parts`, in the short-lived producer range. */
function producerIdOf(...parts: (string | number)[]): number {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${String(p).length}:${p}\u0000`);
  return KEYED_PRODUCER_ID_MIN + Number.parseInt(h.digest('hex').slice(0, 13), 16);
}

/** A record whose original offset the log did not report, to look up in `resolve`. */
interface Unresolved {
  sequence: number;
  found: (offset: number) => void;
}

/** One topic's producer within a keyed request. */
interface TopicProducer {
  partitions: number;
  /** Where the keyless records go. */
  keylessPartition: number;
  /** Null until the probe is in (the id derives from it). */
  producerId: number | null;
  /** Next sequence, per partition. */
  next: number[];
  /** Per partition, the smallest offset known of the producer's records (Infinity: none yet). */
  earliest: number[];
  unresolved: Map<number, Unresolved[]>;
}

export class KeyedRequest {
  private readonly topics = new Map<string, TopicProducer>();
  /** Where the probe is, once it is: the data producers' ids derive from it. */
  private probe: string | null = null;

  constructor(
    private readonly log: Log,
    private readonly key: string,
    /** The body's digest (hex); called once every body byte has been read. */
    private readonly digest: () => string,
    private readonly onAppended?: (topic: string, records: number, bytes: number, seconds: number) => void,
  ) {}

  /**
   * Appends `records` to `topic` in order and returns each one's partition and offset. An offset of
   * -1 is an original the log no longer remembers: `resolve` looks for it and calls `found`.
   */
  async append(
    topic: string,
    records: readonly KeyedRecord[],
    found: (i: number, offset: number) => void,
  ): Promise<{ partition: number[]; offset: number[] }> {
    const t = await this.producer(topic);
    const partition = records.map((r) =>
      r.key === null ? t.keylessPartition : t.partitions === 1 ? 0 : partitionForKey(r.key, t.partitions),
    );
    const offset = new Array<number>(records.length).fill(-1);
    let first = 0;
    if (this.probe === null) {
      offset[0] = await this.appendProbe(topic, partition[0], records[0]);
      first = 1;
    }
    t.producerId ??= producerIdOf('data', topic, this.key, this.probe!);
    const groups = new Map<number, number[]>();
    for (let i = first; i < records.length; i++) {
      let g = groups.get(partition[i]);
      if (g === undefined) groups.set(partition[i], (g = []));
      g.push(i);
    }
    await Promise.all(
      [...groups].map(([p, indexes]) => this.appendGroup(topic, t, p, indexes, records, offset, found)),
    );
    return { partition, offset };
  }

  /** Looks up the offsets that `append` gave as -1; those not found stay -1. */
  async resolve(): Promise<void> {
    for (const [topic, t] of this.topics) {
      for (const [p, list] of t.unresolved) {
        const before = Number.isFinite(t.earliest[p]) ? t.earliest[p] : (await this.log.offsets(topic, p)).end;
        await this.findOriginals(topic, p, t.producerId!, before, list);
      }
    }
  }

  private async producer(topic: string): Promise<TopicProducer> {
    let t = this.topics.get(topic);
    if (t === undefined) {
      const partitions = (await this.log.topic(topic)).partitions;
      t = {
        partitions,
        keylessPartition: producerIdOf('keyless', topic, this.key) % partitions,
        producerId: null,
        next: new Array<number>(partitions).fill(0),
        earliest: new Array<number>(partitions).fill(Infinity),
        unresolved: new Map(),
      };
      this.topics.set(topic, t);
    }
    return t;
  }

  /** Step 1 of the file comment: the first record alone, with the body's digest; its offset. */
  private async appendProbe(topic: string, partition: number, record: KeyedRecord): Promise<number> {
    const digest = this.digest();
    const probe: EncodableRecord = {
      ...encodable(record),
      headers: [...(record.headers ?? []), { key: DIGEST_HEADER, value: Buffer.from(digest) }],
    };
    const started = performance.now();
    const r = await this.log.appendBatch(topic, partition, [probe], {
      producerId: producerIdOf('probe', topic, this.key),
      producerEpoch: 0,
      baseSequence: 0,
    });
    if (r.duplicates === 0) this.onAppended?.(topic, 1, byteLength(record.value), (performance.now() - started) / 1000);
    else if (r.baseOffset < 0 || (await this.storedDigest(topic, partition, r.baseOffset)) !== digest) {
      throw new KappaError(
        'KAPPA_IDEMPOTENCY_KEY_REUSED',
        `Idempotency-Key "${this.key}" was already used for a different request to topic "${topic}"; nothing was appended. Use a new key for new records, or resend the first request's body unchanged to get its answer.`,
        { key: this.key },
      );
    }
    this.probe = `${topic}/${partition}/${r.baseOffset}`;
    return r.baseOffset;
  }

  /** The digest header of the record at `offset`, or null when it cannot be read (removed by retention). */
  private async storedDigest(topic: string, partition: number, offset: number): Promise<string | null> {
    try {
      for await (const batch of this.log.read(topic, partition, offset)) {
        const header = batch.records(offset)[0]?.headers.find((h) => h.key === DIGEST_HEADER);
        return header?.value?.toString('utf8') ?? null;
      }
    } catch (err) {
      if (!(err instanceof KappaError && err.code === 'KAPPA_OFFSET_OUT_OF_RANGE')) throw err;
    }
    return null;
  }

  /** Step 2: the records `indexes` of the request, all for partition `p`, as one batch. */
  private async appendGroup(
    topic: string,
    t: TopicProducer,
    p: number,
    indexes: number[],
    records: readonly KeyedRecord[],
    offset: number[],
    found: (i: number, offset: number) => void,
  ): Promise<void> {
    const baseSequence = t.next[p];
    t.next[p] = (baseSequence + indexes.length) % SEQUENCE_MODULUS;
    const batch = indexes.map((i) => encodable(records[i]));
    const started = performance.now();
    const r = await this.log.appendBatch(topic, p, batch, {
      producerId: t.producerId!,
      producerEpoch: 0,
      baseSequence,
    });
    const appended = indexes.length - r.duplicates;
    if (appended > 0) {
      let bytes = 0;
      for (let j = r.duplicates; j < indexes.length; j++) bytes += byteLength(records[indexes[j]].value);
      this.onAppended?.(topic, appended, bytes, (performance.now() - started) / 1000);
    }
    for (let j = 0; j < indexes.length; j++) {
      const o = j < r.duplicates ? r.duplicateOffsets[j] : r.lastOffset - (indexes.length - 1 - j);
      const i = indexes[j];
      offset[i] = o;
      if (o >= 0) t.earliest[p] = Math.min(t.earliest[p], o);
      else {
        let list = t.unresolved.get(p);
        if (list === undefined) t.unresolved.set(p, (list = []));
        list.push({ sequence: (baseSequence + j) % SEQUENCE_MODULUS, found: (o) => found(i, o) });
      }
    }
  }

  /**
   * Step 3: reads partition `p` backwards from `before`, in steps that double, collecting the
   * producer's batches until the one holding the smallest sequence wanted is found.
   */
  private async findOriginals(
    topic: string,
    p: number,
    producerId: number,
    before: number,
    wanted: Unresolved[],
  ): Promise<void> {
    const smallest = Math.min(...wanted.map((w) => w.sequence));
    const batches: { baseSequence: number; count: number; baseOffset: number }[] = [];
    let { start } = await this.log.offsets(topic, p);
    let hi = before;
    let step = SCAN_FIRST_STEP;
    let bytes = 0;
    let done = false;
    while (!done && hi > start && bytes < SCAN_BYTES_MAX) {
      const lo = Math.max(start, hi - step);
      try {
        for await (const batch of this.log.read(topic, p, lo)) {
          if (batch.baseOffset >= hi || bytes >= SCAN_BYTES_MAX) break;
          bytes += batch.sizeBytes;
          if (batch.producerId !== producerId) continue;
          batches.push({ baseSequence: batch.baseSequence, count: batch.count, baseOffset: batch.baseOffset });
          if (batch.baseSequence <= smallest) done = true;
        }
      } catch (err) {
        // Retention deleted the segment being read: what is left starts later.
        if (!(err instanceof KappaError && err.code === 'KAPPA_OFFSET_OUT_OF_RANGE')) throw err;
        start = (await this.log.offsets(topic, p)).start;
        continue;
      }
      hi = lo;
      step *= 2;
    }
    for (const w of wanted) {
      const b = batches.find((x) => w.sequence >= x.baseSequence && w.sequence < x.baseSequence + x.count);
      if (b !== undefined) w.found(b.baseOffset + (w.sequence - b.baseSequence));
    }
  }
}

function encodable(r: KeyedRecord): EncodableRecord {
  return { key: r.key, value: r.value, headers: r.headers ?? null, timestamp: r.timestamp ?? Date.now() };
}

function byteLength(v: string | Buffer): number {
  return typeof v === 'string' ? v.length : v.length;
}
