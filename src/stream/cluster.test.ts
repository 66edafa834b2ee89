import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import type { Member, MemberInfo, TaskFence, TaskId, TaskLease, TaskLeases } from '../view/index.ts';
import { Cluster, assignTasks } from './cluster.ts';
import type { Task } from './task-loop.ts';

const tasks = (n: number): string[] => Array.from({ length: n }, (_, i) => `view:v:1:sales:${i}`);
const loads = (owners: Map<string, string>): number[] => {
  const count = new Map<string, number>();
  for (const m of owners.values()) count.set(m, (count.get(m) ?? 0) + 1);
  return [...count.values()].sort((a, b) => a - b);
};

test('every task gets one member, none more than its share, the same answer in any order', () => {
  for (const [n, members] of [
    [4, ['a', 'b']],
    [9, ['a', 'b', 'c']],
    [8, ['m1', 'm2', 'm3']],
    [3, ['a', 'b', 'c', 'd', 'e']],
  ] as const) {
    for (let round = 0; round < 20; round++) {
      const ids = members.map((m) => `${m}/${round}`);
      const owners = assignTasks(tasks(n), ids);
      assert.equal(owners.size, n);
      const cap = Math.ceil(n / ids.length);
      assert.ok(Math.max(...loads(owners)) <= cap, `${n} tasks over ${ids.length}: ${loads(owners)}`);
      assert.deepEqual(assignTasks([...tasks(n)].reverse(), [...ids].reverse()), owners);
    }
  }
  assert.equal(assignTasks(tasks(3), []).size, 0);
});

test('a member joining takes about its share, and the others keep most of theirs', () => {
  let moved = 0;
  for (let round = 0; round < 20; round++) {
    const before = assignTasks(
      tasks(32),
      ['a', 'b', 'c'].map((m) => `${m}/${round}`),
    );
    const after = assignTasks(
      tasks(32),
      ['a', 'b', 'c', 'd'].map((m) => `${m}/${round}`),
    );
    for (const [t, m] of after) if (before.get(t) !== m) moved++;
  }
  // A quarter of the tasks must move to the newcomer; bounded loads move a few more.
  assert.ok(moved / 20 <= 16, `${moved / 20} of 32 tasks moved on average`);
});

/** Leases in memory, for one process: enough for the cluster's own bookkeeping. */
class MemoryLeases implements TaskLeases {
  readonly owners = new Map<TaskId, { owner: string; epoch: number }>();
  private epochs = 0;
  async heartbeat(member: MemberInfo, ttlMs: number): Promise<Member[]> {
    return [{ ...member, heartbeatAtMs: Date.now(), ttlMs, live: true }];
  }
  async leave(): Promise<void> {
    this.owners.clear();
  }
  async acquire(task: TaskId, memberId: string): Promise<number | null> {
    const held = this.owners.get(task);
    if (held !== undefined && held.owner !== memberId) return null;
    const epoch = ++this.epochs;
    this.owners.set(task, { owner: memberId, epoch });
    return epoch;
  }
  async renew(memberId: string, held: readonly TaskFence[]): Promise<TaskId[]> {
    return held.filter((f) => this.owners.get(f.task)?.epoch !== f.epoch).map((f) => f.task);
  }
  async release(task: TaskId, memberId: string, epoch: number): Promise<boolean> {
    const held = this.owners.get(task);
    if (held?.owner !== memberId || held.epoch !== epoch) return false;
    this.owners.delete(task);
    return true;
  }
  async leases(): Promise<TaskLease[]> {
    return [];
  }
  async members(): Promise<Member[]> {
    return [];
  }
}

/** A one-process cluster over MemoryLeases whose candidates open with `open(id)`; it stops when `t` ends. */
async function startCluster(
  t: { after(fn: () => Promise<void>): void },
  ids: string[],
  open: (id: string) => Promise<void>,
  leases = new MemoryLeases(),
): Promise<{ leases: MemoryLeases; started: string[]; cluster: Cluster; warnings: string[] }> {
  const started: string[] = [];
  const warnings: string[] = [];
  const cluster = new Cluster(
    {
      leases,
      member: { id: 'm1', host: 'h', pid: 1, httpUrl: null, startedAtMs: 0 } as MemberInfo,
      heartbeatMs: 20,
    },
    {
      log: null as unknown as Log,
      logger: { info() {}, warn: (m: string) => warnings.push(m) },
      candidates: async () =>
        ids.map((id) => ({
          id,
          open: async () => {
            await open(id);
            return { id } as unknown as Task;
          },
        })),
      start: (opened) => started.push((opened as unknown as { id: string }).id),
      handOver: async () => {},
      drop: async () => {},
      afterRebalance: async () => {},
      fail: (err) => assert.fail(err),
    },
  );
  await cluster.join();
  cluster.start();
  t.after(() => cluster.stop(false));
  return { leases, started, cluster, warnings };
}

async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

const unreachable = (): KappaError => new KappaError('KAPPA_STORE_UNAVAILABLE', 'the store is out of reach');

test('a task whose opening fails (the store out of reach) gives its lease back and is opened again by a later tick', async (t) => {
  const task = 'view:v:1:sales:0';
  let failures = 1;
  const { leases, started, cluster } = await startCluster(t, [task], async () => {
    if (failures-- > 0) throw unreachable();
  });
  await until(() => started.length > 0);
  assert.deepEqual(started, [task], 'opened on a later tick');
  assert.equal(leases.owners.get(task)?.owner, 'm1');
  assert.deepEqual(
    cluster.fences.map((f) => f.task),
    [task],
  );
});

test('a task that keeps failing to open does not keep the others from opening', async (t) => {
  const ids = ['view:v:1:sales:0', 'view:v:1:sales:1', 'view:v:1:sales:2'];
  const { leases, started } = await startCluster(t, ids, async (id) => {
    if (id === ids[0]) throw unreachable();
  });
  await until(() => started.length === 2);
  await new Promise((r) => setTimeout(r, 100)); // a few more ticks
  assert.deepEqual(started.sort(), ids.slice(1));
  assert.equal(leases.owners.has(ids[0]), false, 'the failing task holds no lease between tries');
});

test('a task handed over after another process took its lease (this one was paused) says it moved', async (t) => {
  const ids = ['view:v:1:sales:0', 'view:v:1:sales:1'];
  // The renewal that would notice first is held back: the rebalance, which gives the task up, finds out.
  const leases = new (class extends MemoryLeases {
    override async renew(): Promise<TaskId[]> {
      return [];
    }
  })();
  const { started, warnings } = await startCluster(t, ids, async () => {}, leases);
  await until(() => started.length === 2);
  leases.owners.set(ids[0], { owner: 'm2', epoch: 99 });
  ids.splice(0, 1); // its version is gone: the next rebalance gives it up
  await until(() => warnings.length > 0);
  assert.match(warnings.join('\n'), /task view:v:1:sales:0 moved to another process/);
  assert.equal(leases.owners.get('view:v:1:sales:0')?.owner, 'm2', 'the other process keeps it');
});
