import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { murmur2, partitionForKey } from './partitioner.ts';
import { seededRandom } from '../random.ts';

const require = createRequire(import.meta.url);
// kafkajs's "default" murmur2 is its Java-compatible one (the "legacy" one is not).
const kafkaMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  key: Buffer | string,
) => number;
/** kafkajs/src/producer/partitioners/legacy/partitioner.js: `toPositive(murmur2(message.key)) % numPartitions`. */
const toPositive = (x: number): number => x & 0x7fffffff;
const kafkaPartition = (key: Buffer, partitions: number): number => toPositive(kafkaMurmur2(key)) % partitions;

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyz0123456789-_.:',
  'äöüßéèçñøåЖжЯяΩω',
  '日本語中文한국어',
  '😀🎉🗝️👍🏽',
  '\u0000\u0001\u007f\u0080\u00ff',
];

function randomKey(next: () => number): string {
  const length = Math.floor(next() * 40); // 0..39 characters: every tail length of murmur2's 4-byte loop
  const alphabet = ALPHABETS[Math.floor(next() * ALPHABETS.length)];
  const chars = [...alphabet];
  let s = '';
  for (let i = 0; i < length; i++) {
    // Mix alphabets inside one key now and then.
    const from = next() < 0.2 ? [...ALPHABETS[Math.floor(next() * ALPHABETS.length)]] : chars;
    s += from[Math.floor(next() * from.length)];
  }
  return s;
}

describe('murmur2', () => {
  test("matches Apache Kafka's UtilsTest.testMurmur2 vectors", () => {
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, expected] of cases) assert.equal(murmur2(Buffer.from(key)), expected, key);
  });

  test("matches the Java values in kafkajs's own spec for its Java-compatible murmur2", () => {
    // From kafkajs src/producer/partitioners/defaultJava/murmur2.spec.js, "generated with
    // src/producer/partitioners/defaultJava/Test.java" (the Java client's Utils.murmur2).
    const javaValues: Record<string, number> = {
      '0': 971027396,
      '1': -1993445489,
      '128': -326012175,
      '2187': -1508407203,
      '16384': -325739742,
      '78125': -1654490814,
      '279936': 1462227128,
      '823543': -2014198330,
      '2097152': 607668903,
      '4782969': -1182699775,
      '10000000': -1830336757,
      '19487171': -1603849305,
      '35831808': -857013643,
      '62748517': -1167431028,
      '105413504': -381294639,
      '170859375': -1658323481,
      '100:48069': 1009543857,
    };
    for (const [key, expected] of Object.entries(javaValues)) assert.equal(murmur2(Buffer.from(key)), expected, key);
  });

  test('returns a signed 32-bit integer', () => {
    const next = seededRandom(7);
    for (let i = 0; i < 1000; i++) {
      const h = murmur2(Buffer.from(randomKey(next)));
      assert.ok(Number.isInteger(h) && h >= -(2 ** 31) && h < 2 ** 31, String(h));
    }
  });
});

describe('partitionForKey', () => {
  test("picks the same partition as kafkajs's Java-compatible partitioner for 12,000 random keys", () => {
    const next = seededRandom(2024);
    const partitionCounts = [1, 2, 3, 7, 12, 16, 100, 1000];
    let checked = 0;
    for (let i = 0; i < 12_000; i++) {
      const key = randomKey(next);
      const bytes = Buffer.from(key, 'utf8');
      assert.equal(murmur2(bytes), kafkaMurmur2(bytes), `murmur2 of ${JSON.stringify(key)}`);
      for (const n of partitionCounts) {
        const expected = kafkaPartition(bytes, n);
        assert.equal(partitionForKey(key, n), expected, `key ${JSON.stringify(key)} with ${n} partitions`);
        assert.equal(partitionForKey(bytes, n), expected, `key bytes of ${JSON.stringify(key)} with ${n} partitions`);
        checked++;
      }
    }
    assert.equal(checked, 12_000 * partitionCounts.length);
  });

  test('agrees with kafkajs on arbitrary binary keys, including bytes >= 0x80 in every position', () => {
    const next = seededRandom(99);
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.alloc(Math.floor(next() * 33));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
      for (const n of [3, 64, 997])
        assert.equal(partitionForKey(bytes, n), kafkaPartition(bytes, n), bytes.toString('hex'));
    }
  });

  test('hashes a string key as its UTF-8 bytes', () => {
    for (const key of ['é', '😀', 'ключ', 'a\u0000b'])
      assert.equal(murmur2(Buffer.from(key, 'utf8')), kafkaMurmur2(Buffer.from(key, 'utf8')), key);
    for (const key of ['é', 'ключ']) {
      assert.equal(partitionForKey(key, 1000), partitionForKey(Buffer.from(key, 'utf8'), 1000));
      assert.notEqual(partitionForKey(key, 1000), partitionForKey(Buffer.from(key, 'latin1'), 1000), key);
    }
  });

  test('makes negative hashes positive by masking the sign bit, as Kafka does (not Math.abs)', () => {
    // "2187" hashes to -1508407203: masking gives 639076445, Math.abs would give 1508407203.
    assert.equal(partitionForKey('2187', 1000), 445);
    assert.notEqual(partitionForKey('2187', 1000), Math.abs(-1508407203) % 1000);
  });

  test('always returns a partition in range', () => {
    const next = seededRandom(5);
    for (let i = 0; i < 2000; i++) {
      const n = 1 + Math.floor(next() * 50);
      const p = partitionForKey(randomKey(next), n);
      assert.ok(Number.isInteger(p) && p >= 0 && p < n);
    }
  });
});
