/**
 * Debian's kcat (librdkafka) as a Kafka client: -P to produce, -C to consume, -G for a group member,
 * each with -X settings. kcat's producer is told `partitioner=murmur2_random`: librdkafka's default,
 * consistent_random, hashes keys with CRC32, not Kafka's murmur2. It cannot set a record's timestamp,
 * and its -H headers go on every record, so its records carry one header list and the client's clock.
 *
 * A kcat group member (-G) commits automatically, every 5 s (kcat's -X auto.commit.interval.ms does
 * not shorten it), rather than per record, and prints rebalances on stderr:
 * `% Group g rebalanced (memberid …): assigned: t [0], t [2]` (or, with cooperative-sticky,
 * `… incremental assignment of 2 partition(s) (…): t [0], t [2]`). The scenarios wait for a kcat group to
 * be quiet for longer than that before they go on (commitDelayMs), so what it printed is committed.
 */
import type { Owner } from '../cleanup.ts';
import { runCommand, spawnOwned } from '../processes.ts';
import { type MemberEvent, ProcessMember } from './member.ts';
import { kafkajsCommitted } from './node-clients.ts';
import type { Ack, ConsumeOptions, ConsumedRecord, KafkaClient, KafkaRecord, ProduceOptions } from './types.ts';

export const KCAT_PATH = '/usr/bin/kcat';
const KEY_DELIMITER = '\t';

/** kcat's -J envelope. */
interface KcatJson {
  partition: number;
  offset: number;
  ts: number;
  key: string | null;
  payload: string | null;
  headers?: string[];
}

function fromKcatJson(j: KcatJson): ConsumedRecord {
  const headers: [string, string | null][] = [];
  for (let i = 0; i + 1 < (j.headers ?? []).length; i += 2) headers.push([j.headers![i]!, j.headers![i + 1] ?? null]);
  return { partition: j.partition, offset: j.offset, key: j.key, value: j.payload, headers, timestamp: j.ts };
}

function settings(x: Record<string, string | number | boolean>): string[] {
  return Object.entries(x).flatMap(([k, v]) => ['-X', `${k}=${v}`]);
}

/** One rebalance line of kcat's stderr as a member event; null for any other line. */
export function kcatRebalance(line: string): MemberEvent | null {
  // Eager: `rebalanced (memberid …): assigned: t [0], t [2]`; cooperative:
  // `rebalanced: incremental assignment of 2 partition(s) (memberid …, COOPERATIVE rebalance protocol): t [0], t [2]`.
  const m =
    /rebalanced \(memberid [^)]*\): (assigned|revoked): (.*)$/.exec(line) ??
    /rebalanced: incremental (assignment|revoke) of \d+ partition\(s\) \([^)]*\): (.*)$/.exec(line);
  if (!m) return null;
  const partitions = [...m[2]!.matchAll(/\[(\d+)\]/g)].map((p) => Number(p[1]));
  return { event: m[1] === 'assigned' || m[1] === 'assignment' ? 'assigned' : 'revoked', partitions };
}

export const kcat: KafkaClient = {
  name: 'kcat',
  codecs: ['gzip', 'snappy', 'lz4', 'zstd'],
  setsTimestamps: false,
  perRecordHeaders: false,
  commitDelayMs: 5_000,
  rebalanceSettleMs: 0,
  async produce(t, bootstrap, topic, records: KafkaRecord[], opts: ProduceOptions = {}): Promise<Ack[]> {
    const headers = records[0]?.headers ?? [];
    const input = records.map((r) => `${r.key ?? ''}${KEY_DELIMITER}${r.value}\n`).join('');
    const args = [
      '-b',
      bootstrap,
      '-P',
      '-t',
      topic,
      '-K',
      KEY_DELIMITER,
      ...headers.flatMap(([k, v]) => ['-H', `${k}=${v}`]),
      ...settings({
        partitioner: 'murmur2_random',
        'linger.ms': 5,
        ...(opts.compression ? { 'compression.codec': opts.compression } : {}),
        ...(opts.idempotent ? { 'enable.idempotence': true, acks: 'all' } : {}),
      }),
    ];
    const run = await runCommand(KCAT_PATH, args, { input, timeoutMs: opts.timeoutMs ?? 60_000, t });
    const error = run.code === 0 ? null : `kcat -P exited with ${run.code ?? run.signal}: ${run.stderr.slice(-2_000)}`;
    return records.map(() => ({ error }));
  },
  async consume(t, bootstrap, topic, opts: ConsumeOptions): Promise<ConsumedRecord[]> {
    // Without -p kcat reads every partition, which is what the scenarios list in opts.partitions.
    const args = ['-b', bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-J', '-c', String(opts.count)];
    const run = await runCommand(KCAT_PATH, args, { timeoutMs: opts.timeoutMs, t });
    if (run.code !== 0) throw new Error(`kcat -C exited with ${run.code ?? run.signal}: ${run.stderr.slice(-2_000)}`);
    return run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => fromKcatJson(JSON.parse(l) as KcatJson));
  },
  startMember(t: Owner, bootstrap, topic, group, name, extra = {}) {
    const args = [
      '-b',
      bootstrap,
      '-G',
      group,
      '-J',
      '-u',
      ...settings({
        'auto.offset.reset': 'earliest',
        'session.timeout.ms': 6000,
        'heartbeat.interval.ms': 500,
        ...extra,
      }),
      topic,
    ];
    const child = spawnOwned(t, KCAT_PATH, args);
    // kcat leaves the group and commits on SIGINT.
    const member = new ProcessMember(name, child, () => child.kill('SIGINT'), { stdout: kcatRecordLine });
    let buffered = '';
    child.child.stderr!.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const event = kcatRebalance(line);
        if (event) member.apply(event);
      }
    });
    return member;
  },
  committed: kafkajsCommitted,
};

function kcatRecordLine(line: string): MemberEvent | null {
  if (!line.startsWith('{')) return null;
  return { event: 'record', record: fromKcatJson(JSON.parse(line) as KcatJson) };
}

/** What `kcat -L -J` prints: the cluster's brokers and each topic's partitions with their leader. */
export interface KcatMetadata {
  brokers: { id: number; name: string }[];
  topics: { topic: string; error?: string; partitions: { partition: number; leader: number; error?: string }[] }[];
}

/** `kcat -L -J`: the metadata a librdkafka client gets from `bootstrap` (one topic, or all). */
export async function kcatMetadata(t: Owner, bootstrap: string, topic?: string): Promise<KcatMetadata> {
  const args = ['-b', bootstrap, '-L', '-J', ...(topic === undefined ? [] : ['-t', topic])];
  const run = await runCommand(KCAT_PATH, args, { timeoutMs: 30_000, t });
  if (run.code !== 0) throw new Error(`kcat -L exited with ${run.code ?? run.signal}: ${run.stderr.slice(-2_000)}`);
  return JSON.parse(run.stdout) as KcatMetadata;
}
