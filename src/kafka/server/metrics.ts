/**
 * The listener's Prometheus metrics, `kappa_kafka_*`, registered in the registry `kappa start`'s
 * HTTP server exposes at `GET /metrics` (or a private one when the listener runs alone). Labels are
 * bounded: API names come from the codec's table, error names from Kafka's error list.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ERRORS } from '../protocol/index.ts';

const ERROR_NAMES = new Map<number, string>(Object.entries(ERRORS).map(([name, code]) => [code, name]));

export function errorName(code: number): string {
  return ERROR_NAMES.get(code) ?? `CODE_${code}`;
}

export class KafkaMetrics {
  readonly requests: Counter<'api' | 'error'>;
  readonly requestSeconds: Histogram<'api'>;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly connectionsOpened: Counter;
  readonly connectionsRefused: Counter<'reason'>;
  readonly connectionsClosed: Counter<'reason'>;
  readonly producedRecords: Counter<'topic'>;

  constructor(
    readonly registry: Registry,
    openConnections: () => number,
  ) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'kappa_kafka_requests_total',
      help: 'Kafka protocol requests answered, by API and by the first error code in the answer (NONE: no error).',
      labelNames: ['api', 'error'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'kappa_kafka_request_seconds',
      help: 'Time from a Kafka request arriving to its answer being ready (Fetch includes its long poll).',
      labelNames: ['api'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.bytesIn = new Counter({
      name: 'kappa_kafka_bytes_in_total',
      help: 'Bytes received on Kafka connections.',
      registers,
    });
    this.bytesOut = new Counter({
      name: 'kappa_kafka_bytes_out_total',
      help: 'Bytes sent on Kafka connections.',
      registers,
    });
    this.connectionsOpened = new Counter({
      name: 'kappa_kafka_connections_opened_total',
      help: 'Kafka connections accepted.',
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'kappa_kafka_connections_refused_total',
      help: 'Kafka connections closed as soon as they opened (too many connections).',
      labelNames: ['reason'],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'kappa_kafka_connections_closed_total',
      help: 'Kafka connections closed, by why: client (the client closed it), idle, protocol (bad frame or request), auth, shutdown.',
      labelNames: ['reason'],
      registers,
    });
    this.producedRecords = new Counter({
      name: 'kappa_kafka_produced_records_total',
      help: 'Records appended through the Kafka protocol (duplicates of an idempotent producer not counted).',
      labelNames: ['topic'],
      registers,
    });
    new Gauge({
      name: 'kappa_kafka_connections',
      help: 'Kafka connections open now.',
      registers,
      collect() {
        this.set(openConnections());
      },
    });
  }

  static private(openConnections: () => number): KafkaMetrics {
    return new KafkaMetrics(new Registry(), openConnections);
  }
}

/** The first non-zero `errorCode` in a response body (depth-first, arrays included), or 0. */
export function firstError(body: unknown, depth = 0): number {
  if (body === null || typeof body !== 'object' || depth > 4 || Buffer.isBuffer(body)) return 0;
  if (Array.isArray(body)) {
    for (const item of body) {
      const code = firstError(item, depth + 1);
      if (code !== 0) return code;
    }
    return 0;
  }
  const record = body as Record<string, unknown>;
  if (typeof record.errorCode === 'number' && record.errorCode !== 0) return record.errorCode;
  for (const key in record) {
    const v = record[key];
    if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      const code = firstError(v, depth + 1);
      if (code !== 0) return code;
    }
  }
  return 0;
}
