/**
 * What every task runs and carries, views and outputs alike: the plan (`TaskPlan`: fold a batch
 * into a state), the state a task keeps between batches and flushes (`TaskState`: dirty rows,
 * watermark, and what goes to side outputs), and how a record that cannot be processed is
 * described (its dead-letter reason, bounded). compileView (plan.ts) and compileOutput
 * (output-plan.ts) make the plans.
 */
import type { LogRecord, ValueWriter } from '../log/index.ts';
import { DirtyRows } from './dirty-rows.ts';
import type { TopicDef } from './dsl.ts';
import type { JsonBytes } from './json-bytes.ts';
import type { SchemaCatalog } from './topic-schemas.ts';
import type { TableDef, TaskTables } from './tables.ts';

/**
 * Thrown by a fold that cannot go on synchronously at a record (a schema id not seen yet, a joined
 * table not read far enough): the task's loop awaits `resume` and folds again from `offset`
 * (`processLearning`), so everything before the record is folded once and the record itself in full.
 */
export abstract class FoldPause extends Error {
  /** The record the fold stopped at (set by the plan that was folding it). */
  offset = -1;
  /** Waits for what the fold needs; false: it is not there yet, the task stops its batch here and reads it again later. */
  abstract resume(state: TaskState): Promise<boolean | void>;
}

/** Where a fold gets the full record of an event it sends to a side output. */
export interface RecordSource {
  record(i: number): LogRecord;
}

/** A record that could not be processed, bound for `<topic>.dlq`. */
export interface DeadLetter {
  record: LogRecord;
  partition: number;
  reason: string;
}

/** An event later than the allowed lateness, bound for the late topic. */
export interface LateEvent {
  record: LogRecord;
  partition: number;
  eventTimeMs: number;
  watermarkMs: number;
}

/** A value bound for a derived topic (`Stream.to`), encoded. */
export interface OutputRecord {
  partition: number;
  key: string | Buffer | null;
  /**
   * JSON: a string, or bytes an output plan's JsonWriter wrote (valid only until the plan's next
   * record: a sink copies them when pushed; json-bytes.ts).
   */
  value: string | Buffer | JsonBytes;
  timestamp: number;
}

/**
 * Where an output task's records wait for the next drain: an array, or on a worker thread an
 * OutputPacker (set by worker.ts), which writes them into the buffers they cross threads in.
 */
export interface OutputSink {
  push(record: OutputRecord): unknown;
  /**
   * Adds a record whose value `writer` writes straight into the sink's bytes (OutputPacker); false
   * when the writer does not write this value, and nothing was added.
   */
  pushWritten?(partition: number, key: string | null, timestamp: number, writer: ValueWriter, value: unknown): boolean;
  readonly length: number;
}

/** Everything a task carries between batches and flushes. */
export interface TaskState {
  partition: number;
  /** Rows touched since the last flush, by key. */
  dirty: DirtyRows;
  maxEventTimeMs: number;
  watermarkMs: number;
  deadLetters: DeadLetter[];
  late: LateEvent[];
  /** Records for the derived topic of an output pipeline, in order (always empty for a view). */
  outputs: OutputSink;
  /** Group-key column names, fixed by the first group seen (or by the store's existing table). */
  keyNames: string[] | null;
  /** The state of each stateful step (by its index among the steps); outputs only. */
  opState: Map<number, Map<unknown, unknown>>;
  /** Where the writer schemas of a topic with a format come from (set by the task's runner); null: none. */
  catalog: SchemaCatalog | null;
  /** The tables the pipeline joins, as this task reads them (set by the task's runner); null: no join. */
  tables: TaskTables | null;
  /**
   * Set (else -1) when the last fold stopped short of its batch at this offset (a stream–stream
   * join waiting for the other stream): the task reads again from it a little later.
   */
  stoppedAt: number;
}

/** What a task runs, for a view (compileView) or a derived-topic output (compileOutput). */
export interface TaskPlan {
  kind: 'view' | 'output';
  /** The view's or output's name. */
  name: string;
  source: TopicDef<unknown>;
  /** The tables the pipeline's steps join (see tables.ts); empty for most. */
  tables: readonly TableDef<unknown>[];
  fingerprint: string;
  newTaskState(partition: number, watermarkMs: number): TaskState;
  /** Processes a batch of records (all with offsets >= the task's position) into `state`. */
  process(records: readonly LogRecord[], state: TaskState): void;
  /** Decodes one RecordBatch (its bytes, CRC already checked) and processes its records from `fromOffset` on; returns how many. */
  processBatch(bytes: Buffer, fromOffset: number, state: TaskState): number;
}

export function newTaskState(partition: number, watermarkMs: number, outOfOrdernessMs: number): TaskState {
  return {
    partition,
    dirty: new DirtyRows(),
    maxEventTimeMs: watermarkMs === NO_WATERMARK ? NO_WATERMARK : watermarkMs + outOfOrdernessMs,
    watermarkMs,
    deadLetters: [],
    late: [],
    outputs: [],
    keyNames: null,
    opState: new Map(),
    catalog: null,
    tables: null,
    stoppedAt: -1,
  };
}

export const NO_WATERMARK = -8.64e15;

/** Longest dead-letter reason kept (it travels in a record header); a longer one is cut. */
export const REASON_CHARS_MAX = 1000;

/**
 * The dead-letter reason for what a user function threw: its message, or the thrown value itself
 * when it is no Error (`throw null` must not turn into a TypeError of ours that stops the task).
 */
export function reasonOf(err: unknown): string {
  try {
    const message = (err as { message?: unknown } | null)?.message;
    return typeof message === 'string' ? message : String(err);
  } catch {
    return 'an exception that cannot be shown as text';
  }
}

export function boundedReason(reason: string): string {
  return reason.length <= REASON_CHARS_MAX ? reason : `${reason.slice(0, REASON_CHARS_MAX)}...`;
}
