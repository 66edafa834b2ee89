/**
 * FrameReader and MemoryPool as units: frames cut from any chunking (views when a frame lies in one
 * chunk), sizes refused before any of the frame is held, and the pool bounding the frame bytes of
 * all connections together while always letting one frame through.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameReader, MemoryPool } from './frames.ts';

function framed(...payloads: Buffer[]): Buffer {
  return Buffer.concat(
    payloads.flatMap((p) => {
      const size = Buffer.alloc(4);
      size.writeInt32BE(p.length);
      return [size, p];
    }),
  );
}

function drain(reader: FrameReader, pool: MemoryPool): string[] {
  const out: string[] = [];
  for (;;) {
    const next = reader.next();
    if (next.kind !== 'frame') return out;
    out.push(next.frame.toString());
    pool.release(next.frame.length);
  }
}

test('frames come out whole and in order however the bytes are split', () => {
  const bytes = framed(Buffer.from('first'), Buffer.from(''), Buffer.from('third frame'));
  for (let step = 1; step <= bytes.length; step++) {
    const pool = new MemoryPool(1 << 20);
    const reader = new FrameReader(1024, pool);
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i += step) {
      reader.push(bytes.subarray(i, i + step));
      got.push(...drain(reader, pool));
    }
    assert.deepEqual(got, ['first', '', 'third frame'], `split every ${step} bytes`);
    assert.equal(pool.usedBytes, 0);
  }
});

test('a size over the limit or negative is refused as soon as its four bytes arrive', () => {
  const pool = new MemoryPool(1 << 20);
  const big = new FrameReader(100, pool);
  big.push(Buffer.from([0, 0, 0, 101]));
  assert.deepEqual(big.next(), { kind: 'bad-size', size: 101 });
  const negative = new FrameReader(100, pool);
  negative.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  assert.deepEqual(negative.next(), { kind: 'bad-size', size: -1 });
  assert.equal(pool.usedBytes, 0);
});

test('the pool bounds frame bytes across readers, lets one frame through when empty, and wakes waiters on release', () => {
  const pool = new MemoryPool(100);
  const a = new FrameReader(1000, pool);
  const b = new FrameReader(1000, pool);
  a.push(framed(Buffer.alloc(80)).subarray(0, 10));
  assert.equal(a.next().kind, 'need-more');
  assert.equal(pool.usedBytes, 80, 'reserved when the size is read');
  b.push(framed(Buffer.alloc(50)));
  assert.deepEqual(b.next(), { kind: 'no-memory', size: 50 });
  let woken = false;
  pool.onRelease(() => (woken = true));
  a.discard();
  assert.equal(woken, true);
  assert.equal(pool.usedBytes, 0);
  const frame = b.next();
  assert.equal(frame.kind, 'frame');
  // A frame larger than the whole pool still passes when nothing else is held.
  const c = new FrameReader(1000, pool);
  c.push(framed(Buffer.alloc(500)));
  assert.deepEqual(c.next(), { kind: 'no-memory', size: 500 });
  pool.release(50);
  assert.equal(c.next().kind, 'frame');
  assert.equal(pool.usedBytes, 500);
});

test('a big frame copied from several chunks gets a buffer that is reused once the frame is handed back', () => {
  const pool = new MemoryPool(1 << 24);
  const reader = new FrameReader(1 << 22, pool);
  const read = (payload: Buffer): Buffer => {
    const bytes = framed(payload);
    // Split in chunks of 64 KB, as a socket delivers them: the frame cannot be a view of one chunk.
    for (let i = 0; i < bytes.length; i += 65_536) reader.push(bytes.subarray(i, i + 65_536));
    const next = reader.next();
    assert.equal(next.kind, 'frame');
    return (next as { frame: Buffer }).frame;
  };
  const first = read(Buffer.alloc(300_000, 1));
  assert.ok(first.equals(Buffer.alloc(300_000, 1)));
  const second = read(Buffer.alloc(300_000, 2));
  assert.notEqual(second.buffer, first.buffer, 'a frame still out is never handed out again');
  reader.recycle(first);
  reader.recycle(first);
  assert.equal(pool.spares.heldBytes, 512 * 1024, 'held once, at its power-of-two capacity');
  const third = read(Buffer.alloc(290_000, 3));
  assert.equal(third.buffer, first.buffer, 'the frame handed back holds the next one');
  assert.ok(third.equals(Buffer.alloc(290_000, 3)));
  assert.ok(second.equals(Buffer.alloc(300_000, 2)), 'the frame still out is untouched');
  assert.equal(pool.spares.heldBytes, 0);
});

test('frames that are views of a chunk, small frames and frames beyond the held bound are not kept', () => {
  const pool = new MemoryPool(4 << 20);
  const reader = new FrameReader(1 << 22, pool);
  // One chunk holding a whole frame: the frame is a view of the chunk, whose memory is not ours.
  reader.push(framed(Buffer.alloc(100_000, 7)));
  const view = reader.next() as { frame: Buffer };
  reader.recycle(view.frame);
  assert.equal(pool.spares.heldBytes, 0);
  // The pool of 4 MiB keeps at most a quarter of it: one 1 MiB buffer, not two.
  const big: Buffer[] = [];
  for (let n = 0; n < 2; n++) {
    const bytes = framed(Buffer.alloc(700_000, n));
    for (let i = 0; i < bytes.length; i += 65_536) reader.push(bytes.subarray(i, i + 65_536));
    big.push((reader.next() as { frame: Buffer }).frame);
  }
  for (const frame of big) reader.recycle(frame);
  assert.equal(pool.spares.heldBytes, 1 << 20);
  const small = pool.spares.take(1000);
  pool.spares.give(small);
  assert.equal(pool.spares.heldBytes, 1 << 20);
  // A frame whose power-of-two capacity (2 MiB) could never be kept gets a buffer of its own size.
  const huge = pool.spares.take(1_500_000);
  assert.equal(huge.buffer.byteLength, 1_500_000);
});
