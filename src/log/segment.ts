/**
 * One segment of a partition: `<base>.log` holds whole RecordBatch v2 batches back to back, with
 * offsets that continue without gaps from `baseOffset`; `<base>.index` and `<base>.timeindex` are
 * its sparse indexes (see offset-index.ts and time-index.ts); `<base>.snapshot`, when present, holds
 * the partition's producer state as of `baseOffset` (see producer-state.ts).
 *
 * Invariants: batches are contiguous in offset and in bytes; `sizeBytes` is where the next batch
 * is written; only the partition's last (active) segment is ever written to, and only by the
 * partition's single group-commit writer (group-commit.ts), so no locking is needed. Readers read `readableBytes`, which
 * trails `sizeBytes` until the partition's fsync policy has made the bytes durable.
 * Crash behaviour: a crash can leave a torn batch at the end of the active segment; the partition
 * finds it with `scan` on open and truncates it. Closed segments were fsynced before the next one
 * was created, so damage there is corruption, never a torn write.
 */
import { join } from 'node:path';
import { invariant } from '../assert.ts';
import { type LogFs, fsyncDir, readAsync, readFully, writeFileAtomic } from './fs.ts';
import { OffsetIndex } from './offset-index.ts';
import {
  BATCH_HEADER_BYTES,
  BatchField,
  MAGIC_V2,
  baseOffsetAt,
  batchSizeAt,
  lastOffsetAt,
  readHeaderFields,
} from './format/index.ts';
import { type BatchProblem, checkBatch } from './record-batch.ts';
import { segmentFileName } from './names.ts';
import { TimeIndex } from './time-index.ts';

export const INDEX_INTERVAL_BYTES = 4096;
const SCAN_CHUNK_BYTES = 1 << 20;
/** Batches at least this large are walked by their headers alone (rebuildIndexesFromHeaders). */
const HEADER_WALK_MIN_BATCH = 64 * 1024;
/** Longest batch a scan accepts; a length field above it is treated as damage. */
export const BATCH_BYTES_MAX = 256 << 20;

export type ScanProblemKind = BatchProblem | 'bad-offset';

export interface ScanProblem {
  kind: ScanProblemKind;
  position: number;
  detail: string;
}

export interface BatchInfo {
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  /** Idempotent-producer fields of the batch header; set by `scan` and `walkHeaders`. */
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
}

/** The `BatchInfo` of the batch whose header is at `rel` in `chunk` and at `position` in the file. */
function batchInfoAt(chunk: Buffer, rel: number, position: number, size: number): BatchInfo {
  return { position, size, ...readHeaderFields(chunk, rel) };
}

export interface ScanResult {
  /** Position just after the last valid batch. */
  validBytes: number;
  nextOffset: number;
  problem: ScanProblem | null;
}

export class LogSegment {
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  readonly snapshotPath: string;
  sizeBytes: number;
  /** Bytes readers may see: all of a closed segment; the durable prefix of the active one. */
  readableBytes: number;
  nextOffset: number;
  /** Newest record timestamp in the segment, -1 when empty or not yet known. */
  maxTimestamp = -1;
  /** Max timestamp of the first batch: time-based rolling compares record time with it, not wall time. */
  firstBatchMaxTimestamp = -1;
  deleted = false;
  private index: OffsetIndex | null = null;
  private timeIndex: TimeIndex | null = null;
  private bytesSinceIndexEntry = 0;
  /** Descriptors of the file kept for fsyncs that run side by side (see `takeSyncFd`), idle ones. */
  private idleSyncFds: number[] = [];
  /** Whether `retireSyncFds` ran: a descriptor given back is closed, not kept. */
  private syncFdsRetired = false;

  private constructor(
    private readonly fs: LogFs,
    readonly dir: string,
    readonly baseOffset: number,
    public fd: number,
    sizeBytes: number,
  ) {
    this.logPath = join(dir, segmentFileName(baseOffset, '.log'));
    this.indexPath = join(dir, segmentFileName(baseOffset, '.index'));
    this.timeIndexPath = join(dir, segmentFileName(baseOffset, '.timeindex'));
    this.snapshotPath = join(dir, segmentFileName(baseOffset, '.snapshot'));
    this.sizeBytes = sizeBytes;
    this.readableBytes = sizeBytes;
    this.nextOffset = baseOffset;
  }

