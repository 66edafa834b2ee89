import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvariantError, assertIncreasing, assertNotBackwards, invariant } from './assert.ts';

test('invariant throws an InvariantError naming the broken rule, and builds lazy messages only on failure', () => {
  assert.doesNotThrow(() => invariant(true, () => assert.fail('message built for a kept invariant')));
  assert.throws(
    () => invariant(false, 'a task is released with work not drained'),
    (err: unknown) =>
      err instanceof InvariantError && err.message === 'invariant: a task is released with work not drained',
  );
  assert.throws(() => invariant(0, () => 'lazy'), /invariant: lazy/);
});

test('offsets must climb and checkpoints never move backwards', () => {
  assertIncreasing(4, 5, 'append to sales/0');
  assert.throws(
    () => assertIncreasing(5, 5, 'append to sales/0'),
    /invariant: append to sales\/0: offset 5 does not follow 5/,
  );
  assertNotBackwards(10, 10, 'checkpoint');
  assertNotBackwards(10, 11, 'checkpoint');
  assert.throws(
    () => assertNotBackwards(10, 9, 'checkpoint of totals v1 for sales/0'),
    /would go backwards \(10 → 9\)/,
  );
});
