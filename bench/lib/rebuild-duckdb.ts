/**
 * The rebuild bench's batch layer (bench/rebuild.ts): one DuckDB query, in a process of its own so
 * that its peak RSS is DuckDB's alone, as the engine's is in bench/lib/process-run.ts. Opens an
 * in-memory DuckDB with `threads` threads (not timed, as opening the log and store is not timed on
 * the Kappa side), then times the query from submission until every result row is in JavaScript,
 * which includes reading and parsing the whole JSON Lines file. Prints one JSON line
 * (`DuckFigures`) on stdout.
 *
 *   node --import tsx bench/lib/rebuild-duckdb.ts <json: DuckRequest>
 */
import { performance } from 'node:perf_hooks';
import { DuckDBInstance } from '@duckdb/node-api';
import type { RegionDayRow } from './sales-events.ts';

export interface DuckRequest {
  /** Must select region (VARCHAR), day, amount and orders, in that order. */
  sql: string;
  threads: number;
}

export interface DuckFigures {
  ms: number;
  rows: RegionDayRow[];
  /** process.resourceUsage().maxRSS, in bytes: the whole process, DuckDB's threads included. */
  maxRssBytes: number;
  version: string;
}

async function main(req: DuckRequest): Promise<DuckFigures> {
  const instance = await DuckDBInstance.create(':memory:', { threads: String(req.threads) });
  try {
    const connection = await instance.connect();
    try {
      const version = String((await connection.runAndReadAll('SELECT version()')).getRowsJS()[0][0]);
      const t0 = performance.now();
      const reader = await connection.runAndReadAll(req.sql);
      // BIGINT columns arrive as bigint; 42 rows, so converting them inside the timed span costs nothing.
      const rows = reader.getRowsJS().map(([region, day, amount, orders]) => ({
        region: String(region),
        day: Number(day),
        amount: Number(amount),
        orders: Number(orders),
      }));
      const ms = performance.now() - t0;
      return { ms, rows, maxRssBytes: process.resourceUsage().maxRSS * 1024, version };
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

process.stdout.write(JSON.stringify(await main(JSON.parse(process.argv[2]) as DuckRequest)) + '\n');
