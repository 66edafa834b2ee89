/**
 * Differential test of the flat decoder's shapes (src/schema/flat-shapes.ts) against the full
 * decode: JSON.parse, then the schema's own validation (ajv). One decoder instance per schema sees
 * every record, as a task's does, so its shapes are learned from the first records and then used;
 * its interners see repeated and colliding strings. For every record the fast answer, when it gives
 * one, must be JSON.parse's (same keys in the same order, same values, -0 included); and an answer
 * it calls checked (`lastChecked`) must be one the schema accepts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { seededRandom } from '../random.ts';
import { compileFlatDecoder } from './flat-decoder.ts';
import { compileSchema } from './json-schema.ts';

const Sale = Type.Object({
  orderId: Type.String(),
  region: Type.String(),
  qty: Type.Integer(),
  amount: Type.Number(),
  paid: Type.Boolean(),
  note: Type.Optional(Type.String()),
});
const Person = Type.Object({ type: Type.Literal('person'), id: Type.Integer(), name: Type.String() });
const Bid = Type.Object({
  type: Type.Literal('bid'),
  auction: Type.Integer(),
  price: Type.Integer(),
  live: Type.Boolean(),
});
const Event = Type.Union([Person, Bid]);

type Gen = () => string;

function generators(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const digits = (n: number): string => Array.from({ length: n }, () => Math.floor(random() * 10)).join('');
  const pool = Array.from({ length: 300 }, (_, k) => `r${k % 7}-${'abcdefgh'[k % 8]}${k}`);
  const string: Gen = () =>
    JSON.stringify(
      pick([
        () => pick(pool), // repeats: interned
        () => `o${digits(7)}`, // rarely repeats
        () => pick(['', 'x', 'caf\u00e9', 'q"q', 'b\\s', 'tab\there', '\u0001', '日本']),
        // Long, with one of them at any place: the scan that skips words of four bytes must stop there.
        () =>
          `${'u'.repeat(Math.floor(random() * 40))}${pick(['"', '\\', '\t', '\u001f', 'é', '~'])}${'v'.repeat(Math.floor(random() * 9))}`,
      ])(),
    );
  // The same, raw: a control character JSON.stringify would have escaped (invalid JSON).
  const raw: Gen = () =>
    `"${'w'.repeat(Math.floor(random() * 40))}${pick(['\u0001', '\n', '\u001f'])}${'z'.repeat(Math.floor(random() * 9))}"`;
  const number: Gen = () =>
    pick([
      () => String(Math.floor(random() * 1e6) - 5e5),
      () => `${pick(['', '-'])}${1 + Math.floor(random() * 9)}${digits(Math.floor(random() * 17))}`,
      () => `${pick(['', '-'])}${digits(1 + Math.floor(random() * 8))}.${digits(1 + Math.floor(random() * 12))}`,
      () => String(Math.round(random() * 50_000) / 100),
      () => String(random() * 10 ** Math.floor(random() * 40 - 20)),
      () =>
        pick([
          '0',
          '-0',
          '-0.0',
          '0.1',
          '1.0',
          '2.50',
          '1e5',
          '1E+5',
          '2.5e-3',
          '1e400',
          '-1e400',
          '01',
          '1.',
          '9007199254740993',
        ]),
    ])();
  const boolean: Gen = () => pick(['true', 'false', 'tru', 'null']);
  const any: Gen = () => pick([string, number, boolean, raw])();
  return { pick, string, number, boolean, any };
}

/** Runs `count` records through one decoder (told it is read for `read` only); returns how many took a shape. */
function differential(
  schema: object,
  count: number,
  records: (n: number) => string,
  read: ReadonlySet<string> | null = null,
): { checked: number; fast: number } {
  const decode = compileFlatDecoder(schema, read)!;
  const full = compileSchema(schema);
  let checked = 0;
  let fast = 0;
  for (let n = 0; n < count; n++) {
    const text = records(n);
    const bytes = Buffer.from(`{"x":1}${text}{"y":2}`); // other records' bytes on both sides, as in a batch
    const got = decode(bytes, 7, bytes.length - 7);
    let want: Record<string, unknown> | undefined;
    try {
      want = JSON.parse(text) as Record<string, unknown>;
    } catch {
      assert.equal(got, undefined, `invalid JSON took the fast path: ${text}`);
      continue;
    }
    if (got === undefined) continue;
    fast++;
    // A shape makes only the properties read; the general way makes them all.
    const keys = Object.keys(want).filter((k) => read === null || !decode.lastChecked || read.has(k));
    assert.deepStrictEqual(Object.keys(got), keys, text);
    for (const k of keys)
      assert.ok(Object.is(got[k], want[k]), `${text}: ${k} is ${String(got[k])}, JSON.parse gives ${String(want[k])}`);
    assert.equal(Object.getPrototypeOf(got), Object.prototype);
    if (decode.lastChecked) {
      checked++;
      assert.ok(full.validate(want), `${text} was called checked, but the schema refuses it`);
    }
  }
  return { checked, fast };
}

