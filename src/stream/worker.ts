/**
 * A worker thread of the engine (started by worker-pool.ts from a bundle of this module and the
 * config, see worker-bundle.ts, or through worker-entry.js and tsx). It loads the user's config
 * itself, because functions cannot be sent between threads, compiles the views and outputs of the
 * tasks it is given, and keeps those tasks' state. Each task reads its partition from the log
 * (opened read-only from the engine's descriptor), never at or past the high watermark the engine
 * sent, and folds each batch with its plan; on `drain` it hands back the task's dirty rows, dead
 * letters, late events and output records, with the offset they cover. The messages are in
 * worker-protocol.ts.
 *
 * Failure model: a task whose fold or read throws reports `failed` and stops (the engine stops on
 * the first failure); a log out of reach (KAPPA_LOG_UNAVAILABLE), as the thread opens it or as a
 * task reads, is waited out instead (log-outage.ts). Anything thrown outside a handler (a pipeline
 * function that schedules a throw, running out of memory) ends the thread, which the pool sees as
 * a crash.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Log, SpareBuffers, openLog } from '../log/index.ts';
import { KappaError, isKappaError } from '../errors.ts';
import { type RowDelta, deltaColumns, sortByKey } from '../view/index.ts';
import { LogOutage } from './log-outage.ts';
import { loadAppFrom } from './config.ts';
import type { AppDef } from './dsl.ts';
import { compileOutput } from './output-plan.ts';
import { compileView } from './plan.ts';
import { pendingOf, takeDrained } from './task-runner.ts';
import { SchemaCatalog, processLearning } from './topic-schemas.ts';
import { keptTables } from './table-keeper.ts';
import { JOIN_WAIT_MS, TaskTables, seedTables } from './tables.ts';
import type { TaskPlan, TaskState } from './task-plan.ts';
import {
  type FromWorker,
  type ToWorker,
  type WorkerData,
  detachRecord,
  OutputPacker,
  withRecords,
} from './worker-protocol.ts';

/** How long a task's reads have found nothing below the high watermark (see `behind`). */
interface Stuck {
  sinceMs: number;
  retries: number;
  reopened: boolean;
}

interface WorkerTask {
  plan: TaskPlan;
  state: TaskState;
  failed: boolean;
  read: {
    topic: string;
    /** Next offset to fold; every record before it is folded. */
    offset: number;
    /** The high watermark: the task reads only below it. */
    hw: number;
    readBytesMax: number;
    pendingMax: number;
    reportEvents: number;
    /** Resolves the paused read loop. */
    wake: (() => void) | null;
  };
}

/** A read loop reports progress at most this often (and whenever it stops). */
const PROGRESS_INTERVAL_MS = 10;

/**
 * A read below the high watermark that finds nothing means this thread's read-only view of the
 * partition trails what the engine's thread made durable (it looks again at every read). The loop
 * then waits before the next look, from 1 ms doubling to READ_RETRY_MS_MAX, instead of spinning.
 */
const READ_RETRY_MS_MAX = 200;
/** After this long without progress, the partition's files are opened again from scratch, once. */
const READ_REOPEN_AFTER_MS = 2_000;
/** After this long without progress, the task fails, saying what its reader knows of the files. */
const READ_STUCK_MS_MAX = 60_000;

/**
 * Runs the worker: `config` imports the config module at `configPath`, which a bundle holds;
 * `fromSources` when the thread imports the config's sources themselves (the tsx entry).
 */
export async function runWorker(
  configPath: string,
  config: () => Promise<{ default?: unknown }>,
  fromSources = false,
): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('worker.ts runs only as a worker thread (see worker-pool.ts)');
  const data = workerData as WorkerData;
  const post = (message: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

  let app: AppDef;
  try {
    app = await loadAppFrom(configPath, config);
  } catch (err) {
    post(failed(-1, err));
    // Nothing else to do; the pool fails the engine and terminates this thread.
    return;
  }

  seedTables(data.tables, keptTables(app));
  // The log, read-only: the engine's thread is its writer, and says how far is durable.
  const log = new ThreadLog(() =>
    openLog(data.log, { readOnly: true, syncReads: true, logger: { info() {}, warn() {} } }),
  );

  // A fingerprint hashes the pipeline functions' source text, which bundling reformats, so it is
  // compared only when this thread loaded the same sources (the pool checks the bundle's inputs
  // did not change instead).
  const tasks = new WorkerTasks(app, log, post, fromSources);
  port.on('message', (m: ToWorker) => tasks.handle(m));
  post({ t: 'ready' });
}

/**
 * The thread's log, opened once for all its tasks. Opening a Kafka log reads the cluster's
 * metadata, so a cluster out of reach as the thread starts (a process started during an outage,
 * or whose threads were slow to start) fails the open: every task waiting for it then waits as its
 * reads do (log-outage.ts), and the log is opened again, once for all of them, until it opens.
 */
class ThreadLog {
  private opening: Promise<Log>;

  constructor(private readonly open: () => Promise<Log>) {
    this.opening = this.start();
  }

