/**
 * The HTTP server `kappa start` runs (Fastify): ingestion, queries, live subscriptions (SSE),
 * pipelines and builds, metrics, health. Every route declares the scope it needs; a route without
 * one is refused when it is added, so nothing is open by accident. Errors are the catalogue's:
 * `{ error: { code, message, details } }` with its HTTP status.
 *
 * Without tokens in the config every route is open, and the server only binds to the loopback
 * address; asking for another address without tokens stops `kappa start` with an explanation.
 *
 * Every answer is the catalogue's, including those Fastify and Node would write themselves (a bad
 * URL, a path segment too long, headers too large, a request that is not HTTP): their handlers are
 * replaced here. A 500 is always written to stderr with its error (or to the request log when
 * `logger` is on), since its message tells the client the error is in the server's log.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { type ErrorCode, KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import type { AppDef, Engine } from '../stream/index.ts';
import { parseFrom } from '../stream/index.ts';
import type { ControlStore, ViewStore } from '../view/index.ts';
import { type Principal, authenticate, checkTokens, hasScope } from './auth.ts';
import { ChangeHub, type ChangeEvent } from './changes.ts';
import { BodyDigest, type IngestResult, Ingestor, JSON_DEPTH_MAX, digestOf, digestOfStream, jsonTooDeep } from './ingest.ts';
import { Metrics } from './metrics.ts';

export interface ServerOptions {
  log: Log;
  store: ViewStore;
  /** Build records and requests to the engine (the same object as `store` on SQLite). */
  control: ControlStore;
  app: AppDef;
  /** The running engine (null: ingestion and queries only, no pipelines, replay or changes). */
  engine: Engine | null;
  /** Overrides the config's server.host / server.port. */
  host?: string;
  port?: number;
  /** Structured request logs (pino, through Fastify): false (default) for none. */
  logger?: boolean | { level: string };
  /** Longest a `POST /v1/sql` query may run (default 5000 ms). */
  sqlTimeoutMs?: number;
  /** Bytes of request bodies being ingested at once before new requests get 429 (default 256 MiB). */
  ingestInFlightBytesMax?: number;
  /** Where a 500's error is written when `logger` is off (default: stderr). */
  errorLog?: (line: string) => void;
}

/** What a route needs: a fixed scope, one computed from the request (a topic's), or null for an open route. */
type Scope = string | ((req: FastifyRequest) => string) | null;

/** A route and the scope it needs (`:topic` stands for the topic in the path); null: open. */
export interface RouteScope {
  method: string;
  url: string;
  scope: string | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route with its scope, for the auth test's completeness check. */
    kappaRoutes: RouteScope[];
  }
  interface FastifyContextConfig {
    scope?: Scope;
    /** The route answers `Accept: text/event-stream` with an event stream, so it takes ?access_token=. */
    eventStream?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
    /** A JSON body's bytes (for idempotency digests). */
    rawBody: Buffer | null;
  }
}

/** JSON bodies are parsed whole, so they are capped lower than streamed NDJSON. */
const JSON_BODY_MAX = 32 * 1024 * 1024;
/** Bytes past JSON_BODY_MAX read (and dropped) so the client gets its 413; past them the connection is cut. */
const TOO_LARGE_DRAIN_BYTES = 16 * 1024 * 1024;
/**
 * Longest path segment (Fastify's maxParamLength, 100 by default): a topic name may have 249
 * characters (src/log/names.ts, Kafka's rule), three times that if a client percent-encodes each.
 */
const PATH_PARAM_CHARS_MAX = 3 * 249;
/** `server.bodyLimitBytes` when the config leaves it out (docs/http.md gives it; a test checks). */
export const BODY_LIMIT_BYTES_DEFAULT = 1024 * 1024 * 1024;
const RECORDS_READ_MAX = 10_000;
const SQL_TIMEOUT_MS_DEFAULT = 5000;
const SSE_HEARTBEAT_MS = 15_000;
const OVERVIEW_INTERVAL_MS = 1000;
/** Bytes queued for a slow SSE client before its stream of pushed events is cut (it reconnects with Last-Event-ID). */
const SSE_BUFFER_MAX = 8 * 1024 * 1024;

