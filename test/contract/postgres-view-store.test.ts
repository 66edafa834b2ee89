/**
 * Runs the ViewStore contract on the PostgreSQL adapter, against a real PostgreSQL server this file
 * starts (test/support/postgres.ts), each test on a fresh database; then checks what only
 * PostgreSQL has: the typed layout other tools read, values converted or refused for typed
 * columns, the reader role, limits enforced in the server, several processes on one database,
 * and a server that goes away and comes back.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { RowDelta, ViewStore } from '../../src/view/index.ts';
import { openPostgresStore } from '../../src/view/postgres/index.ts';
import {
  cp,
  freshForEachTest,
  rejectsWith,
  rowsOf,
  sale,
  salesDef,
  versionTable,
} from '../../src/view/test-helpers.ts';
import { defer } from '../support/cleanup.ts';
import { type PostgresHarness, openPostgresHarness, postgresForFile, startPostgres } from '../support/postgres.ts';
import { viewStoreContract } from './view-store.contract.ts';

const server = postgresForFile();

viewStoreContract('PostgreSQL', async () => openPostgresHarness(await server()));

const def = versionTable('sales', {
  keys: ['region TEXT', 'year INTEGER'],
  state: ['total REAL add'],
  outputs: ['total'],
});

/** A delta of `def`. */
const one = (region: string | null, year: number | null, total: number): RowDelta => ({
  key: [region, year],
  state: [total],
});

