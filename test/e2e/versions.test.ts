/**
 * A view whose logic changes gets a new version, built from the start of the log while the live
 * one serves; once it has caught up it goes live and the old one is retired. Only the newest
 * `keepVersions` retired versions are kept (for rollback); older ones are dropped with their
 * tables and checkpoints.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { openKappa } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { tempProject, totalsConfig } from '../support/project.ts';

function config(minCents: number, keepVersions?: number): string {
  const viewOptions = keepVersions === undefined ? '{}' : `{ keepVersions: ${keepVersions} }`;
  return totalsConfig({ filter: `.filter((s) => s.cents >= ${minCents})`, viewOptions });
}

describe('view versions', () => {
  const project = tempProject({ after }, 'kappa-versions-');

  /** Runs the engine on `source` until the view's newest version is live, then stops it. */
  async function runUntilLive(dir: string, source: string, workers: number): Promise<void> {
    // A fresh file per run (writeConfig): ESM caches modules by URL, and each run stands for a fresh `kappa start`.
    const { engine, store, close } = await openKappa({ dir, configPath: project.writeConfig(source), workers });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const versions = (await store.versions()).filter((v) => v.name === 'totals');
        const newest = versions.reduce((m, v) => Math.max(m, v.version), 0);
        const committed = engine
          .status()
          .filter((t) => t.version === newest)
          .reduce((n, t) => n + t.committedOffset, 0);
        if (
          engine.builds().length === 0 &&
          versions.find((v) => v.version === newest)?.state === 'live' &&
          committed >= 600
        )
          break;
        if (Date.now() > deadline) throw new Error(`the new version did not go live: ${JSON.stringify(versions)}`);
        await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 20))]);
      }
    } finally {
      await close();
    }
  }

  for (const workers of [0, 2]) {
    test(
      `changed logic builds a new version; retired versions beyond keepVersions are dropped (${workers} workers)`,
      { timeout: 60_000 },
      async () => {
        const dir = project.dataDir(`data-${workers}`);
        const log = await openFileLog({ dir, logger: quiet });
        await log.createTopic('sales', { partitions: 2 });
        await log.append(
          'sales',
          Array.from({ length: 600 }, (_, i) => ({
            key: `r${i % 3}`,
            value: JSON.stringify({ region: `r${i % 3}`, cents: i }),
          })),
        );
        await log.close();

        await runUntilLive(dir, config(0), workers);
        await runUntilLive(dir, config(100), workers);
        await runUntilLive(dir, config(200), workers);

        const store = await openSqliteStore({ path: join(dir, 'views.db') });
        try {
          const versions = (await store.versions()).filter((v) => v.name === 'totals').map((v) => [v.version, v.state]);
          assert.deepEqual(versions, [
            [2, 'retired'],
            [3, 'live'],
          ]);
          assert.deepEqual(
            await store.checkpoints('totals', 2).then((c) => c.length),
            2,
            'the kept version keeps its checkpoints',
          );
          const rows = (await store.query('SELECT region, cents, n FROM totals ORDER BY region')).rows;
          const expected = ['r0', 'r1', 'r2'].map((region, r) => {
            const mine = Array.from({ length: 600 }, (_, i) => i).filter((i) => i % 3 === r && i >= 200);
            return { region, cents: mine.reduce((s, i) => s + i, 0), n: mine.length };
          });
          assert.deepEqual(rows, expected, 'the live version is the newest logic over the whole log');
          const tables = (
            await store.query(
              "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'totals__v%' ORDER BY name",
            )
          ).rows.map((r) => r.name);
          assert.deepEqual(tables, ['totals__v2', 'totals__v3']);
        } finally {
          await store.close();
        }

        // keepVersions 0: the next swap drops every retired version.
        await runUntilLive(dir, config(300, 0), workers);
        const after = await openSqliteStore({ path: join(dir, 'views.db') });
        try {
          assert.deepEqual(
            (await after.versions()).filter((v) => v.name === 'totals').map((v) => [v.version, v.state]),
            [[4, 'live']],
          );
        } finally {
          await after.close();
        }
      },
    );
  }
});
