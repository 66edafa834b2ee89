/**
 * `kappa replay`, `kappa rollback` and `kappa views` end to end, both ways they run: with no
 * `kappa start` running (the command runs the pipelines itself until the version is live) and
 * beside a running `kappa start` (the command asks its engine through the view store and follows
 * the build's progress).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openFileLog } from '../../src/log/index.ts';
import { type CliRun, kappaInProcess, kappaProcess as runCli } from '../support/cli.ts';
import { type Owner, startKappa } from '../support/processes.ts';
import { totalsConfig } from '../support/project.ts';

const REGIONS = ['north', 'south', 'east'];
const EVENTS = 400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

const CONFIG = totalsConfig();
interface ViewRow {
  name: string;
  version: number;
  state: string;
  rows: number;
  build: { reason: string; offsetsDone: number; offsetsTotal: number; percent: number } | null;
}

/** Sale i: its region, cents, and timestamp T0 + i ms. */
const sale = (i: number): { region: string; cents: number } => ({ region: REGIONS[i % 3], cents: 1 + (i % 101) });

/** The view's rows folded over the sales numbered from `first`. */
function expected(first: number): { region: string; cents: number; n: number }[] {
  const rows = new Map(REGIONS.map((r) => [r, { region: r, cents: 0, n: 0 }]));
  for (let i = first; i < EVENTS; i++) {
    const row = rows.get(sale(i).region)!;
    row.cents += sale(i).cents;
    row.n++;
  }
  return [...rows.values()].sort((a, b) => (a.region < b.region ? -1 : 1));
}

describe('kappa replay and rollback', () => {
  let root: string;
  let dir: string;
  let config: string;
  const d = (): string[] => ['--data-dir', dir, '--config', config];

  /** In this process, for speed. */
  const kappa = (args: string[]): Promise<CliRun> => kappaInProcess([...d(), ...args]);

  /** As a child process, the way a user runs it beside `kappa start`; killed if still running when test `t` ends. */
  const kappaProcess = (t: Owner, args: string[]): Promise<CliRun> =>
    runCli([...d(), ...args], { t, timeoutMs: 90_000 });

  async function views(): Promise<ViewRow[]> {
    const r = await kappa(['views', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ViewRow[];
  }

  async function rows(): Promise<unknown> {
    const r = await kappa(['query', 'SELECT region, cents, n FROM totals ORDER BY region', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  const states = async (): Promise<[number, string][]> => (await views()).map((v) => [v.version, v.state]);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'kappa-replay-cli-'));
    dir = join(root, 'data');
    config = join(root, 'kappa.config.ts');
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(config, CONFIG);
    const log = await openFileLog({ dir });
    await log.createTopic('sales', { partitions: 2 });
    for (let i = 0; i < EVENTS; i += 20_000) {
      await log.append(
        'sales',
        Array.from({ length: 20_000 }, (_, j) => ({
          key: sale(i + j).region,
          value: JSON.stringify(sale(i + j)),
          timestamp: T0 + i + j,
        })),
      );
    }
    await log.close();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test(
    'with nothing running, replay runs the pipelines until the version is live; --from uses the time index; a stopped build can be cancelled; rollback',
    { timeout: 120_000 },
    async () => {
      // A view never built: replay builds its first version.
      let r = await kappa(['replay', 'totals']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /no `kappa start` is running/);
      assert.match(r.stderr, /version 1 of view totals is live \(3 rows\)/);
      assert.deepEqual(await rows(), expected(0));

      // From a time: only the sales at or after it count.
      const half = EVENTS / 2;
      r = await kappa(['replay', 'totals', '--from', `@${new Date(T0 + half).toISOString()}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /building version 2 of view totals by replaying sales from 2026-01-01T00:03:20\.000Z/);
      assert.match(r.stderr, /version 2 of view totals is live/);
      assert.deepEqual(await rows(), expected(half));
      assert.deepEqual(await states(), [
        [1, 'retired'],
        [2, 'live'],
      ]);

      // A build left behind by a stopped engine shows in `views` with its progress, and can be cancelled.
      r = await kappa(['replay', 'totals', '--no-wait']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /building version 3/);
      const building = (await views()).find((v) => v.version === 3);
      assert.equal(building?.state, 'building');
      assert.equal(building?.build?.reason, 'replay');
      const table = await kappa(['views']);
      assert.match(table.stdout, /BUILD/);
      assert.match(table.stdout, /3 +building .*replay: [\d.]+% \(\d+\/\d+\)/);
      r = await kappa(['replay', 'totals', '--cancel']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /cancelled the build of version 3 of view totals/);
      assert.deepEqual(await states(), [
        [1, 'retired'],
        [2, 'live'],
      ]);
      assert.deepEqual(await rows(), expected(half), 'the cancelled build never served');

      // Nothing to cancel, unknown views, bad --from: clear errors, nothing changes.
      for (const [args, message] of [
        [['replay', 'totals', '--cancel'], /no build in progress to cancel/],
        [['replay', 'nosuch'], /no view named "nosuch"|view "nosuch"/i],
        [['rollback', 'nosuch'], /no view named "nosuch"|view "nosuch"/i],
        [['replay', 'totals', '--from', 'yesterday'], /--from "yesterday" is not understood/],
      ] as const) {
        const bad = await kappa([...args]);
        assert.equal(bad.code, 1, `${args.join(' ')} should fail`);
        assert.match(bad.stderr, message);
      }
      assert.deepEqual(await states(), [
        [1, 'retired'],
        [2, 'live'],
      ]);

      // Rollback: version 1 (every sale) is live again.
      r = await kappa(['rollback', 'totals']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /rolling back view totals to version 1/);
      assert.match(r.stderr, /version 1 of view totals is live/);
      assert.deepEqual(await rows(), expected(0));
      assert.deepEqual(await states(), [
        [1, 'live'],
        [2, 'retired'],
      ]);
    },
  );

  test(
    'beside a running `kappa start`, replay and rollback ask its engine and follow the build',
    { timeout: 120_000 },
    async (t) => {
      const start = startKappa(t, [...d(), 'start', '--port', '0', '--flush-interval-ms', '100']);
      try {
        await start.waitForOutput(/running 1 view/, { timeoutMs: 30_000, stream: 'stderr' });
        // `views --json` shows the build while it runs.
        const replay = kappaProcess(t, ['replay', 'totals']);
        let seen: ViewRow['build'] = null;
        let done: CliRun | null = null;
        void replay.then((x) => (done = x));
        while (done === null) {
          seen ??= (await views()).find((v) => v.build !== null)?.build ?? null;
          await new Promise((r) => setTimeout(r, 20));
        }
        const r: CliRun = await replay;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /building version (\d+) of view totals/);
        const version = Number(/building version (\d+)/.exec(r.stderr)![1]);
        assert.match(r.stderr, new RegExp(`version ${version} of view totals is live \\(3 rows\\)`));
        assert.ok(seen !== null && seen.reason === 'replay', 'kappa views --json showed the build in progress');
        assert.deepEqual(await rows(), expected(0));
        assert.match(
          start.stderr,
          new RegExp(`building version ${version} of view totals`),
          'the running engine did the build',
        );

        const back = await kappaProcess(t, ['rollback', 'totals']);
        assert.equal(back.code, 0, back.stderr);
        assert.match(back.stderr, /version 1 of view totals is live/);
        assert.deepEqual(
          (await views()).filter((v) => v.state === 'live').map((v) => v.version),
          [1],
        );
      } finally {
        start.kill('SIGTERM');
      }
      assert.equal((await start.exited).code, 0, start.stderr);
    },
  );
});
