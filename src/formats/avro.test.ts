import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import { KappaError } from '../errors.ts';
import { avroCodec, avroDecoder, avroRangeDecoder, encodeAvro, parseAvroSchema, type AvroSchema } from './avro.ts';
import { COMPAT_CASES } from './avro-compat-cases.ts';
import type { ParsedSchema } from './types.ts';

const parse = (schema: unknown): AvroSchema => parseAvroSchema(JSON.stringify(schema));

function rejects(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KappaError, `expected a KappaError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

/** avsc's own answer: does createResolver accept the pair? */
function avscResolves(reader: unknown, writer: unknown, kappaTypes: boolean): boolean {
  const r = kappaTypes ? parse(reader).avscType : avsc.Type.forSchema(reader as avsc.Schema);
  const w = kappaTypes ? parse(writer).avscType : avsc.Type.forSchema(writer as avsc.Schema);
  try {
    r.createResolver(w);
    return true;
  } catch {
    return false;
  }
}

describe('Avro schema resolution: the specification table', () => {
  test('has at least 25 cases, compatible and incompatible', () => {
    assert.ok(COMPAT_CASES.length >= 25);
    assert.ok(COMPAT_CASES.some((c) => c.compatible) && COMPAT_CASES.some((c) => !c.compatible));
  });

  for (const c of COMPAT_CASES) {
    test(`${c.compatible ? 'compatible' : 'incompatible'}: ${c.name}`, () => {
      const problems = avroCodec.problems(parse(c.reader), parse(c.writer));
      assert.equal(problems.length === 0, c.compatible, `Kappa's walker: ${JSON.stringify(problems)}`);
      if (!c.compatible) {
        assert.equal(problems[0].path, c.path);
        assert.ok(problems[0].rule.length > 20, 'the rule is said in words');
      }
      // The oracle: avsc's resolver, which Kappa decodes with, must agree.
      assert.equal(
        avscResolves(c.reader, c.writer, c.oracle === 'kappa'),
        c.compatible,
        'avsc createResolver disagrees',
      );
      // And the types Kappa builds (base64 bytes, plain records, bounded arrays) resolve the same way.
      assert.equal(avscResolves(c.reader, c.writer, true), c.compatible, "avsc with Kappa's types disagrees");
    });
  }

  test('returns every problem, each with its own field path', () => {
    const writer = parse({
      type: 'record',
      name: 'Sale',
      fields: [
        { name: 'qty', type: 'string' },
        { name: 'region', type: { type: 'enum', name: 'Region', symbols: ['N', 'S'] } },
      ],
    });
    const reader = parse({
      type: 'record',
      name: 'Sale',
      fields: [
        { name: 'qty', type: 'int' },
        { name: 'region', type: { type: 'enum', name: 'Region', symbols: ['N'] } },
        { name: 'amount', type: 'double' },
      ],
    });
    const problems = avroCodec.problems(reader, writer);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['Sale.qty', 'Sale.region', 'Sale.amount'],
    );
    assert.match(problems[0].rule, /string to int/);
    assert.match(problems[1].rule, /symbol\(s\) S/);
    assert.match(problems[2].rule, /no default/);
  });

  test('a different schema type is a problem, not a crash', () => {
    const json: ParsedSchema = { type: 'JSON', canonical: '{}', text: '{}' };
    assert.match(avroCodec.problems(parse('string'), json)[0].rule, /JSON to AVRO/);
  });
});

const saleV1 = {
  type: 'record',
  name: 'Sale',
  namespace: 'com.acme',
  fields: [
    { name: 'orderId', type: 'string' },
    { name: 'qty', type: 'int' },
    { name: 'note', type: 'string' },
  ],
};
const saleV2 = { ...saleV1, fields: [...saleV1.fields, { name: 'region', type: 'string', default: 'unknown' }] };
const saleV3 = {
  ...saleV1,
  fields: [saleV1.fields[0], saleV1.fields[1], { name: 'region', type: 'string', default: 'unknown' }],
};
const saleV4 = { ...saleV3, fields: [saleV3.fields[0], { name: 'qty', type: 'long' }, saleV3.fields[2]] };

