/**
 * The messages between the engine's thread and its worker threads (worker-pool.ts, worker.ts).
 * Every message goes through one MessagePort per worker, which delivers in order.
 *
 *   engine → worker   open     a task: its view or output (by name and fingerprint), partition,
 *                              watermark, key names, and where to read: topic, first offset
 *                    hw       the partition's high watermark moved: the task may read up to it
 *                    drain    hand back what the task folded since the last drain
 *                    close    stop the task and forget it (its version was retired or cancelled)
 *   worker → engine   ready    the config and the log are open; tasks may be opened
 *                    done     progress: records folded since the last `done`, pending rows, watermark, next offset
 *                    drained  rows, dead letters, late events, output records, watermark, key
 *                              names, and the offset the drain covers (every record before it)
 *                    failed   the config did not load (task -1) or a task threw; the engine fails
 *
 * The worker reads its tasks' partitions itself (read-only, never past the high watermark it was
 * given, so it never sees data that is not durable). A drain is handled between two batches, so
 * the offset it reports is exactly where the folded records end: the task's checkpoint.
 *
 * Records of dead letters and late events travel with their key, value and header bytes copied
 * into their own small buffers, so a message never drags a whole batch's bytes along.
 */
import type { LogDescriptor, LogRecord, PackedRecords } from '../log/index.ts';
import type { StoredTable } from '../view/index.ts';
import type { DeadLetter, LateEvent, OutputRecord, OutputSink } from './task-plan.ts';
import type { Drained } from './task-runner.ts';

export interface WorkerData {
  configPath: string;
  /** The engine's log, by its descriptor (log/open.ts); each worker opens it read-only. */
  log: LogDescriptor;
  /** Worker index, for messages. */
  index: number;
  /** The joined tables' copies from the view store, which the worker's tables start from (tables.ts, seedTables). */
  tables: { key: string; table: StoredTable }[];
}

export type ToWorker =
  | {
      t: 'open';
      task: number;
      kind: 'view' | 'output';
      name: string;
      fingerprint: string;
      partition: number;
      watermarkMs: number;
      keyNames: string[] | null;
      targetPartitions: number;
      topic: string;
      fromOffset: number;
      /** Largest read per step. */
      readBytesMax: number;
      /** Stop reading while the task holds this many pending rows (the engine drains it soon). */
      pendingMax: number;
    }
  | { t: 'hw'; task: number; offset: number }
  | { t: 'drain'; task: number }
  | { t: 'close'; task: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'done'; task: number; events: number; dirty: number; watermarkMs: number; offset: number }
  /** What the task folded since the last drain (task-runner.ts's `Drained`), with the offset the drain covers. */
  | ({ t: 'drained'; task: number } & Required<Drained>)
  | { t: 'failed'; task: number; code: string | null; message: string; stack: string | null }
  /** Something the engine should log (a task that waits on the log, for example). */
  | { t: 'warn'; task: number; message: string };

/**
 * `drained` with the record of each dead letter and late event passed through `fn`: detachRecord
 * before it is sent, reviveRecord once received. The other fields are kept as they are.
 */
export function withRecords<T extends { deadLetters: DeadLetter[]; late: LateEvent[] }>(
  drained: T,
  fn: (record: LogRecord) => LogRecord,
): T {
  return {
    ...drained,
    deadLetters: drained.deadLetters.map((d) => ({ ...d, record: fn(d.record) })),
    late: drained.late.map((l) => ({ ...l, record: fn(l.record) })),
  };
}

/**
 * An output task's records as they cross from a worker thread to the engine's: every value (and
 * its key when not null) as UTF-8 in one buffer, with their byte lengths and the records'
 * partitions and timestamps in typed arrays, which structured clone copies in a few memcpys.
 *
 * A worker writes each record into these buffers as it is made (`OutputPacker`), instead of
 * keeping records as objects until the drain: held for a whole flush interval, they survived the
 * young generation's collections and were copied by each (Nexmark q0: 9.2M records, a quarter of a
 * worker's time in the collector). The engine's thread gets the values as views of the buffer,
 * which the batch encoder copies as they are.
 */
export interface PackedOutputs {
  bytes: Uint8Array;
  valueLengths: Uint32Array;
  /** -1 for a null key; null when every key is null. */
  keyLengths: Int32Array | null;
  partitions: Int32Array;
  timestamps: Float64Array;
}

const PACKED_RECORDS_MIN = 1024;

/** Node's Buffer has this method (what `write` calls for 'utf8'), though its types do not name it. */
interface Utf8Writer {
  utf8Write(s: string, offset: number): number;
}
const PACKED_BYTES_MIN = 64 * 1024;

/**
 * Output records written into PackedOutputs' buffers as they are pushed: a worker task's
 * `state.outputs` (task-plan.ts). Its buffers are made at the first push and reused after each take.
 */
export class OutputPacker implements OutputSink {
  private bytes = new Uint8Array(0);
  private view = Buffer.alloc(0);
  private used = 0;
  private n = 0;
  private valueLengths = new Uint32Array(0);
  private keyLengths: Int32Array | null = null;
  private partitions = new Int32Array(0);
  private timestamps = new Float64Array(0);

  get length(): number {
    return this.n;
  }

