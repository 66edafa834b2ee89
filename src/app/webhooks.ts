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

/** Whether a webhook's receiver is failing, shared by its partitions' loops: its state changes are logged once. */
interface Health {
  failing: boolean;
  logger: Logger;
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
    const health: Health = { failing: false, logger };
    for (let p = 0; p < info.partitions; p++) {
      const cp = checkpoints.find((c) => c.topic === h.topic && c.partition === p);
      const from = cp?.offset ?? (await log.offsets(h.topic, p)).end;
      loops.push(deliver(log, control, h, p, from, checkpointName, dlq, s, abort.signal, health));
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
  health: Health,
): Promise<void> {
  const { logger } = health;
  try {
    for await (const batch of log.read(h.topic, partition, from, { follow: true, signal })) {
      for (const r of batch.records(from)) {
        const error = await post(h, partition, r, stats, signal, health);
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
  health: Health,
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
  let last: string | null = '';
  for (let attempt = 1; attempt <= h.maxAttempts; attempt++) {
    if (attempt > 1) {
      stats.retried++;
      await sleep(h.backoffMs * 2 ** (attempt - 2), signal);
    }
    if (signal.aborted) return 'stopped';
    last = await attemptOnce(h, partition, r.offset, body, signal);
    if (last === null) {
      if (health.failing) health.logger.info(`webhook ${h.name}: ${h.url} takes deliveries again`);
      health.failing = false;
      return null;
    }
    // Said once when the receiver starts failing (not per attempt), with the cause, so a
    // receiver that is down is known at once, not only when the first record is dead-lettered.
    if (!health.failing && !signal.aborted)
      health.logger.warn(
        `webhook ${h.name}: delivering ${h.topic}/${partition}/${r.offset} to ${h.url} failed (${last}); retrying, up to ${h.maxAttempts} attempts per record`,
      );
    health.failing = true;
  }
  return last;
}

/**
 * One POST; null when the receiver took it, else why not. The request gets its own AbortController,
 * tied to `signal` by a listener removed when the attempt ends: `AbortSignal.any` or a listener
 * left on the shared signal per attempt would pile up (MaxListenersExceededWarning) on a receiver
 * that keeps failing.
 */
async function attemptOnce(
  h: Required<Omit<WebhookConfig, 'headers'>> & Pick<WebhookConfig, 'headers'>,
  partition: number,
  offset: number,
  body: string,
  signal: AbortSignal,
): Promise<string | null> {
  const request = new AbortController();
  const stop = (): void => request.abort();
  signal.addEventListener('abort', stop, { once: true });
  const timer = setTimeout(stop, h.timeoutMs);
  try {
    const res = await fetch(h.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'kappa-delivery-id': `${h.topic}/${partition}/${offset}`,
        ...(h.headers ?? {}),
      },
      body,
      signal: request.signal,
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? null : `the receiver answered ${res.status}`;
  } catch (err) {
    if (request.signal.aborted && !signal.aborted) return `no answer within ${h.timeoutMs} ms`;
    return `the request failed: ${failureCause(err)}`;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Why a fetch failed, with the cause: undici says only "fetch failed" and keeps the reason
 * (ECONNREFUSED 127.0.0.1:9, ENOTFOUND, a TLS error) in `cause`.
 */
export function failureCause(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const { message, code } = e as { message?: unknown; code?: unknown };
    const text = typeof message === 'string' && message !== '' ? message : String(e);
    const part = typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
    if (!parts.includes(part)) parts.push(part);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
