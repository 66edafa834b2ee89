/**
 * The kept runtime of the worker threads (worker-runtime.ts): built once, used again while every
 * file it was made from is byte for byte the same, built again when one changed or is gone, and not
 * kept at all where its directory is not private.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cachedRuntime, packageJsonOf } from './worker-runtime.ts';

function project(t: { after(fn: () => void): void }): { root: string; files: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'kappa-runtime-test-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const files = [join(root, 'a.ts'), join(root, 'b.ts')];
  writeFileSync(files[0], 'export const a = 1;\n');
  writeFileSync(files[1], 'export const b = 2;\n');
  for (const f of files) aged(f);
  return { root, files };
}

/** Dates a file a minute back: a file modified just before a build is not trusted to be what it read. */
function aged(file: string): void {
  const minuteAgo = new Date(Date.now() - 60_000);
  utimesSync(file, minuteAgo, minuteAgo);
}

/** A build that counts its calls and bundles the files' text (the test's stand-in for esbuild). */
function counting(files: string[]): {
  build: () => Promise<{ code: Uint8Array; files: string[] }>;
  calls: () => number;
} {
  let calls = 0;
  return {
    build: async () => {
      calls++;
      return { code: Buffer.from(files.map((f) => readFileSync(f, 'utf8')).join('')), files };
    },
    calls: () => calls,
  };
}

test('a runtime is built once and used again while its files are unchanged', async (t) => {
  const { root, files } = project(t);
  const { build, calls } = counting(files);
  const first = await cachedRuntime('s1', build, root);
  assert.ok(first !== null);
  const second = await cachedRuntime('s1', build, root);
  assert.equal(calls(), 1);
  assert.equal(second?.url, first.url);
  assert.equal(readFileSync(fileURLToPath(first.url), 'utf8'), 'export const a = 1;\nexport const b = 2;\n');
  // Another slot (other options) is another runtime.
  await cachedRuntime('s2', build, root);
  assert.equal(calls(), 2);
});

test('a changed or removed file makes the next start build again', async (t) => {
  const { root, files } = project(t);
  const { build, calls } = counting(files);
  const first = await cachedRuntime('s', build, root);
  writeFileSync(files[1], 'export const b = 3;\n');
  aged(files[1]);
  const second = await cachedRuntime('s', build, root);
  assert.equal(calls(), 2);
  assert.notEqual(second?.url, first?.url);
  assert.match(readFileSync(fileURLToPath(second!.url), 'utf8'), /b = 3/);
  // The first bundle's file is still there (a process may be loading it) and never changes.
  assert.match(readFileSync(fileURLToPath(first!.url), 'utf8'), /b = 2/);

  rmSync(files[0]);
  const { build: build2, calls: calls2 } = counting([files[1]]);
  await cachedRuntime('s', build2, root);
  assert.equal(calls2(), 1, 'a file of the kept runtime is gone: built again');
});

test('a file modified while the runtime was built is used this once and not kept', async (t) => {
  const { root, files } = project(t);
  let calls = 0;
  const build = async (): Promise<{ code: Uint8Array; files: string[] }> => {
    calls++;
    writeFileSync(files[0], `export const a = ${calls};\n`); // changes under the build
    return { code: Buffer.from('export {};\n'), files };
  };
  assert.ok((await cachedRuntime('s', build, root)) !== null);
  assert.ok((await cachedRuntime('s', build, root)) !== null);
  assert.equal(calls, 2);
});

test(
  'nothing is kept in a directory other users can write to',
  { skip: process.getuid?.() === undefined },
  async (t) => {
    const { root, files } = project(t);
    const { build, calls } = counting(files);
    const first = await cachedRuntime('s', build, root);
    assert.ok(first !== null);
    chmodSync(join(root, `kappa-cache-${process.getuid!()}`), 0o777);
    assert.equal(await cachedRuntime('s', build, root), null);
    assert.equal(calls(), 1);
  },
);

test('the package.json of an installed file is its package root’s, scoped or not', () => {
  const nm = fileURLToPath(new URL('../../node_modules/', import.meta.url));
  assert.equal(
    packageJsonOf(join(nm, '@sinclair/typebox/build/esm/index.mjs')),
    join(nm, '@sinclair/typebox/package.json'),
  );
  assert.equal(packageJsonOf(join(nm, 'esbuild/lib/main.js')), join(nm, 'esbuild/package.json'));
  assert.equal(packageJsonOf(fileURLToPath(import.meta.url)), null);
});
