/**
 * Every reader of the log decodes compressed batches: the same sales, stored once as Kappa's own
 * uncompressed batches and once as gzip, snappy, lz4 and zstd batches a Kafka client would send (through
 * appendEncoded, as the Kafka listener stores them), give the same view rows (the engine on its
 * thread and on a worker thread), the same records from GET /v1/topics/:topic/records and from
 * `kappa consume`, and a clean `kappa verify`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Codec,
  type EncodableRecord,
  type FileLog,
  compressBatch,
  encodeBatch,
  partitionForKey,
  prepareCompression,
} from '../../src/log/index.ts';
import { openKappa, untilLive } from '../support/kappa.ts';
import { runKappa } from '../support/processes.ts';
import { tempProject, totalsConfig } from '../support/project.ts';

const T0 = Date.UTC(2026, 5, 1);
const PARTITIONS = 2;
const REGIONS = ['north', 'south', 'east', 'west', 'centre'];

function sales(n: number): EncodableRecord[] {
  const out: EncodableRecord[] = [];
  for (let i = 0; i < n; i++) {
    const region = REGIONS[(i * 7) % REGIONS.length];
    out.push({ key: region, value: JSON.stringify({ region, cents: 100 + ((i * 37) % 900) }), timestamp: T0 + i });
  }
  return out;
}

/** Per partition (murmur2 of the key, as `append` picks), the records in order. */
function byPartition(records: EncodableRecord[]): EncodableRecord[][] {
  const out: EncodableRecord[][] = Array.from({ length: PARTITIONS }, () => []);
  for (const r of records) out[partitionForKey(Buffer.from(r.key as string), PARTITIONS)].push(r);
  return out;
}

/** Appends the records in batches of 50, each compressed with the next of gzip, snappy, lz4, zstd (or none). */
async function appendAs(log: FileLog, records: EncodableRecord[], compressed: boolean): Promise<void> {
  await prepareCompression(); // the zstd encoder
  const codecs = [Codec.gzip, Codec.snappy, Codec.lz4, Codec.zstd];
  let n = 0;
  for (const [p, rs] of byPartition(records).entries())
    for (let i = 0; i < rs.length; i += 50) {
      const batch = encodeBatch(rs.slice(i, i + 50), { baseOffset: 0 });
      await log.appendEncoded('sales', p, compressed ? compressBatch(batch, codecs[n++ % codecs.length]) : batch);
    }
}

test(
  'a topic of gzip, snappy, lz4 and zstd batches reads like the same records uncompressed, for every reader',
  { timeout: 120_000 },
  async (t) => {
    const project = tempProject(t, 'kappa-compressed-');
    const configPath = project.writeConfig(totalsConfig({ partitions: PARTITIONS }));
    const all = sales(1000);
    const seen: Record<string, unknown>[] = [];
    for (const [name, compressed, workers] of [
      ['plain', false, 0],
      ['compressed', true, 0],
      ['compressed-worker', true, 1],
    ] as const) {
      const dir = project.dataDir(name);
      const kappa = await openKappa({ t, dir, configPath, workers, start: false, server: {} });
      await kappa.log.createTopic('sales', { partitions: PARTITIONS });
      await appendAs(kappa.log, all, compressed);
      const stored = [];
      for await (const b of kappa.log.read('sales', 0, 0)) stored.push(b.compression);
      assert.equal(stored.includes(0), !compressed, `${name}: the batches are stored as appended`);
      await kappa.engine.start();
      assert.equal(kappa.engine.threads, workers);
      await untilLive(kappa, 'totals', 1, all.length, 60_000);
      const { rows } = await kappa.store.query('SELECT region, cents, n FROM totals ORDER BY region');
      const page = (await (
        await fetch(`${kappa.url}/v1/topics/sales/records?partition=1&from=37&limit=500`)
      ).json()) as {
        records: unknown[];
        next: number;
      };
      await kappa.close();
      const consumed = await runKappa(['--data-dir', dir, 'consume', 'sales', '--with-meta'], { t });
      assert.equal(consumed.code, 0, consumed.stderr);
      const verified = await runKappa(['--data-dir', dir, 'verify'], { t });
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /1000 records/);
      seen.push({ rows, page, consumed: consumed.stdout.trim().split('\n') });
    }
    assert.equal((seen[0].rows as unknown[]).length, REGIONS.length);
    assert.equal((seen[0].consumed as unknown[]).length, all.length);
    assert.ok(((seen[0].page as { records: unknown[] }).records.length as number) > 100);
    assert.deepEqual(seen[1], seen[0], 'compressed batches read like uncompressed ones (main thread)');
    assert.deepEqual(seen[2], seen[0], 'compressed batches read like uncompressed ones (worker thread)');
  },
);
