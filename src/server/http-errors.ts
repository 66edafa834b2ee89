/**
 * Every answer the server writes is the catalogue's (src/errors.ts): `{ error: { code, message,
 * details } }` with its HTTP status. This file turns Fastify's own errors (FST_ERR_*) and Node's
 * (a request that is not HTTP, headers too large, a request too slow to arrive) into the
 * catalogue's, and writes an error answer with the headers its code asks for (Retry-After,
 * Connection: close).
 */
import type { FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { type ErrorCode, KappaError } from '../errors.ts';
import { JSON_BODY_MAX } from './bodies.ts';

/**
 * Longest path segment (Fastify's maxParamLength, 100 by default): a topic name may have 249
 * characters (src/log/names.ts, Kafka's rule), three times that if a client percent-encodes each.
 */
export const PATH_PARAM_CHARS_MAX = 3 * 249;

/** The catalogue's code for a status that Fastify or Node answered with. */
const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'KAPPA_INVALID_ARGUMENT',
  404: 'KAPPA_NOT_FOUND',
  408: 'KAPPA_REQUEST_TIMEOUT',
  413: 'KAPPA_BODY_TOO_LARGE',
  414: 'KAPPA_URI_TOO_LONG',
  415: 'KAPPA_UNSUPPORTED_MEDIA_TYPE',
  431: 'KAPPA_HEADERS_TOO_LARGE',
  503: 'KAPPA_NOT_READY',
};

/** Any error as the catalogue's: Kappa's own as they are, Fastify's (FST_ERR_*) by their status, anything else a 500. */
export function asKappaError(err: unknown): KappaError {
  if (err instanceof KappaError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new KappaError(
        'KAPPA_BODY_TOO_LARGE',
        `The request body is larger than the server accepts (JSON bodies up to ${JSON_BODY_MAX} bytes; send more records as application/x-ndjson). Nothing was appended.`,
        {},
        err,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new KappaError(
        'KAPPA_UNSUPPORTED_MEDIA_TYPE',
        'Send the body as application/json (an object or an array of records) or application/x-ndjson (one record per line); for a topic with an Avro, Protobuf or JSON Schema format, also application/vnd.kappa.framed (one record in the Confluent wire format).',
        {},
        err,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new KappaError(
        'KAPPA_INVALID_RECORD',
        'The request body is empty; send a JSON object or an array of them.',
        {},
        err,
      );
    case 'FST_ERR_BAD_URL':
      return new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        'The URL is not valid: a % must be followed by two hexadecimal digits that encode UTF-8.',
        {},
        err,
      );
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new KappaError(
        'KAPPA_URI_TOO_LONG',
        `A part of the URL path is longer than the ${PATH_PARAM_CHARS_MAX} characters the server accepts (topic names have at most 249).`,
        { charsMax: PATH_PARAM_CHARS_MAX },
        err,
      );
  }
  const status = e.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = CODE_OF_STATUS[status] ?? 'KAPPA_INVALID_ARGUMENT';
    return new KappaError(
      code,
      `The request was refused: ${(e.message ?? String(err)).slice(0, 300)}`,
      { ...(status in CODE_OF_STATUS ? {} : { status }), ...(e.code ? { fastifyCode: e.code } : {}) },
      err,
    );
  }
  if (status === 503)
    return new KappaError('KAPPA_NOT_READY', 'The server cannot take the request now; retry shortly.', {}, err);
  return new KappaError('KAPPA_INTERNAL', 'The server failed to answer; the error is in its log.', {}, err);
}

/**
 * Node's answer to a request it cannot parse (Fastify's clientErrorHandler): bad HTTP, headers too
 * large, a request that took too long to arrive. Written straight to the socket, since no request
 * object exists, then the connection is ended.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection, or one that already answered: nothing can be said.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable || (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy(err);
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new KappaError(
          'KAPPA_HEADERS_TOO_LARGE',
          'The request line and headers are larger than the 16 KiB the server reads; send shorter headers (or a shorter URL).',
          {},
        )
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new KappaError(
            'KAPPA_REQUEST_TIMEOUT',
            'The request took too long to arrive; the server stopped waiting for it.',
            {},
          )
        : new KappaError(
            'KAPPA_INVALID_ARGUMENT',
            `The request is not valid HTTP/1.1 (${err.code ?? 'parse error'}).`,
            {},
          );
  const body = JSON.stringify(e.toJSON());
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function sendError(reply: FastifyReply, e: KappaError): FastifyReply {
  const retryAfter =
    e.code === 'KAPPA_OVERLOADED' ? 1 : e.code === 'KAPPA_DISK_FULL' ? 30 : e.code === 'KAPPA_NOT_READY' ? 1 : null;
  if (retryAfter !== null) reply.header('retry-after', String(retryAfter));
  if (e.code === 'KAPPA_BODY_TOO_LARGE' || e.code === 'KAPPA_UNSUPPORTED_MEDIA_TYPE')
    reply.header('connection', 'close');
  return reply.code(e.status).send(e.toJSON());
}
