/**
 * The processing engine: one task per (view version, source partition). A task reads whole
 * batches from the log, folds them into dirty rows with the view's compiled plan, and flushes on an
 * interval or a size bound. A flush is: dead letters and late events appended (and durable), then
 * ONE store transaction with the row deltas and the task's checkpoint. After any crash a task
 * resumes from its checkpoint, so the view equals a fold of the log up to that checkpoint: no event
 * counted twice, none skipped. Dead letters and late events are appended with an idempotent
 * producer whose sequence is the source offset, so a replay after a crash does not repeat them.
 */
import { createHash } from 'node:crypto';
import { KappaError, isKappaError } from '../errors.ts';
import type { FileLog, Logger } from '../log/index.ts';
import type { Checkpoint, RowDelta, ViewStore, ViewVersionInfo } from '../view/types.ts';
import type { AppDef } from './dsl.ts';
import { type DeadLetter, type LateEvent, NO_WATERMARK, type TaskState, type ViewPlan, compileView } from './plan.ts';

export interface EngineOptions {
  log: FileLog;
  store: ViewStore;
  app: AppDef;
  logger: Logger;
  /** Flush a task's dirty rows at least this often. */
  flushIntervalMs?: number;
  /** Flush early once a task holds this many dirty rows (bounds memory whatever the key count). */
  dirtyRowsMax?: number;
  /** Largest read from the log per step. */
  readBytesMax?: number;
}

export interface TaskStatus {
  view: string;
  version: number;
  topic: string;
  partition: number;
  /** Next offset the task will process. */
  offset: number;
  /** Offset covered by the last committed checkpoint. */
  committedOffset: number;
  watermarkMs: number;
  lastFlushAtMs: number;
  eventsProcessed: number;
}

interface Task {
  plan: ViewPlan;
  group: ViewGroup;
  topic: string;
  partition: number;
  offset: number;
  committedOffset: number;
  state: TaskState;
  lastFlushAtMs: number;
  eventsProcessed: number;
  caughtUp: boolean;
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

const TIMEOUT = Symbol('timeout');

function producerId(...parts: (string | number)[]): number {
  // A stable 52-bit id from the task's identity, so a restarted task is the same producer.
  return Number.parseInt(createHash('sha256').update(parts.join('/')).digest('hex').slice(0, 13), 16);
}

export class Engine {
  private readonly groups: ViewGroup[] = [];
  private readonly abort = new AbortController();
  private running: Promise<void>[] = [];
  private failed: (err: Error) => void = () => {};
  /** Rejects when a task fails (the store or the log reported an error); `kappa start` exits on it. */
  readonly failure: Promise<never> = new Promise<never>((_, reject) => (this.failed = reject));
  private readonly flushIntervalMs: number;
  private readonly dirtyRowsMax: number;

