/**
 * Exactly-once under crashes: `kappa start` runs in a child process and is killed with SIGKILL at
 * random moments while more events keep arriving; it is restarted each time. In the end the views
 * must equal an oracle computed by a plain fold over `kappa consume` output: no event counted
 * twice, none skipped, in a grouped view and in a windowed one. An output pipeline (`to(topic)`)
 * writes the large sales to a derived topic: it must hold each of them exactly once, and a view
 * over it must equal the fold of them.
 *
 * Stress mode: KAPPA_CRASH_TRIALS=200 runs 200 kills (default 20); KAPPA_CRASH_SEED picks the
 * random sequence (kill times, events), printed so that a failure can be run again exactly.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import { runKappa, startKappa } from '../support/processes.ts';
import { bigSalesConfig } from '../support/project.ts';
import { tempDir } from './helpers.ts';

const TRIALS = Number(process.env.KAPPA_CRASH_TRIALS ?? 20);
const SEED = Number(process.env.KAPPA_CRASH_SEED ?? 11);
const EVENTS_FIRST = 40_000;
const EVENTS_PER_TRIAL = 4_000;
const REGIONS = ['north', 'south', 'east', 'west'];
const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const BIG_CENTS = 8_000;

const CONFIG = bigSalesConfig({ bigCents: BIG_CENTS, allowedLateness: '1000d' });
/** The oracle's fold: one more order of `cents` in the row of `key`. */
function addOrder(rows: Map<string, { cents: number; orders: number }>, key: string, cents: number): void {
  const row = rows.get(key) ?? { cents: 0, orders: 0 };
  row.cents += cents;
  row.orders++;
  rows.set(key, row);
}

interface Sale {
  id: number;
  region: string;
  cents: number;
  ts: number;
}

function run(args: string[]): ReturnType<typeof runKappa> {
  return runKappa(args, { timeoutMs: 60_000 });
}

