/**
 * NDJSON line splitting for ingestion and for the ingest spool's file: the lines of a byte stream,
 * a chunk's worth at a time, with the body's size and each line's length bounded.
 *
 * A body over its bound is refused (413) only after reading on, dropping the bytes, to its end or
 * TOO_LARGE_DRAIN_BYTES further: a server that stops reading and closes resets the connection,
 * and the client never sees the answer. Past that the stream is destroyed with its connection.
 */
import type { Readable } from 'node:stream';
import { KappaError } from '../errors.ts';

/** Bytes past the body limit read (and dropped) so the client gets its 413; past them the connection is cut. */
export const TOO_LARGE_DRAIN_BYTES = 16 * 1024 * 1024;
/** Longest NDJSON line (one record) accepted. */
export const LINE_BYTES_MAX = 16 * 1024 * 1024;

/**
 * The lines of a byte stream (without their '\n'), a chunk's worth at a time. Fails with 413 once
 * more than `limitBytes` arrived or a line grew past LINE_BYTES_MAX, but only after reading on
 * (dropping the bytes) to the end of the body, or TOO_LARGE_DRAIN_BYTES further: a server that
 * stops reading and closes resets the connection, and the client never sees the answer.
 */
export async function* lines(
  body: Readable,
  limitBytes: number,
  digest?: { update(chunk: Buffer): void },
): AsyncGenerator<Buffer[]> {
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
      refusal = new KappaError(
        'KAPPA_BODY_TOO_LARGE',
        `The request body is over the ${limitBytes} bytes the server accepts; nothing was appended. Send fewer records per request.`,
        { limitBytes },
      );
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
        refusal = new KappaError(
          'KAPPA_BODY_TOO_LARGE',
          `A line of the NDJSON body is over ${LINE_BYTES_MAX} bytes (one record per line, each ending with a newline); nothing was appended.`,
          { lineBytesMax: LINE_BYTES_MAX },
        );
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
