import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { defer, tempDir } from '../../../test/support/cleanup.ts';
import { openSqliteStore } from '../../view/sqlite/index.ts';
import { assignedPartitions, subscribedTopics } from './consumer-protocol.ts';
import { GroupCoordinator } from './coordinator.ts';
import { GROUP_ERRORS as E } from './errors.ts';
import { ManualTime } from './time.ts';
import {
  type Harness,
  assignment,
  ctx,
  harness,
  heartbeat,
  joinNew,
  joinRequest,
  settle,
  subscription,
  sync,
  watch,
} from './test-helpers.ts';
import type { JoinGroupResponse } from './types.ts';

/** What a range assignor in the leader does: each member a contiguous share of `partitions` of `topic`. */
function rangeAssign(members: JoinGroupResponse['members'], topic: string, partitions: number) {
  const ids = members.map((m) => m.memberId).sort();
  const each = Math.floor(partitions / ids.length);
  const extra = partitions % ids.length;
  let next = 0;
  return ids.map((memberId, i) => {
    const n = each + (i < extra ? 1 : 0);
    const mine = Array.from({ length: n }, (_, j) => next + j);
    next += n;
    return { memberId, assignment: assignment({ [topic]: mine }) };
  });
}

function commit(h: Harness, generationId: number, memberId: string, partition: number, offset: number) {
  return h.coordinator
    .offsetCommit({
      groupId: 'g',
      generationIdOrMemberEpoch: generationId,
      memberId,
      topics: [
        {
          name: 'sales',
          partitions: [{ partitionIndex: partition, committedOffset: offset, committedMetadata: null }],
        },
      ],
    })
    .then((r) => r.topics[0].partitions[0].errorCode);
}

