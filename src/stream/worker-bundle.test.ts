/**
 * What goes into the worker threads' bundle (worker-bundle.ts): the Kafka log adapter and the
 * Kafka client only for a process whose log is on Kafka. With them inside, esbuild hoists the
 * client's import to the top of the bundle, so every thread of an embedded start would load it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleWorker } from './worker-bundle.ts';

const CONFIG = fileURLToPath(new URL('../../examples/sales/kappa.config.ts', import.meta.url));
const KAFKA_LOG = fileURLToPath(new URL('../log/kafka/', import.meta.url));

async function bundled(logKind: 'file' | 'kafka'): Promise<{ code: string; kafkaInputs: string[] }> {
  const bundle = await bundleWorker(CONFIG, { logKind });
  try {
    return {
      code: readFileSync(fileURLToPath(bundle.url), 'utf8'),
      kafkaInputs: bundle.inputs.filter((p) => p.startsWith(KAFKA_LOG)),
    };
  } finally {
    bundle.dispose();
  }
}

test(
  'the bundle for a file log holds neither the Kafka log adapter nor the Kafka client',
  { timeout: 60_000 },
  async () => {
    const { code, kafkaInputs } = await bundled('file');
    assert.deepEqual(kafkaInputs, []);
    assert.doesNotMatch(code, /@platformatic\/kafka/);
    assert.match(code, /bundled for a log in the data directory, so it has no Kafka log adapter/);
  },
);

test('the bundle for a Kafka log holds the adapter and imports the Kafka client', { timeout: 60_000 }, async () => {
  const { code, kafkaInputs } = await bundled('kafka');
  assert.ok(kafkaInputs.includes(`${KAFKA_LOG}index.ts`), kafkaInputs.join('\n'));
  assert.match(code, /from "file:[^"]*@platformatic\/kafka[^"]*"/);
});
