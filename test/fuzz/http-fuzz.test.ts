/**
 * Fuzzed HTTP edges, one property per class of input, each with its own generator and an oracle
 * written here independently of the server's code:
 *
 * - depth: JSON nested past the 1,000 limit, anywhere in any JSON body → 400 with a KAPPA_ code;
 *   within it → never a 5xx.
 * - size: JSON bodies and NDJSON lines just past their limits → 413 answered (not a reset
 *   connection), nothing appended.
 * - encodings: byte order marks, invalid and overlong UTF-8, UTF-16 marks, NULs, at line starts and
 *   inside strings → a 200 whose stored records are exactly the valid JSON that was sent (without a
 *   BOM), or a 4xx with a KAPPA_ code and nothing appended.
 * - hosts: any Host header (and two of them) → 200 only for a loopback name or [IPv6] with an
 *   optional :port, else 400 (malformed) or 403 (elsewhere).
 * - token placement: header, ?access_token= or both, right or wrong, any Accept, on event-stream and
 *   other routes → authorised exactly when the header carries a valid token, or a GET event stream
 *   carries one in its query.
 *
 * The server must stay healthy after each class.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ERROR_CATALOGUE } from '../../src/errors.ts';
import { hashToken } from '../../src/server/index.ts';
import { type Harness, SRC, call, ends, rawRequest, startHarness } from '../e2e/server-harness.ts';

const RUNS = Number(process.env.KAPPA_FUZZ_RUNS ?? 2000);
/** Properties whose cases are large or slow run fewer times. */
const runs = (fraction: number, min: number): number => Math.max(min, Math.round(RUNS * fraction));

const CONFIG = (server: object): string => `
import { Type, count, defineApp, from, topic, view } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ region: Type.String({ minLength: 1 }), cents: Type.Integer() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.region });
export default defineApp({
  topics: [sales, topic('loose', { partitions: 1 })],
  views: [view('sales_totals', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ n: count() }))],
  server: ${JSON.stringify(server)},
});
`;

function isCatalogueError(r: { status: number; body: unknown }): boolean {
  const code = (r.body as { error?: { code?: string } } | null)?.error?.code;
  return (
    code !== undefined &&
    code in ERROR_CATALOGUE &&
    ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].status === r.status
  );
}

