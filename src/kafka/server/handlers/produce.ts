/**
 * Produce 0-9 (advertised from 0: librdkafka stops compressing when a broker does not list the old
 * versions), accepting RecordBatch v2 only (message format 2, what every client since Kafka 0.11
 * sends); a partition whose records are in the old formats (magic 0 or 1) is refused with
 * UNSUPPORTED_FOR_MESSAGE_FORMAT and nothing of it is stored.
 *
 * Each partition's `records` may hold several batches: they are cut apart here and each is
 * appended as it came (`log.appendEncoded`, no re-encoding), in order. The log applies the
 * idempotent producer's rules from the batch header: a re-sent batch is answered with its original
 * offsets (or DUPLICATE_SEQUENCE_NUMBER when the log no longer knows them, which clients count as
 * success), a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH.
 *
 * Order: `handle` starts every append before its first await, and the dispatcher calls it as
 * requests arrive, so the batches of requests pipelined on one connection reach each partition in
 * the order the producer sent them (FileLog queues an append when it is called). An idempotent
 * producer with several requests in flight depends on this.
 *
 * Topics whose config format checks schema ids (schema-ids.ts): a batch holding a record that is
 * not in Confluent's wire format, or names a schema id the registry does not know (or of another
 * schema type), is refused with INVALID_RECORD, the record named in record_errors and
 * error_message (v8+), and nothing of the partition's batches is stored.
 *
 * The request's bytes may be reused once `handle` resolves (`keepsNoBytes`): it resolves only
 * after every append it started has settled, and the log keeps no view of a batch after that.
 *
 * acks: 0 (no answer; on an error the connection is closed, as Kafka does, so the producer
 * notices), 1 and -1 (answered once the records are durable: there are no replicas to wait for).
 */
import { checkBatch, checkRecords } from '../../../log/index.ts';
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';
import { kafkaCodeOf, messageOf } from '../kafka-errors.ts';
import type { RecordProblem } from '../schema-ids.ts';

interface ProduceRequest {
  transactionalId: string | null;
  acks: number;
  topicData: { name: string; partitionData: { index: number; records: Buffer | null }[] }[];
}

interface PartitionResponse {
  index: number;
  errorCode: number;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  errorMessage: string | null;
  /** Produce v8+: the records that made the partition's batches be refused (KIP-467). */
  recordErrors?: { batchIndex: number; batchIndexErrorMessage: string | null }[];
}

/** Offsets within a RecordBatch v2 header (the log's format/batch-header.ts owns them; these are read before the log sees the bytes). */
const BATCH_LENGTH_AT = 8;
const MAGIC_AT = 16;
const RECORD_COUNT_AT = 57;
const HEADER_BYTES = 61;
const LOG_OVERHEAD = 12;

export const produceHandler: Handler = {
  key: API_KEYS.Produce,
  minVersion: 0,
  maxVersion: 9,
  // Resolved means every append has settled, and the log gives a batch's bytes back when its append settles.
  keepsNoBytes: true,
  handle(ctx, body) {
    const req = body as ProduceRequest;
    const refused = refusal(req);
    const topics = req.topicData.map((t) => ({
      name: t.name,
      partitions: t.partitionData.map((p) =>
        refused !== null ? Promise.resolve(failed(p.index, refused, null)) : appendPartition(ctx, t.name, p),
      ),
    }));
    return answer(ctx, req, topics);
  },
  errorBody(body, errorCode) {
    const req = body as ProduceRequest;
    return {
      responses: req.topicData.map((t) => ({
        name: t.name,
        partitionResponses: t.partitionData.map((p) => failed(p.index, errorCode, null)),
      })),
    };
  },
};

function refusal(req: ProduceRequest): number | null {
  if (req.transactionalId !== null && req.transactionalId !== undefined)
    return ERRORS.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) return ERRORS.INVALID_REQUIRED_ACKS;
  return null;
}

async function answer(
  ctx: RequestContext,
  req: ProduceRequest,
  topics: { name: string; partitions: Promise<PartitionResponse>[] }[],
): Promise<object | null> {
  const responses = await Promise.all(
    topics.map(async (t) => ({ name: t.name, partitionResponses: await Promise.all(t.partitions) })),
  );
  if (req.acks === 0) {
    if (responses.some((t) => t.partitionResponses.some((p) => p.errorCode !== 0))) ctx.closeAfterResponse();
    return null;
  }
  return { responses, throttleTimeMs: 0 };
}

function failed(index: number, errorCode: number, errorMessage: string | null): PartitionResponse {
  return { index, errorCode, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, errorMessage };
}

