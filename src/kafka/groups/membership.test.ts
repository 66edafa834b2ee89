import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUP_ERRORS as E } from './errors.ts';
import {
  SESSION_MS,
  assignment,
  ctx,
  harness,
  heartbeat,
  joinNew,
  joinRequest,
  settle,
  sync,
  watch,
  type Harness,
} from './test-helpers.ts';
import type { JoinGroupRequest } from './types.ts';

/** Two members a (leader) and b in generation 1, CompletingRebalance. */
async function twoMembers(h: Harness, over: Partial<JoinGroupRequest> = {}): Promise<{ a: string; b: string }> {
  const a = await joinNew(h, 'g', over);
  const b = await joinNew(h, 'g', over);
  h.time.advance(0);
  await settle();
  assert.equal(a.join.value.generationId, 1);
  return { a: a.memberId, b: b.memberId };
}

async function state(h: Harness, group = 'g'): Promise<string> {
  return (await h.coordinator.describeGroups({ groups: [group] })).groups[0].groupState;
}

describe('SyncGroup', () => {
  test('followers wait for the leader; the leader’s assignment reaches every member and the group is Stable', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    const follower = await sync(h, 'g', b, 1);
    assert.equal(follower.done, false, 'the follower waits for the leader');
    assert.equal(await state(h), 'CompletingRebalance');
    const leader = await sync(h, 'g', a, 1, [
      { memberId: a, assignment: assignment({ sales: [0, 1] }) },
      { memberId: b, assignment: assignment({ sales: [2] }) },
      { memberId: 'stranger', assignment: assignment({ sales: [3] }) },
    ]);
    assert.deepEqual(leader.value.assignment, assignment({ sales: [0, 1] }));
    assert.equal(leader.value.protocolName, 'range');
    assert.equal(leader.value.protocolType, 'consumer');
    assert.deepEqual(follower.value.assignment, assignment({ sales: [2] }));
    assert.equal(await state(h), 'Stable');
    const described = (await h.coordinator.describeGroups({ groups: ['g'] })).groups[0];
    assert.equal(described.protocolData, 'range');
    assert.deepEqual(
      described.members.map((m) => m.memberAssignment),
      [assignment({ sales: [0, 1] }), assignment({ sales: [2] })],
    );
    // Once Stable, a SyncGroup returns the member's assignment at once.
    assert.deepEqual((await sync(h, 'g', b, 1)).value.assignment, assignment({ sales: [2] }));
  });

  test('a member the leader left out gets an empty assignment', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    const follower = await sync(h, 'g', b, 1);
    await sync(h, 'g', a, 1, [{ memberId: a, assignment: assignment({ sales: [0] }) }]);
    assert.equal(follower.value.errorCode, E.NONE);
    assert.equal(follower.value.assignment.length, 0);
  });

  test('refusals: stale generation, unknown member, wrong protocol name, during the join phase, unknown group', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    assert.equal((await sync(h, 'g', a, 0)).value.errorCode, E.ILLEGAL_GENERATION);
    assert.equal((await sync(h, 'g', 'who', 1)).value.errorCode, E.UNKNOWN_MEMBER_ID);
    assert.equal((await sync(h, 'nope', a, 1)).value.errorCode, E.UNKNOWN_MEMBER_ID);
    assert.equal((await sync(h, '', a, 1)).value.errorCode, E.INVALID_GROUP_ID);
    const wrong = await h.coordinator.syncGroup(
      {
        groupId: 'g',
        generationId: 1,
        memberId: a,
        protocolType: 'consumer',
        protocolName: 'roundrobin',
        assignments: [],
      },
      ctx(5),
    );
    assert.equal(wrong.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
    // A new member starts a rebalance: a follower waiting for the leader is told to rejoin.
    const waiting = await sync(h, 'g', b, 1);
    const c = await joinNew(h, 'g');
    await settle();
    assert.equal(waiting.value.errorCode, E.REBALANCE_IN_PROGRESS);
    assert.equal((await sync(h, 'g', a, 1)).value.errorCode, E.REBALANCE_IN_PROGRESS);
    assert.equal(c.join.done, false);
  });

  test('a leader that never sends SyncGroup is removed after the rebalance timeout and the rest rebalance', async () => {
    const h = harness();
    // A rebalance timeout shorter than the session: the sync deadline, not the session, removes the leader.
    const { a, b } = await twoMembers(h, { rebalanceTimeoutMs: 5_000 });
    const follower = await sync(h, 'g', b, 1);
    h.time.advance(4_000);
    assert.equal(heartbeat(h, 'g', a, 1), E.NONE, 'heartbeats are fine while the rebalance completes');
    h.time.advance(1_000);
    await settle();
    assert.equal(follower.value.errorCode, E.REBALANCE_IN_PROGRESS);
    assert.equal(heartbeat(h, 'g', a, 1), E.UNKNOWN_MEMBER_ID);
    assert.equal(await state(h), 'PreparingRebalance');
    const rejoin = watch(h.coordinator.joinGroup(joinRequest('g', b), ctx(5)));
    await settle();
    assert.deepEqual([rejoin.value.generationId, rejoin.value.leader], [2, b]);
  });
});

