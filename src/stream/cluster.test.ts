import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignTasks } from './cluster.ts';

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
