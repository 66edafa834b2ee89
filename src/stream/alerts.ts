/**
 * Alerts and anomaly detectors, as pipelines of the engine: `threshold(...)` and `anomaly(...)`
 * each return an output pipeline (list it under `outputs:` in defineApp) that reads a stream,
 * keeps per-key state, and writes an alert record to a topic (`alertsTopic()`, default `alerts`)
 * when its rule fires.
 *
 * Everything runs in event time and reads nothing but the events: the same events give the same
 * alerts, so a replay reproduces them exactly. The state is rebuilt by reading the source from the
 * start at every start (OutputDef.fromStart), and the alerts written again are dropped by the log
 * as duplicates, so each alert is in the topic once.
 *
 * ```ts
 * const alerts = alertsTopic();
 * outputs: [
 *   threshold('overheat', from(readings), { key: (r) => r.device, when: (r) => r.temperature > 80, for: '1m', to: alerts }),
 *   anomaly('odd_reading', from(readings), { key: (r) => r.device, value: (r) => r.temperature, to: alerts }),
 * ]
 * ```
 *
 * A rule raises at most one alert per key per `cooldown` of event time: a threshold fires once per
 * episode anyway (default cooldown 0), an anomaly detector would fire on every odd value of an
 * episode (default cooldown ANOMALY_COOLDOWN_DEFAULT).
 */
import { type Static, Type } from '@sinclair/typebox';
import { type KeyValue, type OutputDef, Stream, type TopicDef, topic } from './dsl.ts';
import { type Duration, parseDuration } from './windows.ts';

export const AlertSchema = Type.Object({
  /** The rule's name. */
  rule: Type.String(),
  kind: Type.Union([Type.Literal('threshold'), Type.Literal('anomaly')]),
  /** What the rule watches (a device, a card…): the rule's key. */
  key: Type.String(),
  severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]),
  /** Event time at which the rule fired, in ms. */
  atMs: Type.Integer(),
  /** The value that fired it, when the rule has one. */
  value: Type.Union([Type.Number(), Type.Null()]),
  message: Type.String(),
  /** The detector's figures: for a threshold, since when it held; for an anomaly, mean, deviation and score. */
  details: Type.Record(Type.String(), Type.Number()),
});
export type Alert = Static<typeof AlertSchema>;
export type Severity = Alert['severity'];

/** The topic alerts go to: keyed by the rule's key, timed by the alert's event time. */
export function alertsTopic(name = 'alerts', opts: { partitions?: number } = {}): TopicDef<Alert> {
  return topic(name, { partitions: opts.partitions ?? 1, schema: AlertSchema, key: (a) => a.key, time: (a) => a.atMs });
}

export interface ThresholdRule<T> {
  /** What the rule watches; each key has its own state. */
  key: (value: T) => KeyValue;
  /**
   * The condition, given the event and, with `total`, the key's running total including it: a
   * threshold over the value a grouped sum view shows for the key (`when: (s, total) => total > 1e6`).
   */
  when: (value: T, total: number) => boolean;
  /** What each event adds to its key's running total (as `sum(...)` in a view); default: no total (0). */
  total?: (value: T) => number;
  /** Fire only once the condition has held this long (event time) without a break; default: at once. */
  for?: Duration;
  /** The number shown with the alert (e.g. the temperature). */
  value?: (value: T) => number;
  severity?: Severity;
  message?: (value: T, key: string) => string;
  /**
   * After an alert for a key, no other alert for that key until this much event time has passed
   * (a condition that flaps raises one alert, not one per episode). Default 0: each episode fires.
   */
  cooldown?: Duration;
  to: TopicDef<Alert>;
}

