/**
 * Every version of every API the listener advertises is served: clients pick the highest version
 * both sides know, so a version in an advertised range that fails would break some client. For
 * each (API, version) a request with real content (a topic, a batch, a group) is sent and its
 * answer must decode in that version with no error where none is expected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBatch } from '../../log/index.ts';
import { API_KEYS, type Body, ERRORS } from '../protocol/index.ts';
import { RawClient, openListener } from './test-helpers.ts';
import { topicIdOf } from './topic-ids.ts';

const K = API_KEYS;
type Owner = Parameters<typeof RawClient.connect>[0];

function batch(): Buffer {
  return encodeBatch([{ key: 'k', value: 'v', timestamp: Date.now() }], { baseOffset: 0 });
}

/** A request body per API for version `v`, and a check of its answer. */
const CASES: Record<number, (v: number) => { body: object; check?: (answer: Body, v: number) => void }> = {
  [K.ApiVersions]: () => ({
    body: { clientSoftwareName: 'sweep', clientSoftwareVersion: '1' },
    check: (a) => assert.equal(a.errorCode, 0),
  }),
  [K.Metadata]: (v) => ({
    body: {
      topics: [{ name: 'sweep', topicId: '00000000-0000-0000-0000-000000000000' }],
      allowAutoTopicCreation: false,
    },
    check: (a) => {
      assert.equal(a.topics[0].errorCode, 0);
      assert.equal(a.topics[0].partitions.length, 2);
      assert.equal(a.brokers[0].nodeId, 0);
      if (v >= 10) assert.notEqual(a.topics[0].topicId, '00000000-0000-0000-0000-000000000000');
    },
  }),
  [K.Produce]: () => ({
    body: {
      transactionalId: null,
      acks: -1,
      timeoutMs: 1000,
      topicData: [{ name: 'sweep', partitionData: [{ index: 0, records: batch() }] }],
    },
    check: (a) => assert.equal(a.responses[0].partitionResponses[0].errorCode, 0),
  }),
  [K.Fetch]: () => ({
    body: {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic: 'sweep',
          topicId: topicIdOf('sweep'),
          partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    },
    check: (a) => {
      const p = a.responses[0].partitions[0];
      assert.equal(p.errorCode, 0);
      assert.ok(p.records.length > 0, 'records returned');
    },
  }),
  [K.ListOffsets]: () => ({
    body: {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: 'sweep', partitions: [{ partitionIndex: 0, timestamp: -1 }] }],
    },
    check: (a) => {
      assert.equal(a.topics[0].partitions[0].errorCode, 0);
      assert.ok(a.topics[0].partitions[0].offset > 0);
    },
  }),
  [K.FindCoordinator]: () => ({
    body: { key: 'g', keyType: 0, coordinatorKeys: ['g'] },
    check: (a, v) => assert.equal(v >= 4 ? a.coordinators[0].errorCode : a.errorCode, 0),
  }),
  [K.InitProducerId]: () => ({
    body: { transactionalId: null, transactionTimeoutMs: 1000, producerId: -1, producerEpoch: -1 },
    check: (a) => {
      assert.equal(a.errorCode, 0);
      assert.ok(a.producerId >= 2 ** 52);
    },
  }),
  [K.CreateTopics]: (v) => ({
    body: {
      topics: [{ name: `made-${v}`, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 1000,
    },
    check: (a) => assert.equal(a.topics[0].errorCode, 0),
  }),
  [K.DeleteTopics]: (v) => ({
    body: {
      topicNames: [`made-${v}`],
      topics: [{ name: `made-${v}`, topicId: '00000000-0000-0000-0000-000000000000' }],
      timeoutMs: 1000,
    },
    check: (a) => assert.equal(a.responses[0].errorCode, 0),
  }),
  [K.DescribeConfigs]: () => ({
    body: { resources: [{ resourceType: 2, resourceName: 'sweep', configurationKeys: null }] },
    check: (a) => {
      assert.equal(a.results[0].errorCode, 0);
      assert.ok(a.results[0].configs.some((c: { name: string }) => c.name === 'retention.ms'));
    },
  }),
  [K.SaslHandshake]: () => ({ body: { mechanism: 'PLAIN' }, check: (a) => assert.equal(a.errorCode, 0) }),
  [K.JoinGroup]: (v) => ({
    body: {
      groupId: `join-${v}`,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0]) }],
    },
    check: (a, ver) => assert.equal(a.errorCode, ver >= 4 ? ERRORS.MEMBER_ID_REQUIRED : 0),
  }),
  [K.SyncGroup]: () => ({
    body: { groupId: 'nobody', generationId: 1, memberId: 'm', groupInstanceId: null, assignments: [] },
    check: (a) => assert.equal(a.errorCode, ERRORS.UNKNOWN_MEMBER_ID),
  }),
  [K.Heartbeat]: () => ({
    body: { groupId: 'nobody', generationId: 1, memberId: 'm', groupInstanceId: null },
    check: (a) => assert.equal(a.errorCode, ERRORS.UNKNOWN_MEMBER_ID),
  }),
  [K.LeaveGroup]: () => ({
    body: { groupId: 'nobody', memberId: 'm', members: [{ memberId: 'm', groupInstanceId: null }] },
  }),
  [K.OffsetCommit]: () => ({
    body: {
      groupId: 'simple',
      generationIdOrMemberEpoch: -1,
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [
        {
          name: 'sweep',
          partitions: [
            {
              partitionIndex: 0,
              committedOffset: 1,
              committedLeaderEpoch: -1,
              commitTimestamp: -1,
              committedMetadata: null,
            },
          ],
        },
      ],
    },
    check: (a) => assert.equal(a.topics[0].partitions[0].errorCode, 0),
  }),
  [K.OffsetFetch]: (v) => ({
    body:
      v >= 8
        ? { groups: [{ groupId: 'simple', topics: [{ name: 'sweep', partitionIndexes: [0] }] }], requireStable: false }
        : { groupId: 'simple', topics: [{ name: 'sweep', partitionIndexes: [0] }], requireStable: false },
    check: (a, ver) => {
      const topics = ver >= 8 ? a.groups[0].topics : a.topics;
      assert.equal(topics[0].partitions[0].committedOffset, 1);
    },
  }),
  [K.DescribeGroups]: () => ({
    body: { groups: ['simple'], includeAuthorizedOperations: false },
    check: (a) => assert.equal(a.groups[0].errorCode, 0),
  }),
  [K.ListGroups]: () => ({ body: { statesFilter: [], typesFilter: [] }, check: (a) => assert.equal(a.errorCode, 0) }),
  // A group nobody has used: Kafka answers GROUP_ID_NOT_FOUND, as does Kappa.
  [K.DeleteGroups]: () => ({
    body: { groupsNames: ['never-used'] },
    check: (a) => assert.deepEqual(a.results, [{ groupId: 'never-used', errorCode: 69 }]),
  }),
};