  constructor(private readonly opts: EngineOptions) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 500;
    this.dirtyRowsMax = opts.dirtyRowsMax ?? 50_000;
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
        const state = plan.newTaskState(p, cp ? cp.watermark : NO_WATERMARK);
        state.keyNames = group.keyNames;
        group.tasks.push({ plan, group, topic: source.name, partition: p, offset, committedOffset: offset, state, lastFlushAtMs: Date.now(), eventsProcessed: 0, caughtUp: false });
      }
      this.groups.push(group);
    }
    this.failure.catch(() => {}); // observed through `failure`; never an unhandled rejection
    this.running = this.groups.flatMap((g) =>
      g.tasks.map((t) =>
        this.runTask(t).catch((err: Error) => {
          this.abort.abort();
          this.failed(new KappaError(isKappaError(err) ? err.code : 'KAPPA_IO_ERROR', `task ${g.plan.view.name}/${t.topic}/${t.partition} stopped: ${err.message}`, undefined, err));
        }),
      ),
    );
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
    const it = log.read(task.topic, task.partition, task.offset, { follow: true, signal, maxBytes: this.opts.readBytesMax })[Symbol.asyncIterator]();
    let next = it.next();
    try {
      while (!signal.aborted) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<typeof TIMEOUT>((resolve) => (timer = setTimeout(() => resolve(TIMEOUT), this.flushIntervalMs)));
        const got = await Promise.race([next, timeout]);
        clearTimeout(timer);
        if (got === TIMEOUT) {
          // Idle: nothing arrived for a whole interval. Commit what is pending, note that we are at the head.
          if (task.state.dirty.size > 0 || task.offset !== task.committedOffset) await this.flush(task);
          task.caughtUp = true;
          await this.maybeGoLive(task.group);
          continue;
        }
        if (got.done) break;
        const batch = got.value;
        const records = batch.records(task.offset);
        task.plan.process(records, task.state);
        task.eventsProcessed += records.length;
        task.offset = batch.lastOffset + 1;
        next = it.next();
        if (task.state.dirty.size >= this.dirtyRowsMax || Date.now() - task.lastFlushAtMs >= this.flushIntervalMs) await this.flush(task);
      }
    } finally {
      await it.return?.(undefined);
    }
  }

  private async flush(task: Task): Promise<void> {
    const { store } = this.opts;
    const group = task.group;
    const name = group.plan.view.name;
    const state = task.state;
    const deltas = [...state.dirty.values()] as RowDelta[];
    if (group.ensured === null && deltas.length > 0) {
      group.keyNames = state.keyNames;
      group.ensured = store.ensureVersion(group.plan.definition(group.version, deltas[0], state.keyNames ?? []));
      group.ensured.catch(() => {}); // awaited below; this only keeps a failure from counting as unhandled meanwhile
    }
    if (group.keyNames === null && state.keyNames !== null) group.keyNames = state.keyNames;
    // Dead letters and late events first, and durable, so a checkpoint never covers an event whose
    // side output was lost. A replay re-sends them with the same sequence (the source offset), and
    // the log drops what it already has.
    await this.appendSideOutputs(task, state.deadLetters, state.late);
    if (group.ensured) {
      const info = await group.ensured;
      if (info.state === 'live') group.live = true;
      const checkpoint: Checkpoint = { topic: task.topic, partition: task.partition, offset: task.offset, watermark: state.watermarkMs, outputSequence: 0 };
      await store.flush(name, group.version, deltas, [checkpoint]);
      task.committedOffset = task.offset;
    }
    state.dirty.clear();
    state.deadLetters = [];
    state.late = [];
    task.lastFlushAtMs = Date.now();
  }

  private async appendSideOutputs(task: Task, dead: DeadLetter[], late: LateEvent[]): Promise<void> {
    const { log } = this.opts;
    const view = task.plan.view;
    const version = task.group.version;
    const dlqId = producerId(view.name, version, task.topic, task.partition, 'dlq');
    const lateId = producerId(view.name, version, task.topic, task.partition, 'late');
    for (const d of dead) {
      const headers = provenance(view.name, task.topic, d.partition, d.record.offset, { 'kappa.error': d.reason });
      await log.appendBatch(`${task.topic}.dlq`, d.partition, [{ key: d.record.key, value: d.record.value, headers, timestamp: d.record.timestamp }], {
        producerId: dlqId,
        producerEpoch: 0,
        baseSequence: sideSequence(d.record.offset),
        sequenceGaps: 'allow',
      });
    }
    for (const l of late) {
      const headers = provenance(view.name, task.topic, l.partition, l.record.offset, { 'kappa.event.time': String(l.eventTimeMs), 'kappa.watermark': String(l.watermarkMs) });
      await log.appendBatch(view.lateTopic, l.partition, [{ key: l.record.key, value: l.record.value, headers, timestamp: l.record.timestamp }], {
        producerId: lateId,
        producerEpoch: 0,
        baseSequence: sideSequence(l.record.offset),
        sequenceGaps: 'allow',
      });
    }
  }

  /** A building version goes live once every one of its tasks has been idle at the head of its partition. */
  private async maybeGoLive(group: ViewGroup): Promise<void> {
    if (group.live || group.ensured === null || !group.tasks.every((t) => t.caughtUp)) return;
    await this.opts.store.makeLive(group.plan.view.name, group.version);
    group.live = true;
    this.opts.logger.info(`view ${group.plan.view.name}: version ${group.version} caught up with the log and is now live`);
  }

  status(): TaskStatus[] {
    return this.groups.flatMap((g) =>
      g.tasks.map((t) => ({
        view: g.plan.view.name,
        version: g.version,
        topic: t.topic,
        partition: t.partition,
        offset: t.offset,
        committedOffset: t.committedOffset,
        watermarkMs: t.state.watermarkMs,
        lastFlushAtMs: t.lastFlushAtMs,
        eventsProcessed: t.eventsProcessed,
      })),
    );
  }

  /** Stops reading, flushes and checkpoints every task. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.running);
    for (const g of this.groups) for (const t of g.tasks) await this.flush(t);
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
