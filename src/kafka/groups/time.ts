/**
 * The coordinator's sense of time: a clock and one-shot timers, injectable so tests drive session
 * timeouts and rebalance delays by hand (`ManualTime`) instead of sleeping.
 */

export interface Clock {
  now(): number;
}

/** One-shot timers. A handle is whatever `set` returned; `clear` of a fired or cleared handle does nothing. */
export interface Timers {
  set(fn: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

export type GroupTime = Clock & Timers;

/** The real clock and Node's timers, unref'd: a pending session timeout never keeps a process alive. */
export const REAL_TIME: GroupTime = {
  now: () => Date.now(),
  set(fn, delayMs) {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    handle.unref();
    return handle;
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface ManualTimer {
  id: number;
  dueMs: number;
  fn: () => void;
}

/**
 * Time that moves only when a test says so: `advance(ms)` runs every timer due by then, in due
 * order (timers set by a timer that runs are run too when they fall due within the advance).
 */
export class ManualTime implements GroupTime {
  private nowMs: number;
  private nextId = 1;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  set(fn: () => void, delayMs: number): unknown {
    const timer = { id: this.nextId++, dueMs: this.nowMs + Math.max(0, delayMs), fn };
    this.timers.set(timer.id, timer);
    return timer.id;
  }

  clear(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      let next: ManualTimer | null = null;
      for (const t of this.timers.values()) if (t.dueMs <= endMs && (next === null || t.dueMs < next.dueMs)) next = t;
      if (next === null) break;
      this.timers.delete(next.id);
      this.nowMs = Math.max(this.nowMs, next.dueMs);
      next.fn();
    }
    this.nowMs = endMs;
  }
}
