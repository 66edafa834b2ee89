/**
 * What a task's flush writes (the task loop, task-loop.ts, decides when). A view task's flush is:
 * dead letters and late events appended (and durable), then ONE store transaction with the row
 * deltas and the task's checkpoint. An output task's flush is: dead letters, then the records for
 * its derived topic, all durable, then its checkpoint with the producer sequences after them.
 * After any crash a task resumes from its checkpoint, so a view equals a fold of the log up to
 * that checkpoint: no event counted twice, none skipped. Everything a flush appends goes through
 * an idempotent producer whose sequence follows from the source offset (side outputs) or is kept
 * in the checkpoint (outputs), so a replay after a crash does not repeat it.
 *
 * Invariant (asserted, on in production): a task's checkpoint never moves backwards.
 *
 * A dead-letter topic that starts filling is said once per topic and process, with its first
 * reason (a typo in a config can send every record there; a line per record would drown the
 * terminal, silence would hide it); `deadLetters()` keeps the count per topic for whoever asks.
 */
import { createHash } from 'node:crypto';
import { assertNotBackwards } from '../assert.ts';
import { isKappaError } from '../errors.ts';
import {
  BatchField,
  type EncodedAppendOptions,
  type Log,
  type Logger,
  SEQUENCE_MODULUS,
  sealBatch,
} from '../log/index.ts';
import {
  type Checkpoint,
  type ControlStore,
  type Deltas,
  type ViewStore,
  type ViewVersionInfo,
  deltaCount,
  deltaKeys,
  deltaRow,
} from '../view/index.ts';
import { pause } from './log-outage.ts';
import type { ChangeFeed } from './change-feed.ts';
import type { ViewPlan } from './plan.ts';
import type { DeadLetter, LateEvent } from './task-plan.ts';
import type { OutputProducer, Task } from './task-loop.ts';
import type { Drained } from './task-runner.ts';
import type { ViewGroup } from './versions.ts';

/** Records per append when an output task writes its derived topic. */

/** How long a task waits before it tries a store write again while another process holds the lock. */
const LOCKED_RETRY_MS = 1000;
/** The output batches a flush appends were built and sealed on this process's threads. */
const BUILT: EncodedAppendOptions = { built: true };

export interface FlusherOptions {
  log: Log;
  store: ViewStore;
  control: ControlStore;
  logger: Logger;
  changes: ChangeFeed;
  /** Keeps the config's code with a version built from it (called at the version's first flush). */
  saveCode: (group: ViewGroup) => Promise<void>;
}

/** The dead letters a dead-letter topic (`<topic>.dlq`) received from this process's tasks. */
export interface DeadLetterTally {
  /** The dead-letter topic, `<source topic>.dlq`. */
  topic: string;
  /** Dead letters appended since the process started (a task that resumes after a crash may count one twice). */
  count: number;
  /** The view or output, and the reason, of the first one. */
  firstView: string;
  firstReason: string;
  firstAtMs: number;
}

export class Flusher {
  /** Told how long each view flush (one store transaction) took, and how many rows it wrote. */
  observer: ((view: string, seconds: number, rows: number) => void) | null = null;
  private readonly deadLetterTallies = new Map<string, DeadLetterTally>();

  constructor(private readonly opts: FlusherOptions) {}

