/**
 * Fuzzed ingestion: thousands of bad request bodies (fast-check and hand-written: broken JSON,
 * invalid UTF-8, wrong types, deep nesting, huge numbers and strings, wrong content types,
 * oversize bodies, truncated NDJSON) at a real server. Every answer must be a 4xx carrying a
 * catalogue code, never a 5xx or a dropped connection; the server must still be healthy; and the
 * log's files must be byte-for-byte what they were before.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ERROR_CATALOGUE } from '../../src/errors.ts';
import { type Harness, call, salesConfig, startHarness } from '../e2e/server-harness.ts';

const BODY_LIMIT = 2048;
const RUNS = Number(process.env.KAPPA_FUZZ_RUNS ?? 2000);

/** Every file under the topics directory, with a hash of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(join(dir, 'topics'));
  return out;
}

const text = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Values that are never a valid sale ({ region: non-empty string, cents: integer }). */
const notASale = fc.oneof(
  fc.record({
    region: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant(''), fc.array(fc.string())),
    cents: fc.integer(),
  }),
  fc.record({
    region: fc.string({ minLength: 1 }),
    cents: fc.oneof(
      fc.double({ noInteger: true }),
      fc.string(),
      fc.constant(null),
      fc.constant(Infinity),
      fc.bigInt().map(String),
    ),
  }),
  fc.record({ cents: fc.integer() }),
  fc.record({ region: fc.string({ minLength: 1 }) }),
  fc.record({ region: fc.string({ minLength: 1 }), cents: fc.integer(), refund: fc.oneof(fc.string(), fc.integer()) }),
  fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
  fc
    .json()
    .filter((j) => {
      const v = JSON.parse(j) as unknown;
      return (
        !(typeof v === 'object' && v !== null && !Array.isArray(v) && 'region' in v && 'cents' in v) &&
        !Array.isArray(v)
      );
    })
    .map((j) => JSON.parse(j) as unknown),
);

interface Case {
  body: Buffer;
  type: string | null;
}

const cases: fc.Arbitrary<Case> = fc.oneof(
  // random bytes as JSON or NDJSON
  fc.record({
    body: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
    type: fc.constantFrom('application/json', 'application/x-ndjson'),
  }),
  // a bad value, as one JSON object
  notASale.map((v) => ({ body: text(JSON.stringify(v)), type: 'application/json' })),
  // an array with at least one bad value among good ones
  fc
    .tuple(
      fc.array(fc.record({ region: fc.constantFrom('north', 'south'), cents: fc.integer() }), { maxLength: 5 }),
      notASale,
      fc.nat(5),
    )
    .map(([good, bad, at]) => {
      const all: unknown[] = [...good];
      all.splice(Math.min(at, all.length), 0, bad);
      return { body: text(JSON.stringify(all)), type: 'application/json' };
    }),
  // NDJSON with a bad line among good ones, or truncated
  fc
    .tuple(
      fc.array(fc.record({ region: fc.constantFrom('north', 'south'), cents: fc.integer() }), { maxLength: 5 }),
      notASale,
      fc.boolean(),
    )
    .map(([good, bad, truncate]) => {
      const lines = good.map((g) => JSON.stringify(g));
      if (truncate) {
        const last = JSON.stringify({ region: 'east', cents: 5 });
        lines.push(last.slice(0, Math.max(1, last.length - 3)));
      } else lines.push(JSON.stringify(bad));
      return { body: text(lines.join('\n') + '\n'), type: 'application/x-ndjson' };
    }),
  // deep nesting
  fc.integer({ min: 10, max: 5000 }).map((depth) => ({
    body: text(`{"region":${'['.repeat(depth)}${']'.repeat(depth)},"cents":1}`),
    type: 'application/json',
  })),
  // invalid UTF-8 inside an otherwise good record
  fc.constantFrom(0x80, 0xc3, 0xe2, 0xf0, 0xff, 0xfe).map((b) => ({
    body: Buffer.concat([text('{"region":"no'), Buffer.from([b]), text('rth","cents":1}')]),
    type: fc.sample(fc.constantFrom('application/json', 'application/x-ndjson'), 1)[0],
  })),
  // wrong or missing content types for a good body
  fc
    .constantFrom(
      'text/plain',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      'application/x-www-form-urlencoded',
      'image/png',
    )
    .map((type) => ({ body: text('{"region":"north","cents":1}'), type })),
  fc.constant({ body: text('{"region":"north","cents":1}'), type: null }),
  // oversize
  fc
    .constantFrom('application/json', 'application/x-ndjson')
    .map((type) => ({ body: text(`{"region":"${'x'.repeat(BODY_LIMIT + 10)}","cents":1}\n`), type })),
  // huge numbers, long strings in the wrong place, lone surrogates, odd whitespace
  fc
    .constantFrom(
      '{"region":"north","cents":1e400}',
      '{"region":"north","cents":123456789012345678901234567890}',
      '{"region":"north","cents":-1e-400,"refund":1}',
      `{"region":"north","cents":"${'9'.repeat(1000)}"}`,
      '{"region":"\\ud800","cents":1.5}',
      '{"region" : "north" , "cents" : 1 , "refund" : "no"}',
      '{"__proto__":{"cents":1},"region":"north"}',
      '{"constructor":{"prototype":{"x":1}},"cents":"1"}',
      '[[[]]]',
      'null',
      '"just a string"',
    )
    .chain((body) =>
      fc.constantFrom('application/json', 'application/x-ndjson').map((type) => ({ body: text(body), type })),
    ),
  // empty
  fc
    .constantFrom('application/json', 'application/x-ndjson')
    .map((type) => ({ body: text(type === 'application/json' ? '[]' : '\n\n'), type })),
);

let h: Harness;
before(async () => {
  h = await startHarness(salesConfig(JSON.stringify({ bodyLimitBytes: BODY_LIMIT })));
  // Some data first, so "unchanged" is about real files.
  const seed = await call(h.url, 'POST', '/v1/topics/sales/records', {
    body: text('{"region":"north","cents":1}\n{"region":"south","cents":2}\n'),
    type: 'application/x-ndjson',
  });
  assert.equal(seed.status, 200, seed.text);
});
after(() => h.close());

test(
  `${RUNS} bad bodies: every answer a 4xx with a catalogue code, no 5xx, and the log byte-for-byte unchanged`,
  { timeout: 300_000 },
  async () => {
    const before = snapshot(h.dir);
    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const r = await call(h.url, 'POST', '/v1/topics/sales/records', {
          body: c.body,
          ...(c.type === null ? {} : { type: c.type }),
        });
        sent++;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        assert.ok(
          r.status >= 400 && r.status < 500,
          `status ${r.status} for ${c.type} ${c.body.subarray(0, 200).toString('latin1')}: ${r.text.slice(0, 300)}`,
        );
        const code = (r.body as { error?: { code?: string } }).error?.code;
        assert.ok(code !== undefined && code in ERROR_CATALOGUE, `a catalogue code, got ${r.text.slice(0, 200)}`);
        assert.equal(ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].status, r.status);
      }),
      { numRuns: RUNS },
    );
    assert.ok(sent >= RUNS, `${sent} bodies sent`);
    assert.deepEqual(snapshot(h.dir), before, 'the log is byte-for-byte unchanged');
    assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    // Every family of refusal was exercised.
    for (const s of [400, 413, 415])
      assert.ok((statuses.get(s) ?? 0) > 0, `some ${s}s: ${JSON.stringify([...statuses])}`);
  },
);