describe('Avro records in the Confluent wire format', () => {
  const v1 = parse(saleV1);
  const v2 = parse(saleV2);
  const v3 = parse(saleV3);
  const v4 = parse(saleV4);
  const registry = new Map<number, ParsedSchema>([
    [1, v1],
    [2, v2],
    [3, v3],
    [4, v4],
  ]);
  const lookup = (id: number): ParsedSchema | undefined => registry.get(id);

  test('frames a value: magic byte 0, big-endian schema id, then Avro binary', () => {
    const bytes = encodeAvro(258, v1, { orderId: 'o1', qty: 2, note: '' });
    assert.deepEqual([...bytes.subarray(0, 5)], [0, 0, 0, 1, 2]);
    assert.deepEqual(bytes.subarray(5), v1.avscType.toBuffer({ orderId: 'o1', qty: 2, note: '' }));
  });

  test('round-trips a record as a plain object', () => {
    const value = avroDecoder(v1)(encodeAvro(1, v1, { orderId: 'o1', qty: 2, note: 'hi' }), lookup);
    assert.deepEqual(value, { orderId: 'o1', qty: 2, note: 'hi' });
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });

  test('evolution: a v1 record reads with v2 (field added with a default), v3 (field removed) and v4 (int widened to long)', () => {
    const written = encodeAvro(1, v1, { orderId: 'o1', qty: 2, note: 'gone later' });
    assert.deepEqual(avroDecoder(v2)(written, lookup), {
      orderId: 'o1',
      qty: 2,
      note: 'gone later',
      region: 'unknown',
    });
    assert.deepEqual(avroDecoder(v3)(written, lookup), { orderId: 'o1', qty: 2, region: 'unknown' });
    const v4Reader = avroDecoder(v4);
    assert.deepEqual(v4Reader(written, lookup), { orderId: 'o1', qty: 2, region: 'unknown' });
    // One decoder reads every version of the subject.
    assert.deepEqual(v4Reader(encodeAvro(3, v3, { orderId: 'o3', qty: 7, region: 'north' }), lookup), {
      orderId: 'o3',
      qty: 7,
      region: 'north',
    });
    assert.deepEqual(v4Reader(encodeAvro(4, v4, { orderId: 'o4', qty: 2 ** 40, region: 'west' }), lookup), {
      orderId: 'o4',
      qty: 2 ** 40,
      region: 'west',
    });
  });

  test('a writer the reader cannot read is refused with the field and the rule', () => {
    const written = encodeAvro(4, v4, { orderId: 'o4', qty: 1, region: 'west' });
    rejects(
      () => avroDecoder(v1)(written, lookup),
      'KAPPA_SCHEMA_VIOLATION',
      /schema id 4 cannot be read as Sale: Sale\.(qty|note)/,
    );
  });

  test('values: base64 bytes and fixed, decimal strings, unions unwrapped unless ambiguous, millisecond timestamps', () => {
    const schema = parse({
      type: 'record',
      name: 'Kinds',
      fields: [
        { name: 'raw', type: 'bytes' },
        { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 4 } },
        { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
        {
          name: 'total',
          type: { type: 'fixed', name: 'Total', size: 8, logicalType: 'decimal', precision: 18, scale: 3 },
        },
        { name: 'maybe', type: ['null', 'string'] },
        { name: 'either', type: ['int', 'long', { type: 'enum', name: 'E', symbols: ['A'] }, 'string'] },
        { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'tags', type: { type: 'map', values: { type: 'array', items: 'float' } } },
      ],
    });
    const value = {
      raw: Buffer.from([0, 1, 255]).toString('base64'),
      hash: 'AQIDBA==',
      price: '-12.50',
      total: '123456789012345.678',
      maybe: null,
      either: { string: 'x' },
      at: 1764680000123,
      tags: { a: [0.5] },
    };
    const out = avroDecoder(schema)(encodeAvro(9, schema, value), () => schema);
    assert.deepEqual(out, value);
    assert.deepEqual(JSON.parse(JSON.stringify(out)), value);
    // Decimals accept numbers and fewer fraction digits, and always come back with `scale` of them.
    const again = avroDecoder(schema)(
      encodeAvro(9, schema, { ...value, price: 3.5, total: '-1' }),
      () => schema,
    ) as typeof value;
    assert.equal(again.price, '3.50');
    assert.equal(again.total, '-1.000');
    // A Buffer is accepted for bytes.
    const fromBuffer = avroDecoder(schema)(
      encodeAvro(9, schema, { ...value, raw: Buffer.from('hi') }),
      () => schema,
    ) as typeof value;
    assert.equal(fromBuffer.raw, Buffer.from('hi').toString('base64'));
  });

  test('an enum symbol the reader lacks reads as the enum default; an ambiguous union default is a plain wrapped value', () => {
    const region = (symbols: string[], extra = {}): unknown => ({ type: 'enum', name: 'Region', symbols, ...extra });
    const writer = parse({ type: 'record', name: 'R', fields: [{ name: 'region', type: region(['N', 'S']) }] });
    const reader = parse({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'region', type: region(['N', 'OTHER'], { default: 'OTHER' }) },
        { name: 'size', type: ['int', 'long'], default: 3 },
      ],
    });
    const decode = avroDecoder(reader);
    assert.deepEqual(
      decode(encodeAvro(1, writer, { region: 'S' }), () => writer),
      { region: 'OTHER', size: { int: 3 } },
    );
    assert.deepEqual(
      decode(encodeAvro(1, writer, { region: 'N' }), () => writer),
      { region: 'N', size: { int: 3 } },
    );
  });

  test('a recursive record evolves like any other: every level gets the new default', () => {
    const node = (fields: unknown[]): AvroSchema => parse({ type: 'record', name: 'Node', fields });
    const w = node([
      { name: 'value', type: 'int' },
      { name: 'next', type: ['null', 'Node'] },
    ]);
    const r = node([
      { name: 'value', type: 'long' },
      { name: 'next', type: ['null', 'Node'] },
      { name: 'tag', type: 'string', default: '' },
    ]);
    const written = encodeAvro(1, w, { value: 1, next: { value: 2, next: null } });
    assert.deepEqual(
      avroDecoder(r)(written, () => w),
      { value: 1, next: { value: 2, next: null, tag: '' }, tag: '' },
    );
  });

  test('a field with a record default reads as a plain object too', () => {
    const reader = parse({
      ...saleV1,
      fields: [
        ...saleV1.fields,
        {
          name: 'meta',
          type: { type: 'record', name: 'Meta', fields: [{ name: 'v', type: 'int' }] },
          default: { v: 1 },
        },
      ],
    });
    const value = avroDecoder(reader)(encodeAvro(1, parse(saleV1), { orderId: 'o', qty: 1, note: '' }), lookup) as {
      meta: unknown;
    };
    assert.deepEqual(value.meta, { v: 1 });
  });

  test('longs beyond ±(2^53 − 2) are refused, not rounded, both ways', () => {
    const schema = parse({ type: 'record', name: 'L', fields: [{ name: 'n', type: 'long' }] });
    rejects(() => encodeAvro(1, schema, { n: 2 ** 60 }), 'KAPPA_SCHEMA_VIOLATION', /L\.n: expected a long/);
    rejects(
      () => encodeAvro(1, schema, { n: 5n }),
      'KAPPA_SCHEMA_VIOLATION',
      /L\.n: expected a long.*got 5n \(a BigInt/,
    );
    // 2^60 as a zigzag varint, written by hand.
    const payload = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), encodeZigzag(2n ** 60n)]);
    rejects(
      () => avroDecoder(schema)(payload, () => schema),
      'KAPPA_SCHEMA_VIOLATION',
      /at L\.n: a long is 1152921504606846976, beyond/,
    );
  });

  test('longs between ±2^52 and ±(2^53 − 2) encode and decode exactly (avsc alone flips the sign of the negative ones)', () => {
    const schema = parse({ type: 'record', name: 'L', fields: [{ name: 'n', type: 'long' }] });
    for (const n of [2 ** 52 - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 2, -(2 ** 52) - 1, -(2 ** 53 - 2), -(2 ** 53 - 3)]) {
      const framed = encodeAvro(1, schema, { n });
      assert.deepEqual(framed.subarray(5), encodeZigzag(BigInt(n)), `encoding ${n}`);
      assert.deepEqual(
        avroDecoder(schema)(framed, () => schema),
        { n },
        `decoding ${n}`,
      );
    }
  });

  test('a value that does not fit the schema names the field', () => {
    rejects(
      () => encodeAvro(1, v1, { orderId: 'o', qty: 'two', note: '' }),
      'KAPPA_SCHEMA_VIOLATION',
      /at Sale\.qty: expected an int/,
    );
    rejects(() => encodeAvro(1, v1, { orderId: 'o', qty: 1 }), 'KAPPA_SCHEMA_VIOLATION', /at Sale\.note: .*missing/);
    rejects(() => encodeAvro(1, parse({ type: 'bytes' }), 'not base64!'), 'KAPPA_SCHEMA_VIOLATION', /base64/);
  });
});

