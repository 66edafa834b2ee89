import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileSchema,
  describeIssues,
  formatPath,
  invalidRecordError,
  Type,
  type Static,
  type SchemaIssue,
} from './index.ts';
import { isKappaError } from '../errors.ts';

const Sale = Type.Object({
  orderId: Type.String(),
  storeId: Type.String(),
  region: Type.Union([Type.Literal('north'), Type.Literal('south'), Type.Literal('east'), Type.Literal('west')]),
  amount: Type.Number({ minimum: 0 }),
  ts: Type.Integer(),
  sku: Type.Optional(Type.String()),
});
type Sale = Static<typeof Sale>;

const sales = compileSchema(Sale, { name: 'sales' });
const VALID: Sale = { orderId: 'o-1', storeId: 's-7', region: 'north', amount: 12.5, ts: 1732233600000 };

function issuesOf(value: unknown): SchemaIssue[] {
  const result = sales.check(value);
  assert.equal(result.ok, false, `expected ${JSON.stringify(value)} to be rejected`);
  return result.ok ? [] : result.issues;
}

describe('compileSchema with a TypeBox Sale schema', () => {
  test('accepts a valid sale, with and without the optional sku, and reports no issues', () => {
    for (const sale of [VALID, { ...VALID, sku: 'SKU-1' }, { ...VALID, amount: 0 }]) {
      assert.equal(sales.validate(sale), true);
      assert.deepEqual(sales.lastIssues(), []);
      assert.deepEqual(sales.check(sale), { ok: true, value: sale });
    }
  });

  test('names a missing required field by its own path', () => {
    const { storeId: _, ...noStore } = VALID;
    assert.deepEqual(issuesOf(noStore), [{ path: '/storeId', message: 'is required' }]);
  });

  test('says which type a field must have', () => {
    assert.deepEqual(issuesOf({ ...VALID, amount: '12.5' }), [{ path: '/amount', message: 'must be a number' }]);
    assert.deepEqual(issuesOf({ ...VALID, orderId: 17 }), [{ path: '/orderId', message: 'must be a string' }]);
    assert.deepEqual(issuesOf({ ...VALID, ts: 1.5 }), [{ path: '/ts', message: 'must be an integer' }]);
    assert.deepEqual(issuesOf({ ...VALID, sku: null }), [{ path: '/sku', message: 'must be a string' }]);
  });

  test('lists the allowed values of a union of literals as one issue', () => {
    assert.deepEqual(issuesOf({ ...VALID, region: 'middle' }), [
      { path: '/region', message: 'must be one of: north, south, east, west' },
    ]);
    assert.deepEqual(issuesOf({ ...VALID, region: 3 }), [
      { path: '/region', message: 'must be one of: north, south, east, west' },
    ]);
  });

  test('states a numeric bound in words', () => {
    assert.deepEqual(issuesOf({ ...VALID, amount: -0.01 }), [{ path: '/amount', message: 'must be at least 0' }]);
  });

  test('rejects a record that is not an object, on the root path', () => {
    for (const value of [null, 42, 'sale', [VALID]]) {
      assert.deepEqual(issuesOf(value), [{ path: '', message: 'must be an object' }], JSON.stringify(value));
    }
  });

  test('reports every bad field of one record, not just the first', () => {
    const issues = issuesOf({ orderId: 1, region: 'middle', amount: -5, ts: 'yesterday', sku: 9 });
    assert.deepEqual(
      [...issues].sort((a, b) => a.path.localeCompare(b.path)),
      [
        { path: '/amount', message: 'must be at least 0' },
        { path: '/orderId', message: 'must be a string' },
        { path: '/region', message: 'must be one of: north, south, east, west' },
        { path: '/sku', message: 'must be a string' },
        { path: '/storeId', message: 'is required' },
        { path: '/ts', message: 'must be an integer' },
      ],
    );
  });

  test('validate returns the issues of its last call through lastIssues, and clears them on success', () => {
    assert.equal(sales.validate({ ...VALID, amount: -1 }), false);
    assert.deepEqual(sales.lastIssues(), [{ path: '/amount', message: 'must be at least 0' }]);
    assert.equal(sales.validate(VALID), true);
    assert.deepEqual(sales.lastIssues(), []);
  });

  test('never changes the record: no coercion, no defaults, no removed fields', () => {
    const withDefault = compileSchema(
      Type.Object({ n: Type.Number(), tag: Type.Optional(Type.String({ default: 'x' })) }),
    );
    const record = { n: '5', extra: true };
    assert.equal(withDefault.validate(record), false);
    assert.deepEqual(record, { n: '5', extra: true });
  });
});

