/**
 * KafkaLog's reads: Fetch v11 from the partition's leader, its `records` cut into whole RecordBatch
 * v2 and handed out as src/log's own RecordBatch objects, so a reader sees what FileLog gives it.
 * A broker may end a Fetch answer with part of a batch (it stops at max bytes); that part is dropped
 * and fetched whole next time. Control batches (the markers transactions write) are skipped.
 * Offsets come from ListOffsets (earliest -2, latest -1, or a time).
 *
 * Following: a read with `follow` and `waitForData` wait at the end with long-poll Fetches (the
 * broker holds the request up to POLL_WAIT_MS until data arrives), each on a connection of its own
 * (see cluster.ts), and stop on the abort signal at once (the answer of a poll under way is dropped).
 * A broker that answers an empty poll early (the librdkafka mock ignores the wait) is asked again
 * only after POLL_PAUSE_MS, so a follower never spins.
 */
import { KappaError } from '../../errors.ts';
import { ATTR_CONTROL, BATCH_HEADER_BYTES, BatchField, batchSizeAt } from '../format/index.ts';
import { RecordBatch } from '../record-batch.ts';
import type { PartitionOffsets, ReadOptions } from '../types.ts';
import { type Cluster, LONG_POLL_MS, check } from './cluster.ts';
import * as wire from './wire.ts';

const READ_BYTES_DEFAULT = 1 << 20;
const READ_BYTES_MIN = 4096;
const POLL_WAIT_MS = LONG_POLL_MS;
const POLL_PAUSE_MS = 100;
let pollerIds = 0;

/** A Fetch under way, and when it was sent (an empty long poll answered early is not asked again at once). */
interface Fetching {
  answer: Promise<wire.FetchPartition>;
  startedMs: number;
}

export class BatchReader {
  constructor(private readonly cluster: Cluster) {}

  /** One ListOffsets of a partition: -2 earliest, -1 latest, or a time (-1 back: no such record). */
  listOffset(topic: string, partition: number, timestamp: number): Promise<number> {
    const subject = { action: 'reading the offsets of', topic, partition };
    return this.cluster.retrying(subject, async () => {
      const connection = await this.cluster.connection(await this.cluster.leader(topic, partition));
      const res = await wire.listOffsets(connection, topic, partition, timestamp);
      check(res.errorCode, subject);
      return res.offset;
    });
  }

  async offsets(topic: string, partition: number): Promise<PartitionOffsets> {
    const [start, end] = await Promise.all([
      this.listOffset(topic, partition, -2),
      this.listOffset(topic, partition, -1),
    ]);
    return { start, end };
  }

  /** One Fetch; `poller` names a reader's own connection for a long poll (maxWaitMs > 0). */
  fetchOnce(q: wire.FetchRequest, poller: string | null): Promise<wire.FetchPartition> {
    const subject = { action: 'reading', topic: q.topic, partition: q.partition };
    return this.cluster.retrying(subject, async () => {
      const address = await this.cluster.leader(q.topic, q.partition);
      const connection =
        poller === null ? await this.cluster.connection(address) : await this.cluster.pollConnection(poller, address);
      const res = await wire.fetch(connection, q);
      check(res.errorCode, subject);
      return res;
    });
  }

