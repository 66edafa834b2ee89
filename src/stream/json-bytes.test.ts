import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type JsonBytes, JsonWriter, jsonText } from './json-bytes.ts';
import { seededRandom } from '../random.ts';

const text = (b: JsonBytes): string => b.bytes.toString('utf8', b.start, b.end);

/** Writes `value` with a fresh writer and checks the bytes are JSON.stringify's. */
function same(writer: JsonWriter, value: object): void {
  const written = writer.write(value);
  assert.ok(written !== null, `the writer took ${JSON.stringify(value)}`);
  assert.equal(text(written), JSON.stringify(value));
}

/** Doubles of every kind: random bit patterns, decimals of a few places, products like q1's price × 0.908. */
function doubles(n: number): number[] {
  const random = seededRandom(7);
  const bits = new Uint32Array(2);
  const f64 = new Float64Array(bits.buffer);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    bits[0] = Math.floor(random() * 2 ** 32);
    bits[1] = Math.floor(random() * 2 ** 32);
    out.push(f64[0]);
    const places = Math.floor(random() * 8);
    out.push(Math.round(random() * 10 ** Math.floor(random() * 12)) / 10 ** places);
    out.push(Math.round(10 ** (6 * random()) * 100) * 0.908);
    out.push(-random() * 10 ** Math.floor(random() * 30 - 10));
    // 13 to 16 significant digits, 1 to 21 decimals: near the 15-digit test of writeFraction.
    out.push(Math.round(random() * 10 ** (13 + Math.floor(random() * 4))) / 10 ** (1 + Math.floor(random() * 21)));
  }
  return out;
}

