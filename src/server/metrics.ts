/**
 * `GET /metrics`: Prometheus text, through prom-client. Counters and histograms are updated as
 * things happen (ingestion, fsyncs, HTTP answers); the per-task, per-view and per-build gauges are
 * read from the engine and the store when scraped, so they cost nothing between scrapes; so are the
 * Kafka consumer groups' lag and members, from the server's `consumerGroups` provider.
 *
 * Dead letters are counted from the log itself (`kappa_dead_letters_total{topic}`, per `<topic>.dlq`):
 * the count survives restarts, takes in records dead-lettered by ingestion as well as by views and
 * outputs, and never counts a record twice. `deadLetterTopics(log)` gives the same counts with each
 * topic's first reason, for the dashboard.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isKappaError } from '../errors.ts';
import type { GroupLag } from '../kafka/index.ts';
import type { Log } from '../log/index.ts';
import type { Engine, TaskStatus } from '../stream/index.ts';
import type { ControlStore, ViewStore } from '../view/index.ts';
import { type CounterSeries, FastCounter, FastHistogram, type HistogramSeries } from './fast-metrics.ts';

const TASK_LABELS = ['view', 'version', 'topic', 'partition'] as const;
/** Label sets whose metric children are kept for reuse (see Metrics.appended). */
const CHILDREN_MAX = 10_000;

export class Metrics {
  readonly registry = new Registry();
  // Updated per request: Kappa's own cheap series (fast-metrics.ts), read by the same registry.
  readonly ingestRecords: FastCounter<'topic'>;
  readonly ingestBytes: FastCounter<'topic'>;
  readonly appendSeconds: FastHistogram<'topic'>;
  readonly httpRequests: FastCounter<'method' | 'route' | 'status'>;
  readonly httpSeconds: FastHistogram<'method' | 'route'>;
  readonly fsyncSeconds: Histogram;
  readonly flushSeconds: Histogram<'view'>;
  private readonly topicChildren = new Map<
    string,
    { records: CounterSeries; bytes: CounterSeries; seconds: HistogramSeries }
  >();
  private readonly httpChildren = new Map<string, { count: CounterSeries; seconds: HistogramSeries }>();