  /** Creates a new empty segment file; the directory fsync makes its name survive a crash. */
  static create(fs: LogFs, dir: string, baseOffset: number): LogSegment {
    const fd = fs.openSync(join(dir, segmentFileName(baseOffset, '.log')), 'wx+');
    fsyncDir(fs, dir);
    const seg = new LogSegment(fs, dir, baseOffset, fd, 0);
    seg.index = new OffsetIndex();
    seg.timeIndex = new TimeIndex();
    return seg;
  }

  static open(fs: LogFs, dir: string, baseOffset: number, writable: boolean): LogSegment {
    const fd = fs.openSync(join(dir, segmentFileName(baseOffset, '.log')), writable ? 'r+' : 'r');
    return new LogSegment(fs, dir, baseOffset, fd, fs.fstatSync(fd).size);
  }

  get isEmpty(): boolean {
    return this.nextOffset === this.baseOffset;
  }

  /**
   * Loads the index files of a segment whose end (`nextOffset`) is known. Returns false when they
   * are missing or implausible, in which case the caller rebuilds them with `rebuildIndexes`.
   */
  loadIndexes(): boolean {
    try {
      if (!this.fs.existsSync(this.indexPath) || !this.fs.existsSync(this.timeIndexPath)) return false;
      const index = OffsetIndex.load(this.fs.readFileSync(this.indexPath), this.sizeBytes);
      const timeIndex = TimeIndex.load(this.fs.readFileSync(this.timeIndexPath));
      if (!index || !timeIndex) return false;
      const sentinel = timeIndex.last();
      if (!this.isEmpty && (!sentinel || sentinel.relativeOffset !== this.nextOffset - this.baseOffset)) return false;
      this.index = index;
      this.timeIndex = timeIndex;
      this.maxTimestamp = sentinel ? sentinel.timestamp : -1;
      this.bytesSinceIndexEntry = this.sizeBytes - index.lastPosition();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Rebuilds the in-memory indexes from the valid batches of the file (used when index files are
   * bad, and on every open of the active segment). `onBatch` sees every valid batch too.
   */
  rebuildIndexes(onBatch?: (b: BatchInfo) => void): ScanResult {
    this.index = new OffsetIndex();
    this.timeIndex = new TimeIndex();
    this.bytesSinceIndexEntry = 0;
    this.maxTimestamp = -1;
    this.firstBatchMaxTimestamp = -1;
    const result = this.scan(0, this.baseOffset, this.sizeBytes, (b) => {
      this.track(b);
      onBatch?.(b);
    });
    this.nextOffset = result.nextOffset;
    return result;
  }

  /**
   * `rebuildIndexes` for a reader that never writes (a worker thread's read-only log, opened while
   * the writer runs): where batches are large, only their headers are read (a pread of 61 bytes
   * each), not their bodies, and no CRC is checked here; every read checks the CRC of the batches
   * it hands out, so a damaged batch still fails the read that reaches it. From the first batch
   * smaller than HEADER_WALK_MIN_BATCH (reading its header alone would cost more than reading it),
   * or the first header that is implausible, it goes on with the checked scan, whose result stands.
   * On a 44 MB active segment of 110 KB batches: about 1 ms instead of 60-100 ms per partition.
   */
  rebuildIndexesFromHeaders(): ScanResult {
    this.index = new OffsetIndex();
    this.timeIndex = new TimeIndex();
    this.bytesSinceIndexEntry = 0;
    this.maxTimestamp = -1;
    this.firstBatchMaxTimestamp = -1;
    const header = Buffer.allocUnsafe(BATCH_HEADER_BYTES);
    const end = this.sizeBytes;
    let position = 0;
    let next = this.baseOffset;
    while (position + BATCH_HEADER_BYTES <= end) {
      if (readFully(this.fs, this.fd, header, BATCH_HEADER_BYTES, position) < BATCH_HEADER_BYTES) break;
      const size = batchSizeAt(header, 0);
      if (
        size < HEADER_WALK_MIN_BATCH ||
        !plausibleSize(size, end - position) ||
        header[BatchField.magic] !== MAGIC_V2 ||
        baseOffsetAt(header, 0) !== next
      )
        break;
      this.track(batchInfoAt(header, 0, position, size));
      next = lastOffsetAt(header, 0) + 1;
      position += size;
    }
    const rest =
      position < end
        ? this.scan(position, next, end, (b) => this.track(b))
        : { validBytes: position, nextOffset: next, problem: null };
    this.nextOffset = rest.nextOffset;
    return rest;
  }

  private ensureIndexes(): void {
    if (this.index && this.timeIndex) return;
    if (!this.loadIndexes()) this.rebuildIndexes();
  }

  /** Records a batch just written at `info.position` in the indexes and the segment's bounds. */
  track(info: BatchInfo): void {
    const index = this.index!;
    const timeIndex = this.timeIndex!;
    if (info.position > 0 && this.bytesSinceIndexEntry >= INDEX_INTERVAL_BYTES) {
      const rel = info.baseOffset - this.baseOffset;
      index.append(rel, info.position);
      if (this.maxTimestamp >= 0) timeIndex.maybeAppend(this.maxTimestamp, rel);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += info.size;
    if (this.firstBatchMaxTimestamp < 0) this.firstBatchMaxTimestamp = info.maxTimestamp;
    if (info.maxTimestamp > this.maxTimestamp) this.maxTimestamp = info.maxTimestamp;
    this.nextOffset = info.lastOffset + 1;
    this.sizeBytes = info.position + info.size;
  }

  /** Appends whole batches at the end of the file with one writev. Only the partition's group-commit writer calls it. */
  write(buffers: Buffer[], infos: BatchInfo[]): void {
    // Offsets climb without gaps: each batch starts right after the last offset before it. Checked
    // before any byte is written, so a wrong offset never reaches the file.
    let next = this.nextOffset;
    for (const info of infos) {
      invariant(
        info.baseOffset === next,
        () => `${this.logPath} append: offset ${info.baseOffset} does not follow ${next - 1}`,
      );
      next = info.lastOffset + 1;
    }
    let position = this.sizeBytes;
    let expected = 0;
    for (const b of buffers) expected += b.length;
    const written = this.fs.writevSync(this.fd, buffers, position);
    if (written < expected) {
      // writev may write less than asked (rare: a signal, a nearly full disk); finish with plain writes.
      const rest = Buffer.concat(buffers).subarray(written);
      let done = 0;
      while (done < rest.length)
        done += this.fs.writeSync(this.fd, rest, done, rest.length - done, position + written + done);
    }
    for (const info of infos) {
      if (info.position !== position)
        throw new Error(`batch position ${info.position} does not follow segment end ${position}`);
      this.track(info);
      position += info.size;
    }
  }

  /**
   * Marks the segment closed: adds the time-index entry that records its newest timestamp and
   * writes both indexes atomically. The caller has fsynced the log file first, so the index never
   * describes bytes that a crash could take away.
   */
  finish(): void {
    this.ensureIndexes();
    if (!this.isEmpty) this.timeIndex!.seal(this.maxTimestamp, this.nextOffset - this.baseOffset);
    writeFileAtomic(this.fs, this.indexPath, this.index!.toBuffer());
    writeFileAtomic(this.fs, this.timeIndexPath, this.timeIndex!.toBuffer());
  }

  /**
   * A descriptor of this segment's file of its own for one fsync, to give back with `giveSyncFd`
   * once it returns. Fsyncs that overlap each use their own: Linux reports a write-back error to
   * one fsync per open file, so two on the same descriptor could see one fail and the other
   * succeed although its bytes were lost too; with a descriptor each, every fsync that returns
   * reports the errors on the pages it waited for.
   */
  takeSyncFd(): number {
    return this.idleSyncFds.pop() ?? this.fs.openSync(this.logPath, 'r');
  }

  giveSyncFd(fd: number): void {
    if (this.syncFdsRetired) this.fs.closeSync(fd);
    else this.idleSyncFds.push(fd);
  }

  /** Closes the fsync descriptors (the segment is closed or done with); busy ones close when given back. */
  retireSyncFds(): void {
    this.syncFdsRetired = true;
    for (const fd of this.idleSyncFds.splice(0)) this.fs.closeSync(fd);
  }

  truncate(size: number): void {
    this.fs.ftruncateSync(this.fd, size);
    this.fs.fsyncSync(this.fd);
    this.sizeBytes = size;
    this.readableBytes = Math.min(this.readableBytes, size);
  }

  close(): void {
    this.retireSyncFds();
    this.fs.closeSync(this.fd);
  }

  /** Unlinks the segment's files. The fd stays open a while so an in-flight read of it completes. */
  delete(): void {
    for (const p of [this.logPath, this.indexPath, this.timeIndexPath, this.snapshotPath]) {
      try {
        this.fs.unlinkSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.forget();
  }

  /** Drops a segment another process deleted (read-only mode); the fd closes after a grace period. */
  forget(): void {
    this.deleted = true;
    this.retireSyncFds();
    const fd = this.fd;
    setTimeout(() => {
      try {
        this.fs.closeSync(fd);
      } catch {
        /* already closed by close() */
      }
    }, 60_000).unref();
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let total = 0;
    while (total < length) {
      const n = await readAsync(this.fs, this.fd, buf.subarray(total), length - total, position + total);
      if (n === 0) break;
      total += n;
    }
    return total === length ? buf : buf.subarray(0, total);
  }

  /**
   * Byte position of the batch that holds `offset` (or of the first batch after it), found by an
   * index lookup and then a walk over batch headers of at most about INDEX_INTERVAL_BYTES, and the
   * base offset that batch must have. The CRC does not cover a batch's base offset, so the walk
   * checks that each header continues the offsets of the one before; at a header that does not,
   * it stops there, and the caller's check of that batch reports the damage instead of trusting it.
   */
  findPosition(offset: number, limit: number): { position: number; baseOffset: number } {
    this.ensureIndexes();
    const entry = this.index!.floorEntry(offset - this.baseOffset);
    let pos = entry.position;
    let expected = this.baseOffset + entry.relativeOffset;
    // Enough of the header for the base offset, the length and the last offset delta.
    const headerBytes = BatchField.lastOffsetDelta + 4;
    const header = Buffer.allocUnsafe(headerBytes);
    while (pos < limit) {
      if (readFully(this.fs, this.fd, header, headerBytes, pos) < headerBytes) break;
      if (baseOffsetAt(header, 0) !== expected) break;
      const lastOffset = lastOffsetAt(header, 0);
      if (lastOffset >= offset) break;
      pos += batchSizeAt(header, 0);
      expected = lastOffset + 1;
    }
    return { position: Math.min(pos, limit), baseOffset: expected };
  }

  /** The relative-offset start point for a time search, from the time index. */
  timeLookup(timestampMs: number): number {
    this.ensureIndexes();
    return this.baseOffset + this.timeIndex!.lookup(timestampMs);
  }

  /**
   * Walks batches from `position` up to `end`, checking each (length, magic, CRC, count, offset
   * continuity), and calls `onBatch` for every valid one, with the batch's bytes at `rel` in `chunk`
   * (valid only during the call). Stops at the first problem.
   */
  scan(
    position: number,
    expectedOffset: number,
    end: number,
    onBatch?: (b: BatchInfo, chunk: Buffer, rel: number) => void,
  ): ScanResult {
    // No bigger than what is to be read: a reader following the head (a worker thread) scans the
    // few new batches after every group commit, and a 1 MiB buffer each time kept its thread
    // collecting garbage (V8 runs a full collection per 64 MiB of buffers allocated).
    let chunk = Buffer.allocUnsafe(Math.max(BATCH_HEADER_BYTES, Math.min(SCAN_CHUNK_BYTES, end - position)));
    let chunkStart = position;
    let chunkLen = 0;
    let next = expectedOffset;
    while (position < end) {
      let rel = position - chunkStart;
      if (rel + BATCH_HEADER_BYTES > chunkLen || rel + batchSizeAt(chunk, rel) > chunkLen) {
        // Refill the chunk from the current batch, growing it when one batch is larger.
        chunkStart = position;
        chunkLen = readFully(this.fs, this.fd, chunk, Math.min(chunk.length, end - position), position);
        rel = 0;
        if (chunkLen >= BATCH_HEADER_BYTES) {
          const size = batchSizeAt(chunk, 0);
          if (size > chunk.length && size <= BATCH_BYTES_MAX && size <= end - position) {
            chunk = Buffer.allocUnsafe(size);
            chunkLen = readFully(this.fs, this.fd, chunk, size, position);
          }
        }
      }
      const check = checkBatch(chunk, rel, chunkLen, BATCH_BYTES_MAX);
      if (check.problem)
        return {
          validBytes: position,
          nextOffset: next,
          problem: { kind: check.problem, position, detail: check.detail },
        };
      const baseOffset = baseOffsetAt(chunk, rel);
      if (baseOffset !== next) {
        return {
          validBytes: position,
          nextOffset: next,
          problem: { kind: 'bad-offset', position, detail: `batch starts at offset ${baseOffset}, expected ${next}` },
        };
      }
      onBatch?.(batchInfoAt(chunk, rel, position, check.size), chunk, rel);
      next = lastOffsetAt(chunk, rel) + 1;
      position += check.size;
    }
    return { validBytes: position, nextOffset: next, problem: null };
  }

  /**
   * Walks the batch headers of a closed segment, reading 1 MiB at a time but skipping the bodies of
   * batches that do not fit in it, and calls `onBatch` with each header. No CRC check: this only
   * rebuilds derived state (producer state) from data recovery and reads check. Stops at the first
   * header that is implausible or does not continue the offsets, and returns its description then.
   */
  walkHeaders(onBatch: (b: BatchInfo) => void): string | null {
    const chunk = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
    let chunkStart = 0;
    let chunkLen = 0;
    let position = 0;
    let expected = this.baseOffset;
    const end = this.sizeBytes;
    while (position < end) {
      if (position + BATCH_HEADER_BYTES > chunkStart + chunkLen) {
        chunkStart = position;
        chunkLen = readFully(this.fs, this.fd, chunk, Math.min(chunk.length, end - position), position);
        if (chunkLen < BATCH_HEADER_BYTES)
          return `${this.logPath} ends with ${chunkLen} bytes at byte ${position}, less than a batch header`;
      }
      const rel = position - chunkStart;
      const size = batchSizeAt(chunk, rel);
      const baseOffset = baseOffsetAt(chunk, rel);
      if (
        !plausibleSize(size, end - position) ||
        chunk[rel + BatchField.magic] !== MAGIC_V2 ||
        baseOffset !== expected
      ) {
        return `${this.logPath} has an implausible batch header at byte ${position}`;
      }
      onBatch(batchInfoAt(chunk, rel, position, size));
      expected = lastOffsetAt(chunk, rel) + 1;
      position += size;
    }
    return null;
  }

  /**
   * After a damaged batch at `position`: is there a valid batch somewhere after it? If so the damage
   * is not a torn tail (later writes completed), so it must not be truncated away.
   */
  findValidBatchAfter(position: number, end: number): number | null {
    const window = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
    for (let start = position + 1; start + BATCH_HEADER_BYTES <= end; start += SCAN_CHUNK_BYTES - BATCH_HEADER_BYTES) {
      const len = readFully(this.fs, this.fd, window, Math.min(SCAN_CHUNK_BYTES, end - start), start);
      for (let i = 0; i + BATCH_HEADER_BYTES <= len; i++) {
        if (window[i + BatchField.magic] !== MAGIC_V2) continue;
        const size = batchSizeAt(window, i);
        if (!plausibleSize(size, end - start - i)) continue;
        const candidate = Buffer.allocUnsafe(size);
        readFully(this.fs, this.fd, candidate, size, start + i);
        if (checkBatch(candidate, 0, size).problem === null) return start + i;
      }
    }
    return null;
  }
}

/** Whether a batch length field could be true: at least a header, at most BATCH_BYTES_MAX and the bytes left. */
function plausibleSize(size: number, bytesLeft: number): boolean {
  return size >= BATCH_HEADER_BYTES && size <= BATCH_BYTES_MAX && size <= bytesLeft;
}
