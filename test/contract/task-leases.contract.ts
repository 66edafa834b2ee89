/**
 * The `TaskLeases` contract: what every adapter must do (src/view/leases.ts states the promises),
 * written against the ports only. An adapter's test file calls `taskLeasesContract` with a factory
 * that opens fresh, empty leases on real storage, with a store on the same data whose writes take
 * a fence (`ViewStore.flush`, `ControlStore.saveOutputCheckpoint`).
 *
 * What it pins down: members and their heartbeats; `acquire` of a free task, a held one, an
 * expired lease and a dead member's task, always with a larger epoch committed before it resolves;
 * two processes racing for the same tasks (exactly one wins each); `renew`, `release` and `leave`;
 * and the fence: once another member has acquired a task, a flush or an output checkpoint under
 * the old epoch fails whole (KAPPA_FENCED) and changes nothing, and whatever the new owner reads
 * after its acquire no later write of the old owner can change.
 *
 * Lease and TTL expiry are real time (a few hundred ms): the store's clock decides, not the test's.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlStore, Member, MemberInfo, TaskLeases, ViewStore } from '../../src/view/index.ts';
import { taskId } from '../../src/view/index.ts';
import { cp, freshForEachTest, rejectsWith, sale, salesDef, snapshot } from '../../src/view/test-helpers.ts';

export interface TaskLeasesHarness {
  leases: TaskLeases;
  /** Leases on the same data, as another process opens them; `cleanup` closes them. */
  second(): Promise<TaskLeases>;
  /** A store on the same data, whose flushes and output checkpoints take a fence. */
  store: ViewStore & ControlStore;
  /** Closes whatever is open and removes the data. */
  cleanup(): Promise<void>;
}

/** Long enough never to run out during a test. */
const LONG_MS = 60_000;
/**
 * Short enough to run out within a test, long enough that two calls in a row on a loaded machine
 * come well within it (the assertions that a lease still holds depend on that).
 */
const SHORT_MS = 1_000;
/** Past SHORT_MS by the store's clock, with margin. */
const PAST_SHORT_MS = 1_500;