describe('flat decoder shapes (differential, against JSON.parse and the schema)', () => {
  for (const read of [null, new Set(['region', 'amount'])])
    test(`60,000 sales, ${read === null ? 'every property read' : 'two properties read'}: mostly in one key order with valid values, some reordered, mistyped or malformed`, () => {
      const random = seededRandom(7);
      const g = generators(random);
      const typed: Record<string, Gen> = {
        orderId: g.string,
        region: g.string,
        qty: () => (random() < 0.9 ? String(1 + Math.floor(random() * 5)) : g.number()),
        amount: g.number,
        paid: g.boolean,
        note: g.string,
      };
      const names = Object.keys(typed);
      const result = differential(
        Sale,
        60_000,
        () => {
          let keys = names.filter((k) => k !== 'note' || random() < 0.3);
          if (random() < 0.05) keys = keys.sort(() => random() - 0.5);
          if (random() < 0.03) keys = keys.slice(1); // a required key missing
          if (random() < 0.02) keys.push('extra');
          const text = `{${keys.map((k) => `"${k}":${random() < 0.04 ? g.any() : (typed[k] ?? g.any)()}`).join(',')}}`;
          return random() < 0.02 ? text.slice(0, Math.floor(random() * text.length)) : text;
        },
        read,
      );
      assert.ok(result.checked > 5_000, `only ${result.checked} records took a shape`);
    });

  test('30,000 events of a union (anyOf of objects told apart by a const), as a topic of several event types', () => {
    const random = seededRandom(11);
    const g = generators(random);
    const result = differential(Event, 30_000, () => {
      const type = random() < 0.02 ? g.pick(['"auction"', '"Bid"', '1']) : g.pick(['"person"', '"bid"', '"bid"']);
      const body =
        type === '"person"'
          ? `"id":${random() < 0.95 ? Math.floor(random() * 1e6) : g.number()},"name":${g.string()}`
          : `"auction":${Math.floor(random() * 1e4)},"price":${random() < 0.95 ? Math.floor(random() * 1e7) : g.number()},"live":${g.boolean()}`;
      return random() < 0.03 ? `{${body},"type":${type}}` : `{"type":${type},${body}}`;
    });
    assert.ok(result.checked > 15_000, `only ${result.checked} records took a shape`);
  });

  test('non-ASCII bytes past the first word of a string: a read field that no longer interns, and invalid UTF-8 in an unread one', () => {
    const Note = Type.Object({ id: Type.String(), note: Type.String() });
    const decode = compileFlatDecoder(Note)!;
    // Distinct notes: the field stops interning, and its strings are then skipped four bytes at a time.
    for (let n = 0; n < 9000; n++) {
      const text = JSON.stringify({ id: 'x', note: `note number ${n}` });
      assert.deepStrictEqual(decode(Buffer.from(text), 0, Buffer.byteLength(text)), JSON.parse(text));
    }
    const text = JSON.stringify({ id: 'x', note: 'café au lait, très chaud' });
    const got = decode(Buffer.from(text), 0, Buffer.byteLength(text));
    assert.ok(got === undefined || got.note === 'café au lait, très chaud', `decoded as ${JSON.stringify(got)}`);
    // Not valid UTF-8 in a field nobody reads: the record must go the general way, which refuses it.
    const idOnly = compileFlatDecoder(Note, new Set(['id']))!;
    const plain = Buffer.from('{"id":"a","note":"plain text here"}');
    idOnly(plain, 0, plain.length);
    const bad = Buffer.concat([
      Buffer.from('{"id":"a","note":"abcdefgh'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
      Buffer.from('ijkl"}'),
    ]);
    assert.equal(idOnly(bad, 0, bad.length), undefined);
  });

  test('branches with the same keys, told apart by a constant, each get a shape', () => {
    const Up = Type.Object({ kind: Type.Literal('up'), n: Type.Integer() });
    const Down = Type.Object({ kind: Type.Literal('down'), n: Type.Integer() });
    const decode = compileFlatDecoder(Type.Union([Up, Down]))!;
    const checked: boolean[] = [];
    for (const text of [
      '{"kind":"down","n":1.5}',
      '{"kind":"down","n":1}',
      '{"kind":"up","n":2}',
      '{"kind":"down","n":3}',
      '{"kind":"up","n":4}',
    ]) {
      const bytes = Buffer.from(text);
      assert.deepStrictEqual(decode(bytes, 0, bytes.length), JSON.parse(text));
      checked.push(decode.lastChecked);
    }
    // A value no branch admits (n is not an integer) teaches no shape, and the caller validates it.
    // The first of each kind goes the general way, teaches its shape, and is checked by it (so a topic
    // whose records fit never compiles its schema); the next of each is checked by it at once.
    assert.deepEqual(checked, [false, true, true, true, true]);
  });

  test('a shape is not made for a schema whose keywords it cannot check; the caller validates instead', () => {
    const Bounded = Type.Object({ qty: Type.Integer({ minimum: 1 }), sku: Type.String() });
    const decode = compileFlatDecoder(Bounded)!;
    // Nor may its ajv compile wait (a keyword ajv may refuse): see FlatDecoder.coversSchema.
    assert.equal(decode.coversSchema, false);
    assert.equal(compileFlatDecoder(Sale)!.coversSchema, true);
    assert.equal(compileFlatDecoder(Event)!.coversSchema, true);
    assert.equal(compileFlatDecoder({ ...Sale, $schema: 'https://example.com/draft' })!.coversSchema, false);
    assert.equal(compileFlatDecoder(Type.Object({ email: Type.String({ format: 'email' }) }))!.coversSchema, false);
    for (const text of ['{"qty":0,"sku":"a"}', '{"qty":0,"sku":"a"}', '{"qty":3,"sku":"b"}']) {
      const bytes = Buffer.from(text);
      assert.deepStrictEqual(decode(bytes, 0, bytes.length), JSON.parse(text));
      assert.equal(decode.lastChecked, false, text);
    }
  });
});
