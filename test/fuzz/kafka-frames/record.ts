/**
 * Re-records test/fuzz/kafka-frames/frames.json, the real client requests the Kafka frame fuzz test
 * (test/fuzz/kafka-frames.test.ts) mutates.
 *
 *   node --import tsx test/fuzz/kafka-frames/record.ts
 *
 * Needs Debian's kcat, python3-confluent-kafka and python3-kafka (and the npm devDependency kafkajs).
 * It opens a Kafka listener over a FileLog in a temp dir (topic `fuzz`, 3 partitions; a second
 * listener with a token for SASL/PLAIN), puts a recording TCP proxy in front of each (Metadata
 * advertises the proxy, so clients never bypass it), runs every client through produce (plain,
 * each codec, idempotent), consume, a consumer group member (join, sync, heartbeat, commit, leave)
 * and the committed-offsets lookup, and keeps every request frame the clients sent: deduplicated on
 * their bytes minus the correlation id, at most FRAMES_PER_KIND_MAX per client, API and version (and for Produce per codec and idempotence),
 * frames over FRAME_BYTES_MAX left out, so the fixture stays small. Each frame is stored whole, its
 * 4-byte size prefix included, as base64.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GroupCoordinator, type KafkaListener, startKafkaListener } from '../../../src/kafka/index.ts';
import { API_SPECS, decodeRequest } from '../../../src/kafka/protocol/index.ts';
import { type FileLog, openFileLog } from '../../../src/log/index.ts';
import { MemoryOffsetStore } from '../../../src/kafka/groups/index.ts';
import {
  type KafkaClient,
  confluentKafka,
  kafkaPython,
  kafkajsClient,
  kcat,
  keyedRecords,
} from '../../support/kafka-clients.ts';
import { runCommand } from '../../support/processes.ts';

export const FIXTURE = fileURLToPath(new URL('./frames.json', import.meta.url));
/** The topic every recorded Produce, Fetch and group request names. */
export const FUZZ_TOPIC = 'fuzz';
export const FUZZ_PARTITIONS = 3;
const FRAMES_PER_KIND_MAX = 3;
const FRAME_BYTES_MAX = 16 * 1024;
const SASL_TOKEN = 'fuzz-secret-token';

interface Recorded {
  client: string;
  frame: Buffer;
}

/** A TCP proxy that forwards to `upstream()` and records each client-to-server frame under the current label. */
class RecordingProxy {
  label = 'none';
  readonly frames: Recorded[] = [];
  private readonly server: Server;
  upstreamPort = 0;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((client) => this.accept(client));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.port)));
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  private accept(client: Socket): void {
    const label = this.label;
    const upstream = connect({ host: '127.0.0.1', port: this.upstreamPort });
    this.sockets.add(client).add(upstream);
    let buffered = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        const size = buffered.readInt32BE(0);
        this.frames.push({ client: label, frame: Buffer.from(buffered.subarray(0, 4 + size)) });
        buffered = buffered.subarray(4 + size);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) s.on('close', end).on('error', end);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Broker {
  log: FileLog;
  listener: KafkaListener;
  proxy: RecordingProxy;
  groups: GroupCoordinator;
  bootstrap: string;
}

async function openBroker(dir: string, withToken: boolean): Promise<Broker> {
  const quiet = { info() {}, warn() {} };
  const log = await openFileLog({ dir, logger: quiet });
  await log.createTopic(FUZZ_TOPIC, { partitions: FUZZ_PARTITIONS });
  const proxy = new RecordingProxy();
  const proxyPort = await proxy.listen();
  const groups = new GroupCoordinator({
    offsets: new MemoryOffsetStore(),
    initialRebalanceDelayMs: 0,
    partitionCount: async (topic) => (await log.topics()).find((x) => x.name === topic)?.partitions ?? null,
  });
  const sha256 = createHash('sha256').update(SASL_TOKEN).digest('hex');
  const listener = await startKafkaListener({
    log,
    groups,
    port: 0,
    advertisedHost: '127.0.0.1',
    advertisedPort: proxyPort,
    logger: quiet,
    tokens: withToken ? [{ name: 'fuzzer', sha256, scopes: ['admin'] }] : [],
  });
  proxy.upstreamPort = listener.port;
  return { log, listener, proxy, groups, bootstrap: `127.0.0.1:${proxyPort}` };
}

