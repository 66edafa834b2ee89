/**
 * The two Python clients, driven through confluent.py and kafka_python.py with Debian's
 * /usr/bin/python3 (the python3 on PATH may be another one, without Debian's modules).
 */
import { fileURLToPath } from 'node:url';
import type { Owner } from '../cleanup.ts';
import { runCommand } from '../processes.ts';
import { startJsonMember } from './member.ts';
import type { Ack, Codec, ConsumeOptions, ConsumedRecord, KafkaClient, KafkaRecord, ProduceOptions } from './types.ts';

/** Debian's Python, which has python3-confluent-kafka and python3-kafka. */
export const PYTHON = '/usr/bin/python3';

const SCRIPTS = {
  confluent: fileURLToPath(new URL('./confluent.py', import.meta.url)),
  kafkaPython: fileURLToPath(new URL('./kafka_python.py', import.meta.url)),
};

/** Runs `script command spec` to its end and parses the JSON lines it printed. */
export async function runPythonScript(
  script: string,
  command: string,
  spec: object,
  timeoutMs: number,
  t?: Owner,
): Promise<Record<string, unknown>[]> {
  const run = await runCommand(PYTHON, [script, command, JSON.stringify(spec)], { timeoutMs, t });
  if (run.code !== 0)
    throw new Error(`${script} ${command} exited with ${run.code ?? run.signal}:\n${run.stderr.slice(-4_000)}`);
  return run.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface PythonFlavour {
  name: string;
  script: string;
  codecs: readonly Codec[];
  /** Producer settings for the options (the two libraries name them differently). */
  producerConfig(opts: ProduceOptions): Record<string, unknown>;
}

function pythonClient(f: PythonFlavour): KafkaClient {
  return {
    name: f.name,
    codecs: f.codecs,
    setsTimestamps: true,
    perRecordHeaders: true,
    commitDelayMs: 0,
    rebalanceSettleMs: 0,
    async produce(t, bootstrap, topic, records: KafkaRecord[], opts: ProduceOptions = {}): Promise<Ack[]> {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const spec = { bootstrap, topic, records, config: f.producerConfig(opts), timeoutMs };
      const lines = await runPythonScript(f.script, 'produce', spec, timeoutMs + 15_000, t);
      const acks = lines.find((l) => 'acks' in l);
      if (!acks) throw new Error(`${f.name} produce printed no acks: ${JSON.stringify(lines)}`);
      return acks.acks as Ack[];
    },
    async consume(t, bootstrap, topic, opts: ConsumeOptions): Promise<ConsumedRecord[]> {
      const spec = { bootstrap, topic, ...opts };
      const lines = await runPythonScript(f.script, 'consume', spec, opts.timeoutMs + 15_000, t);
      return lines.filter((l) => 'record' in l).map((l) => l.record as ConsumedRecord);
    },
    startMember(t, bootstrap, topic, group, name, settings = {}) {
      const spec = { bootstrap, topic, group, config: settings };
      return startJsonMember(t, name, PYTHON, [f.script, 'member', JSON.stringify(spec)]);
    },
    async committed(t, bootstrap, topic, group, partitions) {
      const lines = await runPythonScript(f.script, 'committed', { bootstrap, topic, group, partitions }, 30_000, t);
      const found = lines.find((l) => 'committed' in l)?.committed as Record<string, number> | undefined;
      if (!found) throw new Error(`${f.name} committed printed nothing: ${JSON.stringify(lines)}`);
      return new Map(Object.entries(found).map(([p, o]) => [Number(p), o]));
    },
  };
}

/**
 * python3-confluent-kafka (librdkafka 2.0.2). Its producer is told `partitioner=murmur2_random`
 * (confluent.py): librdkafka's default, consistent_random, hashes keys with CRC32, not Kafka's murmur2.
 */
export const confluentKafka: KafkaClient = pythonClient({
  name: 'confluent-kafka',
  script: SCRIPTS.confluent,
  codecs: ['gzip', 'snappy', 'lz4', 'zstd'],
  producerConfig: (opts) => ({
    ...(opts.compression ? { 'compression.type': opts.compression } : {}),
    ...(opts.idempotent ? { 'enable.idempotence': true, acks: 'all' } : {}),
    'linger.ms': 5,
  }),
});

/**
 * python3-kafka (kafka-python 2.0.2). Its default partitioner is murmur2. It compresses with gzip out
 * of the box; snappy, lz4 and zstd need Python modules Debian's package does not pull in.
 */
export const kafkaPython: KafkaClient = pythonClient({
  name: 'kafka-python',
  script: SCRIPTS.kafkaPython,
  codecs: ['gzip'],
  producerConfig: (opts) => ({
    ...(opts.compression ? { compression_type: opts.compression } : {}),
    ...(opts.idempotent ? { acks: 'all' } : {}),
    linger_ms: 5,
  }),
});

export const CONFLUENT_SCRIPT = SCRIPTS.confluent;
