import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isKappaError } from '../errors.ts';
import { kafkaDescriptor } from './runtime.ts';

const refused = (url: string, pattern: RegExp, env: NodeJS.ProcessEnv = {}) =>
  assert.throws(
    () => kafkaDescriptor(url, env),
    (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && pattern.test((err as Error).message),
  );

test('kafka:// gives the brokers and the defaults', () => {
  assert.deepEqual(kafkaDescriptor('kafka://a:9092,b:9093/', {}), {
    kind: 'kafka',
    brokers: ['a:9092', 'b:9093'],
    clientId: 'kappa',
  });
});

test('kafka:// options set TLS, SASL (password from the environment), timeouts and the client id', () => {
  const d = kafkaDescriptor(
    'kafka://a:9092?tls=true&sasl=scram-sha-512&username=kappa&client-id=shop&replication-factor=3&connect-timeout-ms=2000&request-timeout-ms=9000',
    { KAPPA_KAFKA_PASSWORD: 's3cret' },
  );
  assert.deepEqual(d, {
    kind: 'kafka',
    brokers: ['a:9092'],
    clientId: 'shop',
    tls: true,
    sasl: { mechanism: 'SCRAM-SHA-512', username: 'kappa', password: 's3cret' },
    replicationFactor: 3,
    connectTimeoutMs: 2000,
    requestTimeoutMs: 9000,
  });
});

test('tls-ca reads the CA file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-ca-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
  const d = kafkaDescriptor(`kafka://a:9092?tls-ca=${encodeURIComponent(ca)}`, {});
  assert.deepEqual(d.kind === 'kafka' ? d.tls : null, {
    ca: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
  });
  refused(`kafka://a:9092?tls-ca=${encodeURIComponent(join(dir, 'missing.pem'))}`, /cannot read the CA file/);
});

test('bad kafka:// addresses and options are refused with what to write instead', () => {
  refused('kafka://a', /not a Kafka address/);
  refused('postgres://a:1', /not a Kafka address/);
  refused('kafka://a:9092?colour=red', /unknown option "colour"/);
  refused('kafka://a:9092?tls=yes', /tls must be true or false/);
  refused('kafka://a:9092?sasl=GSSAPI&username=u', /sasl must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512/);
  refused('kafka://a:9092?sasl=PLAIN', /needs username=/);
  refused('kafka://a:9092?sasl=PLAIN&username=u', /KAPPA_KAFKA_PASSWORD/);
  refused('kafka://a:9092?username=u', /give sasl too/);
  refused('kafka://a:9092?request-timeout-ms=5', /at least 100/);
  refused('kafka://a:9092?replication-factor=x', /whole number/);
});
