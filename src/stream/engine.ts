/**
 * The processing engine: one task per (view version, source partition) and per (output, source
 * partition). A task reads whole batches from the log, folds them into dirty rows with the view's
 * compiled plan, and flushes on an interval or a size bound; a flush commits the rows and the
 * task's checkpoint in ONE store transaction, after its dead letters and late events are durable.
 * After any crash a task resumes from its checkpoint, so the view equals a fold of the log up to
 * that checkpoint: no event counted twice, none skipped.
 *
 * `Engine` is the facade (start, stop, status, the replay/rollback/cancel API, the change feed)
 * over its collaborators:
 *   task-loop.ts  runs the tasks, on this thread or on worker threads, and decides their flushes
 *   flush.ts      what a flush writes: side outputs, rows and checkpoint, derived-topic records
 *   versions.ts   which versions of a view run: plan at start, build, go live, drop, replay,
 *                 rollback, cancel, build progress
 *   requests.ts   requests from other processes (through the control store), progress, schedules
 *   outputs.ts    the tasks of output pipelines
 *
 * Threads: with `workers: 0` (the default here) this thread reads and folds every task. With
 * `workers: N` (what `kappa start` uses) task i runs on worker i % N, which reads its partition
 * itself up to the high watermark this thread sends it; this thread decides flushes and does the
 * writes (side outputs, the one store writer). The rows and checkpoints are the same whatever the
 * number of workers.
 */
import { setMaxListeners } from 'node:events';
import { KappaError, isKappaError } from '../errors.ts';
import type { Log, Logger } from '../log/index.ts';
import type { BuildInfo, BuildReason, ControlStore, StoreChange, ViewStore } from '../view/index.ts';
import type { Member, TaskLease } from '../view/index.ts';
import { ChangeFeed, type ViewChange } from './change-feed.ts';
import type { Cluster, ClusterOptions } from './cluster.ts';
import { followView } from './cluster-versions.ts';
import { engineCluster } from './engine-cluster.ts';
import type { AppDef } from './dsl.ts';
import { type DeadLetterTally, Flusher } from './flush.ts';
import { addOutputTasks } from './outputs.ts';
import { Requests } from './requests.ts';
import { type TopicSchema, registerTopicSchemas } from './topic-schemas.ts';
import { TableKeeper, keptTables } from './table-keeper.ts';
import { TaskLoop } from './task-loop.ts';
import { type RequestResult, type ViewGroup, Versions } from './versions.ts';

export type { ViewChange } from './change-feed.ts';
export { parseFrom, type RequestResult } from './versions.ts';

/**
 * While catching up, a view whose rows grow with their events (countDistinct, topN, custom
 * aggregates: a row's state is a whole value, not a few numbers) holds at most this many ×
 * dirtyRowsMax rows, and flushes on the usual interval: its rows may be far larger than the ~200
 * bytes of a row of sums and counts that catchUpRowsMax is sized for.
 */
const GROWING_ROWS_CATCH_UP = 4;

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
   * The same bound for a view's task while it catches up (a build, a replay, a restart behind the
   * head: until it first reaches the head of its partition). Default 32 × dirtyRowsMax (320,000
   * rows, about 64 MB of a task's memory at the process bench's ~200 bytes a row): a flush writes
   * every row it holds, so the more of a view's keys a task gathers before it writes them, the
   * fewer times each key is written, and the denser the rows of one transaction lie in the table
   * (a commit writes every page its rows touched). See also catchUpFlushIntervalMs. The process
   * bench's 1M-key view, 2 workers, 5M events: 245k events/s at 10,000, 331k at 40,000 (4 ×, with
   * the usual interval) on one machine; on a slower one 120-165k at 4 ×, 390-448k at 32 × with
   * gathering, peak RSS 307 → 534 MiB. 0 (or anything up to dirtyRowsMax): no larger flushes.
   */
  catchUpRowsMax?: number;
  /**
   * How often a view's task that catches up and gathers its rows flushes, in ms (default 30,000,
   * as Kafka Streams' commit interval; never less than flushIntervalMs). A task gathers while it
   * holds more than dirtyRowsMax rows and its events keep finding more of the rows it holds
   * (src/stream/gathering.ts: keys spread over a large key space do, keys that move on with time do
   * not); otherwise it flushes every flushIntervalMs as at the head (a view of few keys loses nothing
   * by it, and its checkpoints keep a crash's redo short). Gathering buys larger, denser flushes
   * (see catchUpRowsMax) at the price of redoing up to this long after a crash. The process
   * bench's 1M-key view (slower machine, 2 workers, 5M events, catchUpRowsMax 320,000, every task
   * gathering): 274k events/s with a 5 s interval, 318k with 10 s, 373k with 30 s.
   */
  catchUpFlushIntervalMs?: number;
  /**
   * Largest read from the log per task and step. Default 256 KiB from a file log: on the process
   * bench, against the log's 1 MiB default, peak RSS fell by 14-24 MB (each task holds a read and
   * the next one in flight) with events/s unchanged. 1 MiB from a Kafka cluster (a Kafka consumer's
   * max.partition.fetch.bytes): each read is a Fetch round trip through the broker, and with 256 KiB
   * a task's chain of Fetches, not its fold, set the pace (`npm run bench -- scale`, region_day on
   * PostgreSQL, 1 process: 0.64-0.76M events/s with 256 KiB, 0.90-1.05M with 1 MiB).
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
  /**
   * Share the work with other processes on the same log and store (see cluster.ts): each task runs
   * in the one process holding its lease, and one process (the coordinator) decides about versions.
   */
  cluster?: ClusterOptions;
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

