/**
 * The Kafka listener `kappa start` runs beside its HTTP API: a TCP (or TLS) server speaking the
 * Kafka protocol over the process's own log, tokens and metrics. One broker, node id 0, leader of
 * every partition.
 *
 * Auth follows the HTTP API's rule: without tokens it listens only on a loopback address and every
 * request is allowed; with tokens a client must pass SASL/PLAIN (user = token name, password =
 * token) before anything but ApiVersions and the SASL requests, and each request is checked
 * against the token's scopes (produce:<topic>, consume:<topic>, admin).
 */
import { createHash } from 'node:crypto';
import { type Server, type Socket, createServer as createTcpServer, isIP } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Registry } from 'prom-client';
import { KappaError } from '../../errors.ts';
import type { Log, Logger } from '../../log/index.ts';
import { checkTokens } from '../../server/index.ts';
import type { TokenConfig, TopicDef } from '../../stream/index.ts';
import { type CloseReason, type ConnectionLimits, KafkaConnection } from './connection.ts';
import { ANONYMOUS, type GroupsPort, type Handler, type ListenerDeps, type Session } from './context.ts';
import { Dispatcher } from './dispatch.ts';
import { MemoryPool } from './frames.ts';
import { allHandlers } from './handlers/index.ts';
import { KafkaMetrics } from './metrics.ts';
import { type ProducerIdAllocator, randomProducerIds } from './producer-ids.ts';
import { SchemaIdChecks } from './schema-ids.ts';

export interface KafkaLimits extends ConnectionLimits {
  /** Connections open at once; more are closed as soon as they open. */
  connectionsMax: number;
  /** Bytes of request frames held by all connections together (Kafka's queued.max.request.bytes). */
  requestBytesMax: number;
  /** Largest Fetch answer, whatever a client asks for (Kafka's fetch.max.bytes). */
  fetchBytesMax: number;
}

export const KAFKA_LIMITS_DEFAULT: KafkaLimits = {
  frameBytesMax: 100 * 1024 * 1024,
  frameMs: 60_000,
  inFlightMax: 32,
  writeBufferBytesMax: 8 * 1024 * 1024,
  idleMs: 10 * 60_000,
  connectionsMax: 1000,
  requestBytesMax: 256 * 1024 * 1024,
  fetchBytesMax: 55 * 1024 * 1024,
};

export interface KafkaListenerOptions {
  log: Log;
  /** The consumer-group coordinator; without it the group APIs are not offered. */
  groups?: GroupsPort | null;
  /** The config's server.tokens; none: loopback only, no SASL. */
  tokens?: readonly TokenConfig[];
  /** Serve TLS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer } | null;
  /** Default 127.0.0.1; any other address needs tokens. */
  host?: string;
  /** Default 9092; 0 picks a free port. */
  port?: number;
  /** What Metadata tells clients to connect to (default: the address and port each client reached). */
  advertisedHost?: string;
  advertisedPort?: number;
  logger: Logger;
  /** Where the kappa_kafka_* metrics go (the HTTP server's registry); default a private one. */
  registry?: Registry;
  limits?: Partial<KafkaLimits>;
  /** Let Metadata requests that ask for it create missing topics with this many partitions (default: off). */
  autoCreateTopics?: { partitions: number } | null;
  producerIds?: ProducerIdAllocator;
  /**
   * The config's topics: produced records of those whose format checks schema ids (the default)
   * must be Confluent-framed and name a schema id of the topic's type in the log's registry.
   */
  topics?: readonly Pick<TopicDef<unknown>, 'name' | 'format'>[];
  /** Why DeleteTopics must not delete a topic (the running pipelines use it), or null. Default: any topic may go. */
  topicInUse?: (name: string) => string | null;
}

