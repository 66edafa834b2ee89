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
import type { LogDescriptor, LogRecord } from '../log/index.ts';
import type { StoredTable } from '../view/index.ts';
import type { DeadLetter, LateEvent, OutputRecord } from './task-plan.ts';
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
  | ({ t: 'drained'; task: number } & Omit<Required<Drained>, 'outputs'> & { outputs: PackedOutputs })
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
 * An output task's records as they cross from a worker thread to the engine's: every value and
 * then every key that is not null, in one string, with their lengths (UTF-16 code units) and the
 * records' partitions and timestamps in typed arrays. Structured clone copies that in a few
 * memcpys, where an array of objects cost it (and the engine's thread, deserialising them) about
 * as much as making the records did (Nexmark q0: 9.2M of them).
 */
export interface PackedOutputs {
  text: string;
  valueLengths: Uint32Array;
  /** -1 for a null key; null when every key is null. */
  keyLengths: Int32Array | null;
  partitions: Int32Array;
  timestamps: Float64Array;
}

export function packOutputs(records: readonly OutputRecord[]): PackedOutputs {
  const n = records.length;
  const valueLengths = new Uint32Array(n);
  const partitions = new Int32Array(n);
  const timestamps = new Float64Array(n);
  const parts: string[] = new Array<string>(n);
  let keyLengths: Int32Array | null = null;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    parts[i] = r.value;
    valueLengths[i] = r.value.length;
    partitions[i] = r.partition;
    timestamps[i] = r.timestamp;
    if (r.key !== null && keyLengths === null) keyLengths = new Int32Array(n).fill(-1);
  }
  if (keyLengths !== null)
    for (let i = 0; i < n; i++) {
      const key = records[i].key;
      if (key === null) continue;
      keyLengths[i] = key.length;
      parts.push(key);
    }
  return { text: parts.join(''), valueLengths, keyLengths, partitions, timestamps };
}

export function unpackOutputs(p: PackedOutputs): OutputRecord[] {
  const n = p.valueLengths.length;
  const out: OutputRecord[] = new Array<OutputRecord>(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const end = at + p.valueLengths[i];
    out[i] = { partition: p.partitions[i], key: null, value: p.text.slice(at, end), timestamp: p.timestamps[i] };
    at = end;
  }
  if (p.keyLengths !== null)
    for (let i = 0; i < n; i++) {
      const length = p.keyLengths[i];
      if (length < 0) continue;
      out[i].key = p.text.slice(at, at + length);
      at += length;
    }
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
