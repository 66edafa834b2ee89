/**
 * Part 1 of the formats bench (bench/formats.ts): decode + validate rate of the sales record on
 * one thread, as JSON (today's path), Avro and Protobuf, over the same sales.
 *
 * Each format's records lie end to end in one buffer, as a batch holds them. The JSON path reads
 * a record by byte range, as the engine's fold calls it; the Avro and Protobuf decoders take a
 * Uint8Array, so their loop makes a subarray per record, as the engine would have to. Each format
 * has its own loop function, so no call site sees more than one decoder (which would slow all of
 * them). Each loop sums the decoded `qty`s, so the values are used; the sums must agree.
 */
import { deepStrictEqual } from 'node:assert';
import { valueDecoder } from '../../src/stream/value-decoder.ts';
import { Type, topic } from '../../src/index.ts';
import {
  avroDecoder,
  encodeAvro,
  encodeProtobuf,
  parseAvroSchema,
  protobufCodec,
  protobufDecoder,
  type ParsedSchema,
} from '../../src/formats/index.ts';
import { nowMs } from './harness.ts';
import { SALE_AVSC, SALE_PROTO, type SaleValue, sales as salesValues } from './formats-sales.ts';
import { PARTITIONS, TOPIC } from './sales-events.ts';

/** The ids the writer schemas are looked up by. */
const AVRO_ID = 1;
const PROTOBUF_ID = 2;

export interface FormatRate {
  /** Records per second in the fastest round. */
  perS: number;
  /** Records per second in the slowest round. */
  worstPerS: number;
  bytesPerRecord: number;
}

export type DecodeResult = Record<'json' | 'avro' | 'protobuf', FormatRate>;

/** Records laid end to end: record i is `buf[starts[i], starts[i + 1])`. */
interface Packed {
  buf: Buffer;
  starts: Int32Array;
}

function pack(values: Buffer[]): Packed {
  const starts = new Int32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) starts[i + 1] = starts[i] + values[i].length;
  return { buf: Buffer.concat(values), starts };
}

/** valueDecoder's function; its fourth argument (a topic with a format's schema catalog) is unused by the JSON path. */
type JsonDecode = (buf: Buffer | null, start: number, length: number, catalog: null) => unknown;
type FramedDecode = (bytes: Uint8Array, writerSchemaFor: (id: number) => ParsedSchema | undefined) => unknown;

function loopJson(decode: JsonDecode, { buf, starts }: Packed): number {
  let sum = 0;
  const n = starts.length - 1;
  for (let i = 0; i < n; i++) sum += (decode(buf, starts[i], starts[i + 1] - starts[i], null) as SaleValue).qty;
  return sum;
}

function loopAvro(decode: FramedDecode, { buf, starts }: Packed, lookup: (id: number) => ParsedSchema): number {
  let sum = 0;
  const n = starts.length - 1;
  for (let i = 0; i < n; i++) sum += (decode(buf.subarray(starts[i], starts[i + 1]), lookup) as SaleValue).qty;
  return sum;
}

function loopProtobuf(decode: FramedDecode, { buf, starts }: Packed, lookup: (id: number) => ParsedSchema): number {
  let sum = 0;
  const n = starts.length - 1;
  for (let i = 0; i < n; i++) sum += (decode(buf.subarray(starts[i], starts[i + 1]), lookup) as SaleValue).qty;
  return sum;
}

/** Decodes `records` sales in each format `rounds` times; the fastest and slowest round of each. */
export function runDecodeBench(records: number, rounds: number): DecodeResult {
  const values = salesValues(records);
  const Sale = Type.Object({
    orderId: Type.String(),
    sku: Type.String(),
    region: Type.String(),
    qty: Type.Integer(),
    amount: Type.Number(),
    ts: Type.Integer(),
  });
  const sales = topic(TOPIC, { partitions: PARTITIONS, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts });
  const jsonDecode = valueDecoder(sales as unknown as Parameters<typeof valueDecoder>[0]) as unknown as JsonDecode;
  const avsc = parseAvroSchema(SALE_AVSC);
  const avroDecode = avroDecoder(avsc);
  const avroLookup = (): ParsedSchema => avsc;
  const proto = protobufCodec.parse(SALE_PROTO);
  const protobufDecode = protobufDecoder(proto, 'Sale');
  const protobufLookup = (): ParsedSchema => proto;

  const json = pack(values.map((v) => Buffer.from(JSON.stringify(v))));
  const avro = pack(values.map((v) => encodeAvro(AVRO_ID, avsc, v)));
  const protobuf = pack(values.map((v) => encodeProtobuf(PROTOBUF_ID, proto, 'Sale', v)));

  // Every decoder must give back the sale itself before its speed means anything.
  for (let i = 0; i < records; i++) {
    const [s, e] = [i, i + 1];
    deepStrictEqual(jsonDecode(json.buf, json.starts[s], json.starts[e] - json.starts[s], null), values[i]);
    deepStrictEqual(avroDecode(avro.buf.subarray(avro.starts[s], avro.starts[e]), avroLookup), values[i]);
    deepStrictEqual(
      protobufDecode(protobuf.buf.subarray(protobuf.starts[s], protobuf.starts[e]), protobufLookup),
      values[i],
    );
  }

  const passes = {
    json: () => loopJson(jsonDecode, json),
    avro: () => loopAvro(avroDecode, avro, avroLookup),
    protobuf: () => loopProtobuf(protobufDecode, protobuf, protobufLookup),
  };
  const order = ['json', 'avro', 'protobuf'] as const;
  const expected = values.reduce((s, v) => s + v.qty, 0);
  const times: Record<(typeof order)[number], number[]> = { json: [], avro: [], protobuf: [] };
  for (const f of order) passes[f](); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < order.length; k++) {
      const f = order[(round + k) % order.length];
      const t0 = nowMs();
      const sum = passes[f]();
      times[f].push(nowMs() - t0);
      if (sum !== expected) throw new Error(`invariant: the ${f} pass summed qty ${sum}, the sales sum to ${expected}`);
    }
  }
  const rate = (f: (typeof order)[number], packed: Packed): FormatRate => ({
    perS: (records / Math.min(...times[f])) * 1000,
    worstPerS: (records / Math.max(...times[f])) * 1000,
    bytesPerRecord: packed.buf.length / records,
  });
  return { json: rate('json', json), avro: rate('avro', avro), protobuf: rate('protobuf', protobuf) };
}
