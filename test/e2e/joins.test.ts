/**
 * Stream–table joins through the engine: payments enriched with the card profile that was current
 * at each payment's event time. Cards change their limit (and some are deleted by a tombstone);
 * payments arrive up to 5 s late, so many arrive after a change that came after them in event time
 * and must still join the old limit. The same records fed live in bursts on the main thread, and
 * appended first then replayed from offset 0 on two worker threads, give identical rows and
 * enriched records, equal to an oracle computed here; a broadcast and a co-partitioned table agree.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FileLog, partitionForKey } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { type AppDef, loadApp } from '../../src/stream/index.ts';
import { type ViewStore } from '../../src/view/index.ts';
import { type Kappa, engineCaughtUp, openKappa } from '../support/kappa.ts';
import { KAPPA_SRC as SRC, tempProject } from '../support/project.ts';

const T0 = Date.UTC(2026, 5, 1);
const CARDS = 12;

const CONFIG = `
import { Type, count, defineApp, from, sum, table, topic, view } from ${JSON.stringify(SRC)};
const Payment = Type.Object({ id: Type.Integer(), card: Type.String(), amount: Type.Number(), ts: Type.Integer() });
const Card = Type.Object({ card: Type.String(), limit: Type.Number(), region: Type.String(), ts: Type.Integer() });
const payments = topic('payments', { partitions: 3, schema: Payment, key: (p) => p.card, time: (p) => p.ts });
const cards = topic('cards', { partitions: 2, schema: Card, key: (c) => c.card, time: (c) => c.ts });
const cardsCo = topic('cards_co', { partitions: 3, schema: Card, key: (c) => c.card, time: (c) => c.ts });
const enriched = topic('enriched', { partitions: 1 });
const profiles = table(cards);
const profilesCo = table(cardsCo, { partitioned: true });
export default defineApp({
  topics: [payments, cards, cardsCo, enriched],
  views: [
    view('by_region', from(payments)
      .join(profiles, (p) => p.card, (p, c) => ({ ...p, region: c.region, over: p.amount > c.limit }))
      .groupBy((p) => ({ region: p.region }))
      .aggregate({ n: count(), over: sum((p) => (p.over ? 1 : 0)), total: sum((p) => p.amount) })),
    view('by_card', from(payments)
      .leftJoin(profilesCo, (p) => p.card, (p, c) => ({ ...p, known: c !== undefined, over: c !== undefined && p.amount > c.limit }))
      .groupBy((p) => ({ card: p.card }))
      .aggregate({ n: count(), known: sum((p) => (p.known ? 1 : 0)), over: sum((p) => (p.over ? 1 : 0)) })),
  ],
  outputs: [
    from(payments).join(profiles, (p) => p.card, (p, c) => ({ id: p.id, limit: c.limit })).to(enriched),
  ],
});
`;

interface Payment {
  id: number;
  card: string;
  amount: number;
  ts: number;
}
interface Card {
  card: string;
  limit: number;
  region: string;
  ts: number;
}
/** A card record, or its deletion (a tombstone) at `ts`. */
type CardEvent = Card | { card: string; deleted: true; ts: number };

interface Arrival {
  at: number;
  topic: 'payments' | 'cards';
  event: Payment | CardEvent;
}

