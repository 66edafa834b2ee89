/**
 * `WorkerPool`: the engine's tasks spread over worker threads (`kappa start --workers N`). Task i
 * runs on worker i % N and its state lives only there. Each worker opens the log read-only and
 * reads its tasks' partitions itself, then decodes, checks, runs the operators and folds. The
 * engine's thread only tells each task how far its partition is durable (`setHighWatermark`, as
 * the high watermark moves), decides when to flush, drains, and writes: the one SQLite writer and
 * the side-output appends stay there.
 *
 * Why the workers read: when the engine's thread read every batch, checked its CRC, copied it and
 * handed it over, it was 28% busy at 2 workers and, on a 2-core machine, took that from the
 * workers (2 workers: 1.45 × 1 worker). Reading in the workers costs them about 4% (the read and
 * the CRC), and the engine's thread is 5% busy: 1.7 × 1 worker, and no batch copies in memory.
 * A worker never reads at or past the high watermark it was given, so it never folds data that
 * is not yet durable, and it pauses a task holding `pendingMax` rows until the engine drains it,
 * so memory stays bounded.
 *
 * Failure model: a worker that reports a failed task, throws outside a handler, or exits fails
 * the pool: every waiting `nextProgress` and `drain` rejects at once with the worker's error,
 * later calls reject too, and `onFailure` tells the engine. Nothing hangs on a dead thread.
 */
import { WORKER_HEAP_MB_DEFAULT } from './defaults/index.ts';
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { ERROR_CATALOGUE, type ErrorCode, KappaError, isKappaError } from '../errors.ts';
import type { LogDescriptor } from '../log/index.ts';
import type { StoredTable } from '../view/index.ts';
import type { OutputPlan } from './output-plan.ts';
import type { ViewPlan } from './plan.ts';
import type { Drained, TaskOpen, TaskProgress, TaskRunner } from './task-runner.ts';
import { type WorkerBundle, bundleWorker } from './worker-bundle.ts';
import {
  type FromWorker,
  type PackedOutputs,
  type ToWorker,
  type WorkerData,
  reviveRecord,
  withRecords,
} from './worker-protocol.ts';

const ENTRY = new URL('./worker-entry.js', import.meta.url);

/**
 * A worker's garbage is almost all decoded events that die at once, so a small young generation
 * costs nothing measurable (process bench, 8 MB against V8's default: the same events/s within
 * noise) and keeps each worker's RSS about 20 MB lower.
 */
const WORKER_YOUNG_GENERATION_MB = 8;

