/**
 * The task loop: runs the engine's tasks, one per (view version or output, source partition), and
 * is the one place that decides when a task flushes (`step`). A task folds either on this thread
 * (`runLocal`: this thread reads whole batches from the log and folds them) or on a worker thread
 * (`runPooled`: the worker reads up to the high watermark this thread sends it, folds, and reports
 * its progress). Both loops give `step` the same facts (idle for an interval or not, at the head of
 * the partition or not, pending rows), and a flush drains exactly the records before its checkpoint
 * offset, so the rows and checkpoints are the same whatever the number of workers.
 *
 * A task flushes (flush.ts says what that writes) when it holds `dirtyRowsMax` pending rows (a
 * view's task that has not yet reached the head: `catchUpRowsMax`, larger flushes for speed), when
 * `flushIntervalMs` has passed since its last flush (such a task holding more than `dirtyRowsMax`
 * rows: `catchUpFlushIntervalMs`, while gathering them pays, see gathering.ts), the first time it
 * reaches the head of its partition (a replay or a new version catching up: the view is current,
 * and a building version can go live, even if events keep arriving), and when it was idle a whole
 * interval with something not yet committed.
 *
 * Worker threads take a moment to start (0.15-0.3 s: the worker code and the config are bundled
 * into one file first, see worker-bundle.ts); tasks wait for them. (Folding on this thread until
 * the threads were up, then moving each task over at a checkpoint, was measured when a thread took
 * a second to start; once they started in a fifth of that, it only added a flush and memory.)
 *
 * Hot path: per batch, a read, a fold and a few comparisons; `step` makes no promise unless the
 * task flushes or catches up.
 */
import { KappaError, isKappaError } from '../errors.ts';
import type { Log, Logger, RecordBatch } from '../log/index.ts';
import type { TaskFence } from '../view/index.ts';
import type { Flusher } from './flush.ts';
import { type Gathering, gatherStep } from './gathering.ts';
import { LogOutage, closeReads, foldReadsOutage, offsetsWaiting, pause, waitingLog } from './log-outage.ts';
import type { OutputPlan } from './output-plan.ts';
import type { TaskPlan } from './task-plan.ts';
import { JOIN_WAIT_MS } from './tables.ts';
import { InThreadRunner, type TaskRunner } from './task-runner.ts';
import type { ViewGroup } from './versions.ts';
import { WorkerPool, type WorkerPoolOptions } from './worker-pool.ts';

export interface Task {
  /** Index in the engine's task list; the runner's handle for the task. */
  id: number;
  plan: TaskPlan;
  /** The view version the task folds into; null for an output task. */
  group: ViewGroup | null;
  /** An output task's producer: its id and the next sequence per target partition. */
  producer: OutputProducer | null;
  topic: string;
  partition: number;
  offset: number;
  committedOffset: number;
  lastFlushAtMs: number;
  caughtUp: boolean;
  /** Where the task folds: this thread, or (once the threads are up) its worker. */
  runner: TaskRunner;
  /** False for a version running from its stored code: only this thread loads that (see ViewGroup). */
  pooled: boolean;
  /** Aborts when the engine stops, the task's version is retired or cancelled, or (in a cluster) the task is given up. */
  signal: AbortSignal;
  /** In a cluster: the task's lease, given to every store write so a replaced owner cannot commit. */
  fence: TaskFence | null;
  /** The task's loop, once started. */
  running: Promise<void>;
  /** While it catches up and gathers its rows: how that goes (gathering.ts). */
  gathering: Gathering | null;
}

/** How an output task numbers what it sends to its derived topic (see the Checkpoint of outputs). */
export interface OutputProducer {
  plan: OutputPlan;
  id: number;
  sequences: number[];
  /**
   * For an output that rebuilds its state from the start of its source at every start (fromStart:
   * the alert detectors): the offset its saved checkpoint had reached before this run. The
   * checkpoint is saved again only past it (checkpoints never move backwards); it serves `kappa
   * lag`, never a restart.
   */
  savedOffset: number;
}

