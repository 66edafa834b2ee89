/**
 * Runs the ViewStore contract on the SQLite adapter with real database files in a temp dir, then
 * checks what only SQLite has: the on-disk encoding, WAL, its dialect's writes, lock handling, and
 * the one database file both ports share (writes of either port queue behind a flush; a drop
 * forgets the version's code and build). The ControlStore contract runs in
 * ./sqlite-control-store.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { isKappaError } from '../../src/errors.ts';
import type { VersionTable } from '../../src/view/index.ts';
import { type SqliteStore, openSqliteStore } from '../../src/view/sqlite/index.ts';
import { type SqliteHarness, SqliteTestStores } from '../../src/view/sqlite/test-helpers.ts';
import {
  cp,
  freshForEachTest,
  rejectsWith,
  rowsOf,
  sale,
  salesDef,
  versionTable,
} from '../../src/view/test-helpers.ts';
import { build } from './control-store.contract.ts';
import { viewStoreContract } from './view-store.contract.ts';

const stores = new SqliteTestStores();

viewStoreContract('SQLite', () => stores.open());
viewStoreContract('SQLite with 3 readers', () => stores.open({ readers: 3 }));

const def = versionTable('sales', {
  keys: ['region TEXT', 'year INTEGER'],
  state: ['total REAL add'],
  outputs: ['total'],
});

describe('SQLite view store', () => {
  async function withStore(
    fn: (store: SqliteStore, path: string) => Promise<void>,
    opts: { busyTimeoutMs?: number } = {},
  ): Promise<void> {
    const h = await stores.open(opts);
    try {
      await fn(h.store, h.path);
    } finally {
      await h.cleanup();
    }
  }

  test('the database is in WAL mode and keeps the catalog tables the design names', async () => {
    await withStore(async (store, path) => {
      const raw = new Database(path, { readonly: true });
      try {
        assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        raw.close();
      }
      const columns = async (table: string) =>
        (await store.query('SELECT name FROM pragma_table_info(?) ORDER BY cid', [table])).rows.map((r) => r.name);
      assert.deepEqual(await columns('kappa_views'), [
        'name',
        'version',
        'state',
        'fingerprint',
        'definition_json',
        'created_at',
        'live_at',
      ]);
      assert.deepEqual(await columns('kappa_checkpoints'), [
        'view',
        'version',
        'topic',
        'partition',
        'offset',
        'watermark',
        'output_sequence',
      ]);
    });
  });

  test('a version is a typed table keyed by its key columns, and a NULL key is stored as the empty BLOB', async () => {
    await withStore(async (store) => {
      await store.ensureVersion(def);
      await store.flush(
        'sales',
        1,
        [
          { key: [null, 2024], state: [1] },
          { key: ['', 2024], state: [2] },
        ],
        [],
      );
      const info = await store.query('SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid', ['sales__v1']);
      assert.deepEqual(info.rows, [
        { name: 'region', type: 'TEXT', pk: 1 },
        { name: 'year', type: 'INTEGER', pk: 2 },
        { name: 'total', type: 'REAL', pk: 0 },
      ]);
      const stored = await store.query('SELECT typeof(region) AS t, total FROM sales__v1 ORDER BY total');
      assert.deepEqual(stored.rows, [
        { t: 'blob', total: 1 },
        { t: 'text', total: 2 },
      ]);
    });
  });

  test('queries and flushes do not wait for each other; another process holding the write lock fails a flush with KAPPA_DATA_DIR_LOCKED', async () => {
    await withStore(
      async (store, path) => {
        await store.ensureVersion(def);
        await store.flush('sales', 1, [{ key: ['eu', 2024], state: [1] }], []);
        const other = new Database(path);
        try {
          other.exec('BEGIN IMMEDIATE');
          other.exec("INSERT INTO sales__v1 VALUES ('us', 2024, 5)");
          const t0 = Date.now();
          assert.deepEqual(
            (await store.query('SELECT region FROM sales')).rows,
            [{ region: 'eu' }],
            'the reader sees the last committed state',
          );
          assert.ok(Date.now() - t0 < 40, 'the reader did not wait for the lock');
          await assert.rejects(store.flush('sales', 1, [{ key: ['eu', 2024], state: [1] }], []), (err: unknown) =>
            isKappaError(err, 'KAPPA_DATA_DIR_LOCKED'),
          );
          other.exec('ROLLBACK');
        } finally {
          other.close();
        }
        await store.flush('sales', 1, [{ key: ['eu', 2024], state: [1] }], []);
        assert.deepEqual((await store.query('SELECT region, total FROM sales')).rows, [{ region: 'eu', total: 2 }]);
      },
      { busyTimeoutMs: 50 },
    );
  });

  test('after a reopen, a version with a custom merge refuses to flush until ensureVersion registers the merge again', async () => {
    const h = await stores.open();
    try {
      const custom: VersionTable = {
        ...def,
        name: 'sets',
        stateColumns: [
          {
            name: 'items',
            type: 'TEXT',
            merge: { kind: 'custom', merge: (a, b) => [...(a as number[]), ...(b as number[])] },
          },
        ],
        outputColumns: [{ name: 'items', sql: 'items' }],
      };
      await h.store.ensureVersion(custom);
      await h.store.flush('sets', 1, [{ key: ['eu', 1], state: [[1]] }], []);
      const store = await h.reopen();
      assert.equal((await store.definition('sets', 1))?.stateColumns[0].merge.kind, 'custom');
      await assert.rejects(
        store.flush('sets', 1, [{ key: ['eu', 1], state: [[2]] }], []),
        (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && /ensureVersion/.test(err.message),
      );
      await store.ensureVersion(custom);
      await store.flush('sets', 1, [{ key: ['eu', 1], state: [[2]] }], []);
      assert.deepEqual((await store.query('SELECT items FROM sets')).rows, [{ items: '[1,2]' }]);
      assert.equal(await store.definition('sets', 2), null);
    } finally {
      await h.cleanup();
    }
  });

  test('a query returning more than queryRowsMax rows fails and asks for a LIMIT', async () => {
    const path = stores.freshPath('rows-max');
    const store = await openSqliteStore({ path, queryRowsMax: 3 });
    try {
      const upTo = (n: number) =>
        `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ${n}) SELECT x FROM n`;
      assert.equal((await store.query(upTo(3))).rows.length, 3);
      await assert.rejects(
        store.query(upTo(4)),
        (err: unknown) => isKappaError(err, 'KAPPA_SQL_ERROR') && /LIMIT/.test(err.message),
      );
    } finally {
      await store.close();
    }
  });

  test('options out of range are refused', async () => {
    const path = stores.freshPath('opts');
    for (const opts of [{ path: ':memory:' }, { path, readers: 0 }, { path, readers: 17 }, { path, queryRowsMax: 0 }]) {
      await assert.rejects(openSqliteStore(opts), (err: unknown) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT'));
    }
  });

  test('a store refuses calls once closed', async () => {
    const path = stores.freshPath('closed');
    const store = await openSqliteStore({ path });
    await store.close();
    await store.close();
    await assert.rejects(store.query('SELECT 1'), /closed/);
  });
});

describe('SQLite: one database file serves both ports', () => {
  let h: SqliteHarness;
  let store: SqliteStore;
  freshForEachTest(
    () => stores.open(),
    (opened) => {
      h = opened;
      store = opened.store;
    },
  );

  test('writes that arrive while a large flush is under way wait for it and all land', async () => {
    await store.ensureVersion(salesDef());
    await store.ensureVersion({ ...salesDef(), name: 'other', fingerprint: 'other-fp' });
    const many = Array.from({ length: 3_500 }, (_, i) => sale(`r${i}`, 2024, 1));
    const results = await Promise.all([
      store.flush('sales', 1, many, [cp(1)]),
      store.flush('other', 1, [sale('eu', 2024, 2)], [cp(1)]),
      store.flush('sales', 1, [sale('r0', 2024, 10)], [cp(2)]),
      store.saveCode('sales', 1, 'code'),
      store.addRequest('sales', 'replay', null),
    ]);
    assert.equal(typeof results[4], 'number');
    assert.equal((await rowsOf(store, 'SELECT count(*) AS n, sum(total) AS t FROM sales'))[0].n, 3_500);
    assert.equal((await rowsOf(store, 'SELECT sum(total) AS t FROM sales'))[0].t, 3_510);
    assert.deepEqual(await rowsOf(store, 'SELECT region, total FROM other'), [{ region: 'eu', total: 2 }]);
    assert.deepEqual(await store.checkpoints('sales', 1), [cp(2)]);
    assert.equal(await store.code('sales', 1), 'code');
  });

  test('a version keeps its code; dropVersion removes its code and build record', async () => {
    await store.ensureVersion(salesDef(1));
    await store.ensureVersion(salesDef(2));
    assert.equal(await store.code('sales', 2), null);
    await store.saveCode('sales', 2, 'export default 1;');
    await store.saveCode('sales', 2, 'export default 2;');
    assert.equal(await store.code('sales', 2), 'export default 2;');
    await store.saveBuild(build(2, 10));
    await store.saveBuild(build(2, 40));
    assert.deepEqual(await store.builds(), [build(2, 40)]);
    store = await h.reopen();
    assert.equal(await store.code('sales', 2), 'export default 2;', 'the code survives reopening');
    await store.dropVersion('sales', 2);
    assert.equal(await store.code('sales', 2), null);
    assert.deepEqual(await store.builds(), []);
    await rejectsWith(store.saveCode('sales', 1, ''), 'KAPPA_INVALID_ARGUMENT');
  });

  test('dropView forgets the code and build record of every version, a build with no catalog row too', async () => {
    await store.ensureVersion(salesDef(1));
    await store.ensureVersion(salesDef(2));
    for (const v of [1, 2, 3]) await store.saveCode('sales', v, `export default ${v};`);
    // v3 is a build that has not written its first rows: it has a build record and code, no catalog row.
    await store.saveBuild(build(3, 5));
    assert.deepEqual(await store.dropView('sales'), [1, 2, 3]);
    for (const v of [1, 2, 3]) assert.equal(await store.code('sales', v), null, `code of v${v}`);
    assert.deepEqual(await store.builds(), []);
    assert.deepEqual(await store.versions(), []);
  });
});
