/**
 * Fetch 4-17. From version 13 topics are named by id (the stable ids of ../topic-ids.ts, as
 * Metadata gives them); an id no topic has is UNKNOWN_TOPIC_ID. Returns the stored batches' bytes
 * as they are on disk (`batch.bytes` from `log.read`, never copied or re-encoded, compressed or
 * not); the first batch may begin before the fetch offset, as with Kafka, and clients skip the
 * records before it.
 *
 * Limits: `partitionMaxBytes` per partition and `maxBytes` for the whole answer (capped by the
 * listener's fetchBytesMax), counted in whole batches; the first batch of the answer is returned
 * even when it is larger, and each partition's first batch even when larger than
 * partitionMaxBytes, so a consumer never stalls on a big batch (KIP-74).
 *
 * Long poll: while the answer has fewer than `minBytes` bytes and no errors, it waits up to
 * `maxWaitMs` for any of the requested partitions to grow (`log.waitForData`), then reads again.
 * The wait ends early when the connection closes or the listener stops.
 *
 * There are no transactions, so the last stable offset is the high watermark and there are never
 * aborted transactions; there are no fetch sessions (KIP-227), so the session id is always 0 and
 * clients send full requests.
 */
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';
import { kafkaCodeOf } from '../kafka-errors.ts';
import { ZERO_TOPIC_ID, topicIdOf } from '../topic-ids.ts';

interface FetchPartition {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}

interface FetchTopic {
  /** v4-12. */
  topic?: string;
  /** v13+. */
  topicId?: string;
  partitions: FetchPartition[];
}

interface FetchRequest {
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: number;
  topics: FetchTopic[];
}

interface PartitionData {
  partitionIndex: number;
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  abortedTransactions: [] | null;
  preferredReadReplica: number;
  records: Buffer[];
}

/** Longest a Fetch waits for data, whatever it asks (clients ask 0.5-5 s). */
const WAIT_MS_MAX = 5 * 60_000;
/** The log reads at least this much per step anyway. */
const READ_BYTES_MIN = 4096;

export const fetchHandler: Handler = {
  key: API_KEYS.Fetch,
  minVersion: 4,
  maxVersion: 17,
  async handle(ctx, body) {
    const req = body as FetchRequest;
    const deadline = Date.now() + Math.min(Math.max(req.maxWaitMs, 0), WAIT_MS_MAX);
    const bytesMax = Math.min(req.maxBytes > 0 ? req.maxBytes : 0x7fffffff, ctx.deps.fetchBytesMax);
    const names = await topicNames(ctx, req.topics);
    for (;;) {
      const round = await gather(ctx, req, names, bytesMax);
      const remainingMs = deadline - Date.now();
      if (
        round.bytes >= req.minBytes ||
        round.failed ||
        remainingMs <= 0 ||
        ctx.signal.aborted ||
        round.waitable.length === 0
      )
        return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: round.responses };
      await waitForAny(ctx, round.waitable, remainingMs);
    }
  },
  errorBody(body, errorCode) {
    const req = body as FetchRequest;
    return {
      errorCode: 0,
      sessionId: 0,
      responses: req.topics.map((t) => ({
        topic: t.topic ?? '',
        topicId: t.topicId ?? ZERO_TOPIC_ID,
        partitions: t.partitions.map((p) => empty(p.partition, errorCode, -1, -1, req.isolationLevel)),
      })),
    };
  },
};

function empty(
  partitionIndex: number,
  errorCode: number,
  end: number,
  start: number,
  isolation: number,
): PartitionData {
  return {
    partitionIndex,
    errorCode,
    highWatermark: end,
    lastStableOffset: end,
    logStartOffset: start,
    // Kafka sends null for read_uncommitted and a list (here always empty) for read_committed.
    abortedTransactions: isolation === 1 ? [] : null,
    preferredReadReplica: -1,
    records: [],
  };
}