describe('Heartbeat', () => {
  test('answers NONE when Stable, REBALANCE_IN_PROGRESS while preparing one, and refuses stale or unknown members', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    await sync(h, 'g', b, 1);
    await sync(h, 'g', a, 1, []);
    assert.equal(heartbeat(h, 'g', a, 1), E.NONE);
    assert.equal(heartbeat(h, 'g', a, 0), E.ILLEGAL_GENERATION);
    assert.equal(heartbeat(h, 'g', 'who', 1), E.UNKNOWN_MEMBER_ID);
    assert.equal(heartbeat(h, 'nope', a, 1), E.UNKNOWN_MEMBER_ID);
    assert.equal(heartbeat(h, '', a, 1), E.INVALID_GROUP_ID);
    watch(h.coordinator.joinGroup(joinRequest('g', a), ctx(5)));
    await settle();
    assert.equal(heartbeat(h, 'g', b, 1), E.REBALANCE_IN_PROGRESS);
  });

  test('a member that stops heartbeating is removed after its session timeout and the group rebalances', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    await sync(h, 'g', b, 1);
    await sync(h, 'g', a, 1, []);
    h.time.advance(SESSION_MS - 1);
    assert.equal(heartbeat(h, 'g', a, 1), E.NONE);
    h.time.advance(SESSION_MS - 1);
    assert.equal(heartbeat(h, 'g', b, 1), E.UNKNOWN_MEMBER_ID, 'b stopped heartbeating and was removed');
    assert.equal(heartbeat(h, 'g', a, 1), E.REBALANCE_IN_PROGRESS, 'a heartbeated in time, and must rejoin');
    const rejoin = watch(h.coordinator.joinGroup(joinRequest('g', a), ctx(5)));
    await settle();
    assert.deepEqual([rejoin.value.generationId, rejoin.value.members.length], [2, 1]);
  });
});

