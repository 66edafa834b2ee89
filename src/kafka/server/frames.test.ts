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
