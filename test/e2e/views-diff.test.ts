/**
 * Comparing two versions of a view: after a logic change (version 2 drops region r3 and the sales
 * under 8 cents), `kappa views diff totals 1 2` and `GET /v1/views/totals/diff?a=1&b=2` give the
 * row counts, the totals per measure, and the rows that differ by key (only in a, only in b,
 * changed), capped with "N more". Unknown versions and malformed arguments are refused clearly.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { call } from '../support/http.ts';
import { openKappa, untilLive } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { runKappa } from '../support/processes.ts';
import { tempProject, totalsConfig } from '../support/project.ts';

describe('views diff', () => {
  const project = tempProject({ after }, 'kappa-diff-');
  const dir = project.dataDir('data');
  const v2Filter = ".filter((s) => s.region !== 'r3' && s.cents >= 8)";

  test('row counts, totals and differing rows of two versions, by CLI and HTTP', { timeout: 120_000 }, async () => {
    const log = await openFileLog({ dir, logger: quiet });
    await log.createTopic('sales', { partitions: 2 });
    const sales = Array.from({ length: 40 }, (_, i) => ({ region: `r${i % 4}`, cents: i }));
    await log.append(
      'sales',
      sales.map((s) => ({ key: s.region, value: JSON.stringify(s) })),
    );
    await log.close();
    for (const [version, source] of [
      [1, totalsConfig({ viewOptions: '{ keepVersions: 2 }' })],
      [2, totalsConfig({ filter: v2Filter, viewOptions: '{ keepVersions: 2 }' })],
    ] as const) {
      const kappa = await openKappa({
        dir,
        configPath: project.writeConfig(source),
        server: version === 2 ? {} : undefined,
      });
      try {
        await untilLive(kappa, 'totals', version, 40, 30_000);
        if (version === 2) await checkHttp(kappa.url);
      } finally {
        await kappa.close();
      }
    }

    const text = await runKappa(['--data-dir', dir, 'views', 'diff', 'totals', '1', '2', '--limit', '2']);
    assert.equal(text.code, 0, text.stderr);
    const out = text.stdout;
    assert.match(out, /view totals: version 1 \(retired\) against version 2 \(live\); rows matched by region/);
    assert.match(out, /rows\s+4\s+3\s+-1/);
    // v1: 0+1+…+39 = 780 over 40 sales; v2: regions r0-r2 from 8 cents on, 24 sales.
    const v2Cents = sales.filter((s) => s.region !== 'r3' && s.cents >= 8).reduce((n, s) => n + s.cents, 0);
    assert.match(out, new RegExp(`total cents\\s+780\\s+${v2Cents}\\s+${v2Cents - 780}`));
    assert.match(out, /total n\s+40\s+24\s+-16/);
    assert.match(out, /only in version 1: 1 row\n.*region.*\n.*r3\s+/);
    assert.match(out, /only in version 2: 0 rows/);
    assert.match(out, /changed: 3 rows/);
    assert.match(out, /r0\s+180 → 176\s+10 → 8/);
    assert.match(out, /… and 1 more/);

    const json = await runKappa(['--data-dir', dir, 'views', 'diff', 'totals', '2', '2', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as { same: boolean }).same, true);

    const refused: [string[], RegExp][] = [
      [
        ['totals', '1', '7'],
        /View "totals" has no version 7: it was never built or has been dropped. Its versions: 1 \(retired\), 2 \(live\)/,
      ],
      [['totals', 'one', '2'], /The first version, "one", is not a version number/],
      [['nosuch', '1', '2'], /There is no view "nosuch"/],
    ];
    for (const [args, message] of refused) {
      const r = await runKappa(['--data-dir', dir, 'views', 'diff', ...args]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, message);
    }
  });

  async function checkHttp(url: string): Promise<void> {
    const r = await call(url, 'GET', '/v1/views/totals/diff?a=1&b=2&limit=1');
    assert.equal(r.status, 200, r.text);
    const d = r.body as {
      a: { rows: number; totals: Record<string, number> };
      b: { rows: number };
      measures: string[];
      onlyInA: { count: number; rows: { region: string }[] };
      changed: { count: number; rows: { key: { region: string }; a: { n: number }; b: { n: number } }[]; more: number };
    };
    assert.deepEqual([d.a.rows, d.b.rows], [4, 3]);
    assert.deepEqual(d.measures, ['cents', 'n']);
    assert.deepEqual(d.a.totals, { cents: 780, n: 40 });
    assert.deepEqual([d.onlyInA.count, d.onlyInA.rows[0].region], [1, 'r3']);
    assert.deepEqual([d.changed.count, d.changed.rows.length, d.changed.more], [3, 1, 2]);
    assert.deepEqual(d.changed.rows[0].key, { region: 'r0' });
    assert.deepEqual([d.changed.rows[0].a.n, d.changed.rows[0].b.n], [10, 8]);
    const missing = await call(url, 'GET', '/v1/views/totals/diff?a=1');
    assert.equal(missing.status, 400);
    assert.match(missing.text, /Say which two versions/);
    assert.equal((await call(url, 'GET', '/v1/views/totals/diff?a=1&b=9')).status, 404);
  }
});
