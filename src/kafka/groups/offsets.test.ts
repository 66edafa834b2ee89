import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Log } from '../../log/index.ts';
import { GROUP_ERRORS as E } from './errors.ts';
import { groupLag } from './lag.ts';
import { MemoryOffsetStore } from './memory-offset-store.ts';
import { assignment, ctx, harness, joinNew, joinRequest, settle, sync, watch, type Harness } from './test-helpers.ts';
import type { OffsetCommitRequest } from './types.ts';

function commitReq(
  groupId: string,
  generationId: number,
  memberId: string,
  offsets: Record<string, number>,
  metadata: string | null = null,
): OffsetCommitRequest {
  const byTopic = new Map<
    string,
    { partitionIndex: number; committedOffset: number; committedMetadata: string | null }[]
  >();
  for (const [tp, offset] of Object.entries(offsets)) {
    const [topic, partition] = tp.split('/');
    if (!byTopic.has(topic)) byTopic.set(topic, []);
    byTopic
      .get(topic)!
      .push({ partitionIndex: Number(partition), committedOffset: offset, committedMetadata: metadata });
  }
  return {
    groupId,
    generationIdOrMemberEpoch: generationId,
    memberId,
    topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
  };
}

async function commitErrors(h: Harness, req: OffsetCommitRequest): Promise<number[]> {
  const r = await h.coordinator.offsetCommit(req);
  return r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode));
}

async function fetched(h: Harness, groupId: string, topics: { name: string; partitionIndexes: number[] }[] | null) {
  const r = await h.coordinator.offsetFetch({ groupId, topics }, ctx(5));
  assert.equal(r.errorCode, E.NONE);
  return r.topics!.flatMap((t) => t.partitions.map((p) => [`${t.name}/${p.partitionIndex}`, p.committedOffset]));
}

/** A Stable group of one member; returns its id. */
async function stableGroup(h: Harness, groupId = 'g'): Promise<string> {
  const a = await joinNew(h, groupId);
  h.time.advance(0);
  await settle();
  await sync(h, groupId, a.memberId, 1, [{ memberId: a.memberId, assignment: assignment({ sales: [0, 1] }) }]);
  return a.memberId;
}

describe('OffsetCommit', () => {
  test('a member of the current generation commits; OffsetFetch returns it and -1 where nothing was committed', async () => {
    const h = harness();
    const a = await stableGroup(h);
    assert.deepEqual(await commitErrors(h, commitReq('g', 1, a, { 'sales/0': 42, 'sales/1': 7 }, 'm')), [0, 0]);
    assert.deepEqual(await fetched(h, 'g', [{ name: 'sales', partitionIndexes: [0, 1, 2] }]), [
      ['sales/0', 42],
      ['sales/1', 7],
      ['sales/2', -1],
    ]);
    const r = await h.coordinator.offsetFetch(
      { groupId: 'g', topics: [{ name: 'sales', partitionIndexes: [0, 2] }] },
      ctx(5),
    );
    assert.deepEqual(r.topics![0].partitions, [
      { partitionIndex: 0, committedOffset: 42, committedLeaderEpoch: -1, metadata: 'm', errorCode: 0 },
      { partitionIndex: 2, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: 0 },
    ]);
    assert.deepEqual(
      await fetched(h, 'g', null),
      [
        ['sales/0', 42],
        ['sales/1', 7],
      ],
      'null topics: every committed offset',
    );
  });

  test('refused: a stale generation (ILLEGAL_GENERATION), an unknown member, a simple commit while the group has members', async () => {
    const h = harness();
    const a = await stableGroup(h);
    assert.deepEqual(await commitErrors(h, commitReq('g', 0, a, { 'sales/0': 1 })), [E.ILLEGAL_GENERATION]);
    assert.deepEqual(await commitErrors(h, commitReq('g', 1, 'who', { 'sales/0': 1 })), [E.UNKNOWN_MEMBER_ID]);
    assert.deepEqual(await commitErrors(h, commitReq('g', -1, '', { 'sales/0': 1 })), [E.UNKNOWN_MEMBER_ID]);
    assert.deepEqual(await commitErrors(h, commitReq('nope', 3, 'x', { 'sales/0': 1 })), [E.ILLEGAL_GENERATION]);
    assert.deepEqual(await commitErrors(h, { ...commitReq('g', 1, a, { 'sales/0': 1 }), groupId: null }), [
      E.INVALID_GROUP_ID,
    ]);
    assert.deepEqual(await h.offsets.committed('g'), [], 'nothing was stored');
  });

  test('REBALANCE_IN_PROGRESS while the group completes a rebalance; accepted from the current generation while it prepares one', async () => {
    const h = harness();
    const a = await joinNew(h, 'g');
    h.time.advance(0);
    await settle();
    assert.deepEqual(await commitErrors(h, commitReq('g', 1, a.memberId, { 'sales/0': 1 })), [E.REBALANCE_IN_PROGRESS]);
    await sync(h, 'g', a.memberId, 1, []);
    watch(h.coordinator.joinGroup(joinRequest('g', ''), ctx(3)));
    await settle();
    // Kafka's rule: consumers commit what they processed before they give their partitions up.
    assert.deepEqual(await commitErrors(h, commitReq('g', 1, a.memberId, { 'sales/0': 2 })), [E.NONE]);
    assert.deepEqual(await fetched(h, 'g', null), [['sales/0', 2]]);
  });

  test('simple commits (generation -1, no member id) are accepted for a group without members', async () => {
    const h = harness();
    assert.deepEqual(await commitErrors(h, commitReq('tool', -1, '', { 'sales/0': 5, 'sales/3': 9 })), [0, 0]);
    assert.deepEqual(await fetched(h, 'tool', null), [
      ['sales/0', 5],
      ['sales/3', 9],
    ]);
    const listed = await h.coordinator.listGroups({});
    assert.deepEqual(listed.groups, [{ groupId: 'tool', protocolType: '', groupState: 'Empty', groupType: 'classic' }]);
  });

  test('per partition: unknown topics or partitions, metadata over the limit; the rest is stored', async () => {
    const h = harness({
      offsetMetadataBytesMax: 10,
      partitionCount: (topic) => (topic === 'sales' ? 2 : null),
    });
    const req = commitReq('g', -1, '', { 'sales/0': 5, 'sales/2': 1, 'ghost/0': 1 });
    req.topics[0].partitions.push({ partitionIndex: 1, committedOffset: 3, committedMetadata: 'x'.repeat(11) });
    assert.deepEqual(await commitErrors(h, req), [
      E.NONE,
      E.UNKNOWN_TOPIC_OR_PARTITION,
      E.OFFSET_METADATA_TOO_LARGE,
      E.UNKNOWN_TOPIC_OR_PARTITION,
    ]);
    assert.deepEqual(await fetched(h, 'g', null), [['sales/0', 5]]);
  });

  test('a store that fails answers COORDINATOR_NOT_AVAILABLE (the client retries), and nothing is stored', async () => {
    const offsets = new MemoryOffsetStore();
    offsets.commit = async () => {
      throw new Error('disk full');
    };
    const h = harness({ offsets });
    assert.deepEqual(await commitErrors(h, commitReq('g', -1, '', { 'sales/0': 5 })), [E.COORDINATOR_NOT_AVAILABLE]);
  });
});

