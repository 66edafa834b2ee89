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
 *
 * A frame that spans several socket chunks is copied into a buffer of its own. For big frames
 * (Produce requests of a MiB) those buffers are handed back once the request no longer refers to
 * them (`FrameReader.recycle`) and reused: V8 runs a full garbage collection for every 64 MiB of
 * buffers allocated, which at hundreds of MB/s of produced records was a sixth of the thread.
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

  /**
   * Hands back a frame that nothing refers to any more (its request answered, and its handler said
   * it kept none of its bytes), so its buffer may hold a later frame. Frames that are views of a
   * socket chunk are left alone.
   */
  recycle(frame: Buffer): void {
    this.pool.spares.give(frame);
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
    const out = this.pool.spares.take(n);
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
  /** Buffers of answered frames, kept for the next ones (at most 16 MiB, or a quarter of the pool). */
  readonly spares: SpareFrames;

  constructor(readonly bytesMax: number) {
    this.spares = new SpareFrames(Math.min(SPARE_BYTES_HELD_MAX, Math.floor(bytesMax / 4)));
  }

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

/** Frames below this size are copied into fresh buffers: they cost the collector little. */
const SPARE_BYTES_MIN = 64 * 1024;
const SPARE_BYTES_HELD_MAX = 16 * 1024 * 1024;

/**
 * Buffers for frames, by power-of-two capacity, reused once their frame is handed back. A buffer is
 * taken back only if this object handed it out and it is out now, so a view of someone else's
 * memory, or a frame given back twice, is never reused.
 */
export class SpareFrames {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly out = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  constructor(private readonly bytesMax: number) {}

  /** Bytes held for reuse now. */
  get heldBytes(): number {
    return this.freeBytes;
  }

  /** A buffer of `n` bytes (contents undefined). */
  take(n: number): Buffer {
    const capacity = 2 ** Math.ceil(Math.log2(n));
    // Too small to be worth keeping, or too big ever to be kept: a buffer of its own size.
    if (n < SPARE_BYTES_MIN || capacity > this.bytesMax) return Buffer.allocUnsafe(n);
    let ab = this.free.get(capacity)?.pop();
    if (ab === undefined) ab = new ArrayBuffer(capacity);
    else this.freeBytes -= capacity;
    this.out.add(ab);
    return Buffer.from(ab, 0, n);
  }

  give(frame: Buffer): void {
    const ab = frame.buffer;
    if (!(ab instanceof ArrayBuffer) || frame.byteOffset !== 0 || !this.out.delete(ab)) return;
    if (this.freeBytes + ab.byteLength > this.bytesMax) return;
    const list = this.free.get(ab.byteLength);
    if (list === undefined) this.free.set(ab.byteLength, [ab]);
    else list.push(ab);
    this.freeBytes += ab.byteLength;
  }
}
