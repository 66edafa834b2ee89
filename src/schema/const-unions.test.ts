import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteConstUnions } from './const-unions.ts';
import { Type } from './index.ts';

describe('rewriteConstUnions', () => {
  test("turns TypeBox's union of literals into an enum, wherever it is nested", () => {
    const schema = Type.Object({
      a: Type.Array(Type.Union([Type.Literal('x'), Type.Literal(2), Type.Literal(true), Type.Null()])),
      b: Type.Union([Type.Literal('p'), Type.Literal('q')]),
    });
    const rewritten = JSON.parse(JSON.stringify(rewriteConstUnions(schema)));
    assert.deepEqual(rewritten.properties.b, { enum: ['p', 'q'] });
    // Null() is `{ type: 'null' }` without a const: that union must stay an anyOf.
    assert.ok(Array.isArray(rewritten.properties.a.items.anyOf));
  });

  test('never mutates its input and shares the subtrees it did not change', () => {
    const schema = Type.Object({
      r: Type.Union([Type.Literal('n'), Type.Literal('s')]),
      o: Type.Object({ x: Type.Number() }),
    });
    const before = JSON.stringify(schema);
    const rewritten = rewriteConstUnions(schema) as unknown as typeof schema;
    assert.equal(JSON.stringify(schema), before);
    assert.notEqual(rewritten, schema);
    assert.equal(rewritten.properties.o, schema.properties.o);
    const untouched = Type.Object({ x: Type.Number() });
    assert.equal(rewriteConstUnions(untouched), untouched);
  });

  test('leaves alternatives that would accept more or less than their constant', () => {
    const keep = [
      { anyOf: [{ const: 1, type: 'string' }] }, // can never match: rewriting would accept 1
      { anyOf: [{ const: 'a', minLength: 3 }] }, // a further keyword
      { anyOf: [{ const: 'a' }], enum: ['a', 'b'] }, // an enum already sits beside it
    ];
    for (const schema of keep) assert.equal(rewriteConstUnions(schema), schema, JSON.stringify(schema));
  });

  test('does not look inside data keywords', () => {
    const schema = { const: { anyOf: [{ const: 1 }] }, default: { anyOf: [{ const: 2 }] } };
    assert.equal(rewriteConstUnions(schema), schema);
  });
});