describe('issue paths in nested objects and arrays', () => {
  const Order = Type.Object({
    customer: Type.Object({ id: Type.String(), email: Type.Optional(Type.String({ minLength: 3 })) }),
    items: Type.Array(
      Type.Object({ sku: Type.String(), price: Type.Number({ exclusiveMinimum: 0 }) }, { additionalProperties: false }),
      { minItems: 1 },
    ),
    tags: Type.Optional(Type.Array(Type.String(), { uniqueItems: true, maxItems: 3 })),
    status: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  });
  const orders = compileSchema(Order, { name: 'orders' });
  const check = (value: unknown): SchemaIssue[] => {
    const result = orders.check(value);
    return result.ok ? [] : result.issues;
  };

  test('points into nested objects and array elements with JSON Pointers', () => {
    assert.deepEqual(
      check({
        customer: {},
        items: [
          { sku: 'a', price: 1 },
          { sku: 'b', price: 'free' },
        ],
      }),
      [
        { path: '/customer/id', message: 'is required' },
        { path: '/items/1/price', message: 'must be a number' },
      ],
    );
  });

  test('names an extra field the schema does not allow by its own path', () => {
    assert.deepEqual(check({ customer: { id: 'c' }, items: [{ sku: 'a', price: 1, colour: 'red' }] }), [
      { path: '/items/0/colour', message: 'is not an allowed field' },
    ]);
  });

  test('explains length, size and uniqueness limits', () => {
    assert.deepEqual(check({ customer: { id: 'c', email: 'a' }, items: [], tags: ['x', 'y', 'x', 'z'] }), [
      { path: '/customer/email', message: 'must be at least 3 characters long' },
      { path: '/items', message: 'must not be empty' },
      { path: '/tags', message: 'must have at most 3 items' },
      { path: '/tags', message: 'must not contain duplicates (items 0 and 2 are equal)' },
    ]);
    assert.deepEqual(check({ customer: { id: 'c' }, items: [{ sku: 'a', price: 0 }] }), [
      { path: '/items/0/price', message: 'must be greater than 0' },
    ]);
  });

  test('lists the types a nullable field accepts', () => {
    assert.deepEqual(check({ customer: { id: 'c' }, items: [{ sku: 'a', price: 1 }], status: 5 }), [
      { path: '/status', message: 'must be a string or null' },
    ]);
  });

  test('escapes keys holding / and ~ in pointers, and formatPath renders them readably', () => {
    const odd = compileSchema(Type.Object({ 'a/b~c': Type.Number() }));
    const result = odd.check({ 'a/b~c': 'x' });
    assert.deepEqual(result.ok ? [] : result.issues, [{ path: '/a~1b~0c', message: 'must be a number' }]);
    assert.equal(formatPath('/a~1b~0c'), '["a/b~c"]');
    assert.equal(formatPath('/items/2/price'), 'items[2].price');
    assert.equal(formatPath('/customer/first name'), 'customer["first name"]');
    assert.equal(formatPath(''), '');
  });
});

describe('tagged unions', () => {
  const Event = Type.Union([
    Type.Object({ kind: Type.Literal('click'), x: Type.Number(), y: Type.Number() }),
    Type.Object({ kind: Type.Literal('key'), code: Type.String() }),
  ]);
  const events = compileSchema(Event);
  const check = (value: unknown): SchemaIssue[] => {
    const result = events.check(value);
    return result.ok ? [] : result.issues;
  };

  test('reports the errors of the alternative the tag selects, not of every alternative', () => {
    assert.deepEqual(check({ kind: 'key', code: 13 }), [{ path: '/code', message: 'must be a string' }]);
    assert.deepEqual(check({ kind: 'click', x: 1 }), [{ path: '/y', message: 'is required' }]);
  });

  test('reports an unknown tag as the tag field with its allowed values', () => {
    assert.deepEqual(check({ kind: 'scroll' }), [{ path: '/kind', message: 'must be one of: click, key' }]);
  });

  test('reports a value of the wrong kind altogether once, on the value', () => {
    assert.deepEqual(check('click'), [{ path: '', message: 'must be an object' }]);
  });
});

