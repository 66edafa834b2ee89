/**
 * countDistinct (exact, past its limit, approximate) and topN through the engine: the same bids fed
 * live in bursts, and appended first then replayed from offset 0 on two worker threads, give
 * identical rows and dead letters; the exact columns equal an oracle computed here, the estimate is
 * within 3 standard errors; and a replay into a PostgreSQL store gives the same rows as SQLite.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { type AppDef, Engine, loadApp } from '../../src/stream/index.ts';
import { type ViewStore } from '../../src/view/index.ts';
import { openPostgresStore } from '../../src/view/postgres/index.ts';
import { defer } from '../support/cleanup.ts';
import { type Kappa, engineCaughtUp, openKappa } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { postgresForFile } from '../support/postgres.ts';
import { KAPPA_SRC as SRC, tempProject } from '../support/project.ts';

const T0 = Date.UTC(2026, 5, 1);
const server = postgresForFile();

// by_auction: every new aggregate; per_minute: tumbling windows; hop: hopping windows beside a
// custom aggregate (the plan folds into a copy of each row first there).
const CONFIG = `
import { Type, aggregate, count, countDistinct, defineApp, from, hopping, topN, topic, tumbling, view } from ${JSON.stringify(SRC)};
const Bid = Type.Object({ auction: Type.String(), bidder: Type.Any(), price: Type.Any(), ts: Type.Integer() });
const bids = topic('bids', { partitions: 3, schema: Bid, key: (b) => b.auction, time: (b) => b.ts });
export default defineApp({
  topics: [bids],
  views: [
    view('by_auction', from(bids).groupBy((b) => ({ auction: b.auction })).aggregate({
      n: count(),
      bidders: countDistinct((b) => b.bidder),
      few: countDistinct((b) => b.bidder, { limit: 25 }),
      approx: countDistinct((b) => b.bidder, { approximate: true, precision: 10 }),
      top: topN(3, (b) => b.price, { value: (b) => b.bidder }),
    })),
    view('per_minute', from(bids).window(tumbling('1m', { outOfOrderness: '5s' })).groupBy((b) => ({ auction: b.auction }))
      .aggregate({ bidders: countDistinct((b) => b.bidder), top: topN(2, (b) => b.price) })),
    view('hop', from(bids).window(hopping('2m', '1m')).groupBy((b) => ({ auction: b.auction })).aggregate({
      top: topN(2, (b) => b.price, { value: (b) => b.bidder }),
      prices: aggregate({ init: () => 0, add: (s, b) => s + 1, merge: (a, b) => a + b }),
      approx: countDistinct((b) => b.bidder, { approximate: true }),
    })),
  ],
});
`;

interface Bid {
  auction: string;
  bidder: unknown;
  price: unknown;
  ts: number;
}

/** Bids on 8 auctions; auctions a0-a3 draw from 20 bidders, a4-a7 from 200 and 20 numbered ones; 1% of bids invalid. */
function bids(n: number): Bid[] {
  const random = seededRandom(18);
  const out: Bid[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.floor(random() * 8);
    const bid: Bid = {
      auction: `a${a}`,
      bidder: a >= 4 && random() < 0.1 ? Math.floor(random() * 20) : `b${Math.floor(random() * (a < 4 ? 20 : 200))}`,
      price: Math.floor(random() * 1000) / 4,
      ts: T0 + i * 50 - Math.floor(random() * 3000),
    };
    const odd = random();
    if (odd < 0.005) bid.price = 'high';
    else if (odd < 0.01) bid.bidder = { id: 1 };
    out.push(bid);
  }
  return out;
}

const records = (all: Bid[]) => all.map((b) => ({ key: b.auction, value: JSON.stringify(b) }));

async function snapshot(store: ViewStore, log: FileLog): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  out.by_auction = (await store.query('SELECT * FROM by_auction ORDER BY auction')).rows;
  out.per_minute = (await store.query('SELECT * FROM per_minute ORDER BY auction, window_start')).rows;
  out.hop = (await store.query('SELECT * FROM hop ORDER BY auction, window_start')).rows;
  const dlq: string[] = [];
  for (let p = 0; p < 3; p++)
    for await (const batch of log.read('bids.dlq', p, 0))
      for (const r of batch.records())
        dlq.push(`${p}:${r.value}|${r.headers.map((h) => `${h.key}=${h.value}`).join(',')}`);
  out.dlq = dlq.sort();
  return out;
}

