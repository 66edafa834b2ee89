/**
 * Loading one partition from disk: opening its segment files, recovering the active segment's torn
 * tail, rebuilding the idempotent producers' state, and (read-only followers) picking up what
 * another process wrote since the last look. Kafka's `LogLoader` does the same job for its logs.
 *
 * Recovery (writable open): every batch of the active segment is checked. An unfinished batch at the
 * end (a torn tail) is cut off and reported. A damaged batch followed by a valid one cannot be a torn
 * write, so it is never cut: the partition is marked corrupted, appends are refused, and reads that
 * reach it fail. After a clean shutdown everything was durable, so any damage counts as corruption.
 *
 * Producer state on open: the snapshot at the active segment's base plus the batches of the active
 * segment, which recovery scans anyway; without a usable snapshot, the headers of closed segments
 * are walked back to the last one that has one, and the active segment's snapshot is written so the
 * next open is fast. Snapshots are derived data: one that is missing or damaged costs time, not
 * correctness.
 *
 * Leftovers of interrupted multi-step file changes (`*.tmp`, an index or snapshot without its
 * `.log`) are removed on a writable open: they are derived data of a roll, an index write or a
 * segment deletion that a crash cut short.
 */
import { join } from 'node:path';
import { KappaError } from '../errors.ts';
import { writeFileAtomic } from './fs.ts';
import { segmentFileName } from './names.ts';
import type { PartitionState } from './partition-state.ts';
import { ProducerStateLoader, ProducerStates } from './producer-state.ts';
import { type BatchInfo, LogSegment } from './segment.ts';

const SEGMENT_FILE = /^\d{20}\.log$/;
const DERIVED_FILE = /^\d{20}\.(index|timeindex|snapshot)$/;

export class PartitionLoader {
  constructor(private readonly state: PartitionState) {}

  /**
   * Opens the partition's segments (creating the first one for a new writable partition) and
   * recovers the active one. Returns the producer state of the written bytes (writable only).
   */
  open(): ProducerStates | null {
    const { state } = this;
    const { fs, readOnly } = state.opts;
    if (!readOnly) fs.mkdirSync(state.dir, { recursive: true });
    const bases = this.listSegmentBases();
    if (bases.length === 0) {
      if (readOnly)
        throw new KappaError('KAPPA_CORRUPT_DATA', `Partition ${state.name} has no segment files in ${state.dir}.`, {
          path: state.dir,
        });
      state.segments.push(LogSegment.create(fs, state.dir, 0));
    } else {
      this.openSegments(bases, !readOnly);
    }
    const loader = readOnly ? null : this.loadProducerState();
    this.recoverActive(loader);
    return loader ? loader.finish(state.startOffset) : null;
  }

  /** Opens the segments at `bases` (ascending) after those already open; the last one writable if asked. */
  private openSegments(bases: number[], lastWritable: boolean): void {
    const { state } = this;
    for (let i = 0; i < bases.length; i++) {
      const last = i === bases.length - 1;
      const seg = LogSegment.open(state.opts.fs, state.dir, bases[i], lastWritable && last);
      if (!last) seg.nextOffset = bases[i + 1];
      state.segments.push(seg);
    }
  }

  private listSegmentBases(): number[] {
    const { fs, readOnly } = this.state.opts;
    const dir = this.state.dir;
    const bases: number[] = [];
    for (const name of fs.readdirSync(dir)) {
      if (SEGMENT_FILE.test(name)) bases.push(Number(name.slice(0, 20)));
      else if (
        !readOnly &&
        (name.endsWith('.tmp') || (DERIVED_FILE.test(name) && !fs.existsSync(join(dir, `${name.slice(0, 20)}.log`))))
      ) {
        // Leftovers of an interrupted index or snapshot write, roll or segment deletion: derived data, safe to drop.
        fs.unlinkSync(join(dir, name));
      }
    }
    return bases.sort((a, b) => a - b);
  }

  /** Checks every batch of the active segment and settles its end (see the file comment). */
  private recoverActive(loader: ProducerStateLoader | null = null): void {
    const { state } = this;
    const { readOnly, cleanShutdown, logger } = state.opts;
    const active = state.active;
    const fileBytes = active.sizeBytes;
    // A reader walks large batches by their headers (its reads check their CRCs); the writer checks every batch.
    const scan = readOnly
      ? active.rebuildIndexesFromHeaders()
      : active.rebuildIndexes(loader ? (b) => applyLoggedBatch(loader, b) : undefined);
    const end = scan.validBytes;
    if (scan.problem) {
      // Only the absence of any valid batch after the problem shows a torn write. An 'incomplete'
      // batch is no proof on its own: a damaged length field makes a batch look longer than the file.
      const after = active.findValidBatchAfter(scan.problem.position, fileBytes);
      if (after !== null || (cleanShutdown && !readOnly)) {
        state.markCorrupted(active.logPath, scan.problem.position, scan.nextOffset, scan.problem.detail);
      } else if (!readOnly) {
        active.truncate(end);
        logger.warn(
          `recovered ${state.name}: cut a torn tail of ${fileBytes - end} bytes from ${active.logPath} at byte ${end} (${scan.problem.detail}); the records before it are intact`,
        );
      }
      // Read-only with nothing valid after the problem: it may be a batch the writer is still
      // writing, so read up to the last whole batch and look again later.
    }
    active.sizeBytes = state.corruption ? fileBytes : end;
    active.readableBytes = end;
    state.nextOffset = scan.nextOffset;
    state.highWatermark = scan.nextOffset;
  }

