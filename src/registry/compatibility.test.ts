import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPATIBILITY_LEVELS } from '../formats/index.ts';
import { compatibilityMessages, versionsToCheck } from './compatibility.ts';
import { toyCodec, toySchema } from './test-helpers.ts';

const codec = toyCodec();
const parse = (...fields: string[]) => codec.parse(toySchema('R', ...fields));
const v1 = { version: 1, schema: parse('a:int') };
const v2 = { version: 2, schema: parse('a:int', 'b:int=0') };

test('which versions a level checks: the latest, every one for *_TRANSITIVE, none for NONE', () => {
  const live = [1, 2, 3];
  const expected: Record<string, number[]> = {
    BACKWARD: [3],
    FORWARD: [3],
    FULL: [3],
    BACKWARD_TRANSITIVE: [1, 2, 3],
    FORWARD_TRANSITIVE: [1, 2, 3],
    FULL_TRANSITIVE: [1, 2, 3],
    NONE: [],
  };
  for (const level of COMPATIBILITY_LEVELS) assert.deepEqual(versionsToCheck(level, live), expected[level], level);
  assert.deepEqual(versionsToCheck('BACKWARD', []), []);
});

test('the direction of each level, with messages naming version, field path and rule', () => {
  // Adds a field without a default: a new reader cannot read old data (BACKWARD breaks), old readers
  // ignore it (FORWARD holds).
  const added = parse('a:int', 'b:int=0', 'c:string');
  const backward = compatibilityMessages(codec, 'BACKWARD', added, [v2]);
  assert.deepEqual(backward, [
    'version 2: R.c: reader field c is missing from the writer and has no default (BACKWARD: the new schema must read data written with version 2)',
  ]);
  assert.deepEqual(compatibilityMessages(codec, 'FORWARD', added, [v2]), []);
  assert.equal(compatibilityMessages(codec, 'FULL', added, [v2]).length, 1);
  // Removes a field that the old schema's readers need and that has no default there: FORWARD breaks.
  const removed = parse('b:int=0');
  assert.deepEqual(compatibilityMessages(codec, 'BACKWARD', removed, [v2]), []);
  assert.deepEqual(compatibilityMessages(codec, 'FORWARD', removed, [v1, v2]), [
    'version 1: R.a: reader field a is missing from the writer and has no default (FORWARD: version 1 must read data written with the new schema)',
    'version 2: R.a: reader field a is missing from the writer and has no default (FORWARD: version 2 must read data written with the new schema)',
  ]);
  assert.equal(compatibilityMessages(codec, 'FULL_TRANSITIVE', removed, [v1, v2]).length, 2);
  assert.deepEqual(compatibilityMessages(codec, 'NONE', parse('z:string'), [v1, v2]), []);
});

test('a schema of another type is incompatible whatever the fields', () => {
  const proto = { ...parse('a:int'), type: 'PROTOBUF' as const };
  assert.match(
    compatibilityMessages(codec, 'BACKWARD', proto, [v1])[0],
    /version 1: the schema type changed from AVRO to PROTOBUF/,
  );
});