async function closeBroker(b: Broker): Promise<void> {
  await b.proxy.close();
  await b.listener.close();
  b.groups.close();
  await b.log.close();
}

/** What each client does while recorded: every API a producer and a consumer-group member send. */
async function session(owner: Owner, client: KafkaClient, bootstrap: string, n: number): Promise<void> {
  const records = keyedRecords(6, { label: `${client.name}-${n}`, perRecordHeaders: client.perRecordHeaders });
  await client.produce(owner, bootstrap, FUZZ_TOPIC, records);
  for (const codec of client.codecs)
    await client.produce(owner, bootstrap, FUZZ_TOPIC, records, { compression: codec });
  await client.produce(owner, bootstrap, FUZZ_TOPIC, records, { idempotent: true });
  await client.consume(owner, bootstrap, FUZZ_TOPIC, { partitions: [0, 1, 2], count: 6, timeoutMs: 20_000 });
  const member = client.startMember(owner, bootstrap, FUZZ_TOPIC, `fuzz-group-${client.name}`, 'member');
  const deadline = Date.now() + 30_000;
  while ((member.assignment === null || member.records.length === 0) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 200));
  // A few heartbeats and (kcat) an automatic commit.
  await new Promise((r) => setTimeout(r, client.commitDelayMs + 1_500));
  await member.close();
  await client.committed(owner, bootstrap, FUZZ_TOPIC, `fuzz-group-${client.name}`, [0, 1, 2]);
}

interface Owner {
  after(fn: () => unknown): void;
}

/** kcat's other requests: -L (Metadata), -Q (ListOffsets by time), and SASL/PLAIN against the token listener. */
async function kcatExtras(plain: string, sasl: string): Promise<void> {
  await runCommand('/usr/bin/kcat', ['-b', plain, '-L'], { timeoutMs: 20_000 });
  await runCommand('/usr/bin/kcat', ['-b', plain, '-Q', '-t', `${FUZZ_TOPIC}:0:1000`, '-t', `${FUZZ_TOPIC}:1:-1`], {
    timeoutMs: 20_000,
  });
  const saslArgs = ['-X', 'security.protocol=SASL_PLAINTEXT', '-X', 'sasl.mechanisms=PLAIN'];
  const login = ['-X', 'sasl.username=fuzzer', '-X', `sasl.password=${SASL_TOKEN}`];
  await runCommand('/usr/bin/kcat', ['-b', sasl, ...saslArgs, ...login, '-L'], { timeoutMs: 20_000 });
  await runCommand('/usr/bin/kcat', ['-b', sasl, '-P', '-t', FUZZ_TOPIC, ...saslArgs, ...login], {
    input: 'sasl-1\nsasl-2\n',
    timeoutMs: 20_000,
  });
}

async function kafkajsSasl(sasl: string): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({
    brokers: [sasl],
    logLevel: logLevel.NOTHING,
    sasl: { mechanism: 'plain', username: 'fuzzer', password: SASL_TOKEN },
  });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: FUZZ_TOPIC, messages: [{ key: 'k', value: 'v' }] });
  await producer.disconnect();
}

/** For a Produce frame, its batches' codecs and whether an idempotent producer sent it; '' for other requests. */
function produceKind(frame: Buffer): string {
  const { header, body } = decodeRequest(frame.subarray(4));
  if (header.apiKey !== 0) return '';
  const kinds = new Set<string>();
  for (const topic of body.topicData as { partitionData: { records: Buffer | null }[] }[])
    for (const p of topic.partitionData)
      // Attributes (int16 at byte 21): the codec in bits 0-2; the producer id (int64 at byte 43): -1 without one.
      if (p.records && p.records.length >= 61)
        kinds.add(`codec ${p.records.readInt16BE(21) & 7}${p.records.readBigInt64BE(43) === -1n ? '' : ' idempotent'}`);
  return [...kinds].sort().join(',');
}