  /**
   * The producer state as of the active segment's base offset: its snapshot, or else the newest
   * older snapshot (or an empty state at the first segment) plus a walk over the batch headers of
   * the closed segments in between. `recoverActive` adds the active segment's batches. After a walk
   * the active segment's snapshot is written, so the next open is fast.
   */
  private loadProducerState(): ProducerStateLoader {
    const { segments } = this.state;
    const activeIndex = segments.length - 1;
    let from = 0;
    let loader = new ProducerStateLoader();
    for (let i = activeIndex; i > 0; i--) {
      const loaded = this.readSnapshot(segments[i]);
      if (loaded) {
        from = i;
        loader = new ProducerStateLoader(loaded);
        break;
      }
    }
    for (let i = from; i < activeIndex; i++) {
      const problem = segments[i].walkHeaders((b) => applyLoggedBatch(loader, b));
      if (problem) {
        this.state.opts.logger.warn(
          `${this.state.name}: producer state is incomplete: ${problem}. Idempotent producers whose last batches lie beyond it may have re-sent records appended twice; run \`kappa verify\`.`,
        );
        break;
      }
    }
    if (from < activeIndex) this.writeSnapshot(this.state.active.baseOffset, loader);
    return loader;
  }

  private readSnapshot(seg: LogSegment): ProducerStates | null {
    const { fs, logger } = this.state.opts;
    if (!fs.existsSync(seg.snapshotPath)) return null;
    let parsed: ProducerStates | string;
    try {
      parsed = ProducerStates.fromSnapshot(fs.readFileSync(seg.snapshotPath), seg.baseOffset);
    } catch (err) {
      parsed = (err as Error).message;
    }
    if (typeof parsed === 'string') {
      logger.warn(
        `${this.state.name}: ignoring producer snapshot ${seg.snapshotPath} (${parsed}); rebuilding it from the segments before it`,
      );
      return null;
    }
    return parsed;
  }

  /** Writes `<seg base>.snapshot`. A failure only costs a longer next open, so it is reported, not thrown. */
  writeSnapshot(baseOffset: number, producers: ProducerStates | ProducerStateLoader): void {
    const path = join(this.state.dir, segmentFileName(baseOffset, '.snapshot'));
    try {
      // Atomic and fsynced, so after a crash the snapshot is either whole or absent (then rebuilt).
      writeFileAtomic(this.state.opts.fs, path, producers.toSnapshot(baseOffset));
    } catch (err) {
      this.state.opts.logger.warn(
        `${this.state.name}: could not write producer snapshot ${path} (${(err as Error).message}); the next open rebuilds it from the segments`,
      );
    }
  }

  /** Read-only mode: picks up batches and segments another process wrote since the last look. */
  refresh(): void {
    const { state } = this;
    if (!state.opts.readOnly) return;
    let bases: number[];
    try {
      bases = this.listSegmentBases();
    } catch {
      return;
    }
    while (state.segments.length > 1 && !bases.includes(state.segments[0].baseOffset)) state.segments.shift()!.forget();
    const newer = bases.filter((b) => b > state.active.baseOffset);
    if (newer.length > 0) this.followRoll(newer);
    else this.followActive();
  }

  /** The writer rolled to the segments at `newer`: close the old active one and open them. */
  private followRoll(newer: number[]): void {
    const { state } = this;
    const old = state.active;
    const size = state.opts.fs.fstatSync(old.fd).size;
    // The old active segment is closed now. Track the batches written to it since the last look,
    // so its max timestamp (which offsetForTime and retention trust) covers the whole segment.
    if (size > old.readableBytes) old.scan(old.readableBytes, state.highWatermark, size, (b) => old.track(b));
    old.sizeBytes = size;
    old.readableBytes = size;
    old.nextOffset = newer[0];
    this.openSegments(newer, false);
    this.recoverActive();
    state.wake();
  }

  /** Reads the batches the writer appended to the active segment since the last look. */
  private followActive(): void {
    const { state } = this;
    const active = state.active;
    const size = state.opts.fs.fstatSync(active.fd).size;
    if (size <= active.readableBytes) return;
    const scan = active.scan(active.readableBytes, state.highWatermark, size, (b) => active.track(b));
    if (scan.problem && !state.corruption && active.findValidBatchAfter(scan.problem.position, size) !== null) {
      state.markCorrupted(active.logPath, scan.problem.position, scan.nextOffset, scan.problem.detail);
    }
    if (scan.nextOffset > state.highWatermark) {
      active.readableBytes = scan.validBytes;
      state.nextOffset = state.highWatermark = scan.nextOffset;
      state.wake();
    }
  }
}

function applyLoggedBatch(loader: ProducerStateLoader, b: BatchInfo): void {
  const producerId = b.producerId ?? -1;
  if (producerId >= 0)
    loader.apply(producerId, b.producerEpoch!, b.baseSequence!, b.lastOffset - b.baseOffset + 1, b.baseOffset);
}