/** Cuts `records` into its batches, or says why they cannot be stored. */
function splitBatches(records: Buffer | null): Buffer[] | number {
  if (records === null || records.length === 0) return ERRORS.CORRUPT_MESSAGE;
  const batches: Buffer[] = [];
  let pos = 0;
  while (pos < records.length) {
    if (records.length - pos <= MAGIC_AT) return ERRORS.CORRUPT_MESSAGE;
    if (records[pos + MAGIC_AT] !== 2) return ERRORS.UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (records.length - pos < HEADER_BYTES) return ERRORS.CORRUPT_MESSAGE;
    const size = records.readInt32BE(pos + BATCH_LENGTH_AT) + LOG_OVERHEAD;
    if (size < HEADER_BYTES || pos + size > records.length) return ERRORS.CORRUPT_MESSAGE;
    batches.push(records.subarray(pos, pos + size));
    pos += size;
  }
  // Several batches are stored all or none: each is checked before the first is appended.
  if (batches.length > 1)
    for (const b of batches) {
      const check = checkBatch(b, 0, b.length);
      if (check.problem !== null) return check.problem === 'bad-crc' ? ERRORS.CORRUPT_MESSAGE : ERRORS.INVALID_RECORD;
      if (checkRecords(b) !== null) return ERRORS.INVALID_RECORD;
    }
  return batches;
}

/**
 * Starts the partition's appends now (synchronously), and resolves with its answer; for a topic
 * whose records must name a known schema id (schema-ids.ts), once its records are checked.
 */
function appendPartition(
  ctx: RequestContext,
  topic: string,
  p: { index: number; records: Buffer | null },
): Promise<PartitionResponse> {
  if (!ctx.allowed(`produce:${topic}`))
    return Promise.resolve(failed(p.index, ERRORS.TOPIC_AUTHORIZATION_FAILED, null));
  const batches = splitBatches(p.records);
  if (typeof batches === 'number') return Promise.resolve(failed(p.index, batches, null));
  const checks = ctx.deps.schemaIds;
  if (checks === null || !checks.covers(topic)) return startAppends(ctx, topic, p.index, batches);
  return checks.checkInOrder(topic, p.index, batches, (problem) =>
    problem === null ? startAppends(ctx, topic, p.index, batches) : Promise.resolve(refusedRecord(p.index, problem)),
  );
}

/** A partition refused for one of its records (a topic whose records must name a known schema id). */
function refusedRecord(index: number, problem: RecordProblem): PartitionResponse {
  return {
    ...failed(index, ERRORS.INVALID_RECORD, problem.message),
    recordErrors: [{ batchIndex: problem.record, batchIndexErrorMessage: problem.message }],
  };
}

/** Starts the appends of a partition's batches now (synchronously), and resolves with its answer. */
function startAppends(
  ctx: RequestContext,
  topic: string,
  index: number,
  batches: Buffer[],
): Promise<PartitionResponse> {
  const counts = batches.map((b) => b.readInt32BE(RECORD_COUNT_AT));
  const appends = batches.map((b) => ctx.deps.log.appendEncoded(topic, index, b));
  return settle(ctx, topic, index, batches, counts, appends);
}

async function settle(
  ctx: RequestContext,
  topic: string,
  index: number,
  batches: Buffer[],
  counts: number[],
  appends: Promise<import('../../../log/index.ts').AppendBatchResult>[],
): Promise<PartitionResponse> {
  const results = await Promise.allSettled(appends);
  let baseOffset = -2;
  let errorCode = 0;
  let appended = 0;
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r.status === 'rejected') {
      const code = kafkaCodeOf(r.reason);
      if (code === null) throw r.reason;
      const corrupt =
        code === ERRORS.INVALID_RECORD && checkBatch(batches[i], 0, batches[i].length).problem === 'bad-crc';
      return failed(index, corrupt ? ERRORS.CORRUPT_MESSAGE : code, messageOf(r.reason));
    }
    const { value } = r;
    appended += counts[i] - value.duplicates;
    if (baseOffset === -2) {
      baseOffset = value.baseOffset;
      // Every record a duplicate the log no longer has the offsets of: Kafka's DUPLICATE_SEQUENCE_NUMBER.
      if (value.baseOffset < 0 && value.duplicates === counts[i]) errorCode = ERRORS.DUPLICATE_SEQUENCE_NUMBER;
      else if (value.baseOffset < 0) baseOffset = value.lastOffset - (counts[i] - 1);
    }
  }
  if (appended > 0) ctx.deps.metrics.producedRecords.inc({ topic }, appended);
  const { start } = await ctx.deps.log.offsets(topic, index);
  return { index, errorCode, baseOffset, logAppendTimeMs: -1, logStartOffset: start, errorMessage: null };
}
