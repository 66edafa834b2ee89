/**
 * `kappa lag` lists every pipeline that reads the log: views, outputs, and the alert detectors
 * (outputs that rebuild their state from the start of their source at every start), whose lag is
 * what they have not yet judged. A restart, which reads the source again from the start, neither
 * moves their checkpoint back nor fails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kappaInProcess } from '../support/cli.ts';
import { openKappa } from '../support/kappa.ts';
import { readingsAlertsConfig } from '../support/apps.ts';
import { tempProject } from '../support/project.ts';

const CONFIG = readingsAlertsConfig(`
    threshold('overheat', from(readings), { key: (r) => r.device, when: (r) => r.temperature > 80, to: alerts }),
    anomaly('odd_reading', from(readings), { key: (r) => r.device, value: (r) => r.temperature, to: alerts }),
`);

interface LagRow {
  kind: string;
  view: string;
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  lag: number;
}

test(
  'kappa lag includes the alert detectors, caught up, before and after a restart',
  {
    timeout: 60_000,
  },
  async (t) => {
    const project = tempProject(t, 'kappa-lag-');
    const dir = project.dataDir('data');
    const configPath = project.writeConfig(CONFIG);
    const T0 = Date.UTC(2026, 5, 1);
    const readings = Array.from({ length: 40 }, (_, i) => ({
      device: `d${i % 4}`,
      temperature: i === 30 ? 95 : 20,
      ts: T0 + i * 1000,
    }));
    const run = async (append: boolean): Promise<number[]> => {
      const { log, engine, close } = await openKappa({ dir, configPath });
      try {
        if (append)
          await log.append(
            'readings',
            readings.map((r) => ({
              key: r.device,
              value: JSON.stringify(r),
              timestamp: r.ts,
            })),
          );
        const ends = await Promise.all([0, 1].map(async (p) => (await log.offsets('readings', p)).end));
        const deadline = Date.now() + 30_000;
        while (!engine.status().every((s) => s.committedOffset >= ends[s.partition])) {
          if (Date.now() > deadline) throw new Error(`not caught up: ${JSON.stringify(engine.status())}`);
          await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 20))]);
        }
        return ends;
      } finally {
        await close();
      }
    };
    const lag = async (): Promise<LagRow[]> => {
      const res = await kappaInProcess(['--data-dir', dir, 'lag', '--json']);
      assert.equal(res.code, 0, res.stderr);
      return JSON.parse(res.stdout) as LagRow[];
    };
    const detectors = (rows: LagRow[]) =>
      rows
        .filter((r) => r.kind === 'output')
        .map((r) => `${r.view} ${r.topic}/${r.partition} ${r.committedOffset}/${r.logEndOffset} lag ${r.lag}`)
        .sort();
    const ends = await run(true);
    assert.ok(ends[0] > 0 && ends[1] > 0, 'both partitions have readings');
    const expected = ['odd_reading', 'overheat'].flatMap((name) =>
      [0, 1].map((p) => `${name} readings/${p} ${ends[p]}/${ends[p]} lag 0`),
    );
    assert.deepEqual(detectors(await lag()), expected);
    // A restart reads the source from the start again: the checkpoints stay where they were.
    await run(false);
    assert.deepEqual(detectors(await lag()), expected);
    const table = await kappaInProcess(['--data-dir', dir, 'lag']);
    assert.match(table.stdout, /overheat \(output\)/);
  },
);
