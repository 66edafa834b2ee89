/**
 * A log out of reach (KAPPA_LOG_UNAVAILABLE: a Kafka cluster down or cut off, after KafkaLog's own
 * retries) stops a task's reads, not the task: it waits a second and reads again from its offset,
 * for as long as the outage lasts, and says so once when it starts and once when it ends. Its lag
 * grows meanwhile; nothing it folded is lost (it commits only what it read). The flushes' appends
 * wait the same way (flush.ts, whileLocked); a worker's reads too (worker.ts).
 */
import { isKappaError } from '../errors.ts';
import type { Log, Logger, RecordBatch } from '../log/index.ts';

/** How long a task waits before it reads again from a log out of reach. */
export const LOG_RETRY_MS = 1000;

interface Named {
  plan: { name: string };
  topic: string;
  partition: number;
}

export class LogOutage {
  private sinceMs = 0;

  /** `task`: named in the messages (null where the logger names it already: a worker's warnings). */
  constructor(
    private readonly logger: Logger,
    private readonly task: Named | null,
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
    return this.task === null ? 'the task' : `${this.task.plan.name}/${this.task.topic}/${this.task.partition}`;
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