describe('OffsetFetch v8, DescribeGroups, ListGroups, DeleteGroups, lag', () => {
  test('OffsetFetch v8 answers several groups at once', async () => {
    const h = harness();
    await h.coordinator.offsetCommit(commitReq('a', -1, '', { 'sales/0': 1 }));
    await h.coordinator.offsetCommit(commitReq('b', -1, '', { 'sales/1': 2 }));
    const r = await h.coordinator.offsetFetch(
      {
        groups: [
          { groupId: 'a', topics: null },
          { groupId: 'b', topics: [{ name: 'sales', partitionIndexes: [0, 1] }] },
        ],
      },
      ctx(8),
    );
    assert.equal(r.topics, undefined);
    assert.deepEqual(
      r.groups!.map((g) => [
        g.groupId,
        g.errorCode,
        g.topics.flatMap((t) => t.partitions.map((p) => p.committedOffset)),
      ]),
      [
        ['a', 0, [1]],
        ['b', 0, [-1, 2]],
      ],
    );
  });

  test('DescribeGroups: a live group, one known by its offsets (Empty), an unknown one (Dead)', async () => {
    const h = harness();
    await stableGroup(h, 'live');
    await h.coordinator.offsetCommit(commitReq('old', -1, '', { 'sales/0': 1 }));
    const r = await h.coordinator.describeGroups({ groups: ['live', 'old', 'never'] });
    assert.deepEqual(
      r.groups.map((g) => [g.groupId, g.groupState, g.protocolType, g.protocolData, g.members.length]),
      [
        ['live', 'Stable', 'consumer', 'range', 1],
        ['old', 'Empty', '', '', 0],
        ['never', 'Dead', '', '', 0],
      ],
    );
    assert.equal(r.groups[0].members[0].clientHost, '/127.0.0.1');
    const stable = await h.coordinator.listGroups({ statesFilter: ['stable'] });
    assert.deepEqual(
      stable.groups.map((g) => g.groupId),
      ['live'],
    );
    assert.deepEqual((await h.coordinator.listGroups({ typesFilter: ['consumer'] })).groups, []);
  });

  test('DeleteGroups deletes an empty group’s offsets, refuses one with members, and says when there is none', async () => {
    const h = harness();
    await stableGroup(h, 'live');
    await h.coordinator.offsetCommit(commitReq('old', -1, '', { 'sales/0': 1 }));
    const r = await h.coordinator.deleteGroups(['old', 'live', 'never']);
    assert.deepEqual(r.results, [
      { groupId: 'old', errorCode: E.NONE },
      { groupId: 'live', errorCode: E.NON_EMPTY_GROUP },
      { groupId: 'never', errorCode: E.GROUP_ID_NOT_FOUND },
    ]);
    assert.deepEqual(await h.offsets.groups(), []);
  });

  test('groupLag: committed offset, end offset and lag per partition, with the owner of each partition', async () => {
    const h = harness();
    const a = await stableGroup(h, 'live');
    await h.coordinator.offsetCommit(commitReq('live', 1, a, { 'sales/0': 40, 'sales/1': 100, 'gone/0': 1 }));
    const log = {
      topics: async () => [{ name: 'sales' }],
      offsets: async (_topic: string, partition: number) => ({ start: 0, end: partition === 0 ? 100 : 90 }),
    } as unknown as Log;
    const [live] = await groupLag(h.coordinator, log);
    assert.equal(live.state, 'Stable');
    assert.equal(live.protocol, 'range');
    assert.deepEqual(
      live.partitions.map((p) => [p.topic, p.partition, p.committedOffset, p.logEndOffset, p.lag, p.owner?.memberId]),
      [
        ['sales', 0, 40, 100, 60, a],
        ['sales', 1, 100, 90, 0, a],
      ],
    );
    assert.equal(live.lag, 60);
    assert.deepEqual(live.members[0].assignment, [{ topic: 'sales', partitions: [0, 1] }]);
    const [fromStore] = await groupLag(h.offsets, log);
    assert.equal(fromStore.state, null, 'the store alone does not know the state');
    assert.equal(fromStore.lag, 60);
  });
});
