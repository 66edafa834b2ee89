/**
 * The HTTP server `kappa start` runs (Fastify): ingestion, queries, live subscriptions (SSE),
 * pipelines and builds, metrics, health. buildServer puts the shared objects on `fastify.kappa`
 * (context.ts), registers the hooks every route passes through (hooks.ts: auth, scopes, limits,
 * errors) and then one plugin per group of routes: health.ts, topics.ts, views.ts, pipelines.ts,
 * dashboard.ts, events.ts, and the schema registry (src/registry/, under /schemas, with its own Confluent-shaped
 * errors). Every route declares the scope it needs; a route without one is refused when
 * it is added, so nothing is open by accident. Errors are the catalogue's: `{ error: { code, message,
 * details } }` with its HTTP status.
 *
 * Without tokens in the config every route is open, and the server only binds to the loopback
 * address; asking for another address without tokens stops `kappa start` with an explanation.
 *
 * Every answer is the catalogue's, including those Fastify and Node would write themselves (a bad
 * URL, a path segment too long, headers too large, a request that is not HTTP): their handlers are
 * replaced (http-errors.ts). A 500 is always written to stderr with its error (or to the request
 * log when `logger` is on), since its message tells the client the error is in the server's log.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { isIP } from 'node:net';
import { KappaError } from '../errors.ts';
import type { FastifyRequest } from 'fastify';
import { registryRoutes } from '../registry/index.ts';
import type { TokenConfig } from '../stream/index.ts';
import { authenticate, checkTokens } from './auth.ts';
import { type ServerOptions, bodyLimits, createKappa } from './context.ts';
import { dashboardRoutes } from './dashboard.ts';
import { eventRoutes } from './events.ts';
import { healthRoutes } from './health.ts';
import { LOOPBACK, hooks } from './hooks.ts';
import { PATH_PARAM_CHARS_MAX, answerClientError, asKappaError, sendError } from './http-errors.ts';
import { pipelineRoutes } from './pipelines.ts';
import { topicRoutes } from './topics.ts';
import { viewRoutes } from './views.ts';

export { BODY_LIMIT_BYTES_DEFAULT, type RouteScope, type ServerOptions } from './context.ts';

export interface KappaServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  fastify: FastifyInstance;
  /** Stops accepting, ends live streams, waits for requests in flight (appends finish). */
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<KappaServer> {
  const fastify = await buildServer(opts);
  const host = opts.host ?? opts.app.server.host ?? '127.0.0.1';
  const port = opts.port ?? opts.app.server.port ?? 8080;
  const tokens = opts.app.server.tokens ?? [];
  if (tokens.length === 0 && !LOOPBACK.has(host)) {
    await fastify.close();
    throw new KappaError(
      'KAPPA_CONFIG_INVALID',
      `The server would listen on ${host} without any token, so anyone who can reach it could write and read everything. Add tokens to the config's server.tokens (\`kappa token <name> --scopes …\` makes one), or listen on 127.0.0.1.`,
      { host },
    );
  }
  try {
    await fastify.listen({ host, port });
  } catch (err) {
    await fastify.close();
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE')
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `Port ${port} on ${host} is in use (another kappa start?). Pick another with --port, or --port 0 for any free one.`,
        { host, port },
        err,
      );
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `Cannot listen on ${host}: this machine has no such address.`,
        { host },
        err,
      );
    throw err;
  }
  const address = fastify.server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return { url: `http://${shown}:${bound}`, fastify, close: () => fastify.close() };
}

/** The server, ready but not listening (tests call it with `inject()`). */
export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  checkTokens(opts.app.server.tokens ?? []);
  const fastify = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: bodyLimits(opts.app).jsonBodyBytesMax,
    // Closing is refused in onRequest instead, with the catalogue's 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: PATH_PARAM_CHARS_MAX },
    frameworkErrors: (err, _req, reply) => void sendError(reply, asKappaError(err)),
    clientErrorHandler: answerClientError,
  });
  fastify.decorate('kappa', createKappa(opts, fastify));
  await fastify.register(hooks);
  for (const routes of [healthRoutes, topicRoutes, viewRoutes, dashboardRoutes, eventRoutes, pipelineRoutes])
    await fastify.register(routes);
  const { kappa } = fastify;
  await fastify.register(registryRoutes, {
    prefix: '/schemas',
    registry: kappa.registry,
    readScope: anyToken(kappa.tokens),
    writeScope: 'admin',
    schemaBytesMax: kappa.schemaBytesMax,
    logError: kappa.logError,
  });
  await fastify.ready();
  return fastify;
}

/**
 * The scope of the schema registry's reads: any token the server knows. Serializers and
 * deserializers of every producer and consumer look schemas up, whatever topics their tokens name,
 * and a schema is no secret of one topic. The scope model has no "any token" scope, so this names,
 * for each request, a scope its own token holds (its first); a request without a known token needs
 * "any valid token" (the 401 says so). Registering, deleting and changing settings need `admin`.
 */
function anyToken(tokens: readonly TokenConfig[]): (req: FastifyRequest) => string {
  return (req) => {
    const header = req.headers?.authorization;
    const token = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7).trim() : '';
    const principal = token === '' ? null : authenticate(tokens, token);
    return principal?.scopes[0] ?? 'any valid token';
  };
}