export interface WorkerPoolOptions {
  /** The config file every worker loads (it must define the views of the tasks opened). */
  configPath: string;
  workers: number;
  /** The log the workers open for reading (the engine's own, by its descriptor). */
  log: LogDescriptor;
  /** Largest read per step of a task. */
  readBytesMax: number;
  /** A task's reading pauses while it holds this many pending rows, until the engine drains it. */
  pendingMax: number;
  /** A task reports its progress also after this many events while it holds more rows (default: no). */
  reportEvents?: number;
  /** The same for a view whose rows grow with their events (ViewPlan.rowsGrow; default pendingMax). */
  growingPendingMax?: number;
  /** Cap on each worker's old generation, in MB (default WORKER_HEAP_MB_DEFAULT). */
  heapMb?: number;
  /** The joined tables' copies from the view store (table-keeper.ts), which each worker's tables start from. */
  tables?: { key: string; table: StoredTable }[];
  /** Called once, with the first failure. */
  onFailure: (err: Error) => void;
  /**
   * Bundle the worker code with the config (worker-bundle.ts; default true). When bundling fails
   * or this is false, the threads load the sources through tsx instead (slower to start, more memory).
   */
  bundle?: boolean;
  /** Told what a worker thread says the operator should know (a task waiting on the log, say). */
  onWarning?: (message: string) => void;
  /** Told why bundling failed, when it did. */
  onBundleFailed?: (err: Error) => void;
  /** Called once the threads' code is bundled (or bundling failed), before the threads load it. */
  onBundled?: () => void;
  /**
   * When the engine loaded the config (ms since the epoch). A bundled file modified after it means
   * the config changed while kappa was starting: the pool refuses to start rather than run logic
   * other than the one the views' versions were chosen for.
   */
  configLoadedAtMs?: number;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

interface PoolTask {
  id: number;
  name: string;
  worker: number;
  /** The engine waiting for the task's next progress report. */
  progressWaiter: Waiter<void> | null;
  progressPromise: Promise<void> | null;
  /**
   * A report arrived while nobody waited (the engine was flushing): the next `nextProgress`
   * resolves at once. Without it, a worker that paused at `pendingMax` and reported so during a
   * flush was not looked at again until the flush interval passed: a backfill flushed every
   * 500 ms instead of whenever 10,000 rows were ready, and ran at half speed.
   */
  progressUnseen: boolean;
  /** Drains sent and not yet answered, oldest first (the port keeps them in order). */
  drains: Waiter<Drained>[];
  progress: TaskProgress;
}

/** `args` (a process's execArgv) without the options that load tsx (`--import tsx`, `--require=tsx/cjs`...). */
export function withoutTsx(args: readonly string[]): string[] {
  const out: string[] = [];
  const loads = /^(--import|--loader|--experimental-loader|--require|-r)$/;
  const isTsx = (v: string): boolean => /^tsx(\/|$)/.test(v);
  for (let i = 0; i < args.length; i++) {
    const eq = /^(--[\w-]+)=(.*)$/.exec(args[i]);
    if (eq !== null && loads.test(eq[1]) && isTsx(eq[2])) continue;
    if (loads.test(args[i]) && i + 1 < args.length && isTsx(args[i + 1])) {
      i++;
      continue;
    }
    out.push(args[i]);
  }
  return out;
}

export class WorkerPool implements TaskRunner {
  private readonly workers: Worker[] = [];
  private readonly tasks = new Map<number, PoolTask>();
  private failure: Error | null = null;
  private closing = false;

  /** Set once every thread is up; failures before that only reject `start`. */
  private started = false;

  private constructor(
    private readonly opts: WorkerPoolOptions,
    private readonly entry: URL,
  ) {}

  get threads(): number {
    return this.workers.length;
  }

  private get heapMb(): number {
    return this.opts.heapMb ?? WORKER_HEAP_MB_DEFAULT;
  }

  /**
   * Starts the workers and resolves once every one has loaded the config; rejects with the first
   * load error. The threads load a bundle of the worker code and the config (worker-bundle.ts);
   * when it cannot be built, or a thread fails to load it, they load the sources through tsx.
   */
  static async start(opts: WorkerPoolOptions): Promise<WorkerPool> {
    if (!Number.isInteger(opts.workers) || opts.workers < 1)
      throw new Error(`invariant: a worker pool needs at least one worker, got ${opts.workers}`);
    let bundle: WorkerBundle | null = null;
    try {
      if (opts.bundle !== false) bundle = await WorkerPool.bundle(opts);
    } finally {
      opts.onBundled?.();
    }
    if (bundle !== null) {
      try {
        return await WorkerPool.startFrom(opts, bundle.url);
      } catch (err) {
        // The config itself failed in the thread: loading it through tsx would fail the same way.
        if (isKappaError(err, 'KAPPA_CONFIG_INVALID')) throw err;
        opts.onBundleFailed?.(
          new Error(`a worker thread did not load the bundled code: ${(err as Error).message}`, { cause: err }),
        );
      } finally {
        // Every thread has loaded the bundle (or failed): the file is not needed any more, and
        // removing it now leaves nothing behind even if this process is killed later.
        bundle.dispose();
      }
    }
    return WorkerPool.startFrom(opts, ENTRY);
  }

