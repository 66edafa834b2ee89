/**
 * Webhooks against a receiver that is down: the log says why (ECONNREFUSED, not "fetch failed"),
 * once when it starts failing and with each dead letter, and many records retried leave no
 * listeners behind on the shared abort signal (no MaxListenersExceededWarning).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { openFileLog } from '../log/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import { recordingLogger } from '../../test/support/loggers.ts';
import { failureCause, startWebhooks } from './webhooks.ts';

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('failureCause keeps the cause fetch hides behind "fetch failed"', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  assert.equal(
    failureCause(new TypeError('fetch failed', { cause: refused })),
    'fetch failed: connect ECONNREFUSED 127.0.0.1:9',
  );
  assert.equal(failureCause(Object.assign(new Error('boom'), { code: 'EX' })), 'EX: boom');
});

test('a receiver that is down: the cause is logged, records are dead-lettered, no listener warning', async (t) => {
  const dir = tempDir(t, 'kappa-webhooks-');
  const log = await openFileLog({ dir: join(dir, 'log') });
  defer(t, () => log.close());
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  defer(t, () => store.close());
  await log.createTopic('alerts', { partitions: 1 });
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  defer(t, () => process.off('warning', onWarning));
  const logger = recordingLogger();
  const url = `http://127.0.0.1:${await closedPort()}/hook`;
  const hooks = await startWebhooks(log, store, [{ name: 'pager', url, maxAttempts: 3, backoffMs: 1 }], logger);
  defer(t, () => hooks.stop());
  const records = 25;
  await log.append(
    'alerts',
    Array.from({ length: records }, (_, i) => ({ value: JSON.stringify({ i }) })),
  );
  const deadline = Date.now() + 30_000;
  while ((hooks.stats.get('pager')?.deadLettered ?? 0) < records) {
    if (Date.now() > deadline) throw new Error(`deliveries: ${JSON.stringify([...hooks.stats])}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
  const failing = logger.warnings.filter((w) => w.includes('retrying'));
  assert.equal(failing.length, 1, 'the start of the failure is said once, not per attempt');
  assert.match(
    failing[0],
    /webhook pager: delivering alerts\/0\/0 to .* failed \(the request failed: fetch failed: .*ECONNREFUSED/,
  );
  const gaveUp = logger.warnings.filter((w) => w.includes('gave up'));
  assert.equal(gaveUp.length, records);
  assert.match(
    gaveUp[0],
    /after 3 attempts \(the request failed: fetch failed: .*ECONNREFUSED.*\); it is in alerts\.webhook-dlq/,
  );
  assert.deepEqual(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
    [],
  );
});
