/**
 * A rebuilt version goes live complete, never partial: while `kappa replay` rebuilds a view over a
 * large log on many partitions (with every task on the main thread, where a busy event loop makes a
 * read wait longer than the flush interval, and on worker threads, whose progress comes as
 * messages), the public view is polled as fast as it answers, and every total it shows is the old
 * version's or the new version's complete one, never one in between. Polls can miss a short
 * window, so the test also looks at the swap itself: when version 2 goes live, its tasks have
 * committed every offset of the log.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { openKappa, untilLive } from '../support/kappa.ts';
import { tempProject, totalsConfig } from '../support/project.ts';

const PARTITIONS = 8;
const SALES = 240_000;
const REGIONS = 64;

function sales(): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < SALES; i++) {
    const region = `r${i % REGIONS}`;
    out.push({ key: region, value: JSON.stringify({ region, cents: (i * 7919) % 1000 }) });
  }
  return out;
}

interface Totals {
  cents: number;
  n: number;
}

describe('a rebuilt version goes live complete', () => {
  const project = tempProject({ after }, 'kappa-swap-');
  // Same logic in version 1 and 2 (a replay), so the complete total is known and a partial one is smaller.
  const config = project.writeConfig(totalsConfig({ partitions: PARTITIONS, viewOptions: '{ keepVersions: 2 }' }));
  const all = sales();
  const expected: Totals = {
    cents: all.reduce((n, s) => n + (JSON.parse(s.value) as { cents: number }).cents, 0),
    n: SALES,
  };

  for (const workers of [0, 2]) {
    test(
      `the public total during a replay is always the complete one (${workers} worker threads)`,
      { timeout: 600_000 },
      async (t) => {
        const kappa = await openKappa({
          t,
          dir: project.dataDir(`data-${workers}`),
          configPath: config,
          workers,
          // A short interval: a read that waits longer than it (a busy event loop) must not count as the head.
          flushIntervalMs: 5,
          start: false,
        });
        await kappa.log.createTopic('sales', { partitions: PARTITIONS });
        for (let i = 0; i < all.length; i += 10_000) await kappa.log.append('sales', all.slice(i, i + 10_000));
        await kappa.engine.start();
        await untilLive(kappa, 'totals', 1, SALES, 300_000);
        const total = async (): Promise<Totals> => {
          const { rows } = await kappa.store.query('SELECT sum(cents) AS cents, sum(n) AS n FROM totals');
          return rows[0] as unknown as Totals;
        };
        assert.deepEqual(await total(), expected, 'version 1 is complete');

        // The moment version 2 goes live (right after the swap's commit), its tasks must have
        // committed every offset of the log, which does not grow during the build.
        let committedAtSwap: number | null = null;
        kappa.engine.onChange((change) => {
          if (change.kind === 'live' && change.version === 2)
            committedAtSwap = kappa.engine
              .status()
              .filter((s) => s.version === 2)
              .reduce((n, s) => n + s.committedOffset, 0);
        });
        await kappa.engine.replay('totals');
        const seen: { totals: Totals; live: number | undefined }[] = [];
        const deadline = Date.now() + 300_000;
        for (;;) {
          const live = (await kappa.store.versions()).find((v) => v.name === 'totals' && v.state === 'live');
          seen.push({ totals: await total(), live: live?.version });
          if (live?.version === 2 && kappa.engine.builds().length === 0) break;
          assert.ok(Date.now() < deadline, 'version 2 did not go live');
          await new Promise((r) => setImmediate(r));
        }
        assert.equal(committedAtSwap, SALES, 'version 2 went live with every offset committed');
        const partial = seen.filter((s) => s.totals.n !== expected.n || s.totals.cents !== expected.cents);
        assert.deepEqual(
          partial.slice(0, 5),
          [],
          `${partial.length} of ${seen.length} polls saw a partial total (expected ${JSON.stringify(expected)})`,
        );
        assert.ok(seen.some((s) => s.live === 1) && seen.some((s) => s.live === 2), 'the polls saw both versions live');
      },
    );
  }
});
