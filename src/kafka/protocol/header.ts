/**
 * Request and response headers (Kafka's RequestHeader.json and ResponseHeader.json).
 *
 *   request header v1:   api_key int16, api_version int16, correlation_id int32, client_id nullable string
 *   request header v2:   v1, then a tagged-fields section (flexible request versions)
 *   response header v0:  correlation_id int32
 *   response header v1:  correlation_id int32, then a tagged-fields section (flexible response versions)
 *
 * client_id keeps the old int16 length even in v2, so a broker can read the header of any request,
 * whatever its version. ApiVersions responses always use header v0, so that a client that sent a
 * version the broker does not know can still read the answer.
 */
import { Reader } from './reader.ts';
import type { Writer } from './writer.ts';
import { malformed } from './protocol-error.ts';

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/** The fixed part: api_key, api_version, correlation_id. */
const FIXED_BYTES = 8;

/** Reads a request header v1 (no tagged section); the caller reads v2's tagged section. */
export function readRequestHeader(r: Reader): RequestHeader {
  if (r.remaining < FIXED_BYTES) throw malformed(`a request needs at least ${FIXED_BYTES} bytes of header`);
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  const header: RequestHeader = { apiKey, apiVersion, correlationId, clientId: null };
  try {
    const n = r.length(false, false, 'client_id');
    header.clientId = n === -1 ? null : r.utf8(n, 'client_id');
  } catch (err) {
    (err as { header?: RequestHeader }).header = header;
    throw err;
  }
  return header;
}

export function writeRequestHeader(w: Writer, header: RequestHeader, flexible: boolean): void {
  w.int16(header.apiKey);
  w.int16(header.apiVersion);
  w.int32(header.correlationId);
  if (header.clientId === null) w.int16(-1);
  else {
    const bytes = Buffer.byteLength(header.clientId, 'utf8');
    w.int16(bytes);
    w.utf8(header.clientId, bytes);
  }
  if (flexible) w.uvarint(0);
}

/** Skips a tagged-fields section whose fields are all unknown to us (the headers define none we use). */
export function skipTaggedFields(r: Reader): void {
  const count = r.uvarint();
  if (count * 2 > r.remaining) throw malformed(`${count} tagged fields cannot fit in ${r.remaining} bytes`);
  for (let i = 0; i < count; i++) {
    r.uvarint();
    r.skip(r.uvarint(), 'tagged field');
  }
}

export function writeResponseHeader(w: Writer, correlationId: number, flexible: boolean): void {
  w.int32(correlationId);
  if (flexible) w.uvarint(0);
}
