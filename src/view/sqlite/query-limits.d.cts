// Types of query-limits.cjs (plain CommonJS so the query process can load it without tsx).

/** A refusal as the query process sends it: becomes a KappaError with this code. */
export interface Refusal {
  code: 'KAPPA_SQL_ERROR' | 'KAPPA_QUERY_RESULT_TOO_LARGE' | 'KAPPA_QUERY_NOT_A_VIEW';
  message: string;
  details: Record<string, unknown>;
}

/** The largest answer a query may give, in bytes of JSON (about). */
export const RESULT_BYTES_MAX: number;
/** The longest SQL text a query may have, in characters. */
export const SQL_CHARS_MAX: number;
/** About how many bytes `row` adds to the answer's JSON. */
export function rowJsonBytes(row: Record<string, unknown>): number;
/** The rows of `iterator`, or a refusal once there are more than `rowsMax` or more than `bytesMax` bytes. */
export function collectRows(
  iterator: Iterable<Record<string, unknown>>,
  rowsMax: number,
  bytesMax: number,
): { rows: Record<string, unknown>[]; refused?: undefined } | { rows?: undefined; refused: Refusal };
export function resultTooLarge(bytesMax: number): Refusal;
/** Why `db` must not run `sql` with `params`, or null when it reads only the views. */
export function checkReads(db: unknown, sql: string, params: unknown[]): Refusal | null;
/** True when the first word of `sql`, after whitespace and comments, is `keyword`. */
export function startsWithKeyword(sql: string, keyword: string): boolean;