export interface KafkaListener {
  /** The bound port. */
  port: number;
  /** `host:port` as clients would write it in bootstrap.servers. */
  address: string;
  metrics: KafkaMetrics;
  /** Stops accepting, lets requests in flight finish (appends are acknowledged), closes every connection. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const SHUTDOWN_GRACE_MS = 5000;

export async function startKafkaListener(opts: KafkaListenerOptions): Promise<KafkaListener> {
  const tokens = opts.tokens ?? [];
  checkTokens(tokens);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 9092;
  if (tokens.length === 0 && !LOOPBACK.has(host))
    throw new KappaError(
      'KAPPA_CONFIG_INVALID',
      `The Kafka listener would listen on ${host} without any token, so anyone who can reach it could write and read every topic. Add tokens to the config's server.tokens (\`kappa token <name> --scopes …\` makes one; Kafka clients then log in with SASL/PLAIN, the token's name as user and the token as password), or listen on 127.0.0.1.`,
      { host },
    );
  const limits: KafkaLimits = { ...KAFKA_LIMITS_DEFAULT, ...opts.limits };
  const connections = new Set<KafkaConnection>();
  const metrics = opts.registry
    ? new KafkaMetrics(opts.registry, () => connections.size)
    : KafkaMetrics.private(() => connections.size);
  const pool = new MemoryPool(Math.max(limits.requestBytesMax, limits.frameBytesMax));
  const deps = makeDeps(opts, tokens, metrics, limits);
  const handlers = allHandlers(deps.groups !== null);
  deps.advertised = advertisedVersions(handlers);
  const dispatcher = new Dispatcher(deps, handlers);

  const onClosed = (conn: KafkaConnection, reason: CloseReason): void => {
    if (connections.delete(conn)) metrics.connectionsClosed.inc({ reason });
  };
  const accept = (socket: Socket): void => {
    if (connections.size >= limits.connectionsMax) {
      metrics.connectionsRefused.inc({ reason: 'too-many' });
      socket.destroy();
      return;
    }
    metrics.connectionsOpened.inc();
    const session: Session = {
      principal: tokens.length === 0 ? ANONYMOUS : null,
      saslMechanism: null,
      rawSaslNext: false,
      localAddress: unmapped(socket.localAddress ?? host),
      localPort: socket.localPort ?? port,
      remoteAddress: unmapped(socket.remoteAddress ?? ''),
    };
    const onError = (err: unknown): void => deps.logOnce('a Kafka connection (it was closed)', err);
    connections.add(new KafkaConnection(socket, session, dispatcher, pool, metrics, limits, onClosed, onError));
  };
  const server: Server = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, accept)
    : createTcpServer(accept);
  // A TLS handshake that fails is the client's problem; the listener carries on.
  server.on('tlsClientError', () => {});
  const bound = await listen(server, host, port);
  if (opts.advertisedPort === undefined) deps.advertisedPort = bound;
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return {
    port: bound,
    address: `${shown}:${bound}`,
    metrics,
    close: () => closeAll(server, connections),
  };
}

function makeDeps(
  opts: KafkaListenerOptions,
  tokens: readonly TokenConfig[],
  metrics: KafkaMetrics,
  limits: KafkaLimits,
): ListenerDeps {
  const logged = new Set<string>();
  return {
    log: opts.log,
    groups: opts.groups ?? null,
    tokens,
    logger: opts.logger,
    metrics,
    producerIds: opts.producerIds ?? randomProducerIds(),
    advertisedHost: opts.advertisedHost ?? null,
    advertisedPort: opts.advertisedPort ?? opts.port ?? 9092,
    clusterId: clusterIdOf(opts.log),
    autoCreateTopics: opts.autoCreateTopics ?? null,
    fetchBytesMax: limits.fetchBytesMax,
    topicInUse: opts.topicInUse ?? (() => null),
    schemaIds: SchemaIdChecks.of(opts.log, opts.topics ?? []),
    advertised: [],
    logOnce(what, err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      const key = `${what}: ${err instanceof Error ? err.message : message}`;
      if (logged.has(key)) return;
      if (logged.size < 1000) logged.add(key);
      opts.logger.warn(`Kafka listener: ${what} failed unexpectedly (each distinct error is logged once): ${message}`);
    },
  };
}

/** A stable cluster id per data directory: 22 URL-safe base64 characters, as Kafka's are. */
function clusterIdOf(log: Log): string {
  return createHash('sha256').update(JSON.stringify(log.descriptor)).digest('base64url').slice(0, 22);
}

function advertisedVersions(handlers: readonly Handler[]): ListenerDeps['advertised'] {
  return [...handlers]
    .sort((a, b) => a.key - b.key)
    .map((h) => ({ apiKey: h.key, minVersion: h.minVersion, maxVersion: h.maxVersion }));
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) as the IPv4 address clients know. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.close();
      if (err.code === 'EADDRINUSE')
        reject(
          new KappaError(
            'KAPPA_INVALID_ARGUMENT',
            `Port ${port} on ${host} is in use (a Kafka broker, or another kappa start?), so the Kafka listener cannot start. Pick another with --kafka-port, --kafka-port 0 for any free one, or turn it off with --no-kafka.`,
            { host, port },
            err,
          ),
        );
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND')
        reject(
          new KappaError(
            'KAPPA_INVALID_ARGUMENT',
            `Cannot listen on ${host}: this machine has no such address.`,
            {
              host,
            },
            err,
          ),
        );
      else reject(err);
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

async function closeAll(server: Server, connections: Set<KafkaConnection>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const graceful = Promise.all([...connections].map((c) => c.shutdown()));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
  });
  await Promise.race([graceful, timeout]);
  clearTimeout(timer);
  for (const c of [...connections]) c.destroy();
  await closed;
}