describe('JsonWriter: bytes as JSON.stringify makes them', () => {
  it('numbers: integers at every size and sign, fractions, the edges of fixed notation', () => {
    const w = new JsonWriter();
    const edges = [
      0,
      -0,
      1,
      -1,
      9,
      10,
      99,
      100,
      2 ** 31 - 1,
      2 ** 31,
      -(2 ** 31),
      2 ** 32,
      2 ** 32 + 1,
      1e9,
      1e9 - 1,
      1e9 + 1,
      123456789012,
      1_700_000_000_123,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 53,
      2 ** 60,
      1e20,
      1e21,
      1e22,
      -1e21,
      0.1,
      0.5,
      1.5,
      0.000001,
      0.0000015,
      0.0000001,
      1e-7,
      5e-324,
      123.456,
      99.99,
      0.908,
      112098.048,
      1e15 + 0.5,
      999999999999999.9,
      0.1 + 0.2,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Number.EPSILON,
      1 / 3,
      2 / 3,
      100.5,
      1e-6,
    ];
    // Around each power of ten from 1e-7 to 1e16: the doubles next to it, and decimals of 14 to 17 digits.
    const bits = new Float64Array(1);
    const word = new BigInt64Array(bits.buffer);
    const next = (x: number, by: bigint): number => {
      bits[0] = x;
      word[0] += by;
      return bits[0];
    };
    for (let n = -7; n <= 16; n++) {
      const p = 10 ** n;
      for (const by of [-3n, -2n, -1n, 1n, 2n, 3n]) edges.push(next(p, by), -next(p, by));
      edges.push(p * 1.23456789012345, p * 9.99999999999999, p * 9.99999999999999 + p * 9e-15, p * 1.0000000000000002);
    }
    for (const x of edges) same(w, { x });
    for (const x of doubles(20_000)) same(w, { x });
    for (const x of [NaN, Infinity, -Infinity]) same(w, { x });
  });

  it('strings: ASCII as it is, quotes, backslashes, control characters, non-ASCII and lone surrogates escaped as JSON.stringify does', () => {
    const w = new JsonWriter();
    const strings = [
      '',
      'a',
      'hello world',
      'say "hi"',
      'back\\slash',
      'tab\there',
      'nl\n',
      '\u0000\u001f\u007f',
      'café',
      'Zürich ✓',
      '😀',
      '\ud800',
      'x\udc00y',
      '</script>',
      "it's",
      '~'.repeat(300),
    ];
    for (const s of strings) same(w, { s, [s]: 1 });
  });

  it('objects: key order, integer-like keys first, names that need escaping, booleans and null, no prototype', () => {
    const w = new JsonWriter();
    same(w, {});
    same(w, { b: 1, a: 2, 10: 'ten', 2: 'two', z: null, t: true, f: false });
    same(w, { 'a"b': 1, é: 2, '\n': 3 });
    same(w, JSON.parse('{"__proto__": 5, "x": 1}') as object);
    const bare = Object.create(null) as Record<string, unknown>;
    bare.k = 'v';
    bare.n = -12.5;
    same(w, bare);
    // Shapes that alternate and grow: the names each position learnt are relearnt.
    for (let i = 0; i < 50; i++) {
      same(w, i % 2 === 0 ? { a: i, b: 'x' } : { b: 'y', a: i, c: i / 7 });
      same(w, { a: i });
    }
  });

  it('leaves to JSON.stringify what it would not write the same: nested values, left-out properties, bigints, toJSON, other prototypes', () => {
    const w = new JsonWriter();
    class Point {
      x = 1;
    }
    const refused: unknown[] = [
      { a: { b: 1 } },
      { a: [1] },
      { a: undefined },
      { a: () => 1 },
      { a: Symbol('s') },
      { a: 1n },
      { a: new Date(0) },
      { toJSON: () => 1 },
      new Point(),
      [1, 2],
      new Date(0),
      'text',
      5,
      null,
      undefined,
      { a: new Number(1) },
    ];
    // Arrays dressed as plain objects, as JSON.stringify still writes them as arrays.
    refused.push(Object.setPrototypeOf([1, 2], Object.prototype), Object.setPrototypeOf([1], null));
    refused.push(new Proxy([1, 2], { getPrototypeOf: () => Object.prototype }));
    refused.forEach((value, i) => assert.equal(w.write(value), null, `value ${i} is refused`));
    // An enumerable property on Object.prototype (a library's doing): for...in sees it, JSON.stringify does not.
    Object.defineProperty(Object.prototype, 'polluted', { value: 1, enumerable: true, configurable: true });
    try {
      assert.equal(w.write({ a: 1 }), null);
    } finally {
      delete (Object.prototype as { polluted?: number }).polluted;
    }
    same(w, { a: 1 });
    // A refusal leaves nothing behind: the next value starts where the last one taken ended.
    const first = w.write({ a: 1 })!;
    assert.equal(w.write({ a: 1, nested: {} }), null);
    const second = w.write({ b: 2 })!;
    assert.equal(second.start, first.end);
    assert.equal(text(second), '{"b":2}');
  });

  it('values written since the last reset stay valid when the buffer grows; reset starts over', () => {
    const w = new JsonWriter();
    const small = w.write({ id: 1, name: 'first' })!;
    const big = w.write({ s: 'x'.repeat(100_000), n: 1.25 })!;
    const after = w.write({ id: 2 })!;
    assert.equal(text(small), '{"id":1,"name":"first"}');
    assert.equal(text(big), JSON.stringify({ s: 'x'.repeat(100_000), n: 1.25 }));
    assert.equal(text(after), '{"id":2}');
    w.reset();
    const small2 = w.write({ id: 3 })!;
    assert.equal(small2.start, 0);
    // A buffer a big value grew to is let go at the reset after it.
    w.write({ s: 'y'.repeat(3_000_000) });
    w.reset();
    assert.ok(w.write({ id: 4 })!.bytes.length <= 1024 * 1024);
  });

  it('writeInto: at any offset of a Buffer that is a view of a bigger memory, only inside [pos, end), -2 when that is too small', () => {
    const w = new JsonWriter();
    const values = [
      { auction: 1000, bidder: 2_000_123, price: 90.80000000000001, dateTime: 1_700_000_000_123 },
      { a: -7, bb: 12345.5, ccc: 'text', dddd: null, e: true, f: false, g: 2 ** 31 + 5 },
      {},
    ];
    const memory = new Uint8Array(600);
    for (const offset of [0, 1, 3, 7]) {
      // A Buffer that starts `offset` bytes into the memory, then a second one at another offset.
      const buf = Buffer.from(memory.buffer, offset, 500);
      for (const value of values) {
        const json = JSON.stringify(value);
        for (const pos of [0, 1, 2, 5, 13]) {
          memory.fill(0xee);
          // With the caller's DataView of buf (as a BatchBuilder gives it) and without, alternately.
          const view = pos % 2 === 0 ? new DataView(buf.buffer, buf.byteOffset, buf.length) : undefined;
          const end = w.writeInto(value, buf, pos, pos + json.length + 40, view);
          assert.equal(end, pos + json.length);
          assert.equal(buf.toString('utf8', pos, end), json);
          // Nothing before pos is touched, nor anything from the end of the room given.
          assert.ok(memory.subarray(0, offset + pos).every((b) => b === 0xee));
          assert.ok(memory.subarray(offset + pos + json.length + 40).every((b) => b === 0xee));
          assert.equal(w.writeInto(value, buf, pos, pos + json.length - 1, view), -2);
          // Its own buffer in between: written as JSON.stringify writes it too.
          assert.equal(text(w.write(value)!), json);
        }
      }
    }
  });

  it('jsonText turns bytes back into the string and passes strings and Buffers through', () => {
    const w = new JsonWriter();
    assert.equal(jsonText(w.write({ city: 'Zürich' })!), '{"city":"Zürich"}');
    assert.equal(jsonText('{"a":1}'), '{"a":1}');
    const buf = Buffer.from('{}');
    assert.equal(jsonText(buf), buf);
  });
});