/** The dashboard's files: its own (src/dashboard) and uPlot's, read once. */
const DASHBOARD_ASSETS: Record<string, { file: string; type: string }> = {
  'dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  'uplot.js': { file: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};
const files = new Map<string, Buffer>();
function dashboardFile(name: string): Buffer {
  let f = files.get(name);
  if (f === undefined) {
    const path = name.startsWith('uplot/') ? createRequire(import.meta.url).resolve(name) : fileURLToPath(new URL(`../dashboard/${name}`, import.meta.url));
    files.set(name, (f = readFileSync(path)));
  }
  return f;
}
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

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
    throw new KappaError('KAPPA_INVALID_ARGUMENT', count === 1 ? 'The Host header is not a host name or address with an optional port.' : 'The request has more than one Host header.', { host: host.slice(0, 100) });
  }
  return (m[1] ?? m[2]).toLowerCase();
}

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
    if (code === 'EADDRINUSE') throw new KappaError('KAPPA_INVALID_ARGUMENT', `Port ${port} on ${host} is in use (another kappa start?). Pick another with --port, or --port 0 for any free one.`, { host, port }, err);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new KappaError('KAPPA_INVALID_ARGUMENT', `Cannot listen on ${host}: this machine has no such address.`, { host }, err);
    throw err;
  }
  const address = fastify.server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return { url: `http://${shown}:${bound}`, fastify, close: () => fastify.close() };
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { log, store, control, app, engine } = opts;
  const tokens = app.server.tokens ?? [];
  checkTokens(tokens);
  const bodyLimit = app.server.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT;
  const metrics = new Metrics(log, store, control, engine);
  const ingestor = new Ingestor({
    log,
    app,
    inFlightBytesMax: opts.ingestInFlightBytesMax,
    onAppended: (topic, records, bytes, seconds) => {
      metrics.ingestRecords.inc({ topic }, records);
      metrics.ingestBytes.inc({ topic }, bytes);
      metrics.appendSeconds.observe({ topic }, seconds);
    },
  });
  const jsonLimit = Math.min(bodyLimit, JSON_BODY_MAX);
  const fastify = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: jsonLimit,
    // Closing is refused in onRequest instead, with the catalogue's 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: PATH_PARAM_CHARS_MAX },
    frameworkErrors: (err, _req, reply) => void sendError(reply, asKappaError(err)),
    clientErrorHandler: answerClientError,
  });
  /** A server error, logged where someone will see it: the request log when there is one, else stderr. */
  const logError = (err: unknown): void => {
    if (opts.logger) fastify.log.error(err);
    else (opts.errorLog ?? ((line) => process.stderr.write(`${line}\n`)))(`kappa: HTTP server error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  };
  const hub = engine === null ? null : new ChangeHub(engine, store, logError);
  /** Live streams end when the server closes, so close() does not wait for them. */
  const streams = new Set<() => void>();
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
    for (const end of streams) end();
  });
  // Answers sent while closing end their connection, so close() does not wait out keep-alive.
  fastify.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  fastify.addHook('onClose', async () => {
    hub?.close();
    metrics.close(log, engine);
  });

  fastify.decorateRequest('principal', null);
  fastify.decorateRequest('rawBody', null);
  const routes: RouteScope[] = [];
  fastify.decorate('kappaRoutes', routes);
  fastify.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    if (scope === undefined) throw new Error(`route ${route.method} ${route.url} declares no scope; every route must say who may call it (config.scope, null for an open route)`);
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, scope: typeof scope === 'function' ? scope({ params: { topic: ':topic' } } as unknown as FastifyRequest) : scope });
    }
  });

  // Bodies: JSON (checked as UTF-8) and NDJSON (a stream, read by the ingestion route).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', (req, payload, done) => {
    readJsonBody(req, payload, jsonLimit, (err, body) => {
      if (err !== null) return done(err, undefined);
      req.rawBody = body!;
      try {
        done(null, parseJsonBody(body!, req.routeOptions.url === '/v1/topics/:topic/records' ? 'KAPPA_INVALID_RECORD' : 'KAPPA_INVALID_ARGUMENT'));
      } catch (e) {
        done(e as Error, undefined);
      }
    });
  });
  fastify.addContentTypeParser('application/x-ndjson', (_req, payload, done) => done(null, payload));

  // Callback hooks: no promise per request on the hot path.
  fastify.addHook('onRequest', (req, _reply, done) => {
    try {
      authorize(req);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
  const authorize = (req: FastifyRequest): void => {
    if (closing) throw new KappaError('KAPPA_NOT_READY', 'The server is shutting down; send the request again once it is back.', {});
    const host = hostName(req);
    // Without tokens the server is open to this machine only; a browser page from elsewhere whose
    // name resolves to 127.0.0.1 (DNS rebinding) still sends its own Host, and is refused here.
    if (tokens.length === 0 && (host === null || !LOOPBACK.has(host))) {
      throw new KappaError('KAPPA_FORBIDDEN', 'Without tokens in the config this server answers only requests addressed to 127.0.0.1, ::1 or localhost.', { host: String(req.headers.host ?? '').slice(0, 100) });
    }
    const scope = req.routeOptions.config?.scope;
    if (scope === null || scope === undefined || tokens.length === 0) return;
    const needed = typeof scope === 'function' ? scope(req) : scope;
    const header = req.headers.authorization;
    let token = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7).trim() : null;
    // Browsers cannot send headers with EventSource: event streams also take ?access_token= (RFC 6750).
    // Only they: a token in the URL of any other request would be a token in logs for no reason.
    if (token === null && req.routeOptions.config?.eventStream === true && req.method === 'GET' && wantsEventStream(req)) {
      token = (req.query as { access_token?: unknown }).access_token?.toString() ?? null;
    }
    if (token === null || token === '') throw new KappaError('KAPPA_UNAUTHENTICATED', 'This route needs a token: send the header `Authorization: Bearer <token>` (event streams may pass ?access_token=<token> instead).', { scope: needed });
    const principal = authenticate(tokens, token);
    if (principal === null) throw new KappaError('KAPPA_UNAUTHENTICATED', 'The bearer token is not one the server knows.', { scope: needed });
    if (!hasScope(principal, needed)) throw new KappaError('KAPPA_FORBIDDEN', `Token "${principal.name}" does not have the scope "${needed}" this route needs.`, { scope: needed, token: principal.name });
    req.principal = principal;
  };

  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unknown';
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.httpSeconds.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    done();
  });

  fastify.setNotFoundHandler((req, reply) => {
    void sendError(reply, new KappaError('KAPPA_NOT_FOUND', `There is no route ${req.method} ${req.url.split('?')[0]}.`, { method: req.method }));
  });
  fastify.setErrorHandler((err, _req, reply) => {
    const e = asKappaError(err);
    if (e.status >= 500 && e.code !== 'KAPPA_DISK_FULL' && e.code !== 'KAPPA_NOT_READY') logError(err);
    return sendError(reply, e);
  });

  // ---- health ----------------------------------------------------------------------------------
  fastify.get('/healthz', { config: { scope: null } }, async () => ({ status: 'ok' }));
  fastify.get('/readyz', { config: { scope: null } }, async () => {
    if (engine !== null && !engine.caughtUp) throw new KappaError('KAPPA_NOT_READY', 'The live views are still catching up with the log.', {});
    return { status: 'ready' };
  });
  fastify.get('/metrics', { config: { scope: 'admin' } }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // ---- topics ----------------------------------------------------------------------------------
  const topicScope =
    (action: 'produce' | 'consume') =>
    (req: FastifyRequest): string =>
      `${action}:${(req.params as { topic: string }).topic}`;

  fastify.post('/v1/topics/:topic/records', { config: { scope: topicScope('produce') } }, async (req, reply) => {
    const { topic } = req.params as { topic: string };
    ingestor.checkTopic(topic);
    const type = contentType(req);
    const key = headerValue(req, 'idempotency-key');
    const declared = Number(req.headers['content-length'] ?? 0) || 0;
    let result;
    if (type === 'application/x-ndjson') {
      const body = req.body as Readable;
      result = await ingestor.admit(topic, declared, key, () => digestOfStream(body), () => {
        if (key === null) return { result: ingestor.ingestNdjson(topic, body, bodyLimit), digest: Promise.resolve('') };
        const digest = new BodyDigest();
        const r = ingestor.ingestNdjson(topic, body, bodyLimit, { key, digest: () => digest.value() }, digest);
        return { result: r, digest: r.then(() => digest.value()) };
      });
    } else {
      const digest = key === null ? '' : digestOf(req.rawBody ?? JSON.stringify(req.body) ?? ''); // only retries compare it
      result = await ingestor.admit(topic, declared, key, async () => digest, () => ({ result: ingestor.ingestJson(topic, req.body, key === null ? null : { key, digest: () => digest }), digest: Promise.resolve(digest) }));
    }
    reply.code(result.deadLettered.length > 0 ? 207 : 200).type('application/json; charset=utf-8');
    // Small answers in one string; large ones streamed in chunks.
    return result.acks.index.length <= 4096 ? [...ackJson(topic, result)].join('') : Readable.from(ackJson(topic, result));
  });

  fastify.get('/v1/topics', { config: { scope: 'query' } }, async () => {
    const out = [];
    for (const t of await log.topics()) out.push(await describeTopic(log, t.name));
    return { topics: out };
  });
  fastify.get('/v1/topics/:topic', { config: { scope: topicScope('consume') } }, async (req) => describeTopic(log, (req.params as { topic: string }).topic));

  fastify.get('/v1/topics/:topic/records', { config: { scope: topicScope('consume'), eventStream: true } }, async (req, reply) => {
    const { topic } = req.params as { topic: string };
    const q = req.query as Record<string, string | undefined>;
    const info = await log.topic(topic);
    const partition = wholeNumber(q.partition ?? '0', 'partition', 0);
    if (partition >= info.partitions) throw new KappaError('KAPPA_INVALID_PARTITION', `Topic "${topic}" has partitions 0-${info.partitions - 1}; there is no partition ${partition}.`, { topic, partition });
    const limit = Math.min(wholeNumber(q.limit ?? '100', 'limit', 1), RECORDS_READ_MAX);
    const resumeAfter = headerValue(req, 'last-event-id');
    const from = wantsEventStream(req) && resumeAfter !== null && /^\d+$/.test(resumeAfter) ? Number(resumeAfter) + 1 : await startOffset(log, topic, partition, q.from ?? 'earliest');
    if (wantsEventStream(req)) return tailRecords(req, reply, topic, partition, Math.max(from, (await log.offsets(topic, partition)).start));
    const records = [];
    let next = from;
    for await (const batch of log.read(topic, partition, from)) {
      for (const r of batch.records(from)) {
        if (records.length === limit) break;
        records.push(recordJson(topic, partition, r));
        next = r.offset + 1;
      }
      if (records.length === limit) break;
    }
    return { topic, partition, records, next };
  });

  /** SSE: records of one partition from `from` on, as they are appended, until the client goes. */
  async function tailRecords(req: FastifyRequest, reply: FastifyReply, topic: string, partition: number, from: number): Promise<void> {
    const abort = new AbortController();
    const stream = openEventStream(req, reply, () => abort.abort());
    try {
      for await (const batch of log.read(topic, partition, from, { follow: true, signal: abort.signal })) {
        let keepingUp = true;
        for (const r of batch.records(from)) keepingUp = stream.send({ id: String(r.offset), event: 'record', data: JSON.stringify(recordJson(topic, partition, r)) }) && keepingUp;
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
   * An SSE response. `send` returns false once the client is not keeping up (the socket's buffer
   * is full): a producer that can wait (a topic tail) awaits `drained()`; pushed events (view
   * changes) are instead dropped with the connection once SSE_BUFFER_MAX is queued, and the client
   * reconnects with Last-Event-ID.
   */
  function openEventStream(req: FastifyRequest, reply: FastifyReply, onEnd: () => void): { send(e: ChangeEvent): boolean; drained(): Promise<void>; end(): void; ended(): boolean } {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': kappa\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      streams.delete(end);
      onEnd();
      res.end();
      res.emit('drain'); // wakes a producer waiting in drained()
    };
    streams.add(end);
    req.raw.on('close', end);
    if (req.raw.destroyed || res.destroyed) end(); // the client left while the route was getting ready
    return {
      send(e) {
        if (ended) return false;
        const ok = res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${e.data}\n\n`);
        if (!ok && res.writableLength > SSE_BUFFER_MAX) end();
        return ok;
      },
      drained: () => (ended ? Promise.resolve() : new Promise<void>((resolve) => res.once('drain', () => resolve()))),
      end,
      ended: () => ended,
    };
  }

  // ---- views -----------------------------------------------------------------------------------
  fastify.get('/v1/views', { config: { scope: 'query' } }, async () => {
    const versions = await store.versions();
    const builds = await control.builds();
    const names = [...new Set(versions.map((v) => v.name))].sort();
    const keyColumns = new Map<string, string[]>();
    for (const v of versions) if (v.state === 'live') keyColumns.set(v.name, ((await store.definition(v.name, v.version))?.keyColumns ?? []).map((c) => c.name));
    return {
      views: names.map((name) => ({
        name,
        live: versions.find((v) => v.name === name && v.state === 'live')?.version ?? null,
        keyColumns: keyColumns.get(name) ?? [],
        versions: versions.filter((v) => v.name === name).map((v) => ({ version: v.version, state: v.state, rows: v.rows, fingerprint: v.fingerprint, createdAtMs: v.createdAtMs, liveAtMs: v.liveAtMs })),
        builds: builds.filter((b) => b.name === name),
      })),
    };
  });

  fastify.get('/v1/views/:view', { config: { scope: 'query' } }, async (req) => {
    const { view } = req.params as { view: string };
    const columns = await viewColumns(store, view);
    const q = req.query as Record<string, string | string[] | undefined>;
    const where: string[] = [];
    const params: unknown[] = [];
    let order = '';
    let limit = 100;
    let offset = 0;
    for (const [name, raw] of Object.entries(q)) {
      const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
      if (value === undefined) continue;
      if (name === 'limit') limit = Math.min(wholeNumber(value, 'limit', 1), 10_000);
      else if (name === 'offset') offset = wholeNumber(value, 'offset', 0);
      else if (name === 'order') {
        const desc = value.startsWith('-');
        const col = desc ? value.slice(1) : value;
        if (!columns.has(col)) throw unknownColumn(view, col, columns);
        order = ` ORDER BY "${col}" ${desc ? 'DESC' : 'ASC'}`;
      } else {
        const type = columns.get(name);
        if (type === undefined) throw unknownColumn(view, name, columns);
        where.push(`"${name}" IS ?`);
        params.push(typedValue(name, value, type));
      }
    }
    const sql = `SELECT * FROM "${view}"${where.length ? ` WHERE ${where.join(' AND ')}` : ''}${order} LIMIT ${limit} OFFSET ${offset}`;
    const result = await store.query(sql, params);
    return { view, rows: result.rows, limit, offset };
  });

  fastify.get('/v1/views/:view/changes', { config: { scope: 'query', eventStream: true } }, async (req, reply) => {
    const { view } = req.params as { view: string };
    await viewColumns(store, view); // 404 for an unknown view
    if (hub === null) throw new KappaError('KAPPA_NOT_READY', 'No pipelines run in this server, so views do not change.', {});
    const last = headerValue(req, 'last-event-id');
    let unsubscribe = (): void => {};
    const stream = openEventStream(req, reply, () => unsubscribe());
    unsubscribe = hub.subscribe(view, last, (e) => void stream.send(e));
    if (stream.ended()) unsubscribe();
  });

  fastify.post('/v1/sql', { config: { scope: 'query' } }, async (req) => {
    const body = req.body as { sql?: unknown; params?: unknown } | undefined;
    if (body === null || typeof body !== 'object' || typeof body.sql !== 'string') throw new KappaError('KAPPA_INVALID_ARGUMENT', 'Send a JSON body { "sql": "SELECT …", "params": [ … ] }.', {});
    const params = body.params ?? [];
    if (!Array.isArray(params)) throw new KappaError('KAPPA_INVALID_ARGUMENT', '"params" must be an array of values for the ? placeholders.', {});
    const result = await store.query(body.sql, params, { timeoutMs: opts.sqlTimeoutMs ?? SQL_TIMEOUT_MS_DEFAULT });
    return { columns: result.columns, rows: result.rows };
  });

  // ---- dashboard -------------------------------------------------------------------------------
  fastify.get('/', { config: { scope: null } }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(dashboardFile('index.html')));
  fastify.get('/assets/:file', { config: { scope: null } }, async (req, reply) => {
    const asset = DASHBOARD_ASSETS[(req.params as { file: string }).file];
    if (asset === undefined) throw new KappaError('KAPPA_NOT_FOUND', 'No such dashboard file.', {});
    return reply.type(asset.type).header('cache-control', 'no-cache').send(dashboardFile(asset.file));
  });

  /** Topics, tasks, views and builds in one answer: what the dashboard's overview shows. */
  async function overview(): Promise<object> {
    const topics = [];
    for (const t of await log.topics()) {
      let records = 0;
      let bytes = 0;
      const ends: number[] = [];
      for (let p = 0; p < t.partitions; p++) {
        const o = await log.offsets(t.name, p);
        records += o.end - o.start;
        ends.push(o.end);
        bytes += await log.sizeBytes(t.name, p);
      }
      topics.push({ name: t.name, partitions: t.partitions, records, ends, bytes });
    }
    const now = Date.now();
    const tasks = [];
    for (const t of engine?.status() ?? []) {
      const { end } = await log.offsets(t.topic, t.partition);
      tasks.push({ view: t.view, version: t.version, kind: t.kind, topic: t.topic, partition: t.partition, offset: t.committedOffset, lag: Math.max(0, end - t.committedOffset), eventsProcessed: t.eventsProcessed, watermarkMs: t.watermarkMs, checkpointAgeSeconds: t.lastFlushAtMs > 0 ? (now - t.lastFlushAtMs) / 1000 : null, building: t.building });
    }
    const alertTopics = [...new Set(app.outputs.filter((o) => o.fromStart).map((o) => o.target.name))];
    return { atMs: now, topics, tasks, alertTopics, versions: await store.versions(), builds: await control.builds() };
  }
  fastify.get('/v1/overview', { config: { scope: 'query' } }, async () => overview());
  fastify.get('/v1/overview/stream', { config: { scope: 'query', eventStream: true } }, async (req, reply) => {
    let seq = 0;
    let timer: NodeJS.Timeout | undefined;
    const stream = openEventStream(req, reply, () => clearTimeout(timer));
    // One overview at a time: the next is scheduled once this one is sent.
    const tick = async (): Promise<void> => {
      try {
        stream.send({ id: String(++seq), event: 'overview', data: JSON.stringify(await overview()) });
      } catch (err) {
        logError(err);
        stream.end();
      }
      if (!stream.ended()) timer = setTimeout(() => void tick(), OVERVIEW_INTERVAL_MS);
    };
    await tick();
  });

  // ---- pipelines and builds ----------------------------------------------------------------------
  /** Each task's events processed, sampled at most once a second, for its events/s. */
  const samples = new Map<string, { events: number; atMs: number; rate: number | null }>();
  fastify.get('/v1/pipelines', { config: { scope: 'query' } }, async () => {
    const now = Date.now();
    const tasks = [];
    for (const t of engine?.status() ?? []) {
      const { end } = await log.offsets(t.topic, t.partition);
      const id = `${t.view}/${t.version}/${t.topic}/${t.partition}`;
      const last = samples.get(id);
      if (last === undefined) samples.set(id, { events: t.eventsProcessed, atMs: now, rate: null });
      else if (now - last.atMs >= 1000) samples.set(id, { events: t.eventsProcessed, atMs: now, rate: ((t.eventsProcessed - last.events) * 1000) / (now - last.atMs) });
      tasks.push({
        ...t,
        lag: Math.max(0, end - t.committedOffset),
        logEndOffset: end,
        eventsPerSecond: samples.get(id)!.rate,
        checkpointAgeSeconds: t.lastFlushAtMs > 0 ? (now - t.lastFlushAtMs) / 1000 : null,
      });
    }
    return { tasks, builds: await control.builds() };
  });

  const needEngine = (): Engine => {
    if (engine === null) throw new KappaError('KAPPA_NOT_READY', 'No pipelines run in this server.', {});
    return engine;
  };
  fastify.post('/v1/views/:view/replay', { config: { scope: 'admin' } }, async (req, reply) => {
    const { view } = req.params as { view: string };
    const body = (req.body ?? {}) as { from?: unknown };
    const from = body.from === undefined ? 'earliest' : String(body.from);
    if (from !== 'earliest') parseFrom(from);
    const r = await needEngine().replay(view, from);
    reply.code(202);
    return { view, version: r.version, message: r.message };
  });
  fastify.post('/v1/views/:view/rollback', { config: { scope: 'admin' } }, async (req, reply) => {
    const { view } = req.params as { view: string };
    const r = await needEngine().rollback(view);
    reply.code(202);
    return { view, version: r.version, message: r.message };
  });
  fastify.post('/v1/views/:view/cancel', { config: { scope: 'admin' } }, async (req) => {
    const { view } = req.params as { view: string };
    const r = await needEngine().cancel(view);
    return { view, version: r.version, message: r.message };
  });

  await fastify.ready();
  return fastify;
}

