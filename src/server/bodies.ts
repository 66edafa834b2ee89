/**
 * Request bodies: JSON (read whole, up to JSON_BODY_MAX, checked as UTF-8 and for nesting depth,
 * then parsed; its bytes kept on the request for idempotency digests), NDJSON (left as a stream
 * for the ingestion route to read line by line) and FRAMED_TYPE, one record value already in
 * Confluent's wire format (read whole, up to the same limit as JSON, and kept as bytes). Any other
 * content type is refused with 415 by Fastify, which http-errors.ts turns into the catalogue's error.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { KappaError } from '../errors.ts';
import { TOO_LARGE_DRAIN_BYTES } from './lines.ts';
import { JSON_DEPTH_MAX, jsonTooDeep } from './record-check.ts';

/** JSON bodies are parsed whole, so they are capped lower than streamed NDJSON. */
export const JSON_BODY_MAX = 32 * 1024 * 1024;

/**
 * The content type of one record value already encoded in Confluent's wire format (magic byte 0,
 * the 4-byte schema id, the payload), sent to a topic with a format; the body is the value's bytes.
 */
export const FRAMED_TYPE = 'application/vnd.kappa.framed';

/** Replaces Fastify's body parsers with Kappa's two; `jsonLimit` caps a JSON body (413 past it). */
export function registerBodyParsers(fastify: FastifyInstance, jsonLimit: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', (req, payload, done) => {
    readJsonBody(req, payload, jsonLimit, (err, body) => {
      if (err !== null) return done(err, undefined);
      req.rawBody = body!;
      try {
        done(
          null,
          parseJsonBody(
            body!,
            (req.route ?? req.routeOptions).url === '/v1/topics/:topic/records'
              ? 'KAPPA_INVALID_RECORD'
              : 'KAPPA_INVALID_ARGUMENT',
          ),
        );
      } catch (e) {
        done(e as Error, undefined);
      }
    });
  });
  fastify.addContentTypeParser('application/x-ndjson', (_req, payload, done) => done(null, payload));
  fastify.addContentTypeParser(FRAMED_TYPE, (req, payload, done) => {
    readJsonBody(
      req,
      payload,
      jsonLimit,
      (err, body) => {
        if (err !== null) return done(err, undefined);
        req.rawBody = body!;
        done(null, body);
      },
      'framed record bodies',
    );
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A body being read by `readJsonBody`, kept on its stream (so the listeners are shared functions, not closures per request). */
interface BodyRead {
  limit: number;
  what: string;
  chunks: Buffer[];
  bytes: number;
  settled: boolean;
  done: (err: Error | null, body?: Buffer) => void;
}

const kBodyRead = Symbol('kappa body read');
type ReadingStream = Readable & { [kBodyRead]: BodyRead };

/**
 * Reads a JSON body whole, up to `limit` bytes. A larger one is refused with 413 only once the rest
 * is read (and dropped), up to TOO_LARGE_DRAIN_BYTES more: a server that answers and closes while
 * the client is still sending resets the connection, and the client never sees the answer.
 */
function readJsonBody(
  req: FastifyRequest,
  payload: Readable,
  limit: number,
  done: (err: Error | null, body?: Buffer) => void,
  what = 'JSON bodies',
): void {
  if (Number(req.headers['content-length']) > limit + TOO_LARGE_DRAIN_BYTES) return done(tooLarge(limit, what));
  (payload as ReadingStream)[kBodyRead] = { limit, what, chunks: [], bytes: 0, settled: false, done };
  payload.on('data', onBodyData);
  payload.on('error', onBodyError);
  payload.on('end', onBodyEnd);
  // Closed before its end: the client went away mid-body. (Every body closes after its end too: the
  // error is made only when it is the answer, since making one costs a stack trace per request.)
  payload.on('close', onBodyClose);
}

function tooLarge(limit: number, what: string): KappaError {
  return new KappaError(
    'KAPPA_BODY_TOO_LARGE',
    `The request body is larger than the server accepts (${what} up to ${limit} bytes; send more records as application/x-ndjson). Nothing was appended.`,
    { limitBytes: limit },
  );
}

function finishBody(payload: ReadingStream, err: Error | null, body?: Buffer): void {
  const r = payload[kBodyRead];
  if (r.settled) return;
  r.settled = true;
  payload.off('data', onBodyData);
  r.done(err, body);
}

function onBodyData(this: ReadingStream, chunk: Buffer): void {
  const r = this[kBodyRead];
  r.bytes += chunk.length;
  if (r.bytes <= r.limit) r.chunks.push(chunk);
  else if (r.chunks.length > 0) r.chunks.length = 0; // past the limit: dropped, only counted
  if (r.bytes > r.limit + TOO_LARGE_DRAIN_BYTES) {
    finishBody(this, tooLarge(r.limit, r.what));
    this.destroy();
  }
}

function onBodyError(this: ReadingStream, err: Error): void {
  finishBody(
    this,
    new KappaError('KAPPA_INVALID_ARGUMENT', `The request body could not be read: ${err.message}`, {}, err),
  );
}

function onBodyEnd(this: ReadingStream): void {
  const r = this[kBodyRead];
  if (r.bytes > r.limit) return finishBody(this, tooLarge(r.limit, r.what));
  // One chunk (a small body) is the body as it is: the HTTP parser gives each chunk its own bytes.
  finishBody(this, null, r.chunks.length === 1 ? r.chunks[0] : Buffer.concat(r.chunks, r.bytes));
}

function onBodyClose(this: ReadingStream): void {
  if (!this[kBodyRead].settled)
    finishBody(this, new KappaError('KAPPA_INVALID_ARGUMENT', 'The request body ended before its Content-Length.', {}));
}

function parseJsonBody(body: Buffer, code: 'KAPPA_INVALID_RECORD' | 'KAPPA_INVALID_ARGUMENT'): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch (err) {
    throw new KappaError(code, 'The request body is not valid UTF-8.', {}, err);
  }
  // (A body that starts with a printable character is not blank: no trimmed copy made.)
  if (text.length === 0 || (text.charCodeAt(0) <= 0x20 && text.trim() === ''))
    throw new KappaError(code, 'The request body is empty; send a JSON object or an array of them.', {});
  // Deeper values would overflow the stack of the code that walks them (a 500, or worse).
  if (body.length > JSON_DEPTH_MAX && jsonTooDeep(body, JSON_DEPTH_MAX)) {
    throw new KappaError(
      code,
      `The request body nests arrays and objects more than ${JSON_DEPTH_MAX} deep, more than the server accepts.`,
      { depthMax: JSON_DEPTH_MAX },
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new KappaError(code, `The request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`, {}, err);
  }
}