/** What `Engine.clusterStatus` reports (see there). */
export interface ClusterStatus {
  memberId: string;
  coordinator: boolean;
  sessionTimeoutMs: number;
  members: Member[];
  leases: TaskLease[];
}

export class Engine {
  private readonly abort = new AbortController();
  private readonly changes: ChangeFeed;
  private readonly flusher: Flusher;
  private readonly loop: TaskLoop;
  private readonly versions: Versions;
  private readonly requests: Requests;
  /** Set when the engine shares its work with other processes. */
  readonly cluster: Cluster | null;
  /** Stops hearing the other processes' changes (a cluster's store). */
  private unwatch: (() => Promise<void>) | null = null;
  /** Keeps the joined tables in the view store (null: the pipelines join none, or the store cannot keep them). */
  private keeper: TableKeeper | null = null;
  /** The registered schema of each topic with a format (topic-schemas.ts), by topic name; filled at start. */
  topicSchemas: ReadonlyMap<string, TopicSchema> = new Map();
  private failed: (err: Error) => void = () => {};
  private hasFailed = false;
  /** Rejects when a task fails (the store, the log or a worker thread reported an error); `kappa start` exits on it. */
  readonly failure: Promise<never> = new Promise<never>((_, reject) => (this.failed = reject));
  private readonly workers: number;
  private readonly readBytesMax: number;
  private readonly dirtyRowsMax: number;
  private readonly catchUpRowsMax: number;
  private readonly catchUpGrowingRowsMax: number;
  /** `start` has run (a single process): with no task at all, nothing is left to catch up. */
  private started = false;

  /** When the engine was made, which is right after its app was loaded (see WorkerPool's configLoadedAtMs). */
  private readonly createdAtMs = Date.now();

