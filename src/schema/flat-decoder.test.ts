import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { seededRandom } from '../random.ts';
import { compileFlatDecoder } from './flat-decoder.ts';

const Sale = Type.Object({
  orderId: Type.String(),
  qty: Type.Integer(),
  amount: Type.Number(),
  paid: Type.Boolean(),
  note: Type.Optional(Type.String()),
});

/** The decoder's answer must be JSON.parse's, key order and -0 included, whenever it gives one. */
function agrees(text: string): 'fast' | 'fallback' {
  const decode = compileFlatDecoder(Sale)!;
  const bytes = Buffer.from(`xx${text}yy`);
  const got = decode(bytes, 2, bytes.length - 2);
  if (got === undefined) return 'fallback';
  const want = JSON.parse(text) as Record<string, unknown>;
  assert.deepStrictEqual(Object.keys(got), Object.keys(want), text);
  for (const k of Object.keys(want))
    assert.ok(Object.is(got[k], want[k]), `${text}: ${k} is ${String(got[k])}, JSON.parse gives ${String(want[k])}`);
  assert.equal(Object.getPrototypeOf(got), Object.prototype);
  return 'fast';
}

describe('flat decoder (a fast path that must equal JSON.parse)', () => {
  test('compact objects of the declared scalar properties, in any order, decode on the fast path', () => {
    assert.equal(agrees('{"orderId":"o1","qty":3,"amount":12.5,"paid":true}'), 'fast');
    assert.equal(agrees('{"paid":false,"amount":-0,"qty":-12,"orderId":""}'), 'fast');
    assert.equal(agrees('{"qty":123456789012345,"amount":1e300,"orderId":"a b~!","note":"x"}'), 'fast');
    assert.equal(agrees('{"qty":1234567890123456789,"amount":-1.5E-7}'), 'fast');
    assert.equal(agrees('{"amount":0.1}'), 'fast');
  });

  test('anything outside the simple form falls back (JSON.parse decides)', () => {
    for (const text of [
      '{ "qty":1}',
      '{"qty": 1}',
      '{"qty":1 }',
      '{"qty":1}\n',
      '{}',
      '{"extra":1}',
      '{"qty":1,"qty":2}',
      '{"orderId":"caf\u00e9"}',
      '{"orderId":"a\\"b"}',
      '{"orderId":"\\u0041"}',
      '{"orderId":null}',
      '{"orderId":{}}',
      '{"orderId":[1]}',
      '{"qty":01}',
      '{"qty":1.}',
      '{"qty":.5}',
      '{"qty":-}',
      '{"qty":1e}',
      '{"qty":+1}',
      '{"qty":NaN}',
      '{"qty":tru}',
      '{"qty":1,}',
      '{"qty":1',
      '{"orderId":"abc',
      '[1]',
      '"s"',
      '',
      '{"qty":1}}',
      '\uFEFF{"qty":1}',
      '{"orderId":"tab\there"}',
    ]) {
      assert.equal(agrees(text), 'fallback', text);
    }
  });

  test('schemas it does not cover get no decoder', () => {
    assert.equal(compileFlatDecoder(Type.Object({ tags: Type.Array(Type.String()) })), null);
    assert.equal(compileFlatDecoder(Type.Object({ a: Type.Union([Type.String(), Type.Number()]) })), null);
    assert.equal(compileFlatDecoder(Type.Object({ a: Type.Any() })), null);
    assert.equal(compileFlatDecoder(Type.Object({})), null);
    assert.equal(compileFlatDecoder(Type.Object({ ['__proto__']: Type.String() })), null);
    assert.equal(compileFlatDecoder(Type.String()), null);
    assert.equal(compileFlatDecoder({ type: 'object' }), null);
  });

  test('20,000 generated values: every fast answer equals JSON.parse, and most are fast', () => {
    const random = seededRandom(42);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const keys = ['orderId', 'qty', 'amount', 'paid', 'note', 'other'];
    const strings = ['', 'a', 'o0001234', 'x y', 'caf\u00e9', 'q"q', 'back\\slash', '\u0001', '日本', 'tab\t'];
    const numbers = () =>
      pick([
        () => String(Math.floor(random() * 1e6) - 5e5),
        () => String(random() * 1e6 - 5e5),
        () => String(random() * 10 ** Math.floor(random() * 40 - 20)),
        () =>
          pick([
            '0',
            '-0',
            '1e5',
            '1E+5',
            '2.5e-3',
            '00',
            '1.',
            '.5',
            '-',
            '1e',
            '9007199254740993',
            '123456789012345',
            '1234567890123456',
            '-999999999999999',
          ]),
      ])();
    const value = (): string =>
      pick([() => JSON.stringify(pick(strings)), numbers, () => pick(['true', 'false', 'null', 'tru', '{}', '[]'])])();
    let fast = 0;
    for (let n = 0; n < 20_000; n++) {
      const used = new Set<string>();
      const parts: string[] = [];
      const count = 1 + Math.floor(random() * 5);
      for (let p = 0; p < count; p++) {
        let k = pick(keys);
        if (random() < 0.05 && used.size > 0) k = [...used][0]; // a duplicate key now and then
        used.add(k);
        parts.push(`${JSON.stringify(k)}:${value()}`);
      }
      let text = `{${parts.join(',')}}`;
      if (random() < 0.03) text = text.slice(0, Math.floor(random() * text.length)); // truncated
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      const decode = compileFlatDecoder(Sale)!;
      const bytes = Buffer.from(text);
      const got = decode(bytes, 0, bytes.length);
      if (!valid) {
        assert.equal(got, undefined, `invalid JSON took the fast path: ${text}`);
        continue;
      }
      if (agrees(text) === 'fast') fast++;
    }
    assert.ok(fast > 2_000, `the fast path was taken ${fast} times`);
  });
});
