import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { indexFile } from './test-helpers.ts';
import { TIME_INDEX_ENTRY_BYTES, TimeIndex } from './time-index.ts';

const T = 1_700_000_000_000;

function indexOf(entries: [number, number][]): TimeIndex {
  const index = new TimeIndex(1);
  for (const [ts, rel] of entries) index.maybeAppend(ts, rel);
  return index;
}

function fileOf(entries: [number, number][]): Buffer {
  return indexFile(entries, TIME_INDEX_ENTRY_BYTES, (buf, [ts, rel], at) => {
    buf.writeBigInt64BE(BigInt(ts), at);
    buf.writeUInt32BE(rel, at + 8);
  });
}

describe('TimeIndex.lookup', () => {
  // Every record below relative offset 10 is at or before T+100, below 20 at or before T+200, ...
  const index = indexOf([
    [T + 100, 10],
    [T + 200, 20],
    [T + 300, 30],
  ]);

  test('starts a search at offset 0 when no entry is strictly before the time', () => {
    assert.equal(index.lookup(0), 0);
    assert.equal(index.lookup(T + 100), 0, 'a record below offset 10 may have timestamp exactly T+100');
    assert.equal(new TimeIndex().lookup(T), 0);
  });

  test('starts after every record that is provably older than the time', () => {
    assert.equal(index.lookup(T + 101), 10);
    assert.equal(index.lookup(T + 200), 10);
    assert.equal(index.lookup(T + 201), 20);
    assert.equal(index.lookup(T + 300), 20);
    assert.equal(index.lookup(T + 301), 30);
    assert.equal(index.lookup(Number.MAX_SAFE_INTEGER), 30);
  });

  test('last() gives the newest entry, or null when empty', () => {
    assert.deepEqual(index.last(), { timestamp: T + 300, relativeOffset: 30 });
    assert.equal(new TimeIndex().last(), null);
  });
});

describe('TimeIndex.maybeAppend', () => {
  test('skips an entry that does not advance both the timestamp and the offset', () => {
    const index = indexOf([[T, 5]]);
    index.maybeAppend(T, 6);
    index.maybeAppend(T - 1, 7);
    index.maybeAppend(T + 1, 5);
    index.maybeAppend(T + 1, 4);
    assert.equal(index.length, 1);
    index.maybeAppend(T + 1, 6);
    assert.equal(index.length, 2);
    assert.deepEqual(index.last(), { timestamp: T + 1, relativeOffset: 6 });
  });

  test('keeps every entry when growing past its initial capacity', () => {
    const index = new TimeIndex(1);
    for (let i = 1; i <= 500; i++) index.maybeAppend(T + i * 10, i);
    assert.equal(index.length, 500);
    for (let i = 1; i <= 500; i++) assert.equal(index.lookup(T + i * 10 + 1), i);
  });
});

describe('TimeIndex file format', () => {
  test('writes 12-byte big-endian (int64 timestamp, uint32 relative offset) entries', () => {
    const buf = indexOf([[0x0102030405, 0x0a0b0c0d]]).toBuffer();
    assert.deepEqual([...buf], [0, 0, 0, 1, 2, 3, 4, 5, 0x0a, 0x0b, 0x0c, 0x0d]);
  });

  test('round-trips through toBuffer and load, including timestamps above 2^32 and before 1970', () => {
    const entries: [number, number][] = [
      [-(2 ** 40), 1],
      [-1, 2],
      [T, 100],
      [2 ** 52, 2 ** 32 - 1],
    ];
    const loaded = TimeIndex.load(indexOf(entries).toBuffer());
    assert.ok(loaded);
    assert.equal(loaded.length, entries.length);
    assert.deepEqual(loaded.toBuffer(), fileOf(entries));
    assert.deepEqual(loaded.last(), { timestamp: 2 ** 52, relativeOffset: 2 ** 32 - 1 });
    assert.equal(loaded.lookup(T + 1), 100);
  });

  test('loads an empty file as an empty index', () => {
    assert.equal(TimeIndex.load(Buffer.alloc(0))?.length, 0);
  });

  test('rejects a file whose length is not a whole number of entries', () => {
    const buf = fileOf([[T, 1]]);
    assert.equal(TimeIndex.load(buf.subarray(0, 11)), null);
    assert.equal(TimeIndex.load(Buffer.concat([buf, Buffer.alloc(1)])), null);
  });

  test('rejects entries whose timestamps or offsets do not strictly increase', () => {
    const refused = (first: [number, number], second: [number, number], why: string) =>
      assert.equal(TimeIndex.load(fileOf([first, second])), null, why);
    refused([T, 1], [T, 2], 'the same timestamp');
    refused([T, 1], [T - 5, 2], 'an earlier timestamp');
    refused([T, 2], [T + 1, 2], 'the same offset');
    refused([T, 2], [T + 1, 1], 'a lower offset');
    assert.equal(TimeIndex.load(Buffer.alloc(36)), null, 'a zero-filled file');
  });
});

describe('TimeIndex.seal', () => {
  test('adds the closing entry (max timestamp, next relative offset) when it advances both fields', () => {
    const index = indexOf([[T + 100, 10]]);
    index.seal(T + 500, 40);
    assert.deepEqual(index.last(), { timestamp: T + 500, relativeOffset: 40 });
    assert.equal(index.length, 2);
  });

  test('moves the last entry’s offset up when the max timestamp is already the last entry’s', () => {
    // All records share one timestamp, or the newest came early: a plain append would be skipped
    // and the closed segment would have no closing entry.
    const index = indexOf([
      [T, 10],
      [T + 100, 20],
    ]);
    index.seal(T + 100, 35);
    assert.equal(index.length, 2);
    assert.deepEqual(index.last(), { timestamp: T + 100, relativeOffset: 35 });
    assert.equal(index.lookup(T + 101), 35, 'every record of the segment is older than T+101');
    assert.equal(index.lookup(T + 100), 10);
    assert.ok(TimeIndex.load(index.toBuffer()), 'still a valid file');
  });

  test('seals an empty index with one entry, and sealing twice changes nothing', () => {
    const index = new TimeIndex();
    index.seal(T, 3);
    index.seal(T, 3);
    assert.equal(index.length, 1);
    assert.deepEqual(index.last(), { timestamp: T, relativeOffset: 3 });
  });
});