// ---- helpers -------------------------------------------------------------------------------------

/** Bytes of a topic's segment files on disk. */
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
    for (let j = i; j < Math.min(index.length, i + CHUNK); j++) s += `${j === 0 ? '' : ','}{"index":${index[j]},"partition":${partition[j]},"offset":${offset[j]}}`;
    yield s;
  }
  yield ']';
  if (r.deadLettered.length > 0) yield `,"deadLettered":${JSON.stringify(r.deadLettered.map((d) => ({ ...d, topic: `${topic}.dlq` })))}`;
  yield '}';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a JSON body whole, up to `limit` bytes. A larger one is refused with 413 only once the rest
 * is read (and dropped), up to TOO_LARGE_DRAIN_BYTES more: a server that answers and closes while
 * the client is still sending resets the connection, and the client never sees the answer.
 */
function readJsonBody(req: FastifyRequest, payload: Readable, limit: number, done: (err: Error | null, body?: Buffer) => void): void {
  const tooLarge = (): KappaError =>
    new KappaError('KAPPA_BODY_TOO_LARGE', `The request body is larger than the server accepts (JSON bodies up to ${limit} bytes; send more records as application/x-ndjson). Nothing was appended.`, { limitBytes: limit });
  if (Number(req.headers['content-length']) > limit + TOO_LARGE_DRAIN_BYTES) return done(tooLarge());
  const chunks: Buffer[] = [];
  let bytes = 0;
  let settled = false;
  const finish = (err: Error | null, body?: Buffer): void => {
    if (settled) return;
    settled = true;
    payload.off('data', onData);
    done(err, body);
  };
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (bytes <= limit) chunks.push(chunk);
    else if (chunks.length > 0) chunks.length = 0; // past the limit: dropped, only counted
    if (bytes > limit + TOO_LARGE_DRAIN_BYTES) {
      finish(tooLarge());
      payload.destroy();
    }
  };
  payload.on('data', onData);
  payload.on('error', (err) => finish(new KappaError('KAPPA_INVALID_ARGUMENT', `The request body could not be read: ${err.message}`, {}, err)));
  payload.on('end', () => finish(bytes > limit ? tooLarge() : null, bytes > limit ? undefined : Buffer.concat(chunks, bytes)));
  // Closed before its end: the client went away mid-body.
  payload.on('close', () => finish(new KappaError('KAPPA_INVALID_ARGUMENT', 'The request body ended before its Content-Length.', {})));
}

