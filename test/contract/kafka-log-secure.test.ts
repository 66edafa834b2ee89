/**
 * KafkaLog over TLS with SASL/PLAIN, opened as `kappa start --log` opens it: from a kafka:// URL
 * with options (src/cli/runtime.ts) and the password in KAPPA_KAFKA_PASSWORD. The cluster is Kappa's
 * own Kafka listener with a self-signed certificate (made by openssl) and tokens (SASL/PLAIN: user =
 * token name, password = token). A wrong password, a CA that did not sign the broker's certificate
 * and plain TCP to a TLS listener are each refused with an error that says what failed.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { kafkaDescriptor } from '../../src/cli/runtime.ts';
import { isKappaError } from '../../src/errors.ts';
import { openListener } from '../../src/kafka/server/test-helpers.ts';
import { type Log, openLog } from '../../src/log/index.ts';
import { hashToken } from '../../src/server/index.ts';
import { defer, tempDir } from '../support/cleanup.ts';
import { runCommand } from '../support/processes.ts';

const SECRET = 'kp_kappa_cluster_secret';
const TOKENS = [{ name: 'cluster', sha256: hashToken(SECRET), scopes: ['admin'] }];

/** A self-signed certificate for 127.0.0.1 (null when openssl is missing). */
async function certificate(dir: string): Promise<{ cert: Buffer; key: Buffer; caFile: string } | null> {
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
  if (made === null || made.code !== 0) return null;
  return {
    cert: readFileSync(join(dir, 'cert.pem')),
    key: readFileSync(join(dir, 'key.pem')),
    caFile: join(dir, 'cert.pem'),
  };
}

async function open(url: string, password: string): Promise<Log> {
  return openLog({ ...kafkaDescriptor(url, { KAPPA_KAFKA_PASSWORD: password }), connectTimeoutMs: 2000 } as never);
}

test('KafkaLog from a kafka:// URL with tls-ca and sasl=PLAIN appends and reads; bad credentials are refused', async (t) => {
  const dir = tempDir(t, 'kappa-kafka-tls-');
  const pem = await certificate(dir);
  if (pem === null) return t.skip('openssl is not installed');
  const { log: fileLog, listener } = await openListener(t, {
    tls: { cert: pem.cert, key: pem.key },
    tokens: TOKENS,
  });
  const base = `kafka://${listener.address}`;
  const options = `?tls-ca=${encodeURIComponent(pem.caFile)}&sasl=PLAIN&username=cluster&request-timeout-ms=3000`;

  const log = await open(base + options, SECRET);
  defer(t, () => log.close());
  await log.createTopic('sales', { partitions: 2 });
  await log.append('sales', [
    { value: 'over tls', partition: 0 },
    { value: 'and sasl', partition: 1 },
  ]);
  assert.equal((await fileLog.offsets('sales', 0)).end, 1, 'the broker stored the record');
  const values: string[] = [];
  for (const p of [0, 1])
    for await (const batch of log.read('sales', p, 0, {}))
      for (const r of batch.records(0)) values.push(Buffer.from(r.value!).toString());
  assert.deepEqual(values, ['over tls', 'and sasl']);

  const refused = async (
    url: string,
    password: string,
    code: 'KAPPA_UNAUTHENTICATED' | 'KAPPA_LOG_UNAVAILABLE',
    pattern: RegExp,
  ): Promise<void> => {
    await assert.rejects(
      async () => {
        const l = await open(url, password);
        try {
          await l.offsets('sales', 0);
        } finally {
          await l.close();
        }
      },
      (err: Error) => isKappaError(err, code) && pattern.test(err.message),
    );
  };
  // A wrong password: the broker refuses the login.
  await refused(
    base + options,
    'not-the-secret',
    'KAPPA_UNAUTHENTICATED',
    /refused the SASL PLAIN login of "cluster".*KAPPA_KAFKA_PASSWORD/,
  );
  // A CA that did not sign the broker's certificate: TLS refuses the broker.
  const other = tempDir(t, 'kappa-kafka-tls-other-');
  const otherPem = await certificate(other);
  assert.ok(otherPem);
  writeFileSync(join(other, 'ca.pem'), otherPem.cert);
  const wrongCa = `?tls-ca=${encodeURIComponent(join(other, 'ca.pem'))}&sasl=PLAIN&username=cluster`;
  await refused(
    base + wrongCa,
    SECRET,
    'KAPPA_LOG_UNAVAILABLE',
    /TLS certificate this process does not trust.*tls-ca=/,
  );
});
