/**
 * `kappa demo` (what `npm start` runs): the sales demo on the embedded default. It runs
 * `kappa start` with examples/sales/kappa.config.ts — the pipelines, the HTTP API and the dashboard
 * — and a generator that appends realistic sales events at a steady rate (stores in regions,
 * products, quantities, a few refunds, event times a little out of order), until Ctrl-C. The data
 * stays in the data directory, so every other command works on it, during and after.
 */
import { fileURLToPath } from 'node:url';
import type { Log, ProducerRecord } from '../log/index.ts';
import { seededRandom } from '../random.ts';
import type { CliContext } from './main.ts';
import { startCommand } from './start.ts';

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/sales/kappa.config.ts', import.meta.url));

export interface DemoOptions {
  /** Sales events per second (default 200). */
  rate?: number;
  host?: string;
  port?: number;
  workers?: number;
}

const REGIONS = ['north', 'south', 'east', 'west', 'central'];
const STORES = 40;
const SKUS = 500;
/** The generator appends every this many ms. */
const TICK_MS = 100;

/** Sales events as a point-of-sale system would send them. */
export function salesGenerator(seed = Date.now()): (n: number, nowMs: number) => ProducerRecord[] {
  const random = seededRandom(seed);
  let order = 0;
  const prices = Array.from({ length: SKUS }, () => Math.round((2 + random() * 120) * 100) / 100);
  return (n, nowMs) =>
    Array.from({ length: n }, () => {
      const store = Math.floor(random() * STORES);
      const skuIndex = Math.floor(random() * SKUS);
      const qty = 1 + Math.floor(random() * 4);
      const refund = random() < 0.03;
      const sale = {
        orderId: `o-${nowMs.toString(36)}-${order++}`,
        storeId: `s${String(store).padStart(2, '0')}`,
        region: REGIONS[store % REGIONS.length],
        sku: `sku-${skuIndex}`,
        amount: Math.round((refund ? -1 : 1) * prices[skuIndex] * qty * 100) / 100,
        // Point-of-sale clocks and networks: up to 3 s late.
        ts: nowMs - Math.floor(random() * 3000),
      };
      return { key: sale.storeId, value: JSON.stringify(sale), timestamp: sale.ts };
    });
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

export async function demoCommand(ctx: CliContext, opts: DemoOptions): Promise<void> {
  const rate = opts.rate ?? 200;
  await startCommand(
    ctx,
    { config: DEMO_CONFIG, host: opts.host, port: opts.port ?? 8080, workers: opts.workers, flushIntervalMs: 200 },
    async ({ log, server }) => {
      const stop = generate(log, rate, (err) =>
        ctx.stderr.write(`kappa: the demo's generator stopped: ${err.message}\n`),
      );
      const url = server?.url ?? '(no server)';
      ctx.stdout.write(
        [
          '',
          `Kappa sales demo: ${rate} sales events a second into ${ctx.dataDir}, the sales pipelines, the HTTP API.`,
          '',
          `  Dashboard   ${url}/`,
          `  Query       npx kappa query "SELECT region, year, total, orders FROM aggregated_sales ORDER BY total DESC"`,
          `  Over HTTP   curl -s '${url}/v1/views/aggregated_sales?order=-total'`,
          `  Live rows   curl -sN ${url}/v1/views/sales_per_minute/changes`,
          `  Replay      npx kappa replay aggregated_sales   (rebuilds it from the log while the live version keeps serving)`,
          '',
          '  Change the logic and watch the rebuild: edit examples/sales/kappa.config.ts (say, make',
          '  aggregated_sales count only orders over 50 with .filter((s) => s.amount > 50)), then run',
          '  npm start again. Kappa sees the new logic, replays the whole log into version 2 beside',
          '  version 1, and swaps them in one step once version 2 has caught up. `npx kappa rollback',
          '  aggregated_sales` goes back.',
          '',
          'Ctrl-C stops; everything is flushed and checkpointed first.',
          '',
        ].join('\n'),
      );
      return stop;
    },
  );
}