  constructor(private readonly opts: EngineOptions) {
    // Every task's read waits on this one signal: one listener per task, however many tasks.
    setMaxListeners(0, this.abort.signal);
    this.dirtyRowsMax = opts.dirtyRowsMax ?? 10_000;
    this.catchUpRowsMax = Math.max(this.dirtyRowsMax, opts.catchUpRowsMax ?? 32 * this.dirtyRowsMax);
    this.catchUpGrowingRowsMax = Math.min(this.catchUpRowsMax, GROWING_ROWS_CATCH_UP * this.dirtyRowsMax);
    this.workers = opts.workers ?? 0;
    this.readBytesMax = opts.readBytesMax ?? (opts.log.descriptor.kind === 'kafka' ? 1024 * 1024 : 256 * 1024);
    if (!Number.isInteger(this.workers) || this.workers < 0)
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `workers must be a whole number (0 or more), not ${this.workers}.`,
      );
    if (this.workers > 0 && !opts.configPath)
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        'Worker threads load the config themselves: pass configPath (the file the app was loaded from), or workers: 0.',
      );
    const { log, store, control, app, logger, configPath } = opts;
    const signal = this.abort.signal;
    const fail = (err: Error): void => this.fail(err);
    this.changes = new ChangeFeed(logger);
    this.flusher = new Flusher({
      log,
      store,
      control,
      logger,
      changes: this.changes,
      saveCode: (group) => this.versions.saveCode(group),
    });
    this.loop = new TaskLoop({
      log,
      logger,
      flushIntervalMs: opts.flushIntervalMs ?? 500,
      catchUpFlushIntervalMs: opts.catchUpFlushIntervalMs ?? 30_000,
      dirtyRowsMax: this.dirtyRowsMax,
      catchUpRowsMax: this.catchUpRowsMax,
      catchUpGrowingRowsMax: this.catchUpGrowingRowsMax,
      readBytesMax: this.readBytesMax,
      signal,
      flusher: this.flusher,
      caughtUp: (group) => this.versions.maybeGoLive(group),
      fail,
      lost: opts.cluster === undefined ? undefined : (task) => void this.cluster?.fenced(task),
    });
    this.versions = new Versions({
      log,
      store,
      control,
      app,
      logger,
      configPath,
      loop: this.loop,
      changes: this.changes,
      distributed: opts.cluster !== undefined,
    });
    this.requests = new Requests({
      control,
      versions: this.versions,
      progressIntervalMs: opts.progressIntervalMs ?? 1000,
      signal,
      fail,
    });
    this.cluster =
      opts.cluster === undefined
        ? null
        : engineCluster(opts.cluster, {
            ...opts,
            loop: this.loop,
            versions: this.versions,
            flusher: this.flusher,
            requests: this.requests,
            outputs: this.outputTasksOptions(),
            fail,
          });
  }

  private outputTasksOptions(): Parameters<typeof addOutputTasks>[0] {
    return { ...this.opts, loop: this.loop, ensureTopic: this.ensureTopic.bind(this) };
  }

  /** Told how long each view flush (one store transaction) took, and how many rows it wrote (the server's metrics set it). */
  get flushObserver(): ((view: string, seconds: number, rows: number) => void) | null {
    return this.flusher.observer;
  }

  set flushObserver(observer: ((view: string, seconds: number, rows: number) => void) | null) {
    this.flusher.observer = observer;
  }

  /** Dead letters this process wrote, per dead-letter topic: the count and the first reason. */
  deadLetters(): DeadLetterTally[] {
    return this.flusher.deadLetters();
  }

  /** Calls `listener` after each commit that changes what queries see (see ViewChange); returns the unsubscribe function. */
  onChange(listener: (change: ViewChange) => void): () => void {
    return this.changes.subscribe(listener);
  }

  /**
   * True once every live view and output has caught up with the head of the log at least once since
   * start (recovery done); at once for an app with none (topics only), once started.
   */
  get caughtUp(): boolean {
    const tasks = this.loop.tasks;
    // In a cluster a process may own no task at all (more processes than tasks).
    return (
      (tasks.length > 0 || this.cluster !== null || this.started) &&
      tasks.every((t) => t.caughtUp || (t.group !== null && t.group.build !== null))
    );
  }

  /** Worker threads the tasks run on (started or starting); 0 when every task runs on the calling thread. */
  get threads(): number {
    return this.loop.threads;
  }

  /** Creates missing topics, picks each view's versions, loads checkpoints and starts every task. */
  async start(): Promise<void> {
    if (this.cluster !== null) return this.startClustered(this.cluster);
    await this.addTasks(true);
    await this.keepTables();
    this.failure.catch(() => {}); // observed through `failure`; never an unhandled rejection
    // Builds started later (kappa replay) spread over the same threads.
    const threads = this.workers === 0 ? 0 : Math.min(this.workers, Math.max(1, this.loop.tasks.length));
    if (threads > 0) this.startThreads(threads);
    else this.prepareCode();
    for (const t of this.loop.tasks) this.loop.start(t);
    this.requests.start();
    this.started = true;
  }

  /**
   * In a cluster: joins (the first process to take the coordinator lease plans the versions as a
   * single process does; the others follow the store), then ticks; each tick takes and hands over
   * tasks (cluster.ts). Tasks start as their leases are taken.
   */
  private async startClustered(cluster: Cluster): Promise<void> {
    const coordinator = await cluster.join();
    await this.addTasks(coordinator);
    await this.keepTables();
    this.failure.catch(() => {});
    this.unwatch = this.opts.store.watchChanges?.((c) => this.remoteChange(c)) ?? null;
    if (this.workers > 0) this.startThreads(this.workers);
    cluster.start();
  }

  /**
   * The tasks of every view's running versions and of every output, checked against the config's
   * topics. `coordinator`: plan the versions (and decide builds, drops) — false for a process of a
   * cluster that follows the coordinator. In a cluster, tasks are opened later, lease by lease.
   */
  private async addTasks(coordinator: boolean): Promise<void> {
    const { log, store, app } = this.opts;
    const topicNames = new Set(app.topics.map((t) => t.name));
    for (const t of app.topics) await this.ensureTopic(t.name, t.partitions, t.retentionMs);
    this.topicSchemas = await registerTopicSchemas(log, app.topics);
    const versions = await store.versions();
    const builds = await this.opts.control.builds();
    for (const view of app.views) {
      const source = view.aggregation.stream.source;
      if (!topicNames.has(source.name)) {
        throw new KappaError(
          'KAPPA_CONFIG_INVALID',
          `View "${view.name}" reads topic "${source.name}", which the config's topics list does not include.`,
          { view: view.name, topic: source.name },
        );
      }
      const info = await log.topic(source.name);
      await this.ensureTopic(`${source.name}.dlq`, info.partitions, -1);
      await this.ensureTopic(view.lateTopic, info.partitions, -1);
      const mine = versions.filter((v) => v.name === view.name);
      const building = builds.filter((b) => b.name === view.name);
      if (coordinator) await this.versions.planView(view, mine, building);
      else await followView(this.versions, view, mine, building);
    }
    const outputTasks = this.outputTasksOptions();
    for (const output of app.outputs ?? []) {
      for (const t of [output.stream.source.name, output.target.name]) {
        if (!topicNames.has(t))
          throw new KappaError(
            'KAPPA_CONFIG_INVALID',
            `Output "${output.name}" uses topic "${t}", which the config's topics list does not include.`,
            { output: output.name, topic: t },
          );
      }
      if (this.cluster === null) await addOutputTasks(outputTasks, output);
    }
  }

  /** Loads the joined tables' copies from the store (tasks start from them) and keeps the copies current. */
  private async keepTables(): Promise<void> {
    const { log, store, logger, app } = this.opts;
    const tables = keptTables(app);
    if (tables.length === 0 || store.tables === undefined) return;
    const caughtUp = (): boolean => this.caughtUp;
    this.keeper = await TableKeeper.start(
      { log, store: store.tables, logger, signal: this.abort.signal, caughtUp },
      tables,
    );
  }

  private startThreads(workers: number): void {
    const { logger } = this.opts;
    this.loop.startThreads({
      configPath: this.opts.configPath!,
      workers,
      log: this.opts.log.descriptor,
      readBytesMax: this.readBytesMax,
      pendingMax: this.catchUpRowsMax,
      growingPendingMax: this.catchUpGrowingRowsMax,
      // A window of gathering.ts is GATHER_WINDOW (4) × dirtyRowsMax events: judged four times a window.
      reportEvents: this.dirtyRowsMax,
      heapMb: this.opts.workerHeapMb,
      tables: this.keeper?.seeds ?? [],
      onFailure: (err) => this.fail(err),
      onWarning: (message) => logger.warn(message),
      configLoadedAtMs: this.opts.configLoadedAtMs ?? this.createdAtMs,
      onBundleFailed: (err) =>
        logger.warn(
          `the worker threads load the config through tsx, which makes them slower to start and larger, because ${err.message}`,
        ),
      // After the threads' bundle, which they wait for; the config's takes 0.1-0.2 s of esbuild.
      onBundled: () => this.prepareCode(),
    });
  }

  /**
   * Bundles the config's code that a new version will keep ahead of the version's first flush,
   * which waits for it: in a short rebuild that flush is the last one, whose end waited 0.15-0.2 s.
   */
  private prepareCode(): void {
    const { control } = this.opts;
    const keeps = async (g: ViewGroup): Promise<boolean> =>
      g.fromConfig && !g.codeSaved && (await control.code(g.plan.view.name, g.version)) === null;
    void (async () => {
      for (const g of this.versions.groups) if (await keeps(g)) return void this.versions.configCode();
    })().catch(() => {}); // the first flush reads the store again, and reports what fails there
  }

  /** Builds a new version of `viewName` by replaying the log from `from` ('earliest' or '@<ISO time>'), beside the live one. */
  replay(viewName: string, from = 'earliest', reason: BuildReason = 'replay'): Promise<RequestResult> {
    return this.versions.replay(viewName, from, reason);
  }

  /**
   * Makes a retired version of `viewName` live again: `toVersion`, or by default the previous one (the
   * retired one live most recently). It first catches up from its own checkpoints, with its own logic,
   * then the swap is the same as a build's.
   */
  rollback(viewName: string, toVersion?: number): Promise<RequestResult> {
    return this.versions.rollback(viewName, toVersion);
  }

  /** Stops the build (or rollback) in progress for `viewName`; a new version built so far is dropped. */
  cancel(viewName: string): Promise<RequestResult> {
    return this.versions.cancel(viewName);
  }

  /** The builds in progress, with their progress as of the last update (about once a second). */
  builds(): BuildInfo[] {
    return this.versions.builds();
  }

  /**
   * A change another process of the cluster committed, told to this process's change streams as
   * its own are: rows of a live version (a building one's are nobody's business yet), a swap, or
   * a reset (too many rows to name, or changes that may have been missed), which makes the streams
   * tell their clients to read the view again.
   */
  private remoteChange(c: StoreChange): void {
    // View names are case-insensitive in the store, as in SQL.
    const view = this.opts.app.views.find((v) => v.name.toLowerCase() === c.view.toLowerCase())?.name;
    if (view === undefined) return;
    const group = this.versions.groups.find((g) => g.plan.name === view && g.version === c.version);
    if (c.kind === 'rows') {
      if (group?.live === true)
        this.changes.emit({ kind: 'rows', view, version: c.version, keyNames: group.keyNames ?? [], keys: c.keys });
      return;
    }
    if (c.kind === 'reset' && group?.live !== true) return;
    this.changes.emit({ kind: 'live', view, version: c.version });
  }

  /** The first failure stops every task and the worker threads; later ones only repeat it. */
  private fail(err: Error): void {
    if (this.hasFailed) return;
    this.hasFailed = true;
    void this.versions.buildsFailed(err.message).catch(() => {});
    void this.cluster?.stop(false).catch(() => {}); // its tasks go to the other processes at once
    this.abort.abort();
    this.failed(err);
    void this.loop.closeThreads().catch(() => {});
  }

  private async ensureTopic(name: string, partitions: number, retentionMs: number): Promise<void> {
    try {
      const info = await this.opts.log.topic(name);
      if (info.partitions !== partitions) {
        this.opts.logger.warn(
          `topic ${name} has ${info.partitions} partitions in the log but ${partitions} in the config; the log's count is used (partitions cannot change without re-keying history)`,
        );
      }
    } catch (err) {
      if (!isKappaError(err, 'KAPPA_UNKNOWN_TOPIC')) throw err;
      await this.opts.log.createTopic(name, { partitions, retentionMs });
      this.opts.logger.info(`created topic ${name} (${partitions} partitions)`);
    }
  }

  /**
   * In a cluster: this process, whether it is the coordinator, every member the store knows (live
   * or not, with its last heartbeat) and every task's lease (owner and epoch). Null for a single process.
   */
  async clusterStatus(): Promise<ClusterStatus | null> {
    const cluster = this.cluster;
    if (cluster === null || this.opts.cluster === undefined) return null;
    const { leases } = this.opts.cluster;
    return {
      memberId: cluster.memberId,
      coordinator: cluster.coordinator,
      sessionTimeoutMs: cluster.sessionTimeoutMs,
      members: await leases.members(),
      leases: await leases.leases(),
    };
  }

  status(): TaskStatus[] {
    return this.loop.tasks.map((t) => {
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
    await this.requests.stop();
    await this.unwatch?.();
    await this.cluster?.stop(!this.hasFailed);
    this.abort.abort();
    await this.keeper?.stopped();
    await this.loop.settle();
    try {
      if (!this.hasFailed) await this.loop.flushAll();
    } finally {
      await this.loop.closeThreads();
    }
  }

  /** Stops reading and stops the worker threads without flushing: the views keep their last checkpoints. */
  async close(): Promise<void> {
    await this.requests.stop();
    await this.unwatch?.();
    await this.cluster?.stop(false);
    this.abort.abort();
    await this.keeper?.stopped();
    await this.loop.settle();
    await this.loop.closeThreads();
  }
}