describe('fuzzed HTTP edges', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(CONFIG({}));
  });
  after(() => h.close());

  test(
    'depth: JSON past 1,000 levels is a 400 in any body and any place; within it, never a 5xx',
    { timeout: 300_000 },
    async () => {
      /** A value nested `depth` deep, mixing arrays and objects, with a scalar at the bottom. */
      const nested = fc
        .tuple(
          fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 10_000, max: 120_000 })),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
          fc.constantFrom('1', '"x"', 'null', '[]', '{}'),
        )
        .map(([depth, kinds, leaf]) => {
          let open = '';
          let close = '';
          for (let i = 0; i < depth; i++) {
            const array = kinds[i % kinds.length];
            open += array ? '[' : '{"k":';
            close = (array ? ']' : '}') + close;
          }
          return { text: open + leaf + close };
        });
      /** The oracle: deepest nesting of the text (its strings hold no brackets or quotes). */
      const depthOf = (text: string): number => {
        let depth = 0;
        let max = 0;
        for (const c of text) {
          if (c === '[' || c === '{') max = Math.max(max, ++depth);
          else if (c === ']' || c === '}') depth--;
        }
        return max;
      };
      const where = fc.constantFrom('json-record', 'json-array', 'ndjson-line', 'sql-params', 'replay-body');
      const before = await ends(h, 'loose');
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(nested, where, async ({ text }, place) => {
          const req: Record<string, [string, string, string]> = {
            'json-record': ['/v1/topics/loose/records', `{"deep":${text}}`, 'application/json'],
            'json-array': ['/v1/topics/loose/records', `[{"deep":${text}}]`, 'application/json'],
            'ndjson-line': ['/v1/topics/loose/records', `{"deep":${text}}\n`, 'application/x-ndjson'],
            'sql-params': ['/v1/sql', `{"sql":"SELECT 1 AS one","params":[${text}]}`, 'application/json'],
            'replay-body': ['/v1/views/nosuch/replay', `{"from":${text}}`, 'application/json'],
          };
          const [path, body, type] = req[place];
          // Deep records that are accepted would change the log: those go with a refused sibling.
          const sent =
            place.startsWith('json') || place === 'ndjson-line'
              ? type === 'application/json'
                ? `[${body},{"bad":1e400}]`
                : `${body}{"bad":1e400}\n`
              : body;
          const total = depthOf(sent);
          const r = await call(h.url, 'POST', path, { body: sent, type });
          assert.ok(r.status < 500, `${place} depth ${total}: ${r.status} ${r.text.slice(0, 200)}`);
          if (total > 1000) {
            assert.equal(r.status, 400, `${place} depth ${total}: ${r.text.slice(0, 200)}`);
            assert.ok(isCatalogueError(r), r.text.slice(0, 200));
            refused++;
          }
        }),
        { numRuns: runs(0.1, 60) },
      );
      assert.ok(refused > 0);
      assert.deepEqual(await ends(h, 'loose'), before);
      assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    },
  );

  test(
    'encodings: BOMs, invalid UTF-8, UTF-16 marks and NULs are refused with a 4xx or stored exactly as the valid JSON sent',
    { timeout: 300_000 },
    async () => {
      const BOM = [0xef, 0xbb, 0xbf];
      const junk = fc.constantFrom(
        BOM,
        [0xff, 0xfe], // UTF-16 LE mark
        [0xfe, 0xff], // UTF-16 BE mark
        [0xc0, 0xaf], // overlong '/'
        [0xed, 0xa0, 0x80], // a surrogate, encoded
        [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
        [0x80],
        [0xc3],
        [0x00],
        [0xe2, 0x82], // cut short
      );
      const line = fc
        .tuple(
          fc.option(junk, { nil: undefined }),
          fc.option(junk, { nil: undefined }),
          fc.string({ maxLength: 8 }),
          fc.integer(),
        )
        .map(([atStart, inside, s, n]) => {
          const json = Buffer.from(JSON.stringify({ s, n }));
          const insideAt = json.indexOf('"s":"') + 5;
          const bytes =
            inside === undefined
              ? json
              : Buffer.concat([json.subarray(0, insideAt), Buffer.from(inside), json.subarray(insideAt)]);
          return atStart === undefined ? bytes : Buffer.concat([Buffer.from(atStart), bytes]);
        });
      /** The oracle: strict UTF-8, then JSON; `bomAllowed` drops one leading U+FEFF first (an NDJSON line's start). Undefined when invalid. */
      const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
      const decode = (bytes: Buffer, bomAllowed: boolean): unknown => {
        try {
          const text = strict.decode(bytes);
          return JSON.parse(bomAllowed && text.startsWith('\uFEFF') ? text.slice(1) : text) as unknown;
        } catch {
          return undefined;
        }
      };
      await fc.assert(
        fc.asyncProperty(
          fc.array(line, { minLength: 1, maxLength: 4 }),
          fc.constantFrom('application/x-ndjson', 'application/json'),
          async (lines, type) => {
            const ndjson = type === 'application/x-ndjson';
            const body = ndjson
              ? Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]))
              : Buffer.concat([
                  Buffer.from('['),
                  ...lines.flatMap((l, i) => (i === 0 ? [l] : [Buffer.from(','), l])),
                  Buffer.from(']'),
                ]);
            const expected = ndjson
              ? lines.map((l) => decode(l, true))
              : ((decode(body, false) as unknown[] | undefined) ?? [undefined]);
            const before = await ends(h, 'loose');
            const r = await call(h.url, 'POST', '/v1/topics/loose/records', { body, type });
            const shown = `${type} ${body.toString('latin1').slice(0, 100)}: ${r.status} ${r.text.slice(0, 200)}`;
            if (expected.some((v) => v === undefined)) {
              assert.ok(r.status >= 400 && r.status < 500 && isCatalogueError(r), shown);
              assert.deepEqual(await ends(h, 'loose'), before, 'nothing appended');
              return;
            }
            assert.equal(r.status, 200, shown);
            const acks = (r.body as { records: { index: number; offset: number }[] }).records;
            assert.equal(acks.length, expected.length);
            for (const a of acks) {
              for await (const batch of h.log.read('loose', 0, a.offset)) {
                const stored = batch.records(a.offset)[0].value!;
                assert.notDeepEqual([...stored.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'no BOM stored');
                assert.deepEqual(JSON.parse(strict.decode(stored)), expected[a.index], shown);
                break;
              }
            }
          },
        ),
        { numRuns: runs(0.1, 100) },
      );
      assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    },
  );

  test(
    'hosts: only a loopback name or [IPv6] with an optional :port passes, one Host only',
    { timeout: 300_000 },
    async () => {
      const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];
      const piece = fc.oneof(
        fc.constantFrom(
          ...LOOPBACK,
          'LocalHost',
          'evil.example',
          '[::2]',
          '[0:0:0:0:0:0:0:1]',
          '127.0.0.2',
          '[',
          ']',
          ':',
          '@',
          '#',
          '/',
          '?',
          '%2e',
          ' ',
          '\t',
          '.',
          '-',
          '_',
          '..',
          '[::1]:',
          ':80',
          ':99999',
          ':8080',
          ':evil',
          '\\',
        ),
        fc.stringMatching(/^[\x21-\x7e]{0,6}$/),
        fc.nat(70_000).map((n) => `:${n}`),
      );
      const host = fc.array(piece, { minLength: 0, maxLength: 4 }).map((p) => p.join(''));
      /** The oracle: RFC 9110's uri-host [ ":" port ], kept to names, IPv4 and bracketed IPv6. */
      const expected = (hosts: string[]): number => {
        if (hosts.length !== 1) return 400;
        const v = hosts[0].replace(/^[ \t]+|[ \t]+$/g, '');
        const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+))(?::[0-9]{1,5})?$/.exec(v);
        if (m === null || (m[1] !== undefined && isIP(m[1]) !== 6)) return 400;
        const name = (m[1] ?? m[2]).toLowerCase();
        return ['localhost', '127.0.0.1', '::1'].includes(name) ? 200 : 403;
      };
      await fc.assert(
        fc.asyncProperty(fc.array(host, { minLength: 1, maxLength: 2 }), async (hosts) => {
          const r = await rawRequest(
            h.url,
            `GET /healthz HTTP/1.1\r\n${hosts.map((x) => `Host: ${x}\r\n`).join('')}Connection: close\r\n\r\n`,
          );
          assert.ok(r !== null, `an answer for ${JSON.stringify(hosts)}`);
          assert.equal(r.status, expected(hosts), `${JSON.stringify(hosts)}: ${r.text}`);
          if (r.status !== 200) assert.ok(isCatalogueError(r), `${JSON.stringify(hosts)}: ${r.text}`);
        }),
        { numRuns: runs(0.25, 200) },
      );
      assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    },
  );
});