async function sweep(t: Owner, port: number, apiKey: number, v: number): Promise<void> {
  const c = await RawClient.connect(t, port);
  const { body, check } = CASES[apiKey](v);
  const answer = await c.request(apiKey, v, body);
  check?.(answer, v);
  c.socket.destroy();
}

test('every version of every API in ApiVersions is answered, in that version', { timeout: 120_000 }, async (t) => {
  const { log, listener, warnings } = await openListener(t, { withGroups: true });
  await log.createTopic('sweep', { partitions: 2 });
  const c = await RawClient.connect(t, listener.port);
  const { apiKeys } = await c.request(K.ApiVersions, 3, { clientSoftwareName: 'sweep', clientSoftwareVersion: '1' });
  const served: string[] = [];
  for (const { apiKey, minVersion, maxVersion } of apiKeys) {
    if (apiKey === K.SaslAuthenticate) continue;
    assert.ok(CASES[apiKey], `a case for API ${apiKey}`);
    for (let v = minVersion; v <= maxVersion; v++) {
      await sweep(t, listener.port, apiKey, v).catch((err) => {
        throw new Error(`API ${apiKey} v${v}: ${(err as Error).message} ${warnings.join('\n')}`, { cause: err });
      });
      served.push(`${apiKey}:${v}`);
    }
  }
  assert.ok(served.length > 100, `${served.length} versions answered`);
  // SaslAuthenticate follows a SaslHandshake v1 on its connection.
  for (let v = 0; v <= 2; v++) {
    const s = await RawClient.connect(t, listener.port);
    assert.equal((await s.request(K.SaslHandshake, 1, { mechanism: 'PLAIN' })).errorCode, 0);
    const answer = await s.request(K.SaslAuthenticate, v, { authBytes: Buffer.from('\u0000user\u0000secret') });
    assert.equal(answer.errorCode, 0);
    s.socket.destroy();
  }
});
