import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { JsonDeserializer, JsonSerializer, MockClient, SerdeType } from '@confluentinc/schemaregistry';
import { KappaError } from '../errors.ts';
import { seededRandom } from '../random.ts';
import { ParsedJsonSchema, encodeJson, jsonDecoder, jsonSchemaCodec, type WriterSchemaLookup } from './json-schema.ts';
import type { ParsedSchema, SchemaReference } from './types.ts';

type Schema = boolean | Record<string, unknown>;

const parse = (schema: Schema, references?: SchemaReference[], resolve?: (ref: SchemaReference) => string) =>
  jsonSchemaCodec.parse(JSON.stringify(schema), references, resolve);

interface Case {
  /** Where the case comes from and the rule it shows. */
  name: string;
  writer: Schema;
  reader: Schema;
  compatible: boolean;
  /** For an incompatible pair: the path of a problem that must be reported, and words its rule must contain. */
  path?: string;
  rule?: RegExp;
}

/** "Confluent:" cases are from Confluent's json-schema-provider test data (diff-schema-examples.json), by their description. */
const CASES: Case[] = [
  // Confluent: "Anything can change to empty schema" — the empty schema accepts every document.
  { name: 'anything → {}', writer: { properties: {} }, reader: {}, compatible: true },
  // Confluent: "Detect changes to simple schema type" — TYPE_CHANGED.
  {
    name: 'object → array',
    writer: { type: 'object' },
    reader: { type: 'array' },
    compatible: false,
    path: '#',
    rule: /type changed from object to array/,
  },
  // Confluent: "Detect narrowed change to number schema" — TYPE_NARROWED.
  {
    name: 'number → integer',
    writer: { type: 'number' },
    reader: { type: 'integer' },
    compatible: false,
    path: '#',
    rule: /number to integer/,
  },
  // Confluent: "Detect extended change to number schema" — TYPE_EXTENDED: integer → number widens.
  { name: 'integer → number', writer: { type: 'integer' }, reader: { type: 'number' }, compatible: true },
  // Confluent: "Detect changes to type array" — SUM_TYPE_EXTENDED.
  {
    name: '[object] → [object, array]',
    writer: { type: ['object'] },
    reader: { type: ['object', 'array'] },
    compatible: true,
  },
  // Confluent: "Detect increased minLength string schema" — MIN_LENGTH_INCREASED.
  {
    name: 'minLength 10 → 11',
    writer: { type: 'string', minLength: 10 },
    reader: { type: 'string', minLength: 11 },
    compatible: false,
    path: '#/minLength',
  },
  // Confluent: "Detect decreased minLength string schema" — MIN_LENGTH_DECREASED.
  {
    name: 'minLength 11 → 10',
    writer: { type: 'string', minLength: 11 },
    reader: { type: 'string', minLength: 10 },
    compatible: true,
  },
  // Confluent: "Detect increased maxLength string schema" — MAX_LENGTH_INCREASED.
  {
    name: 'maxLength 10 → 12',
    writer: { type: 'string', maxLength: 10 },
    reader: { type: 'string', maxLength: 12 },
    compatible: true,
  },
  // Confluent: "Detect decreased maxLength string schema" — MAX_LENGTH_DECREASED.
  {
    name: 'maxLength 12 → 10',
    writer: { type: 'string', maxLength: 12 },
    reader: { type: 'string', maxLength: 10 },
    compatible: false,
    path: '#/maxLength',
  },
  // Confluent: "Detect removed pattern from string schema" — PATTERN_REMOVED.
  { name: 'pattern removed', writer: { type: 'string', pattern: '^a' }, reader: { type: 'string' }, compatible: true },
  // Confluent: "Detect changes to pattern string schema" — PATTERN_CHANGED.
  {
    name: 'pattern changed',
    writer: { type: 'string', pattern: 'date-time' },
    reader: { type: 'string', pattern: 'uuid' },
    compatible: false,
    path: '#/pattern',
  },
  // Confluent: "Detect increased maximum number schema" — MAXIMUM_INCREASED.
  {
    name: 'maximum 10 → 11',
    writer: { type: 'number', maximum: 10 },
    reader: { type: 'number', maximum: 11 },
    compatible: true,
  },
  // Confluent: "Detect decreased maximum number schema" — MAXIMUM_DECREASED.
  {
    name: 'maximum 11 → 10',
    writer: { type: 'number', maximum: 11 },
    reader: { type: 'number', maximum: 10 },
    compatible: false,
    path: '#/maximum',
  },
  // Confluent: "Detect increased minimum number schema" — MINIMUM_INCREASED.
  {
    name: 'minimum 10 → 11',
    writer: { type: 'number', minimum: 10 },
    reader: { type: 'number', minimum: 11 },
    compatible: false,
    path: '#/minimum',
  },
  // Exclusive bounds on integers: x > 4 is x ≥ 5, so a reader minimum of 5 reads it.
  {
    name: 'integer exclusiveMinimum 4 → minimum 5',
    writer: { type: 'integer', exclusiveMinimum: 4 },
    reader: { type: 'integer', minimum: 5 },
    compatible: true,
  },
  // Confluent: "Detect reduced multipleOf number schema" — MULTIPLE_OF_REDUCED: every multiple of 10 is one of 2.
  {
    name: 'multipleOf 10 → 2',
    writer: { type: 'number', multipleOf: 10 },
    reader: { type: 'number', multipleOf: 2 },
    compatible: true,
  },
  // Confluent: "Detect changes to multipleOf number schema" — MULTIPLE_OF_CHANGED.
  {
    name: 'multipleOf 10 → 11',
    writer: { type: 'number', multipleOf: 10 },
    reader: { type: 'number', multipleOf: 11 },
    compatible: false,
    path: '#/multipleOf',
  },
  // Confluent: "Detect compatible change to not schema" — NOT_TYPE_NARROWED.
  {
    name: 'not number → not integer',
    writer: { not: { type: 'number' } },
    reader: { not: { type: 'integer' } },
    compatible: true,
  },
  // Confluent: "Detect incompatible change to not schema" — NOT_TYPE_EXTENDED.
  {
    name: 'not integer → not number',
    writer: { not: { type: 'integer' } },
    reader: { not: { type: 'number' } },
    compatible: false,
    path: '#/not',
  },
  // Confluent: "Detect removed enum" — dropping the enum widens.
  { name: 'enum removed', writer: { type: 'string', enum: ['red'] }, reader: { type: 'string' }, compatible: true },
  // Confluent: "Detect compatible changes to enum schema" — ENUM_ARRAY_EXTENDED, inside allOf.
  {
    name: 'enum value added (allOf)',
    writer: { allOf: [{ type: 'string' }, { enum: ['red'] }] },
    reader: { allOf: [{ enum: ['red', 'blue'] }, { type: 'string' }] },
    compatible: true,
  },
  // Confluent: "Detect incompatible changes to enum schema" — the writer's red is gone.
  {
    name: 'enum value removed (allOf)',
    writer: { allOf: [{ type: 'string' }, { enum: ['red'] }] },
    reader: { allOf: [{ type: 'string' }, { enum: ['blue'] }] },
    compatible: false,
    path: '#/allOf/1/enum',
    rule: /enum value "red" removed/,
  },
  // Confluent: "Detect changes to number of sub schemas" — SUM_TYPE_EXTENDED: a oneOf branch added.
  {
    name: 'oneOf branch added',
    writer: { oneOf: [{ type: 'string' }] },
    reader: { oneOf: [{ type: 'number' }, { type: 'string' }] },
    compatible: true,
  },
  // Confluent: "Detect changes to sub schemas" — COMBINED_TYPE_SUBSCHEMAS_CHANGED.
  {
    name: 'oneOf branch changed',
    writer: { oneOf: [{ type: 'string' }] },
    reader: { oneOf: [{ type: 'number' }] },
    compatible: false,
    path: '#/oneOf',
  },
  // Confluent: "Detect change to oneOf schema" — a string becomes one branch of a union.
  {
    name: 'string → oneOf [number, string]',
    writer: { type: 'string', maxLength: 3 },
    reader: { oneOf: [{ type: 'number' }, { type: 'string' }] },
    compatible: true,
  },
  // A writer union is read branch by branch: each must fit the reader.
  {
    name: 'anyOf [string, integer] → [string, number]',
    writer: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
    reader: { type: ['string', 'number'] },
    compatible: true,
  },
  {
    name: 'anyOf [string, integer] → anyOf [string]',
    writer: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
    reader: { anyOf: [{ type: 'string' }] },
    compatible: false,
    path: '#/anyOf',
  },
  // Confluent: "Detect property added to open content model" — PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL.
  {
    name: 'property added to an open content model',
    writer: { properties: { foo: { type: 'string' } } },
    reader: { properties: { foo: { type: 'string' }, bar: { type: 'number' } } },
    compatible: false,
    path: '#/properties/bar',
    rule: /added to an open content model/,
  },
  // Confluent: "Detect changes to remove properties" — foo removed from an open model is fine, bar added is not.
  {
    name: 'property renamed in an open content model',
    writer: { properties: { foo: { type: 'string' } } },
    reader: { properties: { bar: { type: 'string' } } },
    compatible: false,
    path: '#/properties/bar',
  },
  // Confluent: "Detect adding empty schema to open content model" — a property that accepts anything is fine.
  {
    name: 'property {} added to an open model',
    writer: { additionalProperties: true },
    reader: { additionalProperties: true, properties: { foo: true } },
    compatible: true,
  },
  // Confluent: "Detect optional property added to closed content model" — OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL.
  {
    name: 'optional property added to a closed content model',
    writer: { properties: { foo: { type: 'string' } }, additionalProperties: false },
    reader: { properties: { foo: { type: 'string' }, bar: { type: 'number' } }, additionalProperties: false },
    compatible: true,
  },
  // Confluent: "Detect property added to partially open content model 1" — I_123 is covered by ^I_ (integer ⊆ number).
  {
    name: 'property added, covered by patternProperties',
    writer: {
      properties: { foo: { type: 'string' } },
      additionalProperties: false,
      patternProperties: { '^S_': { type: 'string' }, '^I_': { type: 'integer' } },
    },
    reader: {
      properties: { foo: { type: 'string' }, I_123: { type: 'number' } },
      additionalProperties: false,
      patternProperties: { '^S_': { type: 'string' }, '^I_': { type: 'integer' } },
    },
    compatible: true,
  },
  // Confluent: "Detect property added to partially open content model 3" — PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL.
  {
    name: 'property added, not covered by additionalProperties',
    writer: { properties: { foo: { type: 'string' } }, additionalProperties: { type: 'string' } },
    reader: {
      properties: { foo: { type: 'string' }, bar: { type: 'number' } },
      additionalProperties: { type: 'string' },
    },
    compatible: false,
    path: '#/properties/bar',
    rule: /additionalProperties or patternProperties allowed values/,
  },
  // Confluent: "Detect property added to partially open content model 4" — REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL.
  {
    name: 'required property added',
    writer: { properties: { foo: { type: 'string' } }, additionalProperties: { type: 'string' } },
    reader: {
      properties: { foo: { type: 'string' }, bar: { type: 'string' } },
      required: ['bar'],
      additionalProperties: { type: 'string' },
    },
    compatible: false,
    path: '#/properties/bar',
    rule: /required by the reader/,
  },
  // Confluent: "Detect property removed from partially open content model 2" — the reader's additionalProperties covers bar.
  {
    name: 'property removed, covered by additionalProperties',
    writer: { properties: { foo: { type: 'string' }, bar: { type: 'string' } }, additionalProperties: false },
    reader: { properties: { foo: { type: 'string' } }, additionalProperties: { type: 'string' } },
    compatible: true,
  },
  // Confluent: "Detect property removed from partially open content model 3" — PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL.
  {
    name: 'property removed, not covered by additionalProperties',
    writer: { properties: { foo: { type: 'string' }, bar: { type: 'number' } }, additionalProperties: false },
    reader: { properties: { foo: { type: 'string' } }, additionalProperties: { type: 'string' } },
    compatible: false,
    path: '#/properties/bar',
    rule: /removed/,
  },
  // Confluent's rule PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL: a closed reader refuses the property the writer wrote.
  {
    name: 'property removed from a closed content model',
    writer: { properties: { a: { type: 'string' }, b: { type: 'string' } }, additionalProperties: false },
    reader: { properties: { a: { type: 'string' } }, additionalProperties: false },
    compatible: false,
    path: '#/properties/b',
    rule: /removed from a closed content model/,
  },
  // Confluent: "Detect removing empty schema from open content model" — PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL.
  {
    name: 'property removed from an open content model',
    writer: { properties: { a: { type: 'string' }, b: { type: 'string' } } },
    reader: { properties: { a: { type: 'string' } } },
    compatible: true,
  },
  // Confluent: "Detect required array to be removed" — REQUIRED_ATTRIBUTE_REMOVED.
  {
    name: 'required removed',
    writer: { properties: { foo: { type: 'string' } }, required: ['foo'] },
    reader: { properties: { foo: { type: 'string' } } },
    compatible: true,
  },
  // Confluent: "Detect required array to be added" — REQUIRED_ATTRIBUTE_ADDED.
  {
    name: 'required added',
    writer: { properties: { foo: { type: 'string' } } },
    reader: { properties: { foo: { type: 'string' } }, required: ['foo'] },
    compatible: false,
    path: '#/properties/foo',
    rule: /required by the reader/,
  },
  // Kappa differs from Confluent (REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED is compatible there): Kappa does not fill defaults in.
  {
    name: 'required added with a default',
    writer: { properties: { foo: { type: 'string' } } },
    reader: { properties: { foo: { type: 'string', default: 'x' } }, required: ['foo'] },
    compatible: false,
    path: '#/properties/foo',
    rule: /does not fill defaults in/,
  },
  // Confluent: "Detect decreased maxProperties" — MAX_PROPERTIES_DECREASED.
  {
    name: 'maxProperties 2 → 1',
    writer: { maxProperties: 2 },
    reader: { maxProperties: 1 },
    compatible: false,
    path: '#/maxProperties',
  },
  // Confluent: "Detect removed boolean additional properties" — ADDITIONAL_PROPERTIES_REMOVED (true → false).
  {
    name: 'additionalProperties true → false',
    writer: { additionalProperties: true },
    reader: { additionalProperties: false },
    compatible: false,
    path: '#/additionalProperties',
    rule: /changed to false/,
  },
  // Confluent: "Detect added boolean additional properties" — ADDITIONAL_PROPERTIES_ADDED (false → open).
  {
    name: 'additionalProperties false → open',
    writer: { properties: {}, additionalProperties: false },
    reader: { properties: {} },
    compatible: true,
  },
  // Confluent: "Detect narrowing changes to additional properties schema" — ADDITIONAL_PROPERTIES_NARROWED.
  {
    name: 'additionalProperties true → number',
    writer: { additionalProperties: true },
    reader: { additionalProperties: { type: 'number' } },
    compatible: false,
    path: '#/additionalProperties',
  },
  // Confluent: "Detect changes to all items schema" — SCHEMA_ADDED at #/items.
  {
    name: 'items added',
    writer: { type: 'array' },
    reader: { type: 'array', items: { type: 'string' } },
    compatible: false,
    path: '#/items',
  },
  // Confluent: "Detect changes to all items schema" — SCHEMA_REMOVED.
  {
    name: 'items removed',
    writer: { type: 'array', items: { type: 'string' } },
    reader: { type: 'array' },
    compatible: true,
  },
  // Confluent: "Detect changes to items schema list" — ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL.
  {
    name: 'tuple → open array',
    writer: { type: 'array', items: [{ type: 'string' }, { type: 'number' }] },
    reader: { type: 'array' },
    compatible: true,
  },
  // Confluent: "Detect item added to partially open content model 2" — ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL.
  {
    name: 'tuple item added, not covered by additionalItems',
    writer: { type: 'array', items: [{ type: 'string' }, { type: 'number' }], additionalItems: { type: 'string' } },
    reader: {
      type: 'array',
      items: [{ type: 'string' }, { type: 'number' }, { type: 'number' }],
      additionalItems: { type: 'string' },
    },
    compatible: false,
    path: '#/items/2',
  },
  // Confluent: "Detect adding to closed content model for array" — ITEM_ADDED_TO_CLOSED_CONTENT_MODEL (2020-12 spelling).
  {
    name: 'prefixItems item added to a closed tuple (2020-12)',
    writer: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'array',
      prefixItems: [{ type: 'string' }],
      items: false,
    },
    reader: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'array',
      prefixItems: [{ type: 'string' }, { type: 'number' }],
      items: false,
    },
    compatible: true,
  },
  // Confluent: "Detect decreased maxItems" / "Detect increased minItems".
  {
    name: 'maxItems 2 → 1',
    writer: { type: 'array', maxItems: 2 },
    reader: { type: 'array', maxItems: 1 },
    compatible: false,
    path: '#/maxItems',
  },
  {
    name: 'minItems 1 → 2',
    writer: { type: 'array', minItems: 1 },
    reader: { type: 'array', minItems: 2 },
    compatible: false,
    path: '#/minItems',
  },
  // Confluent: "Detect unique items removed" — UNIQUE_ITEMS_REMOVED.
  {
    name: 'uniqueItems removed',
    writer: { type: 'array', uniqueItems: true },
    reader: { type: 'array' },
    compatible: true,
  },
  // Confluent: "Detect incompatible changes to reference schemas" — TYPE_CHANGED found through $ref.
  {
    name: 'change behind a $ref',
    writer: { type: 'array', items: { $ref: '#/definitions/someRef' }, definitions: { someRef: { type: 'string' } } },
    reader: { type: 'array', items: { $ref: '#/definitions/someRef' }, definitions: { someRef: { type: 'number' } } },
    compatible: false,
    path: '#/items',
  },
  // Confluent: "Detect compatible change of moving to reference schema".
  {
    name: 'moved behind a $ref',
    writer: { type: 'string' },
    reader: { $ref: '#/definitions/someRef', definitions: { someRef: { type: 'string' } } },
    compatible: true,
  },
  // A nested field: the path names it.
  {
    name: 'nested property type changed',
    writer: { type: 'object', properties: { order: { type: 'object', properties: { qty: { type: 'integer' } } } } },
    reader: { type: 'object', properties: { order: { type: 'object', properties: { qty: { type: 'string' } } } } },
    compatible: false,
    path: '#/properties/order/properties/qty',
    rule: /integer to string/,
  },
];

