// Cross-check of the flexible versions (compact encodings, tagged-field sections) against a third
// independent implementation: @platformatic/kafka's per-version codecs (its `<api>V<n>` modules,
// each with createRequest and parseResponse), which cover the newest versions kafkajs lacks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as platformatic from '@platformatic/kafka';
import { API_SPECS, decodeRequest, encodeRequest, encodeResponse, type Body } from './index.ts';
import type { FieldSpec } from './types.ts';
import { inVersions } from './versions.ts';
import { generateBody, seededRandom } from './test-helpers.ts';

interface PlatformaticApi {
  api: { key: number; version: number };
  createRequest: (...args: unknown[]) => { buffer: Buffer };
  parseResponse: (correlationId: number, apiKey: number, apiVersion: number, reader: unknown) => Body;
}

const Reader = (platformatic as unknown as { Reader: { from(b: Buffer): unknown } }).Reader;

/** Every @platformatic/kafka API module for a version our tables cover. */
const MODULES = Object.entries(platformatic as unknown as Record<string, PlatformaticApi>)
  .filter(([name, m]) => /V\d+$/.test(name) && typeof m?.parseResponse === 'function' && m.api)
  .filter(([, m]) => {
    const spec = API_SPECS.get(m.api.key);
    return spec !== undefined && m.api.version >= spec.minVersion && m.api.version <= spec.maxVersion;
  });

/** `fields` without their tagged fields (at every depth): @platformatic/kafka skips tagged sections unread. */
function untagged(body: Body, fields: readonly FieldSpec[], version: number): Body {
  if (body === null || typeof body !== 'object') return body;
  const out: Body = {};
  for (const f of fields) {
    if (!(f.name in body) || inVersions(version, f.taggedVersions)) continue;
    const v = body[f.name];
    if (f.fields && Array.isArray(v)) out[f.name] = v.map((e: Body) => untagged(e, f.fields!, version));
    else if (f.fields) out[f.name] = untagged(v, f.fields, version);
    else out[f.name] = v;
  }
  return out;
}

/**
 * Error codes set to 0 (@platformatic/kafka turns an error code it does not know into a TypeError of
 * its own), records to null.
 */
function noErrors(body: Body): Body {
  if (Array.isArray(body)) return body.map(noErrors);
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return body;
  const out: Body = {};
  for (const [k, v] of Object.entries(body)) {
    // Records are tested on their own below, with a real batch: @platformatic/kafka parses them.
    out[k] = /errorCode$/i.test(k) ? 0 : k === 'records' ? null : noErrors(v);
  }
  return out;
}

/** Compares the fields both sides have; returns how many leaf values were compared. */
function compareCommon(theirs: unknown, ours: unknown, path: string, problems: string[]): number {
  if (typeof theirs === 'bigint') theirs = Number(theirs);
  if (Buffer.isBuffer(theirs) || Buffer.isBuffer(ours)) {
    if (!(Buffer.isBuffer(theirs) && Buffer.isBuffer(ours) && theirs.equals(ours)))
      problems.push(`${path}: bytes differ`);
    return 1;
  }
  // @platformatic/kafka reads a null array as an empty one.
  if (Array.isArray(theirs) && theirs.length === 0 && ours === null) return 1;
  if (Array.isArray(theirs) && Array.isArray(ours)) {
    if (theirs.length !== ours.length) problems.push(`${path}: ${theirs.length} elements, we wrote ${ours.length}`);
    let n = 0;
    for (let i = 0; i < Math.min(theirs.length, ours.length); i++)
      n += compareCommon(theirs[i], ours[i], `${path}[${i}]`, problems);
    return n;
  }
  if (theirs && ours && typeof theirs === 'object' && typeof ours === 'object') {
    let n = 0;
    for (const key of Object.keys(theirs)) {
      if (key in ours) n += compareCommon((theirs as Body)[key], (ours as Body)[key], `${path}.${key}`, problems);
    }
    return n;
  }
  if (theirs !== ours) problems.push(`${path}: they read ${String(theirs)}, we wrote ${String(ours)}`);
  return 1;
}