  async *read(topic: string, partition: number, from: number, opts: ReadOptions): AsyncGenerator<RecordBatch> {
    if (!Number.isSafeInteger(from) || from < 0)
      throw new KappaError(
        'KAPPA_OFFSET_OUT_OF_RANGE',
        `Offset ${from} is not a valid offset of ${topic}/${partition}.`,
      );
    const maxBytes = Math.max(READ_BYTES_MIN, opts.maxBytes ?? READ_BYTES_DEFAULT);
    const poller = opts.follow ? `read-${++pollerIds}` : null;
    const fetchFrom = (offset: number): Fetching => {
      const q = { topic, partition, offset, maxWaitMs: opts.follow ? POLL_WAIT_MS : 0, maxBytes };
      const answer = this.fetchOnce(q, poller);
      answer.catch(() => {}); // a prefetch nobody awaits (the reader stopped) must not go unhandled
      return { answer, startedMs: Date.now() };
    };
    let offset = from;
    let pending: Fetching | null = null;
    try {
      while (!opts.signal?.aborted) {
        const fetching: Fetching = pending ?? fetchFrom(offset);
        pending = null;
        const res = await abortable(fetching.answer, opts.signal);
        if (res === null) return;
        const { batches, next } = cutBatches(res.records, offset);
        if (next > offset) {
          offset = next;
          if (opts.once && batches.length > 0) {
            yield* batches;
            return;
          }
          // Behind the end: the next Fetch goes out before these batches are handed on, so the broker
          // answers it while the caller folds them (one Fetch ahead: at most 2 × maxBytes held). At the
          // end none is sent ahead: it would be a long poll left hanging when the reader stops.
          if (res.highWatermark > offset) pending = fetchFrom(offset);
          yield* batches;
          continue;
        }
        if (!opts.follow) return;
        if (Date.now() - fetching.startedMs < POLL_WAIT_MS / 2) await pause(POLL_PAUSE_MS, opts.signal);
      }
    } finally {
      if (poller !== null)
        void this.cluster.dropPoll(poller, await this.cluster.leader(topic, partition).catch(() => ''));
    }
  }

  /** Resolves once the partition's end is past `offset`, or on abort (long polls, no busy loop). */
  async waitForData(topic: string, partition: number, offset: number, signal?: AbortSignal): Promise<void> {
    const poller = `wait-${topic}/${partition}`;
    while (!signal?.aborted) {
      const started = Date.now();
      const q = { topic, partition, offset, maxWaitMs: POLL_WAIT_MS, maxBytes: 1 };
      const res = await abortable(this.fetchOnce(q, poller), signal);
      if (res === null || res.highWatermark > offset) return;
      if (Date.now() - started < POLL_WAIT_MS / 2) await pause(POLL_PAUSE_MS, signal);
    }
  }

  /** The last batch of a partition (null when it is empty). */
  async lastBatch(topic: string, partition: number): Promise<RecordBatch | null> {
    const { start, end } = await this.offsets(topic, partition);
    if (end <= start) return null;
    let last: RecordBatch | null = null;
    for await (const b of this.read(topic, partition, end - 1, { once: true })) last = b;
    return last;
  }
}

/**
 * The whole batches of a Fetch answer, in order, without control batches (skipped, but they move
 * `next`, the offset to fetch from afterwards). Batches that end before `from` are dropped (a broker
 * answers from the start of the batch that holds `from`).
 */
function cutBatches(records: Buffer | null, from: number): { batches: RecordBatch[]; next: number } {
  const out: RecordBatch[] = [];
  let next = from;
  if (records === null) return { batches: out, next };
  let pos = 0;
  while (records.length - pos >= BATCH_HEADER_BYTES) {
    const size = batchSizeAt(records, pos);
    if (size < BATCH_HEADER_BYTES || pos + size > records.length) break;
    const bytes = records.subarray(pos, pos + size);
    pos += size;
    if (bytes[BatchField.magic] !== 2)
      throw new KappaError(
        'KAPPA_CORRUPT_DATA',
        `The Kafka cluster returned a batch in message format ${bytes[BatchField.magic]}; KafkaLog reads format 2 (Kafka 0.11 and later) only.`,
      );
    const batch = new RecordBatch(bytes);
    if (batch.lastOffset < from) continue;
    next = batch.lastOffset + 1;
    if ((batch.attributes & ATTR_CONTROL) === 0) out.push(batch);
  }
  return { batches: out, next };
}

function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T | null> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.resolve(null);
  return new Promise<T | null>((resolve, reject) => {
    const onAbort = (): void => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
