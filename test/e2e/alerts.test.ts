/**
 * Alerts in event time: a threshold that must hold for a minute, and an anomaly detector (z-score)
 * on a planted outlier. Restarting replays the detectors from the start and writes nothing twice;
 * the same readings in another data directory give byte-identical alerts. Webhooks deliver each
 * alert, retrying a receiver that fails at first, and dead-letter what a broken receiver never
 * takes, without holding up the pipeline.
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { startWebhooks } from '../../src/app/index.ts';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { openKappa } from '../support/kappa.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { readingsAlertsConfig } from '../support/apps.ts';
import { tempProject } from '../support/project.ts';
const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

const CONFIG = readingsAlertsConfig(`
    threshold('overheat', from(readings), { key: (r) => r.device, when: (r) => r.temperature > 80, for: '1m', value: (r) => r.temperature, severity: 'critical', to: alerts }),
    anomaly('odd_reading', from(readings).filter((r) => r.device.startsWith('calm')), { key: (r) => r.device, value: (r) => r.temperature, threshold: 4, minSamples: 20, to: alerts }),
    // A threshold over a running total, as a grouped sum view shows it: each device's degrees summed.
    threshold('degree_budget', from(readings).filter((r) => r.device === 'calm-1'), { key: (r) => r.device, total: (r) => r.temperature, when: (r, total) => total > 1000, to: alerts }),
`);

interface Reading {
  device: string;
  temperature: number;
  ts: number;
}

/** Readings every 10 s (event time). calm-1 hovers around 20 °C with one outlier at step 50; hot-1 is over 80 for 30 s (no alert), then for 90 s (one alert, at 60 s). */
function readings(): Reading[] {
  const out: Reading[] = [];
  for (let i = 0; i < 80; i++) {
    const ts = T0 + i * 10_000;
    out.push({ device: 'calm-1', temperature: i === 50 ? 45 : 20 + ((i * 7) % 5) / 10, ts });
    const hot = (i >= 10 && i < 13) || (i >= 30 && i < 39);
    out.push({ device: 'hot-1', temperature: hot ? 85 : 30, ts });
  }
  return out;
}

/** The reading at which calm-1's summed temperature first passes 1000. */
function expectedBudgetStep(): number {
  let total = 0;
  for (const r of readings()) {
    if (r.device !== 'calm-1') continue;
    total += r.temperature;
    if (total > 1000) return (r.ts - T0) / 10_000;
  }
  return -1;
}

async function alertsOf(log: FileLog): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of log.read('alerts', 0, 0)) for (const r of batch.records()) out.push(r.value!.toString());
  return out;
}

