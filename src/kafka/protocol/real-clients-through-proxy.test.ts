// Real clients against a broker Kappa did not write: librdkafka (Debian's python3-confluent-kafka,
// librdkafka 2.0.2) and kafka-python 2.0.2 (Debian's python3-kafka) as the clients, librdkafka's
// built-in mock cluster as the broker, and a proxy between them that decodes every request and every
// response with our tables. Each message must decode, and re-encode to the very bytes that crossed
// the wire. The proxy rewrites the broker addresses in Metadata and FindCoordinator responses to its
// own (with our encoder), so the client keeps talking through it; everything else passes untouched.
import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { requireDebianPackage } from '../../../test/support/debian.ts';
import { defer } from '../../../test/support/cleanup.ts';
import { runCommand, spawnOwned } from '../../../test/support/processes.ts';
import {
  API_KEYS,
  API_SPECS,
  type Body,
  type RequestHeader,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
} from './index.ts';

const PYTHON = '/usr/bin/python3';
const CONFLUENT_KAFKA = {
  package: 'python3-confluent-kafka',
  path: '/usr/lib/python3/dist-packages/confluent_kafka/__init__.py',
  suite: 'the codec check against librdkafka',
};

const MOCK_CLUSTER = `
import sys
from confluent_kafka import Producer
p = Producer({'test.mock.num.brokers': 1})
b = list(p.list_topics(timeout=10).brokers.values())[0]
print(f"mock broker {b.host}:{b.port}", flush=True)
sys.stdin.read()
`;

/** An idempotent compressed producer and a consumer group that commits: most of what librdkafka speaks.
 * (The mock cluster of librdkafka 2.0.2 answers no admin APIs: CreateTopics, DescribeConfigs, ListGroups.) */
const CLIENT = `
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
bootstrap = sys.argv[1]
p = Producer({'bootstrap.servers': bootstrap, 'enable.idempotence': True, 'compression.type': 'gzip', 'linger.ms': 5})
for i in range(40): p.produce('codec-check', key=f'k{i}', value=f'v{i}', headers={'h': b'x'})
assert p.flush(20) == 0
c = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'codec-group', 'auto.offset.reset': 'earliest',
              'enable.auto.commit': False})
c.subscribe(['codec-check'])
seen = 0
while seen < 40:
    m = c.poll(1.0)
    if m is not None and m.error() is None: seen += 1
c.commit(asynchronous=False)
partitions = [TopicPartition('codec-check', p) for p in range(4)]
print('committed', sum(tp.offset for tp in c.committed(partitions, timeout=10)))
print('watermarks', c.get_watermark_offsets(partitions[0], cached=False, timeout=10))
c.offsets_for_times([TopicPartition('codec-check', 0, 0)], timeout=10)
c.close()
print('consumed', seen)
`;

interface Seen {
  apiKey: number;
  apiVersion: number;
  direction: 'request' | 'response';
}

interface ProxyReport {
  seen: Seen[];
  problems: string[];
  /** Frames passed on unchecked, and why. */
  skipped: string[];
}

/** Calls `onFrame` with each frame (the bytes after the 4-byte size) that arrives on `socket`. */
function onFrames(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const size = pending.readInt32BE(0);
      onFrame(pending.subarray(4, 4 + size));
      pending = pending.subarray(4 + size);
    }
  });
}

const sized = (frame: Buffer): Buffer => {
  const size = Buffer.alloc(4);
  size.writeInt32BE(frame.length);
  return Buffer.concat([size, frame]);
};

const label = (h: { apiKey: number; apiVersion: number }): string =>
  `${API_SPECS.get(h.apiKey)?.name ?? `api ${h.apiKey}`} v${h.apiVersion}`;

function rewriteAddresses(header: RequestHeader, body: Body, host: string, port: number): boolean {
  if (header.apiKey === API_KEYS.Metadata) {
    for (const broker of body.brokers) Object.assign(broker, { host, port });
    return true;
  }
  if (header.apiKey === API_KEYS.FindCoordinator) {
    Object.assign(body, { host, port });
    for (const coordinator of body.coordinators) Object.assign(coordinator, { host, port });
    return true;
  }
  return false;
}

function checkRequest(frame: Buffer, report: ProxyReport): RequestHeader | null {
  try {
    const { header, body } = decodeRequest(frame);
    report.seen.push({ apiKey: header.apiKey, apiVersion: header.apiVersion, direction: 'request' });
    if (!encodeRequest(header, body).subarray(4).equals(frame)) {
      report.problems.push(`${label(header)} request re-encodes to other bytes`);
    }
    return header;
  } catch (err) {
    report.problems.push(`a request did not decode: ${(err as Error).message}`);
    return null;
  }
}

const UNSUPPORTED_VERSION = 35;

function checkResponse(header: RequestHeader, frame: Buffer, proxy: AddressInfo, report: ProxyReport): Buffer {
  if (header.apiKey === API_KEYS.ApiVersions && frame.length >= 6 && frame.readInt16BE(4) === UNSUPPORTED_VERSION) {
    // The answer to an ApiVersions version the broker does not know is not in that version's format
    // (Kafka writes it as v0; the mock cluster as something else): the client only reads its error
    // code and the ApiVersions range, then asks again at a version both know.
    report.skipped.push(`${label(header)} answered UNSUPPORTED_VERSION: ${frame.toString('hex')}`);
    return sized(frame);
  }
  try {
    const { body } = decodeResponse(header.apiKey, header.apiVersion, frame);
    report.seen.push({ apiKey: header.apiKey, apiVersion: header.apiVersion, direction: 'response' });
    const again = Buffer.concat(encodeResponse(header, body)).subarray(4);
    if (!again.equals(frame)) report.problems.push(`${label(header)} response re-encodes to other bytes`);
    if (rewriteAddresses(header, body, '127.0.0.1', proxy.port)) return Buffer.concat(encodeResponse(header, body));
  } catch (err) {
    report.problems.push(
      `${label(header)} response did not decode: ${(err as Error).message} ${frame.toString('hex')}`,
    );
  }
  return sized(frame);
}

