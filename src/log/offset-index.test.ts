import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex } from './offset-index.ts';
import { indexFile } from './test-helpers.ts';

function indexOf(entries: [number, number][]): OffsetIndex {
  const index = new OffsetIndex(2);
  for (const [rel, pos] of entries) index.append(rel, pos);
  return index;
}

function fileOf(entries: [number, number][]): Buffer {
  return indexFile(entries, OFFSET_INDEX_ENTRY_BYTES, (buf, [rel, pos], at) => {
    buf.writeUInt32BE(rel, at);
    buf.writeUInt32BE(pos, at + 4);
  });
}

describe('OffsetIndex.lookup', () => {
  const index = indexOf([
    [10, 4100],
    [25, 8300],
    [40, 12500],
  ]);

  test('returns position 0 for an offset before the first entry (or an empty index)', () => {
    assert.equal(index.lookup(0), 0);
    assert.equal(index.lookup(9), 0);
    assert.equal(new OffsetIndex().lookup(123), 0);
  });

  test('returns the position of the last entry at or below the offset', () => {
    assert.equal(index.lookup(10), 4100);
    assert.equal(index.lookup(24), 4100);
    assert.equal(index.lookup(25), 8300);
    assert.equal(index.lookup(39), 8300);
    assert.equal(index.lookup(40), 12500);
    assert.equal(index.lookup(2 ** 31), 12500);
  });

  test('answers from every entry after growing far past its initial capacity', () => {
    const big = new OffsetIndex(1);
    for (let i = 1; i <= 1000; i++) big.append(i * 3, i * 100);
    assert.equal(big.length, 1000);
    for (let i = 1; i <= 1000; i++) {
      assert.equal(big.lookup(i * 3), i * 100);
      assert.equal(big.lookup(i * 3 + 2), i * 100);
    }
    assert.equal(big.lastPosition(), 100_000);
  });

  test('floorEntry gives the entry a search starts from, or (0, 0) for the segment’s first batch', () => {
    assert.deepEqual(index.floorEntry(9), { relativeOffset: 0, position: 0 });
    assert.deepEqual(index.floorEntry(10), { relativeOffset: 10, position: 4100 });
    assert.deepEqual(index.floorEntry(39), { relativeOffset: 25, position: 8300 });
    assert.deepEqual(index.floorEntry(1000), { relativeOffset: 40, position: 12500 });
  });

  test('lastPosition is 0 for an empty index', () => {
    assert.equal(new OffsetIndex().lastPosition(), 0);
    assert.equal(index.lastPosition(), 12500);
  });
});

describe('OffsetIndex.append', () => {
  test('refuses an entry whose offset or position does not increase', () => {
    const index = indexOf([[5, 500]]);
    assert.throws(() => index.append(5, 600), /must increase/);
    assert.throws(() => index.append(4, 600), /must increase/);
    assert.throws(() => index.append(6, 500), /must increase/);
    assert.throws(() => index.append(6, 499), /must increase/);
    index.append(6, 501);
    assert.equal(index.length, 2);
  });
});

describe('OffsetIndex file format', () => {
  test('writes 8-byte big-endian (relative offset, position) entries', () => {
    const buf = indexOf([
      [1, 2],
      [0x01020304, 0x0a0b0c0d],
    ]).toBuffer();
    assert.deepEqual([...buf], [0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
  });

  test('round-trips through toBuffer and load', () => {
    const entries: [number, number][] = [
      [3, 4096],
      [70, 9000],
      [2 ** 32 - 2, 2 ** 31],
    ];
    const loaded = OffsetIndex.load(indexOf(entries).toBuffer(), 2 ** 32 - 1);
    assert.ok(loaded);
    assert.equal(loaded.length, 3);
    assert.deepEqual(loaded.toBuffer(), fileOf(entries));
    assert.equal(loaded.lookup(69), 4096);
    assert.equal(loaded.lookup(70), 9000);
    assert.equal(loaded.lookup(2 ** 32 - 1), 2 ** 31);
  });

  test('loads an empty file as an empty index', () => {
    const loaded = OffsetIndex.load(Buffer.alloc(0), 100);
    assert.ok(loaded);
    assert.equal(loaded.length, 0);
  });

  test('rejects a file whose length is not a whole number of entries', () => {
    const buf = fileOf([[1, 10]]);
    assert.equal(OffsetIndex.load(buf.subarray(0, 7), 1000), null);
    assert.equal(OffsetIndex.load(Buffer.concat([buf, Buffer.alloc(3)]), 1000), null);
  });

  test('rejects entries whose offsets or positions do not strictly increase', () => {
    const refused = (first: [number, number], second: [number, number], why: string) =>
      assert.equal(OffsetIndex.load(fileOf([first, second]), 1000), null, why);
    refused([5, 10], [5, 20], 'the same offset');
    refused([5, 10], [4, 20], 'a lower offset');
    refused([5, 20], [6, 20], 'the same position');
    refused([5, 20], [6, 10], 'a lower position');
  });

  test('rejects a position at or past the end of the segment it indexes', () => {
    assert.equal(OffsetIndex.load(fileOf([[1, 999]]), 1000)?.length, 1);
    assert.equal(OffsetIndex.load(fileOf([[1, 1000]]), 1000), null);
    assert.equal(
      OffsetIndex.load(
        fileOf([
          [1, 10],
          [2, 5000],
        ]),
        1000,
      ),
      null,
    );
  });

  test('rejects a zero-filled file (a preallocated or wiped index)', () => {
    assert.equal(OffsetIndex.load(Buffer.alloc(80), 1 << 20), null);
  });
});