describe('jsonSchemaCodec.problems: the compatibility table', () => {
  for (const c of CASES) {
    test(`${c.compatible ? 'compatible' : 'incompatible'}: ${c.name}`, () => {
      const problems = jsonSchemaCodec.problems(parse(c.reader), parse(c.writer));
      if (c.compatible) {
        assert.deepEqual(problems, []);
        return;
      }
      assert.ok(problems.length > 0, 'expected a problem');
      if (c.path === undefined) return;
      const at = problems.filter((p) => p.path === c.path);
      assert.ok(at.length > 0, `no problem at ${c.path}: ${JSON.stringify(problems)}`);
      if (c.rule !== undefined)
        assert.ok(
          at.some((p) => c.rule!.test(p.rule)),
          `no rule matching ${c.rule}: ${JSON.stringify(at)}`,
        );
    });
  }

  test('a schema is compatible with itself, recursion included', () => {
    const tree = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $ref: '#/$defs/node',
      $defs: {
        node: {
          type: 'object',
          properties: { value: { type: 'integer' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } },
          required: ['value'],
        },
      },
    };
    assert.deepEqual(jsonSchemaCodec.problems(parse(tree), parse(tree)), []);
    const widened = JSON.parse(JSON.stringify(tree).replace('"integer"', '"number"'));
    assert.deepEqual(jsonSchemaCodec.problems(parse(widened), parse(tree)), []);
    const changed = JSON.parse(JSON.stringify(tree).replace('"integer"', '"string"'));
    const problems = jsonSchemaCodec.problems(parse(changed), parse(tree));
    assert.ok(
      problems.some((p) => p.path === '#/properties/value'),
      JSON.stringify(problems),
    );
  });

  test('BACKWARD and FORWARD are the two directions of one check', () => {
    // Adding an optional property to a closed model: new readers read old data, old readers refuse new data.
    const v1 = parse({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false });
    const v2 = parse({
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'integer' } },
      additionalProperties: false,
    });
    assert.deepEqual(jsonSchemaCodec.problems(v2, v1), []);
    const forward = jsonSchemaCodec.problems(v1, v2);
    assert.deepEqual(
      forward.map((p) => p.path),
      ['#/properties/b'],
    );
    assert.match(forward[0].rule, /removed from a closed content model/);
  });
});

