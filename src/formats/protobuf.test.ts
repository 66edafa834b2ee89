import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { KappaError } from '../errors.ts';
import { encodeProtobuf, protobufCodec, protobufDecoder } from './protobuf.ts';
import { frameHeader, readFrame } from './protobuf-wire.ts';
import type { ParsedSchema } from './types.ts';

/** A proto3 (or proto2) file in package `t`. */
function proto(body: string, syntax: 'proto2' | 'proto3' = 'proto3'): ParsedSchema {
  return protobufCodec.parse(`syntax = "${syntax}";\npackage t;\n${body}\n`);
}

function rejects(fn: () => unknown, code: string, pattern: RegExp): KappaError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof KappaError, `expected a KappaError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.match(caught.message, pattern);
  return caught;
}

const SALE =
  'message Sale { string order_id = 1; string sku = 2; string region = 3; int32 qty = 4; double amount = 5; int64 ts = 6; }';

interface Case {
  name: string;
  writer: string;
  reader: string;
  syntax?: 'proto2' | 'proto3';
  /** null: compatible; else a pattern every problem list must match, and the path of the first problem. */
  problem: null | { path: string; rule: RegExp };
}

// The table: writer -> reader, as problems(reader, writer) sees it (the registry's BACKWARD check).
// "Updating" = protobuf.dev, Programming Guides, "Updating A Message Type"; "Confluent X" = the
// Difference.Type of io.confluent.kafka.schemaregistry.protobuf.diff that classifies the change.
const CASES: Case[] = [
  // Updating: "old code will happily read new messages and ignore any new fields"; Confluent FIELD_ADDED.
  {
    name: 'a field added',
    writer: 'message S { int32 a = 1; }',
    reader: 'message S { int32 a = 1; string b = 2; }',
    problem: null,
  },
  // Updating: "Fields can be removed, as long as the field number is not used again"; Confluent FIELD_REMOVED.
  {
    name: 'a field removed',
    writer: 'message S { int32 a = 1; string b = 2; }',
    reader: 'message S { int32 a = 1; }',
    problem: null,
  },
  // Updating: field names are not on the wire; Confluent FIELD_NAME_CHANGED is compatible.
  {
    name: 'a field renamed',
    writer: 'message S { int32 a = 1; }',
    reader: 'message S { int32 renamed = 1; }',
    problem: null,
  },
  // Updating: "int32, uint32, int64, uint64, and bool are all compatible"; Confluent scalar kind GENERAL_NUMBER.
  { name: 'int32 -> int64', writer: 'message S { int32 a = 1; }', reader: 'message S { int64 a = 1; }', problem: null },
  // Updating: same group as above.
  { name: 'uint32 -> bool', writer: 'message S { uint32 a = 1; }', reader: 'message S { bool a = 1; }', problem: null },
  // Updating: "enum is compatible with int32, uint32, int64, and uint64 in terms of wire format".
  {
    name: 'int32 -> enum',
    writer: 'message S { int32 a = 1; }',
    reader: 'message S { E a = 1; } enum E { Z = 0; }',
    problem: null,
  },
  // Updating: "sint32 and sint64 are compatible with each other".
  {
    name: 'sint32 -> sint64',
    writer: 'message S { sint32 a = 1; }',
    reader: 'message S { sint64 a = 1; }',
    problem: null,
  },
  // Updating: "… but are not compatible with the other integer types" (zigzag vs plain varint).
  {
    name: 'int32 -> sint32',
    writer: 'message S { int32 a = 1; }',
    reader: 'message S { sint32 a = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /from int32 to sint32/ },
  },
  // Updating: "fixed32 is compatible with sfixed32".
  {
    name: 'fixed32 -> sfixed32',
    writer: 'message S { fixed32 a = 1; }',
    reader: 'message S { sfixed32 a = 1; }',
    problem: null,
  },
  // Updating: "fixed64 with sfixed64".
  {
    name: 'fixed64 -> sfixed64',
    writer: 'message S { fixed64 a = 1; }',
    reader: 'message S { sfixed64 a = 1; }',
    problem: null,
  },
  // Wire types I32 and I64 differ (protobuf.dev "Encoding"); Confluent FIXED32 vs FIXED64 scalar kinds.
  {
    name: 'fixed32 -> fixed64',
    writer: 'message S { fixed32 a = 1; }',
    reader: 'message S { fixed64 a = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /from fixed32 to fixed64/ },
  },
  // Updating: "string and bytes are compatible as long as the bytes are valid UTF-8".
  {
    name: 'string -> bytes',
    writer: 'message S { string a = 1; }',
    reader: 'message S { bytes a = 1; }',
    problem: null,
  },
  // LEN vs VARINT wire types; Confluent FIELD_SCALAR_KIND_CHANGED.
  {
    name: 'string -> int32',
    writer: 'message S { string a = 1; }',
    reader: 'message S { int32 a = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /int32 reader cannot read string data/ },
  },
  // float (I32) and double (I64) are separate groups; Confluent scalar kinds FLOAT and DOUBLE.
  {
    name: 'float -> double',
    writer: 'message S { float a = 1; }',
    reader: 'message S { double a = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /from float to double/ },
  },
  // Confluent FIELD_NAMED_TYPE_CHANGED: a message-typed field must keep its message.
  {
    name: 'message type changed to another message',
    writer: 'message S { L a = 1; } message L { int32 n = 1; } message M { int32 n = 1; }',
    reader: 'message S { M a = 1; } message L { int32 n = 1; } message M { int32 n = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /from message t\.L to message t\.M/ },
  },
  // Recursive comparison of the same message (Confluent compareMessageTypes -> MessageSchemaDiff).
  {
    name: 'a nested message field changes wire type',
    writer: 'message S { L a = 1; } message L { int32 n = 1; }',
    reader: 'message S { L a = 1; } message L { string n = 1; }',
    problem: { path: 't.L.n (field 1)', rule: /from int32 to string/ },
  },
  // Confluent FIELD_KIND_CHANGED (message vs scalar), though Updating allows bytes holding an encoded message.
  {
    name: 'message -> bytes',
    writer: 'message S { L a = 1; } message L { int32 n = 1; }',
    reader: 'message S { bytes a = 1; } message L { int32 n = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /from message t\.L to bytes/ },
  },
  // Updating: repeated numeric fields are packed, "which will not be parsed correctly when a singular field is expected"; Confluent FIELD_NUMERIC_LABEL_CHANGED.
  {
    name: 'repeated int32 -> int32',
    writer: 'message S { repeated int32 a = 1; }',
    reader: 'message S { int32 a = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /between repeated and singular/ },
  },
  // Updating: "For string, bytes, and message fields, singular is compatible with repeated"; Confluent FIELD_STRING_OR_BYTES_LABEL_CHANGED.
  {
    name: 'string -> repeated string',
    writer: 'message S { string a = 1; }',
    reader: 'message S { repeated string a = 1; }',
    problem: null,
  },
  // Updating: "Changing a single optional field or extension into a member of a new oneof is binary compatible".
  {
    name: 'one field into a new oneof',
    writer: 'message S { int32 a = 1; }',
    reader: 'message S { oneof o { int32 a = 1; string b = 2; } }',
    problem: null,
  },
  // Updating: moving multiple fields into a new oneof may lose data; Confluent MULTIPLE_FIELDS_MOVED_TO_ONEOF.
  {
    name: 'two fields into a new oneof',
    writer: 'message S { int32 a = 1; string b = 2; }',
    reader: 'message S { oneof o { int32 a = 1; string b = 2; } }',
    problem: { path: 't.S.a (field 1)', rule: /moved into oneof o/ },
  },
  // Confluent FIELD_MOVED_TO_EXISTING_ONEOF.
  {
    name: 'a field into an existing oneof',
    writer: 'message S { int32 a = 1; oneof o { string b = 2; } }',
    reader: 'message S { oneof o { int32 a = 1; string b = 2; } }',
    problem: { path: 't.S.a (field 1)', rule: /moved into oneof o/ },
  },
  // Updating ("Backwards-compatibility issues" of oneof): "Move fields into or out of a oneof: You may lose some of your information".
  {
    name: 'a field out of a oneof',
    writer: 'message S { oneof o { int32 a = 1; string b = 2; } }',
    reader: 'message S { int32 a = 1; oneof o { string b = 2; } }',
    problem: { path: 't.S.a (field 1)', rule: /moved out of oneof o/ },
  },
  // Confluent ONEOF_FIELD_ADDED is compatible: a new member is never set by old writers.
  {
    name: 'a new field added to a oneof',
    writer: 'message S { oneof o { int32 a = 1; } }',
    reader: 'message S { oneof o { int32 a = 1; string b = 2; } }',
    problem: null,
  },
  // proto3 `optional` is a synthetic oneof, not a real one: implicit -> explicit presence keeps the wire format.
  {
    name: 'a field made proto3 optional',
    writer: 'message S { int32 a = 1; }',
    reader: 'message S { optional int32 a = 1; }',
    problem: null,
  },
  // proto2 "Required Is Forever" (protobuf.dev, proto2 guide); Confluent REQUIRED_FIELD_ADDED.
  {
    name: 'a required field added',
    syntax: 'proto2',
    writer: 'message S { optional int32 a = 1; }',
    reader: 'message S { optional int32 a = 1; required string b = 2; }',
    problem: { path: 't.S.b (field 2)', rule: /required field was added/ },
  },
  // Confluent REQUIRED_FIELD_REMOVED.
  {
    name: 'a required field removed',
    syntax: 'proto2',
    writer: 'message S { optional int32 a = 1; required string b = 2; }',
    reader: 'message S { optional int32 a = 1; }',
    problem: { path: 't.S.b (field 2)', rule: /required field was removed/ },
  },
  // "Required is forever": an optional field made required refuses records that left it out.
  {
    name: 'an optional field made required',
    syntax: 'proto2',
    writer: 'message S { optional int32 a = 1; }',
    reader: 'message S { required int32 a = 1; }',
    problem: { path: 't.S.a (field 1)', rule: /became required/ },
  },
  // Confluent MESSAGE_REMOVED: the record's message must still exist under its full name.
  {
    name: "the record's message renamed",
    writer: 'message Sale { int32 a = 1; }',
    reader: 'message Order { int32 a = 1; }',
    problem: { path: 't.Sale', rule: /message t\.Sale was removed/ },
  },
  // Confluent MESSAGE_MOVED is compatible: a record's message indexes refer to its writer's file.
  {
    name: 'a message added before the record one',
    writer: 'message Sale { int32 a = 1; }',
    reader: 'message Header { int32 h = 1; } message Sale { int32 a = 1; }',
    problem: null,
  },
  // Confluent ENUM_CONST_ADDED / ENUM_CONST_REMOVED are compatible (proto3 enums are open).
  {
    name: 'an enum value added',
    writer: 'message S { E e = 1; } enum E { Z = 0; }',
    reader: 'message S { E e = 1; } enum E { Z = 0; ONE = 1; }',
    problem: null,
  },
  // Updating: map values follow the scalar rules (a map is a repeated entry message on the wire).
  {
    name: 'map value int32 -> int64',
    writer: 'message S { map<string, int32> m = 1; }',
    reader: 'message S { map<string, int64> m = 1; }',
    problem: null,
  },
  {
    name: 'map value int32 -> string',
    writer: 'message S { map<string, int32> m = 1; }',
    reader: 'message S { map<string, string> m = 1; }',
    problem: { path: 't.S.m (field 1)', rule: /from map<string, int32> to map<string, string>/ },
  },
  // Confluent FIELD_KIND_CHANGED (MAP vs SCALAR).
  {
    name: 'map -> repeated string',
    writer: 'message S { map<string, int32> m = 1; }',
    reader: 'message S { repeated string m = 1; }',
    problem: { path: 't.S.m (field 1)', rule: /a map field must stay a map/ },
  },
];

describe('protobuf compatibility (problems(reader, writer))', () => {
  test('the table has at least 20 cases, compatible and not', () => {
    assert.ok(CASES.length >= 20);
    assert.ok(CASES.some((c) => c.problem === null));
    assert.ok(CASES.some((c) => c.problem !== null));
  });
  for (const c of CASES) {
    test(`${c.name}: ${c.problem === null ? 'compatible' : 'a problem'}`, () => {
      const problems = protobufCodec.problems(proto(c.reader, c.syntax), proto(c.writer, c.syntax));
      if (c.problem === null) {
        assert.deepEqual(problems, []);
        return;
      }
      assert.ok(problems.length > 0, 'expected a problem');
      assert.equal(problems[0].path, c.problem.path);
      assert.match(problems[0].rule, c.problem.rule);
    });
  }

  test('every problem is returned, each with its path', () => {
    const writer = proto('message S { int32 a = 1; string b = 2; float c = 3; }');
    const reader = proto('message S { string a = 1; int32 b = 2; double c = 3; }');
    const problems = protobufCodec.problems(reader, writer);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['t.S.a (field 1)', 't.S.b (field 2)', 't.S.c (field 3)'],
    );
  });

  test('a recursive message is compared once and ends', () => {
    const tree = 'message Node { int32 v = 1; repeated Node kids = 2; }';
    assert.deepEqual(protobufCodec.problems(proto(tree), proto(tree)), []);
  });
});

describe('protobuf records: round trips and evolution', () => {
  const v1 = proto(SALE);
  const sale = { order_id: 'o-1', sku: 'sku-9', region: 'north', qty: 3, amount: 12.5, ts: 1_733_000_000_000 };
  const registry = (schemas: Record<number, ParsedSchema>) => (id: number) => schemas[id];

  test('a sale round-trips with the same schema', () => {
    const bytes = encodeProtobuf(7, v1, 'Sale', sale);
    assert.deepEqual(protobufDecoder(v1, 'Sale')(bytes, registry({ 7: v1 })), sale);
  });

  test('every scalar kind, containers and unset fields come out in the documented shapes', () => {
    const all = proto(`message A {
      int64 big = 1; uint64 ubig = 2; bytes raw = 3; E e = 4; map<int64, string> m = 5; repeated sint32 r = 6;
      optional int32 opt = 7; B sub = 8; oneof pick { string s = 9; int32 i = 10; } bool flag = 11; float f = 12; fixed64 f64 = 13;
    }
    message B { string x = 1; }
    enum E { ZERO = 0; ONE = 1; }`);
    const value = {
      big: '-9223372036854775808',
      ubig: '18446744073709551615',
      raw: 'AAEC',
      e: 'ONE',
      m: { '9007199254740993': 'x', '-1': 'y' },
      r: [-1, 2],
      i: 5,
      f64: 42,
    };
    const decoded = protobufDecoder(all, 'A')(encodeProtobuf(1, all, 'A', value), () => all);
    assert.deepEqual(decoded, { ...value, opt: null, sub: null, s: null, flag: false, f: 0 });
    const empty = protobufDecoder(all, 'A')(encodeProtobuf(1, all, 'A', {}), () => all);
    assert.deepEqual(empty, {
      big: 0,
      ubig: 0,
      raw: '',
      e: 'ZERO',
      m: {},
      r: [],
      opt: null,
      sub: null,
      s: null,
      i: null,
      flag: false,
      f: 0,
      f64: 0,
    });
  });

  test('a field added: records written before it read with its default', () => {
    const v2 = proto(SALE.replace('int64 ts = 6;', 'int64 ts = 6; string channel = 7; repeated string tags = 8;'));
    const old = encodeProtobuf(1, v1, 'Sale', sale);
    assert.deepEqual(protobufDecoder(v2, 'Sale')(old, registry({ 1: v1 })), { ...sale, channel: '', tags: [] });
  });

  test('a field removed: the reader no longer sees it', () => {
    const v2 = proto(SALE.replace('string sku = 2; ', ''));
    const old = encodeProtobuf(1, v1, 'Sale', sale);
    const { sku: _sku, ...rest } = sale;
    assert.deepEqual(protobufDecoder(v2, 'Sale')(old, registry({ 1: v1 })), rest);
  });

  test('a field renamed: the value comes out under the reader’s name', () => {
    const v2 = proto(SALE.replace('string region = 3;', 'string area = 3;'));
    const old = encodeProtobuf(1, v1, 'Sale', sale);
    const { region, ...rest } = sale;
    const decoded = protobufDecoder(v2, 'Sale')(old, registry({ 1: v1 }));
    assert.deepEqual(decoded, { ...rest, area: region });
    assert.deepEqual(Object.keys(decoded), ['order_id', 'sku', 'area', 'qty', 'amount', 'ts']);
  });

  test('int32 widened to int64: old values keep their value, negative ones too', () => {
    const v2 = proto(SALE.replace('int32 qty = 4;', 'int64 qty = 4;'));
    const decode = protobufDecoder(v2, 'Sale');
    for (const qty of [0, 1, -1, 2_147_483_647, -2_147_483_648]) {
      const old = encodeProtobuf(1, v1, 'Sale', { ...sale, qty });
      assert.equal(decode(old, registry({ 1: v1, 2: v2 })).qty, qty);
    }
  });

  test('records of three schema versions decode with one reader', () => {
    const v2 = proto(SALE.replace('int32 qty = 4;', 'int64 qty = 4; string channel = 7;'));
    const v3 = proto(
      SALE.replace('string sku = 2; ', '').replace('int32 qty = 4;', 'int64 qty = 4; string channel = 7;'),
    );
    const schemas = registry({ 1: v1, 2: v2, 3: v3 });
    const decode = protobufDecoder(v3, 'Sale');
    const records = [
      encodeProtobuf(1, v1, 'Sale', sale),
      encodeProtobuf(2, v2, 'Sale', { ...sale, qty: 2 ** 40, channel: 'web' }),
      encodeProtobuf(3, v3, 'Sale', { order_id: 'o-3', region: 'east', qty: 1, amount: 1, ts: 5, channel: 'shop' }),
    ];
    assert.deepEqual(
      records.map((r) => decode(r, schemas)),
      [
        { order_id: 'o-1', region: 'north', qty: 3, amount: 12.5, ts: 1_733_000_000_000, channel: '' },
        { order_id: 'o-1', region: 'north', qty: 2 ** 40, amount: 12.5, ts: 1_733_000_000_000, channel: 'web' },
        { order_id: 'o-3', region: 'east', qty: 1, amount: 1, ts: 5, channel: 'shop' },
      ],
    );
  });

  test('an incompatible change is refused only for records that set the field', () => {
    const v2 = proto(SALE.replace('string sku = 2;', 'int32 sku = 2;'));
    const decode = protobufDecoder(v2, 'Sale');
    rejects(
      () => decode(encodeProtobuf(1, v1, 'Sale', sale), registry({ 1: v1 })),
      'KAPPA_SCHEMA_VIOLATION',
      /t\.Sale\.sku \(field 2\).*string/,
    );
    const { sku: _sku, ...withoutSku } = sale;
    assert.equal(decode(encodeProtobuf(1, v1, 'Sale', withoutSku), registry({ 1: v1 })).sku, 0);
  });
});

describe('protobuf records: the message-index array (Confluent wire format)', () => {
  const file = proto(`message First { int32 a = 1; }
    message Second { int32 b = 1; message Inner0 { int32 c = 1; } message Inner1 { int32 d = 1; } message Inner2 { int32 e = 1; } }`);
  const header = (id: number, ...tail: number[]) =>
    Buffer.from([0, (id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255, ...tail]);

  test('[0], the first message, is the single byte 0', () => {
    const bytes = encodeProtobuf(258, file, 'First', { a: 1 });
    assert.deepEqual(bytes, Buffer.concat([header(258, 0), Buffer.from([0x08, 0x01])]));
  });

  test('[1] is count 1 then index 1, zigzag: 02 02', () => {
    const bytes = encodeProtobuf(1, file, 'Second', { b: 1 });
    assert.deepEqual(bytes, Buffer.concat([header(1, 0x02, 0x02), Buffer.from([0x08, 0x01])]));
  });

  test('[1, 2] names a nested message: 04 02 04', () => {
    const bytes = encodeProtobuf(1, file, 't.Second.Inner2', { e: 1 });
    assert.deepEqual(bytes, Buffer.concat([header(1, 0x04, 0x02, 0x04), Buffer.from([0x08, 0x01])]));
  });

  test('[0, 2] is 04 00 04 and names the third message inside the first', () => {
    const nested = proto('message Outer { message X {} message Y {} message Z { int32 z = 1; } int32 o = 1; }');
    const bytes = encodeProtobuf(1, nested, 'Outer.Z', { z: 2 });
    assert.deepEqual(bytes, Buffer.concat([header(1, 0x04, 0x00, 0x04), Buffer.from([0x08, 0x02])]));
  });

  test("headers match Confluent's own serializer (@confluentinc/schemaregistry) byte for byte, both ways", () => {
    // Confluent's JavaScript client, an independent implementation of the same framing.
    const requireCjs = createRequire(import.meta.url);
    const { SchemaId } = requireCjs('@confluentinc/schemaregistry/dist/serde/serde.js') as {
      SchemaId: new (
        type: string,
        id?: number,
        guid?: string,
        indexes?: number[],
      ) => { idToBytes(): Buffer; fromBytes(b: Buffer): number; id?: number; messageIndexes?: number[] };
    };
    for (const indexes of [[0], [1], [0, 2], [3, 1, 4], [100], [70_000]]) {
      const theirs = new SchemaId('PROTOBUF', 258, undefined, indexes).idToBytes();
      const ours = frameHeader(258, indexes);
      assert.deepEqual(ours, theirs);
      assert.deepEqual(readFrame(Buffer.concat([theirs, Buffer.from([8, 1])])).indexes, indexes);
      const parsed = new SchemaId('PROTOBUF');
      assert.equal(parsed.fromBytes(Buffer.concat([ours, Buffer.from([8, 1])])), ours.length);
      assert.deepEqual([parsed.id, parsed.messageIndexes], [258, indexes]);
    }
  });

  test('the decoder reads the writer message the indexes name', () => {
    const decodeInner = protobufDecoder(file, 'Second.Inner2');
    assert.deepEqual(
      decodeInner(encodeProtobuf(1, file, 'Second.Inner2', { e: 9 }), () => file),
      { e: 9 },
    );
    // [0] written long-hand (count 1, index 0) is the same message as the short form.
    assert.deepEqual(
      protobufDecoder(file, 'First')(Buffer.from([...header(1, 0x02, 0x00), 0x08, 0x05]), () => file),
      { a: 5 },
    );
  });

  test('a message index that names no message is refused', () => {
    const decode = protobufDecoder(file, 'First');
    rejects(
      () => decode(Buffer.from([...header(1, 0x02, 0x0a), 0x08, 0x05]), () => file),
      'KAPPA_SCHEMA_VIOLATION',
      /message \[5\] of schema 1/,
    );
    rejects(
      () => decode(Buffer.from([...header(1, 0x04, 0x00, 0x02), 0x08, 0x05]), () => file),
      'KAPPA_SCHEMA_VIOLATION',
      /message \[0, 1\]/,
    );
    rejects(() => decode(Buffer.from([...header(1, 0x01, 0x00)]), () => file), 'KAPPA_SCHEMA_VIOLATION', /count is -1/);
  });
});

describe('protobuf records: bad input', () => {
  const v1 = proto(SALE);
  const decode = protobufDecoder(v1, 'Sale');
  const good = encodeProtobuf(1, v1, 'Sale', { order_id: 'o-1', sku: 's', region: 'r', qty: 1, amount: 2, ts: 3 });

  test('a wrong magic byte', () => {
    rejects(
      () => decode(Buffer.from([1, ...good.subarray(1)]), () => v1),
      'KAPPA_SCHEMA_VIOLATION',
      /not the Confluent magic byte 0/,
    );
  });

  test('an unknown schema id, whether the lookup gives undefined or throws', () => {
    rejects(
      () => decode(good, () => undefined),
      'KAPPA_SCHEMA_VIOLATION',
      /schema id 1, which the registry does not know/,
    );
    const error = rejects(
      () =>
        decode(good, () => {
          throw new Error('no such id');
        }),
      'KAPPA_SCHEMA_VIOLATION',
      /schema id 1/,
    );
    assert.equal((error.cause as Error).message, 'no such id');
  });

  test('a truncated value: inside the header, the index array and the payload', () => {
    rejects(() => decode(good.subarray(0, 4), () => v1), 'KAPPA_SCHEMA_VIOLATION', /shorter than a Confluent-framed/);
    rejects(() => decode(Buffer.from([0, 0, 0, 0, 1, 0x04, 0x00]), () => v1), 'KAPPA_SCHEMA_VIOLATION', /truncated/);
    rejects(
      () => decode(good.subarray(0, good.length - 3), () => v1),
      'KAPPA_SCHEMA_VIOLATION',
      /not a valid t\.Sale .*truncated/,
    );
  });

  test('a garbage payload', () => {
    rejects(
      () => decode(Buffer.from([0, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff]), () => v1),
      'KAPPA_SCHEMA_VIOLATION',
      /not a valid t\.Sale/,
    );
    rejects(
      () => decode(Buffer.from([0, 0, 0, 0, 1, 0, 0x07, 0x01]), () => v1),
      'KAPPA_SCHEMA_VIOLATION',
      /not a valid t\.Sale/,
    );
  });

  test('a value that does not fit the message is refused with its path', () => {
    rejects(
      () => encodeProtobuf(1, v1, 'Sale', { qty: 'three' }),
      'KAPPA_SCHEMA_VIOLATION',
      /Sale\.qty: expected an integer/,
    );
    rejects(
      () => encodeProtobuf(1, v1, 'Sale', { qty: 2 ** 31 }),
      'KAPPA_SCHEMA_VIOLATION',
      /Sale\.qty: expected an integer from -2147483648/,
    );
    rejects(
      () => encodeProtobuf(1, v1, 'Sale', { ts: '99999999999999999999' }),
      'KAPPA_SCHEMA_VIOLATION',
      /Sale\.ts: expected a int64/,
    );
    rejects(
      () => encodeProtobuf(1, v1, 'Sale', { colour: 'red' }),
      'KAPPA_SCHEMA_VIOLATION',
      /Sale\.colour: t\.Sale has no field/,
    );
    const oneof = proto('message S { oneof o { int32 a = 1; string b = 2; } }');
    rejects(() => encodeProtobuf(1, oneof, 'S', { a: 1, b: 'x' }), 'KAPPA_SCHEMA_VIOLATION', /both set/);
    const p2 = proto('message S { required int32 a = 1; }', 'proto2');
    rejects(() => encodeProtobuf(1, p2, 'S', {}), 'KAPPA_SCHEMA_VIOLATION', /S\.a: a required field is missing/);
    rejects(() => encodeProtobuf(1, v1, 'Nope', {}), 'KAPPA_INVALID_SCHEMA', /no message "Nope"/);
    // proto3 enums are open (an unnamed number is kept, and decodes as that number); proto2 enums are closed.
    const open = proto('message A { E e = 1; } enum E { Z = 0; O = 1; }');
    assert.deepEqual(
      protobufDecoder(open, 'A')(encodeProtobuf(1, open, 'A', { e: 5 }), () => open),
      { e: 5 },
    );
    const closed = proto('message A { optional E e = 1; } enum E { Z = 0; O = 1; }', 'proto2');
    rejects(
      () => encodeProtobuf(1, closed, 'A', { e: 5 }),
      'KAPPA_SCHEMA_VIOLATION',
      /A\.e: expected a value of enum t\.E \(Z, O\)/,
    );
  });
});

describe('protobuf schemas: parse', () => {
  test('a syntax error names its line', () => {
    const error = rejects(
      () => protobufCodec.parse('syntax = "proto3";\nmessage A {\n  int32 a = 1\n  int32 b = 2;\n}\n'),
      'KAPPA_INVALID_SCHEMA',
      /line 4/,
    );
    assert.equal(error.details?.line, 4);
  });

  test('an unknown type names the type and its line', () => {
    const error = rejects(
      () => protobufCodec.parse('syntax = "proto3";\nmessage A {\n  int32 a = 1;\n  Missing m = 2;\n}\n'),
      'KAPPA_INVALID_SCHEMA',
      /Missing/,
    );
    assert.equal(error.details?.line, 4);
    assert.equal(error.details?.type, 'Missing');
  });

  test('a duplicate field number names the field and its line', () => {
    const error = rejects(
      () => protobufCodec.parse('syntax = "proto3";\nmessage A {\n  int32 a = 1;\n  int32 b = 1;\n}\n'),
      'KAPPA_INVALID_SCHEMA',
      /duplicate id 1/,
    );
    assert.equal(error.details?.line, 4);
    assert.equal(error.details?.message, 'A');
  });

  test('field numbers outside 1..2^29-1 or in 19000-19999 are refused', () => {
    rejects(() => proto('message A { int32 a = 0; }'), 'KAPPA_INVALID_SCHEMA', /field numbers run from 1/);
    rejects(() => proto('message A { int32 a = 19500; }'), 'KAPPA_INVALID_SCHEMA', /19000-19999/);
  });

  test('imports: a Confluent reference gives the text; well-known files need none; others are refused', () => {
    const common = 'syntax = "proto3";\npackage common;\nmessage Money { int64 cents = 1; string currency = 2; }\n';
    const text = `syntax = "proto3";
