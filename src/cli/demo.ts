/**
 * `kappa demo` (what `npm start` runs): the sales demo on the embedded default. It runs
 * `kappa start` with examples/sales/kappa.config.ts — the pipelines, the HTTP API and the dashboard
 * — and a generator that appends realistic sales events at a steady rate (stores in regions,
 * products, quantities, a few refunds, event times a little out of order), until Ctrl-C. The data
 * stays in the data directory, so every other command works on it, during and after.
 *
 * On an address other than loopback (`--host 0.0.0.0`, to reach the demo from another machine or
 * from outside a container) the server needs tokens, which the demo's config has none of: so the
 * demo makes one for this run (admin scope, never stored: only its SHA-256 is handed to the server)
 * and prints the dashboard's URL carrying it in the fragment (`/#token=…`, which a browser never
 * sends to the server, so it stays out of request logs) and the curl with the header.
 */
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Log, ProducerRecord } from '../log/index.ts';
import { seededRandom } from '../random.ts';
import { newToken } from '../server/index.ts';
import type { AppDef, TokenConfig } from '../stream/index.ts';
import { DEFAULT_HISTORY } from './defaults.ts';
import type { CliContext } from './main.ts';
import { type StartOptions, startCommand } from './start.ts';

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/sales/kappa.config.ts', import.meta.url));

export interface DemoOptions {
  /** Sales events per second (default 200). */
  rate?: number;
  host?: string;
  port?: number;
  workers?: number;
  /** Sales to seed at the first start (default DEFAULT_HISTORY; 0: none). */
  history?: number;
  /** The Kafka listener's port (default 9092; 0 picks one); false: none (`--no-kafka`). */
  kafkaPort?: number;
  kafka?: boolean;
}

const REGIONS = ['north', 'south', 'east', 'west', 'central'];
const STORES = 40;
const SKUS = 500;
/** The generator appends every this many ms. */
const TICK_MS = 100;

/**
 * Sales events as a point-of-sale system would send them: `n` of them at `nowMs`, or, with
 * `spacingMs`, the i-th at `nowMs + i * spacingMs` (a stretch of history).
 */
export function salesGenerator(seed = Date.now()): (n: number, nowMs: number, spacingMs?: number) => ProducerRecord[] {
  const random = seededRandom(seed);
  let order = 0;
  const prices = Array.from({ length: SKUS }, () => Math.round((2 + random() * 120) * 100) / 100);
  // Order ids: unique within a run (its seed) and across runs.
  const run = (seed >>> 0).toString(36);
  const storeIds = Array.from({ length: STORES }, (_, s) => `s${String(s).padStart(2, '0')}`);
  // The JSON's fixed part per store (every field here is a plain token: no escaping needed).
  const storeJson = storeIds.map((id, s) => `"storeId":"${id}","region":"${REGIONS[s % REGIONS.length]}"`);
  return (n, startMs, spacingMs = 0) => {
    const out: ProducerRecord[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const nowMs = Math.floor(startMs + i * spacingMs);
      const store = Math.floor(random() * STORES);
      const skuIndex = Math.floor(random() * SKUS);
      const qty = 1 + Math.floor(random() * 4);
      const refund = random() < 0.03;
      const amount = Math.round((refund ? -1 : 1) * prices[skuIndex] * qty * 100) / 100;
      // Point-of-sale clocks and networks: up to 3 s late.
      const ts = nowMs - Math.floor(random() * 3000);
      const value = `{"orderId":"o-${run}-${order++}",${storeJson[store]},"sku":"sku-${skuIndex}","amount":${amount},"ts":${ts}}`;
      out[i] = { key: storeIds[store], value, timestamp: ts };
    }
    return out;
  };
}

const HISTORY_SPAN_MS = 24 * 3_600_000;
const SEED_CHUNK = 50_000;

/**
 * At the demo's first start (no sales in the log yet), appends `count` sales spread over the last
 * 24 hours, so the views start from a day of history and a replay (the tutorial's rebuild) takes
 * long enough to watch. Later starts find the sales and add nothing.
 */
export async function seedHistory(ctx: CliContext, log: Log, app: AppDef, count: number): Promise<void> {
  const sales = app.topics.find((t) => t.name === 'sales');
  if (count === 0 || sales === undefined) return;
  const existing = (await log.topics()).find((t) => t.name === 'sales');
  if (existing !== undefined) {
    for (let p = 0; p < existing.partitions; p++) if ((await log.offsets('sales', p)).end > 0) return;
  } else {
    await log.createTopic('sales', { partitions: sales.partitions, retentionMs: sales.retentionMs });
  }
  ctx.stdout.write(
    `First start: seeding the log with ${count.toLocaleString('en-US')} sales from the last 24 hours (--history 0 skips this)…\n`,
  );
  const startedAt = Date.now();
  const make = salesGenerator(startedAt + 1); // not the live generator's seed: order ids stay unique
  const spacingMs = HISTORY_SPAN_MS / count;
  const from = startedAt - HISTORY_SPAN_MS;
  for (let i = 0; i < count; i += SEED_CHUNK) {
    const n = Math.min(SEED_CHUNK, count - i);
    await log.append('sales', make(n, from + i * spacingMs, spacingMs));
  }
  ctx.stdout.write(
    `Seeded ${count.toLocaleString('en-US')} sales in ${((Date.now() - startedAt) / 1000).toFixed(1)} s.\n`,
  );
}