/** Small random schemas over a few types, bounds, properties, items and combinators. */
function randomSchema(random: () => number, depth: number, draft2020 = false): Schema {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const maybe = (p = 0.5) => random() < p;
  const kind =
    depth > 2
      ? pick(['scalar', 'enum', 'empty'])
      : pick(['scalar', 'scalar', 'enum', 'object', 'object', 'array', 'union', 'allOf', 'not', 'keywords', 'empty']);
  const sub = () => randomSchema(random, depth + 1, draft2020);
  switch (kind) {
    case 'scalar': {
      const type = pick([
        'string',
        'integer',
        'number',
        'boolean',
        'null',
        ['string', 'null'],
        ['integer', 'string'],
      ] as const);
      const s: Record<string, unknown> = { type };
      if (maybe(0.3)) s.minimum = pick([0, 1, 2]);
      if (maybe(0.3)) s.maximum = pick([2, 5, 10]);
      if (maybe(0.15)) s.exclusiveMinimum = pick([0, 1.5]);
      if (maybe(0.15)) s.multipleOf = pick([1, 2, 5]);
      if (maybe(0.3)) s.minLength = pick([0, 1, 3]);
      if (maybe(0.3)) s.maxLength = pick([1, 3, 5]);
      if (maybe(0.1)) s.pattern = pick(['^a', 'b']);
      return s;
    }
    case 'enum': {
      const first = pick(SCALARS);
      return { enum: [first, ...SCALARS.filter((v) => v !== first && maybe(0.3))] };
    }
    case 'object': {
      const s: Record<string, unknown> = maybe(0.7) ? { type: 'object' } : {};
      const properties: Record<string, Schema> = {};
      for (const name of ['a', 'b']) if (maybe(0.6)) properties[name] = sub();
      s.properties = properties;
      const required = ['a', 'b'].filter(() => maybe(0.3));
      if (required.length > 0) s.required = required;
      const additional = pick([undefined, false, true, 'schema'] as const);
      if (additional === 'schema') s.additionalProperties = sub();
      else if (additional !== undefined) s.additionalProperties = additional;
      if (maybe(0.15)) s.patternProperties = { '^c': sub() };
      if (maybe(0.1)) s.maxProperties = pick([1, 2]);
      return s;
    }
    case 'array': {
      const s: Record<string, unknown> = { type: 'array' };
      if (maybe(0.3)) {
        const rest = maybe(0.5) ? pick([false, true, sub()]) : undefined;
        if (draft2020) Object.assign(s, { prefixItems: [sub()] }, rest === undefined ? {} : { items: rest });
        else Object.assign(s, { items: [sub()] }, rest === undefined ? {} : { additionalItems: rest });
      } else if (maybe(0.8)) s.items = sub();
      if (maybe(0.3)) s.minItems = pick([0, 1, 2]);
      if (maybe(0.3)) s.maxItems = pick([1, 2]);
      if (maybe(0.1)) s.uniqueItems = true;
      return s;
    }
    case 'union':
      return { [pick(['anyOf', 'oneOf'])]: [sub(), sub()] };
    case 'allOf':
      return { allOf: [sub(), sub()] };
    case 'not':
      return { not: sub() };
    case 'keywords':
      return pick([
        { type: 'object', dependentRequired: { a: ['b'] } },
        { dependencies: { a: ['b'] } },
        { dependencies: { a: sub() } },
        { type: 'array', contains: sub() },
        { propertyNames: { maxLength: 1 } },
        { if: sub(), then: sub() },
        { if: sub(), then: sub(), else: sub() },
        { const: pick(SCALARS) },
        { type: 'object', minProperties: pick([1, 2]) },
        // Draft-07: an embedded $id makes the node its own document, so '#' means the node itself.
        // 2020-12: a $ref to the root's $defs (ajv 8 does not find an $id under prefixItems).
        draft2020
          ? { $ref: '#/$defs/shared' }
          : {
              $id: `urn:kappa:${random().toString(36).slice(2)}`,
              allOf: [{ $ref: '#/definitions/x' }],
              definitions: { x: sub() },
            },
      ]);
    default:
      return pick([{}, true, false, { type: 'object', properties: {}, additionalProperties: false }]);
  }
}

