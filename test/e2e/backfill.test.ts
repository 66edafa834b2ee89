/**
 * Backfilling history with the HTTP server running: the ordinary Kappa use (a replay from years
 * ago) must not slow down as a windowed view fills up, and must never stall the server.
 *
 * 30 days of sales, one every 12 s of event time, go into the log before `kappa start` runs. The
 * windowed view gets one row per region and minute (216,000 rows); a second view over the same
 * events has 42 keys. Both are folded from the start of the log while the server answers
 * `/healthz` (polled all along) and `/v1/pipelines` (polled for progress). The windowed view must
 * finish within 3× the time of the 42-key one (its cost per event must not grow with the rows it
 * holds), the server must stay responsive (below), and SIGTERM must end the process within 5 s.
 *
 * Responsive: at most 3 `/healthz` answers may take over 200 ms, and none over 1 s. What this
 * protects: the windowed view's flushes (tens of thousands of rows, several during the backfill)
 * must yield to the event loop (SQLite writer, writeInSteps). A flush that does not holds up the
 * `/healthz` in flight once per flush: with the yield removed, 5 to 15 answers took over 200 ms
 * (slowest 375–854 ms) on a loaded 2-core machine. With it, 76–82 ms at worst on a quiet machine,
 * but a loaded one delays an isolated answer now and then (one CI run: 212.8 ms; 0–2 answers over
 * 200 ms beside two busy processes), which a bound on the single slowest answer turned into a
 * failure; the slowest answer alone does not tell the two apart under load, their number does.
 * Beside heavier work (load 12–16) even the yielding code had 6–9: hence SOLO in scripts/test.js.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openFileLog } from '../../src/log/index.ts';
import { tempDir } from '../support/cleanup.ts';
import { startKappa } from '../support/processes.ts';

const SRC = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const DAYS = 30;
const EVENT_EVERY_MS = 12_000;
const REGIONS = ['north', 'south', 'east', 'west', 'central'];
const T0 = Date.UTC(2018, 0, 1);

const CONFIG = `
import { Type, count, defineApp, from, sum, topic, tumbling, view } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ id: Type.Integer(), region: Type.String(), cents: Type.Integer(), ts: Type.Integer() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => String(s.id), time: (s) => s.ts });
export default defineApp({
  topics: [sales],
  views: [
    view('per_minute', from(sales).window(tumbling('1m', { allowedLateness: '1d' })).groupBy((s) => ({ region: s.region })).aggregate({ cents: sum((s) => s.cents), orders: count() })),
    view('by_store', from(sales).groupBy((s) => ({ store: s.id % 42 })).aggregate({ cents: sum((s) => s.cents), orders: count() })),
  ],
});
`;

interface PipelineTask {
  view: string;
  lag: number;
}

test(
  'a 30-day backfill of minute windows keeps pace with a 42-key view while the server stays responsive',
  { timeout: 240_000 },
  async (t) => {
    const root = tempDir(t, 'kappa-backfill-');
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    const config = join(root, 'kappa.config.ts');
    writeFileSync(config, CONFIG);
    const dir = join(root, 'data');

    const events = (DAYS * 24 * 3600 * 1000) / EVENT_EVERY_MS;
    const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
    try {
      await log.createTopic('sales', { partitions: 2 });
      for (let i = 0; i < events; i += 5000) {
        const batch = [];
        for (let id = i; id < Math.min(events, i + 5000); id++) {
          const sale = {
            id,
            region: REGIONS[id % REGIONS.length],
            cents: (id * 7919) % 10_000,
            ts: T0 + id * EVENT_EVERY_MS,
          };
          batch.push({ key: String(id), value: JSON.stringify(sale) });
        }
        await log.append('sales', batch);
      }
    } finally {
      await log.close();
    }

    const started = Date.now();
    const start = startKappa(t, ['--data-dir', dir, 'start', '--config', config, '--port', '0']);
    const [, url] = await start.waitForOutput(/HTTP API on (\S+) /, { timeoutMs: 30_000 });

    // A failed request says why: kappa start's own account, once it has ended.
    const get = async (path: string): Promise<Response> => {
      try {
        return await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        const exit = await Promise.race([start.exited, new Promise((r) => setTimeout(r, 10_000, 'still running'))]);
        throw new Error(
          `GET ${path} failed (${(err as Error).message}); kappa start: ${JSON.stringify(exit)}, printed:\n${start.stderr}`,
          { cause: err },
        );
      }
    };

    // /healthz polled back to back all along: what a load balancer would see.
    const answersMs: number[] = [];
    const slow: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t0 = performance.now();
        const res = await get('/healthz');
        await res.arrayBuffer();
        const took = performance.now() - t0;
        if (took > 100) slow.push(`${took.toFixed(0)} ms at +${Date.now() - started} ms`);
        answersMs.push(took);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    poller.catch(() => {}); // awaited below; a failure meanwhile is reported there

    const doneAt = new Map<string, number>();
    const deadline = Date.now() + 180_000;
    while (doneAt.size < 2) {
      assert.ok(
        Date.now() < deadline,
        `the views did not catch up within 180 s: ${[...doneAt.keys()].join(', ') || 'neither'} did\n${start.stderr}`,
      );
      const res = await get('/v1/pipelines');
      const { tasks } = (await res.json()) as { tasks: PipelineTask[] };
      for (const name of ['per_minute', 'by_store']) {
        const mine = tasks.filter((x) => x.view === name);
        if (!doneAt.has(name) && mine.length === 2 && mine.every((x) => x.lag === 0))
          doneAt.set(name, Date.now() - started);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    polling = false;
    await poller;

    const res = await fetch(`${url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT count(*) AS n, sum(orders) AS orders FROM per_minute' }),
    });
    const { rows } = (await res.json()) as { rows: { n: number; orders: number }[] };
    assert.deepEqual(rows, [{ n: events, orders: events }], 'one row per region and minute, every event counted once');

    const windowed = doneAt.get('per_minute')!;
    const keyed = doneAt.get('by_store')!;
    const slowest = [...answersMs].sort((a, b) => b - a);
    const median = slowest[Math.floor(slowest.length / 2)];
    const over200 = slowest.filter((ms) => ms > 200).length;
    t.diagnostic(
      `per_minute (${events} rows) caught up after ${windowed} ms, by_store (42 rows) after ${keyed} ms; ` +
        `/healthz: ${slowest.length} answers, median ${median.toFixed(1)} ms, slowest ${slowest[0].toFixed(1)} ms, ${over200} over 200 ms`,
    );
    assert.ok(
      windowed <= 3 * keyed,
      `the windowed view took ${windowed} ms, more than 3 × the 42-key view's ${keyed} ms`,
    );
    assert.ok(
      over200 <= 3 && slowest[0] <= 1000,
      `the server stalled during the backfill: ${over200} /healthz answers took over 200 ms (limit 3), the slowest ` +
        `${slowest[0].toFixed(1)} ms (limit 1 s); answers over 100 ms: ${slow.join(', ')}`,
    );

    const stopAt = Date.now();
    const exit = await start.stop({ signal: 'SIGTERM', timeoutMs: 20_000 });
    const stopMs = Date.now() - stopAt;
    assert.equal(exit.code, 0, start.stderr);
    assert.ok(stopMs <= 5000, `SIGTERM took ${stopMs} ms to end kappa start (limit 5 s)`);
  },
);
