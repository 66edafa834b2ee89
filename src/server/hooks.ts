/**
 * The hooks every route passes through, registered on the root instance (not encapsulated) before
 * any route plugin:
 *
 * - scope check: a route that declares no `config.scope` cannot be registered, so nothing is open
 *   by accident; every route and its scope is listed in `fastify.kappaRoutes`.
 * - auth (onRequest): the Host must be loopback when no tokens are configured (DNS rebinding),
 *   or one of the names in KAPPA_ALLOWED_HOSTS (a port-forwarding domain); otherwise the bearer token must carry the route's scope (401 without a known token, 403
 *   without the scope).
 * - limits: Kappa's body parsers (bodies.ts) with their size caps.
 * - closing: new requests get 503, answers end their connection, live streams end.
 * - errors: the not-found and error handlers answer with the catalogue's errors (http-errors.ts);
 *   a 500 is logged (kappa.logError) since its message tells the client the error is in the log.
 * - metrics: each answer is counted and timed by route.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { KappaError } from '../errors.ts';
import type { TokenConfig } from '../stream/index.ts';
import { authenticate, hasScope } from './auth.ts';
import { registerBodyParsers } from './bodies.ts';
import { type RouteScope, shared } from './context.ts';
import { asKappaError, sendError } from './http-errors.ts';
import { wantsEventStream } from './request.ts';

export const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** A Host header (RFC 9110 §7.2): a name or an IPv4 address, or an IPv6 address in brackets, then an optional port. Nothing else. */
const HOST = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::\d{1,5})?$/i;

/**
 * The host name of a request's Host header, without its port (`[::1]:8080` → `::1`); null without
 * one. Refuses (400) a Host that is not a plain name or address with an optional port, and a request
 * with two Host headers, as RFC 9112 §3.2 requires: a lenient reading would let
 * `127.0.0.1:80@evil.example` pass for a loopback name.
 */
function hostName(req: FastifyRequest): string | null {
  const raw = req.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') count++;
  if (count === 0) return null;
  const host = req.headers.host ?? '';
  const m = count === 1 ? HOST.exec(host) : null;
  if (m === null || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      count === 1
        ? 'The Host header is not a host name or address with an optional port.'
        : 'The request has more than one Host header.',
      { host: host.slice(0, 100) },
    );
  }
  return (m[1] ?? m[2]).toLowerCase();
}

/**
 * Host names a server without tokens answers besides the loopback names: KAPPA_ALLOWED_HOSTS, a
 * comma-separated list. A name starting with a dot matches that domain's subdomains
 * (`.app.github.dev`), for the port-forwarding domains of a remote editor or a container platform,
 * which forward to 127.0.0.1 but keep their own Host.
 */
export interface AllowedHosts {
  names: Set<string>;
  suffixes: string[];
}

export function allowedHosts(list: string | undefined): AllowedHosts {
  const entries = (list ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  for (const h of entries)
    if (!/^\.?[a-z0-9_.-]+$/.test(h) || h === '.')
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `KAPPA_ALLOWED_HOSTS: "${h.slice(0, 100)}" is not a host name; list names separated by commas (a leading dot allows every subdomain, e.g. .app.github.dev).`,
        { host: h.slice(0, 100) },
      );
  return {
    names: new Set(entries.filter((h) => !h.startsWith('.'))),
    suffixes: entries.filter((h) => h.startsWith('.')),
  };
}

function isAllowed(host: string | null, allowed: AllowedHosts): boolean {
  if (host === null) return false;
  return LOOPBACK.has(host) || allowed.names.has(host) || allowed.suffixes.some((s) => host.endsWith(s));
}