/** Cards set at T0 - 1, changed now and then (a few deleted); payments arriving up to 5 s after their time. */
function events(n: number): { payments: Payment[]; cards: CardEvent[]; arrivals: Arrival[] } {
  const random = seededRandom(31);
  const cards: CardEvent[] = [];
  for (let c = 0; c < CARDS; c++)
    cards.push({ card: `c${c}`, limit: 100 + 10 * c, region: ['eu', 'us', 'apac'][c % 3], ts: T0 - 1 });
  const payments: Payment[] = [];
  for (let i = 0; i < n; i++) {
    const ts = T0 + i * 20;
    if (random() < 0.02) {
      const c = Math.floor(random() * CARDS);
      cards.push(
        random() < 0.1
          ? { card: `c${c}`, deleted: true, ts }
          : { card: `c${c}`, limit: Math.floor(random() * 300), region: ['eu', 'us', 'apac'][c % 3], ts },
      );
    }
    payments.push({ id: i, card: `c${Math.floor(random() * CARDS)}`, amount: Math.floor(random() * 300), ts: ts + 1 });
  }
  const arrivals: Arrival[] = [
    ...cards.map((e) => ({ at: e.ts, topic: 'cards' as const, event: e })),
    ...payments.map((p) => ({ at: p.ts + Math.floor(random() * 5000), topic: 'payments' as const, event: p })),
  ].sort((a, b) => a.at - b.at || (a.topic === 'cards' ? -1 : 1));
  return { payments, cards, arrivals };
}

/** The card of `p` current at its event time (the last card event at or before it), or undefined. */
function cardAt(cards: CardEvent[], p: Payment): Card | undefined {
  let found: CardEvent | undefined;
  for (const c of cards) if (c.card === p.card && c.ts <= p.ts) found = c;
  return found === undefined || 'deleted' in found ? undefined : found;
}

function oracle(all: ReturnType<typeof events>): Record<string, unknown[]> {
  const byRegion = new Map<string, { region: string; n: number; over: number; total: number }>();
  const byCard = new Map<string, { card: string; n: number; known: number; over: number }>();
  const enriched: string[] = [];
  for (const p of all.payments) {
    const c = cardAt(all.cards, p);
    const k = byCard.get(p.card) ?? { card: p.card, n: 0, known: 0, over: 0 };
    byCard.set(p.card, {
      ...k,
      n: k.n + 1,
      known: k.known + (c ? 1 : 0),
      over: k.over + (c && p.amount > c.limit ? 1 : 0),
    });
    if (c === undefined) continue;
    const r = byRegion.get(c.region) ?? { region: c.region, n: 0, over: 0, total: 0 };
    byRegion.set(c.region, {
      ...r,
      n: r.n + 1,
      over: r.over + (p.amount > c.limit ? 1 : 0),
      total: r.total + p.amount,
    });
    enriched.push(JSON.stringify({ id: p.id, limit: c.limit }));
  }
  const sorted = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
  return { by_region: sorted(byRegion), by_card: sorted(byCard), enriched: enriched.sort() };
}

function cardRecord(e: CardEvent) {
  return { key: e.card, value: 'deleted' in e ? null : JSON.stringify(e), timestamp: e.ts };
}

async function appendArrivals(log: FileLog, arrivals: Arrival[]): Promise<void> {
  for (const a of arrivals) {
    if (a.topic === 'payments') {
      await log.append('payments', [{ key: (a.event as Payment).card, value: JSON.stringify(a.event) }]);
    } else {
      await log.append('cards', [cardRecord(a.event as CardEvent)]);
      await log.append('cards_co', [cardRecord(a.event as CardEvent)]);
    }
  }
}

async function snapshot(store: ViewStore, log: FileLog): Promise<Record<string, unknown[]>> {
  const enriched: string[] = [];
  for await (const batch of log.read('enriched', 0, 0)) for (const r of batch.records()) enriched.push(String(r.value));
  return {
    by_region: (await store.query('SELECT region, n, over, total FROM by_region ORDER BY region')).rows,
    by_card: (await store.query('SELECT card, n, known, over FROM by_card ORDER BY card')).rows,
    enriched: enriched.sort(),
  };
}

async function run(kappa: Kappa, all: ReturnType<typeof events>, live: boolean, threads: number) {
  const { log, store, engine } = kappa;
  await log.createTopic('payments', { partitions: 3 });
  await log.createTopic('cards', { partitions: 2 });
  await log.createTopic('cards_co', { partitions: 3 });
  if (!live) await appendArrivals(log, all.arrivals);
  await engine.start();
  assert.equal(engine.threads, threads);
  if (live) {
    const random = seededRandom(7);
    for (let i = 0; i < all.arrivals.length;) {
      const n = 1 + Math.floor(random() * 40);
      await appendArrivals(log, all.arrivals.slice(i, i + n));
      i += n;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
    }
  }
  await engineCaughtUp(engine, log);
  await engine.stop();
  return snapshot(store, log);
}

