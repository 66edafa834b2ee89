// Cross-check against an independent implementation of the same wire format: kafkajs's per-version
// request encoders and response decoders (node_modules/kafkajs/src/protocol/requests/<api>/v<N>/).
// Requests kafkajs encodes must decode with ours to the values given (and with no bytes left over);
// responses we encode must decode with kafkajs to the values we put in.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { API_KEYS, decodeRequest, encodeResponse, type Body } from './index.ts';

const require = createRequire(import.meta.url);

interface KafkajsRequest {
  apiKey: number;
  apiVersion: number;
  encode: () => Promise<unknown>;
}
type KafkajsEncoder = { buffer: Buffer };
const frameRequest = require('kafkajs/src/protocol/request.js') as (args: {
  correlationId: number;
  clientId: string;
  request: KafkajsRequest;
}) => Promise<KafkajsEncoder>;
const KafkajsEncoderClass = require('kafkajs/src/protocol/encoder.js') as new () => {
  writeBytes(b: Buffer): KafkajsEncoder;
};

function kafkajsRequest(dir: string, version: number, args: object): KafkajsRequest {
  const make = require(`kafkajs/src/protocol/requests/${dir}/v${version}/request.js`) as (a: object) => KafkajsRequest;
  return make(args);
}

async function decodeKafkajsRequest(dir: string, version: number, args: object): Promise<Body> {
  const request = kafkajsRequest(dir, version, args);
  assert.equal(request.apiVersion, version);
  const frame = (await frameRequest({ correlationId: 1234, clientId: 'kafkajs', request })).buffer;
  const { header, body } = decodeRequest(frame.subarray(4));
  assert.deepEqual(header, { apiKey: request.apiKey, apiVersion: version, correlationId: 1234, clientId: 'kafkajs' });
  return body;
}

