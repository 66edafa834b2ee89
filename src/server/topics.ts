/**
 * Topics: `POST /v1/topics/:topic/records` (ingestion, ingest.ts: JSON or NDJSON, all or nothing,
 * acknowledged once durable; for a topic with a format also one Confluent-framed record as
 * `application/vnd.kappa.framed`), `GET /v1/topics` and `GET /v1/topics/:topic` (partitions, offsets,
 * record counts), and `GET /v1/topics/:topic/records` (a page of records from an offset, or with
 * `Accept: text/event-stream` a live tail that resumes after Last-Event-ID; values of topics with
 * a format decoded to JSON, record-json.ts). Writing needs
 * `produce:<topic>`, reading `consume:<topic>`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import { parseFrom } from '../stream/index.ts';
import type { Kappa } from './context.ts';
import { FRAMED_TYPE } from './bodies.ts';
import { BodyDigest, type IngestResult, digestOf, digestOfStream } from './ingest.ts';
import { recordShower } from './record-json.ts';
import { contentType, headerValue, wantsEventStream, wholeNumber } from './request.ts';

/** Records answered by one read at most. */
const RECORDS_READ_MAX = 10_000;

const topicScope =
  (action: 'produce' | 'consume') =>
  (req: FastifyRequest): string =>
    `${action}:${(req.params as { topic: string }).topic}`;

export async function topicRoutes(fastify: FastifyInstance): Promise<void> {
  const { kappa } = fastify;
  const { log } = kappa;
  fastify.post('/v1/topics/:topic/records', { config: { scope: topicScope('produce') } }, async (req, reply) => {
    const { topic } = req.params as { topic: string };
    const result = await ingest(kappa, req, topic);
    reply.code(result.deadLettered.length > 0 ? 207 : 200).type('application/json; charset=utf-8');
    const { acks } = result;
    // One record (the common single-record POST) written directly; small answers in one string; large ones streamed in chunks.
    if (acks.index.length === 1 && result.deadLettered.length === 0)
      return `{"topic":${JSON.stringify(topic)},"records":[{"index":${acks.index[0]},"partition":${acks.partition[0]},"offset":${acks.offset[0]}}]}`;
    return acks.index.length <= 4096 ? [...ackJson(topic, result)].join('') : Readable.from(ackJson(topic, result));
  });

  fastify.get('/v1/topics', { config: { scope: 'query' } }, async () => {
    const out = [];
    for (const t of await log.topics()) out.push(await describeTopic(log, t.name));
    return { topics: out };
  });
  fastify.get('/v1/topics/:topic', { config: { scope: topicScope('consume') } }, async (req) =>
    describeTopic(log, (req.params as { topic: string }).topic),
  );

  fastify.get(
    '/v1/topics/:topic/records',
    { config: { scope: topicScope('consume'), eventStream: true } },
    async (req, reply) => {
      const { topic } = req.params as { topic: string };
      const q = req.query as Record<string, string | undefined>;
      const info = await log.topic(topic);
      const partition = wholeNumber(q.partition ?? '0', 'partition', 0);
      if (partition >= info.partitions)
        throw new KappaError(
          'KAPPA_INVALID_PARTITION',
          `Topic "${topic}" has partitions 0-${info.partitions - 1}; there is no partition ${partition}.`,
          { topic, partition },
        );
      const limit = Math.min(wholeNumber(q.limit ?? '100', 'limit', 1), RECORDS_READ_MAX);
      const resumeAfter = headerValue(req, 'last-event-id');
      const from =
        wantsEventStream(req) && resumeAfter !== null && /^\d+$/.test(resumeAfter)
          ? Number(resumeAfter) + 1
          : await startOffset(log, topic, partition, q.from ?? 'earliest');
      if (wantsEventStream(req))
        return tailRecords(
          kappa,
          req,
          reply,
          topic,
          partition,
          Math.max(from, (await log.offsets(topic, partition)).start),
        );
      const show = recordShower(kappa.values, topic);
      const records = [];
      let next = from;
      for await (const batch of log.read(topic, partition, from)) {
        for (const r of batch.records(from)) {
          if (records.length === limit) break;
          records.push(await show(partition, r));
          next = r.offset + 1;
        }
        if (records.length === limit) break;
      }
      return { topic, partition, records, next };
    },
  );
}

/**
 * Ingests the request's body (NDJSON streamed, or parsed JSON) under the ingestor's in-flight
 * budget and the request's Idempotency-Key, if any.
 */
