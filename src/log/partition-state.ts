/**
 * What the collaborators of one partition share: its segments (oldest first, the last one active),
 * the offsets it has handed out and made readable, and what stopped it (damage found on disk, a
 * failed write, close). The loader (partition-loader.ts) fills it on open, the group-commit writer
 * (group-commit.ts) moves `nextOffset` and the high watermark, the reader (partition-reader.ts) only
 * reads it; `Partition` (partition.ts) coordinates them.
 *
 * Invariants: `startOffset <= highWatermark <= nextOffset`; `highWatermark` only moves forward while
 * the partition is open, except when a read-only follower is told to look again; readers see
 * offsets below the high watermark only, and are woken (`wake`) whenever it moves or the partition
 * closes.
 *
 * Thread-safety: none needed; all of it is touched from the event loop.
 */
import { join } from 'node:path';
import { KappaError } from '../errors.ts';
import type { LogFs } from './fs.ts';
import type { LogSegment } from './segment.ts';
import type { Clock, FsyncMode, Logger, TopicInfo } from './types.ts';

export interface PartitionOptions {
  fs: LogFs;
  clock: Clock;
  logger: Logger;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  readOnly: boolean;
  /** The log was closed cleanly last time, so every byte on disk was durable. */
  cleanShutdown: boolean;
  /** Told how long each group-commit fsync took, in seconds (metrics). */
  onFsync?: (seconds: number) => void;
}

/** Damage found below the durable point: reads at or past `offset` fail, appends are refused. */
export interface Corruption {
  file: string;
  position: number;
  offset: number;
  detail: string;
}

export class PartitionState {
  readonly dir: string;
  readonly name: string;
  segments: LogSegment[] = [];
  /** The offset the next appended record gets (queued batches included). */
  nextOffset = 0;
  /** One past the last offset readers may see: durable under the fsync mode. */
  highWatermark = 0;
  corruption: Corruption | null = null;
  /** Set after a write or fsync failed: appends are refused until the log is reopened. */
  failure: KappaError | null = null;
  closed = false;
  private waiters = new Set<() => void>();

  constructor(
    readonly topic: TopicInfo,
    readonly id: number,
    topicDir: string,
    readonly opts: PartitionOptions,
  ) {
    this.dir = join(topicDir, String(id));
    this.name = `${topic.name}/${id}`;
  }

  get active(): LogSegment {
    return this.segments[this.segments.length - 1];
  }

  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  markCorrupted(file: string, position: number, offset: number, detail: string): void {
    this.corruption = { file, position, offset, detail };
    this.opts.logger.warn(
      `${this.name} is damaged: ${file} at byte ${position} (offset ${offset}): ${detail}. Reads from offset ${offset} on fail and appends are refused; run \`kappa verify\`.`,
    );
  }

  corruptError(file: string, position: number, detail: string): KappaError {
    return new KappaError(
      'KAPPA_CORRUPT_DATA',
      `${this.name} is damaged at ${file} byte ${position}: ${detail}. Kappa does not skip damaged data silently; run \`kappa verify\` to list all damage.`,
      { topic: this.topic.name, partition: this.id, file, position },
    );
  }

  checkOffset(offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < this.startOffset || offset > this.highWatermark) {
      throw new KappaError(
        'KAPPA_OFFSET_OUT_OF_RANGE',
        `Offset ${offset} is outside ${this.name}, which holds offsets ${this.startOffset} to ${this.highWatermark - 1} (the next record will get ${this.highWatermark}).`,
        { topic: this.topic.name, partition: this.id, offset, start: this.startOffset, end: this.highWatermark },
      );
    }
  }

  /** The segment that holds `offset` (the first one for an offset before it). */
  segmentFor(offset: number): LogSegment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid].baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo];
  }

  /** Resolves when the high watermark passes `offset`, the partition closes, or `signal` aborts. */
  waitFor(offset: number, signal?: AbortSignal): Promise<void> {
    if (this.highWatermark > offset || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Tells every waiting reader to look again (the high watermark moved, or the partition closed). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
