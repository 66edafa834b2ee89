// A child process of timed-reader.ts: runs read-only queries on its own connection and sends the
// rows back. It is SIGKILLed when a query runs past its time limit (SQLite cannot be interrupted
// from JavaScript, and a worker thread stuck in SQLite cannot be terminated).
'use strict';
const Database = require(process.argv[2]);
const db = new Database(process.argv[3], { readonly: true, fileMustExist: true, timeout: Number(process.argv[4]) });
const rowsMax = Number(process.argv[5]);
process.on('message', ({ sql, params }) => {
  try {
    const rows = [];
    for (const row of db.prepare(sql).iterate(...params)) {
      if (rows.length === rowsMax) {
        process.send({ tooMany: true });
        return;
      }
      rows.push(row);
    }
    process.send({ rows });
  } catch (err) {
    process.send({ error: String(err && err.message), code: err && err.code });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