/** A plain client on the store's database, as psql or Grafana would connect. */
async function psql(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

describe('PostgreSQL view store', () => {
  let h: PostgresHarness;
  freshForEachTest(
    async () => openPostgresHarness(await server()),
    (opened) => (h = opened),
  );

  test('a version is a typed table with a NULLS NOT DISTINCT key, and other tools read the live view by its name', async () => {
    const store = h.store;
    await store.ensureVersion(salesDef());
    await store.flush('sales', 1, [sale(null, 2024, 1), sale('eu', null, 2), sale(null, 2024, 4)], [cp(3)]);
    const client = await psql(h.url);
    try {
      const columns = await client.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'sales__v1' ORDER BY ordinal_position",
      );
      assert.deepEqual(
        columns.rows.map((r) => [r.column_name, r.data_type]),
        [
          ['region', 'text'],
          ['year', 'bigint'],
          ['total', 'double precision'],
          ['orders', 'bigint'],
        ],
      );
      const stored = await client.query('SELECT region, year, total FROM sales__v1 ORDER BY total');
      assert.deepEqual(stored.rows, [
        { region: 'eu', year: null, total: 2 },
        { region: null, year: '2024', total: 5 },
      ]);
      const live = await client.query('SELECT region, avg_amount FROM sales ORDER BY region NULLS FIRST');
      assert.deepEqual(live.rows, [
        { region: null, avg_amount: 2.5 },
        { region: 'eu', avg_amount: 2 },
      ]);
      await store.ensureVersion(salesDef(2, { outputColumns: [{ name: 'revenue', sql: 'CAST(total * 2 AS REAL)' }] }));
      await store.flush('sales', 2, [sale('eu', 2024, 0.1)], []);
      await store.makeLive('sales', 2);
      // SQLite's REAL is 8 bytes; PostgreSQL's 4: the cast is read as double precision, so nothing is rounded.
      assert.deepEqual((await client.query('SELECT * FROM sales')).rows, [
        { region: 'eu', year: '2024', revenue: 0.2 },
      ]);
    } finally {
      await client.end();
    }
  });

  test('values are converted for typed columns where nothing is lost, and refused otherwise with nothing written', async () => {
    const store = h.store;
    const anyDef = versionTable('firsts', {
      keys: ['k TEXT'],
      state: ['v ANY max', 'n INTEGER add'],
      outputs: ['v', 'n'],
    });
    await store.ensureVersion(anyDef);
    const odd = 'say "hi" \\ {a,b} NULL';
    await store.flush(
      'firsts',
      1,
      [
        { key: [7], state: ['x', 1] },
        { key: ['s'], state: [2.5, 2n] },
        { key: [odd], state: [odd, 3] },
        { key: ['NULL'], state: [null, null] },
      ],
      [],
    );
    assert.deepEqual(await rowsOf(store, 'SELECT k, v, n FROM firsts ORDER BY k'), [
      { k: '7', v: 'x', n: 1 },
      { k: 'NULL', v: null, n: null },
      { k: 's', v: 2.5, n: 2 },
      { k: odd, v: odd, n: 3 },
    ]);
    await store.ensureVersion(def);
    await store.flush('sales', 1, [one('eu', 2024, 1)], [cp(1)]);
    for (const bad of [
      { key: ['eu', 2024.5], state: [1] },
      { key: ['eu', 'twenty'], state: [1] },
      { key: ['nul\u0000byte', 2024], state: [1] },
      { key: ['eu', 2024], state: ['ten'] },
    ]) {
      await rejectsWith(
        store.flush('sales', 1, [{ key: ['us', 2024], state: [1] }, bad], [cp(2)]),
        'KAPPA_INVALID_ARGUMENT',
        /Delta 1 .*(year|region|total).*nothing was written/,
      );
    }
    assert.deepEqual(await rowsOf(store, 'SELECT region, total FROM sales'), [{ region: 'eu', total: 1 }]);
    assert.deepEqual(await store.checkpoints('sales', 1), [cp(1)]);
  });

  test('queries run as the reader role: the views, not Kappa’s own tables, nor the server’s files', async () => {
    const store = h.store;
    assert.equal(store.readerRole, 'kappa_reader');
    await store.ensureVersion(def);
    await store.flush('sales', 1, [one('eu', 2024, 3)], [cp(1)]);
    assert.deepEqual(await rowsOf(store, 'SELECT total FROM sales__v1'), [{ total: 3 }]);
    for (const sql of [
      'SELECT * FROM kappa_views',
      'SELECT code FROM kappa_view_code',
      "SELECT pg_read_file('/etc/hostname')",
    ])
      await rejectsWith(store.query(sql), 'KAPPA_QUERY_NOT_A_VIEW');
    // Whatever a query's functions change on the pooled connection is undone before the next query.
    await store.query("SELECT set_config('search_path', 'pg_catalog', false), pg_advisory_lock(42)");
    assert.deepEqual(await rowsOf(store, 'SELECT total FROM sales'), [{ total: 3 }]);
    const client = await psql(h.url);
    try {
      const held = await client.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 42",
      );
      assert.equal(held.rows[0].n, 0, 'the advisory lock a query took was released');
    } finally {
      await client.end();
    }
  });

  test('views made under one reader role answer queries under another', async () => {
    await h.store.ensureVersion(def);
    await h.store.flush('sales', 1, [one('eu', 2024, 4)], []);
    const other = await openPostgresStore({ connectionString: h.url, readerRole: 'kappa_reader_other' });
    try {
      assert.equal(other.readerRole, 'kappa_reader_other');
      assert.deepEqual(await rowsOf(other, 'SELECT total FROM sales'), [{ total: 4 }]);
      assert.deepEqual(await rowsOf(other, 'SELECT total FROM sales__v1'), [{ total: 4 }]);
      await rejectsWith(other.query('SELECT * FROM kappa_checkpoints'), 'KAPPA_QUERY_NOT_A_VIEW');
    } finally {
      await other.close();
    }
  });

  test('a query is stopped in the server past its time limit, and bounded in rows; ? and $1 parameters both work', async () => {
    const store = await h.reopen();
    const t0 = Date.now();
    await rejectsWith(store.query('SELECT pg_sleep(10)', [], { timeoutMs: 200 }), 'KAPPA_QUERY_TIMEOUT', /200 ms/);
    assert.ok(Date.now() - t0 < 5_000, 'stopped well before the sleep ended');
    assert.deepEqual(await rowsOf(store, 'SELECT 1 AS one'), [{ one: 1 }], 'the connection is usable after');
    assert.deepEqual(await rowsOf(store, "SELECT ? AS a, '?' AS literal, $$?$$ AS dollar -- ?\n", ['x']), [
      { a: 'x', literal: '?', dollar: '?' },
    ]);
    assert.deepEqual(await rowsOf(store, 'SELECT $1::int + $2::int AS sum', [2, 3]), [{ sum: 5 }]);
    const few = await openPostgresHarness(await server(), { queryRowsMax: 3 });
    try {
      assert.equal((await few.store.query('SELECT x FROM generate_series(1, 3) AS x')).rows.length, 3);
      await rejectsWith(few.store.query('SELECT x FROM generate_series(1, 4) AS x'), 'KAPPA_SQL_ERROR', /LIMIT/);
    } finally {
      await few.cleanup();
    }
    await rejectsWith(
      store.query("SELECT repeat('x', 1000000) FROM generate_series(1, 40)"),
      'KAPPA_QUERY_RESULT_TOO_LARGE',
      /32 MiB/,
    );
  });

  test('two processes flushing the same view at once (different partitions, overlapping keys) lose nothing', async () => {
    const other = await h.second();
    await h.store.ensureVersion(def);
    await other.ensureVersion(def);
    const keys = Array.from({ length: 500 }, (_, i) => `r${i}`);
    // Each process flushes its own partition in turn, both at once, the keys in different orders.
    const run = async (store: ViewStore, partition: number): Promise<void> => {
      for (let round = 1; round <= 10; round++) {
        const shuffled = [...keys].sort(() => Math.random() - 0.5);
        await store.flush(
          'sales',
          1,
          shuffled.map((r) => one(r, 2024, 1)),
          [cp(round, partition)],
        );
      }
    };
    await Promise.all([run(h.store, 0), run(other, 1)]);
    assert.deepEqual(await rowsOf(h.store, 'SELECT count(*) AS n, sum(total) AS t FROM sales'), [
      { n: 500, t: 10_000 },
    ]);
  });

  test('several processes opening a new database at once all succeed and share one layout', async () => {
    const url = await (await server()).freshDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore({ connectionString: url })));
    try {
      await stores[0].ensureVersion(def);
      await Promise.all(stores.map((s) => s.ensureVersion(def)));
      assert.deepEqual(
        (await stores[3].versions()).map((v) => [v.name, v.version, v.state]),
        [['sales', 1, 'live']],
      );
    } finally {
      for (const s of stores) await s.close();
    }
  });

  test('after a reopen, a version with a custom merge refuses to flush until ensureVersion registers the merge again', async () => {
    const custom = {
      ...def,
      name: 'sets',
      stateColumns: [
        {
          name: 'items',
          type: 'TEXT' as const,
          merge: {
            kind: 'custom' as const,
            merge: (a: unknown, b: unknown) => [...(a as number[]), ...(b as number[])],
          },
        },
      ],
      outputColumns: [{ name: 'items', sql: 'items' }],
    };
    await h.store.ensureVersion(custom);
    await h.store.flush('sets', 1, [{ key: ['eu', 1], state: [[1]] }], []);
    const store = await h.reopen();
    await rejectsWith(
      store.flush('sets', 1, [{ key: ['eu', 1], state: [[2]] }], []),
      'KAPPA_INVALID_ARGUMENT',
      /ensureVersion/,
    );
    await store.ensureVersion(custom);
    await store.flush('sets', 1, [{ key: ['eu', 1], state: [[2]] }], []);
    assert.deepEqual(await rowsOf(store, 'SELECT items FROM sets'), [{ items: '[1,2]' }]);
  });

  test('a view without key columns merges a custom state too', async () => {
    const union = (a: unknown, b: unknown): unknown => [...new Set([...(a as string[]), ...(b as string[])])].sort();
    const keyless = versionTable('seen', {
      state: [{ name: 'tags', type: 'TEXT', merge: { kind: 'custom', merge: union } }, 'n INTEGER add'],
      outputs: ['tags', 'n'],
    });
    await h.store.ensureVersion(keyless);
    await h.store.flush('seen', 1, [{ key: [], state: [['b'], 1] }], []);
    await h.store.flush(
      'seen',
      1,
      [
        { key: [], state: [['a'], 1] },
        { key: [], state: [['c', 'b'], 1] },
      ],
      [],
    );
    await h.store.flush('seen', 1, [], [cp(4)]);
    assert.deepEqual(await rowsOf(h.store, 'SELECT tags, n FROM seen'), [{ tags: '["a","b","c"]', n: 3 }]);
    assert.deepEqual(await h.store.checkpoints('seen', 1), [cp(4)]);
  });

  test('options out of range are refused, and a closed store refuses calls', async () => {
    for (const opts of [
      { connectionString: '' },
      { connectionString: h.url, schema: 'Bad-Schema' },
      { connectionString: h.url, poolSize: 0 },
      { connectionString: h.url, readers: 17 },
      { connectionString: h.url, queryRowsMax: 0 },
    ]) {
      await rejectsWith(openPostgresStore(opts), 'KAPPA_INVALID_ARGUMENT');
    }
    const store = await openPostgresStore({ connectionString: h.url, schema: 'analytics' });
    await store.ensureVersion(def);
    await store.close();
    await store.close();
    await assert.rejects(store.query('SELECT 1'), /closed/);
    const client = await psql(h.url);
    try {
      const found = await client.query("SELECT table_schema FROM information_schema.views WHERE table_name = 'sales'");
      assert.deepEqual(found.rows, [{ table_schema: 'analytics' }]);
    } finally {
      await client.end();
    }
  });
});

