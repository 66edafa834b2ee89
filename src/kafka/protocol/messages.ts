/**
 * Whole messages: a request frame into its header and body, a response body into the chunks of its
 * frame, and the reverse of both for clients (tests and the fuzz suites).
 *
 *   request frame:   int32 size, request header (v1, or v2 for flexible versions), request body
 *   response frame:  int32 size, response header (v0, or v1 for flexible versions; v0 always for
 *                    ApiVersions), response body
 *
 * decodeRequest and decodeResponse take the frame after its size; the encoders write the size.
 *
 * Decoding is stricter than Kafka's broker in one way: bytes left over after the body are refused
 * ('malformed'), where Kafka ignores them. So a body that a client pads or over-writes is caught here
 * rather than misread (known case: @platformatic/kafka's Metadata v11 request; see platformatic.test.ts).
 */
import { readStruct, writeStruct } from './codec.ts';
import {
  readRequestHeader,
  skipTaggedFields,
  writeRequestHeader,
  writeResponseHeader,
  type RequestHeader,
} from './header.ts';
import { KafkaProtocolError, malformed } from './protocol-error.ts';
import { Reader } from './reader.ts';
import { API_SPECS, isFlexible, planFor } from './registry.ts';
import type { ApiSpec } from './types.ts';
import { Writer } from './writer.ts';

const API_VERSIONS_KEY = 18;

/** A request body, as decoded: field names as in Kafka's specs, in lowerCamelCase. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are shaped by the tables, checked at run time
export type Body = any;

/**
 * Decodes one request frame (the bytes after the 4-byte size). Throws KafkaProtocolError:
 * 'unknown-api' or 'unsupported-version' (with the header) when the codec has no table for them,
 * 'malformed' when the bytes do not follow the table (with the header when it was readable).
 */
export function decodeRequest(frame: Buffer): { header: RequestHeader; body: Body } {
  const r = new Reader(frame);
  const header = readRequestHeader(r);
  const spec = specFor(header.apiKey, header.apiVersion, header);
  try {
    const flexible = isFlexible(spec, header.apiVersion);
    if (flexible) skipTaggedFields(r);
    const body = readStruct(r, planFor(spec, header.apiVersion, false));
    if (r.remaining !== 0) throw malformed(`${r.remaining} bytes left over after the ${spec.name} request`);
    return { header, body };
  } catch (err) {
    throw withHeader(err, header);
  }
}

/** Encodes a response to the request `header` names, as chunks for socket.writev (the first holds the size). */
export function encodeResponse(header: RequestHeader, body: object): Buffer[] {
  const spec = specFor(header.apiKey, header.apiVersion, header);
  const flexible = isFlexible(spec, header.apiVersion);
  const w = new Writer();
  w.reserveSize();
  writeResponseHeader(w, header.correlationId, flexible && header.apiKey !== API_VERSIONS_KEY);
  writeStruct(w, planFor(spec, header.apiVersion, true), body);
  return w.finishSized();
}

/** Encodes a request as a client sends it: one Buffer, starting with the 4-byte size. */
export function encodeRequest(header: RequestHeader, body: object): Buffer {
  const spec = specFor(header.apiKey, header.apiVersion, header);
  const flexible = isFlexible(spec, header.apiVersion);
  const w = new Writer();
  w.reserveSize();
  writeRequestHeader(w, header, flexible);
  writeStruct(w, planFor(spec, header.apiVersion, false), body);
  return Buffer.concat(w.finishSized());
}

/** Decodes a response frame (the bytes after the 4-byte size) to a request of `apiKey` at `version`. */
export function decodeResponse(apiKey: number, version: number, frame: Buffer): { correlationId: number; body: Body } {
  const spec = specFor(apiKey, version);
  const r = new Reader(frame);
  const correlationId = r.int32();
  if (isFlexible(spec, version) && apiKey !== API_VERSIONS_KEY) skipTaggedFields(r);
  const body = readStruct(r, planFor(spec, version, true));
  if (r.remaining !== 0) throw malformed(`${r.remaining} bytes left over after the ${spec.name} response`);
  return { correlationId, body };
}

function specFor(apiKey: number, version: number, header?: RequestHeader): ApiSpec {
  const spec = API_SPECS.get(apiKey);
  if (!spec) throw new KafkaProtocolError('unknown-api', `API key ${apiKey} is not one this server knows`, header);
  if (version < spec.minVersion || version > spec.maxVersion) {
    const range = `${spec.minVersion}–${spec.maxVersion}`;
    throw new KafkaProtocolError(
      'unsupported-version',
      `${spec.name} version ${version} is not supported (supported: ${range})`,
      header,
    );
  }
  return spec;
}

function withHeader(err: unknown, header: RequestHeader): unknown {
  if (err instanceof KafkaProtocolError && !err.header) err.header = header;
  return err;
}
