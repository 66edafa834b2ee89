/**
 * The messages between the engine's thread and its worker threads (worker-pool.ts, worker.ts).
 * Every message goes through one MessagePort per worker, which delivers in order: so a `drain`
 * sent after a task's batches is answered after the worker has folded all of them.
 *
 *   engine → worker   open     a task's view or output (by name and fingerprint), partition, watermark, key names
 *                     batch    one RecordBatch's bytes (its own ArrayBuffer, transferred) and the first offset to fold
 *                     drain    hand back what the task folded since the last drain
 *   worker → engine   ready    the config loaded; tasks may be opened
 *                     done     one batch folded: records, dirty rows now, watermark
 *                     drained  rows, dead letters, late events, watermark, key names
 *                     failed   the config did not load (task -1) or a task threw; the engine fails
 *
 * Records of dead letters and late events travel with their key, value and header bytes copied
 * into their own small buffers, so a message never drags a whole batch's bytes along.
 */
import type { LogRecord } from '../log/index.ts';
import type { DeadLetter, DirtyRow, LateEvent, OutputRecord } from './plan.ts';

export interface WorkerData {
  configPath: string;
  /** Worker index, for messages. */
  index: number;
}

export type ToWorker =
  | { t: 'open'; task: number; kind: 'view' | 'output'; name: string; fingerprint: string; partition: number; watermarkMs: number; keyNames: string[] | null; targetPartitions: number }
  | { t: 'batch'; task: number; bytes: Uint8Array; from: number }
  | { t: 'drain'; task: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'done'; task: number; events: number; dirty: number; watermarkMs: number }
  | { t: 'drained'; task: number; rows: DirtyRow[]; deadLetters: DeadLetter[]; late: LateEvent[]; outputs: OutputRecord[]; watermarkMs: number; keyNames: string[] | null }
  | { t: 'failed'; task: number; code: string | null; message: string; stack: string | null };

/** A copy of `record` whose byte fields own exactly their bytes (structured clone copies a view's whole buffer). */
export function detachRecord(record: LogRecord): LogRecord {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key === null ? null : (new Uint8Array(record.key) as Buffer),
    value: record.value === null ? null : (new Uint8Array(record.value) as Buffer),
    headers: record.headers.map((h) => ({ key: h.key, value: h.value === null ? null : (new Uint8Array(h.value) as Buffer) })),
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
