/**
 * What goes into the worker threads' bundle (worker-bundle.ts): the Kafka log adapter and the
 * Kafka client only for a process whose log is on Kafka. With them inside, esbuild hoists the
 * client's import to the top of the bundle, so every thread of an embedded start would load it.
 * Kappa's own code comes from the kept runtime (worker-runtime.ts) unless the config reaches
 * inside Kappa; so does the code a view version keeps (bundleConfig).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleConfig, bundleWorker, loadBundledApp } from './worker-bundle.ts';
import { withoutTsx } from './worker-pool.ts';

const CONFIG = fileURLToPath(new URL('../../examples/sales/kappa.config.ts', import.meta.url));
const KAFKA_LOG = fileURLToPath(new URL('../log/kafka/', import.meta.url));

/** The code a thread loads: the bundle, and the kept runtime it imports (worker-runtime.ts), if it does. */
async function bundled(logKind: 'file' | 'kafka'): Promise<{ code: string; kafkaInputs: string[] }> {
  const bundle = await bundleWorker(CONFIG, { logKind });
  try {
    let code = readFileSync(fileURLToPath(bundle.url), 'utf8');
    const runtime = /^import [^\n]* from "(file:[^"]*\/runtime-[^"]*\.mjs)";/m.exec(code);
    if (runtime !== null) code = `${readFileSync(fileURLToPath(runtime[1]), 'utf8')}\n${code}`;
    return { code, kafkaInputs: bundle.inputs.filter((p) => p.startsWith(KAFKA_LOG)) };
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
  'TypeBox and ajv are inside the bundle (a thread does not load their hundreds of modules); the codecs are neither bundled nor imported at start',
  {
    timeout: 60_000,
  },
  async () => {
    const { code } = await bundled('file');
    const imports = [...code.matchAll(/^import [^\n]* from "([^"]+)";/gm)].map((m) => m[1]);
    assert.ok(!imports.some((i) => /@sinclair\/typebox|\/ajv\//.test(i)), imports.join('\n'));
    // avsc and protobufjs load from where they are installed when a schema of theirs is first
    // parsed (src/formats/libs.ts), so a thread of JSON topics never loads them.
    assert.ok(!imports.some((i) => /\/avsc\/|\/protobufjs\//.test(i)), imports.join('\n'));
    assert.match(code, /\(["']avsc["']\)/, 'the bundle loads avsc on first use');
    assert.doesNotMatch(code, /_createBranchConstructor/, 'avsc itself is bundled');
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

test(
  "a config that imports Kappa by its entry module gets Kappa's kept runtime; one that reaches a file inside Kappa gets one whole bundle",
  { timeout: 60_000 },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'kappa-bundle-split-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const src = fileURLToPath(new URL('../', import.meta.url));
    const config = (name: string, from: string): string => {
      const path = join(root, name);
      writeFileSync(
        path,
        `import { defineApp, topic } from ${JSON.stringify(from)};\nexport default defineApp({ topics: [topic('t', { partitions: 1 })], views: [] });\n`,
      );
      return path;
    };
    const runtimeImport = /^import [^\n]* from "file:[^"]*\/runtime-[^"]*\.mjs";/m;
    for (const [file, from, split] of [
      ['entry.ts', join(src, 'index.ts'), true],
      ['deep.ts', join(src, 'stream', 'index.ts'), false],
    ] as const) {
      const bundle = await bundleWorker(config(file, from), { logKind: 'file' });
      try {
        const code = readFileSync(fileURLToPath(bundle.url), 'utf8');
        assert.equal(runtimeImport.test(code), split, `${file}: imports the kept runtime`);
        // Either way the thread gets Kappa's sources as inputs, for the check that none changed meanwhile.
        assert.ok(bundle.inputs.includes(join(src, 'stream', 'worker.ts')), `${file}: inputs`);
        assert.ok(code.length < 100_000 === split, `${file}: ${code.length} bytes`);
      } finally {
        bundle.dispose();
      }
    }
  },
);

test(
  "a version keeps Kappa's kept runtime and the config on top as its code, self-contained; a config that reaches inside Kappa keeps one module",
  { timeout: 60_000 },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'kappa-kept-code-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const src = fileURLToPath(new URL('../', import.meta.url));
    for (const [name, from, split] of [
      ['entry.ts', join(src, 'index.ts'), true],
      ['deep.ts', join(src, 'stream', 'index.ts'), false],
    ] as const) {
      const path = join(root, name);
      writeFileSync(
        path,
        `import { defineApp, topic } from ${JSON.stringify(from)};\nexport default defineApp({ topics: [topic('t_${name.slice(0, -3)}', { partitions: 1 })], views: [] });\n`,
      );
      const code = await bundleConfig(path, { logKind: 'file' });
      assert.equal(code.startsWith('// kappa kept code: a runtime module, then the config module;'), split, name);
      // Stored with the version, it must not need the cache's file, which a later start may remove.
      assert.ok(!/kappa-cache|runtime-[0-9a-f]{16}-/.test(code), `${name}: names the kept runtime's file`);
      // An import() anywhere makes tsx rewrite the whole module on load (0.25 s more for the runtime).
      assert.ok(!/\bimport\(/.test(code), `${name}: holds an import()`);
      const app = await loadBundledApp(code);
      assert.deepEqual(
        app.topics.map((x) => x.name),
        [`t_${name.slice(0, -3)}`],
      );
    }
  },
);