  /**
   * The bundle, or null to load through tsx. Refuses to start (KAPPA_CONFIG_INVALID) when a
   * bundled file was modified after the engine loaded the config: the threads would run other
   * logic than the one the views' versions were chosen for. A modification time in the future
   * (clock skew, an extracted archive) proves nothing either way, so the threads then load the
   * sources through tsx, where each view's fingerprint is checked.
   */
  private static async bundle(opts: WorkerPoolOptions): Promise<WorkerBundle | null> {
    let bundle: WorkerBundle;
    try {
      bundle = await bundleWorker(opts.configPath, { logKind: opts.log.kind });
    } catch (err) {
      const e = err as Error & { errors?: { text: string; location?: { file: string; line: number } | null }[] };
      const first = e.errors?.[0];
      const why = first
        ? `${first.location ? `${first.location.file}:${first.location.line}: ` : ''}${first.text}`
        : e.message.split('\n')[0];
      opts.onBundleFailed?.(new Error(`bundling it failed: ${why}`, { cause: err }));
      return null;
    }
    if (opts.configLoadedAtMs === undefined) return bundle;
    const now = Date.now();
    for (const file of bundle.inputs) {
      const mtime = statSync(file).mtimeMs;
      if (mtime > now) {
        bundle.dispose();
        opts.onBundleFailed?.(
          new Error(
            `${file} was modified in the future (${new Date(mtime).toISOString()}), so whether it changed while kappa was starting cannot be told`,
          ),
        );
        return null;
      }
      if (mtime > opts.configLoadedAtMs) {
        bundle.dispose();
        throw new KappaError(
          'KAPPA_CONFIG_INVALID',
          `${file} changed while kappa was starting, so the worker threads would not run the pipelines the views were set up for. Start again.`,
          { file },
        );
      }
    }
    return bundle;
  }

