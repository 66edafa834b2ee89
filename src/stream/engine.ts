/**
 * The processing engine: one task per (view version, source partition). A task reads whole
 * batches from the log, folds them into dirty rows with the view's compiled plan, and flushes on an
 * interval or a size bound. A flush is: dead letters and late events appended (and durable), then
 * ONE store transaction with the row deltas and the task's checkpoint. After any crash a task
 * resumes from its checkpoint, so the view equals a fold of the log up to that checkpoint: no event
 * counted twice, none skipped. Dead letters and late events are appended with an idempotent
 * producer whose sequence is the source offset, so a replay after a crash does not repeat them.
 *
 * Threads: with `workers: 0` (the default here) this thread reads and folds every task (`runTask`).
 * With `workers: N` (what `kappa start` uses) task i runs on worker i % N, which reads its
 * partition itself up to the high watermark this thread sends it (`runPooledTask`); this thread
 * decides flushes and does the writes (side outputs, the one store writer). A flush drains the
 * task, and the drain covers exactly the records before its checkpoint offset, so the rows and
 * checkpoints are the same whatever the number of workers.
 *
 * Worker threads take a moment to start (0.15-0.3 s: the worker code and the config are bundled
 * into one file first, see worker-bundle.ts); tasks wait for them. (Folding on this thread until
 * the threads were up, then moving each task over at a checkpoint, was measured when a thread took
 * a second to start; once they started in a fifth of that, it only added a flush and memory.)
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { crashPoint } from '../crash-point.ts';
import { KappaError, isKappaError } from '../errors.ts';
import { type EncodableRecord, type Log, type Logger, SEQUENCE_MODULUS } from '../log/index.ts';
import type { ControlStore } from '../view/control-store.ts';
import type { BuildInfo, BuildReason, Checkpoint, RowDelta, ViewRequest, ViewStore, ViewVersionInfo } from '../view/types.ts';
import type { AppDef, OutputDef, ViewDef } from './dsl.ts';
import { type OutputPlan, compileOutput } from './output-plan.ts';
import { type DeadLetter, type LateEvent, NO_WATERMARK, type TaskPlan, type ViewPlan, compileView, describeChange } from './plan.ts';
import { type Drained, InThreadRunner, type TaskRunner } from './task-runner.ts';
import { bundleConfig, loadBundledApp } from './worker-bundle.ts';
import { WorkerPool } from './worker-pool.ts';

export interface EngineOptions {
  log: Log;
  store: ViewStore;
  /** Build records, saved code, requests from other processes, output checkpoints. */
  control: ControlStore;
  app: AppDef;
  logger: Logger;
  /** Flush a task's dirty rows at least this often. */
  flushIntervalMs?: number;
  /** How often the progress of builds (offsets done, events/s, ETA) is saved for other processes. Default 1000 ms; below 200 ms the engine looks at requests and schedules that often too. */
  progressIntervalMs?: number;
  /**
   * Flush early once a task holds this many dirty rows (bounds memory whatever the key count).
   * Default 10,000: on the process bench's 1M-key view, 50,000 cost 120 MB more peak RSS with 2
   * workers (the rows live in the worker, are copied to this thread, and wait for a major GC in
   * both) for events/s within noise of 10,000, as the SQLite writer is the limit there.
   */
  dirtyRowsMax?: number;
  /**
   * Largest read from the log per task and step. Default 256 KiB: on the process bench, against
   * the log's 1 MiB default, peak RSS fell by 14-24 MB (each task holds a read and the next one in
   * flight) with events/s unchanged.
   */
  readBytesMax?: number;
  /**
   * Worker threads to spread the tasks over (at most one per task is started). 0, the default,
   * folds every task on the calling thread. Workers load the config themselves from `configPath`,
   * because functions cannot be sent to a thread.
   */
  workers?: number;
  /** The config file `app` was loaded from; required when `workers` > 0. */
  configPath?: string;
  /**
   * With workers: when the app was loaded (ms since the epoch; default: when the engine was made).
   * A config file modified after it is refused when the worker threads load it.
   */
  configLoadedAtMs?: number;
  /** With workers: cap on each worker thread's heap (old generation), in MB; default 256 (see worker-pool.ts). */
  workerHeapMb?: number;
}

export interface TaskStatus {
  /** 'view' for a view's task, 'output' for a task writing a derived topic (`to(topic)`). */
  kind: 'view' | 'output';
  /** The view's or output's name. */
  view: string;
  /** The view version the task builds (0 for an output). */
  version: number;
  topic: string;
  partition: number;
  /** Next offset the task will read; every record before it is folded or (with workers) on its way to its worker. */
  offset: number;
  /** Offset covered by the last committed checkpoint. */
  committedOffset: number;
  watermarkMs: number;
  lastFlushAtMs: number;
  eventsProcessed: number;
  /** The worker thread the task folds on; null while it runs on the engine's own thread. */
  worker: number | null;
  /** True while the task's version is being built (or caught up for a rollback), not yet live. */
  building: boolean;
}

/**
 * What changed in the serving layer, told after it committed: rows of a live version (by group
 * key; read them from the store), or a version going live (the public view now reads another table).
 */
export type ViewChange = { kind: 'rows'; view: string; version: number; keyNames: string[]; keys: (string | number | null)[][] } | { kind: 'live'; view: string; version: number };

interface Task {
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
  /** Aborts when the engine stops or the task's version is retired or cancelled. */
  signal: AbortSignal;
  /** The task's loop, once started. */
  running: Promise<void>;
}

/**
 * The tasks of one view version. A view has one group for its live version and, while a new
 * version is built (or a retired one catches up for a rollback), a second one. A group's logic is
 * the config's, or, for a version whose logic the config no longer has, the version's stored code
 * (the config bundled when the version was made, see worker-bundle.ts); those groups run on this
 * thread, since the worker threads only load the config.
 */
interface ViewGroup {
  plan: ViewPlan;
  version: number;
  fromConfig: boolean;
  /** Set while the version is being built, or caught up for a rollback: its progress record. */
  build: BuildInfo | null;
  /** Offsets done at the last progress update, for events/s. */
  lastProgress: { done: number; atMs: number } | null;
  /** Whether the version's code is known to be stored (checked at its first flush). */
  codeSaved: boolean;
  abort: AbortController;
  /** Set once the version's table exists (it is created at the first row, which fixes the key column types). */
  ensured: Promise<ViewVersionInfo> | null;
  keyNames: string[] | null;
  live: boolean;
  tasks: Task[];
}

/** How an output task numbers what it sends to its derived topic (see the Checkpoint of outputs). */
interface OutputProducer {
  plan: OutputPlan;
  id: number;
  sequences: number[];
}

/** How often the engine takes requests from other processes and checks schedules. */
const TICK_MS = 200;