test(
  `views equal a fold of the log after ${TRIALS} SIGKILLs of kappa start`,
  { timeout: 120_000 + TRIALS * 6_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (run again with KAPPA_CRASH_SEED=${SEED} KAPPA_CRASH_TRIALS=${TRIALS})`);
    const root = tempDir(t, 'kappa-eo-');
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    const config = join(root, 'kappa.config.ts');
    writeFileSync(config, CONFIG);
    const dir = join(root, 'data');
    const d = ['--data-dir', dir, '--config', config];
    const random = seededRandom(SEED);
    let nextId = 0;
    const produce = async (n: number): Promise<void> => {
      const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
      try {
        if (nextId === 0) await log.createTopic('sales', { partitions: 3 });
        for (let i = 0; i < n; i += 1000) {
          const batch = [];
          for (let j = 0; j < 1000 && i + j < n; j++, nextId++) {
            const sale: Sale = {
              id: nextId,
              region: REGIONS[Math.floor(random() * 4)],
              cents: Math.floor(random() * 10_000),
              ts: T0 + nextId * 1000 + Math.floor(random() * 5000),
            };
            batch.push({ key: String(sale.id), value: JSON.stringify(sale) });
          }
          await log.append('sales', batch);
        }
      } finally {
        await log.close();
      }
    };

    await produce(EVENTS_FIRST);
    let killedWhileRunning = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const child = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '20']);
      // Most kills land while the pipelines run (timed from when the server is up, so a slow machine
      // still gets them); one in four lands anywhere from start-up on.
      if (random() < 0.75) await child.waitForOutput(/HTTP API on/, { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 1600)));
      child.kill('SIGKILL');
      const { signal } = await child.exited;
      if (signal === 'SIGKILL') killedWhileRunning++;
      else assert.fail(`kappa start exited on its own in trial ${trial} (seed ${SEED}): ${child.stderr}`);
      // More events arrive while it is down, so every restart has work to resume.
      await produce(EVENTS_PER_TRIAL);
    }
    assert.equal(killedWhileRunning, TRIALS);

    // A final run until every task has caught up, then a clean stop.
    const finalStartedMs = Date.now();
    const final = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '50']);
    const deadline = Date.now() + 90_000;
    // 3 + 3 view tasks over sales, 2 over big_sales, 3 output tasks. Twice in a row: the output may
    // append to big_sales between the lag of big_by_region and its own being read.
    let zeroInARow = 0;
    for (;;) {
      const lag = await run([...d, 'lag', '--json']);
      if (lag.code === 0) {
        const rows = JSON.parse(lag.stdout) as { view: string; lag: number }[];
        zeroInARow = rows.length === 11 && rows.every((r) => r.lag === 0) ? zeroInARow + 1 : 0;
        if (zeroInARow === 2) {
          t.diagnostic(`the final run caught up in ${Date.now() - finalStartedMs} ms`);
          break;
        }
      }
      if (Date.now() > deadline)
        assert.fail(`the views did not catch up (seed ${SEED}): ${lag.stdout} ${lag.stderr} ${final.stderr}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal((await final.stop({ signal: 'SIGTERM', timeoutMs: 20_000 })).code, 0, final.stderr);

    // The oracle: a plain fold over `kappa consume` output.
    const consumed = await run([...d, 'consume', 'sales']);
    assert.equal(consumed.code, 0, consumed.stderr);
    const events = consumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Sale);
    assert.equal(events.length, nextId);
    const byRegion = new Map<string, { cents: number; orders: number }>();
    const perMinute = new Map<string, { cents: number; orders: number }>();
    for (const e of events) {
      addOrder(byRegion, e.region, e.cents);
      addOrder(perMinute, `${e.region}|${Math.floor(e.ts / MINUTE) * MINUTE}`, e.cents);
    }
    const q1 = await run([...d, 'query', 'SELECT region, cents, orders FROM by_region', '--json']);
    assert.equal(q1.code, 0, q1.stderr);
    const got1 = new Map(
      (JSON.parse(q1.stdout) as { region: string; cents: number; orders: number }[]).map((r) => [
        r.region,
        { cents: r.cents, orders: r.orders },
      ]),
    );
    assert.deepEqual(got1, byRegion);
    const q2 = await run([
      ...d,
      'query',
      'SELECT region, window_start, window_end, cents, orders FROM per_minute',
      '--json',
    ]);
    assert.equal(q2.code, 0, q2.stderr);
    const rows2 = JSON.parse(q2.stdout) as {
      region: string;
      window_start: number;
      window_end: number;
      cents: number;
      orders: number;
    }[];
    for (const r of rows2) assert.equal(r.window_end - r.window_start, MINUTE);
    const got2 = new Map(rows2.map((r) => [`${r.region}|${r.window_start}`, { cents: r.cents, orders: r.orders }]));
    assert.deepEqual(got2, perMinute);

    // The derived topic holds every large sale exactly once, and the view over it matches.
    const derived = await run([...d, 'consume', 'big_sales']);
    assert.equal(derived.code, 0, derived.stderr);
    const bigs = derived.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; region: string; cents: number });
    const expected = events
      .filter((e) => e.cents >= BIG_CENTS)
      .map((e) => ({ id: e.id, region: e.region, cents: e.cents }));
    assert.equal(bigs.length, expected.length, 'no large sale written twice or missed');
    assert.deepEqual(
      bigs.sort((a, b) => a.id - b.id),
      expected.sort((a, b) => a.id - b.id),
    );
    const bigByRegion = new Map<string, { cents: number; orders: number }>();
    for (const b of expected) addOrder(bigByRegion, b.region, b.cents);
    const q3 = await run([...d, 'query', 'SELECT region, cents, orders FROM big_by_region', '--json']);
    assert.equal(q3.code, 0, q3.stderr);
    assert.deepEqual(
      new Map(
        (JSON.parse(q3.stdout) as { region: string; cents: number; orders: number }[]).map((r) => [
          r.region,
          { cents: r.cents, orders: r.orders },
        ]),
      ),
      bigByRegion,
    );
  },
);