describe('stream–table joins through the engine', () => {
  const all = events(3000);
  let app: AppDef;

  test(
    'live in bursts equals a replay on two worker threads and the event-time oracle',
    { timeout: 180_000 },
    async (t) => {
      const project = tempProject(t, 'kappa-joins-');
      const config = project.writeConfig(CONFIG, 'kappa');
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
      // Payments that arrive after a change of their card that is later than them in event time.
      const late = all.arrivals.filter(
        (a, i) =>
          a.topic === 'payments' &&
          all.arrivals
            .slice(0, i)
            .some((b) => b.topic === 'cards' && b.event.card === (a.event as Payment).card && b.event.ts > a.event.ts),
      );
      assert.ok(late.length > 20, `${late.length} payments arrive after a later change of their card`);

      const live = await run(await open('live', 0), all, true, 0);
      const replay = await run(await open('replay', 2), all, false, 2);
      const expected = oracle(all);
      assert.deepEqual(live, expected);
      assert.deepEqual(replay, live);
      const cards = expected.by_card as { known: number; n: number }[];
      assert.ok(
        cards.some((c) => c.known < c.n),
        'some payments found their card deleted',
      );
    },
  );
});

const WINDOW_CONFIG = `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
const Impression = Type.Object({ ad: Type.String(), user: Type.Integer(), ts: Type.Integer() });
const Click = Type.Object({ id: Type.Integer(), ad: Type.String(), ts: Type.Integer() });
const impressions = topic('impressions', { partitions: 2, schema: Impression, key: (i) => i.ad, time: (i) => i.ts });
const clicks = topic('clicks', { partitions: 2, schema: Click, key: (c) => c.ad, time: (c) => c.ts });
const within = { within: '10s', key: (c) => c.ad, allowedLateness: '30s' };
export default defineApp({
  topics: [impressions, clicks],
  views: [
    view('pairs', from(clicks).join(impressions, within, (c, i) => ({ ad: c.ad, user: i.user }))
      .groupBy((p) => ({ ad: p.ad })).aggregate({ pairs: count(), users: sum((p) => p.user) })),
    view('clicks_seen', from(clicks).leftJoin(impressions, { ...within, partitioned: true }, (c, i) => ({ ad: c.ad, matched: i !== undefined }))
      .groupBy((p) => ({ ad: p.ad })).aggregate({ n: count(), matched: sum((p) => (p.matched ? 1 : 0)) })),
  ],
});
`;

interface Impression {
  ad: string;
  user: number;
  ts: number;
}
interface Click {
  id: number;
  ad: string;
  ts: number;
}
type WindowArrival =
  { at: number; topic: 'impressions'; event: Impression } | { at: number; topic: 'clicks'; event: Click };

/**
 * Impressions of 6 ads in event-time order; clicks up to 5 s late, and one in 100 a minute late (past
 * the join's allowed lateness of 30 s); then one impression per partition an hour on, so the last
 * clicks' windows close.
 */
function windowEvents(n: number): WindowArrival[] {
  const random = seededRandom(41);
  const out: WindowArrival[] = [];
  let clickId = 0;
  for (let i = 0; i < n; i++) {
    const ts = T0 + i * 300;
    const ad = `a${Math.floor(random() * 6)}`;
    out.push({ at: ts, topic: 'impressions', event: { ad, user: Math.floor(random() * 1000), ts } });
    if (random() < 0.6) {
      const late = random() < 0.01;
      const click = { id: clickId++, ad: `a${Math.floor(random() * 6)}`, ts: ts - (late ? 60_000 : 0) + 2000 };
      out.push({ at: ts + 2000 + Math.floor(random() * 5000), topic: 'clicks', event: click });
    }
  }
  const end = T0 + n * 300 + 3_600_000;
  for (const ad of ['end0', 'end2']) out.push({ at: end, topic: 'impressions', event: { ad, user: 0, ts: end } });
  return out.sort((a, b) => a.at - b.at);
}