/** A proxy to `upstream` that checks every frame with our codec; closed when `t` ends. */
async function startProxy(t: { after(fn: () => unknown): void }, upstream: { host: string; port: number }) {
  const report: ProxyReport = { seen: [], problems: [], skipped: [] };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const broker = connect(upstream.port, upstream.host);
    sockets.add(client).add(broker);
    const inFlight = new Map<number, RequestHeader>();
    onFrames(client, (frame) => {
      const header = checkRequest(frame, report);
      if (header) inFlight.set(header.correlationId, header);
      broker.write(sized(frame));
    });
    onFrames(broker, (frame) => {
      const header = inFlight.get(frame.readInt32BE(0));
      if (!header) report.problems.push(`a response to no request (correlation id ${frame.readInt32BE(0)})`);
      client.write(header ? checkResponse(header, frame, server.address() as AddressInfo, report) : sized(frame));
    });
    const closeBoth = () => {
      client.destroy();
      broker.destroy();
    };
    client.on('close', closeBoth).on('error', closeBoth);
    broker.on('close', closeBoth).on('error', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(t, () => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, report };
}

const KAFKA_PYTHON = {
  package: 'python3-kafka',
  path: '/usr/lib/python3/dist-packages/kafka/__init__.py',
  suite: 'the codec check against kafka-python',
};

/** kafka-python 2.0.2 pins older, fixed versions: a producer, a consumer group that commits. */
const KAFKA_PYTHON_CLIENT = `
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
bootstrap = sys.argv[1]
p = KafkaProducer(bootstrap_servers=bootstrap)
for i in range(40): p.send('codec-check', key=f'k{i}'.encode(), value=f'v{i}'.encode())
p.flush(20)
c = KafkaConsumer('codec-check', bootstrap_servers=bootstrap, group_id='codec-group', auto_offset_reset='earliest',
                  enable_auto_commit=False, consumer_timeout_ms=20000)
seen = 0
for m in c:
    seen += 1
    if seen == 40: break
c.commit()
print('committed', sum(c.committed(TopicPartition('codec-check', p)) or 0 for p in c.partitions_for_topic('codec-check')))
c.close()
print('consumed', seen)
`;

const GROUP_CLIENT_APIS = [
  'ApiVersions',
  'Metadata',
  'Produce',
  'FindCoordinator',
  'JoinGroup',
  'SyncGroup',
  'OffsetFetch',
  'Fetch',
  'OffsetCommit',
  'ListOffsets',
];

/** Runs `client` (a Python script given the proxy's address) through a checking proxy to a mock cluster. */
async function checkThroughProxy(t: TestContext, client: string, apis: string[]): Promise<void> {
  const mock = spawnOwned(t, PYTHON, ['-c', MOCK_CLUSTER], { stdin: 'pipe' });
  const [, host, port] = await mock.waitForOutput(/mock broker ([\d.]+):(\d+)/, {
    timeoutMs: 30_000,
    stream: 'stdout',
  });
  const proxy = await startProxy(t, { host: host!, port: Number(port) });

  const run = await runCommand(PYTHON, ['-c', client, `127.0.0.1:${proxy.port}`], { timeoutMs: 90_000, t });
  const problems = proxy.report.problems.join('\n');
  assert.equal(run.code, 0, `the client failed:\n${run.stderr}\n${run.stdout}\nThe proxy saw:\n${problems}`);
  assert.match(run.stdout, /consumed 40/);
  assert.match(run.stdout, /committed 40/);

  assert.deepEqual(proxy.report.problems, []);
  const names = new Set(proxy.report.seen.map((s) => API_SPECS.get(s.apiKey)!.name));
  for (const api of apis) assert.ok(names.has(api), `the client sent no ${api} request (saw ${[...names].join(', ')})`);
  for (const line of proxy.report.skipped) t.diagnostic(`not checked: ${line}`);
  const versions = [...new Set(proxy.report.seen.map(label))].sort();
  t.diagnostic(`checked ${proxy.report.seen.length} messages: ${versions.join(', ')}`);
}

test(
  'librdkafka’s requests and its mock cluster’s responses decode and re-encode byte for byte',
  { timeout: 120_000 },
  async (t) => {
    if (!requireDebianPackage(t, CONFLUENT_KAFKA)) return;
    await checkThroughProxy(t, CLIENT, [...GROUP_CLIENT_APIS, 'InitProducerId', 'Heartbeat', 'LeaveGroup']);
  },
);

test(
  'kafka-python’s requests and the mock cluster’s responses decode and re-encode byte for byte',
  { timeout: 120_000 },
  async (t) => {
    if (!requireDebianPackage(t, CONFLUENT_KAFKA) || !requireDebianPackage(t, KAFKA_PYTHON)) return;
    await checkThroughProxy(t, KAFKA_PYTHON_CLIENT, GROUP_CLIENT_APIS);
  },
);