describe('PostgreSQL going away', () => {
  test(
    'a call while the server is down fails naming it; once it is back, the same store works again',
    { timeout: 120_000 },
    async (t) => {
      const own = await startPostgres(t);
      const url = await own.freshDatabase();
      const store = await openPostgresStore({ connectionString: url, connectTimeoutMs: 2_000 });
      defer(t, () => store.close());
      await store.ensureVersion(def);
      await store.flush('sales', 1, [one('eu', 2024, 1)], [cp(1)]);
      const down = new RegExp(`PostgreSQL server at 127\\.0\\.0\\.1:${own.port}/`);
      // A query under way when the server stops fails too, and nothing crashes.
      const cut = rejectsWith(store.query('SELECT pg_sleep(30)'), 'KAPPA_STORE_UNAVAILABLE', down);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await own.stop();
      await cut;
      await rejectsWith(store.flush('sales', 1, [one('eu', 2024, 1)], [cp(2)]), 'KAPPA_STORE_UNAVAILABLE', down);
      await rejectsWith(store.query('SELECT * FROM sales'), 'KAPPA_STORE_UNAVAILABLE', down);
      await rejectsWith(store.leases.acquire('t', 'a', 1000), 'KAPPA_STORE_UNAVAILABLE', down);
      await rejectsWith(openPostgresStore({ connectionString: url }), 'KAPPA_STORE_UNAVAILABLE', down);
      await own.start();
      await store.flush('sales', 1, [one('eu', 2024, 1)], [cp(2)]);
      assert.deepEqual(await rowsOf(store, 'SELECT total FROM sales'), [{ total: 2 }]);
      assert.deepEqual(await store.checkpoints('sales', 1), [cp(2)]);
    },
  );

  test(
    'a server that stops answering fails a write after responseTimeoutMs; resumed, the same store goes on',
    { timeout: 120_000 },
    async (t) => {
      const own = await startPostgres(t);
      const url = await own.freshDatabase();
      const store = await openPostgresStore({
        connectionString: url,
        connectTimeoutMs: 1_000,
        responseTimeoutMs: 1_000,
      });
      defer(t, () => store.close());
      await store.ensureVersion(def);
      await store.flush('sales', 1, [one('eu', 2024, 1)], [cp(1)]);
      const down = new RegExp(`PostgreSQL server at 127\\.0\\.0\\.1:${own.port}/`);
      own.pause(); // a network split, or a host that froze: connections open, nothing answers
      try {
        const t0 = Date.now();
        await rejectsWith(store.flush('sales', 1, [one('eu', 2024, 1)], [cp(2)]), 'KAPPA_STORE_UNAVAILABLE', down);
        await rejectsWith(store.leases.acquire('t', 'a', 1_000), 'KAPPA_STORE_UNAVAILABLE', down);
        await rejectsWith(store.query('SELECT * FROM sales', [], { timeoutMs: 500 }), 'KAPPA_STORE_UNAVAILABLE', down);
        assert.ok(Date.now() - t0 < 15_000, `gave up after ${Date.now() - t0} ms`);
      } finally {
        own.resume();
      }
      // The first flush's statements were sent: once the server reads them it may commit them
      // (a write that failed this way has an unknown outcome, which is why a task that sees one
      // takes its lease again and rereads its checkpoint). Either way the store works again.
      await store.flush('sales', 1, [one('eu', 2024, 1)], [cp(3)]);
      const [row] = await rowsOf(store, 'SELECT total FROM sales');
      assert.ok(row.total === 2 || row.total === 3, `total ${row.total}`);
      assert.deepEqual(await store.checkpoints('sales', 1), [cp(3)]);
    },
  );
});
