/**
 * Where a task's CPU work runs. At flush time the engine drains the task: it takes the dirty rows,
 * dead letters, late events and output records folded since the last drain, and the task starts
 * again from empty rows.
 *
 * Two runners share this contract. `InThreadRunner` (below) runs every task on the calling
 * thread: the engine reads each batch and hands it over (`process`), so a drain covers exactly the
 * batches handed over before it. `WorkerPool` (worker-pool.ts) spreads tasks over worker threads;
 * each worker reads its tasks' partitions itself, up to the high watermark the engine gives it,
 * and a drain reports the offset it covers. Either way the rows and the checkpoint offset of a
 * flush are the same whatever the runner.
 */
import { type Log, type RecordBatch, SpareBuffers } from '../log/index.ts';
import type { DeltaColumns } from '../view/index.ts';
import { type DirtyRow, DirtyRows } from './dirty-rows.ts';
import type { DeadLetter, LateEvent, OutputRecord, TaskPlan, TaskState } from './task-plan.ts';
import { SchemaCatalog, processLearning } from './topic-schemas.ts';
import { TaskTables } from './tables.ts';
import { OutputPacker, type PackedOutputs, packOutputs } from './worker-protocol.ts';

export interface TaskOpen {
  /** The task's index in the engine; the pool assigns task i to worker i % N. */
  id: number;
  plan: TaskPlan;
  partition: number;
  /** The watermark of the task's checkpoint (or NO_WATERMARK). */
  watermarkMs: number;
  /** Group-key column names of the view's existing table, if it has one. */
  keyNames: string[] | null;
  /** The task's signal: on this thread, its reads of tables and the registry stop waiting out an outage when it aborts. */
  signal?: AbortSignal;
}

/** What a task folded since the previous drain: what one flush writes. */
export interface Drained {
  /** Rows on this thread; columns from a worker thread (cheaper to send, see DeltaColumns). */
  rows: DirtyRow[] | DeltaColumns;
  deadLetters: DeadLetter[];
  late: LateEvent[];
  /** Records for an output task's derived topic, in order, packed (worker-protocol.ts). */
  outputs: PackedOutputs;
  watermarkMs: number;
  keyNames: string[] | null;
  /** With a worker that reads for itself: the offset the drain covers (every record before it). */
  offset?: number;
  /**
   * Gives the outputs' buffers back to the thread that built them, to build in again, once every
   * record in them is appended (never before: the log may still be writing them). Not called when
   * an append failed; the buffers are then left to the collector.
   */
  release?: () => void;
}

export interface TaskProgress {
  /** Records folded so far (all drains included). */
  eventsProcessed: number;
  /** Rows touched (or output records made) since the last drain; with workers, as of the last batch the worker reported. */
  dirtyRows: number;
  watermarkMs: number;
  /** With a worker that reads for itself: the next offset it will fold, as last reported. */
  offset?: number;
}

export interface TaskRunner {
  /** Worker threads in use (0 when tasks run on the calling thread). */
  readonly threads: number;
  progress(id: number): TaskProgress;
  /** The worker thread the task folds on, or null for the calling thread. */
  thread(id: number): number | null;
  /** Takes what the task folded since the last drain, covering every batch handed over before this call. */
  drain(id: number): Promise<Drained>;
  /** Stops a task and forgets it, dropping whatever it folded and did not drain (its version was retired or cancelled). */
  forget(id: number): void;
  /** Stops the threads, if any. Idempotent; a drain or process after close fails. */
  close(): Promise<void>;
}

interface LocalTask {
  plan: TaskPlan;
  state: TaskState;
  eventsProcessed: number;
}

/** Every task on the calling thread, as the engine ran before worker threads (`--workers 0`). */
export class InThreadRunner implements TaskRunner {
  readonly threads = 0;
  private readonly tasks = new Map<number, LocalTask>();

  /**
   * `logFor(signal)`: the log a task's fold reads its tables and writer schemas (the registry) from,
   * given the task's signal (task-loop.ts waits out an outage of a Kafka log there until it aborts).
   */
  constructor(private readonly logFor: (signal: AbortSignal | undefined) => Log) {}

  /** The buffers of output records appended, for the tasks' packers to build in again. */
  private readonly spares = new SpareBuffers();