  constructor(
    log: Log,
    store: ViewStore,
    control: ControlStore,
    engine: Engine | null,
    consumerGroups: () => Promise<GroupLag[]> = async () => [],
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'kappa_process_' });
    this.ingestRecords = new FastCounter({
      name: 'kappa_ingest_records_total',
      help: 'Records appended through HTTP ingestion.',
      labelNames: ['topic'],
      registers,
    });
    this.ingestBytes = new FastCounter({
      name: 'kappa_ingest_bytes_total',
      help: 'Bytes of record values appended through HTTP ingestion.',
      labelNames: ['topic'],
      registers,
    });
    this.appendSeconds = new FastHistogram({
      name: 'kappa_append_seconds',
      help: 'Time from handing records to the log until they are durable (fsync included), per append call.',
      labelNames: ['topic'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: 'kappa_fsync_seconds',
      help: 'Duration of each group-commit fsync of the log.',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
    this.httpRequests = new FastCounter({
      name: 'kappa_http_requests_total',
      help: 'HTTP requests answered, by route and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpSeconds = new FastHistogram({
      name: 'kappa_http_request_seconds',
      help: 'Time to answer HTTP requests (streams: until the answer starts).',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.flushSeconds = new Histogram({
      name: 'kappa_flush_seconds',
      help: "Duration of each view flush: one store transaction with a task's changed rows and its checkpoint.",
      labelNames: ['view'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    log.fsyncObserver = (s) => this.fsyncSeconds.observe(s);
    if (engine !== null) engine.flushObserver = (view, s) => this.flushSeconds.observe({ view }, s);

    collectedGauges(registers, log, store, control, engine);
    deadLetterCounter(registers, log);
    consumerGroupGauges(registers, consumerGroups);
  }

  /** One HTTP ingestion's append: records, bytes and its time to durable. The series are looked up once per topic. */
  appended(topic: string, records: number, bytes: number, seconds: number): void {
    let c = this.topicChildren.get(topic);
    if (c === undefined) {
      const labels = { topic };
      c = {
        records: this.ingestRecords.labels(labels),
        bytes: this.ingestBytes.labels(labels),
        seconds: this.appendSeconds.labels(labels),
      };
      this.topicChildren.set(topic, c);
    }
    c.records.value += records;
    c.bytes.value += bytes;
    c.seconds.observe(seconds);
  }

  /** One HTTP answer, counted and timed under its method, route and status (series cached as in `appended`). */
  answered(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let c = this.httpChildren.get(key);
    if (c === undefined) {
      c = {
        count: this.httpRequests.labels({ method, route, status: String(status) }),
        seconds: this.httpSeconds.labels({ method, route }),
      };
      // Routes are the server's own patterns, so the label sets are few; the bound guards it anyway.
      if (this.httpChildren.size < CHILDREN_MAX) this.httpChildren.set(key, c);
    }
    c.count.value++;
    c.seconds.observe(seconds);
  }

  close(log: Log, engine: Engine | null): void {
    log.fsyncObserver = null;
    if (engine !== null) engine.flushObserver = null;
  }
}

/** A task's labels on the task gauges. */
function taskLabelsOf(t: TaskStatus): Record<(typeof TASK_LABELS)[number], string> {
  return { view: t.view, version: String(t.version), topic: t.topic, partition: String(t.partition) };
}

/**
 * The gauges read when scraped: per task (lag, events processed, checkpoint age), per view
 * version (rows) and per build (progress, rate).
 */
function collectedGauges(
  registers: Registry[],
  log: Log,
  store: ViewStore,
  control: ControlStore,
  engine: Engine | null,
): void {
  /** A gauge that `sample` fills, after a reset, each time it is scraped. */
  const gauge = (
    name: string,
    help: string,
    labelNames: readonly string[],
    sample: (set: (labels: Record<string, string>, value: number) => void) => void | Promise<void>,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        await sample((labels, value) => this.set(labels, value));
      },
    });
  };
  gauge(
    'kappa_task_lag_records',
    'Records between a task’s committed checkpoint and the end of its partition.',
    TASK_LABELS,
    async (set) => {
      for (const t of engine?.status() ?? []) {
        const { end } = await log.offsets(t.topic, t.partition);
        set(taskLabelsOf(t), Math.max(0, end - t.committedOffset));
      }
    },
  );
  gauge(
    'kappa_task_events_processed',
    'Events a task has folded since the process started (rate() of it is the task’s throughput).',
    TASK_LABELS,
    (set) => {
      for (const t of engine?.status() ?? []) set(taskLabelsOf(t), t.eventsProcessed);
    },
  );
  gauge(
    'kappa_task_checkpoint_age_seconds',
    'Seconds since a task last committed its rows and checkpoint.',
    TASK_LABELS,
    (set) => {
      const now = Date.now();
      for (const t of engine?.status() ?? []) {
        if (t.lastFlushAtMs > 0) set(taskLabelsOf(t), (now - t.lastFlushAtMs) / 1000);
      }
    },
  );
  gauge('kappa_view_rows', 'Rows in each version of each view.', ['view', 'version', 'state'], async (set) => {
    for (const v of await store.versions()) set({ view: v.name, version: String(v.version), state: v.state }, v.rows);
  });
  gauge(
    'kappa_build_progress_ratio',
    'Share of the log a build in progress has replayed (0 to 1).',
    ['view', 'version', 'reason'],
    async (set) => {
      for (const b of await control.builds())
        set(
          { view: b.name, version: String(b.version), reason: b.reason },
          b.offsetsTotal === 0 ? 0 : Math.min(1, b.offsetsDone / b.offsetsTotal),
        );
    },
  );
  gauge('kappa_build_events_per_second', 'Replay rate of a build in progress.', ['view', 'version'], async (set) => {
    for (const b of await control.builds()) set({ view: b.name, version: String(b.version) }, b.eventsPerSecond);
  });
}

/**
 * The Kafka consumer groups, read when scraped, named after kafka_exporter's `kafka_consumergroup_lag`
 * and `kafka_consumergroup_members` so that existing alerts and dashboards translate directly.
 */
function consumerGroupGauges(registers: Registry[], groups: () => Promise<GroupLag[]>): void {
  new Gauge({
    name: 'kappa_kafka_consumer_group_lag',
    help: 'Records of a partition a Kafka consumer group has not committed yet (log end - committed offset).',
    labelNames: ['group', 'topic', 'partition'],
    registers,
    async collect() {
      this.reset();
      for (const g of await groups())
        for (const p of g.partitions)
          this.set({ group: g.groupId, topic: p.topic, partition: String(p.partition) }, p.lag);
    },
  });
  new Gauge({
    name: 'kappa_kafka_consumer_group_members',
    help: 'Members of each Kafka consumer group (0 for a group that only has committed offsets).',
    labelNames: ['group'],
    registers,
    async collect() {
      this.reset();
      for (const g of await groups()) this.set({ group: g.groupId }, g.members.length);
    },
  });
}

/** `kappa_dead_letters_total{topic}`, read from the log when scraped. */
function deadLetterCounter(registers: Registry[], log: Log): void {
  new Counter({
    name: 'kappa_dead_letters_total',
    help: 'Records sent to each dead-letter topic (<topic>.dlq) since it was created: records a view or output could not process, and bad records ingestion accepted with onInvalid: dlq.',
    labelNames: ['topic'],
    registers,
    async collect() {
      this.reset();
      for (const d of await deadLetterTopics(log, { reasons: false })) this.inc({ topic: d.topic }, d.count);
    },
  });
}

/** A dead-letter topic that has received records. */
export interface DeadLetterTopic {
  /** The dead-letter topic, `<source>.dlq`. */
  topic: string;
  /** The topic whose records it holds. */
  source: string;
  /** Records it ever received (retention may have deleted the oldest since). */
  count: number;
  /** The `kappa.error` header of its oldest record still kept, and the view or output that sent it (null: ingestion). */
  firstReason: string | null;
  firstView: string | null;
}

/** Bytes read to find a dead-letter topic's first reason: one batch is enough (at least one is always read). */
const FIRST_REASON_READ_BYTES = 64 * 1024;

/**
 * Every dead-letter topic that has received records, with its count (the sum of its partitions'
 * end offsets) and, unless `reasons` is false, the reason of its oldest record kept.
 */
export async function deadLetterTopics(log: Log, opts: { reasons?: boolean } = {}): Promise<DeadLetterTopic[]> {
  const out: DeadLetterTopic[] = [];
  for (const t of await log.topics()) {
    if (!t.name.endsWith('.dlq')) continue;
    let count = 0;
    let first: { reason: string | null; view: string | null } | null = null;
    for (let p = 0; p < t.partitions; p++) {
      const { start, end } = await log.offsets(t.name, p);
      count += end;
      if (first === null && opts.reasons !== false && end > start) first = await firstHeaders(log, t.name, p, start);
    }
    if (count === 0) continue;
    out.push({
      topic: t.name,
      source: t.name.slice(0, -'.dlq'.length),
      count,
      firstReason: first?.reason ?? null,
      firstView: first?.view ?? null,
    });
  }
  return out;
}

async function firstHeaders(
  log: Log,
  topic: string,
  partition: number,
  start: number,
): Promise<{ reason: string | null; view: string | null } | null> {
  try {
    for await (const batch of log.read(topic, partition, start, { maxBytes: FIRST_REASON_READ_BYTES })) {
      const record = batch.records(start)[0];
      if (record === undefined) continue;
      const header = (key: string): string | null =>
        record.headers.find((h) => h.key === key)?.value?.toString('utf8') ?? null;
      return { reason: header('kappa.error'), view: header('kappa.view') };
    }
  } catch (err) {
    // Retention may delete the segment between offsets() and read(): the count stands without a reason.
    if (!isKappaError(err)) throw err;
  }
  return null;
}
