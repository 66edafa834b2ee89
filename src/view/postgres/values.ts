/**
 * Values between JavaScript and PostgreSQL's typed columns, both ways.
 *
 * Into a column (`toColumn`): the port's values are strings, numbers, 64-bit bigints and NULL
 * (../definition.ts checks that much), and SQLite stores each by its column's affinity whatever
 * the declared type. PostgreSQL's columns are strict, so a value is converted where nothing is
 * lost and refused otherwise (the whole flush, before anything is written):
 *   bigint            a whole number within 64 bits (a number or a bigint); anything else refused
 *   double precision  a number (infinities included) or a bigint; a string refused
 *   text              a string; a number or bigint as its decimal text (what SQLite's TEXT
 *                     affinity does: 7 → '7'); a string holding the character U+0000 refused
 *                     (PostgreSQL text cannot hold it)
 *   jsonb (ANY)       a string or a finite number as JSON; a bigint as a JSON number
 * These refusals are the promise PostgreSQL cannot keep exactly: a key column whose type was
 * inferred from a first record as INTEGER cannot take a later record's 2.5 or 'abc', which SQLite
 * would store. The error names the view, the column and the value.
 *
 * Out of a row (`TYPE_PARSERS`): bigint, numeric (sum() of a bigint, avg()) come back as numbers,
 * as better-sqlite3 gives them, not as the strings node-postgres gives by default; a bigint past
 * 2^53 loses precision the same way it does from SQLite. jsonb comes back as the value it holds.
 */
import pg from 'pg';
import type { ColumnType } from '../types.ts';

/** What `toColumn` returns for a value the column cannot hold. */
export const REFUSED = Symbol('refused');

const INT64_LIMIT = 2 ** 63;

export function toColumn(type: ColumnType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'INTEGER':
      if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < INT64_LIMIT ? value : REFUSED;
      return typeof value === 'bigint' ? value.toString() : REFUSED;
    case 'REAL':
      if (typeof value === 'number') return value;
      return typeof value === 'bigint' ? Number(value) : REFUSED;
    case 'TEXT':
      if (typeof value === 'string') return value.includes('\u0000') ? REFUSED : value;
      return typeof value === 'number' || typeof value === 'bigint' ? String(value) : REFUSED;
    case 'ANY':
      if (typeof value === 'string') return value.includes('\u0000') ? REFUSED : JSON.stringify(value);
      if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : REFUSED;
      return typeof value === 'bigint' ? value.toString() : REFUSED;
  }
}

/**
 * The PostgreSQL array literal (`{1,2,NULL}`, `{"a","say \"hi\"",NULL}`) of column `c` of `rows`, whose
 * values `toColumn` converted. Built here rather than by node-postgres's generic array encoder,
 * which escapes element by element and took about twice as long for a 10,000-row flush.
 */
export function arrayLiteral(type: ColumnType, rows: readonly { values: unknown[] }[], c: number): string {
  const quoted = type === 'TEXT' || type === 'ANY';
  let out = '{';
  for (let r = 0; r < rows.length; r++) {
    if (r > 0) out += ',';
    const v = rows[r].values[c];
    if (v === null || v === undefined) out += 'NULL';
    else if (!quoted) out += String(v);
    else {
      const text = v as string;
      out += /["\\]/.test(text) ? `"${text.replace(/["\\]/g, '\\$&')}"` : `"${text}"`;
    }
  }
  return out + '}';
}

/** What a refused value was, for the error message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return String(value);
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

const toNumber = (text: string): number => Number(text);

/** node-postgres's type parsers, with bigint and numeric read as numbers (see the file comment). */
export const TYPE_PARSERS = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return toNumber;
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
} as pg.CustomTypesConfig;