/** What by_auction must hold: exact distinct counts (booleans none here) and the top 3 by price, then bidder. */
function oracle(all: Bid[]): Map<string, { n: number; bidders: number; top: unknown[] }> {
  const valid = all.filter((b) => typeof b.price === 'number' && typeof b.bidder !== 'object');
  const out = new Map<string, { n: number; bidders: number; top: unknown[] }>();
  for (const a of new Set(valid.map((b) => b.auction))) {
    const mine = valid.filter((b) => b.auction === a);
    const order = (x: Bid) => (typeof x.bidder === 'number' ? `0${String(x.bidder).padStart(4, '0')}` : `1${x.bidder}`);
    const sorted = mine
      .slice()
      .sort(
        (x, y) => (y.price as number) - (x.price as number) || (order(x) < order(y) ? -1 : order(x) > order(y) ? 1 : 0),
      );
    out.set(a, {
      n: mine.length,
      bidders: new Set(mine.map((b) => b.bidder)).size,
      top: sorted.slice(0, 3).map((b) => ({ by: b.price, value: b.bidder })),
    });
  }
  return out;
}

async function run(kappa: Kappa, all: Bid[], live: boolean, threads = 0): Promise<Record<string, unknown[]>> {
  const { log, store, engine } = kappa;
  await log.createTopic('bids', { partitions: 3 });
  if (!live) await log.append('bids', records(all));
  await engine.start();
  assert.equal(engine.threads, threads);
  if (live) {
    const random = seededRandom(6);
    for (let i = 0; i < all.length;) {
      const n = 1 + Math.floor(random() * 80);
      await log.append('bids', records(all.slice(i, i + n)));
      i += n;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
    }
  }
  await engineCaughtUp(engine, log);
  await engine.stop();
  return snapshot(store, log);
}

describe('countDistinct and topN through the engine', () => {
  const all = bids(6000);
  let app: AppDef;
  let config: string;
  let sqlite: Record<string, unknown[]>;

  test(
    'live in bursts equals a replay on two worker threads, and the exact columns equal the oracle',
    { timeout: 180_000 },
    async (t) => {
      const project = tempProject(t, 'kappa-distinct-topn-');
      config = project.writeConfig(CONFIG, 'kappa');
      app = await loadApp(config);
      const open = (name: string, workers: number) =>
        openKappa({
          t,
          dir: project.dataDir(name),
          configPath: config,
          app,
          workers,
          start: false,
          engineEnd: 'close',
          flushIntervalMs: 15,
        });
      const live = await run(await open('live', 0), all, true);
      const replay = await run(await open('replay', 2), all, false, 2);
      assert.deepEqual(replay, live);
      sqlite = live;

      const rows = live.by_auction as {
        auction: string;
        n: number;
        bidders: number;
        few: number | null;
        approx: number;
        top: string;
      }[];
      const expected = oracle(all);
      assert.equal(rows.length, 8);
      for (const r of rows) {
        const e = expected.get(r.auction)!;
        assert.equal(r.n, e.n);
        assert.equal(r.bidders, e.bidders, r.auction);
        assert.equal(r.few, e.bidders <= 25 ? e.bidders : null, `${r.auction}: limit 25, ${e.bidders} bidders`);
        assert.ok(
          Math.abs(r.approx - e.bidders) <= 3 * (1.04 / 32) * e.bidders,
          `${r.auction}: ${r.approx} ~ ${e.bidders}`,
        );
        assert.deepEqual(JSON.parse(r.top), e.top, r.auction);
      }
      assert.ok(rows.some((r) => r.few === null) && rows.some((r) => r.few !== null), 'some rows are past the limit');
      assert.ok((live.per_minute as unknown[]).length > 20 && (live.hop as unknown[]).length > 20, 'windows hold rows');
      // Each view dead-letters every invalid bid, but those its window had closed on are late instead.
      const invalid = all.filter((b) => typeof b.price !== 'number' || typeof b.bidder === 'object').length;
      assert.ok(invalid > 20 && live.dlq.length >= 2 * invalid && live.dlq.length <= 3 * invalid, `${live.dlq.length}`);
      const reasons = (live.dlq as string[]).join('\n');
      assert.match(
        reasons,
        /kappa\.error=pipeline: aggregate bidders: countDistinct\(\) got an object \{"id":1\}; it counts strings/,
      );
      assert.match(
        reasons,
        /kappa\.error=pipeline: aggregate top: topN\(\) got "high" as the number to rank by, not a finite number/,
      );
    },
  );

  test('a replay into a PostgreSQL store gives the rows SQLite has', { timeout: 180_000 }, async (t) => {
    assert.ok(sqlite !== undefined, 'runs after the SQLite test');
    const project = tempProject(t, 'kappa-distinct-topn-pg-');
    const log = await openFileLog({ dir: project.dataDir('data'), logger: quiet });
    defer(t, () => log.close());
    const store = await openPostgresStore({ connectionString: await (await server()).freshDatabase() });
    defer(t, () => store.close());
    const engine = new Engine({
      log,
      store,
      control: store,
      app,
      configPath: config,
      logger: quiet,
      flushIntervalMs: 50,
    });
    defer(t, () => engine.stop());
    const got = await run({ log, store, engine } as unknown as Kappa, all, false);
    const { dlq: _dlq, ...rows } = got;
    const { dlq: _sqliteDlq, ...expected } = sqlite;
    assert.deepEqual(rows, expected);
  });
});