function parseJsonBody(body: Buffer, code: 'KAPPA_INVALID_RECORD' | 'KAPPA_INVALID_ARGUMENT'): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch (err) {
    throw new KappaError(code, 'The request body is not valid UTF-8.', {}, err);
  }
  if (text.trim() === '') throw new KappaError(code, 'The request body is empty; send a JSON object or an array of them.', {});
  // Deeper values would overflow the stack of the code that walks them (a 500, or worse).
  if (body.length > JSON_DEPTH_MAX && jsonTooDeep(body, JSON_DEPTH_MAX)) {
    throw new KappaError(code, `The request body nests arrays and objects more than ${JSON_DEPTH_MAX} deep, more than the server accepts.`, { depthMax: JSON_DEPTH_MAX });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new KappaError(code, `The request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`, {}, err);
  }
}

function contentType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

function headerValue(req: FastifyRequest, name: string): string | null {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s !== '' ? s : null;
}

function wantsEventStream(req: FastifyRequest): boolean {
  return String(req.headers.accept ?? '').includes('text/event-stream');
}

function wholeNumber(value: string, name: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new KappaError('KAPPA_INVALID_ARGUMENT', `${name} must be a whole number of at least ${min}, not "${value.slice(0, 50)}".`, { [name]: value.slice(0, 50) });
  return n;
}