  private static async startFrom(opts: WorkerPoolOptions, entry: URL): Promise<WorkerPool> {
    const pool = new WorkerPool(opts, entry);
    const ready: Promise<void>[] = [];
    for (let i = 0; i < opts.workers; i++) ready.push(pool.spawn(i));
    try {
      await Promise.all(ready);
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.started = true;
    return pool;
  }

  private spawn(index: number): Promise<void> {
    const workerData: WorkerData = {
      configPath: this.opts.configPath,
      log: this.opts.log,
      index,
      tables: this.opts.tables ?? [],
    };
    const worker = new Worker(this.entry, {
      workerData,
      name: `kappa-worker-${index}`,
      // The bundle is plain JavaScript: a thread need not load tsx (about 0.2 s each) because this
      // process was started with `--import tsx`; the tsx entry registers it itself.
      execArgv: this.entry === ENTRY ? process.execArgv : withoutTsx(process.execArgv),
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB, maxOldGenerationSizeMb: this.heapMb },
    });
    this.workers.push(worker);
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const fail = (err: Error): void => {
        if (!started) reject(err);
        this.fail(err);
      };
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          started = true;
          resolve();
        } else if (m.t === 'failed') fail(this.workerError(index, m));
        else this.onMessage(m);
      });
      worker.on('error', (err) => {
        const outOfMemory = (err as { code?: string })?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        const why = outOfMemory
          ? `ran out of memory (its heap is capped at ${this.heapMb} MB; raise the cap with --worker-heap-mb, or keep less state per row)`
          : `crashed: ${err?.message ?? String(err)}`;
        fail(
          new KappaError(
            'KAPPA_WORKER_FAILED',
            `worker thread ${index} (${this.taskNames(index)}) ${why}`,
            { worker: index, outOfMemory },
            err,
          ),
        );
      });
      worker.on('messageerror', (err) =>
        fail(
          new KappaError(
            'KAPPA_WORKER_FAILED',
            `worker thread ${index} sent a message that could not be read: ${err.message}`,
            { worker: index },
            err,
          ),
        ),
      );
      worker.on('exit', (code) => {
        if (!this.closing)
          fail(
            new KappaError(
              'KAPPA_WORKER_FAILED',
              `worker thread ${index} (${this.taskNames(index)}) exited unexpectedly with code ${code}`,
              { worker: index, code },
            ),
          );
      });
    });
  }

  private workerError(index: number, m: Extract<FromWorker, { t: 'failed' }>): Error {
    if (m.task < 0) {
      // The config did not load in the worker: the same error the engine's thread would have given.
      return new KappaError(knownCode(m.code) ?? 'KAPPA_CONFIG_INVALID', m.message);
    }
    const task = this.tasks.get(m.task);
    const err = new KappaError(
      knownCode(m.code) ?? 'KAPPA_WORKER_FAILED',
      `task ${task?.name ?? m.task} failed in worker thread ${index}: ${m.message}`,
      { worker: index, task: task?.name },
    );
    if (m.stack !== null) err.stack = `${err.stack}\nWorker stack: ${m.stack}`;
    return err;
  }

  private onMessage(m: FromWorker): void {
    // After a failure or close every waiter was rejected; answers still in flight are dropped.
    if (this.failure !== null || this.closing) return;
    // A task forgotten since (its version retired or cancelled) may still report; drop it.
    if ((m.t === 'done' || m.t === 'drained') && !this.tasks.has(m.task)) return;
    if (m.t === 'warn') {
      this.opts.onWarning?.(`${this.tasks.get(m.task)?.name ?? `task ${m.task}`}: ${m.message}`);
      return;
    }
    if (m.t === 'done') {
      const task = this.task(m.task);
      task.progress.eventsProcessed += m.events;
      task.progress.dirtyRows = m.dirty;
      task.progress.watermarkMs = m.watermarkMs;
      task.progress.offset = m.offset;
      this.progressed(task);
    } else if (m.t === 'drained') {
      const task = this.task(m.task);
      const waiter = task.drains.shift();
      if (waiter === undefined) throw new Error(`invariant: worker answered a drain of task ${task.name} nobody sent`);
      task.progress.dirtyRows = 0;
      task.progress.offset = m.offset;
      const { t: _t, task: _task, ...drained } = m;
      const worker = task.worker;
      waiter.resolve({
        ...withRecords(drained, reviveRecord),
        release: () => this.giveBack(worker, drained.outputs.partitions),
      });
      this.progressed(task);
    }
  }

  private progressed(task: PoolTask): void {
    const waiter = task.progressWaiter;
    task.progressWaiter = null;
    task.progressPromise = null;
    if (waiter === null) task.progressUnseen = true;
    else waiter.resolve();
  }

  /**
   * Starts a task on its worker, which reads its partition from `fromOffset` on, as far as the
   * high watermark allows (none yet: see setHighWatermark).
   */
  open(t: TaskOpen & { fromOffset: number }): void {
    this.check();
    const worker = t.id % this.workers.length;
    const topic = t.plan.source.name;
    const name = `${t.plan.name}/${topic}/${t.partition}`;
    this.tasks.set(t.id, {
      id: t.id,
      name,
      worker,
      progressWaiter: null,
      progressPromise: null,
      progressUnseen: false,
      drains: [],
      progress: { eventsProcessed: 0, dirtyRows: 0, watermarkMs: t.watermarkMs, offset: t.fromOffset },
    });
    const targetPartitions = t.plan.kind === 'output' ? (t.plan as OutputPlan).targetPartitions : 0;
    this.send(worker, {
      t: 'open',
      task: t.id,
      kind: t.plan.kind,
      name: t.plan.name,
      fingerprint: t.plan.fingerprint,
      partition: t.partition,
      watermarkMs: t.watermarkMs,
      keyNames: t.keyNames,
      targetPartitions,
      topic,
      fromOffset: t.fromOffset,
      readBytesMax: this.opts.readBytesMax,
      reportEvents: this.opts.reportEvents ?? Number.POSITIVE_INFINITY,
      pendingMax:
        t.plan.kind === 'view' && (t.plan as ViewPlan).rowsGrow
          ? (this.opts.growingPendingMax ?? this.opts.pendingMax)
          : this.opts.pendingMax,
    });
  }

  /** Tells the task's worker it may read up to `offset` (the partition's high watermark). */
  setHighWatermark(id: number, offset: number): void {
    this.check();
    this.send(this.task(id).worker, { t: 'hw', task: id, offset });
  }

  /** Resolves at the task's next progress report or drain (at once if one came since the last call); rejects when the pool fails. */
  nextProgress(id: number): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return refused;
    const task = this.task(id);
    if (task.progressUnseen) {
      task.progressUnseen = false;
      return Promise.resolve();
    }
    // One pending promise per task, however often the caller asks before it settles.
    task.progressPromise ??= new Promise<void>((resolve, reject) => (task.progressWaiter = { resolve, reject }));
    return task.progressPromise;
  }

  progress(id: number): TaskProgress {
    return this.task(id).progress;
  }

  thread(id: number): number {
    return this.task(id).worker;
  }

  drain(id: number): Promise<Drained> {
    const refused = this.refusal();
    if (refused !== null) return refused;
    const task = this.task(id);
    return new Promise<Drained>((resolve, reject) => {
      task.drains.push({ resolve, reject });
      this.send(task.worker, { t: 'drain', task: id });
    });
  }

  forget(id: number): void {
    const task = this.tasks.get(id);
    if (task === undefined) return;
    this.tasks.delete(id);
    const err = new KappaError('KAPPA_WORKER_FAILED', `task ${task.name} was stopped`);
    task.progressWaiter?.reject(err);
    task.progressPromise?.catch(() => {});
    for (const d of task.drains.splice(0)) d.reject(err);
    if (this.failure === null && !this.closing) this.send(task.worker, { t: 'close', task: id });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.rejectAll(this.failure ?? new KappaError('KAPPA_WORKER_FAILED', 'the worker threads were stopped'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private send(worker: number, message: ToWorker): void {
    this.workers[worker].postMessage(message);
  }

  /** Moves the buffers of output records appended back to the worker that built them, to build in again. */
  private giveBack(worker: number, partitions: PackedOutputs['partitions']): void {
    if (this.failure !== null || this.closing) return;
    const buffers = partitions.map((p) => p.batches.bytes.buffer as ArrayBuffer).filter((b) => b.byteLength > 0);
    if (buffers.length === 0) return;
    try {
      this.workers[worker].postMessage({ t: 'spare', buffers } satisfies ToWorker, buffers);
    } catch {
      // Only an optimisation: the worker makes new buffers, these are left to the collector.
    }
  }

  private fail(err: Error): void {
    if (this.failure !== null || this.closing) return;
    this.failure = err;
    this.rejectAll(err);
    if (this.started) this.opts.onFailure(err);
  }

  private rejectAll(err: Error): void {
    for (const task of this.tasks.values()) {
      task.progressWaiter?.reject(err);
      task.progressWaiter = null;
      task.progressPromise?.catch(() => {});
      task.progressPromise = null;
      for (const d of task.drains.splice(0)) d.reject(err);
    }
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closing) throw new KappaError('KAPPA_WORKER_FAILED', 'the worker threads were stopped');
  }

  /** `check` as a rejected promise, for the calls that answer with one; null when the pool may be used. */
  private refusal(): Promise<never> | null {
    try {
      this.check();
      return null;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private task(id: number): PoolTask {
    const task = this.tasks.get(id);
    if (task === undefined) throw new Error(`invariant: task ${id} was never opened`);
    return task;
  }

  private taskNames(worker: number): string {
    const names = [...this.tasks.values()].filter((t) => t.worker === worker).map((t) => t.name);
    return names.length === 0 ? 'no tasks yet' : `tasks ${names.join(', ')}`;
  }
}

function knownCode(code: string | null): ErrorCode | null {
  return code !== null && Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : null;
}
