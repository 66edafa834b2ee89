import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEYS, API_SPECS, KafkaProtocolError, decodeRequest, decodeResponse, encodeRequest } from './index.ts';
import { generateBody, seededRandom, type Rand } from './test-helpers.ts';

function expectMalformed(frame: Buffer, pattern?: RegExp): KafkaProtocolError {
  try {
    decodeRequest(frame);
  } catch (err) {
    assert.ok(err instanceof KafkaProtocolError, `expected a KafkaProtocolError, got ${String(err)}`);
    assert.equal(err.kind, 'malformed', err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail('the frame decoded');
}

/** A request header v1 (api key, version, correlation id, client id 'c'). */
function header(apiKey: number, version: number, correlationId = 77): Buffer {
  const b = Buffer.alloc(11);
  b.writeInt16BE(apiKey, 0);
  b.writeInt16BE(version, 2);
  b.writeInt32BE(correlationId, 4);
  b.writeInt16BE(1, 8);
  b.write('c', 10);
  return b;
}

const int16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
const int32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
};

describe('malformed requests are refused with KafkaProtocolError("malformed")', () => {
  test('a string length that runs past the end of the frame', () => {
    // FindCoordinator v0: key (string). Claims 100 bytes, has 3.
    const frame = Buffer.concat([header(API_KEYS.FindCoordinator, 0), int16(100), Buffer.from('abc')]);
    const err = expectMalformed(frame, /key needs 100 bytes/);
    assert.equal(err.header?.correlationId, 77, 'the error carries the header');
  });

  test('a negative length other than -1 on a nullable string', () => {
    // Produce v3: transactionalId (nullable string) = -2.
    expectMalformed(Buffer.concat([header(API_KEYS.Produce, 3), int16(-2)]), /negative length -2/);
  });

  test('a negative length other than -1 on a nullable records field', () => {
    const frame = Buffer.concat([
      header(API_KEYS.Produce, 3),
      int16(-1), // transactionalId
      int16(1), // acks
      int32(1000), // timeoutMs
      int32(1), // one topic
      int16(1),
      Buffer.from('t'),
      int32(1), // one partition
      int32(0), // index
      int32(-5), // records length
    ]);
    expectMalformed(frame, /records has a negative length -5/);
  });

  test('null where the version does not allow it', () => {
    // FindCoordinator v0's key is not nullable.
    expectMalformed(Buffer.concat([header(API_KEYS.FindCoordinator, 0), int16(-1)]), /key is null/);
  });

  test('trailing bytes after the body', () => {
    const frame = Buffer.concat([header(API_KEYS.FindCoordinator, 0), int16(1), Buffer.from('g'), Buffer.from([0])]);
    expectMalformed(frame, /1 bytes left over/);
  });

  test('an array count larger than the bytes left could hold fails at once, without allocating it', () => {
    const frame = Buffer.concat([header(API_KEYS.Produce, 3), int16(-1), int16(1), int32(1000), int32(0x7fffffff)]);
    const started = process.hrtime.bigint();
    const rssBefore = process.memoryUsage().rss;
    expectMalformed(frame, /claims 2147483647 elements/);
    assert.ok(process.hrtime.bigint() - started < 50_000_000n, 'refused in well under 50 ms');
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024, 'no large allocation');
  });

  test('a compact length that lies (flexible version)', () => {
    // SaslAuthenticate v2: authBytes as compact bytes, claiming 2^28 bytes.
    const frame = Buffer.concat([
      header(API_KEYS.SaslAuthenticate, 2),
      Buffer.from([0]),
      Buffer.from([0x81, 0x80, 0x80, 0x80, 0x01]),
    ]);
    expectMalformed(frame, /needs 268435456 bytes/);
  });

  test('an unsigned varint longer than 5 bytes', () => {
    const frame = Buffer.concat([header(API_KEYS.SaslAuthenticate, 2), Buffer.from([0]), Buffer.alloc(6, 0xff)]);
    expectMalformed(frame, /varint/);
  });

  test('a tagged field whose size runs past the end', () => {
    // Heartbeat v4 request, header v2 tagged section: one field, tag 0, size 50, 2 bytes.
    const frame = Buffer.concat([header(API_KEYS.Heartbeat, 4), Buffer.from([1, 0, 50, 1, 2])]);
    expectMalformed(frame, /tagged field needs 50 bytes/);
  });

  test('a tagged field whose value is shorter than its size says', () => {
    // Fetch v12 request with tag 0 (clusterId, a compact nullable string) of size 3 holding a 1-byte string.
    const flexibleHeader = Buffer.concat([header(API_KEYS.Fetch, 12), Buffer.from([0])]);
    const fixed = Buffer.concat([int32(-1), int32(0), int32(0), int32(0), Buffer.from([0]), int32(0), int32(0)]);
    const body = Buffer.concat([Buffer.from([1, 1, 1, 0, 0]), Buffer.from([1, 1, 1, 3, 0x00, 0x00, 0x00])]);
    // topics, forgottenTopicsData, rackId: empty compact arrays/string, then the tagged section.
    const frame = Buffer.concat([flexibleHeader, fixed, body]);
    assert.throws(() => decodeRequest(frame), KafkaProtocolError);
  });

  test('a frame too short for a header has no header on the error', () => {
    const err = expectMalformed(Buffer.from([0, 1, 0]));
    assert.equal(err.header, undefined);
  });

  test('an unknown API key and an unsupported version carry the header', () => {
    const unknown = captured(() => decodeRequest(header(999, 0, 5)));
    assert.equal(unknown.kind, 'unknown-api');
    assert.deepEqual(unknown.header, { apiKey: 999, apiVersion: 0, correlationId: 5, clientId: 'c' });
    const tooNew = captured(() => decodeRequest(header(API_KEYS.ApiVersions, 99, 6)));
    assert.equal(tooNew.kind, 'unsupported-version');
    assert.equal(tooNew.header?.correlationId, 6);
    assert.match(tooNew.message, /ApiVersions version 99 is not supported \(supported: 0–4\)/);
  });
});