describe('decode', () => {
  test('decodes valid UTF-8 JSON bytes and strings into the typed value', () => {
    const text = JSON.stringify({ ...VALID, sku: 'Größe-日本' });
    for (const input of [text, new TextEncoder().encode(text), Buffer.from(text)]) {
      const result = sales.decode(input);
      assert.deepEqual(result, { ok: true, value: JSON.parse(text) });
    }
  });

  test('reports a JSON syntax error on the root path, saying the record is not JSON and why', () => {
    for (const [input, why] of [
      ['{"orderId": }', /^is not valid JSON: Unexpected token '}' in "{"orderId": }"$/],
      ['', /Unexpected end of JSON input/],
      ['{"orderId": "o-1"', /Expected ',' or '}'|Unexpected end/],
      ['NaN', /unexpected text "NaN"/],
      ['{"a":1,}', /Expected double-quoted property name in JSON at position 7/],
    ] as const) {
      const result = sales.decode(input);
      assert.equal(result.ok, false, input);
      if (result.ok) continue;
      assert.equal(result.malformed, true);
      assert.equal(result.issues.length, 1);
      assert.equal(result.issues[0].path, '');
      assert.match(result.issues[0].message, /^is not valid JSON: /);
      assert.match(result.issues[0].message, why);
    }
  });

  test('reports bytes that are not UTF-8 as not JSON', () => {
    const result = sales.decode(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]));
    assert.deepEqual(result, {
      ok: false,
      malformed: true,
      issues: [{ path: '', message: 'is not valid JSON: its bytes are not valid UTF-8 text' }],
    });
  });

  test('bounds the parser message, which quotes the input', () => {
    const result = sales.decode(`{"orderId": "${'x'.repeat(10_000)}" oops}`);
    assert.equal(result.ok, false);
    if (!result.ok) assert.ok(result.issues[0].message.length < 300, result.issues[0].message);
  });

  test('reports schema violations of well-formed JSON with malformed false', () => {
    assert.deepEqual(sales.decode(JSON.stringify({ ...VALID, amount: 'lots' })), {
      ok: false,
      malformed: false,
      issues: [{ path: '/amount', message: 'must be a number' }],
    });
  });
});

describe('describeIssues', () => {
  const issues: SchemaIssue[] = [
    { path: '/price', message: 'must be a number' },
    { path: '/customer/id', message: 'is required' },
    { path: '/items/2/sku', message: 'is required' },
    { path: '', message: 'must be an object' },
  ];

  test('joins issues into one line with readable field names', () => {
    assert.equal(
      describeIssues(issues),
      'price must be a number; customer.id is required; items[2].sku is required; the record must be an object',
    );
  });

  test('shows at most max issues and counts the rest', () => {
    assert.equal(describeIssues(issues, 2), 'price must be a number; customer.id is required (and 2 more)');
  });
});

describe('invalidRecordError', () => {
  test('a schema violation names the record, the schema and each field, with the issues in details', () => {
    const err = invalidRecordError([{ path: '/amount', message: 'must be at least 0' }], {
      schemaName: 'sales',
      recordIndex: 3,
    });
    assert.ok(isKappaError(err, 'KAPPA_SCHEMA_VIOLATION'));
    assert.equal(err.message, 'Record 3 does not match the schema "sales": amount must be at least 0.');
    assert.deepEqual(err.details, {
      schema: 'sales',
      index: 3,
      issues: [{ path: '/amount', message: 'must be at least 0' }],
    });
  });

  test('bytes that are not JSON are a malformed record, not a schema violation', () => {
    const result = sales.decode('{');
    assert.equal(result.ok, false);
    if (result.ok) return;
    const err = invalidRecordError(result.issues, { recordIndex: 0, malformed: result.malformed });
    assert.ok(isKappaError(err, 'KAPPA_INVALID_RECORD'));
    assert.match(err.message, /^Record 0 is not valid JSON: /);
  });
});