/** What a new task reads and folds, and where its checkpoint left it. */
export interface NewTask {
  plan: TaskPlan;
  group: ViewGroup | null;
  producer: OutputProducer | null;
  partition: number;
  /** Where it starts reading: its checkpoint's offset, else where its build starts. */
  offset: number;
  /** The watermark of its checkpoint (or NO_WATERMARK). */
  watermarkMs: number;
  keyNames: string[] | null;
  pooled: boolean;
  /** In a cluster: the lease this process holds on the task (see Task.fence). */
  fence?: TaskFence | null;
  /** In a cluster: aborts when this process gives the task up. */
  stop?: AbortSignal;
}

export interface TaskLoopOptions {
  log: Log;
  /** Where a task says it waits for a log out of reach (log-outage.ts). */
  logger: Logger;
  flushIntervalMs: number;
  /**
   * `flushIntervalMs` for a view's task until it first reaches the head, while it holds more than
   * `dirtyRowsMax` rows and gathering them pays (gathering.ts; default: the same).
   */
  catchUpFlushIntervalMs?: number;
  dirtyRowsMax: number;
  /** `dirtyRowsMax` for a view's task until it first reaches the head of its partition (default: the same). */
  catchUpRowsMax?: number;
  /** `catchUpRowsMax` for a view whose rows grow with their events (ViewPlan.rowsGrow; default: the same). */
  catchUpGrowingRowsMax?: number;
  readBytesMax: number;
  /** Aborts when the engine stops or fails; every task's read waits on it. */
  signal: AbortSignal;
  flusher: Flusher;
  /** Told when a task reaches the head of its partition (or was idle there): its version may go live. */
  caughtUp: (group: ViewGroup | null) => Promise<void>;
  /** Fails the engine (the first failure stops every task). */
  fail: (err: Error) => void;
  /**
   * In a cluster: told when a task's store write was fenced (KAPPA_FENCED: another process took
   * the task over). The task stops; the engine goes on. Without it, a fenced write fails the engine.
   */
  lost?: (task: Task, err: Error) => void;
}

const TIMEOUT = Symbol('timeout');
/**
 * The least time between two high-watermark messages to a task's worker. Each wakes the worker
 * to look at the partition's files and read what is new; at most 200 a second keeps that cost
 * small under a stream of small appends, and adds at most this much to a record's way to its view.
 */
const HW_FOLLOW_INTERVAL_MS = 5;
/** A gathering task's windows (gathering.ts) are this many × dirtyRowsMax events. */
const GATHER_WINDOW = 4;

