/**
 * The Kafka listener of `kappa start` and `kappa demo`: Kafka's wire protocol over the process's
 * own log, tokens and metrics (src/kafka). On by default on port 9092; `--kafka-port` moves it
 * (0 picks a free port), `--no-kafka` or the config's `server.kafka: false` turns it off.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KappaError } from '../errors.ts';
import { GroupCoordinator, type GroupLag, type KafkaListener, groupLag, startKafkaListener } from '../kafka/index.ts';
import { type Log, stderrLogger } from '../log/index.ts';
import type { KappaServer } from '../server/index.ts';
import type { AppDef, KafkaConfig } from '../stream/index.ts';
import type { ConsumerOffsetStore } from '../view/index.ts';
import { KAFKA_PORT_DEFAULT } from './defaults.ts';
import type { CliContext } from './main.ts';

export interface KafkaFlags {
  /** `--kafka-port`; undefined: the config's server.kafka.port, or 9092. */
  kafkaPort?: number;
  /** False: `--no-kafka`. */
  kafka?: boolean;
  /** `--host`: the Kafka listener follows the HTTP API's address unless server.kafka.host says otherwise. */
  host?: string;
}

/** The running listener and its consumer-group coordinator (for lag). */
export type RunningKafka = KafkaListener & { groups: GroupCoordinator };

/**
 * The consumer-group coordinator over the store's committed offsets, made before the HTTP server so
 * GET /v1/pipelines, the dashboard and /metrics can show the groups (`lag`); `close` ends its
 * timers and parked requests.
 */
export function kafkaGroups(
  log: Log,
  store: { consumerOffsets: ConsumerOffsetStore },
): { groups: GroupCoordinator; lag: () => Promise<GroupLag[]> } {
  const groups = new GroupCoordinator({
    offsets: store.consumerOffsets,
    logger: stderrLogger,
    // Commits to a topic or partition the log does not have are refused (UNKNOWN_TOPIC_OR_PARTITION).
    partitionCount: async (topic) => (await log.topics()).find((t) => t.name === topic)?.partitions ?? null,
  });
  return { groups, lag: () => groupLag(groups, log) };
}

/** Starts the listener, or returns null when it is turned off (or its default port is taken). */
export async function startKafka(
  ctx: CliContext,
  running: { log: Log; groups: GroupCoordinator; app: AppDef; server: KappaServer | null; configPath: string },
  flags: KafkaFlags,
): Promise<RunningKafka | null> {
  const { app } = running;
  if (flags.kafka === false || app.server.kafka === false) return null;
  const config: KafkaConfig = app.server.kafka ?? {};
  const explicitPort = flags.kafkaPort ?? config.port;
  const host = config.host ?? flags.host ?? app.server.host ?? '127.0.0.1';
  const { groups } = running;
  try {
    const listener = await startKafkaListener({
      log: running.log,
      groups,
      tokens: app.server.tokens ?? [],
      tls: config.tls === undefined ? null : readTls(config.tls, dirname(running.configPath)),
      host,
      port: explicitPort ?? KAFKA_PORT_DEFAULT,
      advertisedHost: config.advertisedHost,
      logger: stderrLogger,
      registry: running.server?.fastify.kappa.metrics.registry,
      topicInUse: (name) => topicReaders(app, name),
      topics: app.topics,
    });
    return { ...listener, groups };
  } catch (err) {
    // The default port may belong to a real Kafka broker, or to a second Kappa on this machine:
    // the pipelines and the HTTP API still run, and the warning says how to get a listener. A port
    // asked for explicitly is an error (the listener's message says what to do).
    if (explicitPort === undefined && addressInUse(err)) {
      ctx.stderr.write(
        `kappa: warning: the Kafka listener did not start: port ${KAFKA_PORT_DEFAULT} on ${host} is in use (another Kafka broker or Kappa?). ` +
          'Pick another with --kafka-port <port> (0 picks a free one), or turn it off with --no-kafka.\n',
      );
      return null;
    }
    throw err;
  }
}

function addressInUse(err: unknown): boolean {
  const code = (e: unknown): unknown => (e as NodeJS.ErrnoException | undefined)?.code;
  return code(err) === 'EADDRINUSE' || code((err as Error).cause) === 'EADDRINUSE';
}

/** "view x reads it", for DeleteTopics: the running config's pipelines keep reading a topic. */
function topicReaders(app: AppDef, topic: string): string | null {
  const views = app.views.filter((v) => v.aggregation.stream.source.name === topic).map((v) => `view ${v.name}`);
  const outputs = app.outputs.filter((o) => o.stream.source.name === topic).map((o) => `output ${o.name}`);
  const readers = [...views, ...outputs];
  return readers.length === 0
    ? null
    : `${readers.join(', ')} of the running config read${readers.length === 1 ? 's' : ''} it`;
}

function readTls(tls: { cert: string; key: string }, base: string): { cert: Buffer; key: Buffer } {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(resolve(base, path));
    } catch (err) {
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `server.kafka.tls.${what} names ${path}, which cannot be read (${(err as Error).message}). Give the path of a PEM file, relative to the config.`,
        { path },
        err,
      );
    }
  };
  return { cert: read('cert', tls.cert), key: read('key', tls.key) };
}

/** The line `kappa start` prints once the listener runs (tests wait for "Kafka API on host:port"). */
export function kafkaLine(listener: KafkaListener, app: AppDef): string {
  const tokens = (app.server.tokens ?? []).length;
  const auth =
    tokens === 0
      ? 'no tokens configured: open to this machine only'
      : 'SASL/PLAIN: user = a token name, password = the token';
  return `kappa: Kafka API on ${listener.address} (${auth}); try: kcat -b ${listener.address} -L\n`;
}
