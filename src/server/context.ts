/**
 * What the server's plugins share, and the one way they reach it: `fastify.kappa`, decorated once
 * by buildServer (server.ts) before any plugin loads. A route plugin reads the log, the stores,
 * the engine and the server's own collaborators (ingestor, change hub, metrics, live streams) from
 * there, never from a closure, so each plugin can be registered and tested on its own.
 *
 * Also here: the typed additions to Fastify's interfaces (route `config.scope`, the request's
 * principal and raw body), and `shared`, which does what the fastify-plugin package does (that
 * package is not installed): a plugin marked with it adds its hooks, handlers and parsers to the
 * instance that registers it instead of to an encapsulated child.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { KappaError } from '../errors.ts';
import type { GroupLag } from '../kafka/index.ts';
import { CODECS, type FormatCodec, type SchemaType } from '../formats/index.ts';
import type { Log } from '../log/index.ts';
import { Registry } from '../registry/index.ts';
import { type AppDef, type Engine, FormattedValues, type TokenConfig, type TopicFormat } from '../stream/index.ts';
import type { ControlStore, ViewStore } from '../view/index.ts';
import type { Principal } from './auth.ts';
import { ChangeHub } from './changes.ts';
import { Ingestor } from './ingest.ts';
import { JSON_BODY_MAX } from './bodies.ts';
import { Metrics } from './metrics.ts';
import { TopicCodecs } from './record-formats.ts';
import { EventStreams } from './sse.ts';

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
  /**
   * The Kafka consumer groups and their lag (`kappa start`: the listener's coordinator, or the
   * store's committed offsets without it), for GET /v1/pipelines, the overview and /metrics.
   * Default: none.
   */
  consumerGroups?: ConsumerGroups;
  /** The schema registry served under /schemas (registry/): its codecs and largest schema (default 1 MiB). */
  schemaRegistry?: SchemaRegistryOptions;
}

export interface SchemaRegistryOptions {
  /** The codec of each schema type the registry accepts (default: Avro, Protobuf and JSON Schema). */
  codecs?: Partial<Record<SchemaType, FormatCodec>>;
  schemaBytesMax?: number;
}

/** Asks for the Kafka consumer groups with their committed offsets and lag, per partition. */
export type ConsumerGroups = () => Promise<GroupLag[]>;

/** `server.bodyLimitBytes` when the config leaves it out (docs/http.md gives it; a test checks). */
export const BODY_LIMIT_BYTES_DEFAULT = 1024 * 1024 * 1024;
const SQL_TIMEOUT_MS_DEFAULT = 5000;

/** Everything the plugins share, as `fastify.kappa`. */
export interface Kappa {
  log: Log;
  store: ViewStore;
  control: ControlStore;
  app: AppDef;
  /** Null when the server runs no pipelines. */
  engine: Engine | null;
  /** Null without an engine: views do not change. */
  hub: ChangeHub | null;
  metrics: Metrics;
  ingestor: Ingestor;
  /** Values of topics with a format, decoded for reads and event streams (record-json.ts). */
  values: FormattedValues;
  /** Every open event stream, ended when the server closes. */
  streams: EventStreams;
  /** The Kafka consumer groups and their lag ([] when the server was given none). */
  consumerGroups: ConsumerGroups;
  /** The configured tokens (checked); none: every route open, loopback only. */
  tokens: readonly TokenConfig[];
  /** Largest body ingested (NDJSON); JSON bodies are held whole, so they stop at `jsonBodyBytesMax`. */
  bodyBytesMax: number;
  jsonBodyBytesMax: number;
  sqlTimeoutMs: number;
  /**
   * The schema registry on this server's log, opened on first use (it reads the `_schemas` topic
   * whole, which a server that never serves a registry request need not do). A failed open is tried
   * again on the next request.
   */
  registry(): Promise<Registry>;
  /** The registry's largest schema text, in bytes. */
  schemaBytesMax: number | undefined;
  /** A server error, logged where someone will see it: the request log when there is one, else stderr. */
  logError(err: unknown): void;
}