describe('fuzzed sizes', () => {
  const LIMIT = 4096;
  const LINE_MAX = 16 * 1024 * 1024;
  let h: Harness;
  before(async () => {
    h = await startHarness(CONFIG({ bodyLimitBytes: LIMIT }));
  });
  after(() => h.close());

  test(
    'size: bodies and lines just past their limits get their 413 before the connection closes; nothing appended',
    { timeout: 300_000 },
    async () => {
      const bodyCase = fc.record({
        over: fc.integer({ min: 1, max: 4 * 1024 * 1024 }),
        type: fc.constantFrom('application/json', 'application/x-ndjson'),
        lines: fc.integer({ min: 1, max: 20 }),
      });
      const before = await ends(h, 'loose');
      await fc.assert(
        fc.asyncProperty(bodyCase, async ({ over, type, lines }) => {
          const size = LIMIT + over;
          const line = `{"pad":"${'x'.repeat(Math.max(0, Math.ceil(size / lines) - 11))}"}\n`;
          const body = line.repeat(lines);
          const r = await call(h.url, 'POST', '/v1/topics/loose/records', {
            body: type === 'application/json' ? `[${body.trim().split('\n').join(',')}]` : body,
            type,
          });
          assert.equal(r.status, 413, `${type} of ${body.length} bytes: ${r.text.slice(0, 200)}`);
          assert.ok(isCatalogueError(r));
        }),
        { numRuns: runs(0.02, 20) },
      );
      assert.deepEqual(await ends(h, 'loose'), before);
      assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    },
  );

  test(
    'size: an NDJSON line just past 16 MiB is refused with 413 under the default body limit',
    { timeout: 300_000 },
    async () => {
      const big = await startHarness(CONFIG({}));
      try {
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 2 * 1024 * 1024 }), fc.boolean(), async (over, goodFirst) => {
            const line = `{"pad":"${'y'.repeat(LINE_MAX + over - 10)}"}`; // LINE_MAX + over bytes
            const body = `${goodFirst ? '{"ok":1}\n' : ''}${line}\n{"ok":2}\n`;
            const r = await call(big.url, 'POST', '/v1/topics/loose/records', { body, type: 'application/x-ndjson' });
            assert.equal(r.status, 413, r.text.slice(0, 200));
            assert.equal((r.body as { error: { code: string } }).error.code, 'KAPPA_BODY_TOO_LARGE');
          }),
          { numRuns: 4 },
        );
        assert.deepEqual(await ends(big, 'loose'), [0]);
      } finally {
        await big.close();
      }
    },
  );
});

