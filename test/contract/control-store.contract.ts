/**
 * The `ControlStore` contract: what every adapter (SQLite: ./sqlite-control-store.test.ts;
 * PostgreSQL: ./postgres-control-store.test.ts) must do, written against the port only
 * (src/view/control-store.ts states the promises). An adapter's test file
 * calls `controlStoreContract` with a factory that opens a fresh, empty store on real storage.
 *
 * What it pins down: output checkpoints (round trip, never backwards, listing), saved code (read
 * back, null when absent), build records (upsert, list, delete, kept across reopen), requests
 * between processes (taken exactly once, oldest first, even by two handles on the same data; then
 * answered), and `forgetVersion`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILD_HISTORY_MAX } from '../../src/view/control-store.ts';
import type { BuildInfo, ControlStore } from '../../src/view/index.ts';
import { freshForEachTest, rejectsWith } from '../../src/view/test-helpers.ts';

export interface ControlStoreHarness {
  /** The store open now: after `reopen`, the new one. */
  readonly store: ControlStore;
  /** Closes the store open now and opens a new one on the same data (then `store`). */
  reopen(): Promise<ControlStore>;
  /** Opens another store on the same data, beside `store` (as another process would); `cleanup` closes it. */
  second(): Promise<ControlStore>;
  /** Closes whatever is open and removes the data. */
  cleanup(): Promise<void>;
}

/** A build of `sales` v`version` with `done` of 100 records read. */
export const build = (version: number, done: number): BuildInfo => ({
  name: 'sales',
  version,
  fingerprint: 'fp',
  reason: 'replay',
  from: 'earliest',
  fromOffsets: [{ topic: 'orders', partition: 0, offset: 0 }],
  startedAtMs: 1000,
  offsetsDone: done,
  offsetsTotal: 100,
  eventsPerSecond: 50,
  etaSeconds: (100 - done) / 50,
  updatedAtMs: 2000,
});

/**
 * The whole suite is one function, longer than our usual limit, on purpose: node:test's describe
 * blocks nest, and every block reads the harness of the test under way from this closure.
 */
