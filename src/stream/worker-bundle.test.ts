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
import { withoutTsx } from './worker-pool.ts';

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
    // Tested without assert.match: a failure would print the whole bundle.
    assert.ok(!/@platformatic\/kafka/.test(code), 'the bundle mentions @platformatic/kafka');
    assert.ok(
      /bundled for a log in the data directory, so it has no Kafka log adapter/.test(code),
      'the bundle has the stub that stands in for the Kafka log adapter',
    );
  },
);

test(
  'the bundle for a Kafka log holds the adapter with its own broker connections, and no Kafka client package',
  { timeout: 60_000 },
  async () => {
    const { code, kafkaInputs } = await bundled('kafka');
    assert.ok(kafkaInputs.includes(`${KAFKA_LOG}index.ts`), kafkaInputs.join('\n'));
    assert.ok(kafkaInputs.includes(`${KAFKA_LOG}connection.ts`), kafkaInputs.join('\n'));
    // A thread loads the bundle and nothing of a Kafka client's hundreds of modules.
    assert.ok(!/@platformatic\/kafka|kafkajs/.test(code), 'the bundle loads a Kafka client package');
  },
);

test(
  'TypeBox and ajv are inside the bundle (a thread does not load their hundreds of modules); the codecs stay outside',
  {
    timeout: 60_000,
  },
  async () => {
    const { code } = await bundled('file');
    const imports = [...code.matchAll(/^import [^\n]* from "([^"]+)";/gm)].map((m) => m[1]);
    assert.ok(!imports.some((i) => /@sinclair\/typebox|\/ajv\//.test(i)), imports.join('\n'));
    assert.ok(
      imports.some((i) => /\/avsc\//.test(i)),
      imports.join('\n'),
    );
  },
);

test('a bundled thread starts without the options that load tsx, and with the others', () => {
  assert.deepEqual(withoutTsx(['--import', 'tsx', '--conditions', 'kappa-source', '--import=tsx/esm', '--cpu-prof']), [
    '--conditions',
    'kappa-source',
    '--cpu-prof',
  ]);
  assert.deepEqual(withoutTsx(['-r', 'tsx/cjs', '--import', './my-hooks.js', '--loader=tsx']), [
    '--import',
    './my-hooks.js',
  ]);
});