/** Lets the request through, or throws why not (401, 403); sets `req.principal` when a token is checked. */
function authorize(req: FastifyRequest, tokens: readonly TokenConfig[], allowed: AllowedHosts): void {
  const host = hostName(req);
  // Without tokens the server is open to this machine only; a browser page from elsewhere whose
  // name resolves to 127.0.0.1 (DNS rebinding) still sends its own Host, and is refused here.
  if (tokens.length === 0 && !isAllowed(host, allowed)) {
    throw new KappaError(
      'KAPPA_FORBIDDEN',
      `Without tokens in the config this server answers only requests addressed to 127.0.0.1, ::1 or localhost${allowed.names.size + allowed.suffixes.length > 0 ? ` or a name in KAPPA_ALLOWED_HOSTS` : ''}, not "${(host ?? '').slice(0, 100)}". ` +
        'Reaching it through a port-forwarding domain? Start it with KAPPA_ALLOWED_HOSTS=<that host name> (a leading dot allows every subdomain).',
      { host: String(req.headers.host ?? '').slice(0, 100) },
    );
  }
  const scope = req.route!.config?.scope;
  if (scope === null || scope === undefined || tokens.length === 0) return;
  const needed = typeof scope === 'function' ? scope(req) : scope;
  const header = req.headers.authorization;
  let token = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7).trim() : null;
  // Browsers cannot send headers with EventSource: event streams also take ?access_token= (RFC 6750).
  // Only they: a token in the URL of any other request would be a token in logs for no reason.
  if (token === null && req.route!.config?.eventStream === true && req.method === 'GET' && wantsEventStream(req)) {
    token = (req.query as { access_token?: unknown }).access_token?.toString() ?? null;
  }
  if (token === null || token === '')
    throw new KappaError(
      'KAPPA_UNAUTHENTICATED',
      'This route needs a token: send the header `Authorization: Bearer <token>` (event streams may pass ?access_token=<token> instead).',
      { scope: needed },
    );
  const principal = authenticate(tokens, token);
  if (principal === null)
    throw new KappaError('KAPPA_UNAUTHENTICATED', 'The bearer token is not one the server knows.', { scope: needed });
  if (!hasScope(principal, needed))
    throw new KappaError(
      'KAPPA_FORBIDDEN',
      `Token "${principal.name}" does not have the scope "${needed}" this route needs.`,
      { scope: needed, token: principal.name },
    );
  req.principal = principal;
}

/** Refuses any route added later without a declared scope, and lists the others in `kappaRoutes`. */
function requireScopes(fastify: FastifyInstance): void {
  const routes: RouteScope[] = [];
  fastify.decorate('kappaRoutes', routes);
  fastify.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    if (scope === undefined)
      throw new Error(
        `route ${route.method} ${route.url} declares no scope; every route must say who may call it (config.scope, null for an open route)`,
      );
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD')
        routes.push({
          method,
          url: route.url,
          scope:
            typeof scope === 'function' ? scope({ params: { topic: ':topic' } } as unknown as FastifyRequest) : scope,
        });
    }
  });
}

/** Ends live streams and refuses new requests once the server closes; releases the hub and metrics after. */
function handleClosing(fastify: FastifyInstance): { closing(): boolean } {
  const { kappa } = fastify;
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
    kappa.streams.endAll();
  });
  // Answers sent while closing end their connection, so close() does not wait out keep-alive.
  fastify.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  fastify.addHook('onClose', async () => {
    kappa.hub?.close();
    kappa.metrics.close(kappa.log, kappa.engine);
  });
  return { closing: () => closing };
}

export const hooks = shared('kappa-hooks', async (fastify) => {
  const { kappa } = fastify;
  const state = handleClosing(fastify);
  const allowed = allowedHosts(process.env.KAPPA_ALLOWED_HOSTS);
  fastify.decorateRequest('principal', null);
  fastify.decorateRequest('rawBody', null);
  fastify.decorateRequest('route', null);
  requireScopes(fastify);
  registerBodyParsers(fastify, kappa.jsonBodyBytesMax);

  // Callback hooks: no promise per request on the hot path.
  fastify.addHook('onRequest', (req, _reply, done) => {
    try {
      if (state.closing())
        throw new KappaError(
          'KAPPA_NOT_READY',
          'The server is shutting down; send the request again once it is back.',
          {},
        );
      req.route = req.routeOptions;
      authorize(req, kappa.tokens, allowed);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = (req.route ?? req.routeOptions).url ?? 'unknown';
    kappa.metrics.answered(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  fastify.setNotFoundHandler((req, reply) => {
    void sendError(
      reply,
      new KappaError('KAPPA_NOT_FOUND', `There is no route ${req.method} ${req.url.split('?')[0]}.`, {
        method: req.method,
      }),
    );
  });
  fastify.setErrorHandler((err, _req, reply) => {
    const e = asKappaError(err);
    if (e.status >= 500 && e.code !== 'KAPPA_DISK_FULL' && e.code !== 'KAPPA_NOT_READY') kappa.logError(err);
    return sendError(reply, e);
  });
});