export interface AnomalyRule<T> {
  key: (value: T) => KeyValue;
  /** The measurement watched per key. */
  value: (value: T) => number;
  /**
   * 'zscore' (default): the value against the mean and standard deviation of the key's last
   * `window` values. 'ewma': against an exponentially weighted mean and variance (`alpha`).
   */
  method?: 'zscore' | 'ewma';
  /** Values the z-score looks back over (default 100). */
  window?: number;
  /** Weight of the newest value for 'ewma' (default 0.1). */
  alpha?: number;
  /** How many standard deviations away is an anomaly (default 3). */
  threshold?: number;
  /** Values a key needs before it can be judged (default 20). */
  minSamples?: number;
  severity?: Severity;
  message?: (value: T, key: string, score: number) => string;
  /**
   * After an alert for a key, no other alert for that key until this much event time has passed:
   * one odd episode (a device overheating for minutes) raises one alert, not one per reading.
   * Default ANOMALY_COOLDOWN_DEFAULT ('5m'); 0 fires on every anomalous value.
   */
  cooldown?: Duration;
  to: TopicDef<Alert>;
}

/** The anomaly detectors' default cooldown per key, in event time. */
export const ANOMALY_COOLDOWN_DEFAULT: Duration = '5m';

/** Where a detector's state keeps, per key, the event time of its last alert. */
const LAST_ALERT = Symbol('last alert per key');

/**
 * Whether `key` may raise an alert at event time `t` (no alert of it within `cooldownMs` before);
 * if so, `t` becomes its last alert's time. Events out of order that fall before the last alert
 * are within the cooldown too.
 */
function offCooldown(state: Map<unknown, unknown>, key: string, t: number, cooldownMs: number): boolean {
  if (cooldownMs === 0) return true;
  let last = state.get(LAST_ALERT) as Map<string, number> | undefined;
  if (last === undefined) state.set(LAST_ALERT, (last = new Map()));
  const previous = last.get(key);
  if (previous !== undefined && t - previous < cooldownMs) return false;
  last.set(key, t);
  return true;
}

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checkName(name: string): void {
  if (!NAME.test(name))
    throw new TypeError(`alert name "${name}" must be lower-case letters, digits and _, starting with a letter or _`);
}

/** An output pipeline whose stateful step is `step`; `describe` stands in for its source text in fingerprints. */
function detector<T>(
  name: string,
  stream: Stream<T>,
  to: TopicDef<Alert>,
  describe: string,
  step: (state: Map<unknown, unknown>, value: T, eventTimeMs: number) => Iterable<Alert>,
): OutputDef {
  const fn = step as (state: Map<unknown, unknown>, v: unknown, t: number) => Iterable<unknown>;
  Object.defineProperty(fn, 'toString', { value: () => describe });
  const s = stream as Stream<unknown>;
  const withStep = new Stream<unknown>(s.source, [...s.ops, { kind: 'stateful', fn }], s.windowSpec);
  return { ...withStep.to(to as TopicDef<unknown>, { name }), fromStart: true };
}

/** Fires when `when` holds for a key (for `for` in event time, without a break); once per episode. */
export function threshold<T>(name: string, stream: Stream<T>, rule: ThresholdRule<T>): OutputDef {
  checkName(name);
  const forMs = rule.for === undefined ? 0 : parseDuration(rule.for, `for of alert "${name}"`);
  const severity = rule.severity ?? 'warning';
  const cooldownMs = parseDuration(rule.cooldown ?? 0, `cooldown of alert "${name}"`);
  const describe = `threshold(${rule.key}|${rule.when}|${rule.total}|${forMs}|${rule.value}|${severity}|${rule.message}${cooldownMs === 0 ? '' : `|${cooldownMs}`})`;
  return detector(name, stream, rule.to, describe, function* (state, v, t) {
    const key = String(rule.key(v));
    let st = state.get(key) as { since: number | null; fired: boolean; total: number } | undefined;
    if (st === undefined) state.set(key, (st = { since: null, fired: false, total: 0 }));
    if (rule.total) st.total += rule.total(v);
    if (!rule.when(v, st.total)) {
      st.since = null;
      st.fired = false;
      return;
    }
    st.since ??= t;
    // Within the cooldown of the key's last alert, the episode fires once the cooldown is over.
    if (st.fired || t - st.since < forMs || !offCooldown(state, key, t, cooldownMs)) return;
    st.fired = true;
    const value = rule.value ? rule.value(v) : rule.total ? st.total : null;
    yield {
      rule: name,
      kind: 'threshold',
      key,
      severity,
      atMs: Math.trunc(t),
      value,
      message: rule.message
        ? rule.message(v, key)
        : `${name}: the condition has held for ${key}${forMs > 0 ? ` for ${Math.round((t - st.since) / 1000)} s` : ''}${value === null ? '' : ` (value ${value})`}`,
      details: { sinceMs: st.since, forMs, ...(rule.total ? { total: st.total } : {}) },
    };
  });
}

