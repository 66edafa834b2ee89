import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { versionTable } from '../test-helpers.ts';
import { createTableSql, publicSelectSql, startsWithKeyword, upsertSql } from './sql.ts';

/** Column names that are SQL keywords, to check the quoting. */
const def = versionTable('v', {
  version: 2,
  keys: ['k INTEGER'],
  state: ['order INTEGER add', 'group TEXT latest at', 'at INTEGER max'],
  outputs: ['select = "order" * 2'],
});

describe('SQLite statements of a view version', () => {
  test('the table is keyed by its key columns and quotes names that are SQL keywords', () => {
    assert.equal(
      createTableSql(def),
      'CREATE TABLE "v__v2" ("k" INTEGER NOT NULL, "order" INTEGER, "group" TEXT, "at" INTEGER, PRIMARY KEY ("k")) WITHOUT ROWID',
    );
  });

  test('the statements run on a real database: keyword names, NULL keys decoded by the public select', () => {
    const db = new Database(':memory:');
    try {
      db.exec(createTableSql(def));
      const upsert = db.prepare(upsertSql(def));
      upsert.run([Buffer.alloc(0), 1, 'a', 10]);
      upsert.run([Buffer.alloc(0), 2, 'b', 5]);
      upsert.run([7, 1, 'c', 1]);
      assert.deepEqual(db.prepare(`${publicSelectSql(def)} ORDER BY k`).all(), [
        { k: null, select: 6 },
        { k: 7, select: 2 },
      ]);
      assert.deepEqual(db.prepare('SELECT "group", at FROM v__v2 WHERE k = x\'\'').get(), { group: 'a', at: 10 });
    } finally {
      db.close();
    }
  });

  test('the first keyword is found after whitespace and comments', () => {
    assert.equal(startsWithKeyword('  pragma x', 'pragma'), true);
    assert.equal(startsWithKeyword('-- note\n/* block\n */ PRAGMA(x)', 'pragma'), true);
    assert.equal(startsWithKeyword('SELECT 1 -- pragma', 'pragma'), false);
    assert.equal(startsWithKeyword('pragmatic', 'pragma'), false);
    assert.equal(startsWithKeyword('/* unterminated pragma', 'pragma'), false);
  });
});
