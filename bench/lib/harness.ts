/**
 * What every bench shares: the module contract `bench/run.ts` relies on, a plain-text table, number
 * formatting, and the figures every bench reports (peak RSS). Benches print their own table; the
 * runner prints the figures a bench returns as the last line, so no bench can forget or misplace it.
 */

/** A figure in the final JSON line. Units last in the name: `_per_s`, `_bytes`, `_ms`. */
export type Figure = number | string | boolean;

/** What `bench/<name>.ts` exports. */
export interface BenchModule {
  /** One line for the runner's list of benches. */
  description: string;
  /** Runs the bench with the arguments after its name, prints a readable table, returns the figures. */
  run(args: string[]): Promise<Record<string, Figure>>;
}

/** Bad bench arguments: the runner prints the message alone (no stack trace) and exits with status 1. */
export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

/** Whether `err` is bad input from the command line (ours, or `util.parseArgs` rejecting a flag). */
export function isUsageError(err: unknown): err is Error {
  return (
    err instanceof BenchUsageError || String((err as NodeJS.ErrnoException)?.code ?? '').startsWith('ERR_PARSE_ARGS')
  );
}

/** Renders rows as a table: the first column left-aligned, the others right-aligned (they hold numbers). */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** 1234567.8 → "1,234,568". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes per second as decimal megabytes per second, the unit disks are sold in. */
export function formatMBps(bytesPerS: number): string {
  return (bytesPerS / 1e6).toFixed(1);
}

export function formatMiB(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(0)} MiB`;
}

/** The most resident memory this process has held so far, in bytes (Linux reports KiB). */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** Milliseconds since an arbitrary start, with sub-millisecond resolution. */
export function nowMs(): number {
  return performance.now();
}