  private start(): Promise<Log> {
    const opening = this.open();
    opening.catch(() => {}); // awaited by each read loop (`get`)
    return opening;
  }

  /** The log once open; a log out of reach is waited for (said through `outage`) until `stopped`; any other failure is thrown. */
  async get(outage: LogOutage, signal: AbortSignal, stopped: () => boolean): Promise<Log> {
    for (;;) {
      const opening = this.opening;
      try {
        return await opening;
      } catch (err) {
        if (stopped() || !(await outage.waited(err, signal)) || stopped()) throw err;
        if (this.opening === opening) this.opening = this.start(); // the first task back from its wait opens it again
      }
    }
  }
}

function failed(task: number, err: unknown): FromWorker {
  const e = err as Error;
  return {
    t: 'failed',
    task,
    code: isKappaError(err) ? err.code : null,
    message: e?.message ?? String(err),
    stack: e?.stack ?? null,
  };
}

function wake(task: WorkerTask): void {
  const w = task.read.wake;
  task.read.wake = null;
  w?.();
}

/** The tasks of this thread, and the engine's messages about them. */
class WorkerTasks {
  private readonly plans = new Map<string, TaskPlan>();
  /** The buffers of this thread's output records, given back by the engine once appended. */
  private readonly spares = new SpareBuffers();
  private readonly tasks = new Map<number, WorkerTask>();

  constructor(
    private readonly app: AppDef,
    private readonly log: ThreadLog,
    private readonly post: (message: FromWorker, transfer?: ArrayBuffer[]) => void,
    private readonly checkFingerprints: boolean,
  ) {}

  handle(m: ToWorker): void {
    if (m.t === 'spare') {
      for (const buffer of m.buffers) this.spares.give(buffer);
      return;
    }
    try {
      if (m.t === 'hw') this.hw(m);
      else if (m.t === 'drain') this.drain(m);
      else if (m.t === 'close') this.close(m.task);
      else this.open(m);
    } catch (err) {
      const task = this.tasks.get(m.task);
      if (task) task.failed = true;
      this.post(failed(m.task, err));
    }
  }

  private planOf(m: Extract<ToWorker, { t: 'open' }>): TaskPlan {
    let plan = this.plans.get(m.name);
    if (plan === undefined) {
      const def =
        m.kind === 'view'
          ? this.app.views.find((v) => v.name === m.name)
          : this.app.outputs.find((o) => o.name === m.name);
      if (def === undefined)
        throw new Error(
          `the config no longer defines ${m.kind} "${m.name}"; it changed while kappa was starting. Start again.`,
        );
      plan = def.kind === 'view' ? compileView(def) : compileOutput(def, m.targetPartitions);
      this.plans.set(m.name, plan);
    }
    if (this.checkFingerprints && plan.fingerprint !== m.fingerprint) {
      throw new Error(
        `${m.kind} "${m.name}" in the config changed while kappa was starting (fingerprint ${m.fingerprint} → ${plan.fingerprint}). Start again.`,
      );
    }
    return plan;
  }

  private open(m: Extract<ToWorker, { t: 'open' }>): void {
    const plan = this.planOf(m);
    const state = plan.newTaskState(m.partition, m.watermarkMs);
    state.keyNames = m.keyNames;
    // Output records are written into the buffers they cross threads in as they are made (worker-protocol.ts).
    state.outputs = new OutputPacker(this.spares);
    const task: WorkerTask = {
      plan,
      state,
      failed: false,
      read: {
        topic: m.topic,
        offset: m.fromOffset,
        hw: m.fromOffset,
        readBytesMax: m.readBytesMax,
        pendingMax: m.pendingMax,
        reportEvents: m.reportEvents,
        wake: null,
      },
    };
    this.tasks.set(m.task, task);
    void this.readLoop(m.task, task);
  }