describe('alerts', () => {
  const project = tempProject({ after }, 'kappa-alerts-');

  /** Runs the pipelines over `dir` until every task has caught up with the log, then stops. */
  async function runUntilCaughtUp(dir: string, append: Reading[] = [], workers = 0): Promise<void> {
    const { log, engine, close } = await openKappa({ dir, configPath: project.writeConfig(CONFIG), workers });
    try {
      if (append.length > 0)
        await log.append(
          'readings',
          append.map((r) => ({ key: r.device, value: JSON.stringify(r), timestamp: r.ts })),
        );
      const ends = async (): Promise<number[]> =>
        Promise.all([0, 1].map(async (p) => (await log.offsets('readings', p)).end));
      const target = await ends();
      const deadline = Date.now() + 30_000;
      while (!engine.status().every((t) => t.committedOffset >= target[t.partition])) {
        if (Date.now() > deadline) throw new Error(`not caught up: ${JSON.stringify(engine.status())}`);
        await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 20))]);
      }
    } finally {
      await close();
    }
  }

  test('threshold for a duration and an anomaly fire once each, in event time; a restart writes nothing twice; a replay elsewhere gives the same alerts', async () => {
    const dir = project.dataDir('a');
    await runUntilCaughtUp(dir, readings());
    let log = await openFileLog({ dir, readOnly: true, logger: quiet });
    const first = await alertsOf(log);
    await log.close();
    const parsed = first.map(
      (a) =>
        JSON.parse(a) as {
          rule: string;
          key: string;
          atMs: number;
          value: number;
          severity: string;
          details: Record<string, number>;
        },
    );
    assert.deepEqual(
      parsed.map((a) => [a.rule, a.key, (a.atMs - T0) / 10_000]).sort(),
      [
        ['degree_budget', 'calm-1', expectedBudgetStep()],
        ['odd_reading', 'calm-1', 50],
        ['overheat', 'hot-1', 36],
      ],
      JSON.stringify(parsed),
    );
    const overheat = parsed.find((a) => a.rule === 'overheat')!;
    assert.equal(overheat.severity, 'critical');
    assert.equal(overheat.value, 85);
    assert.equal(overheat.details.sinceMs, T0 + 30 * 10_000);
    assert.ok(parsed.find((a) => a.rule === 'odd_reading')!.details.score > 4);

    // A restart rebuilds the detectors' state from the start: nothing written twice. New readings: one new alert.
    await runUntilCaughtUp(dir);
    log = await openFileLog({ dir, readOnly: true, logger: quiet });
    assert.deepEqual(await alertsOf(log), first);
    await log.close();
    const more = Array.from({ length: 8 }, (_, i) => ({
      device: 'hot-2',
      temperature: 90,
      ts: T0 + 900_000 + i * 10_000,
    }));
    await runUntilCaughtUp(dir, more, 2);
    log = await openFileLog({ dir, readOnly: true, logger: quiet });
    const after = await alertsOf(log);
    await log.close();
    assert.deepEqual(after.slice(0, first.length), first);
    assert.deepEqual(
      after.slice(first.length).map((a) => [JSON.parse(a).key, JSON.parse(a).atMs - T0]),
      [['hot-2', 960_000]],
    );

    // The same readings in another data directory: byte-identical alerts.
    const other = project.dataDir('b');
    await runUntilCaughtUp(other, [...readings(), ...more]);
    log = await openFileLog({ dir: other, readOnly: true, logger: quiet });
    assert.deepEqual((await alertsOf(log)).sort(), [...after].sort());
    await log.close();
  });

  test('webhooks: retried with backoff until taken; dead-lettered after the last attempt; the pipeline does not wait', async () => {
    const got: { id: string; body: { value: { rule: string } } }[] = [];
    let flaky = 0;
    const receiver = (fail: (req: IncomingMessage) => boolean) =>
      createServer((req: IncomingMessage, res: ServerResponse) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          if (fail(req)) {
            res.writeHead(500).end('not now');
            return;
          }
          got.push({ id: String(req.headers['kappa-delivery-id']), body: JSON.parse(body) });
          res.writeHead(204).end();
        });
      });
    const good = receiver(() => ++flaky <= 2); // fails twice, then takes everything
    const broken = receiver(() => true);
    await Promise.all([good, broken].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))));
    const url = (s: ReturnType<typeof createServer>): string =>
      `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`;

    const kappa = await openKappa({
      dir: project.dataDir('hooks'),
      configPath: project.writeConfig(CONFIG),
      start: false,
    });
    const { log, store, engine } = kappa;
    let hooks: Awaited<ReturnType<typeof startWebhooks>> | null = null;
    try {
      await engine.start(); // creates the alerts topic
      hooks = await startWebhooks(
        log,
        store,
        [
          { name: 'pager', url: url(good), backoffMs: 20 },
          { name: 'broken', url: url(broken), maxAttempts: 3, backoffMs: 10 },
        ],
        quiet,
      );
      await log.append(
        'readings',
        readings().map((r) => ({ key: r.device, value: JSON.stringify(r), timestamp: r.ts })),
      );
      const deadline = Date.now() + 30_000;
      // The receiver has a delivery before the sender has its answer (and counts it): wait for both.
      while (
        got.length < 3 ||
        (hooks.stats.get('pager')?.delivered ?? 0) < 3 ||
        (hooks.stats.get('broken')?.deadLettered ?? 0) < 3
      ) {
        if (Date.now() > deadline) throw new Error(`deliveries: ${JSON.stringify([...hooks.stats])}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(got.map((g) => g.body.value.rule).sort(), ['degree_budget', 'odd_reading', 'overheat']);
      assert.deepEqual(
        got.map((g) => g.id),
        ['alerts/0/0', 'alerts/0/1', 'alerts/0/2'],
        'each alert once, in order, with its delivery id',
      );
      assert.deepEqual(hooks.stats.get('pager'), { delivered: 3, retried: 2, deadLettered: 0 });
      const dead: { headers: Record<string, string> }[] = [];
      for await (const batch of log.read('alerts.webhook-dlq', 0, 0))
        for (const r of batch.records())
          dead.push({ headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value?.toString() ?? ''])) });
      assert.equal(dead.length, 3);
      assert.equal(dead[0].headers['kappa.webhook'], 'broken');
      assert.equal(dead[0].headers['kappa.attempts'], '3');
      assert.match(dead[0].headers['kappa.error'], /answered 500/);
      assert.equal(dead[0].headers['kappa.source.offset'], '0');
      // Delivery positions are kept: a restart of the webhooks sends nothing again.
      await hooks.stop();
      const before = got.length;
      hooks = await startWebhooks(log, store, [{ name: 'pager', url: url(good), backoffMs: 20 }], quiet);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(got.length, before);
    } finally {
      await hooks?.stop();
      await kappa.close();
      good.close();
      broken.close();
    }
  });
});