  open(task: TaskOpen): void {
    const state = task.plan.newTaskState(task.partition, task.watermarkMs);
    // Output records are packed as they are made, as on a worker thread (worker-protocol.ts).
    state.outputs = new OutputPacker(this.spares);
    state.keyNames = task.keyNames;
    const log = this.logFor(task.signal);
    state.catalog = task.plan.source.format === null ? null : SchemaCatalog.of(log);
    state.tables =
      task.plan.tables.length === 0
        ? null
        : new TaskTables(log, task.plan.tables, task.partition, state.maxEventTimeMs);
    this.tasks.set(task.id, { plan: task.plan, state, eventsProcessed: 0 });
  }

  /** Folds a batch; a promise only when a record named a schema id the task had to read the registry for. */
  process(id: number, batch: RecordBatch, fromOffset: number): Promise<void> | undefined {
    const task = this.task(id);
    const folded = processLearning(task.plan, batch.bytes, fromOffset, task.state);
    if (typeof folded === 'number') {
      task.eventsProcessed += folded;
      return undefined;
    }
    return folded.then((n) => void (task.eventsProcessed += n));
  }

  /** Where the task's last fold stopped short of its batch (a stream–stream join waiting), or -1; reads it once. */
  stoppedAt(id: number): number {
    const state = this.task(id).state;
    const at = state.stoppedAt;
    state.stoppedAt = -1;
    return at;
  }

  progress(id: number): TaskProgress {
    const task = this.task(id);
    return {
      eventsProcessed: task.eventsProcessed,
      dirtyRows: pendingOf(task.state),
      watermarkMs: task.state.watermarkMs,
    };
  }

  thread(): null {
    return null;
  }

  async drain(id: number): Promise<Drained> {
    const drained = takeDrained(this.task(id).state);
    const { spares } = this;
    drained.release = (): void => {
      for (const p of drained.outputs.partitions) spares.give(p.batches.bytes.buffer as ArrayBuffer);
    };
    return drained;
  }

  forget(id: number): void {
    this.tasks.get(id)?.state.tables?.close();
    this.tasks.delete(id);
  }

  async close(): Promise<void> {}

  /** Stops running a task that has just been drained, handing back what a runner taking it over needs. */
  release(id: number): { eventsProcessed: number; watermarkMs: number; keyNames: string[] | null } {
    const { state, eventsProcessed } = this.task(id);
    if (
      state.dirty.size !== 0 ||
      state.deadLetters.length !== 0 ||
      state.late.length !== 0 ||
      state.outputs.length !== 0
    )
      throw new Error(`invariant: task ${id} is released with work not drained`);
    state.tables?.close();
    this.tasks.delete(id);
    return { eventsProcessed, watermarkMs: state.watermarkMs, keyNames: state.keyNames };
  }

  private task(id: number): LocalTask {
    const task = this.tasks.get(id);
    if (task === undefined) throw new Error(`invariant: task ${id} was never opened`);
    return task;
  }
}

/**
 * What a task holds for its next flush, against `dirtyRowsMax`: dirty rows, plus records waiting
 * for a derived topic (an output task's state; a view's has none).
 */
export function pendingOf(state: TaskState): number {
  return state.dirty.size + state.outputs.length;
}

/**
 * The output records of `state`, packed: a task's OutputPacker (which its runner sets, and which
 * stays the task's) starts over; records pushed to an array (a state made elsewhere, as in tests)
 * are packed and the array replaced.
 */
function takeOutputs(state: TaskState): PackedOutputs {
  if (state.outputs instanceof OutputPacker) return state.outputs.take();
  const packed = packOutputs(state.outputs as OutputRecord[]);
  state.outputs = [];
  return packed;
}

/** Moves what `state` folded since the last drain out of it, leaving it with no rows. */
export function takeDrained(state: TaskState): Drained {
  const drained: Drained = {
    rows: state.dirty.values(),
    deadLetters: state.deadLetters,
    late: state.late,
    outputs: takeOutputs(state),
    watermarkMs: state.watermarkMs,
    keyNames: state.keyNames,
  };
  state.dirty = new DirtyRows();
  state.deadLetters = [];
  state.late = [];
  return drained;
}