/** Where @platformatic/kafka departs from Kafka's specs, so its parser cannot be the judge. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  describeConfigsV2:
    "@platformatic/kafka's DescribeConfigs v2 parser reads configType and documentation, which Kafka's spec adds in v3",
};

describe('responses we encode parse with @platformatic/kafka', () => {
  for (const [name, m] of MODULES) {
    const spec = API_SPECS.get(m.api.key)!;
    const version = m.api.version;
    test(`${spec.name} v${version} (${name})`, (t) => {
      if (KNOWN_DIFFERENCES[name]) return t.skip(KNOWN_DIFFERENCES[name]);
      const rand = seededRandom(version * 1000 + spec.key);
      for (let i = 0; i < 20; i++) {
        const body = noErrors(untagged(generateBody(spec.response, version, rand), spec.response, version));
        const chunks = encodeResponse(
          { apiKey: spec.key, apiVersion: version, correlationId: 5, clientId: null },
          body,
        );
        const frame = Buffer.concat(chunks);
        const headerBytes =
          spec.firstFlexibleVersion !== null && version >= spec.firstFlexibleVersion && spec.name !== 'ApiVersions'
            ? 9
            : 8;
        let parsed: Body;
        try {
          parsed = m.parseResponse(5, spec.key, version, Reader.from(frame.subarray(headerBytes)));
        } catch (err) {
          // A response with error codes set is thrown as a ResponseError that carries the parsed response.
          parsed = (err as { response?: Body }).response;
          if (!parsed) throw err;
        }
        const problems: string[] = [];
        const compared = compareCommon(parsed, body, spec.name, problems);
        assert.deepEqual(problems, [], `${spec.name} v${version} body #${i}`);
        assert.ok(compared > 0 || Object.keys(body).length === 0, 'some fields were compared');
      }
    });
  }
});

const api = (name: string): PlatformaticApi => (platformatic as unknown as Record<string, PlatformaticApi>)[name];
const createRecordsBatch = (platformatic as unknown as { createRecordsBatch: (m: object[]) => { buffer: Buffer } })
  .createRecordsBatch;

const MESSAGES = [
  { topic: 't', partition: 0, key: Buffer.from('k1'), value: Buffer.from('v1'), timestamp: 1_700_000_000_000n },
  { topic: 't', partition: 0, key: Buffer.from('k2'), value: Buffer.from('v2'), timestamp: 1_700_000_000_001n },
];

test('Fetch v12–v17 responses carry records @platformatic/kafka reads back', () => {
  const batch = createRecordsBatch(MESSAGES.map((m) => ({ ...m }))).buffer;
  for (const version of [12, 13, 14, 15, 16, 17]) {
    const body = {
      sessionId: 9,
      responses: [
        {
          topic: 't',
          topicId: '0123abcd-0123-4567-89ab-0123456789ab',
          partitions: [{ partitionIndex: 0, highWatermark: 2, records: [batch.subarray(0, 7), batch.subarray(7)] }],
        },
      ],
    };
    const frame = Buffer.concat(
      encodeResponse({ apiKey: 1, apiVersion: version, correlationId: 1, clientId: null }, body),
    );
    const parsed = api(`fetchV${version}`).parseResponse(1, 1, version, Reader.from(frame.subarray(9)));
    const partition = parsed.responses[0].partitions[0];
    assert.equal(parsed.sessionId, 9);
    assert.equal(Number(partition.highWatermark), 2);
    const records = partition.records.flatMap((b: Body) => b.records);
    assert.deepEqual(
      records.map((r: Body) => [r.key.toString(), r.value.toString()]),
      [
        ['k1', 'v1'],
        ['k2', 'v2'],
      ],
      `Fetch v${version}`,
    );
    // @platformatic/kafka calls v12's topic name `topicId` too.
    assert.equal(parsed.responses[0].topicId, version >= 13 ? '0123abcd-0123-4567-89ab-0123456789ab' : 't');
  }
});

/** A request frame (no size) with our header and @platformatic/kafka's body, decoded with our tables. */
function decodePlatformatic(name: string, ...args: unknown[]): Body {
  const m = api(name);
  const spec = API_SPECS.get(m.api.key)!;
  const header = encodeRequest({ apiKey: m.api.key, apiVersion: m.api.version, correlationId: 3, clientId: 'p' }, {});
  // Our encoder wrote the header, then the body of an empty request: keep the header only.
  const flexible = spec.firstFlexibleVersion !== null && m.api.version >= spec.firstFlexibleVersion;
  const headerBytes = header.subarray(4, 4 + 8 + 2 + 1 + (flexible ? 1 : 0));
  return decodeRequest(Buffer.concat([headerBytes, m.createRequest(...args).buffer])).body;
}

