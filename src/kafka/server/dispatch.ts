/**
 * From a frame to the bytes of its answer: decode the request (the codec), check the version
 * against what this listener advertises, check authentication, run the handler, encode.
 *
 * What gets which answer, as Kafka's broker does it:
 * - a frame that does not decode, an unknown API key, or a version not advertised: the connection
 *   is closed (a client that sent it cannot read any answer we could give); except ApiVersions,
 *   whose unsupported versions are answered in v0 with UNSUPPORTED_VERSION and the list of what is
 *   served, so the client can pick again.
 * - with tokens configured, any request before SASL succeeds other than ApiVersions, SaslHandshake
 *   and SaslAuthenticate: the connection is closed.
 * - a handler that throws: UNKNOWN_SERVER_ERROR for what the request asked (the handler's
 *   errorBody), logged once per distinct message; if even that cannot be encoded, the connection
 *   is closed.
 *
 * `dispatch` calls the handler synchronously, before its first await, so handlers see requests in
 * the order they arrived on the connection (Produce appends in that order; see handlers/produce.ts).
 */
import { hasScope } from '../../server/index.ts';
import {
  API_KEYS,
  ERRORS,
  KafkaProtocolError,
  type RequestHeader,
  decodeRequest,
  encodeResponse,
} from '../protocol/index.ts';
import type { Handler, ListenerDeps, RequestContext, Session } from './context.ts';
import { firstError, errorName } from './metrics.ts';
import { rawSaslAuthenticate } from './handlers/sasl.ts';

/** What became of one frame: the bytes to write (null: none) and whether to close after them. */
export interface Outcome {
  chunks: Buffer[] | null;
  close: 'protocol' | 'auth' | null;
  /** Nothing refers to the request's frame any more: its buffer may be reused. */
  frameFree?: boolean;
}

const CLOSE_PROTOCOL: Outcome = { chunks: null, close: 'protocol' };
const CLOSE_AUTH: Outcome = { chunks: null, close: 'auth' };

/** The APIs a client may call before it has authenticated. */
const BEFORE_AUTH = new Set<number>([API_KEYS.ApiVersions, API_KEYS.SaslHandshake, API_KEYS.SaslAuthenticate]);

export class Dispatcher {
  private readonly handlers = new Map<number, Handler>();

  constructor(
    private readonly deps: ListenerDeps,
    handlers: readonly Handler[],
  ) {
    for (const h of handlers) this.handlers.set(h.key, h);
  }

  dispatch(frame: Buffer, session: Session, signal: AbortSignal): Promise<Outcome> | Outcome {
    if (session.rawSaslNext) return rawSaslAuthenticate(this.deps, session, frame);
    let header: RequestHeader;
    let body: unknown;
    try {
      ({ header, body } = decodeRequest(frame));
    } catch (err) {
      if (err instanceof KafkaProtocolError && err.header?.apiKey === API_KEYS.ApiVersions)
        return this.unsupportedApiVersions(err.header);
      this.deps.metrics.requests.inc({ api: 'unreadable', error: 'CLOSED' });
      return CLOSE_PROTOCOL;
    }
    const handler = this.handlers.get(header.apiKey);
    if (!handler || header.apiVersion < handler.minVersion || header.apiVersion > handler.maxVersion) {
      if (header.apiKey === API_KEYS.ApiVersions) return this.unsupportedApiVersions(header);
      this.deps.metrics.requests.inc({ api: apiName(header.apiKey), error: 'UNSUPPORTED_VERSION' });
      return CLOSE_PROTOCOL;
    }
    if (session.principal === null && this.deps.tokens.length > 0 && !BEFORE_AUTH.has(header.apiKey)) {
      this.deps.metrics.requests.inc({ api: apiName(header.apiKey), error: 'SASL_AUTHENTICATION_FAILED' });
      return CLOSE_AUTH;
    }
    return this.run(handler, header, body, session, signal);
  }

  private async run(
    handler: Handler,
    header: RequestHeader,
    body: unknown,
    session: Session,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const started = process.hrtime.bigint();
    const api = apiName(header.apiKey);
    let closeAfter = false;
    const ctx: RequestContext = {
      deps: this.deps,
      session,
      header,
      signal,
      allowed: (scope) => session.principal !== null && hasScope(session.principal, scope),
      allowedAny: (prefix) =>
        session.principal !== null && session.principal.scopes.some((s) => s === 'admin' || s.startsWith(prefix)),
      closeAfterResponse: () => {
        closeAfter = true;
      },
    };
    let response: object | null;
    let frameFree = false;
    try {
      response = await handler.handle(ctx, body);
      frameFree = handler.keepsNoBytes === true;
    } catch (err) {
      this.deps.logOnce(`${api} v${header.apiVersion} (answered UNKNOWN_SERVER_ERROR)`, err);
      try {
        response = handler.errorBody(body, ERRORS.UNKNOWN_SERVER_ERROR, header.apiVersion);
      } catch {
        return CLOSE_PROTOCOL;
      }
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.deps.metrics.requestSeconds.observe({ api }, seconds);
    if (response === null) {
      this.deps.metrics.requests.inc({ api, error: closeAfter ? 'CLOSED' : 'NONE' });
      return { chunks: null, close: closeAfter ? 'protocol' : null, frameFree };
    }
    this.deps.metrics.requests.inc({ api, error: errorName(firstError(response)) });
    try {
      return { chunks: encodeResponse(header, response), close: closeAfter ? 'auth' : null, frameFree };
    } catch (err) {
      this.deps.logOnce(`encoding the ${api} v${header.apiVersion} response (the connection was closed)`, err);
      return CLOSE_PROTOCOL;
    }
  }

  /** ApiVersions in a version this listener does not serve: answered in v0, as Kafka does. */
  private unsupportedApiVersions(header: RequestHeader): Outcome {
    this.deps.metrics.requests.inc({ api: 'ApiVersions', error: 'UNSUPPORTED_VERSION' });
    const body = { errorCode: ERRORS.UNSUPPORTED_VERSION, apiKeys: this.deps.advertised };
    return { chunks: encodeResponse({ ...header, apiVersion: 0 }, body), close: null };
  }
}

const API_NAMES = new Map<number, string>(Object.entries(API_KEYS).map(([name, key]) => [key, name]));

function apiName(key: number): string {
  return API_NAMES.get(key) ?? 'unknown';
}