  /**
   * A task's read loop: whole batches from its partition, never at or past the high watermark the
   * engine gave, each folded synchronously. It pauses at the high watermark and while the task holds
   * `pendingMax` rows, until an `hw` or a `drain` wakes it. Drains and `hw` messages are handled
   * between batches (each read awaits the disk), so a drain's offset is exactly where its rows end.
   */
  private async readLoop(id: number, task: WorkerTask): Promise<void> {
    const r = task.read;
    let events = 0;
    let lastPost = 0;
    const stuck: Stuck = { sinceMs: 0, retries: 0, reopened: false };
    const say = (message: string): void => this.post({ t: 'warn', task: id, message });
    const outage = new LogOutage({ warn: say, info: say }, null);
    const running = new AbortController().signal; // the loop ends on task.failed (closed or failed)
    const report = (): void => {
      this.post({
        t: 'done',
        task: id,
        events,
        dirty: pendingOf(task.state),
        watermarkMs: task.state.watermarkMs,
        offset: r.offset,
      });
      events = 0;
      lastPost = Date.now();
    };
    try {
      // A log that could not be opened for the cluster being out of reach: wait for it as for a read.
      const reader = await this.log.get(outage, running, () => task.failed);
      if (task.plan.source.format !== null) task.state.catalog = SchemaCatalog.of(reader);
      if (task.plan.tables.length > 0)
        task.state.tables = new TaskTables(reader, task.plan.tables, task.state.partition, task.state.maxEventTimeMs);
      while (!task.failed) {
        if (r.offset >= r.hw || pendingOf(task.state) >= r.pendingMax) {
          if (events > 0) report();
          await new Promise<void>((resolve) => (r.wake = resolve));
          continue;
        }
        const before = r.offset;
        let waiting = false;
        try {
          for await (const batch of reader.read(r.topic, task.state.partition, r.offset, {
            maxBytes: r.readBytesMax,
          })) {
            if (batch.baseOffset >= r.hw || task.failed) break;
            const folded = processLearning(task.plan, batch.bytes, r.offset, task.state, (o) => (r.offset = o));
            events += typeof folded === 'number' ? folded : await folded;
            if (task.state.stoppedAt >= 0) {
              // A stream–stream join waits for the other stream: read again from here a little later.
              r.offset = task.state.stoppedAt;
              task.state.stoppedAt = -1;
              waiting = true;
              report();
              break;
            }
            r.offset = batch.lastOffset + 1;
            // Progress at most every few ms, and whenever the engine has a decision to make.
            const pending = pendingOf(task.state);
            const stop = r.offset >= r.hw || pending >= r.pendingMax;
            if (
              stop ||
              Date.now() - lastPost >= PROGRESS_INTERVAL_MS ||
              (events >= r.reportEvents && pending > r.reportEvents)
            )
              report();
            if (stop) break;
          }
        } catch (err) {
          // A log out of reach (a Kafka cluster down): read again from r.offset in a second (log-outage.ts).
          if (task.failed || !(await outage.waited(err, running))) throw err;
          continue;
        }
        outage.over();
        if (waiting) await new Promise((resolve) => setTimeout(resolve, JOIN_WAIT_MS));
        else if (r.offset === before && r.offset < r.hw && !task.failed) await this.behind(id, task, reader, stuck);
        else stuck.sinceMs = 0;
      }
    } catch (err) {
      if (this.tasks.get(id) !== task) return; // closed meanwhile: nobody waits for it
      task.failed = true;
      this.post(failed(id, err));
    }
  }

  /**
   * The read found nothing though the engine says the partition is durable past `offset`: wait a
   * little (a timer, not a spin), open the partition's files again once, and fail the task if it
   * stays behind, naming what this reader knows of the files.
   */
  private async behind(id: number, task: WorkerTask, reader: Log, stuck: Stuck): Promise<void> {
    const r = task.read;
    const now = Date.now();
    if (stuck.sinceMs === 0) {
      stuck.sinceMs = now;
      stuck.retries = 0;
      stuck.reopened = false;
    }
    const waitedMs = now - stuck.sinceMs;
    if (waitedMs >= READ_STUCK_MS_MAX) {
      throw new KappaError(
        'KAPPA_WORKER_FAILED',
        `nothing could be read from offset ${r.offset} for ${waitedMs} ms though the log is durable up to offset ${r.hw}: ${reader.describePartition(r.topic, task.state.partition)}`,
      );
    }
    if (!stuck.reopened && waitedMs >= READ_REOPEN_AFTER_MS) {
      stuck.reopened = true;
      this.post({
        t: 'warn',
        task: id,
        message: `nothing could be read from offset ${r.offset} for ${waitedMs} ms though the log is durable up to offset ${r.hw}; opening the partition's files again (${reader.describePartition(r.topic, task.state.partition)})`,
      });
      reader.reopenPartition(r.topic, task.state.partition);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(READ_RETRY_MS_MAX, 2 ** stuck.retries++)));
  }

  private drain(m: Extract<ToWorker, { t: 'drain' }>): void {
    const task = this.tasks.get(m.task);
    if (task === undefined || task.failed) return;
    const d = takeDrained(task.state);
    d.rows = deltaColumns(sortByKey(d.rows as RowDelta[]));
    const offset = task.read.offset;
    wake(task); // it may have paused with pendingMax rows
    // Throws DataCloneError if a custom aggregate's state holds something a thread cannot receive
    // (a function, a class instance's methods); the caller reports it as the task's failure.
    // The output batches are the drain's own copies: moved to the engine's thread, not copied again.
    const transfer = d.outputs.partitions.flatMap(
      (p) => [p.batches.bytes.buffer, p.batches.ends.buffer] as ArrayBuffer[],
    );
    this.post({ t: 'drained', task: m.task, ...withRecords(d, detachRecord), offset }, transfer);
  }

  private close(id: number): void {
    const task = this.tasks.get(id);
    if (task === undefined) return;
    this.tasks.delete(id);
    task.state.tables?.close();
    task.failed = true; // ends its read loop, without a report
    wake(task);
  }

  private hw(m: Extract<ToWorker, { t: 'hw' }>): void {
    const task = this.tasks.get(m.task);
    if (task === undefined || task.failed || m.offset <= task.read.hw) return;
    task.read.hw = m.offset;
    wake(task);
  }
}
