/**
 * Worker threads change where tasks fold, never what they fold: the same events processed with
 * every task on the main thread, on 1 worker thread and on 2 give identical view rows, dead letters
 * and late events. A worker that crashes, a task that throws in a worker, and a config that does
 * not load in a worker each fail the engine with an error that says so, instead of hanging.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { type Engine, loadApp } from '../../src/stream/index.ts';
import { type ViewStore } from '../../src/view/index.ts';
import { type Kappa, engineCaughtUp, openKappa } from '../support/kappa.ts';
import { quietLogger } from '../support/loggers.ts';
import { type Owner, type RunResult, runKappa, startKappa } from '../support/processes.ts';
import { KAPPA_SRC as SRC, tempProject } from '../support/project.ts';

const T0 = Date.UTC(2026, 4, 1);
const quiet = quietLogger;

// Integer measures only, so sums are exact whatever the flush boundaries. One view of each shape
// the plan folds differently: grouped with a filter, tumbling window, flatMap, hopping window.
const CONFIG = `
import { isMainThread } from 'node:worker_threads';
import { Type, avg, count, defineApp, first, from, hopping, last, max, min, sum, topic, tumbling, view } from ${JSON.stringify(SRC)};
if (process.env.KAPPA_TEST_BREAK_WORKER_CONFIG === '1' && !isMainThread) throw new Error('this config refuses to load in a worker');
const Click = Type.Object({ user: Type.String(), page: Type.String(), ms: Type.Integer(), ts: Type.Integer() });
const clicks = topic('clicks', { partitions: 3, schema: Click, key: (c) => c.user, time: (c) => c.ts });
export default defineApp({
  topics: [clicks],
  views: [
    view('by_page', from(clicks).filter((c) => c.ms >= 10).groupBy((c) => ({ page: c.page, mobile: c.user.endsWith('m') })).aggregate({
      n: count(), ms: sum((c) => c.ms), lo: min((c) => c.ms), hi: max((c) => c.ms), firstUser: first((c) => c.user), lastUser: last((c) => c.user),
    })),
    view('per_minute', from(clicks).window(tumbling('1m', { outOfOrderness: '5s', allowedLateness: '10s' })).groupBy((c) => ({ user: c.user })).aggregate({ n: count(), mean: avg((c) => c.ms) })),
    view('words', from(clicks).flatMap((c) => c.page.split('/').filter((w) => w !== '')).groupBy((w) => ({ word: w })).aggregate({ n: count() })),
    view('hop', from(clicks).window(hopping('2m', '1m')).groupBy((c) => ({ page: c.page })).aggregate({ n: count(), ms: sum((c) => c.ms) })),
  ],
});
`;

/** A config whose pipeline misbehaves only on chosen pages, and only in a worker thread. */
const BROKEN_CONFIG = `
import { isMainThread } from 'node:worker_threads';
const hog = [];
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
const Click = Type.Object({ user: Type.String(), page: Type.String(), ms: Type.Integer(), ts: Type.Integer() });
const clicks = topic('clicks', { partitions: 3, schema: Click, key: (c) => c.user, time: (c) => c.ts });
export default defineApp({
  topics: [clicks],
  views: [
    view('by_page', from(clicks)
      .filter((c) => {
        // Thrown outside any record: nothing catches it but the thread's own handler.
        if (c.page === '/crash' && !isMainThread) setTimeout(() => { throw new Error('boom from a timer'); });
        // Keeps growing garbage that never dies, until the worker's heap cap is reached.
        if (c.page === '/hog' && !isMainThread) for (let i = 0; i < 1e9; i++) hog.push(new Array(1000).fill(i));
        return true;
      })
      .groupBy((c) => ({ page: c.page }))
      .aggregate({ n: count(), ms: sum((c) => { if (c.page === '/throw' && !isMainThread) throw new Error('boom in an aggregate'); return c.ms; }) })),
  ],
});
`;

function events(n: number): { key: string; value: string }[] {
  const random = seededRandom(5);
  const pages = ['/', '/shop', '/shop/cart', '/shop/cart/pay', '/help', '/help/faq'];
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < n; i++) {
    const user = `u${Math.floor(random() * 40)}${random() < 0.3 ? 'm' : ''}`;
    const click = {
      user,
      page: pages[Math.floor(random() * pages.length)],
      ms: Math.floor(random() * 500),
      ts: T0 + i * 100 - Math.floor(random() * 3000),
    };
    out.push({ key: user, value: JSON.stringify(click) });
  }
  return out;
}