/** Resolves when `signal` aborts (never rejects). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export class TaskLoop {
  readonly tasks: Task[] = [];
  private readonly local: InThreadRunner;
  /** Set once the worker threads are up. */
  private pool: WorkerPool | null = null;
  private poolStarting: Promise<void> = Promise.resolve();
  private threadCount = 0;
  private nextTaskId = 0;

  constructor(private readonly opts: TaskLoopOptions) {
    // A Kafka cluster can be out of reach for a while: what a fold reads besides its partition waits for it (log-outage.ts).
    const kafka = opts.log.descriptor?.kind === 'kafka';
    const outage = foldReadsOutage(opts.logger);
    this.local = new InThreadRunner((signal) =>
      kafka ? waitingLog(opts.log, outage, signal ?? opts.signal) : opts.log,
    );
  }

  /** Worker threads the tasks run on (started or starting); 0 when every task runs on this thread. */
  get threads(): number {
    return this.threadCount;
  }

  /** A task, opened on this thread and not yet running (see `start`). */
  add(t: NewTask): Task {
    const signals = [this.opts.signal];
    if (t.group !== null) signals.push(t.group.abort.signal);
    if (t.stop !== undefined) signals.push(t.stop);
    const signal = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    const task: Task = {
      id: this.nextTaskId++,
      plan: t.plan,
      group: t.group,
      producer: t.producer,
      topic: t.plan.source.name,
      partition: t.partition,
      offset: t.offset,
      committedOffset: t.offset,
      lastFlushAtMs: Date.now(),
      caughtUp: false,
      runner: this.local,
      pooled: t.pooled,
      signal,
      fence: t.fence ?? null,
      running: Promise.resolve(),
      gathering: null,
    };
    this.tasks.push(task);
    this.local.open({
      id: task.id,
      plan: t.plan,
      partition: t.partition,
      watermarkMs: t.watermarkMs,
      keyNames: t.keyNames,
      signal,
    });
    return task;
  }

  start(task: Task): void {
    task.running = this.run(task);
  }

  /** Starts the worker threads; pooled tasks wait for them (and do not run if they fail to start). */
  startThreads(opts: WorkerPoolOptions): void {
    this.threadCount = opts.workers;
    this.poolStarting = WorkerPool.start(opts).then(
      async (pool) => {
        if (this.opts.signal.aborted) await pool.close();
        else this.pool = pool;
      },
      (err: Error) => this.opts.fail(err),
    );
  }

  /** Stops `tasks` (their version was retired or its build cancelled) and forgets them; nothing more is flushed. */
  async remove(tasks: Task[]): Promise<void> {
    await Promise.allSettled(tasks.map((t) => t.running));
    for (const t of tasks) {
      const i = this.tasks.indexOf(t);
      if (i < 0) continue; // already removed (a cluster gave it up while its version was retired)
      t.runner.forget(t.id);
      this.tasks.splice(i, 1);
    }
  }

  /** Waits, once the engine's signal aborted, for every task's loop to end and the threads to start or fail. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.tasks.map((t) => t.running));
    await this.poolStarting;
  }

  /** Flushes and checkpoints every task (at stop, after `settle`). */
  async flushAll(): Promise<void> {
    for (const t of this.tasks) await this.opts.flusher.flush(t);
  }

  /** Stops the worker threads, if any. */
  async closeThreads(): Promise<void> {
    await this.pool?.close();
  }

  private async run(task: Task): Promise<void> {
    if (this.threadCount > 0 && task.pooled) {
      await this.poolStarting;
      if (this.pool === null) return; // the threads did not start (the engine failed) or the engine is stopping
      this.moveToPool(task, this.pool);
      return this.runPooled(task, this.pool);
    }
    return this.runLocal(task);
  }

  /**
   * A task on this thread: it reads whole batches (the next one while this one folds) and folds them
   * here. A log out of reach (a Kafka cluster down) stops the read, not the task: it waits and reads
   * again from its offset (log-outage.ts). A fold that reads a joined table or the schema registry
   * meanwhile waits inside that read (`waitingLog`), and goes on from the record it paused at.
   */
  private async runLocal(task: Task): Promise<void> {
    const { log, flushIntervalMs } = this.opts;
    const signal = task.signal;
    const local = this.local;
    const open = () => {
      // Its own stop too: a join that waits drops the read ahead (waiting at the head for new records) at once.
      const stopped = new AbortController();
      const stop = (): void => {
        signal.removeEventListener('abort', stop);
        stopped.abort();
      };
      signal.addEventListener('abort', stop, { once: true });
      const reading = log.read(task.topic, task.partition, task.offset, {
        follow: true,
        signal: stopped.signal,
        maxBytes: this.opts.readBytesMax,
      });
      const it = reading[Symbol.asyncIterator]();
      return { it, next: it.next(), stop };
    };
    let reads = open();
    const outage = new LogOutage(this.opts.logger, task);
    try {
      while (!signal.aborted) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<typeof TIMEOUT>(
          (resolve) => (timer = setTimeout(() => resolve(TIMEOUT), flushIntervalMs)),
        );
        let got: IteratorResult<RecordBatch> | typeof TIMEOUT;
        let atHead: boolean;
        try {
          got = await Promise.race([reads.next, timeout]);
          // Nothing arrived for a whole interval; but a busy event loop can fire the timer before
          // a read of data that is already there, so the log says whether this is the head.
          atHead = got === TIMEOUT && task.offset >= (await log.offsets(task.topic, task.partition)).end;
        } catch (err) {
          if (!(await outage.waited(err, signal))) throw err;
          reads.stop();
          await closeReads(reads);
          reads = open();
          continue;
        } finally {
          clearTimeout(timer);
        }
        outage.over();
        let idle = true;
        if (got !== TIMEOUT) {
          if (got.done) break;
          const batch = got.value;
          const from = task.offset;
          task.offset = batch.lastOffset + 1;
          reads.next = reads.it.next();
          const learning = local.process(task.id, batch, from);
          if (learning !== undefined) await learning;
          const stoppedAt = local.stoppedAt(task.id);
          if (stoppedAt >= 0) {
            // A stream–stream join waits for the other stream: read again from there a little later.
            task.offset = stoppedAt;
            reads.stop();
            await closeReads(reads);
            await pause(JOIN_WAIT_MS, signal);
            reads = open();
          }
          idle = false;
          // Asked only until the task first reaches the head (see `step`).
          atHead = !task.caughtUp && task.offset >= (await offsetsWaiting(log, task, outage, signal)).end;
        }
        const stepped = this.step(task, idle, atHead, local.progress(task.id).dirtyRows);
        if (stepped !== null) await stepped;
      }
    } catch (err) {
      this.failed(task, err);
    } finally {
      // The read under way settles once stopped; the iterator is closed after it, as an async
      // generator would queue the close behind it anyway.
      reads.stop();
      await closeReads(reads);
    }
  }

  /** Moves a task that has folded nothing yet from this thread to its worker, which reads from the task's offset. */
  private moveToPool(task: Task, pool: WorkerPool): void {
    const rest = this.local.release(task.id);
    pool.open({
      id: task.id,
      plan: task.plan,
      partition: task.partition,
      watermarkMs: rest.watermarkMs,
      keyNames: rest.keyNames,
      fromOffset: task.offset,
    });
    task.runner = pool;
  }

  /**
   * A task on a worker thread: the worker reads and folds; this thread tells it how far the
   * partition is durable (the high watermark, as it moves), and hears its progress reports.
   */
  private async runPooled(task: Task, pool: WorkerPool): Promise<void> {
    const { log, flushIntervalMs } = this.opts;
    const signal = task.signal;
    const outage = new LogOutage(this.opts.logger, task);
    let hw: number;
    try {
      // A log out of reach as the task starts (say, its lease moved here during an outage): wait for it.
      hw = (await offsetsWaiting(log, task, outage, signal)).end;
    } catch (err) {
      if (!signal.aborted) this.failed(task, err);
      return;
    }
    pool.setHighWatermark(task.id, hw);
    const following = (async () => {
      while (!signal.aborted) {
        try {
          await log.waitForData(task.topic, task.partition, hw, signal);
          if (signal.aborted) return;
          hw = (await log.offsets(task.topic, task.partition)).end;
        } catch (err) {
          // A log out of reach: wait and follow again (the worker's own reads wait the same way).
          if (await outage.waited(err, signal)) continue;
          throw err;
        }
        outage.over();
        pool.setHighWatermark(task.id, hw);
        // Appends that come fast (single-record ingest: a group commit every few ms) are told in
        // one message per interval instead of one each, so the worker reads them in one go.
        await pause(HW_FOLLOW_INTERVAL_MS, signal);
      }
    })();
    following.catch(() => {}); // a closed log ends it
    const stopped = aborted(signal);
    try {
      while (!signal.aborted) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<typeof TIMEOUT>(
          (resolve) => (timer = setTimeout(() => resolve(TIMEOUT), flushIntervalMs)),
        );
        const got = await Promise.race([pool.nextProgress(task.id), timeout, stopped]);
        clearTimeout(timer);
        if (signal.aborted) break;
        const progress = pool.progress(task.id);
        task.offset = progress.offset ?? task.offset;
        const stepped = this.step(task, got === TIMEOUT, task.offset >= hw, progress.dirtyRows);
        if (stepped !== null) await stepped;
      }
    } catch (err) {
      this.failed(task, err);
    } finally {
      await following.catch(() => {});
    }
  }

  /**
   * The one decision of both loops, after a batch was folded (or progress reported), or after a
   * whole interval with nothing folded (`idle`). `atHead`: the task's offset reached the end of its
   * partition (a busy local task asks only until it first does). Returns null when there is
   * nothing to do, so the common case makes no promise.
   */
  private step(task: Task, idle: boolean, atHead: boolean, dirtyRows: number): Promise<void> | null {
    const reachedHead = atHead && (idle || !task.caughtUp);
    const { flushIntervalMs, dirtyRowsMax, catchUpRowsMax = dirtyRowsMax, catchUpGrowingRowsMax } = this.opts;
    const catchingUp = !task.caughtUp && task.group !== null;
    // Rows whose state grows with their events (task.group's plan says) may be large: fewer of them.
    const rowsGrow = catchingUp && task.group!.plan.rowsGrow;
    const rowsMax = !catchingUp ? dirtyRowsMax : rowsGrow ? (catchUpGrowingRowsMax ?? catchUpRowsMax) : catchUpRowsMax;
    // A view's task catching up with more rows than dirtyRowsMax gathers them for a larger flush
    // while that pays (gathering.ts: its events keep finding more of the rows it holds): neither
    // the usual interval nor a pause in its reads flushes them then, only the catch-up interval.
    let gathering = catchingUp && !rowsGrow && dirtyRows > dirtyRowsMax;
    if (gathering) {
      task.gathering = gatherStep(
        task.gathering,
        task.lastFlushAtMs,
        task.offset,
        dirtyRows,
        GATHER_WINDOW * dirtyRowsMax,
      );
      gathering = task.gathering.paying;
    }
    const intervalMs = gathering
      ? Math.max(flushIntervalMs, this.opts.catchUpFlushIntervalMs ?? flushIntervalMs)
      : flushIntervalMs;
    const due = Date.now() - task.lastFlushAtMs >= intervalMs;
    const flush = idle
      ? (task.offset !== task.committedOffset || dirtyRows > 0) && (!gathering || due || reachedHead) // commit what is pending
      : reachedHead || dirtyRows >= rowsMax || due;
    if (!flush && !reachedHead) return null;
    return this.flushAndCatchUp(task, flush, reachedHead);
  }

  private async flushAndCatchUp(task: Task, flush: boolean, reachedHead: boolean): Promise<void> {
    if (flush) await this.opts.flusher.flush(task);
    if (reachedHead) {
      task.caughtUp = true;
      await this.opts.caughtUp(task.group);
    }
  }

  /** Fails the engine, which aborts every task, this one's read under way included. */
  private failed(task: Task, err: unknown): void {
    const e = err as Error;
    if (this.opts.lost !== undefined && isKappaError(e, 'KAPPA_FENCED')) return this.opts.lost(task, e);
    // In a cluster: a task stopped here (its lease moved on) while its write waited: not a failure.
    if (this.opts.lost !== undefined && task.signal.aborted && !this.opts.signal.aborted) return;
    // A task stopped (its version retired, the engine stopping) while it waited for the log out of
    // reach: its wait ends with the log's error, which is no failure; it committed nothing since its checkpoint.
    if (task.signal.aborted && isKappaError(e, 'KAPPA_LOG_UNAVAILABLE')) return;
    this.opts.fail(
      new KappaError(
        isKappaError(e) ? e.code : 'KAPPA_IO_ERROR',
        `task ${task.plan.name}/${task.topic}/${task.partition} stopped: ${e?.message ?? String(e)}`,
        undefined,
        e,
      ),
    );
  }
}
