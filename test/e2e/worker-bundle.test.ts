/**
 * The worker threads run a bundle of the worker code and the user's config (worker-bundle.ts). A
 * config and what it imports must behave there as they do on the main thread: a local helper that
 * reads a file next to itself through `import.meta.url`, a local CommonJS file using `__dirname`,
 * and an installed package (ESM, with an `exports` map) that reads its own files. And when the
 * bundle cannot be trusted (a file modified "in the future"), the threads load the sources through
 * tsx instead, saying why, with the same rows. The bundle file is gone once the threads are up.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openFileLog } from '../../src/log/index.ts';
import { Engine, loadApp } from '../../src/stream/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';

const SRC = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

const CONFIG = `
import { Type, count, defineApp, from, topic, view } from ${JSON.stringify(SRC)};
import { regionOf } from './lib/regions.ts';
import { labelOf } from 'fake-labels';
import { suffix } from './lib/suffix.cjs';
const Sale = Type.Object({ store: Type.String() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.store });
export default defineApp({
  topics: [sales],
  views: [view('by_region', from(sales).groupBy((s) => ({ region: regionOf(s.store) + '/' + labelOf(s.store) + suffix() })).aggregate({ n: count() }))],
});
`;

function writeProject(root: string): string {
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(root, 'lib'));
  writeFileSync(join(root, 'lib', 'regions.json'), JSON.stringify({ s1: 'north', s2: 'south' }));
  writeFileSync(
    join(root, 'lib', 'regions.ts'),
    `import { readFileSync } from 'node:fs';\nconst table = JSON.parse(readFileSync(new URL('./regions.json', import.meta.url), 'utf8'));\nexport function regionOf(store: string): string { return table[store] ?? 'unknown'; }\n`,
  );
  writeFileSync(join(root, 'lib', 'suffix.txt'), '!');
  writeFileSync(
    join(root, 'lib', 'suffix.cjs'),
    `const { readFileSync } = require('node:fs');\nconst s = readFileSync(__dirname + '/suffix.txt', 'utf8');\nexports.suffix = () => s;\n`,
  );
  const pkg = join(root, 'node_modules', 'fake-labels');
  mkdirSync(join(pkg, 'data'), { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'fake-labels', type: 'module', exports: { '.': './index.js' } }),
  );
  writeFileSync(join(pkg, 'data', 'labels.json'), JSON.stringify({ s1: 'A', s2: 'B' }));
  writeFileSync(
    join(pkg, 'index.js'),
    `import { readFileSync } from 'node:fs';\nconst labels = JSON.parse(readFileSync(new URL('./data/labels.json', import.meta.url), 'utf8'));\nexport function labelOf(store) { return labels[store] ?? '?'; }\n`,
  );
  const config = join(root, 'kappa.config.ts');
  writeFileSync(config, CONFIG);
  return config;
}

async function build(
  root: string,
  config: string,
  name: string,
  workers: number,
): Promise<{ rows: unknown[]; warnings: string[] }> {
  const dir = join(root, name);
  const warnings: string[] = [];
  const logger = { info() {}, warn: (m: string) => warnings.push(m) };
  const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  await log.createTopic('sales', { partitions: 2 });
  await log.append(
    'sales',
    ['s1', 's2', 's1', 's3'].map((store) => ({ key: store, value: JSON.stringify({ store }) })),
  );
  const engine = new Engine({
    log,
    store,
    control: store,
    app: await loadApp(config),
    logger,
    workers,
    configPath: config,
    flushIntervalMs: 20,
  });
  try {
    await engine.start();
    const deadline = Date.now() + 30_000;
    while (
      !engine.status().every((t) => t.worker !== null || workers === 0) ||
      engine.status().reduce((s, t) => s + t.eventsProcessed, 0) < 4
    ) {
      if (Date.now() > deadline) throw new Error('the engine did not process the events');
      await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 20))]);
    }
    await engine.stop();
    return { rows: (await store.query('SELECT region, n FROM by_region ORDER BY region')).rows, warnings };
  } finally {
    await engine.close();
    await store.close();
    await log.close();
  }
}

const EXPECTED = [
  { region: 'north/A!', n: 2 },
  { region: 'south/B!', n: 1 },
  { region: 'unknown/?!', n: 1 },
];

describe('worker threads run the config bundled', () => {
  let root: string;
  let config: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kappa-bundle-'));
    config = writeProject(root);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test(
    'files read through import.meta.url and __dirname, and an installed package reading its own files, give the rows they give on the main thread',
    { timeout: 60_000 },
    async () => {
      const main = await build(root, config, 'main', 0);
      assert.deepEqual(main.rows, EXPECTED);
      const workers = await build(root, config, 'workers', 2);
      assert.deepEqual(workers.rows, EXPECTED);
      assert.deepEqual(workers.warnings, [], 'the bundle was used, with no fallback');
      assert.deepEqual(
        readdirSync(tmpdir()).filter((n) => n.startsWith(`kappa-worker-${process.pid}-`)),
        [],
        'the bundle file is removed once the threads are up',
      );
    },
  );

  test(
    'a file modified in the future makes the threads load the sources through tsx, saying why, with the same rows',
    { timeout: 60_000 },
    async () => {
      const future = new Date(Date.now() + 3_600_000);
      utimesSync(join(root, 'lib', 'regions.ts'), future, future);
      try {
        const { rows, warnings } = await build(root, config, 'future', 1);
        assert.deepEqual(rows, EXPECTED);
        assert.equal(warnings.length, 1);
        assert.match(
          warnings[0],
          /load the config through tsx, which makes them slower to start and larger, because .*regions\.ts was modified in the future/,
        );
      } finally {
        const now = new Date();
        utimesSync(join(root, 'lib', 'regions.ts'), now, now);
      }
    },
  );
});
