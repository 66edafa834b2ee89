/**
 * Session windows through the engine: a user's clicks closer than the gap form one session row.
 * Clicks are spread over the partitions by click id, so one user's sessions are folded by several
 * tasks and merged when the rows are written. The same clicks fed live in bursts, and appended
 * first then replayed from offset 0 on two worker threads, give identical rows (a custom aggregate
 * included), equal to an oracle computed here; a late click that bridges two sessions merges them
 * into one row and the two old rows are gone; a PostgreSQL store ends with the same rows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { type AppDef, Engine, loadApp } from '../../src/stream/index.ts';
import { openPostgresStore } from '../../src/view/postgres/index.ts';
import { defer } from '../support/cleanup.ts';
import { type Kappa, engineCaughtUp, openKappa } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { postgresForFile } from '../support/postgres.ts';
import { KAPPA_SRC as SRC, tempProject } from '../support/project.ts';

const T0 = Date.UTC(2026, 5, 1);
const GAP = 30_000;
const server = postgresForFile();

const CONFIG = `
import { Type, count, defineApp, first, from, last, max, min, session, sum, topN, topic, view } from ${JSON.stringify(SRC)};
const Click = Type.Object({ id: Type.Integer(), user: Type.String(), page: Type.String(), ms: Type.Integer(), ts: Type.Integer() });
const clicks = topic('clicks', { partitions: 3, schema: Click, key: (c) => String(c.id), time: (c) => c.ts });
const sessions = from(clicks).window(session({ gap: '30s', outOfOrderness: '5s', allowedLateness: '10m' }));
export default defineApp({
  topics: [clicks],
  views: [
    view('sessions', sessions.groupBy((c) => ({ user: c.user })).aggregate({
      clicks: count(), ms: sum((c) => c.ms), shortest: min((c) => c.ms), longest: max((c) => c.ms),
      entry: first((c) => c.page), exit: last((c) => c.page),
    })),
    view('session_pages', sessions.groupBy((c) => ({ user: c.user })).aggregate({ top: topN(2, (c) => c.ms, { value: (c) => c.page }) })),
  ],
});
`;

interface Click {
  id: number;
  user: string;
  page: string;
  ms: number;
  ts: number;
}

/** Clicks of 8 users: mostly seconds apart, now and then a pause of a minute or more (a new session); arriving up to 4 s out of order. */
function clicks(n: number): Click[] {
  const random = seededRandom(52);
  const next = new Map<string, number>();
  const out: Click[] = [];
  for (let id = 0; id < n; id++) {
    const user = `u${Math.floor(random() * 8)}`;
    const ts =
      (next.get(user) ?? T0) +
      (random() < 0.08 ? 60_000 + Math.floor(random() * 60_000) : 1 + Math.floor(random() * 20_000));
    next.set(user, ts);
    out.push({ id, user, page: `p${Math.floor(random() * 20)}`, ms: Math.floor(random() * 5000), ts });
  }
  return out.sort((a, b) => a.ts + ((a.id * 7919) % 4000) - (b.ts + ((b.id * 7919) % 4000)));
}

/** Each user's sessions: click times sorted, merged while the next starts at most GAP after the last. */
function oracle(all: Click[]): unknown[] {
  const rows: { user: string; window_start: number; window_end: number; clicks: number; ms: number }[] = [];
  for (const user of [...new Set(all.map((c) => c.user))].sort()) {
    const mine = all.filter((c) => c.user === user).sort((a, b) => a.ts - b.ts);
    let cur: (typeof rows)[number] | null = null;
    for (const c of mine) {
      if (cur !== null && c.ts <= cur.window_end) {
        cur.window_end = Math.max(cur.window_end, c.ts + GAP);
        cur.clicks++;
        cur.ms += c.ms;
      } else rows.push((cur = { user, window_start: c.ts, window_end: c.ts + GAP, clicks: 1, ms: c.ms }));
    }
  }
  return rows;
}

const records = (all: Click[]) => all.map((c) => ({ key: String(c.id), value: JSON.stringify(c) }));

