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
import {
  BatchBuilder,
  type BuiltBatches,
  type LogDescriptor,
  type LogRecord,
  type SpareBuffers,
  type ValueWriter,
} from '../log/index.ts';
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
      /**
       * Report progress also after this many events, while the task holds more rows than that: the
       * engine judges a catching-up task's gathering by counts of events and rows (gathering.ts).
       */
      reportEvents: number;
    }
  | { t: 'hw'; task: number; offset: number }
  | { t: 'drain'; task: number }
  | { t: 'close'; task: number }
  /** Buffers of output records the engine appended (moved back), for the thread's packers to build in again. */
  | { t: 'spare'; buffers: ArrayBuffer[] };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'done'; task: number; events: number; dirty: number; watermarkMs: number; offset: number }
  /** What the task folded since the last drain (task-runner.ts's `Drained`), with the offset the drain covers. */
  | ({ t: 'drained'; task: number } & Required<Omit<Drained, 'release'>>)
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

/** Records per batch of an output's derived topic (the flush appends each as one batch). */
export const OUTPUT_BATCH_RECORDS = 1000;

/**
 * An output task's records as they cross from a worker thread to the engine's thread: per target
 * partition, RecordBatch v2 batches of up to OUTPUT_BATCH_RECORDS records, built as the records
 * were made (log's BatchBuilder), in buffers moved to the engine's thread (a transfer, no copy) and
 * moved back once appended (Drained.release). The flush only seals each batch (producer fields and
 * CRC) and appends it (flush.ts).
 *
 * Built as they are made rather than kept as objects until the drain: held for a whole flush
 * interval, objects and strings survived the young generation's collections and were copied by
 * each (Nexmark q0: 9.2M records, a quarter of a worker's time in the collector), and encoding
 * them on the engine's thread cost it an object, a copy and a call per record.
 */
export interface PackedOutputs {
  records: number;
  partitions: { partition: number; batches: BuiltBatches }[];
}

/**
 * Output records written into batches as they are pushed: a task's `state.outputs` (set by its
 * runner). Each take hands its buffers over; the next pushes build in spares (the buffers given back)
 * or new ones.
 */
export class OutputPacker implements OutputSink {
  private readonly builders = new Map<number, BatchBuilder>();
  private n = 0;

  /** `spares`: the thread's buffers given back once appended, which the builders build in again. */
  constructor(private readonly spares: SpareBuffers | null = null) {}

  get length(): number {
    return this.n;
  }

  push(r: OutputRecord): void {
    const builder = this.builder(r.partition);
    const v = r.value;
    if (typeof v === 'string' || v instanceof Uint8Array) builder.push(r.key, v, r.timestamp);
    else builder.push(r.key, v.bytes, r.timestamp, v.start, v.end);
    this.n++;
  }

  pushWritten(partition: number, key: string | null, timestamp: number, writer: ValueWriter, value: unknown): boolean {
    if (!this.builder(partition).pushWritten(key, timestamp, writer, value)) return false;
    this.n++;
    return true;
  }

  private builder(partition: number): BatchBuilder {
    let builder = this.builders.get(partition);
    if (builder === undefined)
      this.builders.set(partition, (builder = new BatchBuilder(OUTPUT_BATCH_RECORDS, this.spares)));
    return builder;
  }

  /** The records pushed since the last take, in buffers handed over (BatchBuilder.take); the packer starts over. */
  take(): PackedOutputs {
    const partitions: PackedOutputs['partitions'] = [];
    for (const [partition, builder] of this.builders)
      if (builder.length > 0) partitions.push({ partition, batches: builder.take() });
    const records = this.n;
    this.n = 0;
    return { records, partitions };
  }
}

/** `records` packed, as an OutputPacker would have them. */
export function packOutputs(records: readonly OutputRecord[]): PackedOutputs {
  const packer = new OutputPacker();
  for (const r of records) packer.push(r);
  return packer.take();
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
