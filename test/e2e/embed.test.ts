/**
 * The embedding example (examples/embed/main.ts) as a user runs it: a child process that imports
 * Kappa only through the package's subpath exports (`kappa/log`, `kappa/sqlite`, `kappa/engine`,
 * `kappa/server`), runs the sales pipelines over a data directory and prints the view's rows.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../support/cleanup.ts';
import { runCommand } from '../support/processes.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

test('the embedding example runs on the subpath exports and reads its view', { timeout: 90_000 }, async (t) => {
  const dir = join(tempDir(t, 'kappa-embed-test-'), 'data');
  const run = await runCommand(process.execPath, ['--import', 'tsx', 'examples/embed/main.ts', dir], {
    cwd: REPO,
    timeoutMs: 80_000,
    t,
  });
  assert.equal(run.code, 0, `the example failed:\n${run.stderr}`);
  assert.match(run.stdout, /^north 2026: 20\.00 over 2 orders$/m);
  assert.match(run.stdout, /^south 2026: 3\.00 over 1 orders$/m);
  assert.match(run.stdout, /the same over HTTP: http:\/\/127\.0\.0\.1:\d+\/v1\/views\/aggregated_sales/);
  assert.ok(existsSync(join(dir, 'views.db')), 'the views live in the data directory it was given');
});