function captured(fn: () => unknown): KafkaProtocolError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KafkaProtocolError);
    return err;
  }
  assert.fail('no error');
}

function mustOnlyThrowProtocolErrors(fn: () => unknown, what: string): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof KafkaProtocolError)) {
      assert.fail(`${what} threw ${(err as Error)?.stack ?? String(err)}`);
    }
    return false;
  }
}

function validFrames(rand: Rand): Buffer[] {
  const frames: Buffer[] = [];
  for (const spec of API_SPECS.values()) {
    for (let v = spec.minVersion; v <= spec.maxVersion; v++) {
      const h = { apiKey: spec.key, apiVersion: v, correlationId: frames.length, clientId: 'fuzz' };
      frames.push(encodeRequest(h, generateBody(spec.request, v, rand)).subarray(4));
    }
  }
  return frames;
}

describe('fuzz: nothing but KafkaProtocolError, ever', () => {
  const rand = seededRandom(1515);
  const frames = validFrames(rand);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];

  test('random truncations of valid frames of every API and version', () => {
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const frame = pick(frames);
      const cut = frame.subarray(0, Math.floor(rand() * frame.length));
      if (mustOnlyThrowProtocolErrors(() => decodeRequest(cut), `truncation #${i}`)) decoded++;
    }
    assert.ok(decoded < 300, `most truncations are refused (${decoded} decoded)`);
  });

  test('bit flips and lying lengths in valid frames', () => {
    for (let i = 0; i < 3000; i++) {
      const frame = Buffer.from(pick(frames));
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rand() * frame.length);
        if (rand() < 0.5) frame[at] ^= 1 << Math.floor(rand() * 8);
        else frame[at] = pick([0x00, 0x7f, 0x80, 0xff]);
      }
      mustOnlyThrowProtocolErrors(() => decodeRequest(frame), `mutation #${i}`);
    }
  });

  test('random garbage, after a valid header and without one', () => {
    const keys = [...API_SPECS.values()];
    for (let i = 0; i < 3000; i++) {
      const garbage = Buffer.alloc(Math.floor(rand() * 120));
      for (let j = 0; j < garbage.length; j++) garbage[j] = Math.floor(rand() * 256);
      const spec = pick(keys);
      const version = spec.minVersion + Math.floor(rand() * (spec.maxVersion - spec.minVersion + 1));
      const frame = rand() < 0.7 ? Buffer.concat([header(spec.key, version), garbage]) : garbage;
      mustOnlyThrowProtocolErrors(() => decodeRequest(frame), `garbage #${i}`);
      mustOnlyThrowProtocolErrors(() => decodeResponse(spec.key, version, garbage), `garbage response #${i}`);
    }
  });
});
