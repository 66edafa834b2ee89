/**
 * The PostgreSQL adapter of the ConsumerOffsetStore port, with the same tests as SQLite's
 * (../sqlite/consumer-offsets.test.ts), against a real PostgreSQL server (test/support/postgres.ts).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { defer } from '../../../test/support/cleanup.ts';
import { postgresForFile } from '../../../test/support/postgres.ts';
import { spawnOwned } from '../../../test/support/processes.ts';
import { isKappaError } from '../../errors.ts';
import type { CommittedOffset } from '../consumer-offsets.ts';
import { openPostgresStore } from './index.ts';

const server = postgresForFile();

const T0 = 1_700_000_000_000;

function at(topic: string, partition: number, offset: number, metadata: string | null = null): CommittedOffset {
  return { topic, partition, offset, leaderEpoch: -1, metadata, committedAtMs: T0 + offset };
}

/** A store on a fresh database (or on `url`'s). */
async function open(_t: unknown, url?: string) {
  const path = url ?? (await (await server()).freshDatabase());
  const store = await openPostgresStore({ connectionString: path });
  return { store, path };
}

describe('PostgreSQL consumer offsets', () => {
  test('a commit is read back per group, by topic then partition, and only for the topics asked', async (t) => {
    const { store } = await open(t);
    defer(t, () => store.close());
    const offsets = store.consumerOffsets;
    await offsets.commit('billing', [at('sales', 1, 40), at('returns', 0, 7, 'note'), at('sales', 0, 12)]);
    await offsets.commit('Billing', [at('sales', 0, 99)]);
    assert.deepEqual(await offsets.committed('billing'), [
      at('returns', 0, 7, 'note'),
      at('sales', 0, 12),
      at('sales', 1, 40),
    ]);
    assert.deepEqual(await offsets.committed('billing', ['sales', 'nope']), [at('sales', 0, 12), at('sales', 1, 40)]);
    assert.deepEqual(await offsets.committed('Billing'), [at('sales', 0, 99)], 'group ids are case-sensitive');
    assert.deepEqual(await offsets.committed('unknown'), []);
    assert.deepEqual(await offsets.groups(), ['Billing', 'billing']);
  });

  test('a later commit replaces the stored offset, even a smaller one (a consumer may rewind)', async (t) => {
    const { store } = await open(t);
    defer(t, () => store.close());
    await store.consumerOffsets.commit('g', [at('sales', 0, 50, 'a')]);
    await store.consumerOffsets.commit('g', [at('sales', 0, 10, null)]);
    assert.deepEqual(await store.consumerOffsets.committed('g'), [at('sales', 0, 10, null)]);
  });

  test('offsets survive closing and reopening the store', async (t) => {
    const first = await open(t);
    await first.store.consumerOffsets.commit('g', [at('sales', 0, 5), at('sales', 2, 9)]);
    await first.store.consumerOffsets.commit('', [at('sales', 1, 3)]);
    await first.store.close();
    const again = await open(t, first.path);
    defer(t, () => again.store.close());
    assert.deepEqual(await again.store.consumerOffsets.committed('g'), [at('sales', 0, 5), at('sales', 2, 9)]);
    assert.deepEqual(
      await again.store.consumerOffsets.committed(''),
      [at('sales', 1, 3)],
      'Kafka allows the empty group id',
    );
    assert.deepEqual(await again.store.consumerOffsets.groups(), ['', 'g']);
  });

  test('a commit with one bad offset is refused whole, with a clear error, and stores nothing', async (t) => {
    const { store } = await open(t);
    defer(t, () => store.close());
    await store.consumerOffsets.commit('g', [at('sales', 0, 5)]);
    const bad: unknown[] = [
      { ...at('sales', 1, 1), partition: -1 },
      { ...at('sales', 1, 1), topic: '' },
      { ...at('sales', 1, 1), offset: 1.5 },
      { ...at('sales', 1, 1), offset: Number.NaN },
      { ...at('sales', 1, 1), metadata: 7 },
      { ...at('sales', 1, 1), metadata: 'nul\u0000' },
      null,
    ];
    for (const b of bad) {
      await assert.rejects(
        store.consumerOffsets.commit('g', [at('sales', 0, 6), at('sales', 2, 6), b as CommittedOffset]),
        (err: unknown) =>
          isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && /Nothing was stored/.test((err as Error).message),
      );
    }
    assert.deepEqual(await store.consumerOffsets.committed('g'), [at('sales', 0, 5)]);
  });

  test('delete forgets a group and says how many offsets it had; a closed store refuses calls', async (t) => {
    const { store } = await open(t);
    await store.consumerOffsets.commit('g', [at('a', 0, 1), at('a', 1, 2)]);
    await store.consumerOffsets.commit('h', [at('a', 0, 3)]);
    assert.equal(await store.consumerOffsets.delete('g'), 2);
    assert.equal(await store.consumerOffsets.delete('g'), 0);
    assert.deepEqual(await store.consumerOffsets.groups(), ['h']);
    await store.close();
    await assert.rejects(store.consumerOffsets.committed('h'), /closed/);
    await store.close();
  });

  test(
    'a commit that resolved survives a SIGKILL of the committing process right after',
    { timeout: 60_000 },
    async (t) => {
      const path = await (await server()).freshDatabase();
      const indexUrl = new URL('./index.ts', import.meta.url).href;
      // The child commits offset n of partition 0 again and again, printing each one that resolved,
      // and is killed mid-stream: every printed commit must be found after the kill.
      const child = `
      import { openPostgresStore } from ${JSON.stringify(indexUrl)};
      const store = await openPostgresStore({ connectionString: ${JSON.stringify(path)} });
      for (let n = 0; ; n++) {
        await store.consumerOffsets.commit('g', [
          { topic: 't', partition: 0, offset: n, leaderEpoch: -1, metadata: null, committedAtMs: n },
          { topic: 't', partition: 1, offset: 2 * n, leaderEpoch: -1, metadata: null, committedAtMs: n },
        ]);
        process.stdout.write('committed ' + n + '\\n');
      }
    `;
      const proc = spawnOwned(t, process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child]);
      await proc.waitForOutput(/^committed 200$/m, { timeoutMs: 30_000, stream: 'stdout' });
      proc.kill('SIGKILL');
      const { signal } = await proc.exited;
      assert.equal(signal, 'SIGKILL', proc.stderr);
      const acked = Math.max(...[...proc.stdout.matchAll(/^committed (\d+)$/gm)].map((m) => Number(m[1])));
      const { store } = await open(t, path);
      defer(t, () => store.close());
      const [p0, p1] = await store.consumerOffsets.committed('g');
      assert.ok(p0.offset >= acked, `the last acknowledged commit (${acked}) survived (found ${p0.offset})`);
      assert.equal(p1.offset, 2 * p0.offset, 'both partitions of one commit were stored together');
    },
  );
});
