// What a user's SQL query may read and how much it may answer. Plain CommonJS because the query
// process (timed-reader-child.cjs) runs without tsx; the store's in-process path imports it too
// (query-limits.d.cts gives the types), so both count the same way.
//
// Reads: a query may read the public views and the version tables behind them (`<view>__v<n>`,
// every version the catalog lists, and their indexes), and sqlite_schema (to list the views).
// It may not read Kappa's own tables (kappa_views, kappa_view_code, kappa_checkpoints, …): they
// hold the config each version was built from and other internals. SQLite has no authorizer in
// better-sqlite3, so the check reads the statement's compiled program (EXPLAIN): every b-tree a
// statement opens is an OpenRead (or ReopenIdx) of a root page in a database, and each table and
// index has its own root page in sqlite_schema. Virtual tables (json_each, pragma_table_info,
// dbstat) read no table's rows, except sqlite_dbpage (raw pages), which is refused by name.
// load_extension() needs no check: better-sqlite3 leaves it off for SQL ("not authorized").
//
// Size: the answer is counted as it is built, about as many bytes as its JSON will take (a blob
// is sent as an array of numbers, about 4 characters a byte), and refused once past the limit.
'use strict';

/** The largest answer a query may give, in bytes of JSON (about). */
const RESULT_BYTES_MAX = 32 * 1024 * 1024;
/**
 * The longest SQL text a query may have. The store prepares a statement on the caller's thread to
 * check it is read-only, and SQLite takes about 60 ms to prepare 1 MiB of SQL (1.3 s for 23 MB, a
 * 3-million-value IN list, measured on a loaded 2-core machine); long values go in parameters.
 */
const SQL_CHARS_MAX = 1024 * 1024;

/** About how many bytes `row` adds to the answer's JSON. */
function rowJsonBytes(row) {
  let bytes = 2;
  for (const key in row) bytes += key.length + 4 + valueJsonBytes(row[key]);
  return bytes;
}

function valueJsonBytes(value) {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8') + 2;
  if (value instanceof Uint8Array) return value.length * 4 + 24;
  if (value === null || value === undefined) return 4;
  return 24; // a number or a bigint
}

/** The rows of `iterator`, or a refusal once there are more than `rowsMax` or more than `bytesMax` bytes. */
function collectRows(iterator, rowsMax, bytesMax) {
  const rows = [];
  let bytes = 0;
  for (const row of iterator) {
    if (rows.length === rowsMax) {
      closeIterator(iterator);
      return { refused: tooManyRows(rowsMax) };
    }
    bytes += rowJsonBytes(row);
    if (bytes > bytesMax) {
      closeIterator(iterator);
      return { refused: resultTooLarge(bytesMax) };
    }
    rows.push(row);
  }
  return { rows };
}

function closeIterator(iterator) {
  if (typeof iterator.return === 'function') iterator.return();
}

function tooManyRows(rowsMax) {
  return {
    code: 'KAPPA_SQL_ERROR',
    message: `The query returns more than ${rowsMax} rows; add a LIMIT (and OFFSET to page).`,
    details: { rowsMax },
  };
}

function resultTooLarge(bytesMax) {
  return {
    code: 'KAPPA_QUERY_RESULT_TOO_LARGE',
    message: `The result is larger than ${mib(bytesMax)} MiB, so the query was stopped. Add a LIMIT (and OFFSET to page), or select fewer or smaller columns.`,
    details: { resultBytesMax: bytesMax },
  };
}

function mib(bytes) {
  return Math.round((bytes / (1024 * 1024)) * 10) / 10;
}

/** OPFLAG_P2ISREG (sqliteInt.h): the opcode's p2 names a register holding the root page, not the page. */
const P2_IS_REGISTER = 0x10;

/**
 * Why `db` must not run `sql` with `params` (a refusal `{ code, message, details }`), or null when
 * it reads only what queries may read. Call inside the transaction that runs the statement, so the
 * root pages checked are the ones it reads. (EXPLAIN needs the parameters bound, not their values.)
 */
function checkReads(db, sql, params) {
  if (/sqlite_dbpage/i.test(sql)) return notAView('sqlite_dbpage');
  // EXPLAIN of an EXPLAIN is a syntax error; an EXPLAIN reads no rows, it only lists the program.
  if (startsWithKeyword(sql, 'explain')) return null;
  const allowed = allowedRootPages(db);
  for (const op of db.prepare(`EXPLAIN ${sql}`).all(...params)) {
    if (op.opcode === 'OpenRead' || op.opcode === 'ReopenIdx' || op.opcode === 'OpenWrite') {
      // Database 1 is this connection's temp database: empty, since queries cannot create anything.
      if (
        op.opcode === 'OpenWrite' ||
        (op.p5 & P2_IS_REGISTER) !== 0 ||
        op.p3 > 1 ||
        (op.p3 === 0 && !allowed.has(op.p2))
      )
        return notAView(tableOfRootPage(db, op.p3, op.p2));
    }
  }
  return null;
}

/** Root pages of sqlite_schema and of every version table the catalog lists, with their indexes. */
function allowedRootPages(db) {
  const rows = db
    .prepare(
      `SELECT s.rootpage FROM sqlite_schema AS s JOIN kappa_views AS v ON lower(s.tbl_name) = lower(v.name || '__v' || v.version)
       WHERE s.type IN ('table', 'index') AND s.rootpage > 0`,
    )
    .raw()
    .all();
  const pages = new Set([1]);
  for (const [page] of rows) pages.add(page);
  return pages;
}

function tableOfRootPage(db, database, page) {
  if (database !== 0) return `a table of database ${database}`;
  const row = db.prepare('SELECT tbl_name FROM sqlite_schema WHERE rootpage = ?').raw().get(page);
  return row === undefined ? `the table at page ${page}` : row[0];
}

function notAView(name) {
  return {
    code: 'KAPPA_QUERY_NOT_A_VIEW',
    message: `${name} is not a view; queries can read the views listed by GET /v1/views (and kappa views), their version tables (<view>__v<n>) and sqlite_schema.`,
    details: { table: name },
  };
}

/** True when the first word of `sql`, after whitespace and comments, is `keyword` (sql.ts exports it too). */
function startsWithKeyword(sql, keyword) {
  const rest = sql.replace(/^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?(?:\*\/|$))*/, '');
  return rest.slice(0, keyword.length).toLowerCase() === keyword && !/[a-z0-9_]/i.test(rest.charAt(keyword.length));
}

module.exports = {
  RESULT_BYTES_MAX,
  SQL_CHARS_MAX,
  rowJsonBytes,
  collectRows,
  resultTooLarge,
  checkReads,
  startsWithKeyword,
};
