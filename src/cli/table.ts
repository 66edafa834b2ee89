/** Plain-text tables for CLI output: left-aligned columns separated by two spaces. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

export function formatMs(ms: number): string {
  if (ms < 0) return 'forever';
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 0) return 'unlimited';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Epoch milliseconds from 2000 to 2100: a whole number in a time column in this range is a time. */
const TIME_MS_MIN = Date.UTC(2000, 0, 1);
const TIME_MS_MAX = Date.UTC(2100, 0, 1);
/** Column names that hold times: window_start, window_end, ts, atMs, created_at, last_seen_ms… */
const TIME_COLUMN = /(^|_)(start|end|time|ts|at|ms)$|[a-z](At|Ms|Time)$/;

/**
 * A value as a table cell for people: NULL for null; an epoch-ms time in a time column as an ISO
 * time (the number is still what `--json` prints); a fraction to 12 significant digits, which
 * drops the noise binary floating point leaves in sums (945504.3599999986 shows as 945504.36).
 */
export function cellText(column: string, value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) {
    const isTime = TIME_COLUMN.test(column) && value >= TIME_MS_MIN && value < TIME_MS_MAX;
    return isTime ? new Date(value).toISOString() : String(value);
  }
  return Number.isFinite(value) ? String(Number(value.toPrecision(12))) : String(value);
}
