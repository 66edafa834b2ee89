/**
 * ListOffsets 1-6: per partition, the offset for a timestamp. -2 (earliest) is the first offset
 * retained, -1 (latest) the high watermark; a time finds the first record at or after it through
 * the log's time index (`log.offsetForTime`), answered with that record's offset and timestamp, or
 * offset -1 when no record is that recent, as Kafka answers. Version 7's "max timestamp" (-3) is
 * not served: it needs the offset of the newest timestamp, which the log does not index.
 */
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';
import { kafkaCodeOf } from '../kafka-errors.ts';

interface ListOffsetsRequest {
  topics: { name: string; partitions: { partitionIndex: number; timestamp: number }[] }[];
}

const LATEST = -1;
const EARLIEST = -2;

export const listOffsetsHandler: Handler = {
  key: API_KEYS.ListOffsets,
  minVersion: 1,
  maxVersion: 6,
  async handle(ctx, body) {
    const req = body as ListOffsetsRequest;
    const topics = [];
    for (const t of req.topics) {
      const partitions = [];
      for (const p of t.partitions) partitions.push(await offsetFor(ctx, t.name, p.partitionIndex, p.timestamp));
      topics.push({ name: t.name, partitions });
    }
    return { throttleTimeMs: 0, topics };
  },
  errorBody(body, errorCode) {
    const req = body as ListOffsetsRequest;
    return {
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode,
          timestamp: -1,
          offset: -1,
        })),
      })),
    };
  },
};

async function offsetFor(
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
  timestamp: number,
): Promise<object> {
  const answer = (errorCode: number, offset: number, ts = -1): object => ({
    partitionIndex,
    errorCode,
    timestamp: ts,
    offset,
    leaderEpoch: errorCode === 0 ? 0 : -1,
  });
  if (!ctx.allowed(`consume:${topic}`)) return answer(ERRORS.TOPIC_AUTHORIZATION_FAILED, -1);
  const { log } = ctx.deps;
  try {
    const { start, end } = await log.offsets(topic, partitionIndex);
    if (timestamp === LATEST) return answer(0, end);
    if (timestamp === EARLIEST) return answer(0, start);
    if (timestamp < 0) return answer(ERRORS.UNSUPPORTED_VERSION, -1);
    const offset = await log.offsetForTime(topic, partitionIndex, timestamp);
    if (offset >= end) return answer(0, -1);
    return answer(0, offset, await timestampAt(ctx, topic, partitionIndex, offset, timestamp));
  } catch (err) {
    const code = kafkaCodeOf(err);
    if (code === null) throw err;
    return answer(code, -1);
  }
}

/** The timestamp of the record at `offset`; `fallback` when its batch cannot be decoded here. */
async function timestampAt(
  ctx: RequestContext,
  topic: string,
  partition: number,
  offset: number,
  fallback: number,
): Promise<number> {
  try {
    for await (const batch of ctx.deps.log.read(topic, partition, offset, { maxBytes: 4096 })) {
      const record = batch.records(offset)[0];
      if (record !== undefined) return record.timestamp;
    }
  } catch {
    // A compressed batch this build cannot decode, or retention removed it meanwhile.
  }
  return fallback;
}