  push(r: OutputRecord): void {
    if (this.n === this.partitions.length) this.growRecords(Math.max(PACKED_RECORDS_MIN, this.n * 2));
    const i = this.n++;
    this.partitions[i] = r.partition;
    this.timestamps[i] = r.timestamp;
    this.valueLengths[i] = this.write(r.value);
    if (r.key === null) return;
    if (this.keyLengths === null) this.keyLengths = new Int32Array(this.partitions.length).fill(-1);
    this.keyLengths[i] = this.write(r.key);
  }

  /** A copy of the records pushed since the last take; the packer starts over (keeping its buffers). */
  take(): PackedOutputs {
    const n = this.n;
    const packed: PackedOutputs = {
      bytes: this.bytes.slice(0, this.used),
      valueLengths: this.valueLengths.slice(0, n),
      keyLengths: this.keyLengths === null ? null : this.keyLengths.slice(0, n),
      partitions: this.partitions.slice(0, n),
      timestamps: this.timestamps.slice(0, n),
    };
    this.used = 0;
    this.n = 0;
    this.keyLengths = null;
    return packed;
  }

  /** Writes `s` (as UTF-8 when a string) after what is there; returns its byte length. */
  private write(s: string | Buffer): number {
    // At most 3 bytes per UTF-16 code unit.
    const most = typeof s === 'string' ? s.length * 3 : s.length;
    if (this.used + most > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(PACKED_BYTES_MIN, this.bytes.length * 2, this.used + most));
      bigger.set(this.bytes.subarray(0, this.used));
      this.bytes = bigger;
      this.view = Buffer.from(bigger.buffer);
    }
    let written = s.length;
    // Buffer's own UTF-8 writer, without `write`'s argument handling (a twentieth of a q0 worker).
    if (typeof s === 'string') written = (this.view as unknown as Utf8Writer).utf8Write(s, this.used);
    else this.bytes.set(s, this.used);
    this.used += written;
    return written;
  }

  /** Record arrays of `capacity`, holding the records so far. */
  private growRecords(capacity: number): void {
    const n = this.n;
    const grown = <T extends Uint32Array | Int32Array | Float64Array>(a: T, b: T): T => {
      b.set(a.subarray(0, n) as never);
      return b;
    };
    this.valueLengths = grown(this.valueLengths, new Uint32Array(capacity));
    this.partitions = grown(this.partitions, new Int32Array(capacity));
    this.timestamps = grown(this.timestamps, new Float64Array(capacity));
    if (this.keyLengths !== null) this.keyLengths = grown(this.keyLengths, new Int32Array(capacity).fill(-1));
  }
}

/** `records` packed, as an OutputPacker would have them. */
export function packOutputs(records: readonly OutputRecord[]): PackedOutputs {
  const packer = new OutputPacker();
  for (const r of records) packer.push(r);
  return packer.take();
}

/** Where each record of `p` starts in its bytes: what the batch encoder reads (log's encodePackedBatch). */
export function packedRecords(p: PackedOutputs): PackedRecords {
  const n = p.valueLengths.length;
  const valueStarts = new Uint32Array(n);
  const keyStarts = p.keyLengths === null ? null : new Uint32Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    valueStarts[i] = at;
    at += p.valueLengths[i];
    if (keyStarts === null) continue;
    keyStarts[i] = at;
    if (p.keyLengths![i] > 0) at += p.keyLengths![i];
  }
  return {
    bytes: Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength),
    valueStarts,
    valueLengths: p.valueLengths,
    keyStarts,
    keyLengths: p.keyLengths,
    timestamps: p.timestamps,
  };
}

/** The indices of `p`'s records by their partition, each partition's in order. */
export function recordsByPartition(p: PackedOutputs): Map<number, Uint32Array> {
  let top = 0;
  for (const q of p.partitions) if (q > top) top = q;
  const counts = new Uint32Array(top + 1);
  for (const q of p.partitions) counts[q]++;
  const lists = Array.from(counts, (n) => new Uint32Array(n));
  const filled = new Uint32Array(top + 1);
  for (let i = 0; i < p.partitions.length; i++) {
    const q = p.partitions[i];
    lists[q][filled[q]++] = i;
  }
  const out = new Map<number, Uint32Array>();
  lists.forEach((list, q) => list.length > 0 && out.set(q, list));
  return out;
}

/** A copy of `record` whose byte fields own exactly their bytes (structured clone copies a view's whole buffer). */
export function detachRecord(record: LogRecord): LogRecord {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key === null ? null : (new Uint8Array(record.key) as Buffer),
    value: record.value === null ? null : (new Uint8Array(record.value) as Buffer),
    headers: record.headers.map((h) => ({
      key: h.key,
      value: h.value === null ? null : (new Uint8Array(h.value) as Buffer),
    })),
  };
}

/** Structured clone turns Buffers into plain Uint8Arrays; this makes them Buffers again, without copying. */
export function reviveRecord(record: LogRecord): LogRecord {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: asBuffer(record.key),
    value: asBuffer(record.value),
    headers: record.headers.map((h) => ({ key: h.key, value: asBuffer(h.value) })),
  };
}

function asBuffer(bytes: Uint8Array | null): Buffer | null {
  return bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