async function startOffset(log: Log, topic: string, partition: number, from: string): Promise<number> {
  const { start, end } = await log.offsets(topic, partition);
  if (from === 'earliest') return start;
  if (from === 'latest') return end;
  if (from.startsWith('@')) return log.offsetForTime(topic, partition, parseFrom(from));
  const offset = wholeNumber(from, 'from', 0);
  if (offset < start || offset > end) throw new KappaError('KAPPA_OFFSET_OUT_OF_RANGE', `Partition ${partition} of topic "${topic}" holds offsets ${start} to ${end - 1}; ${offset} is outside.`, { start, end, offset });
  return offset;
}

async function describeTopic(log: Log, name: string): Promise<object> {
  const info = await log.topic(name);
  const partitions = [];
  for (let p = 0; p < info.partitions; p++) partitions.push({ partition: p, ...(await log.offsets(name, p)) });
  return { ...info, partitions, records: partitions.reduce((s, p) => s + (p.end - p.start), 0) };
}

function recordJson(topic: string, partition: number, r: { offset: number; timestamp: number; key: Buffer | null; value: Buffer | null; headers: { key: string; value: Buffer | null }[] }): object {
  const text = r.value === null ? null : r.value.toString('utf8');
  let value: unknown = text;
  if (text !== null) {
    try {
      value = JSON.parse(text);
    } catch {
      // not JSON: the text as it is
    }
  }
  return {
    topic,
    partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : r.key.toString('utf8'),
    value,
    headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value === null ? null : h.value.toString('utf8')])),
  };
}