function encodeZigzag(n: bigint): Buffer {
  let z = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

describe('Avro bad input', () => {
  const v1 = parse(saleV1);
  const lookup = (id: number): ParsedSchema | undefined => (id === 1 ? v1 : undefined);
  const good = encodeAvro(1, v1, { orderId: 'order-1', qty: 3, note: 'a note' });
  const decode = avroDecoder(v1);

  test('a wrong magic byte', () => {
    const bad = Buffer.from(good);
    bad[0] = 1;
    rejects(() => decode(bad, lookup), 'KAPPA_SCHEMA_VIOLATION', /starts with byte 0x01, not the magic byte 0/);
    rejects(() => decode(Buffer.from('{"a":1}'), lookup), 'KAPPA_SCHEMA_VIOLATION', /0x7b/);
  });

  test('a value shorter than the frame header', () => {
    rejects(() => decode(Buffer.from([0, 0, 0]), lookup), 'KAPPA_SCHEMA_VIOLATION', /3 byte\(s\) long/);
  });

  test('an unknown schema id, whether the lookup returns nothing or throws', () => {
    const other = Buffer.from(good);
    other.writeInt32BE(99, 1);
    rejects(
      () => decode(other, lookup),
      'KAPPA_SCHEMA_VIOLATION',
      /schema id 99, which the schema registry does not know/,
    );
    rejects(
      () =>
        decode(other, () => {
          throw new Error('subject not found');
        }),
      'KAPPA_SCHEMA_VIOLATION',
      /schema id 99.*subject not found/,
    );
  });

  test('a truncated payload names the field where the bytes run out, at every cut', () => {
    for (let cut = 5; cut < good.length; cut++) {
      rejects(
        () => decode(good.subarray(0, cut), lookup),
        'KAPPA_SCHEMA_VIOLATION',
        /invalid at Sale\.(orderId|qty|note): the payload ends in the middle/,
      );
    }
  });

  test('in place (a record inside a batch): a value decodes between its bounds; one cut short never reads into the next', () => {
    const range = avroRangeDecoder(v1);
    const next = encodeAvro(1, v1, { orderId: 'order-2', qty: 4, note: 'the next record' });
    const batch = Buffer.concat([Buffer.from([9, 9]), good, next]);
    assert.deepEqual(range(batch, 2, 2 + good.length, lookup), { orderId: 'order-1', qty: 3, note: 'a note' });
    for (let cut = 5; cut < good.length; cut++) {
      rejects(() => range(batch, 2, 2 + cut, lookup), 'KAPPA_SCHEMA_VIOLATION', /Sale/);
    }
    rejects(() => range(batch, 0, 2 + good.length, lookup), 'KAPPA_SCHEMA_VIOLATION', /magic byte/);
  });

  test('bytes left over after the value', () => {
    rejects(
      () => decode(Buffer.concat([good, Buffer.from([1])]), lookup),
      'KAPPA_SCHEMA_VIOLATION',
      /1 byte\(s\) are left over/,
    );
  });

  test('garbage never crashes and never returns a partial value', { timeout: 60_000 }, () => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed / 0x7fffffff);
    const nested = parse({
      type: 'record',
      name: 'G',
      fields: [
        { name: 'a', type: { type: 'array', items: { type: 'map', values: ['null', 'long', 'string'] } } },
        { name: 'e', type: { type: 'enum', name: 'E', symbols: ['X', 'Y'] } },
      ],
    });
    const decodeNested = avroDecoder(nested);
    for (let i = 0; i < 2000; i++) {
      const body = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      const bytes = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), body]);
      try {
        const value = decodeNested(bytes, () => nested);
        assert.ok(nested.avscType.isValid(value), `decoded garbage into an invalid value: ${JSON.stringify(value)}`);
      } catch (err) {
        assert.ok(err instanceof KappaError && err.code === 'KAPPA_SCHEMA_VIOLATION', String(err));
      }
    }
  });

  test('an array block announcing 2^40 items is refused at once, not looped over', { timeout: 10_000 }, () => {
    const nulls = parse({ type: 'array', items: 'long' });
    const payload = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), encodeZigzag(2n ** 40n), Buffer.from([2, 0])]);
    const started = Date.now();
    rejects(() => avroDecoder(nulls)(payload, () => nulls), 'KAPPA_SCHEMA_VIOLATION', /announces 1099511627776 items/);
    assert.ok(Date.now() - started < 1000);
  });
});

