/**
 * The kept type check (check-cache.ts): reused while everything the check saw is the same, checked
 * again after any change to it, and never kept where the cache directory is not private.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CheckFootprint, checkKey, emptyFootprint, keepCheck, keptCheck, readText } from './check-cache.ts';
import type { ConfigDiagnostic } from './check.ts';

const FINDING: ConfigDiagnostic = {
  file: '/x/kappa.config.ts',
  line: 6,
  column: 51,
  length: 6,
  code: 2551,
  message: "Property 'regoin' does not exist",
  syntax: false,
};

/** A project with a config and a helper it imports, the footprint of a check of it, and a cache root. */
function setup(t: { after(fn: () => void): void }): { dir: string; root: string; seen: CheckFootprint; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-check-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'cache-root');
  mkdirSync(root);
  writeFileSync(join(dir, 'kappa.config.ts'), 'import { x } from "./helper";\nexport default x;\n');
  writeFileSync(join(dir, 'helper.ts'), '\uFEFFexport const x = 1;\n');
  mkdirSync(join(dir, 'lib'));
  const seen = emptyFootprint();
  for (const f of ['kappa.config.ts', 'helper.ts']) seen.reads.set(join(dir, f), readText(join(dir, f)));
  seen.reads.set(join(dir, 'tsconfig.json'), undefined);
  seen.files.set(join(dir, 'helper.ts'), true);
  seen.files.set(join(dir, 'helper.tsx'), false);
  seen.directories.set(join(dir, 'lib'), true);
  seen.directories.set(join(dir, 'node_modules'), false);
  return { dir, root, seen, key: checkKey(join(dir, 'kappa.config.ts'), ['checker v1']) };
}

test('findings are reused while nothing the check saw changed, byte-order mark or not', (t) => {
  const { root, seen, key } = setup(t);
  assert.equal(keptCheck(key, root), null, 'nothing kept yet');
  keepCheck(key, seen, [FINDING], root);
  assert.deepEqual(keptCheck(key, root), [FINDING]);
  assert.equal(keptCheck(checkKey('/other/kappa.config.ts', ['checker v1']), root), null, 'another config');
  assert.equal(keptCheck(checkKey(join(root, '..', 'kappa.config.ts'), ['checker v2']), root), null, 'another checker');
});

test('any change to what the check saw makes the next start check again', async (t) => {
  const changes: [string, (dir: string) => void][] = [
    ['an imported file edited', (dir) => writeFileSync(join(dir, 'helper.ts'), 'export const x = 2;\n')],
    ['a file read removed', (dir) => rmSync(join(dir, 'helper.ts'))],
    ['a file that was not there appears', (dir) => writeFileSync(join(dir, 'tsconfig.json'), '{}')],
    ['a path resolution looked for appears', (dir) => writeFileSync(join(dir, 'helper.tsx'), '')],
    ['a folder appears', (dir) => mkdirSync(join(dir, 'node_modules'))],
    ['a folder goes', (dir) => rmSync(join(dir, 'lib'), { recursive: true })],
  ];
  for (const [what, change] of changes) {
    await t.test(what, (tt) => {
      const { dir, root, seen, key } = setup(tt);
      keepCheck(key, seen, [FINDING], root);
      change(dir);
      assert.equal(keptCheck(key, root), null);
    });
  }
});

test('a damaged record is a miss, not an error', (t) => {
  const { root, seen, key } = setup(t);
  keepCheck(key, seen, [], root);
  writeFileSync(join(root, `kappa-cache-${process.getuid?.() ?? 'user'}`, `check-${key}.json`), '{"reads": 1');
  assert.equal(keptCheck(key, root), null);
});

test(
  'nothing is kept or read where the cache directory is not private',
  { skip: process.getuid?.() === undefined },
  (t) => {
    const { root, seen, key } = setup(t);
    const cache = join(root, `kappa-cache-${process.getuid!()}`);
    mkdirSync(cache, { mode: 0o777 });
    chmodSync(cache, 0o777);
    keepCheck(key, seen, [FINDING], root);
    assert.equal(keptCheck(key, root), null);
    chmodSync(cache, 0o700);
    assert.equal(keptCheck(key, root), null, 'nothing was written while it was open to others');
  },
);

test('a record is kept while it is used, and removed after two days unused when a check is kept', (t) => {
  const { root, seen, key } = setup(t);
  const cache = join(root, `kappa-cache-${process.getuid?.() ?? 'user'}`);
  keepCheck(key, seen, [FINDING], root);
  const old = join(cache, 'check-0123456789abcdef0123456789abcdef.json');
  writeFileSync(old, '{}');
  const threeDaysAgo = new Date(Date.now() - 3 * 24 * 3600_000);
  utimesSync(old, threeDaysAgo, threeDaysAgo);
  utimesSync(join(cache, `check-${key}.json`), threeDaysAgo, threeDaysAgo);
  assert.deepEqual(keptCheck(key, root), [FINDING], 'used: its age starts again');
  keepCheck(checkKey('/another/kappa.config.ts', ['checker v1']), seen, [], root);
  assert.equal(existsSync(old), false, 'unused for three days: removed');
  assert.deepEqual(keptCheck(key, root), [FINDING], 'the one just used stays');
});