const member = (id: string): MemberInfo => ({
  id,
  host: 'host-1',
  pid: 1000,
  httpUrl: `http://127.0.0.1:80${id.length}`,
  startedAtMs: 1_700_000_000_000,
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const TASK = taskId('view', 'sales', 1, 'sales', 0);

/**
 * The whole suite is one function, longer than our usual limit, on purpose: node:test's describe
 * blocks nest, and every block reads the harness of the test under way from this closure.
 */
export function taskLeasesContract(name: string, open: () => Promise<TaskLeasesHarness>): void {
  describe(`TaskLeases contract: ${name}`, () => {
    let h: TaskLeasesHarness;
    let leases: TaskLeases;
    freshForEachTest(open, (opened) => {
      h = opened;
      leases = opened.leases;
    });

    /** Members a and b, live for LONG_MS. */
    async function twoMembers(): Promise<void> {
      await leases.heartbeat(member('a'), LONG_MS);
      await leases.heartbeat(member('b'), LONG_MS);
    }

    describe('members', () => {
      test('a heartbeat registers the member and lists the live members, sorted, with times from the store', async () => {
        assert.deepEqual(await leases.members(), []);
        const first = await leases.heartbeat(member('b'), LONG_MS);
        assert.deepEqual(
          first.map((m) => m.id),
          ['b'],
        );
        const both = await leases.heartbeat(member('a'), LONG_MS);
        assert.deepEqual(
          both.map((m) => [m.id, m.host, m.pid, m.httpUrl, m.startedAtMs]),
          [
            ['a', 'host-1', 1000, 'http://127.0.0.1:801', 1_700_000_000_000],
            ['b', 'host-1', 1000, 'http://127.0.0.1:801', 1_700_000_000_000],
          ],
        );
        assert.ok(both.every((m) => Number.isSafeInteger(m.heartbeatAtMs) && m.heartbeatAtMs > 0));
        const again = await leases.heartbeat(member('b'), LONG_MS);
        const b = (list: Member[]) => list.find((m) => m.id === 'b')!.heartbeatAtMs;
        assert.ok(b(again) >= b(first), 'a later heartbeat is not earlier');
      });

      test('a member whose heartbeat is older than the TTL is not live, but is still listed by members()', async () => {
        await leases.heartbeat(member('old'), SHORT_MS);
        await sleep(PAST_SHORT_MS);
        const live = await leases.heartbeat(member('new'), SHORT_MS);
        assert.deepEqual(
          live.map((m) => m.id),
          ['new'],
        );
        assert.deepEqual(
          (await leases.members()).map((m) => m.id),
          ['new', 'old'],
        );
      });

      test('leave removes the member and releases every task it owned', async () => {
        await twoMembers();
        const e1 = await leases.acquire('t1', 'a', LONG_MS);
        const e2 = await leases.acquire('t2', 'a', LONG_MS);
        await leases.acquire('t3', 'b', LONG_MS);
        await leases.leave('a');
        assert.deepEqual(
          (await leases.members()).map((m) => m.id),
          ['b'],
        );
        const rows = await leases.leases();
        assert.deepEqual(
          rows.map((l) => [l.task, l.owner, l.expiresAtMs === 0]),
          [
            ['t1', null, true],
            ['t2', null, true],
            ['t3', 'b', false],
          ],
        );
        assert.equal(await leases.acquire('t1', 'b', LONG_MS), e1! + 1);
        assert.equal(await leases.acquire('t2', 'b', LONG_MS), e2! + 1);
      });
    });

    describe('acquire', () => {
      test('a free task is acquired with a new epoch, committed: every handle on the data sees it', async () => {
        await twoMembers();
        const epoch = await leases.acquire(TASK, 'a', LONG_MS);
        assert.ok(epoch !== null && epoch >= 1);
        const other = await h.second();
        const [row] = await other.leases();
        assert.equal(row.task, TASK);
        assert.equal(row.owner, 'a');
        assert.equal(row.epoch, epoch);
        assert.ok(row.expiresAtMs > 0);
      });

      test('a task held by another live member is not acquired; its owner acquiring again gets a larger epoch', async () => {
        await twoMembers();
        const first = (await leases.acquire(TASK, 'a', LONG_MS))!;
        assert.equal(await leases.acquire(TASK, 'b', LONG_MS), null);
        assert.equal((await leases.leases())[0].owner, 'a');
        const again = (await leases.acquire(TASK, 'a', LONG_MS))!;
        assert.ok(again > first);
      });

      test('two processes racing for the same tasks: exactly one wins each, and the winner is the owner', async () => {
        await twoMembers();
        const other = await h.second();
        const tasks = Array.from({ length: 20 }, (_, i) => taskId('view', 'sales', 1, 'sales', i));
        const results = await Promise.all(
          tasks.map((t) => Promise.all([leases.acquire(t, 'a', LONG_MS), other.acquire(t, 'b', LONG_MS)])),
        );
        const rows = new Map((await leases.leases()).map((l) => [l.task, l]));
        for (const [i, [a, b]] of results.entries()) {
          assert.ok((a === null) !== (b === null), `task ${tasks[i]}: exactly one winner (a ${a}, b ${b})`);
          assert.equal(rows.get(tasks[i])?.owner, a !== null ? 'a' : 'b');
          assert.equal(rows.get(tasks[i])?.epoch, a ?? b);
        }
      });

      test('a lease that ran out is acquired by another member, with a larger epoch; the old owner’s renew reports it lost', async () => {
        await twoMembers();
        const first = (await leases.acquire(TASK, 'a', SHORT_MS))!;
        assert.equal(await leases.acquire(TASK, 'b', LONG_MS), null, 'not before the lease runs out');
        await sleep(PAST_SHORT_MS);
        const second = await leases.acquire(TASK, 'b', LONG_MS);
        assert.ok(second !== null && second > first);
        assert.deepEqual(await leases.renew('a', [{ task: TASK, epoch: first }], LONG_MS), [TASK]);
        assert.equal((await leases.leases())[0].owner, 'b');
      });

      test('the tasks of a member that stopped its heartbeats are acquired by another, even with leases left', async () => {
        await leases.heartbeat(member('a'), SHORT_MS);
        await leases.heartbeat(member('b'), LONG_MS);
        const first = (await leases.acquire(TASK, 'a', LONG_MS))!;
        assert.equal(await leases.acquire(TASK, 'b', LONG_MS), null, 'a is live at first');
        await sleep(PAST_SHORT_MS);
        const second = await leases.acquire(TASK, 'b', LONG_MS);
        assert.ok(second !== null && second > first);
      });

      test('bad arguments are refused and change nothing', async () => {
        await twoMembers();
        await rejectsWith(leases.acquire(TASK, 'a', 0), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(leases.acquire('', 'a', LONG_MS), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(leases.acquire(TASK, '', LONG_MS), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(leases.heartbeat(member('c'), -5), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(leases.renew('a', [{ task: TASK, epoch: 0 }], LONG_MS), 'KAPPA_INVALID_ARGUMENT');
        assert.deepEqual(await leases.leases(), []);
        assert.equal((await leases.members()).length, 2);
      });
    });

    describe('renew and release', () => {
      test('renew extends only the leases held at those epochs and reports the others as lost', async () => {
        await twoMembers();
        const e1 = (await leases.acquire('t1', 'a', SHORT_MS))!;
        const e2 = (await leases.acquire('t2', 'a', SHORT_MS))!;
        const lost = await leases.renew(
          'a',
          [
            { task: 't1', epoch: e1 },
            { task: 't2', epoch: e2 + 1 },
            { task: 'never', epoch: 1 },
          ],
          LONG_MS,
        );
        assert.deepEqual(lost.sort(), ['never', 't2']);
        await sleep(PAST_SHORT_MS);
        assert.equal(await leases.acquire('t1', 'b', LONG_MS), null, 't1 was renewed');
        assert.ok((await leases.acquire('t2', 'b', LONG_MS))! > e2, 't2 was not, and ran out');
        assert.deepEqual(await leases.renew('a', [], LONG_MS), []);
      });

      test('release gives a task up only for its owner at that epoch; then anyone acquires it with a larger epoch', async () => {
        await twoMembers();
        const epoch = (await leases.acquire(TASK, 'a', LONG_MS))!;
        assert.equal(await leases.release(TASK, 'b', epoch), false, 'another member does not release it');
        assert.equal(await leases.release(TASK, 'a', epoch + 1), false, 'another epoch does not release it');
        assert.equal((await leases.leases())[0].owner, 'a', 'neither another member nor another epoch releases it');
        assert.equal(await leases.release(TASK, 'a', epoch), true);
        assert.equal(await leases.release(TASK, 'a', epoch), false, 'a released task is not released twice');
        assert.deepEqual(
          (await leases.leases()).map((l) => [l.owner, l.epoch, l.expiresAtMs]),
          [[null, epoch, 0]],
        );
        assert.equal(await leases.acquire(TASK, 'b', LONG_MS), epoch + 1);
      });
    });

    describe('the fence', () => {
      test('a flush under the current epoch commits; after another member acquires the task, a flush under the old epoch fails whole', async () => {
        await twoMembers();
        const store = h.store;
        await store.ensureVersion(salesDef());
        const mine = (await leases.acquire(TASK, 'a', SHORT_MS))!;
        await store.flush('sales', 1, [sale('eu', 2024, 10)], [cp(5)], { task: TASK, epoch: mine });
        const before = { rows: await snapshot(store), cps: await store.checkpoints('sales', 1) };
        await sleep(PAST_SHORT_MS); // a's lease runs out (a long GC pause, a network split)
        const theirs = (await leases.acquire(TASK, 'b', LONG_MS))!;
        assert.ok(theirs > mine);
        const many = Array.from({ length: 2_000 }, (_, i) => sale(`r${i}`, 2024, 1));
        await rejectsWith(
          store.flush('sales', 1, [sale('eu', 2024, 5), ...many], [cp(9)], { task: TASK, epoch: mine }),
          'KAPPA_FENCED',
          new RegExp(TASK),
        );
        assert.deepEqual(await snapshot(store), before.rows, 'no row of the fenced flush was committed');
        assert.deepEqual(await store.checkpoints('sales', 1), before.cps, 'nor its checkpoint');
        // The new owner continues from that checkpoint.
        await store.flush('sales', 1, [sale('eu', 2024, 7)], [cp(9)], { task: TASK, epoch: theirs });
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(9)]);
        assert.equal((await snapshot(store))[0].total, 17);
      });

      test('an output checkpoint under an old epoch fails whole; a fence naming a task nobody acquired fails too', async () => {
        await twoMembers();
        const task = taskId('output', 'refunds', null, 'sales', 0);
        const mine = (await leases.acquire(task, 'a', LONG_MS))!;
        const save = (offset: number, epoch: number) =>
          h.store.saveOutputCheckpoint(
            'refunds',
            { topic: 'sales', partition: 0, offset, sequences: [offset] },
            { task, epoch },
          );
        await save(10, mine);
        await leases.leave('a');
        const theirs = (await leases.acquire(task, 'b', LONG_MS))!;
        await rejectsWith(save(20, mine), 'KAPPA_FENCED');
        assert.deepEqual(await h.store.outputCheckpoints('refunds'), [
          { topic: 'sales', partition: 0, offset: 10, sequences: [10] },
        ]);
        await save(20, theirs);
        await h.store.ensureVersion(salesDef());
        await rejectsWith(
          h.store.flush('sales', 1, [sale('eu', 2024, 1)], [cp(1)], { task: 'view:nobody:1:sales:0', epoch: 1 }),
          'KAPPA_FENCED',
        );
        assert.deepEqual(await snapshot(h.store), []);
      });

      test('what the new owner reads once its acquire resolves, no write of the old owner changes afterwards', async () => {
        await twoMembers();
        const outcomes: string[] = [];
        const store = h.store;
        const other = await h.second();
        await store.ensureVersion(salesDef());
        for (let round = 0; round < 5; round++) {
          const mine = (await leases.acquire(TASK, 'a', LONG_MS))!;
          const many = Array.from({ length: 3_000 }, (_, i) => sale(`r${i}`, 2024, 1));
          const next = (await store.checkpoints('sales', 1))[0]?.offset ?? 0;
          // The old owner's flush and the takeover race (b sees a as dead: it left).
          const flush = store.flush('sales', 1, many, [cp(next + 1)], { task: TASK, epoch: mine }).then(
            () => 'committed',
            (err: { code?: string }) => err.code,
          );
          await leases.leave('a');
          await leases.heartbeat(member('a'), LONG_MS);
          const theirs = await other.acquire(TASK, 'b', LONG_MS);
          assert.ok(theirs !== null && theirs > mine);
          const seen = { rows: await snapshot(store), cps: await store.checkpoints('sales', 1) };
          const outcome = await flush;
          assert.ok(['committed', 'KAPPA_FENCED'].includes(outcome ?? ''), `the old owner's flush: ${outcome}`);
          outcomes.push(outcome!);
          assert.deepEqual(await snapshot(store), seen.rows, `round ${round}: rows changed after the takeover`);
          assert.deepEqual(await store.checkpoints('sales', 1), seen.cps, `round ${round}: checkpoint moved after it`);
          await other.release(TASK, 'b', theirs);
        }
      });
    });
  });
}