describe('fingerprint', () => {
  test('is a SHA-256 hex digest that ignores key order and required order', () => {
    const a = {
      type: 'object',
      required: ['a', 'b'],
      properties: { a: { type: 'string' }, b: { type: 'number', minimum: 0 } },
    };
    const b = {
      properties: { b: { minimum: 0, type: 'number' }, a: { type: 'string' } },
      required: ['b', 'a'],
      type: 'object',
    };
    assert.match(compileSchema(a).fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(compileSchema(a).fingerprint, compileSchema(b).fingerprint);
  });

  test('is the same for TypeBox schemas built with fields in a different order', () => {
    const reordered = Type.Object({
      sku: Type.Optional(Type.String()),
      ts: Type.Integer(),
      amount: Type.Number({ minimum: 0 }),
      region: Type.Union([Type.Literal('north'), Type.Literal('south'), Type.Literal('east'), Type.Literal('west')]),
      storeId: Type.String(),
      orderId: Type.String(),
    });
    assert.equal(compileSchema(reordered).fingerprint, sales.fingerprint);
  });

  test('changes when the schema changes', () => {
    const fingerprints = new Set([
      sales.fingerprint,
      compileSchema(Type.Object({ ...Sale.properties, amount: Type.Number({ minimum: 1 }) })).fingerprint,
      compileSchema(Type.Object({ ...Sale.properties, sku: Type.String() })).fingerprint,
      compileSchema(Type.Object({ ...Sale.properties, note: Type.Optional(Type.String()) })).fingerprint,
      compileSchema(Type.Object(Sale.properties, { additionalProperties: false })).fingerprint,
    ]);
    assert.equal(fingerprints.size, 5);
  });
});

describe('compiling', () => {
  test('compiles each schema object once and shares the validator', () => {
    const a = compileSchema(Sale) as unknown as { validateFn: unknown };
    const b = compileSchema(Sale, { name: 'other' }) as unknown as { validateFn: unknown };
    assert.equal(a.validateFn, b.validateFn);
  });

  test('keeps lastIssues apart for two RecordSchemas of the same schema', () => {
    const a = compileSchema(Sale);
    const b = compileSchema(Sale);
    assert.equal(a.validate({ ...VALID, amount: -1 }), false);
    assert.equal(b.validate(VALID), true);
    assert.deepEqual(a.lastIssues(), [{ path: '/amount', message: 'must be at least 0' }]);
  });

  test('rejects an invalid JSON Schema with a typed error naming the schema', () => {
    assert.throws(
      () => compileSchema({ type: 'decimal' }, { name: 'prices' }),
      (err: unknown) =>
        isKappaError(err, 'KAPPA_INVALID_ARGUMENT') &&
        /The schema "prices" is not a valid JSON Schema/.test(err.message),
    );
  });

  test('refuses a string format it cannot check, and uses one passed in formats', () => {
    const Email = Type.Object({ email: Type.String({ format: 'email' }) });
    assert.throws(
      () => compileSchema(Email),
      (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && /format "email"/.test(err.message),
    );
    const emails = compileSchema(Email, { formats: { email: /^[^@\s]+@[^@\s]+$/ } });
    assert.equal(emails.validate({ email: 'a@b.example' }), true);
    assert.deepEqual(emails.check({ email: 'nope' }), {
      ok: false,
      issues: [{ path: '/email', message: 'must be a valid email' }],
    });
  });

  test('accepts a plain JSON Schema typed by an explicit type argument', () => {
    interface Point {
      x: number;
      y: number;
    }
    const points = compileSchema<Point>({
      type: 'object',
      required: ['x', 'y'],
      properties: { x: { type: 'number' }, y: { type: 'number' } },
    });
    const result = points.decode('{"x":1,"y":2}');
    assert.ok(result.ok);
    const sum: number = result.value.x + result.value.y;
    assert.equal(sum, 3);
  });
});