/** Dead letters and late events, three of each per partition, appended after the rest. */
function oddOnes(): { value: string; partition: number }[] {
  const out: { value: string; partition: number }[] = [];
  for (let p = 0; p < 3; p++) {
    for (let k = 0; k < 3; k++) {
      out.push({ value: JSON.stringify({ user: `bad${k}`, page: '/', ms: 'slow', ts: T0 }), partition: p });
      out.push({
        value: JSON.stringify({ user: `late${p}`, page: '/help', ms: 5 + k, ts: T0 - 3_600_000 }),
        partition: p,
      });
    }
  }
  return out;
}

/** Waits until every task has moved from the engine's thread to its worker. */
async function onWorkers(engine: Engine): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!engine.status().every((t) => t.worker !== null)) {
    if (Date.now() > deadline)
      throw new Error(`the tasks did not move to their workers: ${JSON.stringify(engine.status())}`);
    await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 20))]);
  }
}

async function snapshot(store: ViewStore, log: FileLog): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  out.by_page = (await store.query('SELECT * FROM by_page ORDER BY page, mobile')).rows;
  out.per_minute = (await store.query('SELECT * FROM per_minute ORDER BY user, window_start')).rows;
  out.words = (await store.query('SELECT * FROM words ORDER BY word')).rows;
  out.hop = (await store.query('SELECT * FROM hop ORDER BY page, window_start')).rows;
  for (const topic of ['clicks.dlq', 'clicks.late']) {
    const records: string[] = [];
    for (let p = 0; p < 3; p++) {
      for await (const batch of log.read(topic, p, 0)) {
        for (const r of batch.records())
          records.push(`${p}:${r.value}|${r.headers.map((h) => `${h.key}=${h.value}`).join(',')}`);
      }
    }
    out[topic] = records.sort();
  }
  return out;
}

function kappa(args: string[]): Promise<RunResult> {
  return runKappa(args, { timeoutMs: 60_000 });
}