async function kafkajsDecodeResponse(dir: string, version: number, apiKey: number, body: object): Promise<Body> {
  const chunks = encodeResponse({ apiKey, apiVersion: version, correlationId: 99, clientId: 'x' }, body);
  const frame = Buffer.concat(chunks);
  assert.equal(frame.readInt32BE(4), 99);
  const response = require(`kafkajs/src/protocol/requests/${dir}/v${version}/response.js`) as {
    decode: (payload: Buffer) => Promise<Body>;
  };
  return response.decode(frame.subarray(8));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const MESSAGES = [
  { key: 'k1', value: 'v1', timestamp: 1_700_000_000_000, headers: { h: 'x' } },
  { key: 'k2', value: 'v2', timestamp: 1_700_000_000_001 },
];

describe('requests encoded by kafkajs decode with our tables', () => {
  test('Produce v0–v7', async () => {
    for (const version of range(0, 7)) {
      const body = await decodeKafkajsRequest('produce', version, {
        acks: -1,
        timeout: 3000,
        transactionalId: version >= 3 ? 'tx-1' : undefined,
        topicData: [{ topic: 'orders', partitions: [{ partition: 2, firstSequence: 0, messages: MESSAGES }] }],
      });
      assert.equal(body.acks, -1);
      assert.equal(body.timeoutMs, 3000);
      assert.equal(body.transactionalId, version >= 3 ? 'tx-1' : null);
      assert.equal(body.topicData[0].name, 'orders');
      const partition = body.topicData[0].partitionData[0];
      assert.equal(partition.index, 2);
      // Magic byte: 2 for a RecordBatch (v3+), 0 or 1 for the old message sets.
      assert.equal(partition.records[16], version >= 3 ? 2 : version === 2 ? 1 : 0, `v${version} magic`);
    }
  });

  test('Fetch v0–v11', async () => {
    for (const version of range(0, 11)) {
      const body = await decodeKafkajsRequest('fetch', version, {
        replicaId: -1,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 1048576,
        isolationLevel: 1,
        sessionId: 7,
        sessionEpoch: 3,
        forgottenTopics: [{ topic: 'gone', partitions: [4] }],
        rackId: 'rack-a',
        topics: [
          { topic: 't', partitions: [{ partition: 1, fetchOffset: '42', maxBytes: 65536, currentLeaderEpoch: 5 }] },
        ],
      });
      assert.equal(body.replicaId, -1);
      assert.equal(body.maxWaitMs, 500);
      assert.equal(body.minBytes, 1);
      assert.equal(body.maxBytes, version >= 3 ? 1048576 : 0x7fffffff);
      assert.equal(body.isolationLevel, version >= 4 ? 1 : 0);
      const p = body.topics[0].partitions[0];
      assert.equal(body.topics[0].topic, 't');
      assert.deepEqual([p.partition, p.fetchOffset, p.partitionMaxBytes], [1, 42, 65536]);
      if (version >= 7) {
        assert.deepEqual([body.sessionId, body.sessionEpoch], [7, 3]);
        assert.deepEqual(body.forgottenTopicsData, [
          { topic: 'gone', topicId: '00000000-0000-0000-0000-000000000000', partitions: [4] },
        ]);
      }
      if (version >= 9) assert.equal(p.currentLeaderEpoch, 5);
      if (version >= 11) assert.equal(body.rackId, 'rack-a');
    }
  });

  test('Metadata v0–v6', async () => {
    for (const version of range(0, 6)) {
      const body = await decodeKafkajsRequest('metadata', version, {
        topics: ['a', 'b'],
        allowAutoTopicCreation: false,
      });
      assert.deepEqual(
        body.topics.map((t: Body) => t.name),
        ['a', 'b'],
      );
      assert.equal(body.allowAutoTopicCreation, version >= 4 ? false : true);
    }
  });

  test('ApiVersions v0–v2', async () => {
    for (const version of range(0, 2))
      assert.deepEqual(await decodeKafkajsRequest('apiVersions', version, {}), {
        clientSoftwareName: '',
        clientSoftwareVersion: '',
      });
  });

  test('JoinGroup v0–v5, SyncGroup v0–v3, Heartbeat v0–v3, LeaveGroup v0–v3', async () => {
    const metadata = Buffer.from([0, 1, 2, 3]);
    for (const version of range(0, 5)) {
      const body = await decodeKafkajsRequest('joinGroup', version, {
        groupId: 'g',
        sessionTimeout: 30000,
        rebalanceTimeout: 60000,
        memberId: 'm-1',
        groupInstanceId: null,
        protocolType: 'consumer',
        groupProtocols: [{ name: 'RoundRobinAssigner', metadata }],
      });
      assert.deepEqual(
        [body.groupId, body.sessionTimeoutMs, body.rebalanceTimeoutMs, body.memberId, body.protocolType],
        ['g', 30000, version >= 1 ? 60000 : -1, 'm-1', 'consumer'],
      );
      assert.deepEqual(body.protocols, [{ name: 'RoundRobinAssigner', metadata }]);
      assert.equal(body.groupInstanceId, null);
    }
    for (const version of range(0, 3)) {
      const body = await decodeKafkajsRequest('syncGroup', version, {
        groupId: 'g',
        generationId: 5,
        memberId: 'm-1',
        groupInstanceId: 'i-1',
        groupAssignment: [{ memberId: 'm-1', memberAssignment: metadata }],
      });
      assert.deepEqual([body.groupId, body.generationId, body.memberId], ['g', 5, 'm-1']);
      assert.equal(body.groupInstanceId, version >= 3 ? 'i-1' : null);
      assert.deepEqual(body.assignments, [{ memberId: 'm-1', assignment: metadata }]);
      const beat = await decodeKafkajsRequest('heartbeat', version, {
        groupId: 'g',
        groupGenerationId: 5,
        memberId: 'm-1',
        groupInstanceId: 'i-1',
      });
      assert.deepEqual([beat.groupId, beat.generationId, beat.memberId], ['g', 5, 'm-1']);
      assert.equal(beat.groupInstanceId, version >= 3 ? 'i-1' : null);
      const leave = await decodeKafkajsRequest('leaveGroup', version, {
        groupId: 'g',
        memberId: 'm-1',
        members: [{ memberId: 'm-1', groupInstanceId: null }],
      });
      assert.equal(leave.groupId, 'g');
      if (version >= 3) assert.deepEqual(leave.members, [{ memberId: 'm-1', groupInstanceId: null, reason: null }]);
      else assert.equal(leave.memberId, 'm-1');
    }
  });

  test('OffsetCommit v0–v5, OffsetFetch v1–v4', async () => {
    for (const version of range(0, 5)) {
      const body = await decodeKafkajsRequest('offsetCommit', version, {
        groupId: 'g',
        groupGenerationId: 3,
        memberId: 'm-1',
        retentionTime: 86_400_000,
        topics: [{ topic: 't', partitions: [{ partition: 1, offset: '123', metadata: 'meta' }] }],
      });
      assert.equal(body.groupId, 'g');
      if (version >= 1) assert.deepEqual([body.generationIdOrMemberEpoch, body.memberId], [3, 'm-1']);
      if (version >= 2 && version <= 4) assert.equal(body.retentionTimeMs, 86_400_000);
      const p = body.topics[0].partitions[0];
      assert.equal(body.topics[0].name, 't');
      assert.deepEqual([p.partitionIndex, p.committedOffset, p.committedMetadata], [1, 123, 'meta']);
    }
    for (const version of range(1, 4)) {
      const body = await decodeKafkajsRequest('offsetFetch', version, {
        groupId: 'g',
        topics: [{ topic: 't', partitions: [{ partition: 0 }, { partition: 2 }] }],
      });
      assert.equal(body.groupId, 'g');
      assert.deepEqual(body.topics, [{ name: 't', partitionIndexes: [0, 2] }]);
    }
  });

  test('ListOffsets v0–v3, FindCoordinator v0–v2, InitProducerId v0–v1', async () => {
    for (const version of range(0, 3)) {
      const body = await decodeKafkajsRequest('listOffsets', version, {
        replicaId: -1,
        isolationLevel: 1,
        topics: [{ topic: 't', partitions: [{ partition: 3, timestamp: -2 }] }],
      });
      assert.equal(body.replicaId, -1);
      if (version >= 2) assert.equal(body.isolationLevel, 1);
      const p = body.topics[0].partitions[0];
      assert.deepEqual([body.topics[0].name, p.partitionIndex, p.timestamp], ['t', 3, -2]);
    }
    for (const version of range(0, 2)) {
      const args = { groupId: 'g', coordinatorKey: 'g', coordinatorType: 0 };
      const body = await decodeKafkajsRequest('findCoordinator', version, args);
      assert.deepEqual([body.key, body.keyType], ['g', 0]);
    }
    for (const version of range(0, 1)) {
      const body = await decodeKafkajsRequest('initProducerId', version, {
        transactionalId: null,
        transactionTimeout: 5000,
      });
      assert.deepEqual([body.transactionalId, body.transactionTimeoutMs], [null, 5000]);
    }
  });

  test('CreateTopics v0–v3, SaslHandshake v0–v1, SaslAuthenticate v0–v1', async () => {
    for (const version of range(0, 3)) {
      const body = await decodeKafkajsRequest('createTopics', version, {
        topics: [
          {
            topic: 'new',
            numPartitions: 3,
            replicationFactor: 1,
            configEntries: [{ name: 'retention.ms', value: '1000' }],
          },
        ],
        validateOnly: true,
        timeout: 5000,
      });
      const t = body.topics[0];
      assert.deepEqual([t.name, t.numPartitions, t.replicationFactor, body.timeoutMs], ['new', 3, 1, 5000]);
      assert.deepEqual(t.configs, [{ name: 'retention.ms', value: '1000' }]);
      assert.equal(body.validateOnly, version >= 1);
    }
    for (const version of range(0, 1)) {
      assert.equal((await decodeKafkajsRequest('saslHandshake', version, { mechanism: 'PLAIN' })).mechanism, 'PLAIN');
      const plain = Buffer.from('\0user\0secret');
      // kafkajs's SASL mechanisms hand SaslAuthenticate their bytes already length-prefixed.
      const authBytes = new KafkajsEncoderClass().writeBytes(plain).buffer;
      assert.deepEqual((await decodeKafkajsRequest('saslAuthenticate', version, { authBytes })).authBytes, plain);
    }
  });
});

/** Records as kafkajs produces them: a RecordBatch (magic 2) from Produce v3, a message set (magic 1) from v2. */
async function kafkajsRecords(produceVersion: number): Promise<Buffer> {
  const body = await decodeKafkajsRequest('produce', produceVersion, {
    acks: 1,
    timeout: 1000,
    topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: MESSAGES }] }],
  });
  return body.topicData[0].partitionData[0].records;
}

