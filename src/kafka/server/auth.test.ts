/**
 * Auth on the Kafka listener, as on the HTTP API: without tokens it refuses to listen beyond
 * loopback; with tokens a client logs in with SASL/PLAIN (user = token name, password = token)
 * before anything but ApiVersions and SASL, and every request is checked against the token's
 * scopes with Kafka's error codes. TLS when given a certificate.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Kafka, logLevel } from 'kafkajs';
import { defer, tempDir } from '../../../test/support/cleanup.ts';
import { runCommand } from '../../../test/support/processes.ts';
import { openFileLog } from '../../log/index.ts';
import { hashToken } from '../../server/index.ts';
import { API_KEYS, ERRORS } from '../protocol/index.ts';
import { startKafkaListener } from './listener.ts';
import { RawClient, openListener, quiet } from './test-helpers.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const K = API_KEYS;

const SECRETS = { admin: 'kp_admin_secret', writer: 'kp_writer_secret', reader: 'kp_reader_secret' };
const TOKENS = [
  { name: 'admin', sha256: hashToken(SECRETS.admin), scopes: ['admin'] },
  { name: 'writer', sha256: hashToken(SECRETS.writer), scopes: ['produce:sales'] },
  { name: 'reader', sha256: hashToken(SECRETS.reader), scopes: ['consume:sales'] },
];

function as(address: string, user: keyof typeof SECRETS, password = SECRETS[user]): Kafka {
  return new Kafka({
    brokers: [address],
    clientId: `auth-${user}`,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    sasl: { mechanism: 'plain', username: user, password },
  });
}

function kafkaError(type: string): (err: unknown) => boolean {
  const matches = (err: unknown): boolean => {
    const e = err as { type?: string; errors?: unknown[]; originalError?: unknown; name?: string } | null;
    if (e === null || typeof e !== 'object') return false;
    return e.type === type || e.name === type || (e.errors ?? []).some(matches) || matches(e.originalError ?? null);
  };
  return matches;
}

test('without tokens the listener refuses an address beyond loopback, and says how to fix it', async (t) => {
  const dir = tempDir(t);
  const log = await openFileLog({ dir, logger: quiet });
  defer(t, () => log.close());
  await assert.rejects(
    startKafkaListener({ log, host: '0.0.0.0', port: 0, logger: quiet }),
    (err: Error & { code?: string }) => err.code === 'KAPPA_CONFIG_INVALID' && /server\.tokens/.test(err.message),
  );
});

test(
  'SASL/PLAIN with a token: the right password produces, a wrong one is refused, scopes give Kafka error codes',
  { timeout: 60_000 },
  async (t) => {
    const { log, listener } = await openListener(t, { tokens: TOKENS, host: '0.0.0.0', withGroups: true });
    await log.createTopic('sales', { partitions: 2 });
    await log.createTopic('secret', { partitions: 1 });
    const address = `127.0.0.1:${listener.port}`;
    const writer = as(address, 'writer').producer();
    await writer.connect();
    defer(t, () => writer.disconnect());
    await writer.send({ topic: 'sales', messages: [{ key: 'a', value: '1' }] });
    assert.equal((await log.offsets('sales', 0)).end + (await log.offsets('sales', 1)).end, 1);
    await assert.rejects(
      writer.send({ topic: 'secret', messages: [{ value: 'x' }] }),
      /Topic authorization failed/, // kafkajs names Metadata's TOPIC_AUTHORIZATION_FAILED this way
    );
    assert.equal((await log.offsets('secret', 0)).end, 0);
    const wrong = as(address, 'writer', 'kp_not_it').producer();
    await assert.rejects(wrong.connect(), kafkaError('KafkaJSSASLAuthenticationError'));
    const renamed = as(address, 'reader', SECRETS.writer).producer();
    await assert.rejects(renamed.connect(), kafkaError('KafkaJSSASLAuthenticationError'));
    // A token that may only produce cannot use consumer groups.
    const raw = await RawClient.connect(t, listener.port);
    assert.equal((await raw.request(K.SaslHandshake, 1, { mechanism: 'PLAIN' })).errorCode, 0);
    const login = await raw.request(K.SaslAuthenticate, 2, {
      authBytes: Buffer.from(`\u0000writer\u0000${SECRETS.writer}`),
    });
    assert.equal(login.errorCode, 0);
    const found = await raw.request(K.FindCoordinator, 3, { key: 'g', keyType: 0 });
    assert.equal(found.errorCode, ERRORS.GROUP_AUTHORIZATION_FAILED);
    const joined = await raw.request(K.JoinGroup, 5, {
      groupId: 'g',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [],
    });
    assert.equal(joined.errorCode, ERRORS.GROUP_AUTHORIZATION_FAILED);
    // The reader sees only its topic; creating topics needs admin.
    const readerAdmin = as(address, 'reader').admin();
    await readerAdmin.connect();
    defer(t, () => readerAdmin.disconnect());
    assert.deepEqual(await readerAdmin.listTopics(), ['sales']);
    await assert.rejects(
      readerAdmin.createTopics({ topics: [{ topic: 'mine' }] }),
      kafkaError('TOPIC_AUTHORIZATION_FAILED'),
    );
    const admin = as(address, 'admin').admin();
    await admin.connect();
    defer(t, () => admin.disconnect());
    assert.equal(await admin.createTopics({ topics: [{ topic: 'mine' }] }), true);
  },
);

test(
  'with tokens, a request before SASL closes the connection; ApiVersions and a SaslHandshake v0 login work',
  { timeout: 30_000 },
  async (t) => {
    const { log, listener } = await openListener(t, { tokens: TOKENS });
    await log.createTopic('sales', { partitions: 1 });
    const early = await RawClient.connect(t, listener.port);
    assert.equal(
      (await early.request(K.ApiVersions, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' })).errorCode,
      0,
    );
    early.write(early.frame(K.Metadata, 1, { topics: null }));
    assert.equal(await early.closedWithin(5000), true);
    // SaslHandshake v0: the PLAIN message follows as a bare frame, answered by an empty one.
    const old = await RawClient.connect(t, listener.port);
    assert.equal((await old.request(K.SaslHandshake, 0, { mechanism: 'PLAIN' })).errorCode, 0);
    const plain = Buffer.from(`\u0000reader\u0000${SECRETS.reader}`);
    const size = Buffer.alloc(4);
    size.writeInt32BE(plain.length);
    old.write(Buffer.concat([size, plain]));
    assert.equal((await old.nextFrame()).length, 0);
    const meta = await old.request(K.Metadata, 1, { topics: null });
    assert.deepEqual(
      meta.topics.map((x: { name: string }) => x.name),
      ['sales'],
    );
    const produced = await old.request(K.Produce, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 1000,
      topicData: [{ name: 'sales', partitionData: [{ index: 0, records: Buffer.alloc(0) }] }],
    });
    assert.equal(produced.responses[0].partitionResponses[0].errorCode, ERRORS.TOPIC_AUTHORIZATION_FAILED);
    const badMechanism = await RawClient.connect(t, listener.port);
    const answer = await badMechanism.request(K.SaslHandshake, 1, { mechanism: 'SCRAM-SHA-256' });
    assert.equal(answer.errorCode, ERRORS.UNSUPPORTED_SASL_MECHANISM);
    assert.deepEqual(answer.mechanisms, ['PLAIN']);
  },
);

test('TLS: with a certificate and key the listener speaks Kafka over TLS only', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const made = await runCommand('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ]).catch(() => null);
  if (made === null || made.code !== 0) return t.skip('openssl is not installed');
  const cert = readFileSync(join(dir, 'cert.pem'));
  const { log, listener } = await openListener(t, { tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
  await log.createTopic('sales', { partitions: 1 });
  const kafka = new Kafka({
    brokers: [listener.address],
    logLevel: logLevel.NOTHING,
    ssl: { ca: [cert] },
    retry: { retries: 0 },
  });
  const producer = kafka.producer();
  await producer.connect();
  defer(t, () => producer.disconnect());
  await producer.send({ topic: 'sales', messages: [{ value: 'over tls' }] });
  assert.equal((await log.offsets('sales', 0)).end, 1);
  // Plain TCP gets nothing: the bytes are not a TLS handshake.
  const plain = await RawClient.connect(t, listener.port);
  plain.write(plain.frame(K.ApiVersions, 0, {}));
  assert.equal(await plain.closedWithin(5000), true);
  const socket = tlsConnect({ host: '127.0.0.1', port: listener.port, ca: [cert] });
  defer(t, () => socket.destroy());
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  assert.ok(socket.authorized);
});