package shop;
import "common/money.proto";
import "google/protobuf/timestamp.proto";
message Sale { common.Money price = 1; google.protobuf.Timestamp at = 2; }`;
    const ref = { name: 'common/money.proto', subject: 'money', version: 1 };
    const schema = protobufCodec.parse(text, [ref], (r) => (r.name === ref.name ? common : ''));
    const value = { price: { cents: 1999, currency: 'EUR' }, at: { seconds: 1_733_000_000, nanos: 5 } };
    assert.deepEqual(
      protobufDecoder(schema, 'Sale')(encodeProtobuf(1, schema, 'Sale', value), () => schema),
      value,
    );
    rejects(
      () => protobufCodec.parse(text),
      'KAPPA_INVALID_SCHEMA',
      /imports "common\/money\.proto", which is neither among its references/,
    );
  });

  test('the canonical form ignores whitespace, comments and option order, not message order', () => {
    const a = protobufCodec.parse(
      'syntax = "proto3";\npackage t;\nmessage A { int32 x = 1 [deprecated = true, json_name = "ex"]; string y = 2; }\nmessage B {}\n',
    );
    const b = protobufCodec.parse(
      '// the same file\nsyntax = "proto3";   package t;\n/* block */ message A {\n  string y = 2;\n  int32 x = 1 [json_name = "ex", deprecated = true]; // trailing\n}\nmessage B { }',
    );
    const reordered = protobufCodec.parse(
      'syntax = "proto3";\npackage t;\nmessage B {}\nmessage A { int32 x = 1 [deprecated = true, json_name = "ex"]; string y = 2; }\n',
    );
    assert.equal(a.canonical, b.canonical);
    assert.notEqual(a.canonical, reordered.canonical);
    assert.notEqual(a.canonical, proto('message A { int64 x = 1; string y = 2; } message B {}').canonical);
    assert.equal(a.text.includes('json_name'), true);
  });
});
