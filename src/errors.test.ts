import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CATALOGUE, KappaError } from './errors.ts';

const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

test('every error code in the catalogue is documented in docs/errors.md with its status', () => {
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    const row = docs.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is missing from docs/errors.md`);
    assert.match(
      row,
      new RegExp(`\\| ${entry.status} \\| ${entry.retriable ? 'yes' : 'no'} \\|`),
      `${code}: docs/errors.md disagrees on status or retriable`,
    );
  }
});

test('docs/errors.md lists no code that the catalogue lacks', () => {
  const documented = [...docs.matchAll(/^\| `(KAPPA_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.ok(documented.length > 0);
  for (const code of documented)
    assert.ok(code in ERROR_CATALOGUE, `docs/errors.md lists ${code}, which src/errors.ts does not define`);
});

test('a KappaError carries its code, status, retriable flag and an HTTP error body', () => {
  const err = new KappaError('KAPPA_UNKNOWN_TOPIC', 'Topic "x" does not exist.', { topic: 'x' });
  assert.equal(err.status, 404);
  assert.equal(err.retriable, false);
  assert.deepEqual(err.toJSON(), {
    error: { code: 'KAPPA_UNKNOWN_TOPIC', message: 'Topic "x" does not exist.', details: { topic: 'x' } },
  });
});
