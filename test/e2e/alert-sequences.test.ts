/**
 * The producer sequences under which an alert detector (an output that rebuilds its state from the
 * start of its source at every start) writes its alerts. A restart replays the detector and writes
 * the same alerts under the same sequences, which the log drops as re-sent; new alerts continue the
 * numbering. So two starts give increasing sequences, each alert is in the topic once, and the
 * records of the alerts topic carry one producer's numbering without a restart at 0.
 *
 * A detector restarts its numbering at 0 at every start, and relies on its replay giving the same
 * alerts again. Once its source was deleted and created again, the replay gives other alerts: it
 * then writes under a new producer (the source's creation time joins its id, see outputs.ts), so
 * the log does not drop them as re-sent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Log } from '../../src/log/index.ts';
import { kappaInProcess as kappa } from '../support/cli.ts';
import { openKappa } from '../support/kappa.ts';
import { readingsAlertsConfig } from '../support/apps.ts';
import { type Owner, waitFor } from '../support/processes.ts';
import { tempDataProject } from '../support/project.ts';

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const CONFIG = readingsAlertsConfig(`
    threshold('overheat', from(readings), { key: (r) => r.device, when: (r) => r.temperature > 80, to: alerts }),
`);

/** One overheat episode of `device` (one alert), at `step` × 10 s of event time. */
const episode = (device: string, step: number) =>
  [85, 30].map((temperature, i) => ({
    key: device,
    value: JSON.stringify({ device, temperature, ts: T0 + (step + i) * 10_000 }),
  }));

interface Written {
  key: string;
  producerId: number;
  sequence: number;
  offset: number;
}

/** Every record of `alerts` partition 0 with the producer id and sequence it was written under. */
async function written(log: Log): Promise<Written[]> {
  const out: Written[] = [];
  for await (const batch of log.read('alerts', 0, 0))
    for (const r of batch.records()) {
      const sequence = batch.baseSequence + (r.offset - batch.baseOffset);
      out.push({
        key: (JSON.parse(r.value!.toString()) as { key: string }).key,
        producerId: batch.producerId,
        sequence,
        offset: r.offset,
      });
    }
  return out;
}

/** Per producer, the sequences of its records in offset order: each must count up from 0 by one. */
function assertNumbered(w: Written[]): void {
  const byProducer = new Map<number, number[]>();
  for (const x of w) byProducer.set(x.producerId, [...(byProducer.get(x.producerId) ?? []), x.sequence]);
  for (const [id, seqs] of byProducer)
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i),
      `producer ${id}`,
    );
}

/** Runs the app over `dir`, appends `records` to readings, and waits until `alerts` holds `count` records. */
async function run(
  t: Owner,
  dir: string,
  config: string,
  records: ReturnType<typeof episode>,
  count: number,
  timeoutMs = 30_000,
) {
  const k = await openKappa({ dir, configPath: config, t });
  try {
    if (records.length > 0)
      await k.log.append(
        'readings',
        records.map((r) => ({ ...r })),
      );
    return await waitFor(
      `${count} alerts`,
      async () => {
        const w = await written(k.log);
        return w.length >= count ? w : null;
      },
      { timeoutMs, intervalMs: 20 },
    );
  } finally {
    await k.close();
  }
}

test(
  'two starts: the alerts of the second continue the sequences of the first; none written twice',
  { timeout: 60_000 },
  async (t) => {
    const { dir, config } = tempDataProject(t, 'kappa-alert-seq-', CONFIG);
    const first = await run(t, dir, config, [...episode('hot-1', 0), ...episode('hot-2', 5)], 2);
    const second = await run(t, dir, config, episode('hot-3', 10), 3);
    assert.deepEqual(second.slice(0, 2), first, 'the first alerts once each');
    assertNumbered(second);
  },
);

test(
  'after topics delete --force of the source and its creation again, new alerts are written, not dropped as re-sent',
  { timeout: 90_000 },
  async (t) => {
    const { dir, config } = tempDataProject(t, 'kappa-alert-seq-', CONFIG);
    const first = await run(t, dir, config, [...episode('hot-1', 0), ...episode('hot-2', 5)], 2);
    const d = ['--data-dir', dir, '--config', config];
    const del = await kappa([...d, 'topics', 'delete', 'readings', '--force']);
    assert.equal(del.code, 0, del.stderr);
    const after = await run(t, dir, config, episode('hot-9', 20), 3, 10_000);
    assert.deepEqual(after.slice(0, 2), first);
    assert.equal(after[2].key, 'hot-9');
    assert.ok(!first.some((w) => w.producerId === after[2].producerId), 'a new producer for the new history');
    // The next start replays the new topic under that same producer: hot-9 is not written again.
    const next = await run(t, dir, config, episode('hot-10', 30), 4);
    assert.deepEqual(
      next.map((w) => w.key),
      ['hot-1', 'hot-2', 'hot-9', 'hot-10'],
    );
    assertNumbered(next);
  },
);