/** What a route needs: a fixed scope, one computed from the request (a topic's), or null for an open route. */
export type Scope = string | ((req: FastifyRequest) => string) | null;

/** A route and the scope it needs (`:topic` stands for the topic in the path); null: open. */
export interface RouteScope {
  method: string;
  url: string;
  scope: string | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    kappa: Kappa;
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
    /** `routeOptions` as read once by the onRequest hook (Fastify builds a new object at every read). */
    route: FastifyRequest['routeOptions'] | null;
    /** A JSON body's bytes (for idempotency digests). */
    rawBody: Buffer | null;
  }
}

/** The largest body ingested (`server.bodyLimitBytes`), and the largest JSON body (held whole, so capped lower). */
export function bodyLimits(app: AppDef): { bodyBytesMax: number; jsonBodyBytesMax: number } {
  const bodyBytesMax = app.server.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT;
  return { bodyBytesMax, jsonBodyBytesMax: Math.min(bodyBytesMax, JSON_BODY_MAX) };
}

/** The shared objects for a server built from `opts`; `fastify` is the instance they serve (its logger). */
export function createKappa(opts: ServerOptions, fastify: FastifyInstance): Kappa {
  const { log, store, control, app, engine } = opts;
  const consumerGroups = opts.consumerGroups ?? (async () => []);
  const errorLog = opts.errorLog ?? ((line: string) => process.stderr.write(`${line}\n`));
  const registry = lazyRegistry(log, opts.schemaRegistry ?? {}, errorLog);
  const metrics = new Metrics(log, store, control, engine, consumerGroups);
  const ingestor = new Ingestor({
    log,
    app,
    inFlightBytesMax: opts.ingestInFlightBytesMax,
    codecs: new TopicCodecs(engine, registry),
    onAppended: (topic, records, bytes, seconds) => metrics.appended(topic, records, bytes, seconds),
  });
  const logError = (err: unknown): void => {
    if (opts.logger) fastify.log.error(err);
    else errorLog(`kappa: HTTP server error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  };
  return {
    log,
    store,
    control,
    app,
    engine,
    hub: engine === null ? null : new ChangeHub(engine, store, logError),
    metrics,
    ingestor,
    values: new FormattedValues(log, formatsOf(app)),
    streams: new EventStreams(),
    consumerGroups,
    tokens: app.server.tokens ?? [],
    ...bodyLimits(app),
    sqlTimeoutMs: opts.sqlTimeoutMs ?? SQL_TIMEOUT_MS_DEFAULT,
    registry,
    schemaBytesMax: opts.schemaRegistry?.schemaBytesMax,
    logError,
  };
}

/** The format of each topic that declares one, by topic name. */
function formatsOf(app: AppDef): Map<string, TopicFormat> {
  const out = new Map<string, TopicFormat>();
  for (const t of app.topics) if (t.format !== null) out.set(t.name, t.format);
  return out;
}

function lazyRegistry(log: Log, opts: SchemaRegistryOptions, warn: (line: string) => void): () => Promise<Registry> {
  let opening: Promise<Registry> | null = null;
  return () =>
    (opening ??= Registry.open({
      log,
      codecs: opts.codecs ?? CODECS,
      schemaBytesMax: opts.schemaBytesMax,
      logger: { warn: (m) => warn(`kappa: ${m}`) },
    }).catch((err: unknown) => {
      opening = null;
      throw err;
    }));
}

/** The engine, or 503 when the server runs no pipelines. */
export function needEngine(kappa: Kappa): Engine {
  if (kappa.engine === null) throw new KappaError('KAPPA_NOT_READY', 'No pipelines run in this server.', {});
  return kappa.engine;
}

/**
 * Marks a plugin as not encapsulated (fastify-plugin's `skip-override`): its hooks, error and
 * not-found handlers and body parsers apply to the instance that registers it, so to every route.
 */
export function shared(name: string, plugin: FastifyPluginAsync): FastifyPluginAsync {
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: name });
}
