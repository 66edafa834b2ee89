/**
 * Replay gives the same answer as live: the same events fed to a running engine in small bursts
 * over time, and appended all at once before an engine starts from the beginning of the log, give
 * identical view rows, identical late records and identical dead letters.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { Type } from '../../src/schema/index.ts';
import {
  Engine,
  avg,
  count,
  defineApp,
  first,
  from,
  last,
  max,
  min,
  sum,
  topic,
  tumbling,
  view,
} from '../../src/stream/index.ts';
import { type ViewStore } from '../../src/view/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';

const T0 = Date.UTC(2026, 2, 1);
const quiet = { info() {}, warn() {} };

// Readings in tenths of a degree, so the expected sums are easy to state; live and replay must agree
// to the bit (fractional sums would too: sum() keeps an exact two-part total, see
// src/stream/aggregates-precision.test.ts).
const Reading = Type.Object({
  sensor: Type.String(),
  site: Type.String(),
  celsius: Type.Integer(),
  ts: Type.Integer(),
});
const readings = topic('readings', { partitions: 3, schema: Reading, key: (r) => r.sensor, time: (r) => r.ts });
const app = defineApp({
  topics: [readings],
  views: [
    view(
      'per_site',
      from(readings)
        .filter((r) => r.celsius > -50)
        .groupBy((r) => ({ site: r.site }))
        .aggregate({
          n: count(),
          total: sum((r) => r.celsius),
          lo: min((r) => r.celsius),
          hi: max((r) => r.celsius),
          mean: avg((r) => r.celsius),
          firstC: first((r) => r.celsius),
          lastC: last((r) => r.celsius),
        }),
    ),
    view(
      'per_minute',
      from(readings)
        .window(tumbling('1m', { outOfOrderness: '5s', allowedLateness: '20s' }))
        .groupBy((r) => ({ sensor: r.sensor }))
        .aggregate({ n: count(), mean: avg((r) => r.celsius) }),
    ),
  ],
});

/** Deterministic events: mostly in order, some out of order (a few beyond the lateness), some invalid. */
function events(n: number): string[] {
  const random = seededRandom(3);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const late = random() < 0.03 ? 60_000 + Math.floor(random() * 120_000) : Math.floor(random() * 4000);
    const e = {
      sensor: `s${Math.floor(random() * 12)}`,
      site: `site-${Math.floor(random() * 3)}`,
      celsius: Math.round((random() * 60 - 10) * 10),
      ts: T0 + i * 500 - late,
    };
    out.push(random() < 0.01 ? JSON.stringify({ ...e, celsius: 'hot' }) : JSON.stringify(e));
  }
  return out;
}

const keyOf = (line: string): string => (JSON.parse(line) as { sensor: string }).sensor;

async function caughtUp(engine: Engine, log: FileLog): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let done = true;
    const behind: string[] = [];
    for (const t of engine.status()) {
      const { end } = await log.offsets(t.topic, t.partition);
      if (t.committedOffset < end) {
        done = false;
        behind.push(`${t.view}/${t.partition}: committed ${t.committedOffset}, read ${t.offset}, end ${end}`);
      }
    }
    if (done) return;
    if (Date.now() > deadline) throw new Error(`the engine did not catch up: ${behind.join('; ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function snapshot(store: ViewStore, log: FileLog): Promise<unknown> {
  const perSite = await store.query('SELECT * FROM per_site ORDER BY site');
  const perMinute = await store.query('SELECT * FROM per_minute ORDER BY sensor, window_start');
  const side: Record<string, string[]> = {};
  for (const t of ['readings.late', 'readings.dlq']) {
    side[t] = [];
    for (let p = 0; p < 3; p++) {
      for await (const batch of log.read(t, p, 0)) {
        for (const r of batch.records())
          side[t].push(`${p}:${r.value!.toString()}|${r.headers.map((h) => `${h.key}=${h.value}`).join(',')}`);
      }
    }
  }
  // Tasks of different views append to the same side topics concurrently, so only each view's own
  // order is deterministic: compare the records as a sorted list.
  for (const t of Object.keys(side)) side[t].sort();
  return { perSite: perSite.rows, perMinute: perMinute.rows, side };
}

test(
  'the same events live in bursts and replayed from the start give identical views, late records and dead letters',
  { timeout: 120_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'kappa-replay-'));
    try {
      const all = events(4000);

      // Live: the engine runs while events arrive in bursts of 1-60 with pauses.
      const liveLog = await openFileLog({ dir: join(root, 'live'), logger: quiet });
      const liveStore = await openSqliteStore({ path: join(root, 'live', 'views.db') });
      await liveLog.createTopic('readings', { partitions: 3 });
      const live = new Engine({
        log: liveLog,
        store: liveStore,
        control: liveStore,
        app,
        logger: quiet,
        flushIntervalMs: 15,
      });
      await live.start();
      const random = seededRandom(9);
      for (let i = 0; i < all.length;) {
        const n = 1 + Math.floor(random() * 60);
        await liveLog.append(
          'readings',
          all.slice(i, i + n).map((value) => ({ key: keyOf(value), value })),
        );
        i += n;
        await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
      }
      await caughtUp(live, liveLog);
      await live.stop();

      // Replay: every event is in the log before the engine starts from offset 0.
      const replayLog = await openFileLog({ dir: join(root, 'replay'), logger: quiet });
      const replayStore = await openSqliteStore({ path: join(root, 'replay', 'views.db') });
      await replayLog.createTopic('readings', { partitions: 3 });
      await replayLog.append(
        'readings',
        all.map((value) => ({ key: keyOf(value), value })),
      );
      const replay = new Engine({
        log: replayLog,
        store: replayStore,
        control: replayStore,
        app,
        logger: quiet,
        flushIntervalMs: 1000,
      });
      await replay.start();
      await caughtUp(replay, replayLog);
      await replay.stop();

      const a = (await snapshot(liveStore, liveLog)) as {
        perSite: unknown[];
        perMinute: unknown[];
        side: Record<string, string[]>;
      };
      const b = await snapshot(replayStore, replayLog);
      assert.ok(a.perSite.length === 3 && a.perMinute.length > 100, 'the views hold rows');
      assert.ok(
        a.side['readings.late'].length > 0 && a.side['readings.dlq'].length > 0,
        'some events were late and some invalid',
      );
      assert.deepEqual(a, b);
      for (const x of [liveStore, replayStore]) await x.close();
      for (const x of [liveLog, replayLog]) await x.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
