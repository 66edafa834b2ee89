/**
 * The listener against bad and greedy clients over a raw socket: frames over the size limit,
 * negative sizes, garbage, truncated frames, unknown APIs and versions each close the connection
 * (or get Kafka's answer, for ApiVersions) without touching the log or the other clients;
 * pipelined requests are answered in order; a client that never reads stops being read (memory
 * stays bounded) while others are served; the connection limit, the idle timeout, and an
 * unexpected handler failure answered with UNKNOWN_SERVER_ERROR and logged once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_KEYS, ERRORS } from '../protocol/index.ts';
import { RawClient, openListener } from './test-helpers.ts';

const K = API_KEYS;

function sized(payload: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([size, payload]);
}

/** A request header v1 (int16 key, int16 version, int32 correlation id, string client id) and `body`. */
function rawRequest(apiKey: number, apiVersion: number, correlationId: number, body = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(-1, 8);
  return sized(Buffer.concat([header, body]));
}

async function stillServes(t: Parameters<typeof RawClient.connect>[0], port: number): Promise<void> {
  const other = await RawClient.connect(t, port);
  const answer = await other.request(K.ApiVersions, 0, {});
  assert.equal(answer.errorCode, 0);
}

test(
  'a frame over the size limit, a negative size, garbage or an unknown API closes that connection only',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t, { limits: { frameBytesMax: 1024 } });
    await log.createTopic('safe', { partitions: 1 });
    const cases: [string, Buffer][] = [
      ['size over the limit', sized(Buffer.alloc(2000))],
      ['negative size', Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3])],
      ['garbage', sized(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))],
      ['unknown API key', rawRequest(999, 0, 1)],
      ['a known API in a version not served', rawRequest(K.Fetch, 1, 1, Buffer.alloc(30))],
      ['a header cut short', sized(Buffer.from([0, 3]))],
      ['a frame of size 0', Buffer.from([0, 0, 0, 0])],
    ];
    for (const [what, bytes] of cases) {
      const c = await RawClient.connect(t, listener.port);
      c.write(bytes);
      assert.equal(await c.closedWithin(5000), true, `${what}: the connection is closed`);
    }
    await stillServes(t, listener.port);
    assert.deepEqual(await log.offsets('safe', 0), { start: 0, end: 0 });
  },
);

test(
  'ApiVersions in a version not served is answered in v0 with UNSUPPORTED_VERSION and the versions served',
  { timeout: 30_000 },
  async (t) => {
    const { listener } = await openListener(t);
    const c = await RawClient.connect(t, listener.port);
    c.write(rawRequest(K.ApiVersions, 99, 7));
    const answer = await c.response(K.ApiVersions, 0);
    assert.equal(answer.correlationId, 7);
    assert.equal(answer.body.errorCode, ERRORS.UNSUPPORTED_VERSION);
    const own = answer.body.apiKeys.find((k: { apiKey: number }) => k.apiKey === K.ApiVersions);
    assert.deepEqual({ ...own }, { apiKey: K.ApiVersions, minVersion: 0, maxVersion: 3 });
    // The connection stays usable: the client retries with a version it now knows is served.
    assert.equal(
      (await c.request(K.ApiVersions, 3, { clientSoftwareName: 'raw', clientSoftwareVersion: '1' })).errorCode,
      0,
    );
  },
);

test(
  'a truncated frame is never answered and the server stays healthy when the client goes away',
  { timeout: 30_000 },
  async (t) => {
    const { listener } = await openListener(t, { limits: { idleMs: 500 } });
    const c = await RawClient.connect(t, listener.port);
    const whole = c.frame(K.ApiVersions, 0, {});
    c.write(whole.subarray(0, whole.length - 3));
    await stillServes(t, listener.port);
    // Nothing in flight: the idle timeout closes it.
    assert.equal(await c.closedWithin(5000), true);
    const gone = await RawClient.connect(t, listener.port);
    gone.write(whole.subarray(0, 6));
    gone.socket.destroy();
    await stillServes(t, listener.port);
  },
);

test(
  'pipelined requests are answered in the order they were sent, a long poll holding back those after it',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t);
    await log.createTopic('empty', { partitions: 1 });
    const c = await RawClient.connect(t, listener.port);
    const fetch = {
      maxWaitMs: 400,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      topics: [{ topic: 'empty', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
    };
    c.write(
      Buffer.concat([
        c.frame(K.Metadata, 1, { topics: null }, 1),
        c.frame(K.Fetch, 11, fetch, 2),
        c.frame(K.ApiVersions, 1, {}, 3),
        c.frame(K.Metadata, 12, { topics: [{ name: 'empty', topicId: '00000000-0000-0000-0000-000000000000' }] }, 4),
      ]),
    );
    const started = Date.now();
    assert.equal((await c.response(K.Metadata, 1)).correlationId, 1);
    const fetched = await c.response(K.Fetch, 11);
    assert.equal(fetched.correlationId, 2);
    assert.ok(Date.now() - started >= 350, 'the Fetch waited for data');
    assert.equal((await c.response(K.ApiVersions, 1)).correlationId, 3);
    const meta = await c.response(K.Metadata, 12);
    assert.equal(meta.correlationId, 4);
    assert.equal(meta.body.topics[0].partitions.length, 1);
  },
);

