/**
 * Webhooks: `kappa start` POSTs each record of a topic (the alerts, typically) to a URL, in order
 * per partition, at least once. A delivery that fails (no answer within the timeout, or a status
 * other than 2xx) is retried with exponential backoff; after `maxAttempts` the record goes to
 * `<topic>.webhook-dlq` with headers saying which webhook, why and after how many attempts, and
 * delivery moves on. Deliveries run beside the pipelines and never hold them up.
 *
 * Each webhook keeps its position per partition in the view store (as an output checkpoint named
 * `webhook_<name>`), saved after each record is delivered or dead-lettered; a new webhook starts at
 * the end of the topic (it is told what happens from now on, not the history). The body is
 * `{ topic, partition, offset, timestamp, key, value }`, with the header `Kappa-Delivery-Id:
 * <topic>/<partition>/<offset>` so a receiver can drop a repeat after a crash.
 */
import type { Log, LogRecord, Logger } from '../log/index.ts';
import type { WebhookConfig } from '../stream/index.ts';
import type { ControlStore } from '../view/index.ts';

const DEFAULTS = { topic: 'alerts', maxAttempts: 5, backoffMs: 500, timeoutMs: 5000 };

export interface WebhookStats {
  delivered: number;
  retried: number;
  deadLettered: number;
}

export interface Webhooks {
  stats: Map<string, WebhookStats>;
  stop(): Promise<void>;
}

export async function startWebhooks(
  log: Log,
  control: ControlStore,
  hooks: readonly WebhookConfig[],
  logger: Logger,
): Promise<Webhooks> {
  const abort = new AbortController();
  const stats = new Map<string, WebhookStats>();
  const loops: Promise<void>[] = [];
  for (const hook of hooks) {
    const h = { ...DEFAULTS, ...hook };
    const info = await log.topic(h.topic);
    const dlq = `${h.topic}.webhook-dlq`;
    if (!(await log.topics()).some((t) => t.name === dlq)) await log.createTopic(dlq, { partitions: info.partitions });
    const checkpointName = `webhook_${h.name}`;
    const checkpoints = await control.outputCheckpoints(checkpointName);
    const s: WebhookStats = { delivered: 0, retried: 0, deadLettered: 0 };
    stats.set(h.name, s);
    for (let p = 0; p < info.partitions; p++) {
      const cp = checkpoints.find((c) => c.topic === h.topic && c.partition === p);
      const from = cp?.offset ?? (await log.offsets(h.topic, p)).end;
      loops.push(deliver(log, control, h, p, from, checkpointName, dlq, s, abort.signal, logger));
    }
  }
  return {
    stats,
    async stop() {
      abort.abort();
      await Promise.allSettled(loops);
    },
  };
}

async function deliver(
  log: Log,
  control: ControlStore,
  h: Required<Omit<WebhookConfig, 'headers'>> & Pick<WebhookConfig, 'headers'>,
  partition: number,
  from: number,
  checkpointName: string,
  dlq: string,
  stats: WebhookStats,
  signal: AbortSignal,
  logger: Logger,
): Promise<void> {
  try {
    for await (const batch of log.read(h.topic, partition, from, { follow: true, signal })) {
      for (const r of batch.records(from)) {
        const error = await post(h, partition, r, stats, signal);
        if (signal.aborted) return; // not delivered: tried again at the next start
        if (error === null) stats.delivered++;
        else {
          logger.warn(
            `webhook ${h.name}: gave up on ${h.topic}/${partition}/${r.offset} after ${h.maxAttempts} attempts (${error}); it is in ${dlq}`,
          );
          await log.append(dlq, [
            {
              partition,
              key: r.key,
              value: r.value,
              timestamp: r.timestamp,
              headers: {
                'kappa.webhook': h.name,
                'kappa.error': error,
                'kappa.attempts': String(h.maxAttempts),
                'kappa.source.topic': h.topic,
                'kappa.source.partition': String(partition),
                'kappa.source.offset': String(r.offset),
              },
            },
          ]);
          // Counted once it is in the dead-letter topic, so whoever reads the count finds it there.
          stats.deadLettered++;
        }
        await control.saveOutputCheckpoint(checkpointName, {
          topic: h.topic,
          partition,
          offset: r.offset + 1,
          sequences: [],
        });
        from = r.offset + 1;
      }
    }
  } catch (err) {
    if (!signal.aborted)
      logger.warn(`webhook ${h.name}: delivery from ${h.topic}/${partition} stopped: ${(err as Error).message}`);
  }
}

/** Delivers one record, retrying with backoff; null when delivered, else the last failure. */
async function post(
  h: Required<Omit<WebhookConfig, 'headers'>> & Pick<WebhookConfig, 'headers'>,
  partition: number,
  r: LogRecord,
  stats: WebhookStats,
  signal: AbortSignal,
): Promise<string | null> {
  const text = r.value === null ? null : r.value.toString('utf8');
  let value: unknown = text;
  try {
    value = text === null ? null : JSON.parse(text);
  } catch {
    // not JSON: sent as a string
  }
  const body = JSON.stringify({
    topic: h.topic,
    partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key?.toString('utf8') ?? null,
    value,
  });
  let last = '';
  for (let attempt = 1; attempt <= h.maxAttempts; attempt++) {
    if (attempt > 1) {
      stats.retried++;
      await sleep(h.backoffMs * 2 ** (attempt - 2), signal);
    }
    if (signal.aborted) return 'stopped';
    try {
      const res = await fetch(h.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'kappa-delivery-id': `${h.topic}/${partition}/${r.offset}`,
          ...(h.headers ?? {}),
        },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(h.timeoutMs)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return null;
      last = `the receiver answered ${res.status}`;
    } catch (err) {
      last = `the request failed: ${(err as Error).message}`;
    }
  }
  return last;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
