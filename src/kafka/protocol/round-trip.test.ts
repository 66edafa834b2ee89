import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEYS, API_SPECS, decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './index.ts';
import { generateBody, presentFields, seededRandom } from './test-helpers.ts';

const BODIES_PER_VERSION = 8;

describe('every API and version in the tables round-trips', () => {
  for (const spec of API_SPECS.values()) {
    test(`${spec.name} ${spec.minVersion}–${spec.maxVersion}: request and response, encode → decode → equal`, () => {
      const rand = seededRandom(spec.key + 1);
      for (let version = spec.minVersion; version <= spec.maxVersion; version++) {
        for (let i = 0; i < BODIES_PER_VERSION; i++) {
          const header = {
            apiKey: spec.key,
            apiVersion: version,
            correlationId: i * 7919,
            clientId: i % 3 ? 'c' : null,
          };
          const request = generateBody(spec.request, version, rand);
          const frame = encodeRequest(header, request);
          assert.equal(frame.readInt32BE(0), frame.length - 4, 'the size prefix counts the bytes after it');
          const decoded = decodeRequest(frame.subarray(4));
          assert.deepEqual(decoded.header, header);
          const where = `${spec.name} v${version} request #${i}`;
          assert.deepEqual(presentFields(decoded.body, spec.request, version), request, where);
          // Decoding fills the fields other versions have; encoding ignores them: the same bytes again.
          assert.deepEqual(encodeRequest(header, decoded.body), frame, `${where} re-encodes to the same bytes`);

          const response = generateBody(spec.response, version, rand);
          const chunks = encodeResponse(header, response);
          const bytes = Buffer.concat(chunks);
          assert.equal(bytes.readInt32BE(0), bytes.length - 4);
          const back = decodeResponse(spec.key, version, bytes.subarray(4));
          assert.equal(back.correlationId, header.correlationId);
          assert.deepEqual(
            presentFields(back.body, spec.response, version),
            response,
            `${spec.name} v${version} response`,
          );
        }
      }
    });
  }
});

describe('defaults', () => {
  test('decoding fills fields a version does not have with their spec defaults', () => {
    const produce = decodeRequest(
      encodeRequest(
        { apiKey: API_KEYS.Produce, apiVersion: 0, correlationId: 1, clientId: null },
        { acks: 1 },
      ).subarray(4),
    );
    assert.equal(produce.body.transactionalId, null);
    assert.deepEqual(produce.body.topicData, []);
    const fetch = decodeRequest(
      encodeRequest({ apiKey: API_KEYS.Fetch, apiVersion: 4, correlationId: 1, clientId: null }, {}).subarray(4),
    );
    assert.equal(fetch.body.sessionEpoch, -1);
    assert.equal(fetch.body.maxBytes, 0x7fffffff);
    assert.equal(fetch.body.rackId, '');
  });

  test('encoding fills missing fields: 0, empty string, null when nullable, [] and the spec default', () => {
    const header = { apiKey: API_KEYS.Produce, apiVersion: 8, correlationId: 9, clientId: null };
    const chunks = encodeResponse(header, { responses: [{ name: 't', partitionResponses: [{ index: 2 }] }] });
    const { body } = decodeResponse(API_KEYS.Produce, 8, Buffer.concat(chunks).subarray(4));
    assert.deepEqual(body.responses[0].partitionResponses[0], {
      index: 2,
      errorCode: 0,
      baseOffset: 0,
      logAppendTimeMs: -1,
      logStartOffset: -1,
      recordErrors: [],
      errorMessage: null,
      currentLeader: { leaderId: -1, leaderEpoch: -1 },
    });
    assert.equal(body.throttleTimeMs, 0);
  });

  test('a tagged field is written only when it differs from its default', () => {
    const header = { apiKey: API_KEYS.Fetch, apiVersion: 12, correlationId: 1, clientId: null };
    const partition = { partitionIndex: 0, records: null };
    const plain = Buffer.concat(encodeResponse(header, { responses: [{ topic: 't', partitions: [partition] }] }));
    const withLeader = Buffer.concat(
      encodeResponse(header, {
        responses: [{ topic: 't', partitions: [{ ...partition, currentLeader: { leaderId: 4, leaderEpoch: 2 } }] }],
      }),
    );
    // tag 1, size 8, leaderId, leaderEpoch, the struct's own empty tagged section: 11 bytes more.
    assert.equal(withLeader.length - plain.length, 11);
    const { body } = decodeResponse(API_KEYS.Fetch, 12, withLeader.subarray(4));
    assert.deepEqual(body.responses[0].partitions[0].currentLeader, { leaderId: 4, leaderEpoch: 2 });
  });
});

describe('records are not copied', () => {
  test('a Produce request decodes its records as a view of the frame', () => {
    const records = Buffer.alloc(1000, 5);
    const header = { apiKey: API_KEYS.Produce, apiVersion: 9, correlationId: 1, clientId: 'p' };
    const body = { acks: -1, timeoutMs: 5, topicData: [{ name: 't', partitionData: [{ index: 0, records }] }] };
    const frame = encodeRequest(header, body).subarray(4);
    const decoded = decodeRequest(frame).body.topicData[0].partitionData[0].records as Buffer;
    assert.equal(decoded.buffer, frame.buffer, 'the records share the frame memory');
    assert.deepEqual(decoded, records);
  });

  test('a Fetch response carries the records buffers as chunks of their own', () => {
    const a = Buffer.alloc(5000, 1);
    const b = Buffer.alloc(3000, 2);
    const header = { apiKey: API_KEYS.Fetch, apiVersion: 11, correlationId: 1, clientId: null };
    const chunks = encodeResponse(header, {
      responses: [{ topic: 't', partitions: [{ partitionIndex: 0, records: [a, b] }] }],
    });
    assert.ok(chunks.includes(a) && chunks.includes(b), 'the records buffers themselves are in the chunks');
    const { body } = decodeResponse(API_KEYS.Fetch, 11, Buffer.concat(chunks).subarray(4));
    assert.deepEqual(body.responses[0].partitions[0].records, Buffer.concat([a, b]));
  });
});
