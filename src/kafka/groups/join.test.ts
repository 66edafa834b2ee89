import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUP_ERRORS as E } from './errors.ts';
import { REBALANCE_MS, ctx, harness, joinNew, joinRequest, settle, subscription, sync, watch } from './test-helpers.ts';

describe('JoinGroup', () => {
  test('v4+ with an empty member id answers MEMBER_ID_REQUIRED with a new member id, and nothing else changes', async () => {
    const h = harness();
    const r = await h.coordinator.joinGroup(joinRequest('g', ''), ctx(4, 'app-1'));
    assert.equal(r.errorCode, E.MEMBER_ID_REQUIRED);
    assert.match(r.memberId, /^app-1-[0-9a-f-]{36}$/);
    assert.equal(r.generationId, -1);
    assert.equal(r.protocolName, '', 'v4-6 say an empty protocol name, not null');
    const [described] = (await h.coordinator.describeGroups({ groups: ['g'] })).groups;
    assert.equal(described.groupState, 'Empty');
    assert.deepEqual(described.members, []);
  });

  test('the first member becomes leader of generation 1 and gets every member with its metadata', async () => {
    const h = harness();
    const a = await joinNew(h, 'g');
    await settle();
    assert.equal(a.join.done, false, 'the join waits for the initial delay');
    h.time.advance(0);
    await settle();
    const r = a.join.value;
    assert.equal(r.errorCode, E.NONE);
    assert.equal(r.generationId, 1);
    assert.equal(r.leader, a.memberId);
    assert.equal(r.protocolName, 'range');
    assert.deepEqual(r.members, [{ memberId: a.memberId, groupInstanceId: null, metadata: subscription('sales') }]);
    const [described] = (await h.coordinator.describeGroups({ groups: ['g'] })).groups;
    assert.equal(described.groupState, 'CompletingRebalance');
  });

  test('a v0-3 client joins without the member-id round trip', async () => {
    const h = harness();
    const join = watch(h.coordinator.joinGroup(joinRequest('g', ''), ctx(2)));
    h.time.advance(0);
    await settle();
    assert.equal(join.value.errorCode, E.NONE);
    assert.equal(join.value.leader, join.value.memberId);
  });

  test('the initial delay gathers members that arrive together, and is extended while they keep coming', async () => {
    const h = harness({ initialRebalanceDelayMs: 3_000 });
    const a = await joinNew(h, 'g');
    h.time.advance(2_000);
    const b = await joinNew(h, 'g');
    h.time.advance(1_000);
    await settle();
    assert.equal(a.join.done, false, 'a member joined during the delay: it is extended');
    h.time.advance(3_000);
    await settle();
    assert.equal(a.join.value.generationId, 1);
    assert.equal(b.join.value.generationId, 1);
    assert.equal(a.join.value.members.length, 2, 'one generation with both');
    assert.deepEqual(b.join.value.members, [], 'followers get no member list');
    assert.equal(b.join.value.leader, a.memberId);
  });

  test('the protocol is one every member supports, chosen by the members’ first choices', async () => {
    const h = harness({ initialRebalanceDelayMs: 100 });
    const meta = subscription('sales');
    const p = (...names: string[]) => names.map((name) => ({ name, metadata: meta }));
    const a = await joinNew(h, 'g', { protocols: p('roundrobin', 'range', 'cooperative-sticky') });
    const b = await joinNew(h, 'g', { protocols: p('cooperative-sticky', 'range') });
    const c = await joinNew(h, 'g', { protocols: p('cooperative-sticky', 'roundrobin', 'range') });
    h.time.advance(1_000);
    await settle();
    // Candidates: range and cooperative-sticky (roundrobin is missing from b). Votes: a -> range,
    // b -> cooperative-sticky, c -> cooperative-sticky.
    for (const m of [a, b, c]) assert.equal(m.join.value.protocolName, 'cooperative-sticky');
  });

  test('a member with no protocol in common, or another protocol type, is refused INCONSISTENT_GROUP_PROTOCOL', async () => {
    const h = harness();
    const a = await joinNew(h, 'g');
    h.time.advance(0);
    await settle();
    const other = await h.coordinator.joinGroup(
      joinRequest('g', '', { protocols: [{ name: 'roundrobin', metadata: subscription('sales') }] }),
      ctx(5),
    );
    assert.equal(other.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
    const connect = await h.coordinator.joinGroup(joinRequest('g', a.memberId, { protocolType: 'connect' }), ctx(5));
    assert.equal(connect.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
    const none = await h.coordinator.joinGroup(joinRequest('h', '', { protocols: [] }), ctx(5));
    assert.equal(none.errorCode, E.INCONSISTENT_GROUP_PROTOCOL, 'an empty protocol list');
  });

  test('bad requests: empty group id, session timeout out of bounds, unknown member id', async () => {
    const h = harness({ minSessionTimeoutMs: 6_000, maxSessionTimeoutMs: 60_000 });
    assert.equal((await h.coordinator.joinGroup(joinRequest('', ''), ctx(5))).errorCode, E.INVALID_GROUP_ID);
    assert.equal((await h.coordinator.joinGroup(joinRequest(null as never, ''), ctx(5))).errorCode, E.INVALID_GROUP_ID);
    for (const sessionTimeoutMs of [5_999, 60_001])
      assert.equal(
        (await h.coordinator.joinGroup(joinRequest('g', '', { sessionTimeoutMs }), ctx(5))).errorCode,
        E.INVALID_SESSION_TIMEOUT,
      );
    assert.equal((await h.coordinator.joinGroup(joinRequest('g', 'who'), ctx(5))).errorCode, E.UNKNOWN_MEMBER_ID);
    assert.deepEqual((await h.coordinator.listGroups({})).groups, [], 'no group was made');
  });

  test('a known member rejoining while the group completes its rebalance gets the generation again', async () => {
    const h = harness();
    const a = await joinNew(h, 'g');
    h.time.advance(0);
    await settle();
    const again = await h.coordinator.joinGroup(joinRequest('g', a.memberId), ctx(5));
    assert.equal(again.errorCode, E.NONE);
    assert.equal(again.generationId, 1);
    assert.equal(again.members.length, 1, 'the leader gets the members again');
  });

  test('in a Stable group a follower rejoining unchanged gets the generation at once; the leader rejoining rebalances', async () => {
    const h = harness({ initialRebalanceDelayMs: 10 });
    const a = await joinNew(h, 'g');
    const b = await joinNew(h, 'g');
    h.time.advance(100);
    await settle();
    await sync(h, 'g', a.memberId, 1, []);
    const follower = await h.coordinator.joinGroup(joinRequest('g', b.memberId), ctx(5));
    assert.deepEqual([follower.errorCode, follower.generationId, follower.leader], [E.NONE, 1, a.memberId]);
    const leader = watch(h.coordinator.joinGroup(joinRequest('g', a.memberId), ctx(5)));
    await settle();
    assert.equal(leader.done, false, 'the leader waits for the others to rejoin');
    const b2 = watch(h.coordinator.joinGroup(joinRequest('g', b.memberId), ctx(5)));
    await settle();
    assert.equal(leader.value.generationId, 2);
    assert.equal(b2.value.generationId, 2);
  });

  test('a follower whose subscription changed starts a rebalance', async () => {
    const h = harness({ initialRebalanceDelayMs: 10 });
    const a = await joinNew(h, 'g');
    const b = await joinNew(h, 'g');
    h.time.advance(100);
    await settle();
    await sync(h, 'g', a.memberId, 1, []);
    const changed = [{ name: 'range', metadata: subscription('sales', 'returns') }];
    const b2 = watch(h.coordinator.joinGroup(joinRequest('g', b.memberId, { protocols: changed }), ctx(5)));
    await settle();
    assert.equal(b2.done, false);
    assert.equal(
      h.coordinator.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId }).errorCode,
      E.REBALANCE_IN_PROGRESS,
    );
  });

  test('the rebalance completes at the rebalance timeout without the members that did not rejoin', async () => {
    const h = harness({ initialRebalanceDelayMs: 10 });
    const a = await joinNew(h, 'g');
    const b = await joinNew(h, 'g');
    h.time.advance(100);
    await settle();
    await sync(h, 'g', a.memberId, 1, []);
    const a2 = watch(h.coordinator.joinGroup(joinRequest('g', a.memberId), ctx(5)));
    // b keeps heartbeating (so its session does not expire) but never rejoins.
    for (let t = 0; t < REBALANCE_MS; t += 5_000) {
      assert.equal(
        h.coordinator.heartbeat({ groupId: 'g', generationId: 1, memberId: b.memberId }).errorCode,
        E.REBALANCE_IN_PROGRESS,
      );
      h.time.advance(5_000);
    }
    await settle();
    assert.equal(a2.value.generationId, 2);
    assert.deepEqual(
      a2.value.members.map((m) => m.memberId),
      [a.memberId],
    );
    assert.equal(
      h.coordinator.heartbeat({ groupId: 'g', generationId: 2, memberId: b.memberId }).errorCode,
      E.UNKNOWN_MEMBER_ID,
    );
  });

  test('a pending member (MEMBER_ID_REQUIRED) that never comes back is dropped after its session timeout', async () => {
    const h = harness();
    const first = await h.coordinator.joinGroup(joinRequest('g', ''), ctx(5));
    h.time.advance(10_001);
    const late = await h.coordinator.joinGroup(joinRequest('g', first.memberId), ctx(5));
    assert.equal(late.errorCode, E.UNKNOWN_MEMBER_ID);
  });

  test('past groupMaxSize a new member is refused GROUP_MAX_SIZE_REACHED', async () => {
    const h = harness({ groupMaxSize: 2, initialRebalanceDelayMs: 10 });
    await joinNew(h, 'g');
    await joinNew(h, 'g');
    h.time.advance(100);
    await settle();
    const third = await h.coordinator.joinGroup(joinRequest('g', ''), ctx(5));
    const r =
      third.errorCode === E.MEMBER_ID_REQUIRED
        ? await h.coordinator.joinGroup(joinRequest('g', third.memberId), ctx(5))
        : third;
    assert.equal(r.errorCode, E.GROUP_MAX_SIZE_REACHED);
  });

  test('member ids handed out with MEMBER_ID_REQUIRED are bounded by groupMaxSize too', async () => {
    const h = harness({ groupMaxSize: 3 });
    for (let i = 0; i < 3; i++)
      assert.equal((await h.coordinator.joinGroup(joinRequest('g', ''), ctx(5))).errorCode, E.MEMBER_ID_REQUIRED);
    assert.equal((await h.coordinator.joinGroup(joinRequest('g', ''), ctx(5))).errorCode, E.GROUP_MAX_SIZE_REACHED);
  });

  test('a JoinGroup retried by the same member answers the first one REBALANCE_IN_PROGRESS', async () => {
    const h = harness({ initialRebalanceDelayMs: 10 });
    const a = await joinNew(h, 'g');
    const again = watch(h.coordinator.joinGroup(joinRequest('g', a.memberId), ctx(5)));
    await settle();
    assert.equal(a.join.value.errorCode, E.REBALANCE_IN_PROGRESS);
    h.time.advance(100);
    await settle();
    assert.equal(again.value.generationId, 1);
  });

  test('v7+ answers an error with a null protocol name; older versions with an empty one', async () => {
    const h = harness();
    assert.equal((await h.coordinator.joinGroup(joinRequest('g', 'x'), ctx(7))).protocolName, null);
    assert.equal((await h.coordinator.joinGroup(joinRequest('g', 'x'), ctx(6))).protocolName, '');
  });
});
