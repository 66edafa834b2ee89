/**
 * Kappa's Protobuf records against Google's own implementation (Debian's python3-protobuf): Python
 * encodes messages of a .proto file and Kappa decodes them once framed in the Confluent wire format,
 * and Python decodes what Kappa encodes. Python gets the file's descriptors from Google's compiler
 * (Debian's protobuf-compiler: `protoc --descriptor_set_out`), so no part of the Python side goes
 * through protobufjs. (protobufjs's own FileDescriptorProto export was tried first, as it would need
 * one package less, but Python's descriptor pool refuses it: map entries come out misnamed.)
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeProtobuf, protobufCodec, protobufDecoder } from '../../src/formats/protobuf.ts';
import { frameHeader } from '../../src/formats/protobuf-wire.ts';
import { tempDir } from '../support/cleanup.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { runCommand } from '../support/processes.ts';

const SUITE = 'the Protobuf interop test';
const PYTHON = '/usr/bin/python3';

const PROTO = `syntax = "proto3";
package shop.v1;

message Sale {
  string order_id = 1;
  string sku = 2;
  string region = 3;
  int32 qty = 4;
  double amount = 5;
  int64 ts = 6;
  Channel channel = 7;
  repeated Line lines = 8;
  map<string, int64> counters = 9;
  bytes signature = 10;
  oneof payment { string card = 11; int32 voucher = 12; }
  optional sint32 discount = 13;
  uint64 big = 14;

  message Line { string sku = 1; fixed32 qty = 2; float weight = 3; }
  enum Channel { WEB = 0; SHOP = 1; PHONE = 2; }
}

message Refund { string order_id = 1; sint64 cents = 2; bool partial = 3; }
`;

// Values in Kappa's shapes (src/formats/protobuf-decode.ts): every field present, unset ones null or default.
const SALES = [
  {
    order_id: 'o-1',
    sku: 'sku-9',
    region: 'north',
    qty: 3,
    amount: 12.5,
    ts: 1_733_000_000_000,
    channel: 'SHOP',
    lines: [
      { sku: 'a', qty: 4_000_000_000, weight: 0.5 },
      { sku: 'b', qty: 1, weight: 0 },
    ],
    counters: { views: 7, clicks: '9223372036854775807' },
    signature: 'AAECA/8=',
    card: '4111',
    voucher: null,
    discount: -5,
    big: '18446744073709551615',
  },
  {
    order_id: 'ö-2 ✓',
    sku: '',
    region: 'south',
    qty: -1,
    amount: -0.25,
    ts: -1,
    channel: 'WEB',
    lines: [],
    counters: {},
    signature: '',
    card: null,
    voucher: 0,
    discount: null,
    big: 0,
  },
];
const REFUNDS = [{ order_id: 'o-1', cents: '-9007199254740993', partial: true }];

const PYTHON_SIDE = `
import base64, json, sys
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
factory = message_factory.MessageFactory(pool)
def message_class(name):
    descriptor = pool.FindMessageTypeByName(name)
    get = getattr(message_factory, 'GetMessageClass', None)
    return get(descriptor) if get else factory.GetPrototype(descriptor)
out = []
for item in json.load(sys.stdin):
    cls = message_class(item['message'])
    if sys.argv[2] == 'encode':
        out.append(base64.b64encode(json_format.ParseDict(item['value'], cls()).SerializeToString()).decode())
    else:
        m = cls.FromString(base64.b64decode(item['payload']))
        out.append(json_format.MessageToDict(m, preserving_proto_field_name=True, including_default_value_fields=True))
print(json.dumps(out))
`;

/** Kappa's shape as proto3 JSON for Python's ParseDict: unset (null) fields left out. */
function withoutNulls(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

async function python(dir: string, mode: 'encode' | 'decode', items: unknown[]): Promise<unknown[]> {
  const run = await runCommand(PYTHON, [join(dir, 'side.py'), join(dir, 'set.pb'), mode], {
    input: JSON.stringify(items),
    timeoutMs: 30_000,
  });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as unknown[];
}

async function setUp(t: TestContext): Promise<string | null> {
  if (
    requireDebianPackage(t, {
      package: 'python3-protobuf',
      path: '/usr/lib/python3/dist-packages/google/protobuf/descriptor_pool.py',
      suite: SUITE,
    }) === null
  )
    return null;
  const protoc = requireDebianPackage(t, { package: 'protobuf-compiler', path: '/usr/bin/protoc', suite: SUITE });
  if (protoc === null) return null;
  const dir = tempDir(t, 'kappa-protobuf-interop-');
  writeFileSync(join(dir, 'sale.proto'), PROTO);
  writeFileSync(join(dir, 'side.py'), PYTHON_SIDE);
  const compiled = await runCommand(
    protoc,
    [`--descriptor_set_out=${join(dir, 'set.pb')}`, '--include_imports', '-I', dir, 'sale.proto'],
    {
      timeoutMs: 30_000,
    },
  );
  assert.equal(compiled.code, 0, compiled.stderr);
  return dir;
}

/** Kappa's shape of a Sale as Python's MessageToDict prints it: 64-bit integers as strings, unset fields left out. */
function saleAsProto3Json(sale: (typeof SALES)[number]): Record<string, unknown> {
  const out = withoutNulls(sale);
  out.ts = String(sale.ts);
  out.big = String(sale.big);
  out.counters = Object.fromEntries(Object.entries(sale.counters).map(([k, v]) => [k, String(v)]));
  return out;
}

const SCHEMA_ID = 42;

test(
  'records Python encodes with Google’s protobuf decode in Kappa once framed (messages [0] and [1])',
  { timeout: 60_000 },
  async (t) => {
    const dir = await setUp(t);
    if (dir === null) return;
    const schema = protobufCodec.parse(PROTO);
    const items = [
      ...SALES.map((value) => ({ message: 'shop.v1.Sale', value: withoutNulls(value) })),
      ...REFUNDS.map((value) => ({ message: 'shop.v1.Refund', value })),
    ];
    const payloads = (await python(dir, 'encode', items)) as string[];
    const lookup = (id: number) => (id === SCHEMA_ID ? schema : undefined);
    const framed = (indexes: number[], payload: string) =>
      Buffer.concat([frameHeader(SCHEMA_ID, indexes), Buffer.from(payload, 'base64')]);
    const decodeSale = protobufDecoder(schema, 'Sale');
    SALES.forEach((sale, i) => assert.deepEqual(decodeSale(framed([0], payloads[i]), lookup), sale));
    assert.deepEqual(protobufDecoder(schema, 'Refund')(framed([1], payloads[2]), lookup), REFUNDS[0]);

    // The same Python-written records through a later reader: a field renamed, one widened, one added.
    const v2 = protobufCodec.parse(
      PROTO.replace('string region = 3;', 'string area = 3;').replace(
        'int32 qty = 4;',
        'int64 qty = 4; string note = 15;',
      ),
    );
    assert.deepEqual(protobufCodec.problems(v2, schema), []);
    const { region, ...rest } = SALES[1];
    assert.deepEqual(protobufDecoder(v2, 'Sale')(framed([0], payloads[1]), lookup), {
      ...rest,
      area: region,
      note: '',
    });
  },
);

test('records Kappa encodes decode with Google’s protobuf in Python', { timeout: 60_000 }, async (t) => {
  const dir = await setUp(t);
  if (dir === null) return;
  const schema = protobufCodec.parse(PROTO);
  const payload = (bytes: Buffer, indexes: number[]) => {
    const header = frameHeader(SCHEMA_ID, indexes);
    assert.deepEqual(bytes.subarray(0, header.length), header);
    return bytes.subarray(header.length).toString('base64');
  };
  const items = [
    ...SALES.map((value) => ({
      message: 'shop.v1.Sale',
      payload: payload(encodeProtobuf(SCHEMA_ID, schema, 'Sale', value), [0]),
    })),
    ...REFUNDS.map((value) => ({
      message: 'shop.v1.Refund',
      payload: payload(encodeProtobuf(SCHEMA_ID, schema, 'Refund', value), [1]),
    })),
  ];
  const decoded = await python(dir, 'decode', items);
  assert.deepEqual(decoded, [...SALES.map(saleAsProto3Json), { ...REFUNDS[0] }]);
});