/** Runs `kappa start` until every task has caught up with the log (`kappa lag`), then stops it with SIGTERM. */
async function startUntilCaughtUp(
  t: Owner,
  args: string[],
  tasks: number,
): Promise<{ code: number | null; stderr: string }> {
  const child = startKappa(t, args);
  const dataDir = args[args.indexOf('--data-dir') + 1];
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const lag = await kappa(['--data-dir', dataDir, 'lag', '--json']);
      if (lag.code === 0) {
        const rows = JSON.parse(lag.stdout) as { lag: number }[];
        if (rows.length === tasks && rows.every((r) => r.lag === 0)) break;
      }
      if (Date.now() > deadline || !child.running)
        throw new Error(`kappa start did not catch up: ${lag.stdout} ${child.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    child.kill('SIGTERM');
  }
  return { code: (await child.exited).code, stderr: child.stderr };
}

describe('worker threads', () => {
  const project = tempProject({ after }, 'kappa-workers-');
  const root = project.root;
  const config = project.writeConfig(CONFIG, 'kappa');

  test(
    'the same events give identical rows, dead letters and late events on the main thread, 1 worker and 2 workers',
    { timeout: 120_000 },
    async () => {
      const app = await loadApp(config);
      const all = events(6000);
      const snapshots: Record<string, unknown>[] = [];
      for (const workers of [0, 1, 2]) {
        const kappa = await openKappa({
          dir: project.dataDir(`data-${workers}`),
          configPath: config,
          app,
          workers,
          flushIntervalMs: 30,
          engine: { dirtyRowsMax: 40 },
          start: false,
          engineEnd: 'close',
        });
        const { log, store, engine } = kappa;
        await log.createTopic('clicks', { partitions: 3 });
        // Half the events before the engine starts (a replay), half while it runs (live), in bursts.
        await log.append('clicks', all.slice(0, 3000));
        try {
          await engine.start();
          assert.equal(engine.threads, workers);
          if (workers > 0) await onWorkers(engine);
          for (let i = 3000; i < all.length; i += 250) {
            await log.append('clicks', all.slice(i, i + 250));
            await new Promise((r) => setTimeout(r, 5));
          }
          for (const odd of oddOnes())
            await log.append('clicks', [{ key: 'x', value: odd.value, partition: odd.partition }]);
          await engineCaughtUp(engine, log);
          if (workers > 0)
            assert.equal(
              new Set(engine.status().map((t) => t.worker)).size,
              workers,
              'tasks are spread over every worker',
            );
          await engine.stop();
          assert.equal(
            engine.status().reduce((s, t) => s + t.eventsProcessed, 0),
            4 * (all.length + oddOnes().length),
            'every view folded every event once',
          );
          snapshots.push(await snapshot(store, log));
        } finally {
          await kappa.close();
        }
      }
      const [main, ...others] = snapshots;
      assert.ok(
        (main.by_page as unknown[]).length === 12 &&
          (main.per_minute as unknown[]).length > 100 &&
          (main.words as unknown[]).length === 5,
        'the views hold rows',
      );
      assert.equal((main['clicks.dlq'] as unknown[]).length, 4 * 3 * 3, 'three dead letters per view and partition');
      assert.equal(
        (main['clicks.late'] as unknown[]).length,
        2 * 3 * 3,
        'three late events per windowed view and partition',
      );
      for (const other of others) assert.deepEqual(other, main);
    },
  );

  async function brokenEngine(
    name: string,
    env: Record<string, string> = {},
    workerHeapMb?: number,
  ): Promise<{ engine: Engine; log: FileLog; store: ViewStore; cleanup: () => Promise<void> }> {
    for (const [k, v] of Object.entries(env)) process.env[k] = v;
    const file = project.writeConfig(BROKEN_CONFIG, name);
    const kappa = await openKappa({
      dir: project.dataDir(name),
      configPath: file,
      workers: 2,
      engine: { workerHeapMb },
      start: false,
      engineEnd: 'close',
    });
    await kappa.log.createTopic('clicks', { partitions: 3 });
    await kappa.log.append('clicks', events(300));
    const cleanup = async (): Promise<void> => {
      for (const k of Object.keys(env)) delete process.env[k];
      await kappa.close();
    };
    return { engine: kappa.engine, log: kappa.log, store: kappa.store, cleanup };
  }

  /** Runs `body` on a broken engine that has started, caught up and moved its tasks to the worker threads; closes it after. */
  async function onBrokenEngine(
    name: string,
    body: (e: { engine: Engine; log: FileLog }) => Promise<void>,
    workerHeapMb?: number,
  ): Promise<void> {
    const { engine, log, cleanup } = await brokenEngine(name, {}, workerHeapMb);
    try {
      await engine.start();
      await engineCaughtUp(engine, log);
      await onWorkers(engine);
      await body({ engine, log });
    } finally {
      await cleanup();
    }
  }

  /** Waits for the engine to fail, or fails the test if it has not within 30 s (a hang). */
  async function failureOf(engine: Engine): Promise<Error> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error('the engine neither failed nor finished in 30 s')), 30_000)),
    );
    try {
      await Promise.race([engine.failure, hang]);
    } catch (err) {
      return err as Error;
    } finally {
      clearTimeout(timer);
    }
    throw new Error('unreachable');
  }

  test(
    'a worker thread that crashes fails the engine with KAPPA_WORKER_FAILED naming the thread and the error',
    { timeout: 60_000 },
    async () => {
      await onBrokenEngine('crash', async ({ engine, log }) => {
        await log.append('clicks', [
          { key: 'c', value: JSON.stringify({ user: 'c', page: '/crash', ms: 1, ts: T0 }), partition: 1 },
        ]);
        const err = await failureOf(engine);
        assert.equal((err as { code?: string }).code, 'KAPPA_WORKER_FAILED');
        assert.match(err.message, /worker thread \d \(tasks by_page\/clicks\/\d.*\) crashed: boom from a timer/);
      });
    },
  );

  test(
    'a worker thread that runs out of its heap cap fails the engine, saying so and how to raise the cap',
    { timeout: 60_000 },
    async () => {
      await onBrokenEngine(
        'hog',
        async ({ engine, log }) => {
          await log.append('clicks', [
            { key: 'h', value: JSON.stringify({ user: 'h', page: '/hog', ms: 1, ts: T0 }), partition: 0 },
          ]);
          const err = await failureOf(engine);
          assert.equal((err as { code?: string }).code, 'KAPPA_WORKER_FAILED');
          assert.match(
            err.message,
            /worker thread \d \(tasks by_page\/clicks\/0.*\) ran out of memory \(its heap is capped at 32 MB; raise the cap with --worker-heap-mb/,
          );
        },
        32,
      );
    },
  );

  test(
    'a record whose aggregate throws in a worker thread is a dead letter, and the worker goes on',
    { timeout: 60_000 },
    async () => {
      await onBrokenEngine('throw', async ({ engine, log }) => {
        const { end } = await log.offsets('clicks', 2);
        await log.append('clicks', [
          { key: 't', value: JSON.stringify({ user: 't', page: '/throw', ms: 1, ts: T0 }), partition: 2 },
        ]);
        await log.append('clicks', [
          { key: 'u', value: JSON.stringify({ user: 'u', page: '/after', ms: 1, ts: T0 }), partition: 2 },
        ]);
        await engineCaughtUp(engine, log);
        const dead: { offset: number; reason: string }[] = [];
        for await (const batch of log.read('clicks.dlq', 2, 0))
          for (const r of batch.records())
            dead.push({
              offset: Number(r.headers.find((h) => h.key === 'kappa.source.offset')?.value),
              reason: String(r.headers.find((h) => h.key === 'kappa.error')?.value),
            });
        assert.deepEqual(
          dead.map((d) => d.offset),
          [end],
        );
        assert.match(dead[0].reason, /boom in an aggregate/);
      });
    },
  );

  test(
    'a task that fails in a worker thread (damaged data under its read) fails the engine with the task, the thread and the error',
    { timeout: 60_000 },
    async () => {
      await onBrokenEngine('damaged', async ({ engine }) => {
        // Damage a record of partition 2 below the durable point, then rebuild the view: the new
        // version's task reads it again, in a worker, and finds the batch's CRC wrong.
        const segment = join(root, 'damaged', 'topics', 'clicks', '2', '00000000000000000000.log');
        const bytes = readFileSync(segment);
        bytes[100] ^= 0x10;
        writeFileSync(segment, bytes);
        await engine.replay('by_page');
        const err = await failureOf(engine);
        assert.equal((err as { code?: string }).code, 'KAPPA_CORRUPT_DATA');
        assert.match(
          err.message,
          /task by_page\/clicks\/2 failed in worker thread \d: clicks\/2 is damaged at .*00000000000000000000\.log byte 0/,
        );
      });
    },
  );

  /** CONFIG as `name.config.ts`, opened with one worker thread and the engine not started (closed with `kappa`). */
  async function openOneWorker(name: string): Promise<{ file: string; kappa: Kappa }> {
    const file = project.writeConfig(CONFIG, name);
    const kappa = await openKappa({
      dir: project.dataDir(name),
      configPath: file,
      workers: 1,
      start: false,
      engineEnd: 'close',
    });
    return { file, kappa };
  }

  test(
    'a config that does not load in a worker thread fails the engine with KAPPA_CONFIG_INVALID and the reason',
    { timeout: 60_000 },
    async () => {
      const { kappa } = await openOneWorker('refuses');
      const { engine } = kappa;
      process.env.KAPPA_TEST_BREAK_WORKER_CONFIG = '1';
      try {
        await engine.start();
        const err = await failureOf(engine);
        assert.equal((err as { code?: string }).code, 'KAPPA_CONFIG_INVALID');
        assert.match(err.message, /refuses\.config\.ts.*this config refuses to load in a worker/);
      } finally {
        delete process.env.KAPPA_TEST_BREAK_WORKER_CONFIG;
        await kappa.close();
      }
    },
  );

  test(
    'a config edited while the engine starts is refused (KAPPA_CONFIG_INVALID), not run with logic the views were not set up for',
    { timeout: 60_000 },
    async () => {
      const { file, kappa } = await openOneWorker('edited');
      const { engine } = kappa;
      // The edit lands after the app was loaded and before the worker code is bundled.
      await new Promise((r) => setTimeout(r, 20));
      writeFileSync(file, CONFIG.replace('c.ms >= 10', 'c.ms >= 20'));
      try {
        await engine.start();
        const err = await failureOf(engine);
        assert.equal((err as { code?: string }).code, 'KAPPA_CONFIG_INVALID');
        assert.match(err.message, /edited\.config\.ts changed while kappa was starting/);
      } finally {
        await kappa.close();
      }
    },
  );

  test(
    'kappa start --workers N runs the tasks on N threads (0: the main thread) and gives the same rows',
    { timeout: 120_000 },
    async (t) => {
      const seed = join(root, 'cli-seed');
      const log = await openFileLog({ dir: seed, logger: quiet });
      await log.createTopic('clicks', { partitions: 3 });
      await log.append('clicks', events(2000));
      await log.close();
      const results: unknown[] = [];
      for (const workers of ['0', '2']) {
        const dir = join(root, `cli-${workers}`);
        cpSync(seed, dir, { recursive: true });
        const d = ['--data-dir', dir, '--config', config];
        const started = await startUntilCaughtUp(
          t,
          [...d, 'start', '--port', '0', '--workers', workers, '--flush-interval-ms', '50'],
          12,
        );
        assert.equal(started.code, 0, started.stderr);
        assert.match(
          started.stderr,
          workers === '0' ? /as 12 tasks on the main thread/ : /as 12 tasks on 2 worker threads/,
        );
        const q = await kappa([...d, 'query', 'SELECT * FROM by_page ORDER BY page, mobile', '--json']);
        assert.equal(q.code, 0, q.stderr);
        results.push(JSON.parse(q.stdout));
      }
      assert.equal((results[0] as unknown[]).length, 12);
      assert.deepEqual(results[1], results[0]);
      const bad = await kappa(['--data-dir', join(root, 'cli-bad'), '--config', config, 'start', '--workers', '-1']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--workers must be a whole number \(0 or more\), not "-1"/);
    },
  );
});