/** What a replay, rollback or cancel request did. */
export interface RequestResult {
  version: number;
  message: string;
}

/** Records per append when an output task writes its derived topic. */
const OUTPUT_BATCH_RECORDS = 1000;

const TIMEOUT = Symbol('timeout');

/** How long a task waits before it tries a store write again while another process holds the lock. */
const LOCKED_RETRY_MS = 1000;

/** Resolves when `signal` aborts (never rejects). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function producerId(...parts: (string | number)[]): number {
  // A stable 52-bit id from the task's identity, so a restarted task is the same producer.
  return Number.parseInt(createHash('sha256').update(parts.join('/')).digest('hex').slice(0, 13), 16);
}

export class Engine {
  private readonly groups: ViewGroup[] = [];
  private readonly tasks: Task[] = [];
  private readonly abort = new AbortController();
  private nextTaskId = 0;
  /** The config bundled once (the code a new version keeps); null without a config path or when bundling failed. */
  private configCodePromise: Promise<string | null> | null = null;
  /** Per view, when its live version went live (for scheduled rebuilds). */
  private readonly liveSince = new Map<string, number>();
  private ticker: NodeJS.Timeout | null = null;
  private ticking = false;
  private tickDone: Promise<void> = Promise.resolve();
  private lastProgressAtMs = 0;
  private readonly local = new InThreadRunner();
  /** Set once the worker threads are up. */
  private pool: WorkerPool | null = null;
  private poolStarting: Promise<void> = Promise.resolve();
  private threadCount = 0;
  private failed: (err: Error) => void = () => {};
  private hasFailed = false;
  /** Rejects when a task fails (the store, the log or a worker thread reported an error); `kappa start` exits on it. */
  readonly failure: Promise<never> = new Promise<never>((_, reject) => (this.failed = reject));
  private readonly flushIntervalMs: number;
  private readonly progressIntervalMs: number;
  private readonly dirtyRowsMax: number;
  private readonly workers: number;
  private readonly readBytesMax: number;

  /** When the engine was made, which is right after its app was loaded (see WorkerPool's configLoadedAtMs). */
  private readonly createdAtMs = Date.now();

  constructor(private readonly opts: EngineOptions) {
    // Every task's read waits on this one signal: one listener per task, however many tasks.
    setMaxListeners(0, this.abort.signal);
    this.flushIntervalMs = opts.flushIntervalMs ?? 500;
    this.progressIntervalMs = opts.progressIntervalMs ?? 1000;
    this.dirtyRowsMax = opts.dirtyRowsMax ?? 10_000;
    this.workers = opts.workers ?? 0;
    this.readBytesMax = opts.readBytesMax ?? 256 * 1024;
    if (!Number.isInteger(this.workers) || this.workers < 0) throw new KappaError('KAPPA_INVALID_ARGUMENT', `workers must be a whole number (0 or more), not ${this.workers}.`);
    if (this.workers > 0 && !opts.configPath) throw new KappaError('KAPPA_INVALID_ARGUMENT', 'Worker threads load the config themselves: pass configPath (the file the app was loaded from), or workers: 0.');
  }

  private readonly changeListeners = new Set<(change: ViewChange) => void>();
  /** Told how long each view flush (one store transaction) took, and how many rows it wrote (the server's metrics set it). */
  flushObserver: ((view: string, seconds: number, rows: number) => void) | null = null;

  /** Calls `listener` after each commit that changes what queries see (see ViewChange); returns the unsubscribe function. */
  onChange(listener: (change: ViewChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private emit(change: ViewChange): void {
    for (const l of this.changeListeners) {
      try {
        l(change);
      } catch (err) {
        this.opts.logger.warn(`a change listener failed: ${(err as Error).message}`);
      }
    }
  }

  /** True once every live view and output has caught up with the head of the log at least once since start (recovery done). */
  get caughtUp(): boolean {
    return this.tasks.length > 0 && this.tasks.every((t) => t.caughtUp || (t.group !== null && t.group.build !== null));
  }

  /** Worker threads the tasks run on (started or starting); 0 when every task runs on the calling thread. */
  get threads(): number {
    return this.threadCount;
  }

  /** Creates missing topics, picks each view's versions, loads checkpoints and starts every task. */
  async start(): Promise<void> {
    const { log, store, app, logger } = this.opts;
    const topicNames = new Set(app.topics.map((t) => t.name));
    for (const t of app.topics) await this.ensureTopic(t.name, t.partitions, t.retentionMs);
    const versions = await store.versions();
    const builds = await this.opts.control.builds();
    for (const view of app.views) {
      const source = view.aggregation.stream.source;
      if (!topicNames.has(source.name)) {
        throw new KappaError('KAPPA_CONFIG_INVALID', `View "${view.name}" reads topic "${source.name}", which the config's topics list does not include.`, { view: view.name, topic: source.name });
      }
      const info = await log.topic(source.name);
      await this.ensureTopic(`${source.name}.dlq`, info.partitions, -1);
      await this.ensureTopic(view.lateTopic, info.partitions, -1);
      await this.planView(
        view,
        versions.filter((v) => v.name === view.name),
        builds.filter((b) => b.name === view.name),
      );
    }
    for (const output of app.outputs ?? []) {
      for (const t of [output.stream.source.name, output.target.name]) {
        if (!topicNames.has(t)) throw new KappaError('KAPPA_CONFIG_INVALID', `Output "${output.name}" uses topic "${t}", which the config's topics list does not include.`, { output: output.name, topic: t });
      }
      await this.addOutput(output);
    }
    this.failure.catch(() => {}); // observed through `failure`; never an unhandled rejection
    // Builds started later (kappa replay) spread over the same threads.
    this.threadCount = this.workers === 0 ? 0 : Math.min(this.workers, Math.max(1, this.tasks.length));
    if (this.threadCount > 0) {
      const pool = WorkerPool.start({
        configPath: this.opts.configPath!,
        workers: this.threadCount,
        log: log.descriptor,
        readBytesMax: this.readBytesMax,
        pendingMax: this.dirtyRowsMax,
        heapMb: this.opts.workerHeapMb,
        onFailure: (err) => this.fail(err),
        onWarning: (message) => logger.warn(message),
        configLoadedAtMs: this.opts.configLoadedAtMs ?? this.createdAtMs,
        onBundleFailed: (err) => logger.warn(`the worker threads load the config through tsx, which makes them slower to start and larger, because ${err.message}`),
      });
      this.poolStarting = pool.then(
        async (pool) => {
          if (this.abort.signal.aborted) await pool.close();
          else this.pool = pool;
        },
        (err: Error) => this.fail(err),
      );
    }
    for (const t of this.tasks) t.running = this.runTask(t);
    this.ticker = setInterval(() => {
      if (!this.ticking) this.tickDone = this.tick();
    }, Math.min(TICK_MS, this.progressIntervalMs));
  }

  /**
   * Decides which versions of a view run, from the catalog, the builds in progress and the config:
   * - no version yet: version 1, from the config (it is live from its first rows);
   * - the live version's logic is the config's: it runs; a build of that logic (kappa replay, a
   *   schedule) resumes from its checkpoints; a build of other logic is dropped;
   * - the logic changed: the live version keeps running from its stored code while a new version
   *   replays the log (rebuild 'auto'), or only when asked (`manual`); after a rollback to it the
   *   config's logic (the retired newer version's) is not built again until asked;
   * - a rollback in progress resumes catching up.
   */
  private async planView(view: ViewDef, mine: ViewVersionInfo[], builds: BuildInfo[]): Promise<void> {
    const { store, logger } = this.opts;
    const plan = compileView(view);
    const live = mine.find((v) => v.state === 'live');
    if (live === undefined) {
      const same = mine.find((v) => v.fingerprint === plan.fingerprint);
      await this.addGroup(plan, same?.version ?? nextVersion(view.name, mine, builds), true, same ?? null, null);
      return;
    }
    this.liveSince.set(view.name, live.liveAtMs ?? live.createdAtMs);
    let building: ViewGroup | null = null;
    const unfinished = [...new Set([...mine.filter((v) => v.state === 'building').map((v) => v.version), ...builds.map((b) => b.version)])].sort((a, b) => a - b);
    for (const n of unfinished) {
      const info = mine.find((v) => v.version === n) ?? null;
      const build = builds.find((b) => b.version === n) ?? null;
      if (info?.state === 'live' || (info?.state === 'retired' && build?.reason !== 'rollback')) {
        await this.opts.control.deleteBuild(view.name, n); // the process stopped between a swap and forgetting the build
        continue;
      }
      if (build?.reason === 'rollback' && info !== null && building === null) {
        const target = await this.planOf(view, plan, info);
        if (target !== null) {
          building = await this.addGroup(target.plan, n, target.fromConfig, info, build);
          logger.info(`view ${view.name}: resuming the rollback to version ${n}`);
          continue;
        }
      }
      const fingerprint = info?.fingerprint ?? build?.fingerprint;
      if (fingerprint === plan.fingerprint && building === null && build?.reason !== 'rollback') {
        const resumed = build ?? this.newBuildInfo(view.name, n, plan.fingerprint, 'logic changed', 'earliest', []);
        building = await this.addGroup(plan, n, true, info, resumed);
        if (build === null) await this.opts.control.saveBuild(resumed);
        logger.info(`view ${view.name}: resuming the build of version ${n} from its checkpoints`);
        continue;
      }
      logger.info(`view ${view.name}: dropping unfinished version ${n}: ${build?.reason === 'rollback' ? 'its rollback cannot resume' : "its logic is not the config's any more"}`);
      if (info !== null) await store.dropVersion(view.name, n);
      await this.opts.control.forgetVersion(view.name, n);
    }

    const liveFromConfig = live.fingerprint === plan.fingerprint;
    const liveCode = liveFromConfig ? { plan, fromConfig: true } : await this.planOf(view, plan, live);
    if (!liveFromConfig && building === null) {
      const rolledBackFrom = mine.find((v) => v.state === 'retired' && v.version > live.version && v.fingerprint === plan.fingerprint);
      if (rolledBackFrom !== undefined) {
        logger.info(
          `view ${view.name}: version ${live.version} is live because it was rolled back to; the config's logic (version ${rolledBackFrom.version}'s) is not built again until you run \`kappa replay ${view.name}\``,
        );
      } else if (view.rebuild.onChange === 'auto') {
        const version = nextVersion(view.name, mine, builds);
        const what = await this.describeChange(view, liveCode?.plan.view ?? null);
        logger.info(`view ${view.name}: its logic changed (${what}; fingerprint ${live.fingerprint} → ${plan.fingerprint}); building version ${version} from the start of the log while version ${live.version} keeps serving`);
        building = await this.newBuild(view, plan, version, 'logic changed', 'earliest');
      } else {
        logger.info(`view ${view.name}: its logic changed (fingerprint ${live.fingerprint} → ${plan.fingerprint}); rebuild is 'manual', so version ${live.version} keeps its logic until you run \`kappa replay ${view.name}\``);
      }
    }
    // A process that stopped between a swap and this cleanup left older versions behind.
    await this.dropOldVersions(view);
    if (liveCode !== null) await this.addGroup(liveCode.plan, live.version, liveCode.fromConfig, live, null);
    else {
      logger.warn(
        `view ${view.name}: version ${live.version} keeps serving its rows as they are, without new events: its logic is no longer in the config and its code was not kept (it was built by an older Kappa, or without a config file)` +
          (building !== null ? `; version ${building.version} replaces it once built` : ''),
      );
    }
  }

  /** The logic of an existing version: the config's if the fingerprints match, else its stored code (null, logged, if that cannot run). */
  private async planOf(view: ViewDef, configPlan: ViewPlan, info: ViewVersionInfo): Promise<{ plan: ViewPlan; fromConfig: boolean } | null> {
    if (info.fingerprint === configPlan.fingerprint) return { plan: configPlan, fromConfig: true };
    const code = await this.opts.control.code(view.name, info.version);
    if (code === null) return null;
    try {
      const stored = (await loadBundledApp(code)).views.find((v) => v.name === view.name);
      if (stored === undefined) throw new Error(`it does not define view "${view.name}"`);
      return { plan: compileView(stored, { fingerprint: info.fingerprint }), fromConfig: false };
    } catch (err) {
      this.opts.logger.warn(`view ${view.name}: the stored code of version ${info.version} does not load (${(err as Error).message})`);
      return null;
    }
  }

  /** What changed between a version's stored logic and the config's, compared bundled to bundled. */
  private async describeChange(view: ViewDef, before: ViewDef | null): Promise<string> {
    if (before === null) return "what changed cannot be told: the live version's code was not kept";
    const code = await this.configCode();
    const after = code === null ? undefined : (await loadBundledApp(code).catch(() => null))?.views.find((v) => v.name === view.name);
    return after === undefined ? 'changed' : `${describeChange(before, after)} changed`;
  }

  /** The config as one module (kept with each version it builds); bundled once, on first need. */
  private configCode(): Promise<string | null> {
    const path = this.opts.configPath;
    this.configCodePromise ??=
      path === undefined
        ? Promise.resolve(null)
        : bundleConfig(path).catch((err: Error) => {
            this.opts.logger.warn(`the config could not be bundled, so new view versions do not keep their code (a rollback to them after a logic change is not possible): ${err.message.split('\n')[0]}`);
            return null;
          });
    return this.configCodePromise;
  }

  private newBuildInfo(name: string, version: number, fingerprint: string, reason: BuildReason, from: string, fromOffsets: BuildInfo['fromOffsets']): BuildInfo {
    const now = Date.now();
    return { name, version, fingerprint, reason, from, fromOffsets, startedAtMs: now, offsetsDone: 0, offsetsTotal: 0, eventsPerSecond: 0, etaSeconds: null, updatedAtMs: now };
  }

  /** A new version of `view` built by replaying the log from `from` ('earliest' or '@<ISO time>'). */
  private async newBuild(view: ViewDef, plan: ViewPlan, version: number, reason: BuildReason, from: string): Promise<ViewGroup> {
    const { log } = this.opts;
    const topic = plan.source.name;
    const { partitions } = await log.topic(topic);
    const timeMs = from === 'earliest' ? null : parseFrom(from);
    const fromOffsets: BuildInfo['fromOffsets'] = [];
    for (let p = 0; p < partitions; p++) {
      fromOffsets.push({ topic, partition: p, offset: timeMs === null ? (await log.offsets(topic, p)).start : await log.offsetForTime(topic, p, timeMs) });
    }
    const build = this.newBuildInfo(view.name, version, plan.fingerprint, reason, from, fromOffsets);
    await this.opts.control.saveBuild(build);
    return this.addGroup(plan, version, true, null, build);
  }

  /**
   * A version's tasks, one per source partition, each from its checkpoint (else from where its
   * build started, else the start of the log); opened on this thread, not yet running.
   */
  private async addGroup(plan: ViewPlan, version: number, fromConfig: boolean, info: ViewVersionInfo | null, build: BuildInfo | null): Promise<ViewGroup> {
    const { log, store } = this.opts;
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const group: ViewGroup = { plan, version, fromConfig, build, lastProgress: null, codeSaved: false, abort, ensured: null, keyNames: null, live: info?.state === 'live', tasks: [] };
    if (info !== null) {
      const stored = await store.definition(plan.name, version);
      if (stored) {
        group.keyNames = stored.keyColumns.map((c) => c.name).filter((n) => !(plan.windowed && (n === 'window_start' || n === 'window_end')));
        // Idempotent; re-registers what a store cannot keep across restarts (custom merge functions).
        group.ensured = Promise.resolve(await store.ensureVersion(plan.definition(version, stored.keyColumns, group.keyNames)));
      }
    }
    const checkpoints = info !== null ? await store.checkpoints(plan.name, version) : [];
    const topic = plan.source.name;
    const { partitions } = await log.topic(topic);
    for (let p = 0; p < partitions; p++) {
      const cp = checkpoints.find((c) => c.topic === topic && c.partition === p);
      const offset = cp?.offset ?? build?.fromOffsets.find((f) => f.topic === topic && f.partition === p)?.offset ?? (await log.offsets(topic, p)).start;
      const task = this.newTask(plan, group, null, p, offset, fromConfig);
      group.tasks.push(task);
      this.local.open({ id: task.id, plan, partition: p, watermarkMs: cp ? cp.watermark : NO_WATERMARK, keyNames: group.keyNames });
    }
    this.groups.push(group);
    return group;
  }

  private newTask(plan: TaskPlan, group: ViewGroup | null, producer: OutputProducer | null, partition: number, offset: number, pooled: boolean): Task {
    const signal = group === null ? this.abort.signal : AbortSignal.any([this.abort.signal, group.abort.signal]);
    const task: Task = {
      id: this.nextTaskId++,
      plan,
      group,
      producer,
      topic: plan.source.name,
      partition,
      offset,
      committedOffset: offset,
      lastFlushAtMs: Date.now(),
      caughtUp: false,
      runner: this.local,
      pooled,
      signal,
      running: Promise.resolve(),
    };
    this.tasks.push(task);
    return task;
  }

  /** Starts the tasks of a group made after `start` (a replay, a rollback, a scheduled rebuild). */
  private startGroup(group: ViewGroup): void {
    for (const t of group.tasks) t.running = this.runTask(t);
  }

  /** Stops a group's tasks (its version was retired or its build cancelled) and forgets them; nothing more is flushed. */
  private async stopGroup(group: ViewGroup): Promise<void> {
    if (!this.groups.includes(group)) return;
    this.groups.splice(this.groups.indexOf(group), 1);
    group.abort.abort();
    await Promise.allSettled(group.tasks.map((t) => t.running));
    for (const t of group.tasks) {
      t.runner.forget(t.id);
      this.tasks.splice(this.tasks.indexOf(t), 1);
    }
  }

  /** The tasks of an output pipeline (`from(a)....to(b)`): one per partition of `a`, each from its checkpoint. */
  private async addOutput(output: OutputDef): Promise<void> {
    const { log } = this.opts;
    const source = output.stream.source;
    const info = await log.topic(source.name);
    const target = await log.topic(output.target.name);
    await this.ensureTopic(`${source.name}.dlq`, info.partitions, -1);
    const plan = compileOutput(output, target.partitions);
    // A pipeline with a stateful step rebuilds its state from the start of its source every time.
    const checkpoints = output.fromStart ? [] : await this.opts.control.outputCheckpoints(output.name);
    if (checkpoints.length === 0 && !output.fromStart) await this.warnIfRenamed(output);
    for (let p = 0; p < info.partitions; p++) {
      const cp = checkpoints.find((c) => c.topic === source.name && c.partition === p);
      const offset = cp ? cp.offset : (await log.offsets(source.name, p)).start;
      const sequences = Array.from({ length: target.partitions }, (_, q) => cp?.sequences[q] ?? 0);
      const producer: OutputProducer = { plan, id: producerId('output', output.name, source.name, p), sequences };
      const task = this.newTask(plan, null, producer, p, offset, true);
      this.local.open({ id: task.id, plan, partition: p, watermarkMs: NO_WATERMARK, keyNames: null });
    }
  }

  /**
   * An output with no checkpoint starts from the beginning of its source. If an output that is no
   * longer in the config read the same topic, this may be that one renamed, and its records would
   * be written to the target again: say so, and how to keep its checkpoint.
   */
  private async warnIfRenamed(output: OutputDef): Promise<void> {
    const { app, logger } = this.opts;
    const current = new Set((app.outputs ?? []).map((o) => o.name));
    for (const name of await this.opts.control.outputs()) {
      if (current.has(name)) continue;
      const cps = (await this.opts.control.outputCheckpoints(name)).filter((c) => c.topic === output.stream.source.name);
      if (cps.length === 0) continue;
      logger.warn(
        `output ${output.name} starts from the beginning of topic ${output.stream.source.name}, and output ${name}, no longer in the config, had read it up to offsets ${cps.map((c) => `${c.partition}:${c.offset}`).join(', ')}. ` +
          `If ${output.name} is ${name} renamed, its records are being written to ${output.target.name} again: stop now and keep the old name with .to(${output.target.name}, { name: '${name}' }).`,
      );
    }
  }

  /** The first failure stops every task and the worker threads; later ones only repeat it. */
  private fail(err: Error): void {
    if (this.hasFailed) return;
    this.hasFailed = true;
    this.abort.abort();
    this.failed(err);
    void this.pool?.close().catch(() => {});
  }

  private async ensureTopic(name: string, partitions: number, retentionMs: number): Promise<void> {
    try {
      const info = await this.opts.log.topic(name);
      if (info.partitions !== partitions) {
        this.opts.logger.warn(`topic ${name} has ${info.partitions} partitions in the log but ${partitions} in the config; the log's count is used (partitions cannot change without re-keying history)`);
      }
    } catch (err) {
      if (!isKappaError(err, 'KAPPA_UNKNOWN_TOPIC')) throw err;
      await this.opts.log.createTopic(name, { partitions, retentionMs });
      this.opts.logger.info(`created topic ${name} (${partitions} partitions)`);
    }
  }

  private async runTask(task: Task): Promise<void> {
    const { log } = this.opts;
    const signal = task.signal;
    if (this.threadCount > 0 && task.pooled) {
      await this.poolStarting;
      if (this.pool === null) return; // the threads did not start (the engine failed) or the engine is stopping
      this.moveToPool(task, this.pool);
      return this.runPooledTask(task, this.pool);
    }
    const it = log.read(task.topic, task.partition, task.offset, { follow: true, signal, maxBytes: this.readBytesMax })[Symbol.asyncIterator]();
    let next = it.next();
    try {
      while (!signal.aborted) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<typeof TIMEOUT>((resolve) => (timer = setTimeout(() => resolve(TIMEOUT), this.flushIntervalMs)));
        const got = await Promise.race([next, timeout]);
        clearTimeout(timer);
        if (got === TIMEOUT) {
          // Idle: nothing arrived for a whole interval. Commit what is pending, note that we are at the head.
          if (task.offset !== task.committedOffset || task.runner.progress(task.id).dirtyRows > 0) await this.flush(task);
          task.caughtUp = true;
          await this.maybeGoLive(task.group);
          continue;
        }
        if (got.done) break;
        const batch = got.value;
        // Read the next batch while this one is folded (here or in the task's worker).
        const from = task.offset;
        task.offset = batch.lastOffset + 1;
        next = it.next();
        this.local.process(task.id, batch, from);
        // The first time a task reaches the end of its partition (a replay or a new version
        // catching up), it commits at once rather than after an idle interval: the view is
        // current, and a building version can go live, even if events keep arriving.
        const reachedHead = !task.caughtUp && task.offset >= (await log.offsets(task.topic, task.partition)).end;
        if (reachedHead || task.runner.progress(task.id).dirtyRows >= this.dirtyRowsMax || Date.now() - task.lastFlushAtMs >= this.flushIntervalMs) await this.flush(task);
        if (reachedHead) {
          task.caughtUp = true;
          await this.maybeGoLive(task.group);
        }
      }
    } catch (err) {
      // Fails the engine and aborts every task, this one's read under way included.
      const e = err as Error;
      this.fail(new KappaError(isKappaError(e) ? e.code : 'KAPPA_IO_ERROR', `task ${task.plan.name}/${task.topic}/${task.partition} stopped: ${e?.message ?? String(e)}`, undefined, e));
    } finally {
      // The read under way settles once aborted; the iterator is closed after it, as an async
      // generator would queue the close behind it anyway.
      await next.catch(() => {});
      await it.return?.(undefined);
    }
  }

  /** Moves a task that has folded nothing yet from this thread to its worker, which reads from the task's offset. */
  private moveToPool(task: Task, pool: WorkerPool): void {
    const rest = this.local.release(task.id);
    pool.open({ id: task.id, plan: task.plan, partition: task.partition, watermarkMs: rest.watermarkMs, keyNames: rest.keyNames, fromOffset: task.offset });
    task.runner = pool;
  }

  /**
   * A task on a worker thread: the worker reads and folds; this thread tells it how far the
   * partition is durable (the high watermark, as it moves), and flushes on the same rules as
   * `runTask`: pending rows at the bound, the interval elapsed, or the first time it reaches the head.
   */
  private async runPooledTask(task: Task, pool: WorkerPool): Promise<void> {
    const { log } = this.opts;
    const signal = task.signal;
    let hw = (await log.offsets(task.topic, task.partition)).end;
    pool.setHighWatermark(task.id, hw);
    const following = (async () => {
      while (!signal.aborted) {
        await log.waitForData(task.topic, task.partition, hw, signal);
        if (signal.aborted) return;
        hw = (await log.offsets(task.topic, task.partition)).end;
        pool.setHighWatermark(task.id, hw);
      }
    })();
    following.catch(() => {}); // a closed log ends it; failures surface through the worker's reads
    const stopped = aborted(signal);
    try {
      while (!signal.aborted) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<typeof TIMEOUT>((resolve) => (timer = setTimeout(() => resolve(TIMEOUT), this.flushIntervalMs)));
        const got = await Promise.race([pool.nextProgress(task.id), timeout, stopped]);
        clearTimeout(timer);
        if (signal.aborted) break;
        const progress = pool.progress(task.id);
        task.offset = progress.offset ?? task.offset;
        const atHead = task.offset >= hw;
        if (got === TIMEOUT) {
          // Nothing folded for a whole interval: commit what is pending; at the head, the task is caught up.
          if (task.offset !== task.committedOffset || progress.dirtyRows > 0) await this.flush(task);
          if (atHead) {
            task.caughtUp = true;
            await this.maybeGoLive(task.group);
          }
          continue;
        }
        const reachedHead = !task.caughtUp && atHead;
        if (reachedHead || progress.dirtyRows >= this.dirtyRowsMax || Date.now() - task.lastFlushAtMs >= this.flushIntervalMs) await this.flush(task);
        if (reachedHead) {
          task.caughtUp = true;
          await this.maybeGoLive(task.group);
        }
      }
    } catch (err) {
      const e = err as Error;
      this.fail(new KappaError(isKappaError(e) ? e.code : 'KAPPA_IO_ERROR', `task ${task.plan.name}/${task.topic}/${task.partition} stopped: ${e?.message ?? String(e)}`, undefined, e));
    } finally {
      await following.catch(() => {});
    }
  }

  private async flush(task: Task): Promise<void> {
    const { store } = this.opts;
    // On this thread the drain covers every batch handed over so far: every record before task.offset.
    // With a worker that reads for itself, the drain says which offset it covers.
    const drained = await task.runner.drain(task.id);
    const offset = drained.offset ?? task.offset;
    task.offset = offset;
    const group = task.group;
    if (group === null) return this.flushOutput(task, task.producer!, offset, drained);
    const name = group.plan.view.name;
    const deltas = drained.rows as RowDelta[];
    if (group.ensured === null && deltas.length > 0) {
      group.keyNames = drained.keyNames;
      group.ensured = store.ensureVersion(group.plan.definition(group.version, deltas[0], drained.keyNames ?? []));
      group.ensured.catch(() => {}); // awaited below; this only keeps a failure from counting as unhandled meanwhile
    }
    if (group.keyNames === null && drained.keyNames !== null) group.keyNames = drained.keyNames;
    // Dead letters and late events first, and durable, so a checkpoint never covers an event whose
    // side output was lost. A replay re-sends them with the same sequence (the source offset), and
    // the log drops what it already has.
    await this.appendSideOutputs(task, drained.deadLetters, drained.late);
    if (group.ensured) {
      const info = await group.ensured;
      if (info.state === 'live') group.live = true;
      if (!group.codeSaved) await this.saveCode(group);
      const checkpoint: Checkpoint = { topic: task.topic, partition: task.partition, offset, watermark: drained.watermarkMs, outputSequence: 0 };
      const started = performance.now();
      await this.whileLocked(task, () => store.flush(name, group.version, deltas, [checkpoint]));
      this.flushObserver?.(name, (performance.now() - started) / 1000, deltas.length);
      task.committedOffset = offset;
      if (group.live && deltas.length > 0 && this.changeListeners.size > 0) {
        this.emit({ kind: 'rows', view: name, version: group.version, keyNames: group.keyNames ?? [], keys: deltas.map((d) => d.key) });
      }
    }
    task.lastFlushAtMs = Date.now();
  }

  /**
   * An output task's flush: dead letters, then the records for the derived topic, each partition's
   * under the producer's next sequences, all durable; then the checkpoint with the sequences after
   * them. A crash in between re-sends the same records under the same sequences from the last
   * checkpoint, and the log drops the ones it has.
   */
  private async flushOutput(task: Task, producer: OutputProducer, offset: number, drained: Drained): Promise<void> {
    const { log } = this.opts;
    await this.appendSideOutputs(task, drained.deadLetters, []);
    const target = producer.plan.output.target.name;
    const byPartition = new Map<number, EncodableRecord[]>();
    for (const r of drained.outputs) {
      let records = byPartition.get(r.partition);
      if (records === undefined) byPartition.set(r.partition, (records = []));
      records.push({ key: r.key === null ? null : Buffer.from(r.key), value: Buffer.from(r.value), headers: [], timestamp: r.timestamp });
    }
    const sequences = producer.sequences.slice();
    await Promise.all(
      [...byPartition].map(async ([q, records]) => {
        for (let i = 0; i < records.length; i += OUTPUT_BATCH_RECORDS) {
          const chunk = records.slice(i, i + OUTPUT_BATCH_RECORDS);
          await log.appendBatch(target, q, chunk, { producerId: producer.id, producerEpoch: 0, baseSequence: sequences[q] });
          sequences[q] = (sequences[q] + chunk.length) % SEQUENCE_MODULUS;
        }
      }),
    );
    if (offset !== task.committedOffset) {
      if (!producer.plan.output.fromStart) await this.whileLocked(task, () => this.opts.control.saveOutputCheckpoint(task.plan.name, { topic: task.topic, partition: task.partition, offset, sequences }));
      task.committedOffset = offset;
    }
    producer.sequences = sequences;
    task.lastFlushAtMs = Date.now();
  }

  /**
   * Runs a store write of `task`, retrying for as long as another process holds the store's write
   * lock (a sqlite3 shell with an open transaction, a backup): the task waits, on timers, and its
   * lag grows; it neither fails nor spins. The store already retried for its busy timeout before
   * saying so. Reported once per wait.
   */
  private async whileLocked<T>(task: Task, write: () => Promise<T>): Promise<T> {
    let waitingSinceMs = 0;
    for (;;) {
      try {
        const result = await write();
        if (waitingSinceMs > 0) this.opts.logger.info(`${task.plan.name}/${task.topic}/${task.partition} goes on: the view store was locked for ${((Date.now() - waitingSinceMs) / 1000).toFixed(1)} s`);
        return result;
      } catch (err) {
        if (!isKappaError(err, 'KAPPA_DATA_DIR_LOCKED') || task.signal.aborted) throw err;
        if (waitingSinceMs === 0) {
          waitingSinceMs = Date.now();
          this.opts.logger.warn(`${task.plan.name}/${task.topic}/${task.partition} waits: another process holds the view store's write lock (${err.message}); retrying every second`);
        }
        await new Promise((resolve) => setTimeout(resolve, LOCKED_RETRY_MS));
      }
    }
  }

  private async appendSideOutputs(task: Task, dead: DeadLetter[], late: LateEvent[]): Promise<void> {
    const { log } = this.opts;
    const name = task.plan.name;
    const version = task.group?.version ?? 0;
    const dlqId = producerId(name, version, task.topic, task.partition, 'dlq');
    const lateId = producerId(name, version, task.topic, task.partition, 'late');
    for (const d of dead) {
      const headers = provenance(name, task.topic, d.partition, d.record.offset, { 'kappa.error': d.reason });
      await log.appendBatch(`${task.topic}.dlq`, d.partition, [{ key: d.record.key, value: d.record.value, headers, timestamp: d.record.timestamp }], {
        producerId: dlqId,
        producerEpoch: 0,
        baseSequence: sideSequence(d.record.offset),
        sequenceGaps: 'allow',
      });
    }
    const lateTopic = (task.plan as ViewPlan).view?.lateTopic;
    for (const l of late) {
      const headers = provenance(name, task.topic, l.partition, l.record.offset, { 'kappa.event.time': String(l.eventTimeMs), 'kappa.watermark': String(l.watermarkMs) });
      await log.appendBatch(lateTopic, l.partition, [{ key: l.record.key, value: l.record.value, headers, timestamp: l.record.timestamp }], {
        producerId: lateId,
        producerEpoch: 0,
        baseSequence: sideSequence(l.record.offset),
        sequenceGaps: 'allow',
      });
    }
  }

  /** Keeps the config's code with a version built from it, once (see ViewGroup). */
  private async saveCode(group: ViewGroup): Promise<void> {
    group.codeSaved = true;
    if (!group.fromConfig) return;
    const name = group.plan.view.name;
    if ((await this.opts.control.code(name, group.version)) !== null) return;
    const code = await this.configCode();
    if (code !== null) await this.opts.control.saveCode(name, group.version, code);
  }

  /**
   * A building version goes live once every one of its tasks has reached the head of its partition
   * (or been idle there): one store transaction repoints the public SQL view and the catalog (the
   * live version becomes retired), then the retired version's tasks stop, and retired versions
   * beyond `keepVersions` are dropped.
   */
  private async maybeGoLive(group: ViewGroup | null): Promise<void> {
    if (group === null || group.live || group.ensured === null || !group.tasks.every((t) => t.caughtUp)) return;
    const { store, logger } = this.opts;
    const view = group.plan.view;
    group.live = true; // before any await: the other tasks of the group find it swapping
    await store.makeLive(view.name, group.version);
    crashPoint('swap-after-commit');
    this.emit({ kind: 'live', view: view.name, version: group.version });
    this.liveSince.set(view.name, Date.now());
    const build = group.build;
    group.build = null;
    const took = build === null ? '' : ` (${build.reason === 'rollback' ? 'rolled back' : 'built'} in ${((Date.now() - build.startedAtMs) / 1000).toFixed(1)} s)`;
    logger.info(`view ${view.name}: version ${group.version} caught up with the log and is now live${took}`);
    if (build !== null) await this.opts.control.deleteBuild(view.name, group.version);
    for (const other of this.groups.filter((g) => g !== group && g.plan.view.name === view.name)) await this.stopGroup(other);
    await this.dropOldVersions(view);
  }

  /** Keeps the newest `keepVersions` retired versions of a view for rollback; drops the older ones (not one being rolled back to). */
  private async dropOldVersions(view: ViewDef): Promise<void> {
    const { store, logger } = this.opts;
    const running = new Set(this.groups.filter((g) => g.plan.view.name === view.name).map((g) => g.version));
    const retired = (await store.versions()).filter((v) => v.name === view.name && v.state === 'retired').sort((a, b) => (b.liveAtMs ?? 0) - (a.liveAtMs ?? 0) || b.version - a.version);
    for (const old of retired.slice(view.keepVersions)) {
      if (running.has(old.version)) continue;
      await store.dropVersion(view.name, old.version);
      await this.opts.control.forgetVersion(view.name, old.version);
      logger.info(`view ${view.name}: dropped retired version ${old.version} (keepVersions ${view.keepVersions})`);
    }
  }

  /** Builds a new version of `viewName` by replaying the log from `from` ('earliest' or '@<ISO time>'), beside the live one. */
  async replay(viewName: string, from = 'earliest', reason: BuildReason = 'replay'): Promise<RequestResult> {
    const view = this.configView(viewName);
    if (from !== 'earliest') parseFrom(from);
    this.refuseIfBuilding(viewName);
    const versions = (await this.opts.store.versions()).filter((v) => v.name === viewName);
    if (!versions.some((v) => v.state === 'live')) throw new KappaError('KAPPA_VIEW_CONFLICT', `View "${viewName}" has no live version yet: it is being built for the first time.`, { view: viewName });
    const version = Math.max(nextVersion(viewName, versions, await this.opts.control.builds()), ...this.groups.filter((g) => g.plan.view.name === viewName).map((g) => g.version + 1));
    const plan = compileView(view);
    const group = await this.newBuild(view, plan, version, reason, from);
    this.startGroup(group);
    const message = `building version ${version} of view ${viewName} by replaying ${plan.source.name} from ${from === 'earliest' ? 'the start of the log' : from.slice(1)}; the live version keeps serving until it has caught up`;
    this.opts.logger.info(`view ${viewName}: ${reason === 'scheduled' ? 'scheduled rebuild: ' : ''}${message}`);
    return { version, message };
  }

  /**
   * Makes the previous version of `viewName` (the retired one live most recently) live again: it
   * first catches up from its own checkpoints, with its own logic, then the swap is the same as a build's.
   */
  async rollback(viewName: string): Promise<RequestResult> {
    const view = this.configView(viewName);
    this.refuseIfBuilding(viewName);
    const versions = (await this.opts.store.versions()).filter((v) => v.name === viewName);
    const target = versions.filter((v) => v.state === 'retired' && v.liveAtMs !== null).sort((a, b) => (b.liveAtMs ?? 0) - (a.liveAtMs ?? 0))[0];
    if (target === undefined) {
      throw new KappaError('KAPPA_VIEW_CONFLICT', `View "${viewName}" has no earlier version to roll back to (retired versions are kept per the view's keepVersions, default 1).`, { view: viewName });
    }
    const code = await this.planOf(view, compileView(view), target);
    if (code === null) {
      throw new KappaError('KAPPA_VIEW_CONFLICT', `Version ${target.version} of view "${viewName}" cannot run: its logic is not the config's and its code was not kept (it was built by an older Kappa or without a config file).`, {
        view: viewName,
        version: target.version,
      });
    }
    const fromOffsets = (await this.opts.store.checkpoints(viewName, target.version)).map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset }));
    const build = this.newBuildInfo(viewName, target.version, target.fingerprint, 'rollback', 'checkpoints', fromOffsets);
    await this.opts.control.saveBuild(build);
    const group = await this.addGroup(code.plan, target.version, code.fromConfig, target, build);
    this.startGroup(group);
    const message = `rolling back view ${viewName} to version ${target.version}: it catches up from its checkpoints, then goes live`;
    this.opts.logger.info(message);
    return { version: target.version, message };
  }

  /** Stops the build (or rollback) in progress for `viewName`; a new version built so far is dropped. */
  async cancel(viewName: string): Promise<RequestResult> {
    this.configView(viewName);
    const group = this.groups.find((g) => g.plan.view.name === viewName && g.build !== null);
    if (group === undefined) throw new KappaError('KAPPA_VIEW_CONFLICT', `View "${viewName}" has no build in progress to cancel.`, { view: viewName });
    const rollback = group.build!.reason === 'rollback';
    group.build = null;
    await this.stopGroup(group);
    const { store } = this.opts;
    const exists = (await store.versions()).some((v) => v.name === viewName && v.version === group.version);
    if (exists && !rollback) {
      await store.dropVersion(viewName, group.version);
      await this.opts.control.forgetVersion(viewName, group.version);
    } else await this.opts.control.deleteBuild(viewName, group.version);
    const message = rollback ? `cancelled the rollback of view ${viewName} to version ${group.version}; it stays retired` : `cancelled the build of version ${group.version} of view ${viewName} and dropped what it had built`;
    this.opts.logger.info(message);
    return { version: group.version, message };
  }

  /** The builds in progress, with their progress as of the last update (about once a second). */
  builds(): BuildInfo[] {
    return this.groups.filter((g) => g.build !== null).map((g) => ({ ...g.build! }));
  }

  private configView(name: string): ViewDef {
    const view = this.opts.app.views.find((v) => v.name === name);
    if (view === undefined) {
      throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${name}" in the config (it has ${this.opts.app.views.map((v) => v.name).join(', ') || 'none'}).`, { view: name });
    }
    return view;
  }

  private refuseIfBuilding(name: string): void {
    const building = this.groups.find((g) => g.plan.view.name === name && g.build !== null);
    if (building !== undefined) {
      const what = building.build!.reason === 'rollback' ? `a rollback to version ${building.version}` : `version ${building.version} is being built`;
      throw new KappaError('KAPPA_VIEW_CONFLICT', `View "${name}": ${what}. Wait for it, or cancel it with \`kappa replay ${name} --cancel\`.`, { view: name, version: building.version });
    }
  }

  /** Every TICK_MS: requests from other processes, build progress, scheduled rebuilds. */
  private async tick(): Promise<void> {
    if (this.ticking || this.abort.signal.aborted) return;
    this.ticking = true;
    try {
      const { store } = this.opts;
      for (const r of await this.opts.control.takeRequests()) {
        try {
          const result = await this.handle(r);
          await this.opts.control.answerRequest(r.id, 'done', result.message, result.version);
        } catch (err) {
          if (!(err instanceof KappaError)) throw err;
          await this.opts.control.answerRequest(r.id, 'failed', err.message, null);
        }
      }
      const now = Date.now();
      if (now - this.lastProgressAtMs >= this.progressIntervalMs) {
        this.lastProgressAtMs = now;
        for (const g of this.groups) if (g.build !== null) await this.saveProgress(g, now);
      }
      for (const view of this.opts.app.views) {
        const every = view.rebuild.everyMs;
        if (every !== null && !this.liveSince.has(view.name)) {
          // A first version goes live with its first rows, without a swap.
          const live = (await store.versions()).find((v) => v.name === view.name && v.state === 'live');
          if (live !== undefined) this.liveSince.set(view.name, live.liveAtMs ?? live.createdAtMs);
        }
        const since = this.liveSince.get(view.name);
        if (every === null || since === undefined || now - since < every) continue;
        if (this.groups.some((g) => g.plan.view.name === view.name && g.build !== null)) continue;
        await this.replay(view.name, 'earliest', 'scheduled');
      }
    } catch (err) {
      // A store locked by another process delays requests and progress to a later tick.
      if (isKappaError(err, 'KAPPA_DATA_DIR_LOCKED')) return;
      if (!this.abort.signal.aborted) this.fail(err as Error);
    } finally {
      this.ticking = false;
    }
  }

  private handle(r: ViewRequest): Promise<RequestResult> {
    if (r.action === 'replay') return this.replay(r.view, r.from ?? 'earliest');
    if (r.action === 'rollback') return this.rollback(r.view);
    return this.cancel(r.view);
  }

  /** Offsets done / to the head of the log, events/s (smoothed) and ETA of a build; saved for other processes. */
  private async saveProgress(group: ViewGroup, now: number): Promise<void> {
    const build = group.build!;
    let done = 0;
    let total = 0;
    for (const t of group.tasks) {
      const from = build.fromOffsets.find((f) => f.topic === t.topic && f.partition === t.partition)?.offset ?? 0;
      const end = (await this.opts.log.offsets(t.topic, t.partition)).end;
      done += Math.max(0, Math.min(t.offset, end) - from);
      total += Math.max(0, end - from);
    }
    const last = group.lastProgress;
    if (last !== null && now > last.atMs) {
      const rate = ((done - last.done) * 1000) / (now - last.atMs);
      build.eventsPerSecond = build.eventsPerSecond === 0 ? rate : 0.5 * build.eventsPerSecond + 0.5 * rate;
    }
    group.lastProgress = { done, atMs: now };
    build.offsetsDone = done;
    build.offsetsTotal = total;
    build.etaSeconds = build.eventsPerSecond > 0 ? (total - done) / build.eventsPerSecond : null;
    build.updatedAtMs = now;
    if (group.build === build) await this.opts.control.saveBuild(build);
  }

  status(): TaskStatus[] {
    return this.tasks.map((t) => {
      const progress = t.runner.progress(t.id);
      return {
        kind: t.plan.kind,
        view: t.plan.name,
        version: t.group?.version ?? 0,
        topic: t.topic,
        partition: t.partition,
        offset: t.offset,
        committedOffset: t.committedOffset,
        watermarkMs: progress.watermarkMs,
        lastFlushAtMs: t.lastFlushAtMs,
        eventsProcessed: progress.eventsProcessed,
        worker: t.runner.thread(t.id),
        building: t.group !== null && t.group.build !== null,
      };
    });
  }

  /**
   * Stops reading, flushes and checkpoints every task, and stops the worker threads. After a
   * failure nothing is flushed: the views keep their last checkpoints and a restart resumes there.
   */
  async stop(): Promise<void> {
    await this.stopTicking();
    this.abort.abort();
    await Promise.allSettled(this.tasks.map((t) => t.running));
    await this.poolStarting;
    try {
      if (!this.hasFailed) for (const t of this.tasks) await this.flush(t);
    } finally {
      await this.pool?.close();
    }
  }

  private async stopTicking(): Promise<void> {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    await this.tickDone;
  }

  /** Stops reading and stops the worker threads without flushing: the views keep their last checkpoints. */
  async close(): Promise<void> {
    await this.stopTicking();
    this.abort.abort();
    await Promise.allSettled(this.tasks.map((t) => t.running));
    await this.poolStarting;
    await this.pool?.close();
  }
}