/** The public view's columns and their SQLite types; 404 when no version of the view is live. */
async function viewColumns(store: ViewStore, view: string): Promise<Map<string, string>> {
  const live = (await store.versions()).find((v) => v.name === view && v.state === 'live');
  if (live === undefined) throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${view}" (or it has no rows yet). GET /v1/views lists the views.`, { view });
  const def = (await store.definition(view, live.version))!;
  const columns = new Map<string, string>();
  for (const c of def.keyColumns) columns.set(c.name, c.type);
  const outputs = await store.query(`SELECT name, type FROM pragma_table_info(?)`, [view]);
  for (const r of outputs.rows as { name: string; type: string }[]) if (!columns.has(r.name)) columns.set(r.name, r.type || 'ANY');
  return columns;
}

function unknownColumn(view: string, name: string, columns: Map<string, string>): KappaError {
  return new KappaError('KAPPA_INVALID_ARGUMENT', `View "${view}" has no column "${name.slice(0, 100)}". Its columns: ${[...columns.keys()].join(', ')}. (limit, offset and order are the other parameters.)`, {
    view,
    column: name.slice(0, 100),
  });
}

/** A query-string filter value as the column's type: numbers for INTEGER/REAL columns, `null` for NULL. */
function typedValue(name: string, value: string, type: string): unknown {
  if (value === 'null') return null;
  const t = type.toUpperCase();
  if (t === 'INTEGER' || t === 'REAL') {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (t === 'INTEGER' && !Number.isSafeInteger(n))) {
      throw new KappaError('KAPPA_INVALID_ARGUMENT', `Column "${name}" holds ${t === 'INTEGER' ? 'whole numbers' : 'numbers'}; "${value.slice(0, 50)}" is not one.`, { column: name });
    }
    return n;
  }
  return value;
}

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
function asKappaError(err: unknown): KappaError {
  if (err instanceof KappaError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new KappaError('KAPPA_BODY_TOO_LARGE', `The request body is larger than the server accepts (JSON bodies up to ${JSON_BODY_MAX} bytes; send more records as application/x-ndjson). Nothing was appended.`, {}, err);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new KappaError('KAPPA_UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json (an object or an array of records) or application/x-ndjson (one record per line).', {}, err);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new KappaError('KAPPA_INVALID_RECORD', 'The request body is empty; send a JSON object or an array of them.', {}, err);
    case 'FST_ERR_BAD_URL':
      return new KappaError('KAPPA_INVALID_ARGUMENT', 'The URL is not valid: a % must be followed by two hexadecimal digits that encode UTF-8.', {}, err);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new KappaError('KAPPA_URI_TOO_LONG', `A part of the URL path is longer than the ${PATH_PARAM_CHARS_MAX} characters the server accepts (topic names have at most 249).`, { charsMax: PATH_PARAM_CHARS_MAX }, err);
  }
  const status = e.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = CODE_OF_STATUS[status] ?? 'KAPPA_INVALID_ARGUMENT';
    return new KappaError(code, `The request was refused: ${(e.message ?? String(err)).slice(0, 300)}`, { ...(status in CODE_OF_STATUS ? {} : { status }), ...(e.code ? { fastifyCode: e.code } : {}) }, err);
  }
  if (status === 503) return new KappaError('KAPPA_NOT_READY', 'The server cannot take the request now; retry shortly.', {}, err);
  return new KappaError('KAPPA_INTERNAL', 'The server failed to answer; the error is in its log.', {}, err);
}