export function controlStoreContract(name: string, open: () => Promise<ControlStoreHarness>): void {
  describe(`ControlStore contract: ${name}`, () => {
    let h: ControlStoreHarness;
    freshForEachTest(open, (opened) => (h = opened));

    describe('output checkpoints', () => {
      test('saved per source partition with their sequences, kept across reopen, never backwards', async () => {
        assert.deepEqual(await h.store.outputCheckpoints('refunds'), []);
        await h.store.saveOutputCheckpoint('refunds', {
          topic: 'sales',
          partition: 1,
          offset: 40,
          sequences: [3, 0, 7],
          watermark: 1_780_000_000_123,
        });
        await h.store.saveOutputCheckpoint('refunds', {
          topic: 'sales',
          partition: 0,
          offset: 12,
          sequences: [1, 1, 1],
        });
        await h.store.saveOutputCheckpoint('refunds', {
          topic: 'sales',
          partition: 0,
          offset: 12,
          sequences: [1, 1, 1],
        });
        await h.store.saveOutputCheckpoint('other', { topic: 'sales', partition: 0, offset: 99, sequences: [5] });
        await h.reopen();
        assert.deepEqual(await h.store.outputCheckpoints('refunds'), [
          { topic: 'sales', partition: 0, offset: 12, sequences: [1, 1, 1] },
          { topic: 'sales', partition: 1, offset: 40, sequences: [3, 0, 7], watermark: 1_780_000_000_123 },
        ]);
        await assert.rejects(
          h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 1, offset: 39, sequences: [4, 0, 7] }),
          /backwards/,
        );
        await rejectsWith(
          h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 1, offset: 41, sequences: [-1] }),
          'KAPPA_INVALID_ARGUMENT',
        );
        await rejectsWith(
          h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 1, offset: -5, sequences: [] }),
          'KAPPA_INVALID_ARGUMENT',
        );
        assert.deepEqual((await h.store.outputCheckpoints('refunds'))[1], {
          topic: 'sales',
          partition: 1,
          offset: 40,
          sequences: [3, 0, 7],
          watermark: 1_780_000_000_123,
        });
        assert.deepEqual(await h.store.outputCheckpoints('other'), [
          { topic: 'sales', partition: 0, offset: 99, sequences: [5] },
        ]);
        assert.deepEqual(await h.store.outputs(), ['other', 'refunds']);
      });

      test('an output checkpoint is saved per output: another output, or none, is not affected', async () => {
        await h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 0, offset: 5, sequences: [1] });
        await h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 0, offset: 8, sequences: [2] });
        assert.deepEqual(await h.store.outputCheckpoints('refunds'), [
          { topic: 'sales', partition: 0, offset: 8, sequences: [2] },
        ]);
        assert.deepEqual(await h.store.outputCheckpoints('alerts'), []);
        assert.deepEqual(await h.store.outputs(), ['refunds']);
        await rejectsWith(
          h.store.saveOutputCheckpoint('bad name!', { topic: 'sales', partition: 0, offset: 1, sequences: [] }),
          'KAPPA_INVALID_ARGUMENT',
        );
      });
      test('resetOutputSource moves one output back to offset 0 in one topic (and no event time), keeping its sequences', async () => {
        await h.store.saveOutputCheckpoint('refunds', {
          topic: 'sales',
          partition: 0,
          offset: 12,
          sequences: [4, 2],
          watermark: 1_780_000_000_000,
        });
        await h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 1, offset: 30, sequences: [1, 9] });
        await h.store.saveOutputCheckpoint('refunds', { topic: 'orders', partition: 0, offset: 7, sequences: [3] });
        await h.store.saveOutputCheckpoint('other', { topic: 'sales', partition: 0, offset: 99, sequences: [5] });
        await h.store.resetOutputSource('refunds', 'sales');
        await h.store.resetOutputSource('refunds', 'nothing_here');
        await h.store.resetOutputSource('unknown', 'sales');
        await h.reopen();
        assert.deepEqual(await h.store.outputCheckpoints('refunds'), [
          { topic: 'orders', partition: 0, offset: 7, sequences: [3] },
          { topic: 'sales', partition: 0, offset: 0, sequences: [4, 2] },
          { topic: 'sales', partition: 1, offset: 0, sequences: [1, 9] },
        ]);
        assert.deepEqual(await h.store.outputCheckpoints('other'), [
          { topic: 'sales', partition: 0, offset: 99, sequences: [5] },
        ]);
        // From 0 it moves forward again as any checkpoint does, and never back.
        await h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 0, offset: 3, sequences: [6, 2] });
        assert.deepEqual((await h.store.outputCheckpoints('refunds'))[1].offset, 3);
        await assert.rejects(
          h.store.saveOutputCheckpoint('refunds', { topic: 'sales', partition: 0, offset: 2, sequences: [6, 2] }),
          /backwards/,
        );
        await rejectsWith(h.store.resetOutputSource('bad name!', 'sales'), 'KAPPA_INVALID_ARGUMENT');
      });
    });

    describe('code', () => {
      test('code saved for a version is read back, the last save wins, and it survives reopening', async () => {
        await h.store.saveCode('sales', 1, 'export default 1;');
        await h.store.saveCode('sales', 1, 'export default 2;');
        await h.store.saveCode('sales', 2, 'export default 3;');
        assert.equal(await h.store.code('sales', 1), 'export default 2;');
        await h.reopen();
        assert.equal(await h.store.code('sales', 1), 'export default 2;');
        assert.equal(await h.store.code('sales', 2), 'export default 3;');
      });

      test('a version without saved code has none (null)', async () => {
        assert.equal(await h.store.code('sales', 1), null);
        await h.store.saveCode('sales', 1, 'export default 1;');
        assert.equal(await h.store.code('sales', 2), null);
        assert.equal(await h.store.code('other', 1), null);
      });

      test('empty code, a bad view name and a bad version are refused', async () => {
        await rejectsWith(h.store.saveCode('sales', 1, ''), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(h.store.saveCode('bad name!', 1, 'x'), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(h.store.saveCode('sales', 0, 'x'), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(h.store.code('sales', 1.5), 'KAPPA_INVALID_ARGUMENT');
        assert.equal(await h.store.code('sales', 1), null);
      });
    });

    describe('builds', () => {
      test('a build record is upserted by view and version, listed in order, and survives reopening', async () => {
        await h.store.saveBuild(build(3, 10));
        await h.store.saveBuild(build(2, 10));
        await h.store.saveBuild(build(3, 60));
        await h.store.saveBuild({ ...build(1, 0), name: 'other' });
        await h.reopen();
        assert.deepEqual(await h.store.builds(), [{ ...build(1, 0), name: 'other' }, build(2, 10), build(3, 60)]);
        await h.store.deleteBuild('sales', 2);
        await h.store.deleteBuild('sales', 9);
        assert.deepEqual(await h.store.builds(), [{ ...build(1, 0), name: 'other' }, build(3, 60)]);
      });

      test('a build record can exist before its version does, and be deleted', async () => {
        await h.store.saveBuild(build(3, 0));
        assert.deepEqual(
          (await h.store.builds()).map((b) => b.version),
          [3],
        );
        await h.store.deleteBuild('sales', 3);
        assert.deepEqual(await h.store.builds(), []);
      });
    });

    describe('build history', () => {
      const ended = (version: number, result: 'live' | 'cancelled' | 'failed', name = 'sales') => ({
        name,
        version,
        reason: 'replay' as const,
        from: 'earliest',
        change: 'none: the same logic, replayed',
        events: 100 * version,
        startedAtMs: 1000 * version,
        endedAtMs: 1000 * version + 500,
        durationMs: 500,
        result,
        message: null,
      });

      test('finished builds are listed per view, newest first, survive reopening, and are seen by another store', async () => {
        await h.store.recordBuild(ended(1, 'live'));
        await h.store.recordBuild(ended(2, 'cancelled'));
        await h.store.recordBuild(ended(1, 'live', 'other'));
        await h.store.recordBuild({ ...ended(3, 'failed'), message: 'disk full' });
        await h.reopen();
        assert.deepEqual(await h.store.buildHistory('sales'), [
          { ...ended(3, 'failed'), message: 'disk full' },
          ended(2, 'cancelled'),
          ended(1, 'live'),
        ]);
        assert.deepEqual(await h.store.buildHistory('other'), [ended(1, 'live', 'other')]);
        assert.deepEqual(await h.store.buildHistory('nothing'), []);
        const second = await h.second();
        assert.deepEqual(
          (await second.buildHistory('sales')).map((e) => e.version),
          [3, 2, 1],
        );
      });

      test(`only the newest ${BUILD_HISTORY_MAX} builds of a view are kept; a bad entry is refused and changes nothing`, async () => {
        for (let v = 1; v <= BUILD_HISTORY_MAX + 5; v++) await h.store.recordBuild(ended(v, 'live'));
        await h.store.recordBuild(ended(1, 'live', 'other'));
        const kept = (await h.store.buildHistory('sales')).map((e) => e.version);
        assert.equal(kept.length, BUILD_HISTORY_MAX);
        assert.deepEqual([kept[0], kept.at(-1)], [BUILD_HISTORY_MAX + 5, 6]);
        assert.equal((await h.store.buildHistory('other')).length, 1, "trimming one view's history leaves others");
        await rejectsWith(
          h.store.recordBuild({ ...ended(99, 'live'), result: 'done' as 'live' }),
          'KAPPA_INVALID_ARGUMENT',
        );
        await rejectsWith(h.store.recordBuild({ ...ended(99, 'live'), version: 0 }), 'KAPPA_INVALID_ARGUMENT');
        assert.equal((await h.store.buildHistory('sales'))[0].version, BUILD_HISTORY_MAX + 5);
      });
    });

    describe('requests', () => {
      test('requests are taken once, oldest first, and answered', async () => {
        assert.deepEqual(await h.store.takeRequests(), []);
        const a = await h.store.addRequest('sales', 'replay', '@2024-01-01T00:00:00.000Z');
        const b = await h.store.addRequest('sales', 'rollback', null);
        assert.ok(b > a);
        const taken = await h.store.takeRequests();
        assert.deepEqual(
          taken.map((r) => [r.id, r.view, r.action, r.from, r.state]),
          [
            [a, 'sales', 'replay', '@2024-01-01T00:00:00.000Z', 'taken'],
            [b, 'sales', 'rollback', null, 'taken'],
          ],
        );
        assert.deepEqual(await h.store.takeRequests(), [], 'a taken request is not taken again');
        await h.store.answerRequest(a, 'done', 'building version 2', 2);
        await h.store.answerRequest(b, 'failed', 'no retired version', null);
        assert.deepEqual(await h.store.request(a).then((r) => [r?.state, r?.message, r?.version]), [
          'done',
          'building version 2',
          2,
        ]);
        assert.deepEqual(await h.store.request(b).then((r) => [r?.state, r?.message, r?.version]), [
          'failed',
          'no retired version',
          null,
        ]);
        assert.equal(await h.store.request(999), null);
        await rejectsWith(h.store.addRequest('sales', 'explode' as 'replay', null), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(h.store.addRequest('bad name!', 'replay', null), 'KAPPA_INVALID_ARGUMENT');
      });

      test('two stores on the same data take each request exactly once, oldest first', async () => {
        const other = await h.second();
        const added: number[] = [];
        const taken: number[] = [];
        for (let round = 0; round < 5; round++) {
          added.push(
            await h.store.addRequest('sales', 'replay', null),
            await other.addRequest('sales', 'cancel', null),
          );
          const [mine, theirs] = await Promise.all([h.store.takeRequests(), other.takeRequests()]);
          for (const batch of [mine, theirs]) {
            const ids = batch.map((r) => r.id);
            assert.deepEqual(
              ids,
              [...ids].sort((a, b) => a - b),
              'oldest first',
            );
            assert.ok(batch.every((r) => r.state === 'taken'));
            taken.push(...ids);
          }
        }
        assert.deepEqual(
          [...taken].sort((a, b) => a - b),
          added,
          'every request taken, none twice',
        );
        assert.deepEqual(await h.store.takeRequests(), []);
        assert.deepEqual(await other.takeRequests(), []);
      });

      test('an answer is seen by another store on the same data and survives reopening', async () => {
        const id = await h.store.addRequest('sales', 'rollback', null);
        const other = await h.second();
        assert.deepEqual(
          (await other.takeRequests()).map((r) => r.id),
          [id],
        );
        await other.answerRequest(id, 'done', 'rolled back to version 1', 1);
        await h.reopen();
        const answered = await h.store.request(id);
        assert.deepEqual(
          [answered?.view, answered?.action, answered?.state, answered?.message, answered?.version],
          ['sales', 'rollback', 'done', 'rolled back to version 1', 1],
        );
        assert.equal(typeof answered?.createdAtMs, 'number');
      });
    });

    describe('forgetVersion', () => {
      test('forgetVersion removes the code and build record of that version only', async () => {
        await h.store.saveCode('sales', 1, 'export default 1;');
        await h.store.saveCode('sales', 2, 'export default 2;');
        await h.store.saveBuild(build(1, 5));
        await h.store.saveBuild(build(2, 5));
        await h.store.forgetVersion('sales', 2);
        assert.equal(await h.store.code('sales', 2), null);
        assert.equal(await h.store.code('sales', 1), 'export default 1;');
        assert.deepEqual(await h.store.builds(), [build(1, 5)]);
      });

      test('forgetVersion of a version with nothing kept changes nothing', async () => {
        await h.store.saveCode('sales', 1, 'export default 1;');
        await h.store.forgetVersion('sales', 7);
        await h.store.forgetVersion('nothing', 1);
        assert.equal(await h.store.code('sales', 1), 'export default 1;');
        assert.deepEqual(await h.store.builds(), []);
        await rejectsWith(h.store.forgetVersion('sales', 0), 'KAPPA_INVALID_ARGUMENT');
      });
    });
  });
}