/** The topic each entry of the request names: by name (v4-12), or by id (v13+; null: no such topic). */
async function topicNames(ctx: RequestContext, topics: FetchTopic[]): Promise<(string | null)[]> {
  if (ctx.header.apiVersion < 13) return topics.map((t) => t.topic ?? '');
  const byId = new Map((await ctx.deps.log.topics()).map((t) => [topicIdOf(t.name), t.name]));
  return topics.map((t) => byId.get(t.topicId ?? '') ?? null);
}

interface Round {
  responses: { topic: string; topicId: string; partitions: PartitionData[] }[];
  bytes: number;
  failed: boolean;
  /** Partitions read to their end: where new data would wake the long poll. */
  waitable: { topic: string; partition: number; offset: number }[];
}

async function gather(
  ctx: RequestContext,
  req: FetchRequest,
  names: (string | null)[],
  bytesMax: number,
): Promise<Round> {
  const round: Round = { responses: [], bytes: 0, failed: false, waitable: [] };
  for (let i = 0; i < req.topics.length; i++) {
    const t = req.topics[i];
    const name = names[i];
    const partitions: PartitionData[] = [];
    for (const p of t.partitions) {
      if (name === null) {
        round.failed = true;
        partitions.push(empty(p.partition, ERRORS.UNKNOWN_TOPIC_ID, -1, -1, req.isolationLevel));
      } else partitions.push(await readPartition(ctx, req, name, p, bytesMax, round));
    }
    round.responses.push({ topic: name ?? '', topicId: t.topicId ?? ZERO_TOPIC_ID, partitions });
  }
  return round;
}

async function readPartition(
  ctx: RequestContext,
  req: FetchRequest,
  topic: string,
  p: FetchPartition,
  bytesMax: number,
  round: Round,
): Promise<PartitionData> {
  const fail = (code: number, end = -1, start = -1): PartitionData => {
    round.failed = true;
    return empty(p.partition, code, end, start, req.isolationLevel);
  };
  if (!ctx.allowed(`consume:${topic}`)) return fail(ERRORS.TOPIC_AUTHORIZATION_FAILED);
  const { log } = ctx.deps;
  try {
    const { start, end } = await log.offsets(topic, p.partition);
    if (p.fetchOffset < start || p.fetchOffset > end) return fail(ERRORS.OFFSET_OUT_OF_RANGE, end, start);
    const data = empty(p.partition, 0, end, start, req.isolationLevel);
    if (p.fetchOffset === end) {
      round.waitable.push({ topic, partition: p.partition, offset: end });
      return data;
    }
    const left = bytesMax - round.bytes;
    if (left <= 0 && round.bytes > 0) return data;
    let taken = 0;
    // One read of what may be sent: a second one would be read, checked and thrown away.
    const reader = log.read(topic, p.partition, p.fetchOffset, {
      maxBytes: Math.max(Math.min(p.partitionMaxBytes, left), READ_BYTES_MIN),
      once: true,
    });
    for await (const batch of reader) {
      const size = batch.bytes.length;
      // Whole batches within the limits. The answer's first batch comes whatever its size, and each
      // partition's first batch whatever partitionMaxBytes (within maxBytes), so no batch stalls a
      // consumer however the client orders its partitions (KIP-74).
      if (round.bytes + taken > 0 && (taken + size > left || (taken > 0 && taken + size > p.partitionMaxBytes))) break;
      data.records.push(batch.bytes);
      taken += size;
      if (taken >= p.partitionMaxBytes || taken >= left) break;
    }
    round.bytes += taken;
    return data;
  } catch (err) {
    const code = kafkaCodeOf(err);
    if (code === null) throw err;
    return fail(code);
  }
}

/** Resolves when any partition grows past its offset, after `ms`, or when the connection closes. */
async function waitForAny(
  ctx: RequestContext,
  partitions: { topic: string; partition: number; offset: number }[],
  ms: number,
): Promise<void> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
      new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true })),
      ...partitions.map((p) =>
        ctx.deps.log.waitForData(p.topic, p.partition, p.offset, stop.signal).catch(() => {
          // A partition deleted while waiting: the next read reports it.
        }),
      ),
    ]);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
    stop.abort();
  }
}
