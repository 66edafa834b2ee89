/**
 * first() and last() pick by (event time, partition, offset), so a tie of event times across
 * partitions gives the same row whatever order the partitions' flushes reach the store: live with
 * either partition flushed first, replayed from the start, on the main thread or on worker threads.
 * A replay of the live version then shows no changes in `kappa views diff`. (The iot example's
 * devices of a site emit readings with the same timestamp each tick from different partitions; its
 * site_status once showed `last_temperature 27 → 23` between a live version and its replay.)
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type Kappa, openKappa, untilLive } from '../support/kappa.ts';
import { runKappa } from '../support/processes.ts';
import { KAPPA_SRC, tempProject } from '../support/project.ts';

const T0 = Date.UTC(2026, 5, 1);
const TICKS = 4;

const CONFIG = `
import { Type, count, defineApp, first, from, last, topic, view } from ${JSON.stringify(KAPPA_SRC)};
const Reading = Type.Object({ device: Type.String(), site: Type.String(), celsius: Type.Integer(), ts: Type.Integer() });
const readings = topic('readings', { partitions: 2, schema: Reading, key: (r) => r.device, time: (r) => r.ts });
export default defineApp({
  topics: [readings],
  views: [
    view('site_status', from(readings).groupBy((r) => ({ site: r.site })).aggregate({
      n: count(), first_c: first((r) => r.celsius), last_c: last((r) => r.celsius), last_device: last((r) => r.device),
    }), { keepVersions: 2 }),
  ],
});
`;

interface Reading {
  partition: number;
  key: string;
  value: string;
}

/** Tick k: device d0 (partition 0) reads 20 + k and d1 (partition 1) reads 30 + k, both at the same time. */
function tick(k: number): Reading[] {
  return [0, 1].map((p) => ({
    partition: p,
    key: `d${p}`,
    value: JSON.stringify({ device: `d${p}`, site: 's1', celsius: 20 + 10 * p + k, ts: T0 + k * 1000 }),
  }));
}

/** By (time, partition, offset): the last tick's reading of partition 1 is last; the first tick's of partition 0 first. */
const EXPECTED = [{ site: 's1', n: 2 * TICKS, first_c: 20, last_c: 30 + TICKS - 1, last_device: 'd1' }];

async function committed(kappa: Kappa, version: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let done = true;
    for (const t of kappa.engine.status().filter((s) => s.version === version)) {
      if (t.committedOffset < (await kappa.log.offsets(t.topic, t.partition)).end) done = false;
    }
    if (done) return;
    assert.ok(Date.now() < deadline, `the engine did not commit: ${JSON.stringify(kappa.engine.status())}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rows(kappa: Kappa): Promise<unknown[]> {
  return (await kappa.store.query('SELECT site, n, first_c, last_c, last_device FROM site_status')).rows;
}

describe('first() and last() break event-time ties by partition and offset', () => {
  const project = tempProject({ after }, 'kappa-ties-');
  const config = project.writeConfig(CONFIG);
  let runs = 0;

  async function open(t: { after(fn: () => unknown): void }, workers: number): Promise<Kappa> {
    const kappa = await openKappa({
      t,
      dir: project.dataDir(`data-${++runs}`),
      configPath: config,
      workers,
      start: false,
    });
    await kappa.log.createTopic('readings', { partitions: 2 });
    return kappa;
  }

  for (const workers of [0, 2]) {
    test(`replayed from the start (${workers} worker threads)`, { timeout: 180_000 }, async (t) => {
      const kappa = await open(t, workers);
      for (let k = 0; k < TICKS; k++) await kappa.log.append('readings', tick(k));
      await kappa.engine.start();
      await committed(kappa, 1);
      assert.deepEqual(await rows(kappa), EXPECTED);
    });

    for (const firstPartition of [0, 1]) {
      test(
        `live, partition ${firstPartition} flushed first at every tick (${workers} worker threads)`,
        { timeout: 180_000 },
        async (t) => {
          const kappa = await open(t, workers);
          await kappa.engine.start();
          for (let k = 0; k < TICKS; k++) {
            const [a, b] = firstPartition === 0 ? tick(k) : tick(k).reverse();
            for (const r of [a, b]) {
              await kappa.log.append('readings', [r]);
              await committed(kappa, 1);
            }
          }
          assert.deepEqual(await rows(kappa), EXPECTED);
        },
      );
    }
  }

  test('a replay of the live version shows no changes in kappa views diff', { timeout: 300_000 }, async (t) => {
    const kappa = await open(t, 0);
    await kappa.engine.start();
    // Partition 1 flushed first, then partition 0: the order in which the write order gave the wrong row.
    for (let k = 0; k < TICKS; k++) {
      for (const r of tick(k).reverse()) {
        await kappa.log.append('readings', [r]);
        await committed(kappa, 1);
      }
    }
    await kappa.engine.replay('site_status');
    await untilLive(kappa, 'site_status', 2, 2 * TICKS, 120_000);
    assert.deepEqual(await rows(kappa), EXPECTED);
    await kappa.close();
    const diff = await runKappa(['--data-dir', kappa.dir, 'views', 'diff', 'site_status', '1', '2']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /The two versions hold the same rows with the same values\./, diff.stdout);
  });
});