describe('LeaveGroup', () => {
  test('v0-2: one member leaves; the group rebalances; an unknown member is refused', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    await sync(h, 'g', b, 1);
    await sync(h, 'g', a, 1, []);
    const left = h.coordinator.leaveGroup({ groupId: 'g', memberId: b }, ctx(1));
    assert.deepEqual(left, { throttleTimeMs: 0, errorCode: E.NONE, members: [] });
    assert.equal(heartbeat(h, 'g', a, 1), E.REBALANCE_IN_PROGRESS);
    assert.equal(h.coordinator.leaveGroup({ groupId: 'g', memberId: b }, ctx(1)).errorCode, E.UNKNOWN_MEMBER_ID);
    assert.equal(h.coordinator.leaveGroup({ groupId: '', memberId: b }, ctx(1)).errorCode, E.INVALID_GROUP_ID);
  });

  test('v3+: a batch, each member with its own answer; the last one leaving empties the group', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    const left = h.coordinator.leaveGroup(
      { groupId: 'g', members: [{ memberId: a }, { memberId: 'who' }, { memberId: b, groupInstanceId: null }] },
      ctx(3),
    );
    assert.deepEqual(left.members, [
      { memberId: a, groupInstanceId: null, errorCode: E.NONE },
      { memberId: 'who', groupInstanceId: null, errorCode: E.UNKNOWN_MEMBER_ID },
      { memberId: b, groupInstanceId: null, errorCode: E.NONE },
    ]);
    assert.equal(left.errorCode, E.NONE);
    assert.equal(await state(h), 'Dead', 'an empty group without offsets is forgotten');
  });

  test('a member leaving while another waits in JoinGroup lets the rebalance complete without it', async () => {
    const h = harness();
    const { a, b } = await twoMembers(h);
    await sync(h, 'g', b, 1);
    await sync(h, 'g', a, 1, []);
    const rejoin = watch(h.coordinator.joinGroup(joinRequest('g', a), ctx(5)));
    await settle();
    assert.equal(rejoin.done, false);
    h.coordinator.leaveGroup({ groupId: 'g', members: [{ memberId: b }] }, ctx(3));
    await settle();
    assert.deepEqual([rejoin.value.generationId, rejoin.value.members.length], [2, 1]);
  });
});

describe('static membership', () => {
  test('a returning instance takes its old place under a new id; the old id is fenced', async () => {
    const h = harness();
    const a = watch(h.coordinator.joinGroup(joinRequest('g', '', { groupInstanceId: 'pod-a' }), ctx(5)));
    const b = watch(h.coordinator.joinGroup(joinRequest('g', '', { groupInstanceId: 'pod-b' }), ctx(5)));
    h.time.advance(0);
    await settle();
    assert.equal(a.value.errorCode, E.NONE, 'static members need no MEMBER_ID_REQUIRED round trip');
    const oldB = b.value.memberId;
    await sync(h, 'g', oldB, 1);
    await sync(h, 'g', a.value.memberId, 1, [{ memberId: oldB, assignment: assignment({ sales: [1] }) }]);
    // pod-b restarts: it joins with no member id and the same instance id.
    const back = await h.coordinator.joinGroup(joinRequest('g', '', { groupInstanceId: 'pod-b' }), ctx(5));
    assert.equal(back.errorCode, E.NONE);
    assert.notEqual(back.memberId, oldB);
    assert.equal(back.generationId, 1, 'no rebalance: the group did not change');
    assert.equal(await state(h), 'Stable');
    assert.deepEqual((await sync(h, 'g', back.memberId, 1)).value.assignment, assignment({ sales: [1] }));
    const fenced = h.coordinator.heartbeat({ groupId: 'g', generationId: 1, memberId: oldB, groupInstanceId: 'pod-b' });
    assert.equal(fenced.errorCode, E.FENCED_INSTANCE_ID);
    const commit = await h.coordinator.offsetCommit({
      groupId: 'g',
      generationIdOrMemberEpoch: 1,
      memberId: oldB,
      groupInstanceId: 'pod-b',
      topics: [{ name: 'sales', partitions: [{ partitionIndex: 1, committedOffset: 5, committedMetadata: null }] }],
    });
    assert.equal(commit.topics[0].partitions[0].errorCode, E.FENCED_INSTANCE_ID);
    // An administrator removes a static member by its instance id.
    const removed = h.coordinator.leaveGroup(
      { groupId: 'g', members: [{ memberId: '', groupInstanceId: 'pod-b' }] },
      ctx(3),
    );
    assert.equal(removed.members[0].errorCode, E.NONE);
    assert.equal(await state(h), 'PreparingRebalance');
  });
});