/**
 * Node's answer to a request it cannot parse (Fastify's clientErrorHandler): bad HTTP, headers too
 * large, a request that took too long to arrive. Written straight to the socket, since no request
 * object exists, then the connection is ended.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection, or one that already answered: nothing can be said.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable || (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy(err);
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new KappaError('KAPPA_HEADERS_TOO_LARGE', 'The request line and headers are larger than the 16 KiB the server reads; send shorter headers (or a shorter URL).', {})
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new KappaError('KAPPA_REQUEST_TIMEOUT', 'The request took too long to arrive; the server stopped waiting for it.', {})
        : new KappaError('KAPPA_INVALID_ARGUMENT', `The request is not valid HTTP/1.1 (${err.code ?? 'parse error'}).`, {});
  const body = JSON.stringify(e.toJSON());
  socket.end(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function sendError(reply: FastifyReply, e: KappaError): FastifyReply {
  const retryAfter = e.code === 'KAPPA_OVERLOADED' ? 1 : e.code === 'KAPPA_DISK_FULL' ? 30 : e.code === 'KAPPA_NOT_READY' ? 1 : null;
  if (retryAfter !== null) reply.header('retry-after', String(retryAfter));
  if (e.code === 'KAPPA_BODY_TOO_LARGE' || e.code === 'KAPPA_UNSUPPORTED_MEDIA_TYPE') reply.header('connection', 'close');
  return reply.code(e.status).send(e.toJSON());
}
