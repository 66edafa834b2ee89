/**
 * Independent Kafka clients for Kappa's Kafka compatibility suites (test/kafka), and the Kafka
 * brokers they talk to: a `kappa start` with its Kafka listener, or librdkafka's built-in mock cluster.
 *
 *   KCAT, PYTHON3_CONFLUENT_KAFKA, PYTHON3_KAFKA   DebianPackages for requireDebianPackage (debian.ts)
 *   PYTHON                                         /usr/bin/python3: Debian's, which has those modules
 *   kcat, confluentKafka, kafkaPython, kafkajsClient, platformaticKafka
 *                                                  KafkaClient drivers (kafka-clients/types.ts): produce,
 *                                                  consume without a group, group members in child
 *                                                  processes, committed offsets
 *   startKappaWithKafka(t, opts?)                  `kappa start --port 0 --kafka-port 0` on a temp data dir
 *                                                  with the given topics: { url, bootstrap, child, restart() }
 *   startMockKafka(t)                              librdkafka's mock cluster (via python3-confluent-kafka),
 *                                                  alive while the test runs: { bootstrap }; it creates a
 *                                                  topic on first use with MOCK_PARTITIONS partitions
 *   kcatMetadata(t, bootstrap, topic?)             `kcat -L -J`, parsed
 *   scenario helpers (kafka-clients/scenario.ts)   keyedRecords, checkConsumed, produceAndConsume,
 *                                                  groupScenario, restartScenario, compressionScenario,
 *                                                  readThroughHttp (Kappa's own reader)
 *
 * Partitioners: every driver produces with Kafka's murmur2 (librdkafka: partitioner=murmur2_random;
 * @platformatic/kafka: compatibilityPartitioner), so checkConsumed can hold each key to the partition
 * Kappa's src/log/partitioner.ts picks.
 *
 * Every process goes through processes.ts, so it dies with the test that started it.
 */
import type { Owner } from './cleanup.ts';
import type { DebianPackage } from './debian.ts';
import { type OwnedChild, spawnOwned, startKappa } from './processes.ts';
import { KAPPA_SRC, tempDataProject } from './project.ts';
import { CONFLUENT_SCRIPT, PYTHON } from './kafka-clients/python.ts';

export { PYTHON, confluentKafka, kafkaPython, runPythonScript } from './kafka-clients/python.ts';
export { kcat, kcatMetadata, type KcatMetadata } from './kafka-clients/kcat.ts';
export { kafkajsClient, platformaticKafka } from './kafka-clients/node-clients.ts';
export * from './kafka-clients/scenario.ts';
export type * from './kafka-clients/types.ts';

const SUITE = 'the Kafka compatibility suite';

export const KCAT: DebianPackage = { package: 'kcat', path: '/usr/bin/kcat', suite: `${SUITE} (kcat)` };
export const PYTHON3_CONFLUENT_KAFKA: DebianPackage = {
  package: 'python3-confluent-kafka',
  path: '/usr/lib/python3/dist-packages/confluent_kafka/__init__.py',
  suite: `${SUITE} (confluent-kafka)`,
};
export const PYTHON3_KAFKA: DebianPackage = {
  package: 'python3-kafka',
  path: '/usr/lib/python3/dist-packages/kafka/__init__.py',
  suite: `${SUITE} (kafka-python)`,
};

const START_TIMEOUT_MS = 60_000;

export interface TopicSpec {
  name: string;
  partitions: number;
}

export interface KappaWithKafkaOptions {
  /** Topics the config declares (default: none). */
  topics?: TopicSpec[];
  /** More `kappa start` arguments. */
  args?: string[];
}

export interface KappaWithKafka {
  /** The HTTP API's base URL. */
  url: string;
  /** `host:port` of the Kafka listener, for bootstrap.servers. */
  bootstrap: string;
  child: OwnedChild;
  dir: string;
  config: string;
  /** Stops this `kappa start` (SIGTERM, or `signal`) and starts another on the same data dir and config. */
  restart(signal?: NodeJS.Signals): Promise<KappaWithKafka>;
}

/** A config that declares `topics` (no schema: Kafka clients write any bytes) and no pipelines. */
export function kafkaTopicsConfig(topics: TopicSpec[]): string {
  const defs = topics.map((tp) => `topic(${JSON.stringify(tp.name)}, { partitions: ${tp.partitions} })`);
  return `import { defineApp, topic } from ${JSON.stringify(KAPPA_SRC)};\nexport default defineApp({ topics: [${defs.join(', ')}] });\n`;
}

/** `kappa start --port 0 --kafka-port 0` on a fresh data dir; see KappaWithKafka. */
export async function startKappaWithKafka(t: Owner, opts: KappaWithKafkaOptions = {}): Promise<KappaWithKafka> {
  const project = tempDataProject(t, 'kappa-kafka-', kafkaTopicsConfig(opts.topics ?? []));
  return launch(t, project.dir, project.config, opts.args ?? []);
}

async function launch(t: Owner, dir: string, config: string, args: string[]): Promise<KappaWithKafka> {
  const child = startKappa(t, [
    '--data-dir',
    dir,
    '--config',
    config,
    'start',
    '--port',
    '0',
    '--kafka-port',
    '0',
    '--workers',
    '0',
    ...args,
  ]);
  const [, url] = await child.waitForOutput(/HTTP API on (\S+)/, { timeoutMs: START_TIMEOUT_MS });
  const [, host, port] = await child.waitForOutput(/Kafka API on (\S+):(\d+)/, { timeoutMs: START_TIMEOUT_MS });
  return {
    url: url!,
    bootstrap: `${host}:${port}`,
    child,
    dir,
    config,
    async restart(signal: NodeJS.Signals = 'SIGTERM') {
      const exit = await child.stop({ signal });
      if (signal === 'SIGTERM' && exit.code !== 0)
        throw new Error(
          `kappa start did not stop cleanly (${exit.code ?? exit.signal}):\n${child.stderr.slice(-4_000)}`,
        );
      return launch(t, dir, config, args);
    },
  };
}

/** Partitions of a topic the mock cluster creates on first use (librdkafka's default). */
export const MOCK_PARTITIONS = 4;

export interface MockKafka {
  bootstrap: string;
  child: OwnedChild;
}

/**
 * librdkafka's mock cluster (`test.mock.num.brokers`), in a python3-confluent-kafka process owned
 * by `t`. It is an implementation of the Kafka protocol Kappa did not write: the suites' harness and
 * the differential run check themselves against it.
 */
export async function startMockKafka(t: Owner, brokers = 1): Promise<MockKafka> {
  const child = spawnOwned(t, PYTHON, [CONFLUENT_SCRIPT, 'mock', JSON.stringify({ brokers })], { stdin: 'pipe' });
  const [, bootstrap] = await child.waitForOutput(/"bootstrap": "([^"]+)"/, { timeoutMs: 20_000, stream: 'stdout' });
  return { bootstrap: bootstrap!, child };
}
