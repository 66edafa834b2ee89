/**
 * Exactly-once under crashes, with a stream–table join and session windows: `kappa start` (worker
 * threads, the default) is killed with SIGKILL at random moments and restarted, while sales and
 * changes of each region's target keep arriving. In the end a view of sales joined with the target
 * current at each sale's event time, a session-window view of the same (a region's sales less than
 * 3 s apart), and the derived topic of the sales that met their target, must equal an oracle
 * computed here: no sale counted twice or skipped, none joined with the wrong version of a target,
 * no session split or merged wrongly.
 *
 * KAPPA_CRASH_TRIALS (default 8) and KAPPA_CRASH_SEED pick the kills, as in kill-during-processing.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { runKappa, startKappa } from '../support/processes.ts';
import { KAPPA_SRC } from '../support/project.ts';
import { tempDir } from './helpers.ts';

const TRIALS = Number(process.env.KAPPA_CRASH_TRIALS ?? 8);
const SEED = Number(process.env.KAPPA_CRASH_SEED ?? 23);
const REGIONS = ['north', 'south', 'east', 'west'];
const T0 = Date.UTC(2026, 0, 1);

const CONFIG = `
import { Type, count, defineApp, from, session, sum, table, topic, view } from ${JSON.stringify(KAPPA_SRC)};
const Sale = Type.Object({ id: Type.Integer(), region: Type.String(), cents: Type.Integer(), ts: Type.Integer() });
const Target = Type.Object({ region: Type.String(), cents: Type.Integer(), ts: Type.Integer() });
const sales = topic('sales', { partitions: 3, schema: Sale, key: (s) => String(s.id), time: (s) => s.ts });
const targets = topic('targets', { partitions: 2, schema: Target, key: (t) => t.region, time: (t) => t.ts });
const met = topic('met', { partitions: 2 });
const current = table(targets);
const joined = from(sales).join(current, (s) => s.region, (s, t) => ({ ...s, met: s.cents >= t.cents }));
export default defineApp({
  topics: [sales, targets, met],
  outputs: [joined.filter((s) => s.met).map((s) => ({ id: s.id })).to(met)],
  views: [
    view('by_region', joined.groupBy((s) => ({ region: s.region })).aggregate({ met: sum((s) => (s.met ? 1 : 0)), sales: count() })),
    view('bursts', joined.window(session({ gap: '3s', allowedLateness: '1000d' })).groupBy((s) => ({ region: s.region })).aggregate({ sales: count(), met: sum((s) => (s.met ? 1 : 0)) })),
  ],
});
`;

interface Sale {
  id: number;
  region: string;
  cents: number;
  ts: number;
}
interface Target {
  region: string;
  cents: number;
  ts: number;
}

function run(args: string[]): ReturnType<typeof runKappa> {
  return runKappa(args, { timeoutMs: 60_000 });
}

test(
  `a joined view and output equal an event-time oracle after ${TRIALS} SIGKILLs`,
  { timeout: 120_000 + TRIALS * 6_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (run again with KAPPA_CRASH_SEED=${SEED} KAPPA_CRASH_TRIALS=${TRIALS})`);
    const root = tempDir(t, 'kappa-join-eo-');
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    const config = join(root, 'kappa.config.ts');
    writeFileSync(config, CONFIG);
    const dir = join(root, 'data');
    const d = ['--data-dir', dir, '--config', config];
    const random = seededRandom(SEED);
    const sales: Sale[] = [];
    const targets: Target[] = [];
    // Each round: new targets first (later than every sale before them), then sales up to 5 s out of order.
    const produce = async (n: number): Promise<void> => {
      const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
      try {
        const first = sales.length === 0;
        if (first) {
          await log.createTopic('sales', { partitions: 3 });
          await log.createTopic('targets', { partitions: 2 });
        }
        for (let i = 0; i < n; i += 500) {
          // The first round sets every region's target, so every sale finds one.
          const ts = first && i === 0 ? T0 - 1 : T0 + sales.length * 1000 + 5001;
          const changed = REGIONS.filter(() => ts === T0 - 1 || random() < 0.5).map((region) => ({
            region,
            cents: Math.floor(random() * 10_000),
            ts,
          }));
          targets.push(...changed);
          await log.append(
            'targets',
            changed.map((c) => ({ key: c.region, value: JSON.stringify(c), timestamp: c.ts })),
          );
          const batch = [];
          for (let j = 0; j < 500 && i + j < n; j++) {
            const id = sales.length;
            const sale = {
              id,
              region: REGIONS[Math.floor(random() * 4)],
              cents: Math.floor(random() * 10_000),
              ts: T0 + id * 1000 + Math.floor(random() * 5000),
            };
            sales.push(sale);
            batch.push({ key: String(id), value: JSON.stringify(sale) });
          }
          await log.append('sales', batch);
        }
      } finally {
        await log.close();
      }
    };

    await produce(20_000);
    for (let trial = 0; trial < TRIALS; trial++) {
      const child = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '20']);
      if (random() < 0.75) await child.waitForOutput(/HTTP API on/, { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 1600)));
      child.kill('SIGKILL');
      const { signal } = await child.exited;
      assert.equal(
        signal,
        'SIGKILL',
        `kappa start exited on its own in trial ${trial} (seed ${SEED}): ${child.stderr}`,
      );
      await produce(3_000);
    }

    const final = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '50']);
    const deadline = Date.now() + 90_000;
    let zeroInARow = 0;
    for (;;) {
      const lag = await run([...d, 'lag', '--json']);
      if (lag.code === 0) {
        const rows = JSON.parse(lag.stdout) as { lag: number }[];
        zeroInARow = rows.length === 9 && rows.every((r) => r.lag === 0) ? zeroInARow + 1 : 0;
        if (zeroInARow === 2) break;
      }
      if (Date.now() > deadline)
        assert.fail(`the pipelines did not catch up (seed ${SEED}): ${lag.stdout} ${lag.stderr} ${final.stderr}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal((await final.stop({ signal: 'SIGTERM', timeoutMs: 20_000 })).code, 0, final.stderr);

    // The oracle: each sale against its region's last target at or before its time.
    const targetAt = (s: Sale): number => {
      let found: Target | undefined;
      for (const x of targets) if (x.region === s.region && x.ts <= s.ts) found = x;
      return found!.cents;
    };
    const expected = new Map<string, { met: number; sales: number }>();
    const metIds: number[] = [];
    for (const s of sales) {
      const met = s.cents >= targetAt(s);
      const row = expected.get(s.region) ?? { met: 0, sales: 0 };
      expected.set(s.region, { met: row.met + (met ? 1 : 0), sales: row.sales + 1 });
      if (met) metIds.push(s.id);
    }
    const q = await run([...d, 'query', 'SELECT region, met, sales FROM by_region', '--json']);
    assert.equal(q.code, 0, q.stderr);
    const got = JSON.parse(q.stdout) as { region: string; met: number; sales: number }[];
    assert.deepEqual(new Map(got.map((r) => [r.region, { met: r.met, sales: r.sales }])), expected);
    // Sessions: each region's sale times sorted, merged while the next is at most 3 s after the last.
    const sessions: { region: string; window_start: number; window_end: number; sales: number; met: number }[] = [];
    for (const region of [...REGIONS].sort()) {
      const mine = sales.filter((s) => s.region === region).sort((a, b) => a.ts - b.ts);
      let cur: (typeof sessions)[number] | null = null;
      for (const s of mine) {
        const met = s.cents >= targetAt(s) ? 1 : 0;
        if (cur !== null && s.ts <= cur.window_end) {
          cur.window_end = Math.max(cur.window_end, s.ts + 3000);
          cur.sales++;
          cur.met += met;
        } else sessions.push((cur = { region, window_start: s.ts, window_end: s.ts + 3000, sales: 1, met }));
      }
    }
    const qs = await run([
      ...d,
      'query',
      'SELECT region, window_start, window_end, sales, met FROM bursts ORDER BY region, window_start',
      '--json',
    ]);
    assert.equal(qs.code, 0, qs.stderr);
    assert.ok(sessions.length > 100, `${sessions.length} sessions`);
    assert.deepEqual(JSON.parse(qs.stdout), sessions);
    const derived = await run([...d, 'consume', 'met']);
    assert.equal(derived.code, 0, derived.stderr);
    const ids = derived.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: number }).id);
    assert.equal(ids.length, metIds.length, 'no sale written twice or missed');
    assert.deepEqual(
      ids.sort((a, b) => a - b),
      metIds,
    );
  },
);
