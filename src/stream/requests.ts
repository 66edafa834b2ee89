/**
 * Cross-process requests and the engine's periodic work. Other processes (`kappa replay`, the
 * server of another process) cannot call the engine: they leave a request in the control store
 * (replay, rollback, cancel), and every tick this takes them, runs each on the versions
 * (versions.ts) and answers it with what happened (done, with the message and version, or failed,
 * with the error's message). The same tick saves build progress (every `progressIntervalMs`) and
 * starts scheduled rebuilds.
 *
 * A tick runs at a time: one that would overlap a running one is skipped. A store locked by
 * another process only delays the tick's work to a later tick; any other error fails the engine.
 */
import { KappaError, isKappaError } from '../errors.ts';
import type { ControlStore, ViewRequest } from '../view/index.ts';
import type { RequestResult, Versions } from './versions.ts';

/** How often the engine takes requests from other processes and checks schedules. */
const TICK_MS = 200;

export interface RequestsOptions {
  control: ControlStore;
  versions: Versions;
  /** How often build progress is saved; under TICK_MS the tick runs that often too. */
  progressIntervalMs: number;
  /** Aborts when the engine stops or fails. */
  signal: AbortSignal;
  fail: (err: Error) => void;
}

export class Requests {
  private ticker: NodeJS.Timeout | null = null;
  private ticking = false;
  private tickDone: Promise<void> = Promise.resolve();
  private lastProgressAtMs = 0;

  constructor(private readonly opts: RequestsOptions) {}

  start(): void {
    this.ticker = setInterval(
      () => {
        if (!this.ticking) this.tickDone = this.tick();
      },
      Math.min(TICK_MS, this.opts.progressIntervalMs),
    );
  }

  /** Stops ticking, once the tick under way (if any) is over. */
  async stop(): Promise<void> {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    await this.tickDone;
  }

  /**
   * Every TICK_MS: requests from other processes, build progress, scheduled rebuilds. In a cluster
   * the coordinator calls it from its own tick instead (cluster.ts), so that it never overlaps the
   * reconciling of versions with the store.
   */
  async tick(): Promise<void> {
    const { control, versions, signal } = this.opts;
    if (this.ticking || signal.aborted) return;
    this.ticking = true;
    try {
      for (const r of await control.takeRequests()) await this.answer(r);
      const now = Date.now();
      if (now - this.lastProgressAtMs >= this.opts.progressIntervalMs) {
        this.lastProgressAtMs = now;
        await versions.saveBuildProgress(now);
      }
      await versions.rebuildWhenDue(now);
    } catch (err) {
      // A store locked by another process, or out of reach, delays requests and progress to a later tick.
      if (isKappaError(err, 'KAPPA_DATA_DIR_LOCKED') || isKappaError(err, 'KAPPA_STORE_UNAVAILABLE')) return;
      if (!signal.aborted) this.opts.fail(err as Error);
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Runs one request and answers it: a KappaError (an unknown view, a build in the way) is the
   * answer; anything else fails the tick.
   */
  private async answer(r: ViewRequest): Promise<void> {
    const { control } = this.opts;
    try {
      const result = await this.run(r);
      await control.answerRequest(r.id, 'done', result.message, result.version);
    } catch (err) {
      if (!(err instanceof KappaError)) throw err;
      await control.answerRequest(r.id, 'failed', err.message, null);
    }
  }

  private run(r: ViewRequest): Promise<RequestResult> {
    const { versions } = this.opts;
    if (r.action === 'replay') return versions.replay(r.view, r.from ?? 'earliest');
    // A rollback request carries the version asked for in `from` (null: the previous version).
    if (r.action === 'rollback') return versions.rollback(r.view, r.from === null ? undefined : Number(r.from));
    return versions.cancel(r.view);
  }
}