async function run(kappa: Kappa, all: Click[], live: boolean, threads: number) {
  const { log, store, engine } = kappa;
  await log.createTopic('clicks', { partitions: 3 });
  if (!live) await log.append('clicks', records(all));
  await engine.start();
  assert.equal(engine.threads, threads);
  if (live) {
    const random = seededRandom(9);
    for (let i = 0; i < all.length;) {
      const n = 1 + Math.floor(random() * 60);
      await log.append('clicks', records(all.slice(i, i + n)));
      i += n;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
    }
  }
  await engineCaughtUp(engine, log);
  await engine.stop();
  return {
    sessions: (await store.query('SELECT * FROM sessions ORDER BY "user", window_start')).rows,
    pages: (await store.query('SELECT * FROM session_pages ORDER BY "user", window_start')).rows,
  };
}

describe('session windows through the engine', () => {
  const all = clicks(4000);
  let app: AppDef;
  let config: string;
  let sqlite: Awaited<ReturnType<typeof run>>;

  test('live in bursts equals a replay on two worker threads and the oracle', { timeout: 180_000 }, async (t) => {
    const project = tempProject(t, 'kappa-sessions-');
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
    const live = await run(await open('live', 0), all, true, 0);
    const replay = await run(await open('replay', 2), all, false, 2);
    assert.deepEqual(replay, live);
    sqlite = live;
    const expected = oracle(all);
    assert.ok(expected.length > 100, `${expected.length} sessions`);
    assert.deepEqual(
      (live.sessions as Record<string, unknown>[]).map((r) => ({
        user: r.user,
        window_start: r.window_start,
        window_end: r.window_end,
        clicks: r.clicks,
        ms: r.ms,
      })),
      expected,
    );
    assert.equal(live.pages.length, expected.length);
  });

  test('a late click that bridges two sessions merges them into one row', { timeout: 60_000 }, async (t) => {
    const project = tempProject(t, 'kappa-sessions-bridge-');
    const kappa = await openKappa({
      t,
      dir: project.dataDir('data'),
      configPath: project.writeConfig(CONFIG, 'kappa'),
      workers: 0,
      engineEnd: 'close',
      flushIntervalMs: 15,
    });
    const { log, store, engine } = kappa;
    const click = (id: number, s: number): Click => ({
      id,
      user: 'ada',
      page: `p${id}`,
      ms: 100 * id,
      ts: T0 + s * 1000,
    });
    await log.append('clicks', records([click(1, 0), click(2, 20), click(3, 70), click(4, 90)]));
    await engineCaughtUp(engine, log);
    const before = (await store.query('SELECT window_start, window_end, clicks FROM sessions ORDER BY window_start'))
      .rows;
    assert.deepEqual(before, [
      { window_start: T0, window_end: T0 + 50_000, clicks: 2 },
      { window_start: T0 + 70_000, window_end: T0 + 120_000, clicks: 2 },
    ]);
    // At 45 s, [45 s, 75 s) touches both: one session from 0 to 120 s.
    const told: (string | number | null)[][] = [];
    engine.onChange((c) => {
      if (c.kind === 'rows' && c.view === 'sessions') told.push(...c.keys);
    });
    await log.append('clicks', records([click(5, 45)]));
    await engineCaughtUp(engine, log);
    const after = (await store.query('SELECT window_start, window_end, clicks, ms, entry, exit FROM sessions')).rows;
    assert.deepEqual(after, [
      { window_start: T0, window_end: T0 + 120_000, clicks: 5, ms: 1500, entry: 'p1', exit: 'p4' },
    ]);
    // The change feed names the merged session and the two it replaced (read back, they have no row: deleted).
    const keys = (k: (string | number | null)[]) => JSON.stringify(k);
    for (const gone of [
      ['ada', T0, T0 + 50_000],
      ['ada', T0 + 70_000, T0 + 120_000],
      ['ada', T0, T0 + 120_000],
    ])
      assert.ok(told.map(keys).includes(keys(gone)), `${keys(gone)} was told in ${JSON.stringify(told)}`);
    const top = (await store.query('SELECT top FROM session_pages')).rows as { top: string }[];
    assert.deepEqual(JSON.parse(top[0].top), [
      { by: 500, value: 'p5' },
      { by: 400, value: 'p4' },
    ]);
  });

  test('a PostgreSQL store merges the sessions as SQLite does', { timeout: 180_000 }, async (t) => {
    assert.ok(sqlite !== undefined, 'runs after the first test');
    const project = tempProject(t, 'kappa-sessions-pg-');
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
      flushIntervalMs: 15,
    });
    defer(t, () => engine.stop());
    // Live in bursts: sessions are merged across flushes and partitions in PostgreSQL too.
    const got = await run({ log, store, engine } as unknown as Kappa, all, true, 0);
    assert.deepEqual(got, sqlite);
  });
});
