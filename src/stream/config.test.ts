import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadFailure } from './config.ts';

test('a syntax error from esbuild gives its reason and line:col, not "Transform failed with 1 error:"', () => {
  const err = new Error(
    'Transform failed with 1 error:\n/tmp/app/kappa.config.ts:6:129: ERROR: Expected ")" but found "]"',
  );
  assert.deepEqual(loadFailure(err, '/tmp/app/kappa.config.ts'), {
    reason: 'syntax error: Expected ")" but found "]"',
    line: 6,
    column: 130,
  });
});

test('another load error gives its first line and the first stack frame in the config', () => {
  const err = new TypeError('view name "Bad" must be a SQL name');
  err.stack = `TypeError: view name "Bad" must be a SQL name\n    at view (/k/src/stream/dsl.ts:268:11)\n    at /tmp/app/kappa.config.ts:9:3`;
  assert.deepEqual(loadFailure(err, '/tmp/app/kappa.config.ts'), {
    reason: 'view name "Bad" must be a SQL name',
    line: 9,
    column: 3,
  });
});
