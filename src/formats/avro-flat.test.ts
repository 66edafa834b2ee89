import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileAvroFlat } from './avro-flat.ts';
import { avroRangeDecoder, encodeAvro, parseAvroSchema } from './avro.ts';
import { FRAME_HEADER_BYTES } from './types.ts';

/** A small seeded generator (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIELDS = [
  { name: 'id', type: 'string' },
  { name: 'region', type: 'string' },
  { name: 'ref', type: 'string' },
  { name: 'qty', type: 'int' },
  { name: 'ts', type: 'long' },
  { name: 'ratio', type: 'float' },
  { name: 'amount', type: 'double' },
  { name: 'paid', type: 'boolean' },
  { name: 'nothing', type: 'null' },
  { name: '__proto__', type: 'string' },
];
const schema = parseAvroSchema(JSON.stringify({ type: 'record', name: 'Mixed', fields: FIELDS }));
const type = schema.avscType;

const REGIONS = ['EU', 'US', 'APAC', 'LATAM', '', 'région', '東京', 'x'.repeat(80)];

function generator(seed: number) {
  const r = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const ascii = (n: number): string =>
    String.fromCharCode(...Array.from({ length: n }, () => 32 + Math.floor(r() * 95)));
  const str = (): string => {
    const k = r();
    if (k < 0.5) return pick(REGIONS);
    if (k < 0.8) return ascii(Math.floor(r() * 40));
    return `${ascii(3)}${pick(['é', '€', '😀', '\u0000', '\uFFFD', '\uD800'])}${ascii(2)}`;
  };
  const int = (): number => {
    const k = r();
    if (k < 0.3) return Math.floor(r() * 200) - 100;
    if (k < 0.5) return pick([2 ** 27 - 1, 2 ** 27, -(2 ** 27), -(2 ** 27) - 1, 2 ** 31 - 1, -(2 ** 31), 0, -1]);
    return Math.floor(r() * 2 ** 32) - 2 ** 31;
  };
  const long = (): number => {
    const k = r();
    if (k < 0.3) return 1_700_000_000_000 + Math.floor(r() * 1e10);
    const bits = Math.floor(r() * 54);
    const magnitude = Math.min(2 ** 53 - 2, Math.floor(2 ** bits * (1 + r())) + pick([-1, 0, 1]));
    return r() < 0.5 ? magnitude : -magnitude;
  };
  const double = (): number =>
    r() < 0.2 ? pick([NaN, -0, 0, Infinity, -Infinity, 5e-324, Number.MAX_VALUE]) : (r() - 0.5) * 10 ** (r() * 20);
  return (): Record<string, unknown> => {
    const value: Record<string, unknown> = {
      id: str(),
      region: str(),
      // Rarely repeats, so its field stops interning: strings of every length made the other way.
      ref: r() < 0.9 ? ascii(Math.floor(r() * 24)) : str(),
      qty: int(),
      ts: long(),
      ratio: Math.fround(double()),
      amount: double(),
      paid: r() < 0.5,
      nothing: null,
    };
    Object.defineProperty(value, '__proto__', { value: str(), enumerable: true, writable: true, configurable: true });
    return value;
  };
}

/** What avsc (with Kappa's types) makes of `buf`: the value, or null when it refuses it or bytes are left. */
function byAvsc(buf: Buffer): { value: unknown } | null {
  try {
    const { value, offset } = type.decode(buf, 0);
    return offset === buf.length ? { value } : null;
  } catch {
    return null;
  }
}

function zigzagBytes(n: number): number {
  let z = n >= 0 ? 2 * n : -2 * n - 1;
  let bytes = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    bytes++;
  }
  return bytes;
}