describe('fuzzed token placement', () => {
  const GOOD = 'tok-good';
  let h: Harness;
  before(async () => {
    h = await startHarness(
      CONFIG({
        tokens: [{ name: 'good', sha256: hashToken(GOOD), scopes: ['query', 'consume:sales', 'produce:sales'] }],
      }),
    );
  });
  after(() => h.close());

  test(
    'token placement: authorised exactly when the header has a valid token, or a GET event stream has one in ?access_token=',
    { timeout: 300_000 },
    async () => {
      const routes = [
        { method: 'GET', path: '/v1/overview/stream', stream: true },
        { method: 'GET', path: '/v1/views/sales_totals/changes', stream: true },
        { method: 'GET', path: '/v1/topics/sales/records?partition=0', stream: true },
        { method: 'GET', path: '/v1/views', stream: false },
        { method: 'GET', path: '/v1/topics', stream: false },
        { method: 'POST', path: '/v1/sql', stream: false, body: '{"sql":"SELECT 1 AS one"}' },
        { method: 'POST', path: '/v1/topics/sales/records', stream: false, body: '{"region":"n","cents":1}' },
      ];
      const token = fc.constantFrom(null, GOOD, 'tok-bad');
      const queryToken = fc.constantFrom(null, GOOD, 'tok-bad', '');
      const param = fc.constantFrom('access_token', 'ACCESS_TOKEN', 'token', 'access_token[]');
      const accept = fc.constantFrom(
        null,
        'text/event-stream',
        'application/json',
        'text/event-stream, application/json;q=0.5',
        '*/*',
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...routes),
          token,
          queryToken,
          param,
          accept,
          async (route, header, query, name, acceptValue) => {
            const qs =
              query === null ? '' : `${route.path.includes('?') ? '&' : '?'}${name}=${encodeURIComponent(query)}`;
            const headers: Record<string, string> = {};
            if (header !== null) headers.authorization = `Bearer ${header}`;
            if (acceptValue !== null) headers.accept = acceptValue;
            if (route.body !== undefined) headers['content-type'] = 'application/json';
            const abort = new AbortController();
            const res = await fetch(h.url + route.path + qs, {
              method: route.method,
              headers,
              body: route.body,
              signal: abort.signal,
            });
            const status = res.status;
            const text = res.headers.get('content-type')?.includes('event-stream') ? '' : await res.text();
            abort.abort();
            const streams = route.stream && route.method === 'GET' && (acceptValue ?? '').includes('text/event-stream');
            const used = header ?? (streams && name === 'access_token' ? query : null);
            const shown = `${route.method} ${route.path}${qs} header=${header} accept=${acceptValue}: ${status} ${text.slice(0, 200)}`;
            // Authorised: whatever the route answers then (a view with no rows yet is a 404), it is not about the token.
            if (used === GOOD) assert.ok(status !== 401 && status !== 403 && status < 500, shown);
            else {
              assert.equal(status, 401, shown);
              assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'KAPPA_UNAUTHENTICATED');
            }
          },
        ),
        { numRuns: runs(0.15, 200) },
      );
      assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    },
  );
});
