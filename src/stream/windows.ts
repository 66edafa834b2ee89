/**
 * Event-time windows. A window is [start, end) in ms since the epoch, aligned to the epoch (plus
 * an optional offset), so the same event always lands in the same windows, live or in a replay.
 *
 * Event times and windows stay within the range of a JavaScript Date (±8.64e15 ms, years -271821 to
 * 275760), which is also well inside the integers a double holds exactly (2^53). A record whose
 * event time is outside it goes to the dead-letter topic: kept, it would push the watermark so far
 * ahead that every later event of its task counted as late.
 */
import { describeValue } from './aggregates.ts';

export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '1m' → 60000. Numbers are milliseconds. Refuses anything else with a message naming the value. */
export function parseDuration(d: Duration, what = 'duration'): number {
  if (typeof d === 'number') {
    if (Number.isFinite(d) && d >= 0 && Number.isInteger(d)) return d;
  } else {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(d);
    if (m) return Math.round(Number(m[1]) * UNITS[m[2]]);
  }
  throw new TypeError(
    `${what} ${JSON.stringify(d)} is not a duration: use milliseconds or a string like '500ms', '30s', '1m', '1h', '1d'`,
  );
}

export interface WindowSpec {
  kind: 'tumbling' | 'hopping' | 'session';
  /** The window's size; for a session window, its gap (a session is [first event, last event + gap)). */
  sizeMs: number;
  /** How far apart window starts are (= size for tumbling). */
  advanceMs: number;
  /** Events may arrive this much out of order: the watermark trails the newest event time by it. */
  outOfOrdernessMs: number;
  /** A window still accepts events until the watermark passes its end by this much. */
  allowedLatenessMs: number;
}

export interface WindowOptions {
  outOfOrderness?: Duration;
  allowedLateness?: Duration;
}

function options(opts: WindowOptions): Pick<WindowSpec, 'outOfOrdernessMs' | 'allowedLatenessMs'> {
  return {
    outOfOrdernessMs: parseDuration(opts.outOfOrderness ?? 0, 'outOfOrderness'),
    allowedLatenessMs: parseDuration(opts.allowedLateness ?? 0, 'allowedLateness'),
  };
}

export function tumbling(size: Duration, opts: WindowOptions = {}): WindowSpec {
  const sizeMs = parseDuration(size, 'window size');
  if (sizeMs <= 0) throw new TypeError('window size must be more than 0');
  return { kind: 'tumbling', sizeMs, advanceMs: sizeMs, ...options(opts) };
}

export function hopping(size: Duration, advance: Duration, opts: WindowOptions = {}): WindowSpec {
  const sizeMs = parseDuration(size, 'window size');
  const advanceMs = parseDuration(advance, 'window advance');
  if (sizeMs <= 0 || advanceMs <= 0 || advanceMs > sizeMs)
    throw new TypeError('a hopping window needs 0 < advance <= size');
  return { kind: 'hopping', sizeMs, advanceMs, ...options(opts) };
}

/**
 * Session windows: a key's events closer than `gap` to each other (in event time) form one
 * session, [its first event, its last event + gap). Each event starts as its own session [t, t +
 * gap); sessions of the same key that touch or overlap are merged into one row when the view's
 * rows are written, so an event that arrives late and bridges two sessions merges them (the two old
 * rows are removed). A session is late when its own [t, t + gap) ends before the watermark minus
 * the allowed lateness.
 */
export function session(opts: WindowOptions & { gap: Duration }): WindowSpec {
  const gapMs = parseDuration(opts?.gap, 'session gap');
  if (gapMs <= 0) throw new TypeError('a session gap must be more than 0');
  return { kind: 'session', sizeMs: gapMs, advanceMs: gapMs, ...options(opts) };
}

/**
 * Start of every window containing time t, oldest first (one for tumbling, size/advance for
 * hopping; for a session, the session the event starts, at t).
 */
export function windowStarts(spec: WindowSpec, t: number): number[] {
  if (spec.kind === 'session') return [t];
  const last = Math.floor(t / spec.advanceMs) * spec.advanceMs;
  const starts: number[] = [];
  for (let s = last - Math.ceil(spec.sizeMs / spec.advanceMs - 1) * spec.advanceMs; s <= last; s += spec.advanceMs) {
    if (t >= s && t < s + spec.sizeMs) starts.push(s);
  }
  return starts;
}

/** The latest event time, and minus it the earliest: the range of a JavaScript Date, in ms either side of the epoch. */
export const EVENT_TIME_MS_MAX = 8.64e15;

/** Why `t` (from a time extractor or a record timestamp) cannot be an event time, or null if it can. */
export function eventTimeProblem(t: unknown): string | null {
  if (typeof t !== 'number') return `is ${describeValue(t)}, not a time in ms`;
  if (t >= -EVENT_TIME_MS_MAX && t <= EVENT_TIME_MS_MAX) return null;
  return Number.isNaN(t)
    ? 'is NaN, not a time in ms'
    : `is ${t}, outside the range of dates (-8.64e15 to 8.64e15 ms since 1970, years -271821 to 275760)`;
}

/** Why the window [startMs, startMs + sizeMs) cannot be a row (it reaches outside the range of dates), or null. */
export function windowProblem(startMs: number, sizeMs: number): string | null {
  if (startMs >= -EVENT_TIME_MS_MAX && startMs + sizeMs <= EVENT_TIME_MS_MAX) return null;
  return `its window [${startMs}, ${startMs + sizeMs}) reaches outside the range of dates (-8.64e15 to 8.64e15 ms since 1970)`;
}