/** Fires when a key's value lies more than `threshold` standard deviations from what that key usually has. */
export function anomaly<T>(name: string, stream: Stream<T>, rule: AnomalyRule<T>): OutputDef {
  checkName(name);
  const method = rule.method ?? 'zscore';
  const window = rule.window ?? 100;
  const alpha = rule.alpha ?? 0.1;
  const limit = rule.threshold ?? 3;
  const minSamples = rule.minSamples ?? 20;
  const severity = rule.severity ?? 'warning';
  const cooldownMs = parseDuration(rule.cooldown ?? ANOMALY_COOLDOWN_DEFAULT, `cooldown of anomaly detector "${name}"`);
  if (method !== 'zscore' && method !== 'ewma')
    throw new TypeError(`method of anomaly detector "${name}" must be 'zscore' or 'ewma'`);
  if (!Number.isInteger(window) || window < 2)
    throw new TypeError(`window of anomaly detector "${name}" must be a whole number of at least 2`);
  if (!(alpha > 0 && alpha <= 1)) throw new TypeError(`alpha of anomaly detector "${name}" must be in (0, 1]`);
  const describe = `anomaly(${rule.key}|${rule.value}|${method}|${window}|${alpha}|${limit}|${minSamples}|${severity}|${rule.message}|${cooldownMs})`;
  return detector(name, stream, rule.to, describe, function* (state, v, t) {
    const key = String(rule.key(v));
    const x = rule.value(v);
    if (typeof x !== 'number' || !Number.isFinite(x)) return;
    let mean: number;
    let std: number;
    let n: number;
    if (method === 'zscore') {
      let values = state.get(key) as number[] | undefined;
      if (values === undefined) state.set(key, (values = []));
      n = values.length;
      mean = values.reduce((s, y) => s + y, 0) / Math.max(1, n);
      std = Math.sqrt(values.reduce((s, y) => s + (y - mean) ** 2, 0) / Math.max(1, n - 1));
      values.push(x);
      if (values.length > window) values.shift();
    } else {
      let st = state.get(key) as { mean: number; variance: number; n: number } | undefined;
      if (st === undefined) state.set(key, (st = { mean: x, variance: 0, n: 0 }));
      ({ mean, n } = st);
      std = Math.sqrt(st.variance);
      const diff = x - st.mean;
      const incr = alpha * diff;
      st.mean += incr;
      st.variance = (1 - alpha) * (st.variance + diff * incr);
      st.n++;
    }
    if (n < minSamples || std === 0) return;
    const score = (x - mean) / std;
    if (Math.abs(score) < limit || !offCooldown(state, key, t, cooldownMs)) return;
    yield {
      rule: name,
      kind: 'anomaly',
      key,
      severity,
      atMs: Math.trunc(t),
      value: x,
      message: rule.message
        ? rule.message(v, key, score)
        : `${name}: ${key} reads ${x}, ${Math.abs(score).toFixed(1)} standard deviations ${score > 0 ? 'above' : 'below'} its usual ${mean.toFixed(2)}`,
      details: { mean, std, score },
    };
  });
}