describe('requests @platformatic/kafka encodes decode with our tables', () => {
  test('Produce v7–v11: records as written, a view of the frame', () => {
    const batch = createRecordsBatch(MESSAGES.map((m) => ({ ...m }))).buffer;
    for (const version of [7, 8, 9, 10, 11]) {
      const options = version >= 9 ? { transactionalId: 'tx' } : {};
      const body = decodePlatformatic(
        `produceV${version}`,
        -1,
        1500,
        MESSAGES.map((m) => ({ ...m })),
        options,
      );
      assert.deepEqual([body.acks, body.timeoutMs, body.topicData[0].name], [-1, 1500, 't']);
      const records = body.topicData[0].partitionData[0].records as Buffer;
      // The batch is the same but for its attributes (transactional) and CRC: compare the records part.
      assert.equal(records.length, batch.length);
      assert.deepEqual(records.subarray(61), batch.subarray(61));
      if (version >= 9) assert.equal(body.transactionalId, 'tx');
    }
  });

  test('Fetch v12–v17', () => {
    const topicId = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
    const partitions = [
      { partition: 3, currentLeaderEpoch: 5, fetchOffset: 100n, lastFetchedEpoch: 4, partitionMaxBytes: 1024 },
    ];
    for (const version of [12, 13, 14, 15, 16, 17]) {
      // In v12 (topic names, not ids) @platformatic/kafka writes the name from `topicId`, and writes a
      // forgotten topic as a UUID where Kafka's spec has its name: no forgotten topics there.
      const topics = [{ topic: 't', topicId: version >= 13 ? topicId : 't', partitions }];
      const forgotten = version >= 13 ? [{ topic: topicId, partitions: [7] }] : [];
      const body = decodePlatformatic(`fetchV${version}`, 500, 1, 1 << 20, 1, 11, 2, topics, forgotten, 'rack');
      assert.deepEqual(
        [
          body.maxWaitMs,
          body.minBytes,
          body.maxBytes,
          body.isolationLevel,
          body.sessionId,
          body.sessionEpoch,
          body.rackId,
        ],
        [500, 1, 1 << 20, 1, 11, 2, 'rack'],
      );
      const p = body.topics[0].partitions[0];
      assert.deepEqual(
        [p.partition, p.currentLeaderEpoch, p.fetchOffset, p.lastFetchedEpoch, p.partitionMaxBytes],
        [3, 5, 100, 4, 1024],
      );
      if (version >= 13) assert.equal(body.topics[0].topicId, topicId);
      else assert.equal(body.topics[0].topic, 't');
      if (version >= 13) assert.deepEqual(body.forgottenTopicsData[0].partitions, [7]);
    }
  });

  test('Metadata v9–v12, ApiVersions v3–v4, FindCoordinator v4–v6, InitProducerId v3–v5', () => {
    for (const version of [9, 10, 12]) {
      const body = decodePlatformatic(`metadataV${version}`, ['a', 'b'], true, false);
      assert.deepEqual(
        body.topics.map((t: Body) => t.name),
        ['a', 'b'],
      );
      assert.equal(body.allowAutoTopicCreation, true);
    }
    // @platformatic/kafka's Metadata v11 request still writes includeClusterAuthorizedOperations, which
    // Kafka's spec drops after v10. Kafka's broker reads that byte as an empty tagged section and
    // ignores the byte left over; our decoder refuses bytes left over.
    assert.throws(
      () => decodePlatformatic('metadataV11', ['a'], true, false),
      /1 bytes left over after the Metadata request/,
    );
    for (const version of [3, 4]) {
      const body = decodePlatformatic(`apiVersionsV${version}`, 'platformatic-kafka', '1.35.0');
      assert.deepEqual(body, { clientSoftwareName: 'platformatic-kafka', clientSoftwareVersion: '1.35.0' });
    }
    for (const version of [4, 5, 6]) {
      const body = decodePlatformatic(`findCoordinatorV${version}`, 0, ['g1', 'g2']);
      assert.deepEqual([body.keyType, body.coordinatorKeys], [0, ['g1', 'g2']]);
    }
    for (const version of [3, 4, 5]) {
      const body = decodePlatformatic(`initProducerIdV${version}`, null, 60000, 7n, 2);
      assert.deepEqual(
        [body.transactionalId, body.transactionTimeoutMs, body.producerId, body.producerEpoch],
        [null, 60000, 7, 2],
      );
    }
  });

  test('JoinGroup v6–v9, SyncGroup v4–v5, Heartbeat v4, LeaveGroup v4–v5', () => {
    const metadata = Buffer.from([1, 2, 3]);
    for (const version of [6, 7, 8, 9]) {
      const protocols = [{ name: 'roundrobin', metadata }];
      const body = decodePlatformatic(
        `joinGroupV${version}`,
        'g',
        30000,
        60000,
        'm',
        'i',
        'consumer',
        protocols,
        'why',
      );
      assert.deepEqual(
        [
          body.groupId,
          body.sessionTimeoutMs,
          body.rebalanceTimeoutMs,
          body.memberId,
          body.groupInstanceId,
          body.protocolType,
        ],
        ['g', 30000, 60000, 'm', 'i', 'consumer'],
      );
      assert.deepEqual(body.protocols, [{ name: 'roundrobin', metadata }]);
      assert.equal(body.reason, version >= 8 ? 'why' : null);
    }
    for (const version of [4, 5]) {
      const assignments = [{ memberId: 'm', assignment: metadata }];
      const body = decodePlatformatic(`syncGroupV${version}`, 'g', 4, 'm', null, 'consumer', 'roundrobin', assignments);
      assert.deepEqual([body.groupId, body.generationId, body.memberId, body.groupInstanceId], ['g', 4, 'm', null]);
      assert.deepEqual(body.assignments, assignments);
      if (version >= 5) assert.deepEqual([body.protocolType, body.protocolName], ['consumer', 'roundrobin']);
      const leave = decodePlatformatic(`leaveGroupV${version}`, 'g', [
        { memberId: 'm', groupInstanceId: null, reason: 'bye' },
      ]);
      assert.deepEqual(leave.members, [{ memberId: 'm', groupInstanceId: null, reason: version >= 5 ? 'bye' : null }]);
    }
    const beat = decodePlatformatic('heartbeatV4', 'g', 4, 'm', 'i');
    assert.deepEqual(beat, { groupId: 'g', generationId: 4, memberId: 'm', groupInstanceId: 'i' });
  });

  test('OffsetCommit v8–v9, OffsetFetch v8–v9, ListOffsets v5–v9', () => {
    const partitions = [{ partitionIndex: 1, committedOffset: 55n, committedLeaderEpoch: 3, committedMetadata: 'md' }];
    for (const version of [8, 9]) {
      const body = decodePlatformatic(`offsetCommitV${version}`, 'g', 4, 'm', null, [{ name: 't', partitions }]);
      assert.deepEqual(
        [body.groupId, body.generationIdOrMemberEpoch, body.memberId, body.groupInstanceId],
        ['g', 4, 'm', null],
      );
      assert.deepEqual(body.topics[0].partitions[0], { ...partitions[0], committedOffset: 55, commitTimestamp: -1 });
      const groups = [
        { groupId: 'g', memberId: 'm', memberEpoch: 4, topics: [{ name: 't', partitionIndexes: [0, 1] }] },
      ];
      const fetched = decodePlatformatic(`offsetFetchV${version}`, groups, true);
      assert.equal(fetched.requireStable, true);
      assert.deepEqual(fetched.groups[0].topics, [{ name: 't', partitionIndexes: [0, 1] }]);
      if (version >= 9) assert.deepEqual([fetched.groups[0].memberId, fetched.groups[0].memberEpoch], ['m', 4]);
    }
    for (const version of [5, 6, 7, 8, 9]) {
      const topics = [{ name: 't', partitions: [{ partitionIndex: 2, currentLeaderEpoch: 1, timestamp: -2n }] }];
      const body = decodePlatformatic(`listOffsetsV${version}`, -1, 1, topics);
      assert.deepEqual([body.replicaId, body.isolationLevel], [-1, 1]);
      assert.deepEqual(body.topics[0].partitions[0], {
        partitionIndex: 2,
        currentLeaderEpoch: 1,
        timestamp: -2,
        maxNumOffsets: 1,
      });
    }
  });

  test('CreateTopics v7, DeleteTopics v6, DescribeConfigs v4, DescribeGroups v5, ListGroups v4–v5, SASL', () => {
    const topics = [
      {
        name: 'n',
        numPartitions: 3,
        replicationFactor: 1,
        assignments: [],
        configs: [{ name: 'cleanup.policy', value: 'compact' }],
      },
    ];
    const created = decodePlatformatic('createTopicsV7', topics, 5000, false);
    assert.deepEqual(created.topics, topics);
    assert.deepEqual([created.timeoutMs, created.validateOnly], [5000, false]);
    const deleted = decodePlatformatic('deleteTopicsV6', [{ name: 'n', topicId: null }], 5000);
    assert.deepEqual(deleted.topics, [{ name: 'n', topicId: '00000000-0000-0000-0000-000000000000' }]);
    const described = decodePlatformatic(
      'describeConfigsV4',
      [{ resourceType: 2, resourceName: 'n', configurationKeys: null }],
      true,
      true,
    );
    assert.deepEqual(described.resources, [{ resourceType: 2, resourceName: 'n', configurationKeys: null }]);
    assert.deepEqual([described.includeSynonyms, described.includeDocumentation], [true, true]);
    const groups = decodePlatformatic('describeGroupsV5', ['g1', 'g2'], true);
    assert.deepEqual(groups, { groups: ['g1', 'g2'], includeAuthorizedOperations: true });
    assert.deepEqual(decodePlatformatic('listGroupsV4', ['Stable']).statesFilter, ['Stable']);
    assert.deepEqual(decodePlatformatic('listGroupsV5', ['Stable'], ['classic']).typesFilter, ['classic']);
    assert.equal(decodePlatformatic('saslHandshakeV1', 'PLAIN').mechanism, 'PLAIN');
    assert.deepEqual(decodePlatformatic('saslAuthenticateV2', Buffer.from('\0u\0p')).authBytes, Buffer.from('\0u\0p'));
  });
});
