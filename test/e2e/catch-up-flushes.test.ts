/**
 * A view's task that catches up (a build, a replay, a restart behind the head) flushes up to
 * `catchUpRowsMax` rows at a time, and `dirtyRowsMax` once it has reached the head of its
 * partition: larger flushes while far behind (for speed: larger SQLite transactions), small ones
 * at the head (for latency). On the engine's thread and on a worker thread alike.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/random.ts';
import { deltaCount } from '../../src/view/index.ts';
import { engineCaughtUp, openKappa } from '../support/kappa.ts';
import { KAPPA_SRC as SRC, tempDataProject } from '../support/project.ts';

const CONFIG = `
import { Type, count, defineApp, from, topic, view } from ${JSON.stringify(SRC)};
const Click = Type.Object({ user: Type.String() });
const clicks = topic('clicks', { partitions: 1, schema: Click, key: (c) => c.user });
export default defineApp({
  topics: [clicks],
  views: [view('by_user', from(clicks).groupBy((c) => ({ user: c.user })).aggregate({ n: count() }))],
});
`;

/** The same clicks, and a view whose rows grow with their events (a set of pages per user). */
const GROWING_CONFIG = `
import { Type, count, countDistinct, defineApp, from, topic, view } from ${JSON.stringify(SRC)};
const Click = Type.Object({ user: Type.String() });
const clicks = topic('clicks', { partitions: 1, schema: Click, key: (c) => c.user });
export default defineApp({
  topics: [clicks],
  views: [
    view('by_user', from(clicks).groupBy((c) => ({ user: c.user })).aggregate({ n: count() })),
    view('pages', from(clicks).groupBy((c) => ({ user: c.user })).aggregate({ pages: countDistinct((c) => c.user) })),
  ],
});
`;

/** Records the rows of every flush to the store, by view, in order. */
function flushSizes(kappa: Awaited<ReturnType<typeof openKappa>>): Map<string, number[]> {
  const sizes = new Map<string, number[]>();
  const flush = kappa.store.flush.bind(kappa.store);
  kappa.store.flush = (name, version, deltas, checkpoints) => {
    sizes.set(name, [...(sizes.get(name) ?? []), deltaCount(deltas)]);
    return flush(name, version, deltas, checkpoints);
  };
  return sizes;
}

const clicks = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `u${from + i}`, value: JSON.stringify({ user: `u${from + i}` }) }));

for (const workers of [0, 1]) {
  test(
    `catching up flushes up to catchUpRowsMax rows, at the head up to dirtyRowsMax (${workers === 0 ? 'engine thread' : 'worker thread'})`,
    { timeout: 60_000 },
    async (t) => {
      const project = tempDataProject(t, 'kappa-catch-up-', CONFIG);
      const kappa = await openKappa({
        t,
        dir: project.dir,
        configPath: project.config,
        workers,
        flushIntervalMs: 2_000,
        engine: { dirtyRowsMax: 20, catchUpRowsMax: 200 },
        start: false,
      });
      await kappa.log.createTopic('clicks', { partitions: 1 });
      // 2,000 users, one row each, in appends of 5: the task sees its pending rows grow 5 at a time.
      for (let i = 0; i < 2_000; i += 5) await kappa.log.append('clicks', clicks(i, 5));
      const flushed = flushSizes(kappa);
      await kappa.engine.start();
      await engineCaughtUp(kappa.engine, kappa.log);
      const catchingUp = flushed.get('by_user') ?? [];
      flushed.clear();
      assert.equal(
        catchingUp.reduce((a, b) => a + b, 0),
        2_000,
      );
      assert.ok(Math.max(...catchingUp) <= 200 + 5 * 8, `catch-up flushes: ${catchingUp}`);
      assert.ok(catchingUp.filter((n) => n >= 200).length >= 5, `catch-up flushes: ${catchingUp}`);

      // At the head: 200 more users arriving 5 at a time.
      for (let i = 2_000; i < 2_200; i += 5) {
        await kappa.log.append('clicks', clicks(i, 5));
        await new Promise((r) => setTimeout(r, 5));
      }
      await engineCaughtUp(kappa.engine, kappa.log);
      const sizes = flushed.get('by_user') ?? [];
      assert.equal(
        sizes.reduce((a, b) => a + b, 0),
        200,
      );
      assert.ok(sizes.length >= 4 && Math.max(...sizes) < 100, `flushes at the head: ${sizes}`);
      assert.deepEqual((await kappa.store.query('SELECT count(*) AS users, sum(n) AS n FROM by_user')).rows, [
        { users: 2_200, n: 2_200 },
      ]);
    },
  );
}

/** `n` clicks by users drawn at random from `users` (seeded), or each by a new user (`users` null). */
function randomClicks(n: number, users: number | null): { key: string; value: string }[] {
  const random = seededRandom(5);
  return Array.from({ length: n }, (_, i) => {
    const user = `u${users === null ? i : Math.floor(random() * users)}`;
    return { key: user, value: JSON.stringify({ user }) };
  });
}

// Every click a new user on the engine thread only: on a worker thread the task folds on while this
// thread writes a flush (tens of thousands of events of this test), so where a gathering stops there
// depends on the machine. The rule is the same code for both (TaskLoop.step).
for (const [workers, users] of [
  [0, 2_000],
  [1, 2_000],
  [0, null],
] as const) {
  test(
    `catching up, a task gathers rows past dirtyRowsMax while its events keep finding them (${users === null ? 'every click a new user: it does not' : `${users} users: it does`}; ${workers === 0 ? 'engine thread' : 'worker thread'})`,
    { timeout: 60_000 },
    async (t) => {
      const project = tempDataProject(t, 'kappa-catch-up-gather-', GROWING_CONFIG);
      const kappa = await openKappa({
        t,
        dir: project.dir,
        configPath: project.config,
        workers,
        // Every step is past the usual interval: only gathering keeps the rows together.
        flushIntervalMs: 1,
        engine: { dirtyRowsMax: 100, catchUpRowsMax: 1_000_000, catchUpFlushIntervalMs: 600_000 },
        start: false,
      });
      await kappa.log.createTopic('clicks', { partitions: 1 });
      const events = users === null ? 40_000 : 20_000;
      const all = randomClicks(events, users);
      for (let i = 0; i < all.length; i += 50) await kappa.log.append('clicks', all.slice(i, i + 50));
      const flushed = flushSizes(kappa);
      await kappa.engine.start();
      await engineCaughtUp(kappa.engine, kappa.log);
      const sizes = flushed.get('by_user') ?? [];
      const growing = flushed.get('pages') ?? [];
      assert.deepEqual((await kappa.store.query('SELECT count(*) AS users, sum(n) AS n FROM by_user')).rows, [
        { users: users ?? events, n: events },
      ]);
      if (users !== null) {
        // The share of clicks by a user not held yet falls as the task holds more: it gathers
        // until nearly every user is held (then a window brings too few new users to judge).
        assert.ok(Math.max(...sizes) >= 1_500, `catch-up flushes: ${sizes}`);
      } else {
        // Every click makes a new row however many are held: gathering stops after a few windows
        // of 4 × dirtyRowsMax events (the first sets the share the next must fall below).
        assert.ok(sizes.length >= 3 && Math.max(...sizes) <= 100 + 3 * 400 + 50, `catch-up flushes: ${sizes}`);
      }
      // Rows that grow (countDistinct keeps a set) are not gathered: at most 4 × dirtyRowsMax, on the usual interval.
      assert.ok(Math.max(...growing) <= 4 * 100 + 50, `catch-up flushes of pages: ${growing}`);
    },
  );
}
