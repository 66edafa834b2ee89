/**
 * A joined table is kept in the view store: after a restart the engine reads the table's topic only
 * from where the store's copy ends. Shown the hard way: the cards topic has a short retention, and
 * between two runs the log deletes the segments holding the cards (as it would a day later); the
 * restarted engine, on a worker thread and on the main thread, still joins new payments with those
 * cards, at the version of each payment's event time. Read from offset 0 instead, the table would
 * have lost them and the payments would join nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { loadApp } from '../../src/stream/index.ts';
import { keptTables, tableId } from '../../src/stream/table-keeper.ts';
import { type Kappa, engineCaughtUp, openKappa } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { KAPPA_SRC as SRC, tempProject } from '../support/project.ts';

const NOW = Date.now();
const HOUR = 3_600_000;

const CONFIG = `
import { Type, count, defineApp, from, table, topic, view } from ${JSON.stringify(SRC)};
const Payment = Type.Object({ id: Type.Integer(), card: Type.String(), ts: Type.Integer() });
const Card = Type.Object({ card: Type.String(), limit: Type.Number(), ts: Type.Integer() });
const payments = topic('payments', { partitions: 2, schema: Payment, key: (p) => p.card, time: (p) => p.ts });
const cards = topic('cards', { partitions: 1, schema: Card, key: (c) => c.card, time: (c) => c.ts });
export default defineApp({
  topics: [payments, cards],
  views: [
    view('by_limit', from(payments)
      .join(table(cards), (p) => p.card, (p, c) => ({ card: p.card, limit: c.limit }))
      .groupBy((p) => ({ card: p.card, limit: p.limit }))
      .aggregate({ n: count() })),
  ],
});
`;

const json = (v: object) => ({ value: JSON.stringify(v) });

describe('a joined table kept in the view store', () => {
  for (const workers of [1, 0])
    test(
      `survives its topic's retention across a restart (${workers} worker threads)`,
      { timeout: 120_000 },
      async (t) => {
        const project = tempProject(t, 'kappa-table-restart-');
        const dir = project.dataDir('data');
        const configPath = project.writeConfig(CONFIG, 'kappa');
        // Small segments and a retention of a minute: the cards go once their segment closes and a minute passed.
        const setup = await openFileLog({ dir, logger: quiet });
        await setup.createTopic('cards', { partitions: 1, segmentBytes: 1024, retentionMs: 60_000 });
        const old = NOW - HOUR;
        // c1's limit is 100 from old + 0 and 500 from old + 10 min; 40 other cards fill segments.
        await setup.append('cards', [json({ card: 'c1', limit: 100, ts: old })]);
        await setup.append('cards', [json({ card: 'c1', limit: 500, ts: old + 600_000 })]);
        for (let i = 2; i < 42; i++) await setup.append('cards', [json({ card: `c${i}`, limit: i, ts: old })]);
        await setup.close();

        const run = async (): Promise<Kappa> => openKappa({ dir, configPath, workers, engineEnd: 'close' });
        let kappa = await run();
        await kappa.log.append('payments', [{ key: 'c1', ...json({ id: 1, card: 'c1', ts: old + 60_000 }) }]);
        await engineCaughtUp(kappa.engine, kappa.log);
        const { end } = await kappa.log.offsets('cards', 0);
        await waitFor(async () => {
          const kept = await kappa.store.tables!.load(tableId(keptTables(await loadApp(configPath))[0]));
          return kept?.partitions[0].offset === end;
        }, 'the store to hold the cards table up to the topic end');
        await kappa.close();

        // An hour later, as the log's clock tells.
        const log = await openFileLog({ dir, logger: quiet, clock: { now: () => Date.now() + HOUR } });
        assert.ok(log.enforceRetention() > 0, 'segments of the cards topic were deleted');
        assert.ok((await log.offsets('cards', 0)).start > 1, "c1's records are gone from the log");
        await log.close();

        kappa = await run();
        // One payment before the limit change, one after, both arriving after the restart.
        await kappa.log.append('payments', [
          { key: 'c1', ...json({ id: 2, card: 'c1', ts: old + 120_000 }) },
          { key: 'c1', ...json({ id: 3, card: 'c1', ts: old + 700_000 }) },
        ]);
        await engineCaughtUp(kappa.engine, kappa.log);
        const rows = (await kappa.store.query('SELECT card, "limit", n FROM by_limit ORDER BY "limit"')).rows;
        assert.deepEqual(rows, [
          { card: 'c1', limit: 100, n: 2 },
          { card: 'c1', limit: 500, n: 1 },
        ]);
        await kappa.close();
      },
    );
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const WINDOW_CONFIG = `
import { Type, defineApp, from, topic } from ${JSON.stringify(SRC)};
const Impression = Type.Object({ id: Type.Integer(), user: Type.String(), ts: Type.Integer() });
const Click = Type.Object({ id: Type.Integer(), user: Type.String(), ts: Type.Integer() });
const impressions = topic('impressions', { partitions: 1, schema: Impression, key: (i) => i.user, time: (i) => i.ts });
const clicks = topic('clicks', { partitions: 1, schema: Click, key: (c) => c.user, time: (c) => c.ts });
const matched = topic('matched', { partitions: 1 });
export default defineApp({
  topics: [impressions, clicks, matched],
  outputs: [
    from(clicks).join(impressions, { within: '10s', key: (c) => c.user, idleAfter: '100ms' }, (c, i) => ({ click: c.id, impression: i.id })).to(matched),
  ],
});
`;

describe("an output's stream–stream join across a restart", () => {
  test(
    'judges lateness from where the run before it had got to (its checkpoint keeps the event time)',
    { timeout: 120_000 },
    async (t) => {
      const project = tempProject(t, 'kappa-window-restart-');
      const dir = project.dataDir('data');
      const configPath = project.writeConfig(WINDOW_CONFIG, 'kappa');
      const T0 = Date.UTC(2026, 5, 1);
      let kappa = await openKappa({ dir, configPath });
      await kappa.log.append('impressions', [
        json({ id: 1, user: 'ada', ts: T0 }),
        json({ id: 2, user: 'ada', ts: T0 + 100_000 }),
      ]);
      await kappa.log.append('clicks', [json({ id: 1, user: 'ada', ts: T0 + 100_001 })]);
      await waitFor(async () => (await values(kappa, 'matched')).length === 1, 'the first click to be matched');
      await kappa.close();

      kappa = await openKappa({ dir, configPath });
      // 98 s behind the newest click before the restart (no allowed lateness): late, though impression 1 is within 10 s of it.
      await kappa.log.append('clicks', [json({ id: 2, user: 'ada', ts: T0 + 2_000 })]);
      await waitFor(async () => (await values(kappa, 'clicks.late').catch(() => [])).length === 1, 'the late click');
      await engineCaughtUp(kappa.engine, kappa.log);
      assert.deepEqual(await values(kappa, 'matched'), [{ click: 1, impression: 2 }]);
      await kappa.close();
    },
  );
});

/** The JSON values of partition 0 of a topic. */
async function values(kappa: Kappa, topic: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const batch of kappa.log.read(topic, 0, 0, { once: true }))
    for (const r of batch.records()) out.push(JSON.parse(r.value!.toString()));
  return out;
}
