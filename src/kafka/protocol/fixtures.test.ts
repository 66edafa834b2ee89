import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEYS, decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './index.ts';

/** Hex with spaces and comments (after '#', to the end of the line) for readability. */
const hex = (text: string): Buffer => Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');

describe('byte fixtures written by hand from Kafka’s specs', () => {
  test('ApiVersions v3 request as librdkafka 2.0.2 sends it (request header v2)', () => {
    // The same bytes as a capture of `kcat -L` (librdkafka 2.0.2) opening a connection.
    const frame = hex(`
      00000024                  # size 36
      0012 0003 00000001        # api key 18, version 3, correlation id 1
      0007 72646b61666b61       # client id 'rdkafka': int16 length even in header v2
      00                        # header tagged fields: none
      0b 6c696272646b61666b61   # client software name: compact string 'librdkafka' (length + 1 = 11)
      06 322e302e32             # client software version '2.0.2'
      00                        # body tagged fields: none
    `);
    const { header, body } = decodeRequest(frame.subarray(4));
    assert.deepEqual(header, { apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'rdkafka' });
    assert.deepEqual(body, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' });
    assert.deepEqual(encodeRequest(header, body), frame);
  });

  test('ApiVersions v3 response: response header v0 even though v3 is flexible; a tagged field', () => {
    const expected = hex(`
      0000001d                  # size 29
      0000002a                  # correlation id 42, and no tagged section: ApiVersions keeps header v0
      0000                      # error code
      03                        # api keys: compact array of 2
      0000 0000 0009 00         #   Produce 0–9, no tagged fields
      0012 0000 0003 00         #   ApiVersions 0–3
      00000000                  # throttle time
      01 03 01 01               # tagged fields: one, tag 3 (zkMigrationReady), size 1, true
    `);
    const header = { apiKey: API_KEYS.ApiVersions, apiVersion: 3, correlationId: 42, clientId: 'rdkafka' };
    const body = {
      errorCode: 0,
      apiKeys: [
        { apiKey: 0, minVersion: 0, maxVersion: 9 },
        { apiKey: 18, minVersion: 0, maxVersion: 3 },
      ],
      zkMigrationReady: true,
    };
    assert.deepEqual(Buffer.concat(encodeResponse(header, body)), expected);
    const decoded = decodeResponse(API_KEYS.ApiVersions, 3, expected.subarray(4));
    assert.equal(decoded.body.zkMigrationReady, true);
    assert.deepEqual(decoded.body.supportedFeatures, []);
    assert.equal(decoded.body.finalizedFeaturesEpoch, -1);
  });

  test('request header v2 with tagged fields the header does not define (skipped)', () => {
    const frame = hex(`
      0003 0009 00000007        # Metadata v9, correlation id 7
      0007 72646b61666b61       # client id 'rdkafka'
      01 00 02 abcd             # header tagged fields: one, tag 0, size 2 — unknown here, skipped
      02                        # topics: compact array of 1
      02 74 00                  #   name 't', no tagged fields
      01                        # allowAutoTopicCreation
      00 00                     # includeClusterAuthorizedOperations, includeTopicAuthorizedOperations
      01 07 01 ff               # body tagged fields: one, tag 7 (unknown), size 1 — skipped
    `);
    const { header, body } = decodeRequest(frame);
    assert.deepEqual(header, { apiKey: 3, apiVersion: 9, correlationId: 7, clientId: 'rdkafka' });
    assert.deepEqual(body, {
      topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: 't' }],
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
  });

  test('response header v1 for a flexible version (Heartbeat v4)', () => {
    const header = { apiKey: API_KEYS.Heartbeat, apiVersion: 4, correlationId: 0x0a0b0c0d, clientId: null };
    const bytes = Buffer.concat(encodeResponse(header, { throttleTimeMs: 0, errorCode: 27 }));
    assert.deepEqual(
      bytes,
      hex(`
        0000000c                # size 12
        0a0b0c0d 00             # correlation id, header tagged fields: none
        00000000 001b           # throttle time, REBALANCE_IN_PROGRESS
        00                      # body tagged fields: none
      `),
    );
    // The same response at v3 (not flexible): header v0, no tagged sections.
    const v3 = Buffer.concat(encodeResponse({ ...header, apiVersion: 3 }, { throttleTimeMs: 0, errorCode: 27 }));
    assert.deepEqual(v3, hex('0000000a 0a0b0c0d 00000000 001b'));
  });

  test('Produce v9 request: compact nullable string, compact arrays, compact records length', () => {
    const frame = hex(`
      0000 0009 00000001 ffff 00   # Produce v9, correlation id 1, null client id, no header tags
      00                           # transactionalId: null (compact 0)
      ffff 00000bb8                # acks -1, timeout 3000
      02 02 74                     # one topic, name 't'
      02 00000003 04 010203 00     #   one partition: index 3, records (3 bytes), no tagged fields
      00                           #   topic tagged fields
      00                           # body tagged fields
    `);
    const { body } = decodeRequest(frame);
    assert.deepEqual(body, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 3000,
      topicData: [{ name: 't', partitionData: [{ index: 3, records: Buffer.from([1, 2, 3]) }] }],
    });
  });
});

describe('error codes', () => {
  test('ERRORS holds Kafka’s codes by name, and errorName goes back', async () => {
    const { ERRORS, errorName } = await import('./index.ts');
    assert.equal(ERRORS.NONE, 0);
    assert.equal(ERRORS.UNKNOWN_SERVER_ERROR, -1);
    assert.equal(ERRORS.UNKNOWN_TOPIC_OR_PARTITION, 3);
    assert.equal(ERRORS.REBALANCE_IN_PROGRESS, 27);
    assert.equal(ERRORS.UNSUPPORTED_VERSION, 35);
    assert.equal(ERRORS.TOPIC_AUTHORIZATION_FAILED, 29);
    assert.equal(ERRORS.GROUP_AUTHORIZATION_FAILED, 30);
    assert.equal(ERRORS.UNSUPPORTED_COMPRESSION_TYPE, 76);
    assert.equal(ERRORS.SASL_AUTHENTICATION_FAILED, 58);
    assert.equal(errorName(22), 'ILLEGAL_GENERATION');
    assert.equal(errorName(9999), 'UNKNOWN_ERROR_9999');
    assert.equal(new Set(Object.values(ERRORS)).size, Object.keys(ERRORS).length, 'no code twice');
  });
});
