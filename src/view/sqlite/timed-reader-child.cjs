// A child process of timed-reader.ts: runs users' read-only queries on its own connection and sends
// the rows back. Everything that can take much time or memory happens here, never in the server:
// - Time: the parent SIGKILLs this process when a query runs past its limit (SQLite cannot be
//   interrupted from JavaScript, and a worker thread stuck in SQLite cannot be terminated).
// - Memory: SQLite builds a value whole (randomblob(3e8) is 300 MB) and better-sqlite3 copies it
//   into JavaScript, and neither can be limited from here (better-sqlite3 exposes no
//   sqlite3_limit, and its build turns off the memory statistics that PRAGMA hard_heap_limit
//   needs). So a watchdog thread checks this process's resident memory every 10 ms while a query
//   runs and ends the process with SIGUSR2 past memoryBytesMax; the parent reports that signal as
//   a result too large.
// - Size: the answer is counted row by row and refused past resultBytesMax before anything is sent
//   (query-limits.cjs), so the server never receives, holds or serialises more than that.
// - Reads: only the views and their version tables (query-limits.cjs checkReads).
//
// argv: better-sqlite3's path, the database, busy timeout (ms), rows max, result bytes max,
// memory bytes max. Messages in: { sql, params }. Out: { ready } once, then per query one of
// { rows }, { refused: { code, message, details } } or { error, code } (SQLite's).
'use strict';
const { Worker } = require('node:worker_threads');
const { checkReads, collectRows } = require('./query-limits.cjs');

const Database = require(process.argv[2]);
const db = new Database(process.argv[3], { readonly: true, fileMustExist: true, timeout: Number(process.argv[4]) });
const rowsMax = Number(process.argv[5]);
const resultBytesMax = Number(process.argv[6]);
const memoryBytesMax = Number(process.argv[7]);

const begin = db.prepare('BEGIN');
const commit = db.prepare('COMMIT');
const watch = memoryWatch(memoryBytesMax);

process.on('message', ({ sql, params }) => {
  watch.arm();
  try {
    process.send(run(sql, params));
  } catch (err) {
    process.send({ error: String(err && err.message), code: err && err.code });
  } finally {
    watch.disarm();
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });

/** One query, in one read transaction so the tables checked are the tables read. */
function run(sql, params) {
  begin.run();
  try {
    const refused = checkReads(db, sql, params);
    if (refused !== null) return { refused };
    const result = collectRows(db.prepare(sql).iterate(...params), rowsMax, resultBytesMax);
    return result.refused === undefined ? { rows: result.rows } : { refused: result.refused };
  } finally {
    if (db.inTransaction) commit.run();
  }
}

/**
 * A thread that sleeps while no query runs and, while one does, ends this process when its
 * resident memory passes `bytesMax`. It shares one Int32 with this thread: 1 while a query runs.
 */
function memoryWatch(bytesMax) {
  const running = new Int32Array(new SharedArrayBuffer(4));
  const source = `
    const { workerData } = require('node:worker_threads');
    const running = workerData.running;
    for (;;) {
      Atomics.wait(running, 0, 0);
      while (Atomics.load(running, 0) === 1) {
        if (process.memoryUsage.rss() > workerData.bytesMax) process.kill(process.pid, 'SIGUSR2');
        Atomics.wait(running, 0, 1, 10);
      }
    }`;
  new Worker(source, { eval: true, workerData: { running, bytesMax } }).unref();
  const set = (value) => {
    Atomics.store(running, 0, value);
    Atomics.notify(running, 0);
  };
  return { arm: () => set(1), disarm: () => set(0) };
}