/** Appends `rate` sales a second until stopped; returns the stop function. */
function generate(log: Log, rate: number, onError: (err: Error) => void): () => Promise<void> {
  const make = salesGenerator();
  let carry = 0;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    carry += (rate * TICK_MS) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    if (n === 0) return;
    running = running.then(() => log.append('sales', make(n, Date.now()))).catch(onError);
  }, TICK_MS);
  return async () => {
    clearInterval(timer);
    await running;
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** A token for this run of the demo when it listens beyond this machine; null on loopback. */
export function demoAccess(host: string | undefined): { token: string; tokens: TokenConfig[] } | null {
  if (host === undefined || LOOPBACK.has(host)) return null;
  const { token, sha256 } = newToken();
  return { token, tokens: [{ name: 'demo', sha256, scopes: ['admin'] }] };
}

/**
 * The server's URL as another machine reaches it: a wildcard address (0.0.0.0, ::) is not one, so
 * it is shown as this machine's first external IPv4 address.
 */
export function reachableUrl(url: string): string {
  const m = /^http:\/\/(0\.0\.0\.0|\[::\]):(\d+)$/.exec(url);
  if (m === null) return url;
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal);
  return `http://${external?.address ?? '127.0.0.1'}:${m[2]}`;
}

/** What the demo prints once it runs: where to look and what to try. */
function banner(
  ctx: CliContext,
  rate: number,
  serverUrl: string | undefined,
  kafka: string | null,
  token: string | null,
): string {
  const url = serverUrl === undefined ? '(no server)' : reachableUrl(serverUrl);
  const sasl =
    token === null
      ? ''
      : ` -X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN -X sasl.username=demo -X sasl.password=${token}`;
  const auth = token === null ? '' : ` -H 'authorization: Bearer ${token}'`;
  const access =
    token === null
      ? []
      : [
          `  This demo listens on ${serverUrl ?? 'the network'}: anyone who can reach it needs this run's token`,
          `  (admin scope; it is not stored, the next run makes another): ${token}`,
          '  Open the dashboard with the link above (the token is in its #fragment, which the browser keeps to',
          '  itself); curl sends it as a header, as below.',
          '',
        ];
  return [
    '',
    `Kappa sales demo: ${rate} sales events a second into ${ctx.dataDir}, the sales pipelines, the HTTP API.`,
    '',
    `  Dashboard   ${url}/${token === null ? '' : `#token=${token}`}`,
    `  Query       npx kappa query "SELECT region, year, total, orders FROM aggregated_sales ORDER BY total DESC"`,
    `  Over HTTP   curl -s${auth} '${url}/v1/views/aggregated_sales?order=-total'`,
    `  Live rows   curl -sN${auth} -H 'accept: text/event-stream' ${url}/v1/views/sales_per_minute/changes`,
    `  Replay      npx kappa replay aggregated_sales   (rebuilds it from the log while the live version keeps serving)`,
    ...(kafka === null
      ? []
      : [`  Kafka       kcat -b ${kafka}${sasl} -C -t sales -o -5 -e   (any Kafka client: see docs/kafka.md)`]),
    '',
    ...access,
    '  Change the logic and watch the rebuild: edit examples/sales/kappa.config.ts (say, make',
    '  aggregated_sales count only orders over 50 with .filter((s) => s.amount > 50)), then run',
    '  npm start again. Kappa sees the new logic, replays the whole log into version 2 beside',
    '  version 1, and swaps them in one step once version 2 has caught up. `npx kappa rollback',
    '  aggregated_sales` goes back.',
    '',
    'Ctrl-C stops; everything is flushed and checkpointed first.',
    '',
  ].join('\n');
}

export async function demoCommand(ctx: CliContext, opts: DemoOptions): Promise<void> {
  const rate = opts.rate ?? 200;
  const access = demoAccess(opts.host);
  // `tokens` joins the config's server.tokens (StartOptions.tokens in start.ts).
  const start: StartOptions & { tokens?: TokenConfig[] } = {
    config: DEMO_CONFIG,
    host: opts.host,
    port: opts.port ?? 8080,
    workers: opts.workers,
    kafkaPort: opts.kafkaPort,
    kafka: opts.kafka,
    flushIntervalMs: 200,
    prepare: (log, app) => seedHistory(ctx, log, app, opts.history ?? DEFAULT_HISTORY),
    ...(access === null ? {} : { tokens: access.tokens }),
  };
  await startCommand(ctx, start, async ({ log, server, kafka }) => {
    const stop = generate(log, rate, (err) =>
      ctx.stderr.write(`kappa: the demo's generator stopped: ${err.message}\n`),
    );
    ctx.stdout.write(banner(ctx, rate, server?.url, kafka?.address ?? null, access?.token ?? null));
    return stop;
  });
}
