/**
 * When views are rebuilt: `rebuild: 'manual'` keeps the live version's logic (run from its stored
 * code) until a replay is asked for; `rebuild: { every }` rebuilds on a schedule through the same
 * path as a replay; a build in progress can be cancelled, and what it built is dropped.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { SqliteStore } from '../../src/view/sqlite/index.ts';
import { type Kappa, openKappa } from '../support/kappa.ts';
import { tempProject, totalsConfig } from '../support/project.ts';

const EVENTS = 60_000;

function config(minCents: number, rebuild: string): string {
  return totalsConfig({ filter: `.filter((s) => s.cents >= ${minCents})`, viewOptions: `{ rebuild: ${rebuild} }` });
}

const sale = (i: number): { region: string; cents: number } => ({
  region: ['north', 'south', 'east'][i % 3],
  cents: i % 1000,
});

function expected(minCents: number, events: number): { region: string; cents: number; n: number }[] {
  const rows = new Map<string, { region: string; cents: number; n: number }>();
  for (let i = 0; i < events; i++) {
    const s = sale(i);
    if (s.cents < minCents) continue;
    const row = rows.get(s.region) ?? { region: s.region, cents: 0, n: 0 };
    row.cents += s.cents;
    row.n++;
    rows.set(s.region, row);
  }
  return [...rows.values()].sort((a, b) => (a.region < b.region ? -1 : 1));
}

describe('rebuild policies', () => {
  const project = tempProject({ after }, 'kappa-rebuild-');

  interface Run extends Kappa {
    infos: string[];
  }

  async function open(dir: string, source: string, events = 0): Promise<Run> {
    // A fresh file per engine (writeConfig): ESM caches modules by URL, and each engine stands for a fresh `kappa start`.
    const infos: string[] = [];
    const logger = { info: (m: string) => void infos.push(m), warn: (m: string) => void infos.push(`warning: ${m}`) };
    const run = await openKappa({ dir, configPath: project.writeConfig(source), engine: { logger }, start: false });
    if ((await run.log.topics()).length === 0) await run.log.createTopic('sales', { partitions: 2 });
    for (let i = 0; i < events; i += 10_000)
      await run.log.append(
        'sales',
        Array.from({ length: 10_000 }, (_, j) => ({ key: sale(i + j).region, value: JSON.stringify(sale(i + j)) })),
      );
    await run.engine.start();
    return Object.assign(run, { infos });
  }

  async function until(run: Run, what: string, cond: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await cond())) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting until ${what}; the engine said:\n${run.infos.join('\n')}`);
      await Promise.race([run.engine.failure, new Promise((r) => setTimeout(r, 20))]);
    }
  }

  const states = async (store: SqliteStore): Promise<[number, string][]> =>
    (await store.versions()).map((v) => [v.version, v.state]);
  const rows = async (store: SqliteStore): Promise<unknown> =>
    (await store.query('SELECT region, cents, n FROM totals ORDER BY region')).rows;
  const atHead = async (run: Run, version: number): Promise<boolean> => {
    if (!(await run.store.versions()).some((v) => v.version === version && v.state === 'live')) return false;
    const cps = await run.store.checkpoints('totals', version);
    let ok = cps.length === 2;
    for (const c of cps) ok &&= c.offset === (await run.log.offsets('sales', c.partition)).end;
    return ok && run.engine.builds().length === 0;
  };

  test("'manual' keeps the live logic until a replay; a build can be cancelled and is dropped", async () => {
    const dir = project.dataDir('manual');
    let run = await open(dir, config(0, "'manual'"), EVENTS);
    await until(run, 'version 1 is at the head', () => atHead(run, 1));
    await run.close();

    // The logic changes, but the view is manual: version 1 keeps its logic and keeps up.
    run = await open(dir, config(500, "'manual'"));
    try {
      assert.deepEqual(run.engine.builds(), []);
      assert.ok(
        run.infos.some((m) =>
          /its logic changed .*rebuild is 'manual', so version 1 keeps its logic until you run `kappa replay totals`/.test(
            m,
          ),
        ),
        run.infos.join('\n'),
      );
      await run.log.append(
        'sales',
        Array.from({ length: 3000 }, (_, j) => ({
          key: sale(EVENTS + j).region,
          value: JSON.stringify(sale(EVENTS + j)),
        })),
      );
      await until(run, 'version 1 has folded the new sales', () => atHead(run, 1));
      assert.deepEqual(await rows(run.store), expected(0, EVENTS + 3000), "version 1's logic, from its stored code");

      // Asked: version 2 is built with the new logic.
      const started = await run.engine.replay('totals');
      assert.equal(started.version, 2);
      await until(run, 'version 2 is live at the head', () => atHead(run, 2));
      assert.deepEqual(await rows(run.store), expected(500, EVENTS + 3000));

      // A build cancelled: its version is dropped, the live one is untouched.
      const third = await run.engine.replay('totals');
      assert.equal(third.version, 3);
      assert.deepEqual(
        run.engine.builds().map((b) => [b.version, b.reason]),
        [[3, 'replay']],
      );
      await assert.rejects(run.engine.replay('totals'), /version 3 is being built/);
      const cancelled = await run.engine.cancel('totals');
      assert.match(cancelled.message, /cancelled the build of version 3/);
      assert.deepEqual(run.engine.builds(), []);
      assert.deepEqual(await run.store.builds(), []);
      assert.deepEqual(await states(run.store), [
        [1, 'retired'],
        [2, 'live'],
      ]);
      await assert.rejects(run.engine.cancel('totals'), /no build in progress/);
      assert.deepEqual(await rows(run.store), expected(500, EVENTS + 3000));
    } finally {
      await run.close();
    }
  });

  test('{ every } rebuilds on a schedule, through the same path as a replay', async () => {
    const dir = project.dataDir('scheduled');
    const run = await open(dir, config(0, "{ every: '1s' }"), EVENTS);
    try {
      await until(run, 'a scheduled build has made version 3 live', async () =>
        (await run.store.versions()).some((v) => v.version === 3 && v.state === 'live'),
      );
      const scheduled = run.infos.filter((m) =>
        /scheduled rebuild: building version \d+ of view totals by replaying sales from the start of the log/.test(m),
      );
      assert.ok(scheduled.length >= 2, run.infos.join('\n'));
      await until(
        run,
        'version 3 is at the head',
        async () => (await atHead(run, 3)) || (await run.store.versions()).some((v) => v.version > 3),
      );
      assert.deepEqual(await rows(run.store), expected(0, EVENTS));
      const states = (await run.store.versions()).map((v) => v.state);
      assert.equal(states.filter((s) => s === 'live').length, 1);
      assert.ok(states.filter((s) => s === 'retired').length <= 1, 'keepVersions 1');
    } finally {
      await run.close();
    }
  });
});
