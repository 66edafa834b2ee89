/**
 * The rebuild bench's sizes (bench/rebuild.ts): what one size's measurement holds, the names sizes
 * take in the figures, which sizes the target is judged at, and the console report across sizes
 * (one table row per size and system, how events/s holds as the log grows, the targets table).
 */
import { type Figure, formatCount, formatMBps, formatMiB, formatTable } from './harness.ts';

export const TARGET_RATIO_VS_DUCKDB_MAX = 2;
/** The sizes the ratio target is judged at (the issue's); when none is run, the largest size run. */
const TARGET_SIZES = [10_000_000, 30_000_000];

/** One timed run of either side. */
export interface Run {
  ms: number;
  rssPeakBytes: number;
  rows: number;
}

/** One size's measurement: the fastest run of each side. */
export interface SizeResult {
  events: number;
  kappa: Run;
  duck: Run;
  version: string;
  logBytes: number;
  jsonlBytes: number;
}

/** A size as it appears in figure names: 1000000 → "1m", 40000 → "40k". */
export function sizeLabel(events: number): string {
  if (events % 1_000_000 === 0) return `${events / 1_000_000}m`;
  if (events % 1000 === 0) return `${events / 1000}k`;
  return String(events);
}

export function perS(r: SizeResult, run: Run): number {
  return (r.events / run.ms) * 1000;
}

export function ratioOf(r: SizeResult): number {
  return r.kappa.ms / r.duck.ms;
}

export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** The sizes the target is judged at: 10M and 30M when run, else the largest size run. */
export function judgedSizes(results: SizeResult[]): SizeResult[] {
  const judged = results.filter((r) => TARGET_SIZES.includes(r.events));
  return judged.length > 0 ? judged : [results[results.length - 1]];
}

/** One row per size and system. */
export function printSizesTable(workers: number, results: SizeResult[]): void {
  const mbPerS = (bytes: number, run: Run): string => formatMBps((bytes / run.ms) * 1000);
  const rows: string[][] = [];
  for (const r of results) {
    rows.push([
      `Kappa: engine, ${workers} worker${workers === 1 ? '' : 's'}`,
      formatCount(r.events),
      `log, ${formatMBps(r.logBytes)} MB`,
      (r.kappa.ms / 1000).toFixed(2),
      formatCount(perS(r, r.kappa)),
      mbPerS(r.logBytes, r.kappa),
      formatMiB(r.kappa.rssPeakBytes),
      String(r.kappa.rows),
      `${ratioOf(r).toFixed(2)} ×`,
    ]);
    rows.push([
      `DuckDB ${r.version}, ${workers} thread${workers === 1 ? '' : 's'}`,
      formatCount(r.events),
      `JSON Lines, ${formatMBps(r.jsonlBytes)} MB`,
      (r.duck.ms / 1000).toFixed(2),
      formatCount(perS(r, r.duck)),
      mbPerS(r.jsonlBytes, r.duck),
      formatMiB(r.duck.rssPeakBytes),
      String(r.duck.rows),
      '',
    ]);
  }
  const header = ['system', 'events', 'reads', 'seconds', 'events/s', 'MB/s read', 'peak RSS', 'rows', 'Kappa/DuckDB'];
  console.log(formatTable(header, rows));
}

/**
 * Prints how events/s changes with the log's size, and returns the linearity figures: events/s at
 * the largest size as a fraction of events/s at the next size down (none with one size).
 */
export function printLinearity(results: SizeResult[]): Record<string, Figure> {
  const rates = (pick: (r: SizeResult) => Run): string =>
    results.map((r) => `${sizeLabel(r.events)} ${formatCount(perS(r, pick(r)))}`).join(', ');
  console.log(`\nevents/s by log size: Kappa ${rates((r) => r.kappa)}; DuckDB ${rates((r) => r.duck)}.`);
  if (results.length < 2) {
    console.log(
      'Linearity: one size only, so no figure (run several sizes to see how events/s holds as the log grows).',
    );
    return {};
  }
  const big = results[results.length - 1];
  const small = results[results.length - 2];
  const kappa = perS(big, big.kappa) / perS(small, small.kappa);
  const duck = perS(big, big.duck) / perS(small, small.duck);
  const name = `${sizeLabel(big.events)}_vs_${sizeLabel(small.events)}`;
  console.log(
    `Linearity, events/s at ${formatCount(big.events)} events as a fraction of events/s at ${formatCount(small.events)}` +
      ` (1.00: the cost grows exactly as the log; below 1: the cost grows faster than the log): Kappa ${kappa.toFixed(2)}, DuckDB ${duck.toFixed(2)}.`,
  );
  return { [`linearity_${name}`]: round2(kappa), [`duckdb_linearity_${name}`]: round2(duck) };
}

/** Prints the targets table, one row per judged size, and returns whether every judged size met it. */
export function printTargets(results: SizeResult[], judged: SizeResult[]): boolean {
  const unjudged = results.filter((r) => !judged.includes(r));
  if (unjudged.length > 0) {
    console.log(
      `Not judged against the target: ${unjudged.map((r) => formatCount(r.events)).join(', ')} events (reported for the rate's growth; at small sizes the time is largely start-up).`,
    );
  }
  const rows = judged.map((r) => [
    `Kappa rebuild ≤ ${TARGET_RATIO_VS_DUCKDB_MAX} × DuckDB's time, ${formatCount(r.events)} events`,
    `${ratioOf(r).toFixed(2)} ×`,
    ratioOf(r) <= TARGET_RATIO_VS_DUCKDB_MAX ? 'met' : 'MISSED',
  ]);
  console.log('');
  console.log(formatTable(['target', 'measured', 'result'], rows));
  return judged.every((r) => ratioOf(r) <= TARGET_RATIO_VS_DUCKDB_MAX);
}