describe('responses encoded with our tables decode with kafkajs', () => {
  test('Produce v0–v7', async () => {
    for (const version of range(0, 7)) {
      const partition = {
        index: 4,
        errorCode: 0,
        baseOffset: 2 ** 40,
        logAppendTimeMs: 1_700_000_000_000,
        logStartOffset: 17,
      };
      const decoded = await kafkajsDecodeResponse('produce', version, API_KEYS.Produce, {
        responses: [{ name: 'orders', partitionResponses: [partition] }],
        throttleTimeMs: 25,
      });
      const p = decoded.topics[0].partitions[0];
      assert.equal(decoded.topics[0].topicName, 'orders');
      assert.equal(p.partition, 4);
      assert.equal(p.baseOffset ?? p.offset, String(2 ** 40));
      if (version >= 2) assert.equal(p.logAppendTime ?? p.timestamp, '1700000000000');
      if (version >= 5) assert.equal(p.logStartOffset, '17');
      if (version >= 1) assert.equal(decoded.clientSideThrottleTime ?? decoded.throttleTime, 25);
    }
  });

  test('Fetch v0–v11 with records kafkajs produced', async () => {
    const batch = await kafkajsRecords(3);
    const messageSet = await kafkajsRecords(2);
    for (const version of range(0, 11)) {
      const records = version >= 4 ? batch : messageSet;
      const decoded = await kafkajsDecodeResponse('fetch', version, API_KEYS.Fetch, {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 77,
        responses: [
          {
            topic: 't',
            partitions: [
              {
                partitionIndex: 0,
                highWatermark: 2,
                lastStableOffset: 2,
                logStartOffset: 0,
                abortedTransactions: [],
                preferredReadReplica: -1,
                // Split in two to check the chunks are written as one field.
                records: [records.subarray(0, 10), records.subarray(10)],
              },
            ],
          },
        ],
      });
      const p = decoded.responses[0].partitions[0];
      assert.equal(decoded.responses[0].topicName, 't');
      assert.equal(p.highWatermark, '2');
      assert.deepEqual(
        p.messages.map((m: Body) => [String(m.key), String(m.value)]),
        [
          ['k1', 'v1'],
          ['k2', 'v2'],
        ],
        `Fetch v${version}`,
      );
      if (version >= 7) assert.equal(decoded.sessionId, 77);
      if (version >= 11) assert.equal(p.preferredReadReplica, -1);
    }
  });

  test('Metadata v0–v6', async () => {
    for (const version of range(0, 6)) {
      const decoded = await kafkajsDecodeResponse('metadata', version, API_KEYS.Metadata, {
        throttleTimeMs: 0,
        brokers: [{ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null }],
        clusterId: 'kappa',
        controllerId: 1,
        topics: [
          {
            errorCode: 0,
            name: 'sales',
            isInternal: false,
            partitions: [
              { errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] },
            ],
          },
        ],
      });
      assert.deepEqual(decoded.brokers[0], {
        nodeId: 1,
        host: '127.0.0.1',
        port: 9092,
        ...(version >= 1 ? { rack: null } : {}),
      });
      if (version >= 2) assert.equal(decoded.clusterId, 'kappa');
      const t = decoded.topicMetadata[0];
      assert.equal(t.topic, 'sales');
      assert.deepEqual([t.partitionMetadata[0].partitionId, t.partitionMetadata[0].leader], [0, 1]);
      assert.deepEqual(t.partitionMetadata[0].isr, [1]);
    }
  });

  test('ApiVersions v0–v2', async () => {
    for (const version of range(0, 2)) {
      const apiKeys = [
        { apiKey: 0, minVersion: 0, maxVersion: 9 },
        { apiKey: 18, minVersion: 0, maxVersion: 3 },
      ];
      const decoded = await kafkajsDecodeResponse('apiVersions', version, API_KEYS.ApiVersions, {
        errorCode: 0,
        apiKeys,
        throttleTimeMs: 0,
      });
      assert.deepEqual(decoded.apiVersions, apiKeys);
    }
  });

  test('JoinGroup v0–v5, SyncGroup v0–v3, Heartbeat v0–v3, LeaveGroup v0–v3', async () => {
    const metadata = Buffer.from([9, 8, 7]);
    for (const version of range(0, 5)) {
      const decoded = await kafkajsDecodeResponse('joinGroup', version, API_KEYS.JoinGroup, {
        throttleTimeMs: 0,
        errorCode: 0,
        generationId: 3,
        protocolName: 'RoundRobinAssigner',
        leader: 'm-1',
        memberId: 'm-2',
        members: [{ memberId: 'm-1', groupInstanceId: null, metadata }],
      });
      assert.deepEqual(
        [decoded.generationId, decoded.groupProtocol, decoded.leaderId, decoded.memberId],
        [3, 'RoundRobinAssigner', 'm-1', 'm-2'],
      );
      assert.equal(decoded.members[0].memberId, 'm-1');
      assert.deepEqual(decoded.members[0].memberMetadata, metadata);
    }
    for (const version of range(0, 3)) {
      const sync = await kafkajsDecodeResponse('syncGroup', version, API_KEYS.SyncGroup, {
        throttleTimeMs: 0,
        errorCode: 0,
        assignment: metadata,
      });
      assert.deepEqual(sync.memberAssignment, metadata);
      const beat = await kafkajsDecodeResponse('heartbeat', version, API_KEYS.Heartbeat, {
        throttleTimeMs: 5,
        errorCode: 0,
      });
      assert.equal(beat.errorCode, 0);
      if (version >= 1) assert.equal(beat.clientSideThrottleTime ?? beat.throttleTime, 5);
      const leave = await kafkajsDecodeResponse('leaveGroup', version, API_KEYS.LeaveGroup, {
        throttleTimeMs: 0,
        errorCode: 0,
        members: [{ memberId: 'm-1', groupInstanceId: null, errorCode: 0 }],
      });
      assert.equal(leave.errorCode, 0);
      if (version >= 3) assert.deepEqual(leave.members, [{ memberId: 'm-1', groupInstanceId: null, errorCode: 0 }]);
    }
  });

  test('OffsetCommit v0–v5, OffsetFetch v1–v4', async () => {
    for (const version of range(0, 5)) {
      const decoded = await kafkajsDecodeResponse('offsetCommit', version, API_KEYS.OffsetCommit, {
        throttleTimeMs: 0,
        topics: [{ name: 't', partitions: [{ partitionIndex: 1, errorCode: 0 }] }],
      });
      assert.deepEqual(decoded.responses, [{ topic: 't', partitions: [{ partition: 1, errorCode: 0 }] }]);
    }
    for (const version of range(1, 4)) {
      const decoded = await kafkajsDecodeResponse('offsetFetch', version, API_KEYS.OffsetFetch, {
        throttleTimeMs: 0,
        topics: [{ name: 't', partitions: [{ partitionIndex: 1, committedOffset: 123, metadata: '', errorCode: 0 }] }],
        errorCode: 0,
      });
      assert.deepEqual(decoded.responses, [
        { topic: 't', partitions: [{ partition: 1, offset: '123', metadata: '', errorCode: 0 }] },
      ]);
      if (version >= 2) assert.equal(decoded.errorCode, 0);
    }
  });

  test('ListOffsets v0–v3, FindCoordinator v0–v2, InitProducerId v0–v1', async () => {
    for (const version of range(0, 3)) {
      const decoded = await kafkajsDecodeResponse('listOffsets', version, API_KEYS.ListOffsets, {
        throttleTimeMs: 0,
        topics: [
          {
            name: 't',
            partitions: [
              { partitionIndex: 2, errorCode: 0, oldStyleOffsets: [55], timestamp: 1_700_000_000_000, offset: 55 },
            ],
          },
        ],
      });
      const p = decoded.responses[0].partitions[0];
      assert.equal(decoded.responses[0].topic, 't');
      if (version === 0) assert.deepEqual(p.offsets, ['55']);
      else assert.deepEqual([p.partition, p.timestamp, p.offset], [2, '1700000000000', '55']);
    }
    for (const version of range(0, 2)) {
      const decoded = await kafkajsDecodeResponse('findCoordinator', version, API_KEYS.FindCoordinator, {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        nodeId: 1,
        host: 'localhost',
        port: 9092,
      });
      assert.deepEqual(decoded.coordinator, { nodeId: 1, host: 'localhost', port: 9092 });
    }
    for (const version of range(0, 1)) {
      const decoded = await kafkajsDecodeResponse('initProducerId', version, API_KEYS.InitProducerId, {
        throttleTimeMs: 0,
        errorCode: 0,
        producerId: 4001,
        producerEpoch: 2,
      });
      assert.deepEqual([decoded.producerId, decoded.producerEpoch], ['4001', 2]);
    }
  });

  test('CreateTopics v0–v3, SaslHandshake v0–v1, SaslAuthenticate v0–v1', async () => {
    for (const version of range(0, 3)) {
      const decoded = await kafkajsDecodeResponse('createTopics', version, API_KEYS.CreateTopics, {
        throttleTimeMs: 0,
        topics: [{ name: 'new', errorCode: 36, errorMessage: 'Topic already exists.' }],
      });
      assert.equal(decoded.topicErrors[0].topic, 'new');
      assert.equal(decoded.topicErrors[0].errorCode, 36);
      if (version >= 1) assert.equal(decoded.topicErrors[0].errorMessage, 'Topic already exists.');
    }
    for (const version of range(0, 1)) {
      const hs = await kafkajsDecodeResponse('saslHandshake', version, API_KEYS.SaslHandshake, {
        errorCode: 0,
        mechanisms: ['PLAIN'],
      });
      assert.deepEqual(hs.enabledMechanisms, ['PLAIN']);
      const auth = await kafkajsDecodeResponse('saslAuthenticate', version, API_KEYS.SaslAuthenticate, {
        errorCode: 0,
        errorMessage: null,
        authBytes: Buffer.from('ok'),
        sessionLifetimeMs: 3_600_000,
      });
      assert.equal(auth.errorMessage, null);
      assert.deepEqual(auth.authBytes, new KafkajsEncoderClass().writeBytes(Buffer.from('ok')).buffer);
      if (version >= 1) assert.equal(auth.sessionLifetimeMs, '3600000');
    }
  });
});
