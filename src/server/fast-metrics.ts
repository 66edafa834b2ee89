/**
 * Counters and histograms for the per-request hot path (every HTTP answer, every ingestion), read
 * by a prom-client Registry like its own metrics. An update is plain arithmetic on a series found
 * once per label set; prom-client's own `inc`/`observe` validate and hash the labels on every call,
 * even through a child: ~3.5 µs of a single-record POST's ~30 µs on the server's thread.
 *
 * The exposition is prom-client's: a registry formats what `get()` returns (counter: one value per
 * series; histogram: cumulative `_bucket` values with an `le` label ending at `+Inf`, then `_sum`
 * and `_count`), so /metrics reads the same as with prom-client's classes.
 *
 * Thread-safety: none needed; updated and read on the server's event loop.
 */
import type { Registry } from 'prom-client';

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** What a prom-client Registry needs of a metric it formats. */
abstract class FastMetric<L extends string, S> {
  readonly aggregator = 'sum' as const;
  protected series = new Map<string, { labels: Record<L, string>; data: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly L[],
    registers: Registry[],
  ) {
    // prom-client's Registry keeps any object with a name, get() and reset().
    for (const r of registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected abstract fresh(): S;
  protected abstract values(labels: Record<L, string>, data: S): MetricValue[];

  /** The series of one label set, created at first use; keep it to update it without a lookup. */
  protected seriesOf(labels: Record<L, string>): S {
    const key = this.labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { ...labels }, data: this.fresh() };
      this.series.set(key, s);
    }
    return s.data;
  }

  async get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    for (const { labels, data } of this.series.values()) values.push(...this.values(labels, data));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Forgets every series, as prom-client's reset does; series found before it no longer count. */
  reset(): void {
    this.series.clear();
  }
}

export interface CounterSeries {
  value: number;
}

export class FastCounter<L extends string> extends FastMetric<L, CounterSeries> {
  constructor(opts: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    super(opts.name, opts.help, 'counter', opts.labelNames, opts.registers);
  }

  /** The series of `labels`: add to its `value`. */
  labels(labels: Record<L, string>): CounterSeries {
    return this.seriesOf(labels);
  }

  protected fresh(): CounterSeries {
    return { value: 0 };
  }

  protected values(labels: Record<L, string>, data: CounterSeries): MetricValue[] {
    return [{ labels, value: data.value }];
  }
}

export class HistogramSeries {
  sum = 0;
  count = 0;
  /** Observations per bucket (not cumulative); the last counts those above every bound. */
  readonly counts: Float64Array;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

export class FastHistogram<L extends string> extends FastMetric<L, HistogramSeries> {
  private readonly bounds: readonly number[];

  constructor(opts: {
    name: string;
    help: string;
    labelNames: readonly L[];
    buckets: number[];
    registers: Registry[];
  }) {
    super(opts.name, opts.help, 'histogram', opts.labelNames, opts.registers);
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  /** The series of `labels`: call its `observe`. */
  labels(labels: Record<L, string>): HistogramSeries {
    return this.seriesOf(labels);
  }

  protected fresh(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }

  protected values(labels: Record<L, string>, data: HistogramSeries): MetricValue[] {
    const out: MetricValue[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += data.counts[i];
      const le = i < this.bounds.length ? this.bounds[i] : '+Inf';
      out.push({ labels: { le, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    out.push({ labels, value: data.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: data.count, metricName: `${this.name}_count` });
    return out;
  }
}
