import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isKappaError } from '../errors.ts';
import {
  definitionJson,
  parseDefinitionJson,
  validateCheckpoints,
  validateDefinition,
  validateDeltas,
} from './definition.ts';
import type { VersionTable } from './types.ts';
import { versionTable } from './test-helpers.ts';

const base = versionTable('sales', {
  keys: ['region TEXT'],
  state: ['first_at INTEGER min', 'first_amount REAL earliest first_at'],
  outputs: ['first_amount'],
});

function refused(def: unknown, message: RegExp): void {
  assert.throws(
    () => validateDefinition(def as VersionTable),
    (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && message.test(err.message),
  );
}

describe('view definitions', () => {
  test('a well-formed definition passes', () => {
    validateDefinition(base);
  });

  test('names must be SQL identifiers of at most 63 characters', () => {
    refused({ ...base, name: 'a b' }, /not a valid name/);
    refused({ ...base, name: 'x'.repeat(64) }, /not a valid name/);
    refused({ ...base, name: 'x'.repeat(60) }, /table name .* longer than 63/);
    refused({ ...base, keyColumns: [{ name: 'é', type: 'TEXT' }] }, /column name/);
  });

  test('view names the store uses for itself are reserved', () => {
    for (const name of ['kappa_views', 'KAPPA_x', 'sqlite_master', 'sales__v2']) refused({ ...base, name }, /reserved/);
    refused({ ...base, keyColumns: [{ name: 'kappa_unit', type: 'INTEGER' }] }, /reserved/);
  });

  test('column names must be unique, ignoring case, across key and state columns and across outputs', () => {
    refused({ ...base, keyColumns: [{ name: 'First_At', type: 'TEXT' }] }, /appears twice/);
    refused({ ...base, outputColumns: [{ name: 'REGION', sql: '1' }] }, /repeats/);
  });

  test('earliest and latest need a by-column merged with min and max respectively', () => {
    refused({ ...base, stateColumns: [base.stateColumns[1]] }, /must be another state column/);
    refused(
      { ...base, stateColumns: [{ ...base.stateColumns[0], merge: { kind: 'max' } }, base.stateColumns[1]] },
      /merged with "min"/,
    );
    refused(
      { ...base, stateColumns: [{ name: 'v', type: 'TEXT', merge: { kind: 'latest', by: 'v' } }] },
      /another state column/,
    );
  });

  test('a custom merge needs a function and a TEXT column', () => {
    refused(
      { ...base, stateColumns: [{ name: 'hll', type: 'TEXT', merge: { kind: 'custom' } }] },
      /without a merge function/,
    );
    refused(
      { ...base, stateColumns: [{ name: 'hll', type: 'INTEGER', merge: { kind: 'custom', merge: () => null } }] },
      /must be TEXT/,
    );
  });

  test('types, merge kinds, versions and output SQL are checked', () => {
    refused({ ...base, keyColumns: [{ name: 'k', type: 'VARCHAR' }] }, /INTEGER, REAL, TEXT/);
    refused({ ...base, stateColumns: [{ name: 's', type: 'REAL', merge: { kind: 'avg' } }] }, /merge rule/);
    refused({ ...base, version: 1.5 }, /version/i);
    refused({ ...base, fingerprint: '' }, /fingerprint/);
    refused({ ...base, outputColumns: [{ name: 'o', sql: '  ' }] }, /SQL expression/);
    refused({ ...base, keyColumns: [], outputColumns: [] }, /at least one key column or output column/);
  });

  test('the catalog JSON has a fixed shape, and custom merges come back refusing to run', () => {
    const custom: VersionTable = {
      ...base,
      stateColumns: [{ name: 'hll', type: 'TEXT', merge: { kind: 'custom', merge: (a) => a } }],
      outputColumns: [],
    };
    const reordered = { extra: 1, ...Object.fromEntries(Object.entries(custom).reverse()) } as unknown as VersionTable;
    assert.equal(definitionJson(reordered), definitionJson(custom));
    const back = parseDefinitionJson(definitionJson(custom));
    const rule = back.stateColumns[0].merge;
    assert.equal(rule.kind, 'custom');
    assert.throws(() => (rule as { merge: (a: unknown, b: unknown) => unknown }).merge(1, 2), /ensureVersion/);
  });
});

describe('deltas and checkpoints', () => {
  test('deltas need the definition’s arity and storable values', () => {
    validateDeltas(base, [
      { key: [null], state: [1, 2.5] },
      { key: ['x'], state: [5n, null] },
    ]);
    const bad = (deltas: unknown, message: RegExp) =>
      assert.throws(
        () => validateDeltas(base, deltas as never),
        (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && message.test(err.message),
      );
    bad([{ key: ['x'], state: [1] }], /Delta 0 .* 1 key value\(s\) and 2 state value\(s\)/);
    bad(
      [
        { key: ['x'], state: [1, 1] },
        { key: [], state: [1, 1] },
      ],
      /Delta 1/,
    );
    bad([{ key: [true], state: [1, 1] }], /"region" needs a string, a finite number or null, got true/);
    // The fold never hands over these (it dead-letters their records); the check is the invariant.
    bad(
      [{ key: [Number.POSITIVE_INFINITY], state: [1, 1] }],
      /"region" needs a string, a finite number or null, got Infinity/,
    );
    bad([{ key: ['x'], state: [2n ** 63n, 1] }], /"first_at" .* got 9223372036854775808n/);
    validateDeltas(base, [{ key: ['x'], state: [Number.POSITIVE_INFINITY, -(2n ** 63n)] }]);
    bad([{ key: ['x'], state: [1, Number.NaN] }], /"first_amount" .* got NaN/);
    bad([{ key: ['x'], state: [{}, 1] }], /got an object/);
    bad('nope', /must be an array/);
  });

  test('custom columns take any JSON value', () => {
    const custom: VersionTable = {
      ...base,
      stateColumns: [{ name: 'hll', type: 'TEXT', merge: { kind: 'custom', merge: (a) => a } }],
    };
    validateDeltas(custom, [{ key: ['x'], state: [{ registers: [1, 2] }] }]);
    assert.throws(() => validateDeltas(custom, [{ key: ['x'], state: [undefined] }]), /JSON value/);
  });

  test('checkpoints need whole, non-negative positions and a numeric watermark', () => {
    const ok = { topic: 't', partition: 0, offset: 0, watermark: -Infinity, outputSequence: 0 };
    validateCheckpoints('v', [ok]);
    for (const bad of [
      { ...ok, topic: '' },
      { ...ok, partition: 1.5 },
      { ...ok, offset: -1 },
      { ...ok, watermark: Number.NaN },
      { ...ok, outputSequence: undefined },
    ]) {
      assert.throws(() => validateCheckpoints('v', [ok, bad as never]), /Checkpoint 1 of view "v" is malformed/);
    }
  });
});
