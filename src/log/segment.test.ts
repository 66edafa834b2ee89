import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { defaultFs } from './fs.ts';
import { encodeBatch } from './record-batch.ts';
import { type BatchInfo, LogSegment } from './segment.ts';
import { tempDir } from './test-helpers.ts';

const T0 = 1_700_000_000_000;

describe('LogSegment', () => {
  let tmp: ReturnType<typeof tempDir>;
  const open: LogSegment[] = [];

  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    tmp.cleanup();
  });

  /** Writes `count` batches of `perBatch` records (timestamps from `ts(i)`) to a new segment at `base`. */
  function build(base: number, count: number, ts: (i: number) => number, perBatch = 1): LogSegment {
    const seg = LogSegment.create(defaultFs, tmp.dir, base);
    open.push(seg);
    let offset = base;
    for (let i = 0; i < count; i++) {
      const records = Array.from({ length: perBatch }, () => ({ key: null, value: 'p'.repeat(500), timestamp: ts(i) }));
      const buf = encodeBatch(records, { baseOffset: offset });
      const info: BatchInfo = {
        position: seg.sizeBytes,
        size: buf.length,
        baseOffset: offset,
        lastOffset: offset + perBatch - 1,
        maxTimestamp: Math.max(...records.map((r) => r.timestamp)),
      };
      seg.write([buf], [info]);
      offset += perBatch;
    }
    return seg;
  }

  function reopenClosed(seg: LogSegment): LogSegment {
    const again = LogSegment.open(defaultFs, tmp.dir, seg.baseOffset, false);
    open.push(again);
    again.nextOffset = seg.nextOffset;
    return again;
  }

  test('a finished segment’s index files load on reopen, with its max timestamp', () => {
    const seg = build(100, 40, (i) => T0 + i);
    seg.finish();
    const again = reopenClosed(seg);
    assert.equal(again.loadIndexes(), true);
    assert.equal(again.maxTimestamp, T0 + 39);
  });

  test('a finished segment whose records all share one timestamp still loads its index files on reopen', () => {
    const seg = build(0, 40, () => T0);
    seg.finish();
    const again = reopenClosed(seg);
    assert.equal(again.loadIndexes(), true, 'the index files must be trusted, not rescanned');
    assert.equal(again.maxTimestamp, T0);
  });

  test('a finished segment whose newest record came early still loads its index files on reopen', () => {
    const seg = build(0, 40, (i) => (i === 3 ? T0 + 1_000_000 : T0 + i));
    seg.finish();
    const again = reopenClosed(seg);
    assert.equal(again.loadIndexes(), true);
    assert.equal(again.maxTimestamp, T0 + 1_000_000);
  });

  test('rejects index files that do not reach the end of the segment, and rebuilds them by a scan', () => {
    const seg = build(0, 40, (i) => T0 + i);
    seg.finish();
    const again = reopenClosed(seg);
    again.nextOffset = 41; // as if the segment had one more batch than its index covers
    assert.equal(again.loadIndexes(), false);
    const result = again.rebuildIndexes();
    assert.equal(result.problem, null);
    assert.equal(result.nextOffset, 40);
    assert.equal(again.maxTimestamp, T0 + 39);
  });

  test('findPosition finds the batch holding an offset, including offsets inside multi-record batches', () => {
    const seg = build(0, 30, (i) => T0 + i, 3);
    seg.finish();
    const again = reopenClosed(seg);
    const starts: number[] = [];
    again.scan(0, 0, again.sizeBytes, (b) => starts.push(b.position));
    for (let offset = 0; offset < 90; offset++) {
      const batch = Math.floor(offset / 3);
      assert.deepEqual(
        again.findPosition(offset, again.sizeBytes),
        { position: starts[batch], baseOffset: batch * 3 },
        `offset ${offset}`,
      );
    }
    assert.deepEqual(
      again.findPosition(90, again.sizeBytes),
      { position: again.sizeBytes, baseOffset: 90 },
      'past the end: the end',
    );
  });

  test('findPosition stops at a batch whose base offset breaks the chain, and says which base offset it should have', () => {
    const seg = build(0, 10, (i) => T0 + i, 2);
    const starts: number[] = [];
    seg.scan(0, 0, seg.sizeBytes, (b) => starts.push(b.position));
    const bytes = fs.readFileSync(seg.logPath);
    bytes[starts[4] + 7] ^= 0x01; // batch 4 (offsets 8-9) now claims to start at 9
    fs.writeFileSync(seg.logPath, bytes);
    assert.deepEqual(seg.findPosition(9, seg.sizeBytes), { position: starts[4], baseOffset: 8 });
    assert.deepEqual(
      seg.findPosition(12, seg.sizeBytes),
      { position: starts[4], baseOffset: 8 },
      'a walk does not skip past the damage',
    );
  });

  test('scan reports a torn tail as incomplete and a gap in offsets as bad-offset', () => {
    const seg = build(0, 3, (i) => T0 + i);
    const end = seg.sizeBytes;
    const wrongOffset = encodeBatch([{ key: null, value: 'x', timestamp: T0 }], { baseOffset: 7 });
    fs.appendFileSync(seg.logPath, wrongOffset);
    let result = seg.scan(0, 0, end + wrongOffset.length);
    assert.equal(result.problem?.kind, 'bad-offset');
    assert.equal(result.validBytes, end);
    assert.equal(result.nextOffset, 3);
    fs.truncateSync(seg.logPath, end + 20);
    result = seg.scan(0, 0, end + 20);
    assert.equal(result.problem?.kind, 'incomplete');
    assert.equal(result.validBytes, end);
  });

  test('refuses, before writing a byte, a batch whose offset does not follow the last one (a gap or a repeat)', () => {
    const seg = build(100, 3, () => T0);
    const size = seg.sizeBytes;
    for (const base of [104, 102]) {
      const buf = encodeBatch([{ key: null, value: 'x', timestamp: T0 }], { baseOffset: base });
      const info: BatchInfo = {
        position: size,
        size: buf.length,
        baseOffset: base,
        lastOffset: base,
        maxTimestamp: T0,
      };
      assert.throws(() => seg.write([buf], [info]), {
        name: 'InvariantError',
        message: new RegExp(`offset ${base} does not follow 102`),
      });
      assert.equal(fs.statSync(seg.logPath).size, size, 'nothing was written');
      assert.equal(seg.nextOffset, 103);
    }
  });
});