/** A draft-07 schema, or (one time in three) a 2020-12 one. */
function randomRoot(random: () => number): Schema {
  if (random() < 0.67) return randomSchema(random, 0);
  const schema = randomSchema(random, 0, true);
  if (typeof schema === 'boolean') return schema;
  const shared = randomSchema(random, 3, true);
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...schema, $defs: { shared } };
}

const MAP_KEYWORDS = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies', 'dependentRequired'];

/** A copy of `schema` with one small change somewhere: a bound moved, a keyword dropped or added, a type widened. */
function mutate(schema: Schema, random: () => number): Schema {
  const copy = JSON.parse(JSON.stringify(schema)) as Schema;
  const nodes: Array<Record<string, unknown>> = [];
  // Only schemas are changed, not the name → schema maps (properties, definitions…).
  const walk = (node: unknown, isMap = false) => {
    if (node === null || typeof node !== 'object') return;
    if (!Array.isArray(node) && !isMap) nodes.push(node as Record<string, unknown>);
    for (const [key, value] of Object.entries(node)) {
      if (key !== 'enum' || isMap) walk(value, !isMap && MAP_KEYWORDS.includes(key));
    }
  };
  walk(copy);
  if (nodes.length === 0) return random() < 0.5 ? {} : { type: 'string' };
  const node = nodes[Math.floor(random() * nodes.length)];
  const keys = Object.keys(node).filter((k) => !['$id', 'definitions', '$defs'].includes(k));
  switch (Math.floor(random() * 7)) {
    case 0:
      if (keys.length > 0) delete node[keys[Math.floor(random() * keys.length)]];
      break;
    case 1:
      for (const k of ['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'maxProperties']) {
        if (typeof node[k] === 'number') node[k] = Math.max(0, (node[k] as number) + (random() < 0.5 ? -1 : 1));
      }
      break;
    case 2:
      node.additionalProperties = random() < 0.5;
      break;
    case 3:
      node.required = random() < 0.5 ? [] : ['a'];
      break;
    case 4:
      if (typeof node.type === 'string') node.type = [...new Set([node.type, random() < 0.5 ? 'null' : 'number'])];
      else if (node.type === 'integer') node.type = 'number';
      break;
    case 5:
      if (Array.isArray(node.enum))
        node.enum = random() < 0.5 && node.enum.length > 1 ? node.enum.slice(1) : [...node.enum, 'zz'];
      break;
    default:
      if (node.properties !== null && typeof node.properties === 'object')
        (node.properties as Record<string, unknown>).c = { type: 'integer' };
  }
  return copy;
}

const SCALARS: unknown[] = [null, true, false, 0, 1, 2, 2.5, 3, 5, 7, 10, -1, '', 'a', 'ab', 'abc', 'bbbbbb'];
const VALUES: unknown[] = (() => {
  const few = [null, 1, 2.5, 10, 'a', 'abc', true];
  const objects: unknown[] = [{}];
  for (const a of few) {
    objects.push({ a }, { b: a }, { c: a }, { a, b: 'a' }, { a: 1, b: a }, { a, c: 2 }, { a: { a } });
  }
  const arrays: unknown[] = [[], [1], ['a'], [1, 2], [1, 1], ['a', 1], [null, 'abc', 3], [{ a: 1 }], [[1]]];
  return [...SCALARS, ...objects, ...arrays];
})();

describe('jsonSchemaCodec.problems never misses an incompatibility (checked against ajv)', () => {
  test('whenever it finds no problem, every sample document the writer accepts, the reader accepts too', () => {
    const random = seededRandom(Number(process.env.KAPPA_FUZZ_SEED ?? 17));
    let compatible = 0;
    for (let i = 0; i < 2500; i++) {
      const writerSchema = randomRoot(random);
      const readerSchema = random() < 0.6 ? mutate(writerSchema, random) : randomRoot(random);
      const writer = parse(writerSchema) as ParsedJsonSchema;
      const reader = parse(readerSchema) as ParsedJsonSchema;
      if (jsonSchemaCodec.problems(reader, writer).length > 0) continue;
      compatible++;
      for (const value of VALUES) {
        if (!writer.validate(value)) continue;
        assert.ok(
          reader.validate(value),
          `found compatible, but ${JSON.stringify(value)} is valid under the writer ${JSON.stringify(writerSchema)} and not under the reader ${JSON.stringify(readerSchema)}`,
        );
      }
    }
    // The test only means something if many pairs were judged compatible.
    assert.ok(compatible > 1000, `only ${compatible} compatible pairs`);
  });
});

describe('jsonSchemaCodec.parse', () => {
  test('canonical text sorts keys at every level and drops whitespace', () => {
    const a = jsonSchemaCodec.parse(
      '{ "type": "object", "properties": { "b": {"type":"string"}, "a": {"type": "integer"} } }',
    );
    const b = jsonSchemaCodec.parse('{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}');
    assert.equal(a.canonical, b.canonical);
    assert.equal(a.canonical, '{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}');
    assert.equal(a.type, 'JSON');
    assert.notEqual(a.text, b.text);
  });

  test('accepts the extra keywords producers write, and 2019-09 and 2020-12 schemas', () => {
    const sale = parse({
      type: 'object',
      javaType: 'com.example.Sale',
      properties: { qty: { type: 'integer', 'connect.index': 0 } },
    });
    assert.equal(sale.type, 'JSON');
    for (const draft of [
      'https://json-schema.org/draft/2019-09/schema',
      'https://json-schema.org/draft/2020-12/schema',
    ]) {
      assert.equal(parse({ $schema: draft, type: 'array', items: { type: 'string' } }).type, 'JSON');
    }
  });

  test('refuses text that is not JSON', () => {
    assert.throws(
      () => jsonSchemaCodec.parse('{"type": "object",}'),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_INVALID_SCHEMA');
        assert.match(err.message, /not valid JSON/);
        return true;
      },
    );
  });

  test('refuses a schema its meta-schema refuses, naming the place', () => {
    assert.throws(
      () => parse({ type: 'object', properties: { qty: { type: 'integr' } } }),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_INVALID_SCHEMA');
        assert.match(err.message, /#\/properties\/qty\/type/);
        assert.equal(err.details?.place, '#/properties/qty/type');
        return true;
      },
    );
    assert.throws(() => parse({ minimum: '5' }), /at #\/minimum the value must be number/);
    assert.throws(() => jsonSchemaCodec.parse('[1, 2]'), /must be a JSON object/);
    assert.throws(() => parse({ $schema: 'http://json-schema.org/draft-04/schema#' }), /#\/\$schema|draft-07/);
  });

  test('refuses an unresolvable $ref, naming where it is', () => {
    assert.throws(
      () => parse({ properties: { address: { $ref: 'address.json' } } }),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_INVALID_SCHEMA');
        assert.match(err.message, /"address\.json" at #\/properties\/address\/\$ref cannot be resolved/);
        return true;
      },
    );
    assert.throws(() => parse({ items: { $ref: '#/definitions/missing' } }), /#\/items\/\$ref cannot be resolved/);
  });

  test('refuses a $ref that loops back to the same value, and accepts recursion through a property', () => {
    assert.throws(
      () => parse({ $ref: '#' }),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_INVALID_SCHEMA');
        assert.match(err.message, /reference at #\/\$ref leads back/);
        return true;
      },
    );
    assert.throws(
      () => parse({ properties: { a: { anyOf: [{ $ref: '#/properties/a' }] } } }),
      /#\/properties\/a\/anyOf\/0\/\$ref/,
    );
    assert.equal(parse({ properties: { next: { $ref: '#' } } }).type, 'JSON');
  });

  test('follows a $ref to a Confluent reference by its name', () => {
    const address = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const ref: SchemaReference = { name: 'address.json', subject: 'address', version: 1 };
    const texts = new Map([['address.json', JSON.stringify(address)]]);
    const resolve = (r: SchemaReference) => texts.get(r.name) ?? assert.fail(`unexpected ${r.name}`);
    const order = parse({ type: 'object', properties: { ship: { $ref: 'address.json' } } }, [ref], resolve);
    const decode = jsonDecoder(order);
    const lookup: WriterSchemaLookup = (id) => (id === 7 ? order : undefined);
    assert.deepEqual(decode(encodeJson(7, { ship: { city: 'Oslo' } }), lookup), { ship: { city: 'Oslo' } });
    assert.throws(() => decode(encodeJson(7, { ship: { city: 3 } }), lookup), /ship\.city must be a string/);
    // The same reference under an absolute $id is found relative to it.
    const absolute = parse(
      { $id: 'https://example.com/order.json', properties: { ship: { $ref: 'address.json' } } },
      [ref],
      resolve,
    );
    // Compatibility looks through the reference: the city became optional in v2, which reads v1.
    const looser = parse({ type: 'object', properties: { ship: { $ref: 'address.json' } } }, [ref], () =>
      JSON.stringify({ ...address, required: [] }),
    );
    assert.deepEqual(jsonSchemaCodec.problems(looser, order), []);
    assert.deepEqual(
      jsonSchemaCodec.problems(order, looser).map((p) => p.path),
      ['#/properties/ship/properties/city'],
    );
    assert.equal(absolute.type, 'JSON');
  });
});

describe('JSON records in the Confluent wire format', () => {
  const sale = parse({
    type: 'object',
    properties: {
      orderId: { type: 'string' },
      qty: { type: 'integer', minimum: 1 },
      lines: { type: 'array', items: { type: 'object', properties: { price: { type: 'number' } } } },
    },
    required: ['orderId', 'qty'],
  });
  const schemas = new Map<number, ParsedSchema>([[42, sale]]);
  const lookup: WriterSchemaLookup = (id) => schemas.get(id);
  const decode = jsonDecoder(sale);

  test('encodeJson frames a value: magic byte, big-endian id, UTF-8 JSON', () => {
    const bytes = encodeJson(0x01020304, { a: 'é' });
    assert.deepEqual([...bytes.subarray(0, 5)], [0, 1, 2, 3, 4]);
    assert.equal(bytes.subarray(5).toString('utf8'), '{"a":"é"}');
    assert.throws(() => encodeJson(-1, {}), /schema id/);
    assert.throws(() => encodeJson(1, undefined), /cannot be written as JSON/);
  });

  test('round trip: what encodeJson writes, the decoder reads back', () => {
    const value = { orderId: 'o-1', qty: 3, lines: [{ price: 9.5 }, { price: 0 }], note: 'ünïcødé ✓' };
    assert.deepEqual(decode(encodeJson(42, value), lookup), value);
  });

  test('refuses a value without the magic byte, a short one and an unknown schema id', () => {
    const plain = Buffer.from('{"orderId":"o","qty":1}');
    assert.throws(
      () => decode(plain, lookup),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_SCHEMA_VIOLATION');
        assert.match(err.message, /0x7b, not the magic byte 0/);
        return true;
      },
    );
    assert.throws(() => decode(Buffer.from([0, 0, 0]), lookup), /3 bytes long/);
    assert.throws(
      () => decode(encodeJson(43, { orderId: 'o', qty: 1 }), lookup),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_SCHEMA_VIOLATION');
        assert.match(err.message, /schema id 43, which is not registered/);
        return true;
      },
    );
  });

  test('refuses a record the reader schema refuses, naming each field', () => {
    const bad = encodeJson(42, { orderId: 7, qty: 0, lines: [{ price: 'x' }] });
    assert.throws(
      () => decode(bad, lookup),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_SCHEMA_VIOLATION');
        assert.match(err.message, /orderId must be a string/);
        assert.match(err.message, /qty must be at least 1/);
        assert.match(err.message, /lines\[0\]\.price must be a number/);
        return true;
      },
    );
    const garbled = Buffer.concat([encodeJson(42, {}).subarray(0, 5), Buffer.from('{"orderId":')]);
    assert.throws(
      () => decode(garbled, lookup),
      (err: KappaError) => {
        assert.equal(err.code, 'KAPPA_INVALID_RECORD');
        assert.match(err.message, /not valid UTF-8 JSON/);
        return true;
      },
    );
  });

  test("Confluent's own JSON serializer and deserializer agree with Kappa's framing", async () => {
    const client = new MockClient({ baseURLs: ['mock://'] } as never);
    const text = sale.text;
    const id = await client.register('sales-value', { schemaType: 'JSON', schema: text }, false);
    const theirs = new Map<number, ParsedSchema>([[id, sale]]);
    const serializer = new JsonSerializer(client, SerdeType.VALUE, { useLatestVersion: true, validate: true });
    const value = { orderId: 'o-2', qty: 5, lines: [{ price: 1.25 }] };
    const written = await serializer.serialize('sales', value);
    assert.deepEqual(
      decode(written, (i) => theirs.get(i)),
      value,
    );
    const deserializer = new JsonDeserializer(client, SerdeType.VALUE, { validate: true });
    assert.deepEqual(await deserializer.deserialize('sales', encodeJson(id, value)), value);
  });
});
