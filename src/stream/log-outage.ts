/**
 * A log out of reach (KAPPA_LOG_UNAVAILABLE: a Kafka cluster down or cut off, after KafkaLog's own
 * retries) stops a task's reads, not the task: it waits a second and reads again from its offset,
 * for as long as the outage lasts, and says so once when it starts and once when it ends. Its lag
 * grows meanwhile; nothing it folded is lost (it commits only what it read). The flushes' appends
 * wait the same way (flush.ts, whileLocked); a worker's reads too (worker.ts), and its opening of
 * the log. What a fold reads besides its partition (a joined table, the schema registry) waits
 * inside the read on the engine's thread (`waitingLog`); on a worker thread the task reads its
 * batch again from the record its fold paused at.
 */
import { isKappaError } from '../errors.ts';
import type { Log, Logger, ReadOptions, RecordBatch } from '../log/index.ts';

/** How long a task waits before it reads again from a log out of reach. */
export const LOG_RETRY_MS = 1000;

interface Named {
  plan: { name: string };
  topic: string;
  partition: number;
}

export class LogOutage {
  private sinceMs = 0;

  /** `task`: named in the messages (null where the logger names it already: a worker's warnings; or what waits, in words). */
  constructor(
    private readonly logger: Logger,
    private readonly task: Named | string | null,
  ) {}

  /** For a log out of reach (and the task still running): says so once, waits, and resolves true; false for any other error. */
  async waited(err: unknown, signal: AbortSignal): Promise<boolean> {
    if (!isKappaError(err, 'KAPPA_LOG_UNAVAILABLE') || signal.aborted) return false;
    if (this.sinceMs === 0) {
      this.sinceMs = Date.now();
      this.logger.warn(`${this.name()} waits: the log cannot be reached (${err.message}); reading again every second`);
    }
    await pause(LOG_RETRY_MS, signal);
    return true;
  }

  /** A read went through: the outage, if there was one, is over. */
  over(): void {
    if (this.sinceMs === 0) return;
    const s = ((Date.now() - this.sinceMs) / 1000).toFixed(1);
    this.sinceMs = 0;
    this.logger.info(`${this.name()} reads again after ${s} s without the log`);
  }

  private name(): string {
    if (this.task === null) return 'the task';
    if (typeof this.task === 'string') return this.task;
    return `${this.task.plan.name}/${this.task.topic}/${this.task.partition}`;
  }
}

/** The partition's offsets, waiting out an outage as a read does. */
export async function offsetsWaiting(
  log: Log,
  task: Named,
  outage: LogOutage,
  signal: AbortSignal,
): Promise<{ start: number; end: number }> {
  for (;;) {
    try {
      return await log.offsets(task.topic, task.partition);
    } catch (err) {
      if (!(await outage.waited(err, signal))) throw err;
    }
  }
}

/** The one LogOutage of the folds' reads besides their partitions on the engine's thread (see `waitingLog`). */
export function foldReadsOutage(logger: Logger): LogOutage {
  return new LogOutage(logger, "a task's read of a joined table or of the schema registry");
}

/**
 * `log` as a fold on the engine's thread reads it besides its partition (its joined tables, the
 * schema registry: task-runner.ts gives it to them): a look-up or read that finds the log out of
 * reach waits and tries again, a read from the batch after the last one it gave, until the log
 * answers or `signal` (the task's: it aborts when the engine stops, the version is retired, or the
 * task is handed to another process) aborts; said once per outage for all the tasks sharing
 * `outage`. A fold paused at a record for a table or a schema thus goes on from that record when
 * the log is back, and nothing before it is folded twice. Everything else is the log's own.
 */
export function waitingLog(log: Log, outage: LogOutage, signal: AbortSignal): Log {
  const again = async <T>(call: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const got = await call();
        outage.over();
        return got;
      } catch (err) {
        if (!(await outage.waited(err, signal))) throw err;
      }
    }
  };
  const waiting: Partial<Log> = {
    topic: (name) => again(() => log.topic(name)),
    topics: () => again(() => log.topics()),
    offsets: (topic, partition) => again(() => log.offsets(topic, partition)),
    read: (topic, partition, from, opts = {}) => readWaiting(log, { topic, partition, from, opts }, outage, signal),
  };
  return new Proxy(log, {
    get(target, prop) {
      if (Object.hasOwn(waiting, prop)) return waiting[prop as keyof Log];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function* readWaiting(
  log: Log,
  q: { topic: string; partition: number; from: number; opts: ReadOptions },
  outage: LogOutage,
  signal: AbortSignal,
): AsyncGenerator<RecordBatch> {
  let from = q.from;
  let gave = false;
  for (;;) {
    try {
      for await (const batch of log.read(q.topic, q.partition, from, q.opts)) {
        from = batch.lastOffset + 1;
        gave = true;
        outage.over();
        yield batch;
      }
      outage.over();
      return;
    } catch (err) {
      if (!(await outage.waited(err, signal))) throw err;
      if (q.opts.once === true && gave) return; // one step's batches were given: the caller reads on from them
    }
  }
}

/** Settles a task's read under way (it ends once aborted), then closes its iterator. */
export async function closeReads(reads: {
  it: AsyncIterator<RecordBatch>;
  next: Promise<IteratorResult<RecordBatch>>;
}): Promise<void> {
  await reads.next.catch(() => {});
  await reads.it.return?.(undefined)?.catch(() => {});
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
