/**
 * Kappa embedded in your own program, through the package's subpath exports: the file log
 * (`kappa/log`), the SQLite view store (`kappa/sqlite`), the engine (`kappa/engine`) and the HTTP
 * server (`kappa/server`), wired as `kappa start` wires them. It runs the sales example's pipelines,
 * appends a few sales, and reads the AGGREGATED SALES view with its inferred row type.
 * Run: `node --import tsx examples/embed/main.ts [data dir]` (default: a temp directory, removed at the end).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InferRow } from 'kappa';
import { Engine, loadApp } from 'kappa/engine';
import { openFileLog, stderrLogger } from 'kappa/log';
import { startServer } from 'kappa/server';
import { openSqliteStore } from 'kappa/sqlite';
import type { aggregatedSales } from '../sales/kappa.config.ts';

/** { region: string; year: number; total: number; orders: number }, from the view's definition. */
type SalesRow = InferRow<typeof aggregatedSales>;

const given = process.argv[2];
const dir = given ?? mkdtempSync(join(tmpdir(), 'kappa-embed-'));
const configPath = fileURLToPath(new URL('../sales/kappa.config.ts', import.meta.url));
const app = await loadApp(configPath);
const log = await openFileLog({ dir });
const store = await openSqliteStore({ path: join(dir, 'views.db') });
const engine = new Engine({ log, store, control: store, app, configPath, workers: 0, logger: stderrLogger });
await engine.start();
const server = await startServer({ log, store, control: store, app, engine, port: 0 });
try {
  const ts = Date.UTC(2026, 0, 1);
  const sale = (orderId: string, region: string, amount: number): object => {
    return { orderId, storeId: 's1', region, sku: 'p1', amount, ts };
  };
  const records = [sale('o1', 'north', 12.5), sale('o2', 'north', 7.5), sale('o3', 'south', 3)];
  await log.append(
    'sales',
    records.map((value) => ({ key: 's1', value: Buffer.from(JSON.stringify(value)) })),
  );
  // The view catches up within a flush interval; wait for both regions' rows.
  let rows: SalesRow[] = [];
  for (let tries = 0; rows.length < 2 && tries < 100; tries++) {
    await new Promise((r) => setTimeout(r, 100));
    const result = await store.query('SELECT region, year, total, orders FROM aggregated_sales ORDER BY region');
    rows = result.rows as SalesRow[];
  }
  for (const r of rows) process.stdout.write(`${r.region} ${r.year}: ${r.total.toFixed(2)} over ${r.orders} orders\n`);
  process.stdout.write(`the same over HTTP: ${server.url}/v1/views/aggregated_sales\n`);
} finally {
  await server.close();
  await engine.stop();
  await store.close();
  await log.close();
  if (given === undefined) rmSync(dir, { recursive: true, force: true });
}
