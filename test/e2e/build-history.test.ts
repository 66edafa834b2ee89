/**
 * The build history of a view: a logic change builds version 2 (recorded live, with what changed
 * in the logic, the records read and the duration), a replay that is cancelled is recorded
 * cancelled, and a rollback is recorded with its reason. `GET /v1/views/:view/builds` and
 * `kappa views builds <view>` show them newest first; an unknown view is refused. Plain `kappa views`
 * shows each view's newest finished build (reason, result, duration, when) on its live row.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { call } from '../support/http.ts';
import { openKappa, untilLive } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { runKappa } from '../support/processes.ts';
import { tempProject, totalsConfig } from '../support/project.ts';

interface Entry {
  version: number;
  reason: string;
  result: string;
  change: string | null;
  events: number;
  durationMs: number;
  startedAtMs: number;
  endedAtMs: number;
}

describe('build history', () => {
  const project = tempProject({ after }, 'kappa-builds-');
  const dir = project.dataDir('data');
  const RECORDS = 3000;

  test(
    'live, cancelled and rolled-back builds are kept with why and how they ended',
    { timeout: 120_000 },
    async () => {
      const log = await openFileLog({ dir, logger: quiet });
      await log.createTopic('sales', { partitions: 2 });
      await log.append(
        'sales',
        Array.from({ length: RECORDS }, (_, i) => ({
          key: `r${i % 4}`,
          value: JSON.stringify({ region: `r${i % 4}`, cents: i }),
        })),
      );
      await log.close();
      const first = await openKappa({
        dir,
        configPath: project.writeConfig(totalsConfig({ viewOptions: '{ keepVersions: 20 }' })),
      });
      await untilLive(first, 'totals', 1, RECORDS, 60_000).finally(() => first.close());

      const source = totalsConfig({ filter: '.filter((s) => s.cents >= 10)', viewOptions: '{ keepVersions: 20 }' });
      const kappa = await openKappa({ dir, configPath: project.writeConfig(source), server: {} });
      try {
        await untilLive(kappa, 'totals', 2, RECORDS, 60_000);
        // A replay of 3000 records may start going live before the cancel reaches it (the cancel is then
        // refused and the build recorded live): try again.
        let cancelledVersion = 0;
        for (let attempt = 0; attempt < 10 && cancelledVersion === 0; attempt++) {
          const started = await kappa.engine.replay('totals');
          try {
            await kappa.engine.cancel('totals');
            cancelledVersion = started.version;
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'KAPPA_VIEW_CONFLICT', String(err));
            await untilLive(kappa, 'totals', started.version, RECORDS, 60_000);
          }
        }
        assert.notEqual(cancelledVersion, 0, 'one replay was cancelled');
        await kappa.engine.rollback('totals', 1);
        await untilLive(kappa, 'totals', 1, RECORDS, 60_000);

        const r = await call(kappa.url, 'GET', '/v1/views/totals/builds');
        assert.equal(r.status, 200, r.text);
        const { history, running } = r.body as { history: Entry[]; running: unknown[] };
        assert.deepEqual(running, []);
        assert.deepEqual([history[0].version, history[0].reason, history[0].result], [1, 'rollback', 'live']);
        const rollback = history[0];
        const changed = history.at(-1)!;
        assert.deepEqual([changed.version, changed.reason, changed.result], [2, 'logic changed', 'live']);
        const cancelled = history.find((e) => e.version === cancelledVersion)!;
        assert.deepEqual([cancelled.reason, cancelled.result], ['replay', 'cancelled']);
        const ends = history.map((e) => e.endedAtMs);
        assert.deepEqual(
          ends,
          [...ends].sort((a, b) => b - a),
          'newest first',
        );
        assert.match(changed.change ?? '', /changed/, 'a logic change says what changed');
        assert.equal(changed.events, RECORDS, 'the build read the whole log');
        assert.ok(changed.durationMs >= 0 && changed.endedAtMs >= changed.startedAtMs);
        assert.equal(cancelled.change, 'none: the same logic, replayed');
        assert.equal(rollback.change, "back to version 1's own logic");
        const unknown = await call(kappa.url, 'GET', '/v1/views/nosuch/builds');
        assert.equal(unknown.status, 404);
        assert.match(unknown.text, /There is no view \\"nosuch\\"/);
      } finally {
        await kappa.close();
      }

      const cli = await runKappa(['--data-dir', dir, 'views', 'builds', 'totals']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /version\s+reason\s+result\s+records\s+took\s+ended\s+what changed/);
      assert.match(cli.stdout, /\n1\s+rollback\s+live\s+\d+\s+[\d.]+ s\s+\S+\s+back to version 1's own logic/);
      assert.match(cli.stdout, new RegExp(`\\n2\\s+logic changed\\s+live\\s+${RECORDS}\\s+`));
      assert.match(cli.stdout, /cancelled/);
      // Plain `kappa views` shows the newest finished build on the view's live row, within 120 columns.
      const views = await runKappa(['--data-dir', dir, 'views']);
      assert.equal(views.code, 0, views.stderr);
      assert.match(views.stdout, /VIEW\s+VERSION\s+STATE\s+ROWS\s+LAG\s+BUILD/);
      assert.match(
        views.stdout,
        /\ntotals\s+1\s+live\s+\d+\s+\d+\s+last: v1 rollback, live, took \d+\.\d s, \d+[smhd] ago\n/,
      );
      assert.equal(views.stdout.match(/last: /g)?.length, 1, 'once per view');
      for (const line of views.stdout.split('\n')) assert.ok(line.length <= 120, line);
      const json = await runKappa(['--data-dir', dir, 'views', '--json']);
      const rows = JSON.parse(json.stdout) as { version: number; lastBuild: Entry | null }[];
      assert.ok(rows.every((r) => r.lastBuild?.reason === 'rollback' && r.lastBuild.version === 1));
      const none = await runKappa(['--data-dir', dir, 'views', 'builds', 'nosuch']);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /There is no view "nosuch"/);
    },
  );
});
