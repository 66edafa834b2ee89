/**
 * The Kafka wire framing: every request and response is `size int32` followed by `size` bytes.
 * `FrameReader` cuts a connection's byte stream into frames without copying when a frame lies in
 * one chunk (the common case), and refuses a size that is negative or over the limit, which is
 * when Kafka's broker closes the connection too (socket.request.max.bytes, default 100 MiB).
 *
 * Memory: bytes of a frame not yet complete stay in `chunks`. A size is checked as soon as its 4
 * bytes arrive, before any of the frame is held, so a lying size costs nothing. `MemoryPool`
 * bounds the bytes of all connections' frames together (Kafka's queued.max.request.bytes): a frame
 * reserves its size when the size is read, and a connection whose frame does not fit waits, not
 * reading, until other frames are answered and give their bytes back.
 */

const EMPTY = Buffer.alloc(0);

/** The 4-byte size before each frame. */
export const FRAME_SIZE_BYTES = 4;

export type FrameResult =
  | { kind: 'frame'; frame: Buffer }
  | { kind: 'need-more' }
  | { kind: 'bad-size'; size: number }
  | { kind: 'no-memory'; size: number };

export class FrameReader {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** The size of the frame being read (its 4 bytes consumed), or -1 before it is known. */
  private pendingSize = -1;
  /** Whether the pending frame's bytes are reserved in the pool. */
  private reserved = false;

  constructor(
    private readonly frameBytesMax: number,
    private readonly pool: MemoryPool,
  ) {}

  get buffered(): number {
    return this.bufferedBytes;
  }

  /** True while a frame's size has been read (and its bytes reserved) but not all of it has arrived. */
  get midFrame(): boolean {
    return this.reserved;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /**
   * The next whole frame, or why there is none yet. A frame handed out holds `frame.length` bytes
   * of the pool until the caller gives them back with `pool.release`.
   */
  next(): FrameResult {
    if (this.pendingSize < 0) {
      if (this.bufferedBytes < FRAME_SIZE_BYTES) return { kind: 'need-more' };
      const size = this.take(FRAME_SIZE_BYTES).readInt32BE(0);
      if (size < 0 || size > this.frameBytesMax) return { kind: 'bad-size', size };
      this.pendingSize = size;
    }
    if (!this.reserved) {
      if (!this.pool.reserve(this.pendingSize)) return { kind: 'no-memory', size: this.pendingSize };
      this.reserved = true;
    }
    if (this.bufferedBytes < this.pendingSize) return { kind: 'need-more' };
    const frame = this.take(this.pendingSize);
    this.pendingSize = -1;
    this.reserved = false;
    return { kind: 'frame', frame };
  }

  /** Gives back the reservation of a frame being read (the connection is closing). */
  discard(): void {
    if (this.reserved) this.pool.release(this.pendingSize);
    this.reserved = false;
    this.pendingSize = -1;
    this.chunks = [];
    this.bufferedBytes = 0;
  }

  /** The first `n` bytes buffered (n <= bufferedBytes): a view when they lie in one chunk, else a copy. */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.bufferedBytes -= n;
    const first = this.chunks[0];
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}

/**
 * Bytes of request frames held across all connections, bounded. A reservation larger than the whole
 * pool is granted when nothing else is held, so one frame up to the frame limit always gets through.
 */
export class MemoryPool {
  private used = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly bytesMax: number) {}

  get usedBytes(): number {
    return this.used;
  }

  reserve(bytes: number): boolean {
    if (this.used > 0 && this.used + bytes > this.bytesMax) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new Error(`invariant: memory pool released more than it reserved (${this.used})`);
    if (this.waiters.size === 0) return;
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w();
  }

  /** Calls `fn` once, the next time bytes are released. */
  onRelease(fn: () => void): void {
    this.waiters.add(fn);
  }

  forget(fn: () => void): void {
    this.waiters.delete(fn);
  }
}