/** The next version number of a view: past every version in the catalog and every build. */
function nextVersion(name: string, versions: ViewVersionInfo[], builds: BuildInfo[]): number {
  const mine = (v: { name: string }): boolean => v.name.toLowerCase() === name.toLowerCase();
  return Math.max(0, ...versions.filter(mine).map((v) => v.version), ...builds.filter(mine).map((b) => b.version)) + 1;
}

/** The time of a replay's `--from @<ISO time>`. */
export function parseFrom(from: string): number {
  const ms = from.startsWith('@') ? Date.parse(from.slice(1)) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `--from "${from}" is not understood. Use earliest, or @ followed by an ISO time such as @2026-01-31T12:00:00Z.`, { from });
  }
  return ms;
}

function provenance(view: string, topic: string, partition: number, offset: number, extra: Record<string, string>): { key: string; value: Buffer }[] {
  const h: Record<string, string> = { 'kappa.view': view, 'kappa.source.topic': topic, 'kappa.source.partition': String(partition), 'kappa.source.offset': String(offset), ...extra };
  return Object.entries(h).map(([key, value]) => ({ key, value: Buffer.from(value) }));
}


/**
 * The idempotent-producer sequence of a dead letter or late event: its source offset, wrapped into
 * the log's 31-bit sequence space. Sequences skip (only some records are dead letters), hence
 * `sequenceGaps: 'allow'`; a replay after a crash re-sends with the same sequence, and the log
 * drops it. Limit: the log treats a sequence up to 2^30 behind the last one as a duplicate, so two
 * side outputs of one task more than ~1 billion source offsets apart would be misread; per-output
 * counters in the checkpoint would lift that.
 */
function sideSequence(offset: number): number {
  return offset % 2 ** 31;
}