/** What the views must hold: each click that is not late with every impression of its ad within 10 s. */
function windowOracle(arrivals: WindowArrival[]): { pairs: unknown[]; clicks_seen: unknown[]; late: number } {
  const impressions = arrivals.filter((a) => a.topic === 'impressions').map((a) => a.event as Impression);
  const cursor = [-Infinity, -Infinity];
  const pairs = new Map<string, { ad: string; pairs: number; users: number }>();
  const seen = new Map<string, { ad: string; n: number; matched: number }>();
  let late = 0;
  for (const a of arrivals) {
    if (a.topic !== 'clicks') continue;
    const c = a.event;
    const p = partitionForKey(c.ad, 2);
    if (c.ts < cursor[p] - 30_000) {
      late++;
      continue;
    }
    cursor[p] = Math.max(cursor[p], c.ts);
    const matches = impressions.filter((i) => i.ad === c.ad && Math.abs(i.ts - c.ts) <= 10_000);
    const row = pairs.get(c.ad) ?? { ad: c.ad, pairs: 0, users: 0 };
    if (matches.length > 0)
      pairs.set(c.ad, {
        ad: c.ad,
        pairs: row.pairs + matches.length,
        users: row.users + matches.reduce((s, i) => s + i.user, 0),
      });
    const s = seen.get(c.ad) ?? { ad: c.ad, n: 0, matched: 0 };
    seen.set(c.ad, { ad: c.ad, n: s.n + Math.max(1, matches.length), matched: s.matched + matches.length });
  }
  const sorted = <T>(m: Map<string, T>) => [...m.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([, v]) => v);
  return { pairs: sorted(pairs), clicks_seen: sorted(seen), late };
}

async function runWindow(kappa: Kappa, arrivals: WindowArrival[], live: boolean, threads: number) {
  const { log, store, engine } = kappa;
  await log.createTopic('impressions', { partitions: 2 });
  await log.createTopic('clicks', { partitions: 2 });
  const append = async (some: WindowArrival[]) => {
    for (const a of some) await log.append(a.topic, [{ key: a.event.ad, value: JSON.stringify(a.event) }]);
  };
  if (!live) await append(arrivals);
  await engine.start();
  assert.equal(engine.threads, threads);
  if (live) {
    const random = seededRandom(8);
    for (let i = 0; i < arrivals.length;) {
      const n = 1 + Math.floor(random() * 40);
      await append(arrivals.slice(i, i + n));
      i += n;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
    }
  }
  await engineCaughtUp(engine, log);
  await engine.stop();
  let late = 0;
  for (let p = 0; p < 2; p++) for await (const batch of log.read('clicks.late', p, 0)) late += batch.records().length;
  return {
    pairs: (await store.query('SELECT ad, pairs, users FROM pairs ORDER BY ad')).rows,
    clicks_seen: (await store.query('SELECT ad, n, matched FROM clicks_seen ORDER BY ad')).rows,
    late: late / 2, // each view sends its late clicks
  };
}

describe('stream–stream windowed joins through the engine', () => {
  test(
    'clicks joined with the impressions within 10 s: live in bursts equals a replay and the oracle',
    { timeout: 180_000 },
    async (t) => {
      const arrivals = windowEvents(2500);
      const project = tempProject(t, 'kappa-window-joins-');
      const config = project.writeConfig(WINDOW_CONFIG, 'kappa');
      const app = await loadApp(config);
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
      const expected = windowOracle(arrivals);
      assert.ok(expected.late >= 5, `${expected.late} late clicks`);
      const live = await runWindow(await open('live', 0), arrivals, true, 0);
      assert.deepEqual(live, expected);
      const replay = await runWindow(await open('replay', 2), arrivals, false, 2);
      assert.deepEqual(replay, live);
    },
  );
});
