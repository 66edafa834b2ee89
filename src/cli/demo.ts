/**
 * `kappa demo` (what `npm start` runs until the full sales demo exists): a tour of the event log.
 * It produces realistic sales events keyed by store, reads every one back and checks the totals,
 * finds offsets by time, and tells the user what to try next. Everything it does is real: the data
 * stays in the data directory for the other commands to inspect.
 */
import { KappaError, isKappaError } from '../errors.ts';
import type { FileLog } from '../log/index.ts';
import type { CliContext } from './main.ts';
import { openForWriting } from './open.ts';
import { formatTable } from './table.ts';
import { seededRandom } from '../random.ts';

const REGIONS = ['north', 'south', 'east', 'west', 'central'];
const IN_FLIGHT_MAX = 4;
const BATCH_RECORDS = 1000;

interface Sale {
  orderId: string;
  storeId: string;
  region: string;
  sku: string;
  amount: number;
  ts: number;
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

async function ensureTopic(log: FileLog, out: NodeJS.WritableStream): Promise<void> {
  try {
    await log.createTopic('sales', { partitions: 4 });
    out.write('  created topic "sales" with 4 partitions (kept forever: the log is the history)\n');
  } catch (err) {
    if (!isKappaError(err, 'KAPPA_TOPIC_EXISTS')) throw err;
    out.write('  topic "sales" already exists; adding more events to it\n');
  }
}

export async function demoCommand(ctx: CliContext, opts: { records: number }): Promise<void> {
  const out = ctx.stdout;
  out.write(`Kappa demo: the event log (data in ${ctx.dataDir})\n\n`);
  const log = await openForWriting(ctx.dataDir);
  try {
    await ensureTopic(log, out);
    const before = await Promise.all([0, 1, 2, 3].map((p) => log.offsets('sales', p)));

    // Produce: events over the last hour, keyed by store so each store's sales stay in order.
    const random = seededRandom(42);
    const now = Date.now();
    const expected = new Map<string, { orders: number; revenue: number }>();
    const started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < opts.records; i += BATCH_RECORDS) {
      const batch = [];
      for (let j = i; j < Math.min(i + BATCH_RECORDS, opts.records); j++) {
        const store = Math.floor(random() * 200);
        const sale: Sale = {
          orderId: `o-${now}-${j}`,
          storeId: `store-${store}`,
          region: REGIONS[store % REGIONS.length],
          sku: `sku-${Math.floor(random() * 10_000)}`,
          amount: Math.round((5 + random() * 195) * 100) / 100,
          ts: now - 3_600_000 + Math.floor((j / opts.records) * 3_600_000),
        };
        const e = expected.get(sale.region) ?? { orders: 0, revenue: 0 };
        e.orders++;
        e.revenue += sale.amount;
        expected.set(sale.region, e);
        batch.push({ key: sale.storeId, value: JSON.stringify(sale), timestamp: sale.ts });
      }
      const p = log.append('sales', batch);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const produceS = (performance.now() - started) / 1000;
    out.write(`  produced ${fmt(opts.records)} sales events in ${produceS.toFixed(2)} s (${fmt(Math.round(opts.records / produceS))} events/s), each acknowledged only after fsync\n`);

    // Read back every new event, CRC-checked, and fold it into totals by region.
    const readStarted = performance.now();
    const seen = new Map<string, { orders: number; revenue: number }>();
    let read = 0;
    for (let p = 0; p < 4; p++) {
      for await (const batch of log.read('sales', p, before[p].end)) {
        for (const r of batch.records(before[p].end)) {
          const sale = JSON.parse(r.value!.toString('utf8')) as Sale;
          const s = seen.get(sale.region) ?? { orders: 0, revenue: 0 };
          s.orders++;
          s.revenue += sale.amount;
          seen.set(sale.region, s);
          read++;
        }
      }
    }
    const readS = (performance.now() - readStarted) / 1000;
    const match = read === opts.records && REGIONS.every((r) => seen.get(r)?.orders === expected.get(r)?.orders && Math.abs((seen.get(r)?.revenue ?? 0) - (expected.get(r)?.revenue ?? 0)) < 0.01);
    if (!match) throw new KappaError('KAPPA_CORRUPT_DATA', `the demo read back ${read} events but produced ${opts.records}, or the totals differ; run \`kappa verify\``);
    out.write(`  read them back in ${readS.toFixed(2)} s (${fmt(Math.round(read / readS))} events/s, every batch CRC-checked); totals by region match what was produced:\n\n`);
    const rows = REGIONS.map((r) => [r, fmt(seen.get(r)!.orders), fmt(Math.round(seen.get(r)!.revenue))]);
    out.write(indent(formatTable(['REGION', 'ORDERS', 'REVENUE'], rows)) + '\n');

    // Offsets by partition, and a time lookup through the time index.
    const tenMinutesAgo = now - 10 * 60_000;
    const partRows = [];
    for (let p = 0; p < 4; p++) {
      const o = await log.offsets('sales', p);
      partRows.push([p, fmt(o.start), fmt(o.end), fmt(await log.offsetForTime('sales', p, tenMinutesAgo))]);
    }
    out.write(indent(formatTable(['PARTITION', 'FIRST OFFSET', 'END OFFSET', 'FIRST OFFSET OF THE LAST 10 MIN'], partRows)) + '\n');
  } finally {
    await log.close();
  }
  const dirFlag = ctx.dataDir === process.cwd() + '/.kappa' ? '' : ` --data-dir ${ctx.dataDir}`;
  const since = new Date(Date.now() - 5 * 60_000).toISOString();
  out.write(
    'Try next:\n' +
      `  npx kappa topics describe sales${dirFlag}\n` +
      `  npx kappa consume sales --limit 3 --with-meta${dirFlag}\n` +
      `  npx kappa consume sales --partition 0 --from @${since} --limit 3${dirFlag}\n` +
      `  echo '{"storeId":"store-7","region":"west","amount":12.5}' | npx kappa produce sales --key-field storeId${dirFlag}\n` +
      `  npx kappa verify${dirFlag}\n`,
  );
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l ? `    ${l}` : l))
    .join('\n');
}