describe('a consumer group over its life', () => {
  test('three members join, the leader assigns, one dies, the other two rebalance into generation 2, stale commits are refused', async () => {
    const h = harness();
    const members = [await joinNew(h, 'g'), await joinNew(h, 'g'), await joinNew(h, 'g')];
    h.time.advance(0);
    await settle();
    const [a, b, c] = members.map((m) => m.memberId);
    const leaderJoin = members[0].join.value;
    assert.equal(leaderJoin.generationId, 1);
    assert.equal(leaderJoin.leader, a);
    assert.deepEqual(
      leaderJoin.members.map((m) => subscribedTopics(m.metadata)),
      [['sales'], ['sales'], ['sales']],
      'the leader gets every member’s subscription',
    );
    const plan = rangeAssign(leaderJoin.members, 'sales', 6);
    const followers = [await sync(h, 'g', b, 1), await sync(h, 'g', c, 1)];
    const leader = await sync(h, 'g', a, 1, plan);
    const got = [leader, ...followers].map((s) => assignedPartitions(s.value.assignment));
    assert.deepEqual(got.flatMap((tp) => tp![0].partitions).sort(), [0, 1, 2, 3, 4, 5], 'every partition once');
    for (const [i, id] of [a, b, c].entries()) assert.equal(await commit(h, 1, id, i, 10 * (i + 1)), E.NONE);

    // c dies: it stops heartbeating. a and b heartbeat every 3 s.
    let rebalancing = false;
    for (let t = 0; t < 12 && !rebalancing; t++) {
      h.time.advance(3_000);
      rebalancing = heartbeat(h, 'g', a, 1) === E.REBALANCE_IN_PROGRESS;
      assert.notEqual(heartbeat(h, 'g', b, 1), E.UNKNOWN_MEMBER_ID);
    }
    assert.ok(rebalancing, 'a learns of the rebalance from its heartbeat');
    assert.equal(heartbeat(h, 'g', c, 1), E.UNKNOWN_MEMBER_ID, 'c was removed at its session timeout');

    const a2 = watch(h.coordinator.joinGroup(joinRequest('g', a), ctx(5)));
    const b2 = watch(h.coordinator.joinGroup(joinRequest('g', b), ctx(5)));
    await settle();
    assert.equal(a2.value.generationId, 2);
    assert.equal(b2.value.generationId, 2);
    assert.equal(a2.value.members.length, 2);
    const followerB = await sync(h, 'g', b, 2);
    const plan2 = rangeAssign(a2.value.members, 'sales', 6);
    await sync(h, 'g', a, 2, plan2);
    assert.deepEqual(followerB.value.assignment, plan2.find((p) => p.memberId === b)!.assignment);
    assert.equal(
      assignedPartitions(followerB.value.assignment)![0].partitions.length,
      3,
      'half of the partitions each',
    );

    // Stale commits: c (gone) and b with the old generation; nothing they say is stored.
    assert.equal(await commit(h, 1, c, 2, 999), E.UNKNOWN_MEMBER_ID);
    assert.equal(await commit(h, 1, b, 1, 999), E.ILLEGAL_GENERATION);
    assert.equal(await commit(h, 2, b, 4, 50), E.NONE);
    assert.deepEqual(
      (await h.offsets.committed('g')).map((o) => [o.partition, o.offset]),
      [
        [0, 10],
        [1, 20],
        [2, 30],
        [4, 50],
      ],
    );
  });

  test('cooperative-sticky: the members rejoin a second time after revoking, and the group settles', async () => {
    const h = harness();
    const coop = { protocols: [{ name: 'cooperative-sticky', metadata: subscription('sales') }] };
    const a = await joinNew(h, 'g', coop);
    h.time.advance(0);
    await settle();
    await sync(h, 'g', a.memberId, 1, [{ memberId: a.memberId, assignment: assignment({ sales: [0, 1, 2, 3] }) }]);
    // b joins: round one. The leader keeps b's share out of everyone's assignment (it is still a's).
    const b = await joinNew(h, 'g', coop);
    assert.equal(heartbeat(h, 'g', a.memberId, 1), E.REBALANCE_IN_PROGRESS);
    const a2 = watch(h.coordinator.joinGroup(joinRequest('g', a.memberId, coop), ctx(5)));
    await settle();
    assert.equal(a2.value.generationId, 2);
    assert.equal(a2.value.protocolName, 'cooperative-sticky');
    const bSync = await sync(h, 'g', b.memberId, 2);
    await sync(h, 'g', a.memberId, 2, [
      { memberId: a.memberId, assignment: assignment({ sales: [0, 1] }) },
      { memberId: b.memberId, assignment: assignment({}) },
    ]);
    assert.deepEqual(assignedPartitions(bSync.value.assignment), []);
    // Round two: a revoked partitions 2 and 3, so it rejoins at once; b follows on its heartbeat.
    const a3 = watch(h.coordinator.joinGroup(joinRequest('g', a.memberId, coop), ctx(5)));
    await settle();
    assert.equal(heartbeat(h, 'g', b.memberId, 2), E.REBALANCE_IN_PROGRESS);
    const b3 = watch(h.coordinator.joinGroup(joinRequest('g', b.memberId, coop), ctx(5)));
    await settle();
    assert.deepEqual([a3.value.generationId, b3.value.generationId], [3, 3]);
    const bSync3 = await sync(h, 'g', b.memberId, 3);
    await sync(h, 'g', a.memberId, 3, [
      { memberId: a.memberId, assignment: assignment({ sales: [0, 1] }) },
      { memberId: b.memberId, assignment: assignment({ sales: [2, 3] }) },
    ]);
    assert.deepEqual(assignedPartitions(bSync3.value.assignment), [{ topic: 'sales', partitions: [2, 3] }]);
    assert.equal(heartbeat(h, 'g', a.memberId, 3), E.NONE);
    assert.equal(heartbeat(h, 'g', b.memberId, 3), E.NONE);
  });

  test('offsets committed through the coordinator survive a restart (real SQLite store, a new coordinator)', async (t) => {
    const path = join(tempDir(t, 'kappa-groups-'), 'views.db');
    const first = await openSqliteStore({ path });
    const time = new ManualTime();
    let coordinator = new GroupCoordinator({ offsets: first.consumerOffsets, time, initialRebalanceDelayMs: 0 });
    const h1: Harness = { coordinator, time, offsets: null as never };
    const m = await joinNew(h1, 'g');
    time.advance(0);
    await settle();
    await sync(h1, 'g', m.memberId, 1, []);
    assert.equal(await commit(h1, 1, m.memberId, 0, 1234), E.NONE);
    coordinator.close();
    await first.close();

    const second = await openSqliteStore({ path });
    defer(t, () => second.close());
    coordinator = new GroupCoordinator({ offsets: second.consumerOffsets, time, initialRebalanceDelayMs: 0 });
    const h2: Harness = { coordinator, time, offsets: null as never };
    assert.equal(heartbeat(h2, 'g', m.memberId, 1), E.UNKNOWN_MEMBER_ID, 'membership is not kept: the member rejoins');
    const r = await coordinator.offsetFetch(
      { groupId: 'g', topics: [{ name: 'sales', partitionIndexes: [0] }] },
      ctx(7),
    );
    assert.equal(r.topics![0].partitions[0].committedOffset, 1234);
    const [described] = (await coordinator.describeGroups({ groups: ['g'] })).groups;
    assert.equal(described.groupState, 'Empty');
    coordinator.close();
  });
});
