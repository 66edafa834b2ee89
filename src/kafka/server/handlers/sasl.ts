/**
 * SaslHandshake 0-1 and SaslAuthenticate 0-2, mechanism PLAIN only: the user is a token's name and
 * the password the token itself, checked as the HTTP API checks a bearer token (server/auth.ts).
 *
 * After SaslHandshake v1 the client sends its PLAIN message inside SaslAuthenticate requests; after
 * v0 (older clients) it sends the bare message as the next frame, answered by a bare frame (empty
 * on success) — `rawSaslAuthenticate`. A failed login gets SASL_AUTHENTICATION_FAILED and the
 * connection is closed, as Kafka does. Without tokens configured, every login is accepted: the
 * listener is open to this machine anyway.
 */
import { authenticate } from '../../../server/index.ts';
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, ListenerDeps, Session } from '../context.ts';
import { ANONYMOUS } from '../context.ts';
import type { Outcome } from '../dispatch.ts';

const MECHANISMS = ['PLAIN'];

interface HandshakeRequest {
  mechanism: string;
}

export const saslHandshakeHandler: Handler = {
  key: API_KEYS.SaslHandshake,
  minVersion: 0,
  maxVersion: 1,
  async handle(ctx, body) {
    const { mechanism } = body as HandshakeRequest;
    if (!MECHANISMS.includes(mechanism))
      return { errorCode: ERRORS.UNSUPPORTED_SASL_MECHANISM, mechanisms: MECHANISMS };
    if (ctx.session.principal !== null && ctx.deps.tokens.length > 0)
      return { errorCode: ERRORS.ILLEGAL_SASL_STATE, mechanisms: MECHANISMS };
    ctx.session.saslMechanism = mechanism;
    ctx.session.rawSaslNext = ctx.header.apiVersion === 0;
    return { errorCode: 0, mechanisms: MECHANISMS };
  },
  errorBody(_body, errorCode) {
    return { errorCode, mechanisms: MECHANISMS };
  },
};

export const saslAuthenticateHandler: Handler = {
  key: API_KEYS.SaslAuthenticate,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, body) {
    const { authBytes } = body as { authBytes: Buffer };
    if (ctx.session.saslMechanism === null) {
      ctx.closeAfterResponse();
      return {
        errorCode: ERRORS.ILLEGAL_SASL_STATE,
        errorMessage: 'SaslAuthenticate before SaslHandshake: send SaslHandshake with mechanism PLAIN first.',
        authBytes: Buffer.alloc(0),
      };
    }
    const failure = login(ctx.deps, ctx.session, authBytes);
    if (failure !== null) {
      ctx.closeAfterResponse();
      return { errorCode: ERRORS.SASL_AUTHENTICATION_FAILED, errorMessage: failure, authBytes: Buffer.alloc(0) };
    }
    return { errorCode: 0, errorMessage: null, authBytes: Buffer.alloc(0), sessionLifetimeMs: 0 };
  },
  errorBody(_body, errorCode) {
    return { errorCode, errorMessage: 'The server failed to check the login.', authBytes: Buffer.alloc(0) };
  },
};

/** The bare PLAIN message that follows a SaslHandshake v0. */
export function rawSaslAuthenticate(deps: ListenerDeps, session: Session, frame: Buffer): Outcome {
  session.rawSaslNext = false;
  const failure = login(deps, session, frame);
  deps.metrics.requests.inc({
    api: 'SaslAuthenticate',
    error: failure === null ? 'NONE' : 'SASL_AUTHENTICATION_FAILED',
  });
  if (failure !== null) return { chunks: null, close: 'auth' };
  const empty = Buffer.alloc(4);
  return { chunks: [empty], close: null };
}

/** Checks a PLAIN message (`authzid NUL user NUL password`); sets the principal, or says why not. */
function login(deps: ListenerDeps, session: Session, message: Buffer): string | null {
  const parts = message.toString('utf8').split('\u0000');
  if (parts.length !== 3)
    return 'The SASL/PLAIN message is malformed: expected authzid, user and password separated by NUL bytes.';
  const [authzid, user, password] = parts;
  if (deps.tokens.length === 0) {
    session.principal = ANONYMOUS;
    return null;
  }
  const principal = authenticate(deps.tokens, password);
  if (principal === null || principal.name !== user || (authzid !== '' && authzid !== user))
    return `Authentication failed for user "${user.slice(0, 100)}": the user must be the name of a token in Kappa's config (server.tokens) and the password the token itself. \`kappa token <name> --scopes …\` makes one.`;
  session.principal = principal;
  return null;
}
