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
import { KappaError, isKappaError } from '../errors.ts';
import { type EncodableRecord, type FileLog, type Logger, SEQUENCE_MODULUS } from '../log/index.ts';
import type { Checkpoint, RowDelta, ViewStore, ViewVersionInfo } from '../view/types.ts';
import type { AppDef, OutputDef } from './dsl.ts';
import { type OutputPlan, compileOutput } from './output-plan.ts';
import { type DeadLetter, type LateEvent, NO_WATERMARK, type TaskPlan, type ViewPlan, compileView } from './plan.ts';
import { type Drained, InThreadRunner, type TaskRunner } from './task-runner.ts';
import { WorkerPool } from './worker-pool.ts';

export interface EngineOptions {
  log: FileLog;
  store: ViewStore;
  app: AppDef;
  logger: Logger;
  /** Flush a task's dirty rows at least this often. */
  flushIntervalMs?: number;
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
}

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
}

/** The tasks of one view version. */
interface ViewGroup {
  plan: ViewPlan;
  version: number;
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

/** Records per append when an output task writes its derived topic. */
const OUTPUT_BATCH_RECORDS = 1000;

const TIMEOUT = Symbol('timeout');

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
  private running: Promise<void>[] = [];
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
  private readonly dirtyRowsMax: number;
  private readonly workers: number;
  private readonly readBytesMax: number;

  /** When the engine was made, which is right after its app was loaded (see WorkerPool's configLoadedAtMs). */
  private readonly createdAtMs = Date.now();

  constructor(private readonly opts: EngineOptions) {
    // Every task's read waits on this one signal: one listener per task, however many tasks.
    setMaxListeners(0, this.abort.signal);
    this.flushIntervalMs = opts.flushIntervalMs ?? 500;
    this.dirtyRowsMax = opts.dirtyRowsMax ?? 10_000;
    this.workers = opts.workers ?? 0;
    this.readBytesMax = opts.readBytesMax ?? 256 * 1024;
    if (!Number.isInteger(this.workers) || this.workers < 0) throw new KappaError('KAPPA_INVALID_ARGUMENT', `workers must be a whole number (0 or more), not ${this.workers}.`);
    if (this.workers > 0 && !opts.configPath) throw new KappaError('KAPPA_INVALID_ARGUMENT', 'Worker threads load the config themselves: pass configPath (the file the app was loaded from), or workers: 0.');
  }

  /** Worker threads the tasks run on (started or starting); 0 when every task runs on the calling thread. */
  get threads(): number {
    return this.threadCount;
  }

