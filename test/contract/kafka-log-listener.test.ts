/**
 * Runs the Log contract on KafkaLog against Kappa's own Kafka listener (in process, on a FileLog in
 * a temp dir): the same suite as FileLog's, through the Kafka protocol. The listener keeps FileLog's
 * idempotent-producer rules and time index; retention is the cluster's (its settings are handed
 * over), and sizeBytes is KafkaLog's estimate (the listener offers no DescribeLogDirs).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isKappaError } from '../../src/errors.ts';
import { startKafkaListener } from '../../src/kafka/index.ts';
import { openFileLog, openLog } from '../../src/log/index.ts';
import { listenerHarness } from '../support/kafka-log.ts';
import { logContract } from './log.contract.ts';

const quiet = { info(): void {}, warn(): void {} };

logContract('KafkaLog on Kappa’s Kafka listener', listenerHarness);

describe('KafkaLog plain appends', () => {
  test('go out under a producer id the cluster gave, numbered per partition, so a lost answer can be re-sent safely', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kappa-kafka-pid-'));
    const fileLog = await openFileLog({ dir, logger: quiet });
    const listener = await startKafkaListener({ log: fileLog, port: 0, logger: quiet });
    const log = await openLog({ kind: 'kafka', brokers: [listener.address], clientId: 'kappa-test' });
    try {
      await log.createTopic('t', { partitions: 1 });
      await log.append('t', [
        { value: 'a', partition: 0 },
        { value: 'b', partition: 0 },
      ]);
      await log.appendBatch('t', 0, [{ key: null, value: Buffer.from('c'), headers: [], timestamp: 1 }]);
      const batches = [];
      for await (const b of fileLog.read('t', 0, 0)) batches.push(b);
      assert.deepEqual(
        batches.map((b) => [b.baseOffset, b.baseSequence, b.count]),
        [
          [0, 0, 2],
          [2, 2, 1],
        ],
      );
      assert.ok(batches[0].producerId >= 0, 'an idempotent producer id');
      assert.equal(batches[1].producerId, batches[0].producerId);
    } finally {
      await log.close();
      await listener.close();
      await fileLog.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('KafkaLog when the cluster is not there', () => {
  test('opening a log whose broker does not answer fails at once, naming the broker', { timeout: 30_000 }, async () => {
    const address = await closedAddress();
    await assert.rejects(
      openLog({ kind: 'kafka', brokers: [address], clientId: 'kappa-test', connectTimeoutMs: 1_000 }),
      (err: unknown) =>
        isKappaError(err) && err.message.includes(address) && /Cannot reach|No Kafka broker/.test(err.message),
    );
  });

  test(
    'an append or a read after the broker went away fails with a message naming it',
    { timeout: 60_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kappa-kafka-down-'));
      const fileLog = await openFileLog({ dir, logger: quiet });
      const listener = await startKafkaListener({ log: fileLog, port: 0, logger: quiet });
      const log = await openLog({
        kind: 'kafka',
        brokers: [listener.address],
        clientId: 'kappa-test',
        connectTimeoutMs: 500,
      });
      try {
        await log.createTopic('t', { partitions: 1 });
        await log.append('t', [{ value: 'before', partition: 0 }]);
        await listener.close();
        const named = (err: unknown): boolean => isKappaError(err) && err.message.includes(listener.address);
        await assert.rejects(log.append('t', [{ value: 'after', partition: 0 }]), named);
        await assert.rejects(log.offsets('t', 0), named);
        assert.deepEqual((await fileLog.offsets('t', 0)).end, 1, 'nothing was appended');
      } finally {
        await log.close();
        await fileLog.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

/** host:port where nothing listens (a port just released). */
async function closedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `127.0.0.1:${port}`;
}
