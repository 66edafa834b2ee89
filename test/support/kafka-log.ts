/**
 * Harnesses of the Log contract for KafkaLog (test/contract/kafka-log-*.test.ts):
 *
 *   listenerHarness()   a FileLog in a temp dir behind Kappa's Kafka listener (in process, port 0),
 *                       and a KafkaLog on it; reopen closes the KafkaLog and opens another on the
 *                       same listener
 *   mockHarness()       librdkafka's mock cluster (python3-confluent-kafka; librdkafka's C API through
 *                       ctypes, because the mock offers no CreateTopics: the harness makes topics with
 *                       rd_kafka_mock_topic_create), one per test, and a KafkaLog on it
 *
 * Each harness says, through the contract's capability flags, which promises its cluster keeps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafkaListener } from '../../src/kafka/index.ts';
import { type Log, openFileLog, openLog } from '../../src/log/index.ts';
import type { TopicConfig } from '../../src/log/index.ts';
import type { LogHarness } from '../contract/log.contract.ts';
import { PYTHON } from './kafka-clients.ts';
import { spawnOwned } from './processes.ts';

const quiet = { info(): void {}, warn(): void {} };

function openKafka(bootstrap: string): Promise<Log> {
  return openLog({ kind: 'kafka', brokers: [bootstrap], clientId: 'kappa-contract' });
}

/** KafkaLog on Kappa's own listener over a fresh FileLog. */
export async function listenerHarness(): Promise<LogHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-kafka-log-'));
  const fileLog = await openFileLog({ dir, logger: quiet });
  const listener = await startKafkaListener({ log: fileLog, port: 0, logger: quiet });
  let current = await openKafka(listener.address);
  return {
    get log() {
      return current;
    },
    async reopen() {
      await current.close();
      current = await openKafka(listener.address);
      return current;
    },
    async cleanup() {
      await current.close();
      await listener.close();
      await fileLog.close();
      rmSync(dir, { recursive: true, force: true });
    },
    capabilities: { retention: 'cluster' },
  };
}

/**
 * The mock cluster's process: prints {"bootstrap": ...}, then for each line {"topic", "partitions"}
 * on stdin creates the topic and prints {"created": topic, "error": code}.
 */
const MOCK_SCRIPT = `
import ctypes, json, sys
import confluent_kafka
lib = ctypes.CDLL("librdkafka.so.1")
vp, cp = ctypes.c_void_p, ctypes.c_char_p
lib.rd_kafka_conf_new.restype = vp
lib.rd_kafka_conf_set.argtypes = [vp, cp, cp, cp, ctypes.c_size_t]
lib.rd_kafka_new.restype = vp
lib.rd_kafka_new.argtypes = [ctypes.c_int, vp, cp, ctypes.c_size_t]
lib.rd_kafka_mock_cluster_new.restype = vp
lib.rd_kafka_mock_cluster_new.argtypes = [vp, ctypes.c_int]
lib.rd_kafka_mock_cluster_bootstraps.restype = cp
lib.rd_kafka_mock_cluster_bootstraps.argtypes = [vp]
lib.rd_kafka_mock_topic_create.argtypes = [vp, cp, ctypes.c_int, ctypes.c_int]
err = ctypes.create_string_buffer(512)
conf = lib.rd_kafka_conf_new()
lib.rd_kafka_conf_set(conf, b"log_level", b"0", err, 512)
rk = lib.rd_kafka_new(1, conf, err, 512)
mc = lib.rd_kafka_mock_cluster_new(rk, 1)
print(json.dumps({"bootstrap": lib.rd_kafka_mock_cluster_bootstraps(mc).decode()}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    code = lib.rd_kafka_mock_topic_create(mc, cmd["topic"].encode(), cmd["partitions"], 1)
    print(json.dumps({"created": cmd["topic"], "error": code}), flush=True)
`;

/** KafkaLog on a fresh librdkafka mock cluster (needs python3-confluent-kafka: check it first). */
export async function mockHarness(): Promise<LogHarness> {
  const cleanups: (() => unknown)[] = [];
  const owner = { after: (fn: () => unknown) => void cleanups.push(fn) };
  const child = spawnOwned(owner, PYTHON, ['-c', MOCK_SCRIPT], { stdin: 'pipe' });
  const [, bootstrap] = await child.waitForOutput(/"bootstrap": "([^"]+)"/, { timeoutMs: 20_000, stream: 'stdout' });
  let current = await openKafka(bootstrap!);
  let created = 0;
  return {
    get log() {
      return current;
    },
    async reopen() {
      await current.close();
      current = await openKafka(bootstrap!);
      return current;
    },
    async cleanup() {
      await current.close();
      for (const fn of cleanups.reverse()) await fn();
    },
    async createTopic(name: string, config: TopicConfig) {
      child.child.stdin!.write(JSON.stringify({ topic: name, partitions: config.partitions }) + '\n');
      created++;
      const pattern = new RegExp(`("created": "[^"]+", "error": -?\\d+\\}\\s*){${created}}$`);
      await child.waitForOutput(pattern, { timeoutMs: 10_000, stream: 'stdout' });
      // As after a CreateTopics: done once the cluster's metadata shows it (which the log then knows).
      await current.topic(name);
    },
    capabilities: {
      retention: 'cluster',
      idempotence: 'none',
      timeLookup: 'none',
      topicAdmin: 'external',
    },
  };
}
