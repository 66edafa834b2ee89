/**
 * The TypeScript types `kappa types` prints (typescript.ts) describe the values the decoders really
 * produce: a value decoded from each schema is written as a literal of the generated type and the
 * TypeScript compiler must accept it, and must refuse it once one field is wrong (so the check can
 * fail). Then the command itself on files.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { tempDir } from '../../test/support/cleanup.ts';
import { kappaInProcess } from '../../test/support/cli.ts';
import { avroDecoder, encodeAvro, encodeProtobuf, parseAvroSchema, protobufCodec, protobufDecoder } from './index.ts';
import type { ProtobufSchema } from './protobuf-schema.ts';
import { avroTypeScript, protobufTypeScript } from './typescript.ts';

const AVSC = {
  type: 'record',
  name: 'Sale',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'cents', type: 'long' },
    { name: 'note', type: ['null', 'string'], default: null },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } },
    { name: 'either', type: ['int', 'long', 'null'] },
    {
      name: 'lines',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Line',
          fields: [
            { name: 'sku', type: 'string' },
            { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
            { name: 'raw', type: 'bytes' },
          ],
        },
      },
    },
    { name: 'tags', type: { type: 'map', values: 'int' } },
    { name: 'maybe', type: ['null', 'Line'] },
  ],
};

const PROTO = `syntax = "proto3";
package shop;
enum Kind { A = 0; B = 1; }
message Order {
  string id = 1;
  int64 cents = 2;
  repeated Line lines = 3;
  map<string, int32> tags = 4;
  optional string note = 5;
  Kind kind = 6;
  oneof pay { string card = 7; bytes token = 8; }
  message Line { string sku = 1; double price = 2; }
  Line first = 9;
  uint64 big = 10;
}`;

/** The compiler's errors for `source` (strict), as text. */
function typeErrors(dir: string, name: string, source: string): string[] {
  const file = join(dir, `${name}.ts`);
  writeFileSync(file, source);
  const program = ts.createProgram([file], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022 });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

function checkAgainst(dir: string, declarations: string, root: string, value: unknown, broken: unknown): void {
  const ok = typeErrors(dir, `${root}-ok`, `${declarations}\nexport const v: ${root} = ${JSON.stringify(value)};\n`);
  assert.deepEqual(ok, [], `${declarations}\n${JSON.stringify(value)}`);
  const bad = typeErrors(dir, `${root}-bad`, `${declarations}\nexport const v: ${root} = ${JSON.stringify(broken)};\n`);
  assert.ok(bad.length > 0, 'a wrong value is refused');
}

test(
  'the types of an Avro schema accept the values avroDecoder gives, and refuse a wrong one',
  { timeout: 60_000 },
  (t) => {
    const schema = parseAvroSchema(JSON.stringify(AVSC));
    const line = { sku: 'x', price: '12.50', raw: Buffer.from([1, 2]) };
    const bytes = encodeAvro(1, schema, {
      id: 'o-1',
      cents: 2 ** 40,
      note: null,
      kind: 'B',
      either: { long: 7 },
      lines: [line],
      tags: { a: 1 },
      maybe: line,
    });
    const decoded = avroDecoder(schema)(bytes, () => schema) as Record<string, unknown>;
    const declarations = avroTypeScript(schema);
    assert.match(declarations, /export interface Sale \{/);
    checkAgainst(tempDir(t, 'kappa-ts-'), declarations, 'Sale', decoded, { ...decoded, kind: 'C' });
  },
);

test(
  'the types of a .proto message accept the values protobufDecoder gives, and refuse a wrong one',
  { timeout: 60_000 },
  (t) => {
    const schema = protobufCodec.parse(PROTO) as ProtobufSchema;
    const bytes = encodeProtobuf(1, schema, 'shop.Order', {
      id: 'o-1',
      cents: 5,
      lines: [{ sku: 'x', price: 1.5 }],
      tags: { a: 1 },
      kind: 'B',
      token: Buffer.from([1]).toString('base64'),
      big: '18446744073709551615',
    });
    const decoded = protobufDecoder(schema, 'shop.Order')(bytes, () => schema);
    const declarations = protobufTypeScript(schema, 'shop.Order');
    assert.match(declarations, /export interface Order \{/);
    checkAgainst(tempDir(t, 'kappa-ts-'), declarations, 'Order', decoded, { ...decoded, first: 'not a message' });
  },
);

test('kappa types prints them for a .avsc or a .proto file, and says what it takes', async (t) => {
  const dir = tempDir(t, 'kappa-types-');
  writeFileSync(join(dir, 'sale.avsc'), JSON.stringify(AVSC));
  writeFileSync(join(dir, 'shop.proto'), PROTO);
  const avro = await kappaInProcess(['types', join(dir, 'sale.avsc')]);
  assert.equal(avro.code, 0, avro.stderr);
  assert.match(avro.stdout, /export interface Sale \{\n {2}id: string;\n {2}cents: number;/);
  const proto = await kappaInProcess(['types', join(dir, 'shop.proto'), '--message', 'Order']);
  assert.equal(proto.code, 0, proto.stderr);
  assert.match(proto.stdout, /export interface Order \{/);
  assert.match(proto.stdout, /big: number \| string;/);
  const none = await kappaInProcess(['types', join(dir, 'shop.proto'), '--message', 'Nope']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /declares no message "Nope" \(its top-level messages: Order\)/);
  writeFileSync(join(dir, 'x.txt'), '');
  const other = await kappaInProcess(['types', join(dir, 'x.txt')]);
  assert.match(other.stderr, /give an Avro schema \(\.avsc\) or a Protobuf file \(\.proto\)/);
});