/** Deduplicated (bytes minus the correlation id), capped per client/API/version, decodable frames. */
function select(
  recorded: Recorded[],
): { client: string; api: string; apiKey: number; apiVersion: number; base64: string }[] {
  const seen = new Set<string>();
  const perKind = new Map<string, number>();
  const out = [];
  for (const { client, frame } of recorded) {
    if (frame.length > FRAME_BYTES_MAX) continue;
    let header;
    try {
      header = decodeRequest(frame.subarray(4)).header;
    } catch {
      continue;
    }
    const anonymous = Buffer.from(frame);
    anonymous.writeInt32BE(0, 8);
    const digest = createHash('sha256').update(anonymous).digest('hex');
    const kind = `${client}/${header.apiKey}/${header.apiVersion}/${produceKind(frame)}`;
    if (seen.has(digest) || (perKind.get(kind) ?? 0) >= FRAMES_PER_KIND_MAX) continue;
    seen.add(digest);
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
    const api = API_SPECS.get(header.apiKey)?.name ?? String(header.apiKey);
    out.push({ client, api, apiKey: header.apiKey, apiVersion: header.apiVersion, base64: frame.toString('base64') });
  }
  return out;
}

async function main(): Promise<void> {
  const hooks: (() => unknown)[] = [];
  const owner: Owner = { after: (fn) => hooks.push(fn) };
  const dir = mkdtempSync(join(tmpdir(), 'kappa-record-frames-'));
  const plain = await openBroker(join(dir, 'plain'), false);
  const sasl = await openBroker(join(dir, 'sasl'), true);
  try {
    // kafka-python and kafkajs read only gzip batches here: they go before the clients that write the other codecs.
    const clients = [kafkaPython, kafkajsClient, kcat, confluentKafka];
    for (const [i, client] of clients.entries()) {
      plain.proxy.label = client.name;
      process.stderr.write(`recording ${client.name}\n`);
      await session(owner, client, plain.bootstrap, i);
    }
    plain.proxy.label = sasl.proxy.label = 'kcat';
    await kcatExtras(plain.bootstrap, sasl.bootstrap);
    sasl.proxy.label = 'kafkajs';
    await kafkajsSasl(sasl.bootstrap);
  } finally {
    for (const fn of hooks.reverse()) await fn();
    await closeBroker(plain);
    await closeBroker(sasl);
    rmSync(dir, { recursive: true, force: true });
  }
  const frames = select([...plain.proxy.frames, ...sasl.proxy.frames]);
  const fixture = {
    about: 'Kafka request frames recorded from real clients by test/fuzz/kafka-frames/record.ts (size prefix included)',
    topic: FUZZ_TOPIC,
    partitions: FUZZ_PARTITIONS,
    frames,
  };
  writeFileSync(FIXTURE, JSON.stringify(fixture, null, 2) + '\n');
  // `npm run lint` checks every JSON file with Prettier.
  const prettier = fileURLToPath(new URL('../../../node_modules/prettier/bin/prettier.cjs', import.meta.url));
  await runCommand(process.execPath, [prettier, '--write', FIXTURE], { timeoutMs: 60_000 });
  const kinds = new Map<string, number>();
  for (const f of frames) kinds.set(`${f.api} v${f.apiVersion}`, (kinds.get(`${f.api} v${f.apiVersion}`) ?? 0) + 1);
  process.stderr.write(`${frames.length} frames written to ${FIXTURE}:\n`);
  for (const [k, n] of [...kinds].sort()) process.stderr.write(`  ${k}: ${n}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