describe('Avro garbage counts in fields the reader skips or in maps', () => {
  const hugeCount = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), encodeZigzag(2n ** 40n), Buffer.from([2, 0, 2])]);

  test('a map block announcing 2^40 entries is refused at once', { timeout: 10_000 }, () => {
    const map = parse({ type: 'map', values: 'null' });
    rejects(() => avroDecoder(map)(hugeCount, () => map), 'KAPPA_SCHEMA_VIOLATION', /announces 1099511627776 items/);
  });

  test('so is an array in a writer field the reader dropped (skipped, not read)', { timeout: 10_000 }, () => {
    const writer = parse({
      type: 'record',
      name: 'W',
      fields: [
        { name: 'a', type: { type: 'array', items: 'int' } },
        { name: 'b', type: 'int' },
      ],
    });
    const reader = parse({ type: 'record', name: 'W', fields: [{ name: 'b', type: 'int' }] });
    const started = Date.now();
    rejects(() => avroDecoder(reader)(hugeCount, () => writer), 'KAPPA_SCHEMA_VIOLATION', /W\.a/);
    assert.ok(Date.now() - started < 1000);
  });
});

describe('Avro schema text', () => {
  test('a bare "string" is a schema', () => {
    const s = parseAvroSchema('"string"');
    assert.equal(s.canonical, '"string"');
    assert.equal(s.type, 'AVRO');
    assert.equal(s.text, '"string"');
  });

  test('whitespace, key order, namespaces written differently and doc give the same canonical text', () => {
    const a = parseAvroSchema(
      '{"type":"record","name":"Sale","namespace":"com.acme","fields":[{"name":"qty","type":"int"}]}',
    );
    const b = parseAvroSchema(`{
      "fields": [ { "type": {"type": "int"}, "name": "qty", "doc": "how many" } ],
      "name": "com.acme.Sale", "type": "record", "doc": "one sale"
    }`);
    assert.equal(a.canonical, b.canonical);
    assert.equal(a.canonical, '{"name":"com.acme.Sale","type":"record","fields":[{"name":"qty","type":"int"}]}');
  });

  test('defaults, aliases and logical types change the canonical text, not the Parsing Canonical Form', () => {
    const base = { type: 'record', name: 'Sale', fields: [{ name: 'qty', type: 'int', default: 0 }] };
    const variants = [
      { ...base, fields: [{ name: 'qty', type: 'int', default: 1 }] },
      { ...base, fields: [{ name: 'qty', type: 'int', default: 0, aliases: ['quantity'] }] },
      { ...base, aliases: ['Order'] },
      { ...base, fields: [{ name: 'qty', type: { type: 'int', logicalType: 'date' }, default: 0 }] },
    ];
    const canonical = new Set([base, ...variants].map((s) => parse(s).canonical));
    assert.equal(canonical.size, 5);
    const pcf = new Set([base, ...variants].map((s) => parse(s).parsingCanonicalForm));
    assert.equal(pcf.size, 1);
  });

  test("the Parsing Canonical Form equals avsc's (which the specification's fingerprints use)", () => {
    const schemas = [
      saleV2,
      {
        type: 'record',
        name: 'a.N',
        fields: [
          { name: 'next', type: ['null', 'N'] },
          { name: 'e', type: { type: 'enum', name: 'E', namespace: 'b', symbols: ['X'] } },
          { name: 'e2', type: 'b.E' },
        ],
      },
      { type: 'map', values: { type: 'fixed', name: 'F', size: 3 } },
      ['null', 'int', { type: 'array', items: 'bytes' }],
    ];
    for (const schema of schemas) {
      assert.equal(
        parse(schema).parsingCanonicalForm,
        JSON.stringify(avsc.Type.forSchema(schema as avsc.Schema).schema()),
      );
    }
  });

  test('text that is not JSON', () => {
    rejects(() => parseAvroSchema('{"type": "record",'), 'KAPPA_INVALID_SCHEMA', /The Avro schema is not JSON/);
    rejects(() => parseAvroSchema('string'), 'KAPPA_INVALID_SCHEMA', /not JSON/);
  });

  const invalid: [string, unknown, RegExp][] = [
    [
      'an unknown type',
      { type: 'record', name: 'S', fields: [{ name: 'qty', type: 'integer' }] },
      /at S\.qty: unknown type "integer"/,
    ],
    ['a bad record name', { type: 'record', name: '1Sale', fields: [] }, /"1Sale" is not a valid Avro name/],
    [
      'a bad field name',
      { type: 'record', name: 'S', fields: [{ name: 'q-ty', type: 'int' }] },
      /field name "q-ty" is not a valid Avro name/,
    ],
    [
      'a default of the wrong type',
      { type: 'record', name: 'S', fields: [{ name: 'qty', type: 'int', default: 'one' }] },
      /at S\.qty: the default "one" does not match .*expected a 32-bit integer/,
    ],
    [
      'a union default not of the first branch',
      { type: 'record', name: 'S', fields: [{ name: 'n', type: ['null', 'string'], default: 'x' }] },
      /at S\.n: .*first branch \(null\)/,
    ],
    [
      'a duplicate field',
      {
        type: 'record',
        name: 'S',
        fields: [
          { name: 'a', type: 'int' },
          { name: 'a', type: 'long' },
        ],
      },
      /at S\.a: the field a is declared twice/,
    ],
    [
      'a type defined twice',
      {
        type: 'record',
        name: 'S',
        fields: [
          { name: 'a', type: { type: 'fixed', name: 'F', size: 1 } },
          { name: 'b', type: { type: 'fixed', name: 'F', size: 2 } },
        ],
      },
      /at S\.b: the type F is defined twice/,
    ],
    ['a union inside a union', ['null', ['int']], /\(root\)<branch 1>: a union may not contain another union/],
    ['a union with two strings', ['string', 'string'], /already has a string branch/],
    [
      'an enum default not among its symbols',
      { type: 'enum', name: 'E', symbols: ['A'], default: 'B' },
      /default "B" is not one of its symbols/,
    ],
    ['a fixed without size', { type: 'fixed', name: 'F' }, /a fixed needs "size"/],
    ['a record without fields', { type: 'record', name: 'S' }, /a record needs "fields"/],
    ['a redefined primitive', { type: 'fixed', name: 'int', size: 1 }, /primitive type and cannot be redefined/],
    ['an array without items', { type: 'array' }, /an array needs "items"/],
  ];
  for (const [what, schema, pattern] of invalid) {
    test(`refuses ${what}, saying where`, () => {
      rejects(() => parse(schema), 'KAPPA_INVALID_SCHEMA', pattern);
    });
  }

  test('references: named types from referenced schemas are usable by full name, and stay names in the canonical text', () => {
    const address = JSON.stringify({
      type: 'record',
      name: 'com.acme.Address',
      fields: [{ name: 'city', type: 'string' }],
    });
    const money = JSON.stringify({ type: 'fixed', name: 'com.acme.Money', size: 8 });
    const refs = [
      { name: 'com.acme.Address', subject: 'address', version: 1 },
      { name: 'com.acme.Money', subject: 'money', version: 3 },
    ];
    const texts: Record<string, string> = { address, money };
    const customer = parseAvroSchema(
      JSON.stringify({
        type: 'record',
        name: 'Customer',
        namespace: 'com.acme',
        fields: [
          { name: 'home', type: 'Address' },
          { name: 'credit', type: 'com.acme.Money' },
        ],
      }),
      refs,
      (ref) => texts[ref.subject],
    );
    assert.equal(
      customer.canonical,
      '{"name":"com.acme.Customer","type":"record","fields":[{"name":"home","type":"com.acme.Address"},{"name":"credit","type":"com.acme.Money"}]}',
    );
    const value = { home: { city: 'Lyon' }, credit: Buffer.alloc(8, 1).toString('base64') };
    assert.deepEqual(
      avroDecoder(customer)(encodeAvro(5, customer, value), () => customer),
      value,
    );
    rejects(
      () => parseAvroSchema(customer.text),
      'KAPPA_INVALID_SCHEMA',
      /at Customer\.home: unknown type "Address" \(looked for com\.acme\.Address\)/,
    );
  });
});