describe('the generated Avro decoder of flat records', () => {
  const flat = compileAvroFlat(type);

  it('is made for a record of primitive fields, and not for one with a union, a nested record, bytes or a logical type', () => {
    assert.notEqual(flat, null);
    for (const field of [
      { name: 'u', type: ['null', 'string'] },
      { name: 'r', type: { type: 'record', name: 'Inner', fields: [{ name: 'a', type: 'int' }] } },
      { name: 'b', type: 'bytes' },
      { name: 'd', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
      { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A'] } },
    ]) {
      const other = parseAvroSchema(JSON.stringify({ type: 'record', name: 'Other', fields: [...FIELDS, field] }));
      assert.equal(compileAvroFlat(other.avscType), null, JSON.stringify(field));
    }
    assert.equal(compileAvroFlat(parseAvroSchema('"string"').avscType), null);
  });

  it('decodes 20,000 generated records exactly as avsc does, and leaves to avsc only the varints it cannot read exactly', () => {
    const next = generator(7);
    let left = 0;
    for (let n = 0; n < 20_000; n++) {
      const value = next();
      const buf = type.toBuffer(value);
      const expected = byAvsc(buf);
      assert.notEqual(expected, null);
      const got = flat!(buf, 0, buf.length);
      const mustLeave = zigzagBytes(value.qty as number) > 4 || zigzagBytes(value.ts as number) > 7;
      if (mustLeave) {
        assert.equal(got, undefined, `record ${n}: ${JSON.stringify(value)}`);
        left++;
        continue;
      }
      assert.notEqual(got, undefined, `record ${n}: ${JSON.stringify(value)}`);
      assert.deepEqual(got, expected!.value, `record ${n}`);
      assert.deepEqual(Object.keys(got!), Object.keys(expected!.value as object));
      assert.equal(Object.getPrototypeOf(got), Object.prototype);
    }
    // The generator reaches the edges often; some thousands of records of every kind are decoded here.
    assert.ok(left > 0 && 20_000 - left > 5_000, `${left} records left to avsc`);
  });

  it('on truncated, extended and damaged bytes returns avsc’s value or nothing, never another value', () => {
    const next = generator(11);
    const r = random(3);
    let decoded = 0;
    let cases = 0;
    const check = (buf: Buffer): void => {
      cases++;
      const got = flat!(buf, 0, buf.length);
      if (got === undefined) return;
      decoded++;
      const expected = byAvsc(buf);
      assert.notEqual(expected, null, `avsc refuses ${buf.toString('hex')}, the generated decoder read it`);
      assert.deepEqual(got, expected!.value, buf.toString('hex'));
    };
    for (let n = 0; n < 400; n++) {
      const buf = type.toBuffer(next());
      for (let len = 0; len < buf.length; len++) check(buf.subarray(0, len));
      check(Buffer.concat([buf, Buffer.from([0])]));
      for (let m = 0; m < 20; m++) {
        const damaged = Buffer.from(buf);
        for (let j = 1 + Math.floor(r() * 3); j > 0; j--)
          damaged[Math.floor(r() * damaged.length)] = Math.floor(r() * 256);
        check(damaged);
      }
    }
    assert.ok(decoded > 1000 && decoded < cases, `${decoded} of ${cases} damaged values decoded`);
  });

  it('with the fields a view reads, makes just those, as avsc has them, and finds the same end', () => {
    const read = new Set(['region', 'ts', 'amount', 'ratio']);
    const projected = compileAvroFlat(type, read)!;
    const next = generator(17);
    let made = 0;
    for (let n = 0; n < 5000; n++) {
      const buf = type.toBuffer(next());
      const full = flat!(buf, 0, buf.length);
      const got = projected(buf, 0, buf.length);
      assert.equal(got === undefined, full === undefined, `record ${n}`);
      if (got === undefined) continue;
      made++;
      assert.deepEqual(Object.keys(got), ['region', 'ts', 'ratio', 'amount']);
      for (const name of read) assert.ok(Object.is(got[name], full![name]), `record ${n}: ${name}`);
      assert.equal(projected(buf, 0, buf.length - 1), undefined);
    }
    assert.ok(made > 1000, `${made} records made`);
  });

  it('reads a value inside a larger buffer only up to its end (a record of a batch)', () => {
    const sale = (id: string, ts: number): Record<string, unknown> =>
      JSON.parse(
        `{"id":"${id}","region":"EU","ref":"r","qty":3,"ts":${ts},"ratio":0.5,"amount":12.5,"paid":true,"nothing":null,"__proto__":"p"}`,
      ) as Record<string, unknown>;
    const a = type.toBuffer(sale('o-1', 1_733_000_000_000));
    const b = type.toBuffer(sale('o-2', -7));
    const batch = Buffer.concat([a, b]);
    assert.deepEqual(flat!(batch, a.length, batch.length), byAvsc(b)!.value);
    assert.equal(flat!(batch, 0, a.length - 1), undefined);
    assert.equal(flat!(batch, 0, batch.length), undefined); // bytes left over after the first record
  });

  it('the decoder of a topic returns the same values through it as before, and still refuses what avsc refuses', () => {
    const decode = avroRangeDecoder(schema);
    const lookup = (): typeof schema => schema;
    const next = generator(13);
    for (let n = 0; n < 2000; n++) {
      const value = next();
      const framed = encodeAvro(1, schema, value);
      const expected = type.decode(framed, FRAME_HEADER_BYTES).value;
      assert.deepEqual(decode(framed, 0, framed.length, lookup), expected);
    }
    const framed = encodeAvro(1, schema, next());
    assert.throws(() => decode(framed, 0, framed.length - 1, lookup), { code: 'KAPPA_SCHEMA_VIOLATION' });
  });
});