test(
  'a client that never reads its answers stops being read, and the others are served meanwhile',
  { timeout: 60_000 },
  async (t) => {
    const writeBufferBytesMax = 256 * 1024;
    const { log, listener, registry } = await openListener(t, { limits: { writeBufferBytesMax, inFlightMax: 4 } });
    await log.createTopic('big', { partitions: 1 });
    const value = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 32; i++) await log.append('big', [{ value }]);
    const greedy = await RawClient.connect(t, listener.port, { read: false });
    const fetch = {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      topics: [{ topic: 'big', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
    };
    const sent = 400;
    const frames: Buffer[] = [];
    for (let i = 1; i <= sent; i++) frames.push(greedy.frame(K.Fetch, 11, fetch, i));
    greedy.write(Buffer.concat(frames));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const fetches = async (): Promise<number> => {
      const m = (await registry.getSingleMetricAsString('kappa_kafka_requests_total'))
        .split('\n')
        .filter((l) => l.startsWith('kappa_kafka_requests_total{api="Fetch"'));
      return m.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    };
    const answered = await fetches();
    // Each answer is ~1 MiB: 400 of them would be 400 MiB. Only what fits in the socket buffers and
    // the in-flight bound was handled; the rest waits in the client's own TCP send buffer.
    assert.ok(answered < 60, `only ${answered} of ${sent} fetches were handled while the client did not read`);
    await stillServes(t, listener.port);
    // Once it reads, every answer comes, in order.
    greedy.socket.resume();
    for (let i = 1; i <= sent; i++) assert.equal((await greedy.response(K.Fetch, 11)).correlationId, i);
  },
);

test(
  'connections beyond the limit are closed at once; a slot freed is usable again',
  { timeout: 30_000 },
  async (t) => {
    const { listener, registry } = await openListener(t, { limits: { connectionsMax: 3 } });
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await RawClient.connect(t, listener.port));
    for (const c of open) assert.equal((await c.request(K.ApiVersions, 0, {})).errorCode, 0);
    const extra = await RawClient.connect(t, listener.port);
    assert.equal(await extra.closedWithin(5000), true);
    open[0].socket.destroy();
    await open[0].closed;
    // The listener frees the slot once it sees the close, which it counts: wait for that, not a fixed time.
    const deadline = Date.now() + 10_000;
    while (!/^kappa_kafka_connections_closed_total\{reason="client"\} 1$/m.test(await registry.metrics())) {
      assert.ok(Date.now() < deadline, 'the listener never saw the client close its connection');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await stillServes(t, listener.port);
  },
);

test(
  'an unexpected failure in a handler is answered with UNKNOWN_SERVER_ERROR and logged once',
  { timeout: 30_000 },
  async (t) => {
    const { listener, warnings } = await openListener(t, {
      wrapLog: (log) =>
        new Proxy(log, {
          get(target, prop, receiver) {
            if (prop === 'offsets') return () => Promise.reject(new Error('disk on fire'));
            const v = Reflect.get(target, prop, receiver);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }),
    });
    const c = await RawClient.connect(t, listener.port);
    const req = {
      topics: [{ name: 'any', partitions: [{ partitionIndex: 0, timestamp: -1 }] }],
    };
    for (let i = 0; i < 3; i++) {
      const answer = await c.request(K.ListOffsets, 5, req);
      assert.equal(answer.topics[0].partitions[0].errorCode, ERRORS.UNKNOWN_SERVER_ERROR);
    }
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /disk on fire/);
  },
);

test(
  'a frame announced but not sent within frameMs closes its connection and gives its memory back',
  { timeout: 30_000 },
  async (t) => {
    const { listener } = await openListener(t, {
      limits: { frameMs: 300, requestBytesMax: 1000, frameBytesMax: 1000 },
    });
    const hog = await RawClient.connect(t, listener.port);
    hog.write(Buffer.from([0, 0, 0x03, 0xe8, 1, 2, 3])); // announces 1000 bytes, sends 3
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The shared frame memory is taken: a small request of another client waits...
    const waiting = await RawClient.connect(t, listener.port);
    const started = Date.now();
    const answer = waiting.request(K.ApiVersions, 0, {});
    assert.equal(await hog.closedWithin(5000), true);
    // ...until the announced frame times out and its reservation is released.
    assert.equal((await answer).errorCode, 0);
    assert.ok(Date.now() - started >= 150, 'the small request waited for the memory');
  },
);
