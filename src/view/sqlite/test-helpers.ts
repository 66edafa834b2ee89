/**
 * Helpers shared by the SQLite adapter's tests (the contract runs in test/contract and the unit
 * tests beside this file): stores on real database files, each in its own directory under one
 * temp dir that is removed when the test file ends. Nothing in the adapter imports this file, and
 * the build leaves it out.
 */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SqliteStore, type SqliteStoreOptions, openSqliteStore } from './sqlite-store.ts';

/** One store's data: the store open on it, a way to reopen it and to open a second handle. */
export interface SqliteHarness {
  path: string;
  /** The store last opened by `reopen` (or the first one). */
  readonly store: SqliteStore;
  /** Closes the store last returned and opens a new one on the same file. */
  reopen(): Promise<SqliteStore>;
  /** Another store on the same file, open beside `store` (as another process would have it); closed by `cleanup`. */
  second(): Promise<SqliteStore>;
  /** Closes every store it opened and removes the data. */
  cleanup(): Promise<void>;
  /** SQLite statements that would change data or the reader's connection: `query` must refuse each. */
  dialectWrites: string[];
}

export type HarnessOptions = Omit<SqliteStoreOptions, 'path'>;

export class SqliteTestStores {
  private readonly root = mkdtempSync(join(tmpdir(), 'kappa-view-store-'));
  private seq = 0;

  constructor() {
    after(() => rmSync(this.root, { recursive: true, force: true }));
  }

  /** A database path in a new directory (not created yet). */
  freshPath(label = 'db'): string {
    return join(this.root, `${label}-${this.seq++}`, 'views.sqlite');
  }

  async open(opts: HarnessOptions = {}): Promise<SqliteHarness> {
    const path = this.freshPath();
    const dir = join(path, '..');
    let current = await openSqliteStore({ path, ...opts });
    const others: SqliteStore[] = [];
    return {
      path,
      get store() {
        return current;
      },
      async reopen() {
        await current.close();
        current = await openSqliteStore({ path, ...opts });
        return current;
      },
      async second() {
        const other = await openSqliteStore({ path, ...opts });
        others.push(other);
        return other;
      },
      async cleanup() {
        for (const store of [current, ...others]) await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
      dialectWrites: dialectWrites(dir),
    };
  }
}

function dialectWrites(dir: string): string[] {
  return [
    `ATTACH '${join(dir, 'other.sqlite')}' AS other`,
    'DETACH main',
    'PRAGMA user_version = 7',
    'PRAGMA journal_mode = DELETE',
    'PRAGMA locking_mode = EXCLUSIVE',
    'PRAGMA query_only = 0',
    '/* comment */ pragma writable_schema = 1',
    'BEGIN',
    'BEGIN IMMEDIATE',
    'SAVEPOINT s',
    `VACUUM INTO '${join(dir, 'copy.sqlite')}'`,
    'VACUUM',
    'ANALYZE',
    'REINDEX',
    "REPLACE INTO sales__v1 (region, year, total, orders) VALUES ('x', 1, 1, 1)",
    'WITH x AS (SELECT 1) DELETE FROM sales__v1',
    'CREATE TEMP TABLE t (x)',
    'CREATE TRIGGER evil AFTER INSERT ON kappa_views BEGIN DELETE FROM kappa_checkpoints; END',
  ];
}