async function ingest(kappa: Kappa, req: FastifyRequest, topic: string): Promise<IngestResult> {
  const { ingestor, bodyBytesMax } = kappa;
  ingestor.checkTopic(topic);
  const key = headerValue(req, 'idempotency-key');
  const declared = Number(req.headers['content-length'] ?? 0) || 0;
  const type = contentType(req);
  if (type === 'application/x-ndjson') {
    const body = req.body as Readable;
    return ingestor.admit(
      topic,
      declared,
      key,
      () => digestOfStream(body),
      () => {
        if (key === null)
          return { result: ingestor.ingestNdjson(topic, body, bodyBytesMax), digest: Promise.resolve('') };
        const digest = new BodyDigest();
        const r = ingestor.ingestNdjson(topic, body, bodyBytesMax, { key, digest: () => digest.value() }, digest);
        return { result: r, digest: r.then(() => digest.value()) };
      },
    );
  }
  if (key === null && type === 'application/json') return ingestor.ingestUnkeyed(topic, req.body, declared);
  const digest = key === null ? '' : digestOf(req.rawBody ?? JSON.stringify(req.body) ?? ''); // only retries compare it
  const idempotency = key === null ? null : { key, digest: () => digest };
  if (type === FRAMED_TYPE)
    return ingestor.admit(
      topic,
      declared,
      key,
      async () => digest,
      () => ({
        result: ingestor.ingestFramed(topic, req.body as Buffer, idempotency),
        digest: Promise.resolve(digest),
      }),
    );
  return ingestor.admit(
    topic,
    declared,
    key,
    async () => digest,
    () => ({
      result: ingestor.ingestJson(topic, req.body, idempotency),
      digest: Promise.resolve(digest),
    }),
  );
}

/** SSE: records of one partition from `from` on, as they are appended, until the client goes. */
async function tailRecords(
  kappa: Kappa,
  req: FastifyRequest,
  reply: FastifyReply,
  topic: string,
  partition: number,
  from: number,
): Promise<void> {
  const abort = new AbortController();
  const stream = kappa.streams.start(req, reply, () => abort.abort());
  const show = recordShower(kappa.values, topic);
  try {
    for await (const batch of kappa.log.read(topic, partition, from, { follow: true, signal: abort.signal })) {
      let keepingUp = true;
      for (const r of batch.records(from))
        keepingUp =
          stream.send({
            id: String(r.offset),
            event: 'record',
            data: JSON.stringify(await show(partition, r)),
          }) && keepingUp;
      if (!keepingUp) await stream.drained(); // read on only as fast as the client takes it
      if (stream.ended()) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    stream.end();
  }
}

/**
 * The acknowledgement, `{ topic, records: [{ index, partition, offset }…], deadLettered? }`,
 * written in chunks: a million records acknowledged are never one string.
 */
function* ackJson(topic: string, r: IngestResult): Generator<string> {
  yield `{"topic":${JSON.stringify(topic)},"records":[`;
  const { index, partition, offset } = r.acks;
  const CHUNK = 4096;
  for (let i = 0; i < index.length; i += CHUNK) {
    let s = '';
    for (let j = i; j < Math.min(index.length, i + CHUNK); j++)
      s += `${j === 0 ? '' : ','}{"index":${index[j]},"partition":${partition[j]},"offset":${offset[j]}}`;
    yield s;
  }
  yield ']';
  if (r.deadLettered.length > 0)
    yield `,"deadLettered":${JSON.stringify(r.deadLettered.map((d) => ({ ...d, topic: `${topic}.dlq` })))}`;
  yield '}';
}

async function startOffset(log: Log, topic: string, partition: number, from: string): Promise<number> {
  const { start, end } = await log.offsets(topic, partition);
  if (from === 'earliest') return start;
  if (from === 'latest') return end;
  if (from.startsWith('@')) return log.offsetForTime(topic, partition, parseFrom(from));
  const offset = wholeNumber(from, 'from', 0);
  if (offset < start || offset > end)
    throw new KappaError(
      'KAPPA_OFFSET_OUT_OF_RANGE',
      `Partition ${partition} of topic "${topic}" holds offsets ${start} to ${end - 1}; ${offset} is outside.`,
      { start, end, offset },
    );
  return offset;
}

async function describeTopic(log: Log, name: string): Promise<object> {
  const info = await log.topic(name);
  const partitions = [];
  for (let p = 0; p < info.partitions; p++) partitions.push({ partition: p, ...(await log.offsets(name, p)) });
  return { ...info, partitions, records: partitions.reduce((s, p) => s + (p.end - p.start), 0) };
}

export { recordJson } from './record-json.ts';