  async flush(task: Task): Promise<void> {
    const { store } = this.opts;
    // On this thread the drain covers every batch handed over so far: every record before task.offset.
    // With a worker that reads for itself, the drain says which offset it covers.
    const drained = await task.runner.drain(task.id);
    const offset = drained.offset ?? task.offset;
    // A drain covers at least what the last checkpoint covered; less would fold events twice after a restart.
    assertNotBackwards(
      task.committedOffset,
      offset,
      `the checkpoint of task ${task.plan.name}/${task.topic}/${task.partition}`,
    );
    task.offset = offset;
    const group = task.group;
    if (group === null) return this.flushOutput(task, task.producer!, offset, drained);
    const name = group.plan.view.name;
    const deltas = drained.rows as Deltas;
    const count = deltaCount(deltas);
    let made: (() => Promise<ViewVersionInfo>) | null = null;
    if (group.ensured === null && count > 0) {
      group.keyNames = drained.keyNames;
      const def = group.plan.definition(group.version, deltaRow(deltas, 0), drained.keyNames ?? []);
      made = () => {
        const ensured = store.ensureVersion(def);
        ensured.catch(() => {}); // awaited below; this only keeps a failure from counting as unhandled meanwhile
        return (group.ensured = ensured);
      };
      made();
    }
    if (group.keyNames === null && drained.keyNames !== null) group.keyNames = drained.keyNames;
    // Dead letters and late events first, and durable, so a checkpoint never covers an event whose
    // side output was lost. A replay re-sends them with the same sequence (the source offset), and
    // the log drops what it already has.
    await this.appendSideOutputs(task, drained.deadLetters, drained.late);
    if (group.ensured) {
      const info = await this.whileLocked(task, async () => {
        try {
          return await group.ensured!;
        } catch (err) {
          made?.(); // the next attempt makes the table again (a store out of reach: see whileLocked)
          throw err;
        }
      });
      if (info.state === 'live') group.live = true;
      if (!group.codeSaved) await this.whileLocked(task, () => this.opts.saveCode(group));
      const checkpoint: Checkpoint = {
        topic: task.topic,
        partition: task.partition,
        offset,
        watermark: drained.watermarkMs,
        outputSequence: 0,
      };
      const started = performance.now();
      const { removed } = await this.whileLocked(task, () =>
        store.flush(name, group.version, deltas, [checkpoint], task.fence ?? undefined),
      );
      this.observer?.(name, (performance.now() - started) / 1000, count);
      task.committedOffset = offset;
      if (group.live && count > 0 && this.opts.changes.listening) {
        this.opts.changes.emit({
          kind: 'rows',
          view: name,
          version: group.version,
          keyNames: group.keyNames ?? [],
          // Sessions merged into a wider one are gone: their keys are told too (read back, they have no row).
          keys: removed.length === 0 ? deltaKeys(deltas) : [...deltaKeys(deltas), ...removed],
        });
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
    await this.appendSideOutputs(task, drained.deadLetters, drained.late);
    const target = producer.plan.output.target.name;
    const sequences = producer.sequences.slice();
    await Promise.all(
      drained.outputs.partitions.map(async ({ partition: q, batches }) => {
        let start = 0;
        for (const end of batches.ends) {
          const batch = Buffer.from(batches.bytes.buffer, batches.bytes.byteOffset + start, end - start);
          start = end;
          const count = batch.readInt32BE(BatchField.recordCount);
          sealBatch(batch, producer.id, 0, sequences[q]);
          // Sent again as it was when the log cannot be reached: the same producer and sequence, so
          // whatever of it the log already has is dropped.
          await this.whileLocked(task, () => log.appendEncoded(target, q, batch, BUILT));
          sequences[q] = (sequences[q] + count) % SEQUENCE_MODULUS;
        }
      }),
    );
    if (offset !== task.committedOffset) {
      // An output that rebuilds from the start saves its checkpoint too (for `kappa lag`), once past
      // where the last run's had reached; it never restarts from it.
      if (!producer.plan.output.fromStart || offset > producer.savedOffset)
        await this.whileLocked(task, () =>
          this.opts.control.saveOutputCheckpoint(
            task.plan.name,
            { topic: task.topic, partition: task.partition, offset, sequences, watermark: drained.watermarkMs },
            task.fence ?? undefined,
          ),
        );
      task.committedOffset = offset;
      producer.savedOffset = Math.max(producer.savedOffset, offset);
    }
    producer.sequences = sequences;
    task.lastFlushAtMs = Date.now();
    // Every record is appended and the checkpoint after them saved: nothing will send them again,
    // and their buffers go back to the thread that built them.
    drained.release?.();
  }

  /**
   * Runs a store write or log append of `task`, retrying for as long as another process holds the
   * store's write lock (a sqlite3 shell with an open transaction, a backup), the store cannot be
   * reached (a PostgreSQL server restarting, a network cut) or the log cannot (a Kafka cluster
   * down): the task waits, on timers, and its lag grows; it neither fails nor spins. The store and
   * the log already retried for a while before saying so. Reported once per wait. (In a cluster, a
   * task whose lease moved on meanwhile is stopped, and its write, once the store is back, is
   * refused by the fence.)
   */
  private async whileLocked<T>(task: Task, write: () => Promise<T>): Promise<T> {
    let waitingSinceMs = 0;
    for (;;) {
      try {
        const result = await write();
        if (waitingSinceMs > 0)
          this.opts.logger.info(
            `${task.plan.name}/${task.topic}/${task.partition} goes on after waiting ${((Date.now() - waitingSinceMs) / 1000).toFixed(1)} s`,
          );
        return result;
      } catch (err) {
        const why = isKappaError(err, 'KAPPA_DATA_DIR_LOCKED')
          ? "another process holds the view store's write lock"
          : isKappaError(err, 'KAPPA_STORE_UNAVAILABLE')
            ? 'the view store cannot be reached'
            : isKappaError(err, 'KAPPA_LOG_UNAVAILABLE')
              ? 'the log cannot be reached'
              : null;
        if (why === null || task.signal.aborted) throw err;
        if (waitingSinceMs === 0) {
          waitingSinceMs = Date.now();
          this.opts.logger.warn(
            `${task.plan.name}/${task.topic}/${task.partition} waits: ${why} (${(err as Error).message}); retrying every second`,
          );
        }
        // A task stopped meanwhile (kappa start shutting down, its lease gone) stops waiting at once.
        await pause(LOCKED_RETRY_MS, task.signal);
        if (task.signal.aborted) throw err;
      }
    }
  }

  /** Per dead-letter topic: how many dead letters this process appended, and the first one's reason. */
  deadLetters(): DeadLetterTally[] {
    return [...this.deadLetterTallies.values()].map((t) => ({ ...t }));
  }

  /** Counts the dead letters of `task` just appended; the first of a topic is logged, with how to read them. */
  private tallyDeadLetters(task: Task, dead: DeadLetter[]): void {
    if (dead.length === 0) return;
    const topic = `${task.topic}.dlq`;
    const tally = this.deadLetterTallies.get(topic);
    if (tally !== undefined) {
      tally.count += dead.length;
      return;
    }
    const first = dead[0];
    const kind = task.group === null ? 'output' : 'view';
    this.deadLetterTallies.set(topic, {
      topic,
      count: dead.length,
      firstView: task.plan.name,
      firstReason: first.reason,
      firstAtMs: Date.now(),
    });
    this.opts.logger.warn(
      `${kind} "${task.plan.name}" could not process a record of topic "${task.topic}" (partition ${first.partition}, ` +
        `offset ${first.record.offset}) and sent it to the dead-letter topic ${topic}: ${first.reason}. ` +
        `Further dead letters of ${topic} are not logged; they are counted in /metrics (kappa_dead_letters_total) ` +
        `and kept in ${topic}: read them with \`kappa consume ${topic} --with-meta\` (the reason is in the kappa.error header).`,
    );
  }

  /** An append of a flush, waiting (see whileLocked) while the log cannot be reached. */
  private appendWaiting(task: Task, ...args: Parameters<Log['appendBatch']>): Promise<unknown> {
    return this.whileLocked(task, () => this.opts.log.appendBatch(...args));
  }

  private async appendSideOutputs(task: Task, dead: DeadLetter[], late: LateEvent[]): Promise<void> {
    const name = task.plan.name;
    const version = task.group?.version ?? 0;
    const dlqId = producerId(name, version, task.topic, task.partition, 'dlq');
    const lateId = producerId(name, version, task.topic, task.partition, 'late');
    for (const d of dead) {
      const headers = provenance(name, task.topic, d.partition, d.record.offset, { 'kappa.error': d.reason });
      await this.appendWaiting(
        task,
        `${task.topic}.dlq`,
        d.partition,
        [{ key: d.record.key, value: d.record.value, headers, timestamp: d.record.timestamp }],
        {
          producerId: dlqId,
          producerEpoch: 0,
          baseSequence: sideSequence(d.record.offset),
          sequenceGaps: 'allow',
        },
      );
    }
    this.tallyDeadLetters(task, dead);
    // An output's late events come from a stream–stream join (see tables.ts).
    const lateTopic = (task.plan as ViewPlan).view?.lateTopic ?? `${task.topic}.late`;
    for (const l of late) {
      const headers = provenance(name, task.topic, l.partition, l.record.offset, {
        'kappa.event.time': String(l.eventTimeMs),
        'kappa.watermark': String(l.watermarkMs),
      });
      await this.appendWaiting(
        task,
        lateTopic,
        l.partition,
        [{ key: l.record.key, value: l.record.value, headers, timestamp: l.record.timestamp }],
        {
          producerId: lateId,
          producerEpoch: 0,
          baseSequence: sideSequence(l.record.offset),
          sequenceGaps: 'allow',
        },
      );
    }
  }
}

export function producerId(...parts: (string | number)[]): number {
  // A stable 52-bit id from the task's identity, so a restarted task is the same producer.
  return Number.parseInt(createHash('sha256').update(parts.join('/')).digest('hex').slice(0, 13), 16);
}

function provenance(
  view: string,
  topic: string,
  partition: number,
  offset: number,
  extra: Record<string, string>,
): { key: string; value: Buffer }[] {
  const h: Record<string, string> = {
    'kappa.view': view,
    'kappa.source.topic': topic,
    'kappa.source.partition': String(partition),
    'kappa.source.offset': String(offset),
    ...extra,
  };
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
