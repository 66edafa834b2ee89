/**
 * KafkaLog's broker connection against a scripted broker (a TCP server on port 0): framing across
 * and within socket chunks, the requests-in-flight limit, and the failures that end a connection.
 * SCRAM against RFC 7677's worked example. (The whole client against real brokers: the KafkaLog
 * contract suites in test/contract/.)
 */
import assert from 'node:assert/strict';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { after, test } from 'node:test';
import { ByteWriter } from './codec.ts';
import { BrokerConnection, KafkaConnectionError } from './connection.ts';
import { ScramClient } from './sasl.ts';

interface Received {
  apiKey: number;
  version: number;
  correlationId: number;
  clientId: string;
  body: Buffer;
}

/** A broker that hands each whole request frame it receives to `onRequest`. */
async function broker(onRequest: (req: Received, socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = pending.subarray(4, 4 + pending.readInt32BE(0));
        pending = pending.subarray(4 + frame.length);
        const clientIdBytes = frame.readInt16BE(8);
        onRequest(
          {
            apiKey: frame.readInt16BE(0),
            version: frame.readInt16BE(2),
            correlationId: frame.readInt32BE(4),
            clientId: frame.toString('utf8', 10, 10 + clientIdBytes),
            body: frame.subarray(10 + clientIdBytes),
          },
          socket,
        );
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  return { server, port: (server.address() as AddressInfo).port };
}

/** An answer frame: size, correlation id, then `body`. */
function answer(correlationId: number, body: Buffer): Buffer {
  const frame = Buffer.alloc(8);
  frame.writeInt32BE(4 + body.length, 0);
  frame.writeInt32BE(correlationId, 4);
  return Buffer.concat([frame, body]);
}

async function connected(port: number, opts: Partial<{ requestTimeoutMs: number; maxInFlight: number }> = {}) {
  const c = new BrokerConnection({
    clientId: 'kappa-test',
    connectTimeoutMs: 2000,
    requestTimeoutMs: opts.requestTimeoutMs ?? 2000,
    maxInFlight: opts.maxInFlight ?? 8,
  });
  c.on('error', () => {});
  await c.connect('127.0.0.1', port);
  after(() => c.destroy());
  return c;
}

const readInt32 = (r: { readInt32(): number }): number => r.readInt32();

test('requests carry their header and body; answers are matched by correlation id, split or joined in any way', async () => {
  const seen: Received[] = [];
  const { port } = await broker((req, socket) => {
    seen.push(req);
    if (seen.length < 3) return;
    // All three answers in one write, the first split byte by byte over the next writes.
    const all = Buffer.concat(
      seen.map((r) => answer(r.correlationId, Buffer.from([0, 0, 0, r.body.readInt32BE(0) * 2]))),
    );
    socket.write(all.subarray(0, 1));
    setTimeout(() => socket.write(all.subarray(1, 3)), 5);
    setTimeout(() => socket.write(all.subarray(3)), 10);
  });
  const c = await connected(port);
  const results = await Promise.all(
    [1, 2, 3].map((n) => c.send(1, 11, new ByteWriter().appendInt32(n).chunks(), readInt32)),
  );
  assert.deepEqual(results, [2, 4, 6]);
  assert.deepEqual(
    seen.map((r) => [r.apiKey, r.version, r.clientId]),
    [
      [1, 11, 'kappa-test'],
      [1, 11, 'kappa-test'],
      [1, 11, 'kappa-test'],
    ],
  );
  assert.equal(new Set(seen.map((r) => r.correlationId)).size, 3);
});

test('large answers are read whole however the bytes arrive, straight into their buffer or through the scratch one', async () => {
  // Answers of 300 KB, 70 KB and 12 bytes, their bytes cut at odd places: mid-size field, just after
  // a size, inside a large answer (where reads go straight into its buffer) and across the end of
  // one answer and the start of the next.
  const bodies = [300_000, 70_000, 8].map((n, i) => {
    const body = Buffer.alloc(n);
    for (let j = 0; j < n; j++) body[j] = (j * 31 + i) & 0xff;
    return body;
  });
  const seen: Received[] = [];
  const { port } = await broker((req, socket) => {
    seen.push(req);
    if (seen.length < bodies.length) return;
    const all = Buffer.concat(seen.map((r, i) => answer(r.correlationId, bodies[i])));
    const cuts = [2, 4, 9, 40_000, 299_990, 300_013, 300_020, 350_000, all.length - 5, all.length];
    let from = 0;
    cuts.forEach((to, k) => {
      const piece = all.subarray(from, to);
      setTimeout(() => socket.write(piece), 3 * k);
      from = to;
    });
  });
  const c = await connected(port);
  const results = await Promise.all(
    bodies.map((_, i) =>
      c.send(1, 11, new ByteWriter().appendInt32(i).chunks(), (r) => {
        const got = Buffer.alloc(bodies[i].length);
        for (let j = 0; j < got.length; j++) got[j] = r.readInt8() & 0xff;
        return got;
      }),
    ),
  );
  results.forEach((got, i) => assert.ok(got.equals(bodies[i]), `answer ${i}`));
});

test('a long body is sent whole, and at most maxInFlight requests are on the wire at once', async () => {
  const records = Buffer.alloc(300_000, 7);
  let onWire = 0;
  let most = 0;
  const { port } = await broker((req, socket) => {
    onWire++;
    most = Math.max(most, onWire);
    assert.ok(req.body.subarray(4).equals(records));
    setTimeout(() => {
      onWire--;
      socket.write(answer(req.correlationId, Buffer.from([0, 0, 0, 1])));
    }, 5);
  });
  const c = await connected(port, { maxInFlight: 2 });
  const body = (): Buffer[] => new ByteWriter().appendInt32(records.length).append(records).chunks();
  const answers = await Promise.all(Array.from({ length: 6 }, () => c.send(0, 7, body(), readInt32)));
  assert.deepEqual(answers, [1, 1, 1, 1, 1, 1]);
  assert.equal(most, 2);
});

test('an answer nobody waits for, or none in time, ends the connection and fails what is under way', async () => {
  const { port } = await broker((req, socket) => {
    if (req.apiKey === 3) socket.write(answer(req.correlationId + 1000, Buffer.alloc(4)));
  });
  const c = await connected(port);
  const stray = await c.send(3, 1, [], readInt32).catch((err: unknown) => err);
  assert.ok(stray instanceof KafkaConnectionError && stray.kind === 'network', String(stray));
  assert.match(stray.message, /not under way/);
  const after = await c.send(3, 1, [], readInt32).catch((err: unknown) => err);
  assert.ok(after instanceof KafkaConnectionError, 'a request on an ended connection fails at once');

  const slow = await connected(port, { requestTimeoutMs: 50 });
  const timedOut = await slow.send(18, 0, [], readInt32).catch((err: unknown) => err);
  assert.ok(timedOut instanceof KafkaConnectionError && timedOut.kind === 'timeout', String(timedOut));
});

test('connecting to a port where nothing listens fails with a network error', async () => {
  const { server, port } = await broker(() => {});
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const c = new BrokerConnection({ clientId: 'x', connectTimeoutMs: 2000, requestTimeoutMs: 2000, maxInFlight: 1 });
  const err = await c.connect('127.0.0.1', port).catch((e: unknown) => e);
  assert.ok(err instanceof KafkaConnectionError && err.kind === 'network', String(err));
  assert.match(err.message, /ECONNREFUSED/);
});

test('SCRAM-SHA-256 gives RFC 7677 section 3 example messages and checks the server signature', () => {
  const client = new ScramClient('SCRAM-SHA-256', 'user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
  assert.equal(client.first(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  assert.equal(
    client.final(serverFirst),
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
  client.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  assert.throws(() => client.verify('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='), /signature does not match/);
  assert.throws(() => client.verify('e=invalid-proof'), /ended the SCRAM exchange: invalid-proof/);
  const other = new ScramClient('SCRAM-SHA-512', 'a=b,c', 'pw', 'abc');
  assert.equal(other.first(), 'n,,n=a=3Db=2Cc,r=abc');
  assert.throws(() => other.final('r=xyz,s=AAAA,i=4096'), /not a valid server-first message/);
});