  /** Creates missing topics, picks each view's version, loads checkpoints and starts every task. */
  async start(): Promise<void> {
    const { log, store, app, logger } = this.opts;
    const topicNames = new Set(app.topics.map((t) => t.name));
    for (const t of app.topics) await this.ensureTopic(t.name, t.partitions, t.retentionMs);
    const versions = await store.versions();
    for (const view of app.views) {
      const source = view.aggregation.stream.source;
      if (!topicNames.has(source.name)) {
        throw new KappaError('KAPPA_CONFIG_INVALID', `View "${view.name}" reads topic "${source.name}", which the config's topics list does not include.`, { view: view.name, topic: source.name });
      }
      const plan = compileView(view);
      const info = await log.topic(source.name);
      await this.ensureTopic(`${source.name}.dlq`, info.partitions, -1);
      await this.ensureTopic(view.lateTopic, info.partitions, -1);
      const mine = versions.filter((v) => v.name === view.name);
      const live = mine.find((v) => v.state === 'live');
      const same = mine.find((v) => v.fingerprint === plan.fingerprint && v.state !== 'retired');
      let version: number;
      if (same) version = same.version;
      else {
        version = mine.reduce((m, v) => Math.max(m, v.version), 0) + 1;
        if (live) logger.info(`view ${view.name}: its logic changed (fingerprint ${live.fingerprint} → ${plan.fingerprint}); building version ${version} from the start of the log while version ${live.version} keeps serving`);
      }
      const group: ViewGroup = { plan, version, ensured: same ? Promise.resolve(same) : null, keyNames: null, live: same?.state === 'live', tasks: [] };
      if (same) {
        const stored = await store.definition(view.name, version);
        if (stored) {
          group.keyNames = stored.keyColumns.map((c) => c.name).filter((n) => !(plan.windowed && (n === 'window_start' || n === 'window_end')));
          // Idempotent; re-registers what a store cannot keep across restarts (custom merge functions).
          group.ensured = Promise.resolve(await store.ensureVersion(plan.definition(version, stored.keyColumns, group.keyNames)));
        }
      }
      const checkpoints = same ? await store.checkpoints(view.name, version) : [];
      for (let p = 0; p < info.partitions; p++) {
        const cp = checkpoints.find((c) => c.topic === source.name && c.partition === p);
        const { start } = await log.offsets(source.name, p);
        const offset = cp ? cp.offset : start;
        const task: Task = { id: this.tasks.length, plan, group, producer: null, topic: source.name, partition: p, offset, committedOffset: offset, lastFlushAtMs: Date.now(), caughtUp: false, runner: this.local };
        group.tasks.push(task);
        this.tasks.push(task);
        this.local.open({ id: task.id, plan, partition: p, watermarkMs: cp ? cp.watermark : NO_WATERMARK, keyNames: group.keyNames });
      }
      this.groups.push(group);
    }
    for (const output of app.outputs ?? []) {
      for (const t of [output.stream.source.name, output.target.name]) {
        if (!topicNames.has(t)) throw new KappaError('KAPPA_CONFIG_INVALID', `Output "${output.name}" uses topic "${t}", which the config's topics list does not include.`, { output: output.name, topic: t });
      }
      await this.addOutput(output);
    }
    this.failure.catch(() => {}); // observed through `failure`; never an unhandled rejection
    this.threadCount = Math.min(this.workers, this.tasks.length);
    if (this.threadCount > 0) {
      const pool = WorkerPool.start({
        configPath: this.opts.configPath!,
        workers: this.threadCount,
        dataDir: log.dir,
        readBytesMax: this.readBytesMax,
        pendingMax: this.dirtyRowsMax,
        heapMb: this.opts.workerHeapMb,
        onFailure: (err) => this.fail(err),
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
    this.running = this.tasks.map((t) => this.runTask(t));
  }

  /** The tasks of an output pipeline (`from(a)....to(b)`): one per partition of `a`, each from its checkpoint. */
  private async addOutput(output: OutputDef): Promise<void> {
    const { log, store } = this.opts;
    const source = output.stream.source;
    const info = await log.topic(source.name);
    const target = await log.topic(output.target.name);
    await this.ensureTopic(`${source.name}.dlq`, info.partitions, -1);
    const plan = compileOutput(output, target.partitions);
    const checkpoints = await store.outputCheckpoints(output.name);
    if (checkpoints.length === 0) await this.warnIfRenamed(output);
    for (let p = 0; p < info.partitions; p++) {
      const cp = checkpoints.find((c) => c.topic === source.name && c.partition === p);
      const offset = cp ? cp.offset : (await log.offsets(source.name, p)).start;
      const sequences = Array.from({ length: target.partitions }, (_, q) => cp?.sequences[q] ?? 0);
      const producer: OutputProducer = { plan, id: producerId('output', output.name, source.name, p), sequences };
      const task: Task = { id: this.tasks.length, plan, group: null, producer, topic: source.name, partition: p, offset, committedOffset: offset, lastFlushAtMs: Date.now(), caughtUp: false, runner: this.local };
      this.tasks.push(task);
      this.local.open({ id: task.id, plan, partition: p, watermarkMs: NO_WATERMARK, keyNames: null });
    }
  }

  /**
   * An output with no checkpoint starts from the beginning of its source. If an output that is no
   * longer in the config read the same topic, this may be that one renamed, and its records would
   * be written to the target again: say so, and how to keep its checkpoint.
   */
  private async warnIfRenamed(output: OutputDef): Promise<void> {
    const { store, app, logger } = this.opts;
    const current = new Set((app.outputs ?? []).map((o) => o.name));
    for (const name of await store.outputs()) {
      if (current.has(name)) continue;
      const cps = (await store.outputCheckpoints(name)).filter((c) => c.topic === output.stream.source.name);
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
    const signal = this.abort.signal;
    if (this.threadCount > 0) {
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
    const signal = this.abort.signal;
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
      const checkpoint: Checkpoint = { topic: task.topic, partition: task.partition, offset, watermark: drained.watermarkMs, outputSequence: 0 };
      await store.flush(name, group.version, deltas, [checkpoint]);
      task.committedOffset = offset;
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
    const { log, store } = this.opts;
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
      await store.saveOutputCheckpoint(task.plan.name, { topic: task.topic, partition: task.partition, offset, sequences });
      task.committedOffset = offset;
    }
    producer.sequences = sequences;
    task.lastFlushAtMs = Date.now();
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

  /** A building version goes live once every one of its tasks has reached the head of its partition (or been idle there). */
  private async maybeGoLive(group: ViewGroup | null): Promise<void> {
    if (group === null || group.live || group.ensured === null || !group.tasks.every((t) => t.caughtUp)) return;
    const { store, logger } = this.opts;
    const view = group.plan.view;
    await store.makeLive(view.name, group.version);
    group.live = true;
    logger.info(`view ${view.name}: version ${group.version} caught up with the log and is now live`);
    // Keep the newest `keepVersions` retired versions for rollback; drop the older ones.
    const retired = (await store.versions()).filter((v) => v.name === view.name && v.state === 'retired').sort((a, b) => b.version - a.version);
    for (const old of retired.slice(view.keepVersions)) {
      await store.dropVersion(view.name, old.version);
      logger.info(`view ${view.name}: dropped retired version ${old.version} (keepVersions ${view.keepVersions})`);
    }
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
      };
    });
  }

  /**
   * Stops reading, flushes and checkpoints every task, and stops the worker threads. After a
   * failure nothing is flushed: the views keep their last checkpoints and a restart resumes there.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.running);
    await this.poolStarting;
    try {
      if (!this.hasFailed) for (const t of this.tasks) await this.flush(t);
    } finally {
      await this.pool?.close();
    }
  }

  /** Stops reading and stops the worker threads without flushing: the views keep their last checkpoints. */
  async close(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.running);
    await this.poolStarting;
    await this.pool?.close();
  }
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
