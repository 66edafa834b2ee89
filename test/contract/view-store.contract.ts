/**
 * The `ViewStore` contract: what every adapter (SQLite: ./sqlite-view-store.test.ts; PostgreSQL:
 * ./postgres-view-store.test.ts) must do, written against the port only (src/view/view-store.ts
 * states the promises). An adapter's test file calls `viewStoreContract` with a factory that opens
 * a fresh, empty store on real storage. The control store's promises have their own suite
 * (./control-store.contract.ts).
 *
 * What it pins down: versions (create, idempotency, conflicts, live/building/retired, swap, drop),
 * how each merge rule folds deltas (within one flush and across flushes, with NULLs), checkpoints
 * committed with the rows, never backwards and kept across reopen, all-or-nothing flushes, and
 * read-only queries that never wait for the writer, and two versions compared (`diffVersions`: the
 * same answer, rows in the same order, on every adapter).
 *
 * Where PostgreSQL keeps a promise differently (every test below passes on both; these are the
 * edges the suite does not pin, said here rather than skipped):
 * - Column types: SQLite stores any scalar in any column by affinity; PostgreSQL's columns are
 *   strict, so a value is converted where nothing is lost (a number into TEXT as its decimal text)
 *   and otherwise the whole flush is refused with KAPPA_INVALID_ARGUMENT, nothing written (2.5 or
 *   'abc' into an INTEGER key, a string containing U+0000). ANY columns are jsonb there.
 * - "Refused before it runs": PostgreSQL refuses writing commands by their words before sending
 *   them; a function that writes (`SELECT lo_create(0)`) is refused by the read-only transaction
 *   while it runs (the same KAPPA_QUERY_NOT_READ_ONLY, nothing changed); a function that changes
 *   the session (`set_config(…, false)`, `pg_advisory_lock`) is undone after the query (rollback,
 *   unlock) rather than refused.
 * - The swap: a query that arrives while `makeLive` commits waits for it (DROP VIEW's lock), then
 *   reads the new version; SQLite's reader reads the old one without waiting. Both see one whole
 *   version.
 * - A failed flush: SQLite's failure is final (nothing was written). PostgreSQL's is too for every
 *   refusal (bad delta, backwards checkpoint, fence, a merge that throws), but a flush that fails
 *   because the connection was lost (KAPPA_STORE_UNAVAILABLE) has an unknown outcome: the server
 *   may have received COMMIT and commit it after the client gave up. It commits whole or not at
 *   all, and for a fenced flush the store ends the doubt itself: the task's next write moves its
 *   epoch past the lost one (which then can never commit) and fails with KAPPA_FENCED, so the
 *   caller takes the task again and rereads the checkpoint (src/view/postgres/in-doubt.ts). An
 *   unfenced flush sent again after that error may be applied twice.
 * - SQL is each database's dialect: queries take `?` on both (and `$1` on PostgreSQL); output
 *   expressions must be SQL both accept (CAST(x AS REAL) is read as double precision there).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isKappaError } from '../../src/errors.ts';
import {
  type Checkpoint,
  type DeltaColumns,
  type QueryResult,
  type RowDelta,
  type VersionTable,
  type ViewStore,
  deltaColumns,
} from '../../src/view/index.ts';
import {
  countDef,
  cp,
  freshForEachTest,
  rejectsWith,
  rowsOf,
  rulesDef,
  sale,
  salesDef,
  snapshot,
  tagsDef,
  totalsDef,
} from '../../src/view/test-helpers.ts';

export interface ViewStoreHarness {
  store: ViewStore;
  /** Closes the store last returned and opens a new one on the same data. */
  reopen(): Promise<ViewStore>;
  /** Closes whatever is open and removes the data. */
  cleanup(): Promise<void>;
  /**
   * Statements in the adapter's SQL dialect that would change data or the reader's connection
   * (for SQLite: ATTACH, PRAGMA assignments, BEGIN, VACUUM INTO); `query` must refuse each one.
   */
  dialectWrites?: string[];
}

// ---- the suite -----------------------------------------------------------------------------

/**
 * The whole suite is one function, longer than our usual limit, on purpose: node:test's describe
 * blocks nest, and every block reads the harness of the test under way from this closure.
 */
export function viewStoreContract(name: string, open: () => Promise<ViewStoreHarness>): void {
  describe(`ViewStore contract: ${name}`, () => {
    let h: ViewStoreHarness;
    let store: ViewStore;
    freshForEachTest(open, (opened) => {
      h = opened;
      store = opened.store;
    });

    describe('versions', () => {
      test('the first version of a view becomes live, with a public SQL view of its key and output columns', async () => {
        const info = await store.ensureVersion(salesDef());
        assert.equal(info.state, 'live');
        assert.equal(info.version, 1);
        assert.equal(info.fingerprint, 'sales-fp-1');
        assert.equal(info.rows, 0);
        assert.equal(typeof info.liveAtMs, 'number');
        const result = await store.query('SELECT * FROM sales');
        assert.deepEqual(result, { columns: ['region', 'year', 'total', 'orders', 'avg_amount'], rows: [] });
      });

      test('ensureVersion is idempotent: the same definition again changes nothing', async () => {
        const first = await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10)], [cp(1)]);
        const again = await store.ensureVersion(salesDef());
        assert.deepEqual(again, { ...first, rows: 1 });
        assert.equal((await store.versions()).length, 1);
        assert.deepEqual(await snapshot(store), [{ region: 'eu', year: 2024, total: 10, orders: 1, avg_amount: 10 }]);
      });

      test('ensureVersion refuses a different definition under an existing name and version', async () => {
        await store.ensureVersion(salesDef());
        await rejectsWith(store.ensureVersion(salesDef(1, { fingerprint: 'other' })), 'KAPPA_VIEW_CONFLICT', /sales/);
        await rejectsWith(
          store.ensureVersion(salesDef(1, { outputColumns: [{ name: 'total', sql: 'total' }] })),
          'KAPPA_VIEW_CONFLICT',
        );
        const [info] = await store.versions();
        assert.equal(info.fingerprint, 'sales-fp-1');
        assert.deepEqual((await store.query('SELECT * FROM sales')).columns, [
          'region',
          'year',
          'total',
          'orders',
          'avg_amount',
        ]);
      });

      test('a later version is created building while the live one keeps serving', async () => {
        await store.ensureVersion(salesDef(1));
        await store.flush('sales', 1, [sale('eu', 2024, 10)], []);
        const v2 = await store.ensureVersion(salesDef(2));
        assert.equal(v2.state, 'building');
        assert.equal(v2.liveAtMs, null);
        await store.flush('sales', 2, [sale('us', 2024, 99)], []);
        assert.deepEqual(await snapshot(store), [{ region: 'eu', year: 2024, total: 10, orders: 1, avg_amount: 10 }]);
      });

      test('versions lists every version of every view with its state and row count', async () => {
        await store.ensureVersion(salesDef(1));
        await store.ensureVersion(salesDef(2));
        await store.ensureVersion(rulesDef());
        await store.flush('sales', 2, [sale('eu', 2024, 1), sale('us', 2024, 2), sale('eu', 2024, 3)], []);
        const got = (await store.versions()).map((v) => [v.name, v.version, v.state, v.rows]);
        assert.deepEqual(
          got.sort((a, b) => String(a[0]).localeCompare(String(b[0])) || Number(a[1]) - Number(b[1])),
          [
            ['rules', 1, 'live', 0],
            ['sales', 1, 'live', 0],
            ['sales', 2, 'building', 2],
          ],
        );
      });

      test('names that are not plain SQL identifiers are refused and nothing is created', async () => {
        for (const bad of ['drop table x', 'a-b', '1abc', 'x"y', 'sales;--', '', 'kappa_views', 'sales__v1']) {
          await rejectsWith(store.ensureVersion(salesDef(1, { name: bad })), 'KAPPA_INVALID_ARGUMENT');
        }
        await rejectsWith(
          store.ensureVersion(salesDef(1, { keyColumns: [{ name: 'region name', type: 'TEXT' }] })),
          'KAPPA_INVALID_ARGUMENT',
          /region name/,
        );
        await rejectsWith(
          store.ensureVersion(salesDef(1, { outputColumns: [{ name: 'x"; DROP TABLE y; --', sql: '1' }] })),
          'KAPPA_INVALID_ARGUMENT',
        );
        await rejectsWith(store.ensureVersion(salesDef(0)), 'KAPPA_INVALID_ARGUMENT');
        await rejectsWith(store.flush('no such', 1, [], []), 'KAPPA_INVALID_ARGUMENT');
        assert.deepEqual(await store.versions(), []);
      });

      test('an output expression that is not valid SQL is refused when the version is created', async () => {
        await rejectsWith(
          store.ensureVersion(salesDef(1, { outputColumns: [{ name: 'bad', sql: 'no_such_column + 1' }] })),
          'KAPPA_INVALID_ARGUMENT',
          /bad|no_such_column/,
        );
        assert.deepEqual(await store.versions(), []);
        await store.ensureVersion(salesDef(1));
      });
    });

    describe('flush merges deltas by each column’s rule', () => {
      test('add merges within one flush and across flushes for the same key', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10), sale('us', 2024, 5), sale('eu', 2024, 2.5, 2)], [cp(3)]);
        await store.flush('sales', 1, [sale('eu', 2024, 7.5, 1), sale('eu', 2023, 1)], [cp(5)]);
        assert.deepEqual(await snapshot(store), [
          { region: 'eu', year: 2023, total: 1, orders: 1, avg_amount: 1 },
          { region: 'eu', year: 2024, total: 20, orders: 4, avg_amount: 5 },
          { region: 'us', year: 2024, total: 5, orders: 1, avg_amount: 5 },
        ]);
      });

      test('add counts a NULL on either side as nothing added', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [{ key: ['eu', 2024], state: [null, 1] }], []);
        await store.flush(
          'sales',
          1,
          [
            { key: ['eu', 2024], state: [5, 1] },
            { key: ['eu', 2024], state: [null, 1] },
          ],
          [],
        );
        assert.deepEqual(await rowsOf(store, 'SELECT total, orders FROM sales'), [{ total: 5, orders: 3 }]);
      });

      test('min and max keep the smaller and the larger value and ignore NULL on either side', async () => {
        await store.ensureVersion(rulesDef());
        const d = (k: string, lo: number | null, hi: number | null): RowDelta => ({
          key: [k],
          state: [null, null, null, null, lo, hi],
        });
        await store.flush('rules', 1, [d('a', null, null), d('b', 5, 5)], []);
        await store.flush('rules', 1, [d('a', 3, 3), d('b', null, null), d('a', 4, 4), d('b', 2, 9)], []);
        await store.flush('rules', 1, [d('a', -1, 1)], []);
        assert.deepEqual(await rowsOf(store, 'SELECT k, out_lo AS lo, out_hi AS hi FROM rules ORDER BY k'), [
          { k: 'a', lo: -1, hi: 4 },
          { k: 'b', lo: 2, hi: 9 },
        ]);
      });

      test('earliest and latest take the delta’s value when its by-value is smaller or larger than the stored one', async () => {
        await store.ensureVersion(rulesDef());
        // state: first_time, last_time, first_v, last_v, lo, hi
        const d = (t: number | null, v: string): RowDelta => ({ key: ['k'], state: [t, t, v, v, null, null] });
        const read = async () =>
          (
            await rowsOf(
              store,
              'SELECT out_first_v AS fv, out_first_time AS ft, out_last_v AS lv, out_last_time AS lt FROM rules',
            )
          )[0];
        await store.flush('rules', 1, [d(20, 'b')], []);
        await store.flush('rules', 1, [d(10, 'a')], []);
        assert.deepEqual(await read(), { fv: 'a', ft: 10, lv: 'b', lt: 20 });
        await store.flush('rules', 1, [d(30, 'c'), d(15, 'x')], []);
        assert.deepEqual(await read(), { fv: 'a', ft: 10, lv: 'c', lt: 30 });
        // A tie keeps the first value seen for earliest and takes the last one seen for latest.
        await store.flush('rules', 1, [d(10, 'tie'), d(30, 'tie')], []);
        assert.deepEqual(await read(), { fv: 'a', ft: 10, lv: 'tie', lt: 30 });
        // A delta without a by-value carries no time, so it never wins.
        await store.flush('rules', 1, [d(null, 'untimed')], []);
        assert.deepEqual(await read(), { fv: 'a', ft: 10, lv: 'tie', lt: 30 });
      });

      test('a custom merge reads the stored JSON state, merges it in JS and writes it back', async () => {
        const seen: unknown[] = [];
        await store.ensureVersion(tagsDef((stored, delta) => seen.push([stored, delta])));
        await store.flush('tags', 1, [{ key: [1], state: [1, ['b']] }], []);
        assert.deepEqual(seen, [], 'a new row takes the delta as its state without a merge');
        await store.flush(
          'tags',
          1,
          [
            { key: [1], state: [2, ['a', 'b']] },
            { key: [2], state: [1, ['z']] },
            { key: [1], state: [1, ['c']] },
          ],
          [],
        );
        assert.deepEqual(seen, [
          [['b'], ['a', 'b']],
          [['a', 'b'], ['c']],
        ]);
        await store.flush('tags', 1, [{ key: [2], state: [1, null] }], []);
        const rows = await rowsOf(store, 'SELECT user_id, events, tags, tag_count FROM tags ORDER BY user_id');
        assert.deepEqual(
          rows.map((r) => ({ ...r, tags: JSON.parse(r.tags as string) })),
          [
            { user_id: 1, events: 4, tags: ['a', 'b', 'c'], tag_count: 3 },
            { user_id: 2, events: 2, tags: ['z'], tag_count: 1 },
          ],
        );
      });

      test('NULL group keys merge into one row, apart from empty strings and zeros, and read back as NULL', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale(null, null, 1), sale('', 0, 10), sale(null, 0, 100)], []);
        await store.flush(
          'sales',
          1,
          [sale(null, null, 2), sale('', 0, 20), sale(null, 0, 200), sale(null, null, 4)],
          [],
        );
        const rows = await rowsOf(
          store,
          'SELECT region, year, total, orders FROM sales ORDER BY region IS NULL, region, year IS NULL, year',
        );
        assert.deepEqual(rows, [
          { region: '', year: 0, total: 30, orders: 2 },
          { region: null, year: 0, total: 300, orders: 2 },
          { region: null, year: null, total: 7, orders: 3 },
        ]);
        assert.equal((await rowsOf(store, 'SELECT count(*) AS n FROM sales WHERE region IS NULL'))[0].n, 2);
        assert.equal((await store.versions())[0].rows, 3);
      });

      test('a view without key columns keeps exactly one row', async () => {
        await store.ensureVersion(totalsDef());
        await store.flush(
          'totals',
          1,
          [
            { key: [], state: [2] },
            { key: [], state: [3] },
          ],
          [],
        );
        await store.flush('totals', 1, [{ key: [], state: [5] }], []);
        assert.deepEqual(await store.query('SELECT * FROM totals'), { columns: ['events'], rows: [{ events: 10 }] });
      });

      test('window bounds are part of the row key', async () => {
        const keys = ['region TEXT', 'window_start INTEGER', 'window_end INTEGER'];
        await store.ensureVersion(countDef('per_minute', { fingerprint: 'pm-fp', keys, outputs: ['n'] }));
        const d = (start: number, n: number): RowDelta => ({ key: ['eu', start, start + 60_000], state: [n] });
        await store.flush('per_minute', 1, [d(0, 1), d(60_000, 2)], []);
        await store.flush('per_minute', 1, [d(0, 3)], []);
        assert.deepEqual(await rowsOf(store, 'SELECT * FROM per_minute ORDER BY window_start'), [
          { region: 'eu', window_start: 0, window_end: 60_000, n: 4 },
          { region: 'eu', window_start: 60_000, window_end: 120_000, n: 2 },
        ]);
      });
    });

    describe('deltas as columns (what worker threads send)', () => {
      const columns = (rows: RowDelta[]): DeltaColumns => deltaColumns(rows) as DeltaColumns;

      test('merge exactly as the same rows: numbers, NULL keys and NULL states, across flushes', async () => {
        await store.ensureVersion(salesDef());
        await store.ensureVersion(salesDef(1, { name: 'sales_cols' }));
        const first = [sale('eu', 2024, 10), sale(null, 2024, 5), sale('eu', 2024, 2.5, 2)];
        const second = [sale('eu', 2024, 7.5, 1), sale('us', null, 1), { key: ['eu', 2023], state: [null, 3] }];
        assert.ok(columns(first).states[0] instanceof Float64Array, 'a column of numbers travels as a Float64Array');
        await store.flush('sales', 1, first, [cp(3)]);
        await store.flush('sales', 1, second, [cp(6)]);
        await store.flush('sales_cols', 1, columns(first), [cp(3)]);
        await store.flush('sales_cols', 1, columns(second), [cp(6)]);
        assert.deepEqual(await snapshot(store, 'sales_cols'), await snapshot(store));
        assert.equal((await snapshot(store)).length, 4);
        assert.deepEqual(await store.checkpoints('sales_cols', 1), await store.checkpoints('sales', 1));
      });

      test('a custom merge and a session view take columns too; a session writes its merged window back to the keys', async () => {
        await store.ensureVersion(tagsDef());
        await store.flush('tags', 1, columns([{ key: [1], state: [1, ['a']] }]), [cp(1)]);
        await store.flush('tags', 1, columns([{ key: [1], state: [2, ['c', 'b']] }]), [cp(2)]);
        assert.deepEqual(
          (await snapshot(store, 'tags')).map((r) => [r.user_id, r.events, r.tags]),
          [[1, 3, '["a","b","c"]']],
        );
        await store.ensureVersion(visitsDef());
        await store.flush('visits', 1, [{ key: ['ada', 0, 50], state: [2] }], []);
        const bridge = columns([
          { key: ['ada', 45, 75], state: [1] },
          { key: ['bob', 0, 10], state: [1] },
        ]);
        await store.flush('visits', 1, bridge, []);
        assert.deepEqual(
          bridge.keys.map((c) => Array.from(c)),
          [
            ['ada', 'bob'],
            [0, 0],
            [75, 10],
          ],
        );
      });

      test('columns that do not fit the definition are refused and nothing changes', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10)], [cp(10)]);
        const before = await snapshot(store);
        const good = columns([sale('eu', 2024, 5), sale('us', 2024, 1)]);
        const bad: DeltaColumns[] = [
          { ...good, count: 3 }, // longer than its columns
          { ...good, keys: good.keys.slice(0, 1) }, // a key column missing
          { ...good, states: [good.states[0], Float64Array.of(1)] }, // a column of another length
          { ...good, states: [Float64Array.of(5, Number.NaN), good.states[1]] }, // NaN
          { ...good, keys: [['eu', { not: 'a key' } as unknown as string], good.keys[1]] },
        ];
        for (const deltas of bad)
          await rejectsWith(store.flush('sales', 1, deltas, [cp(20)]), 'KAPPA_INVALID_ARGUMENT');
        assert.deepEqual(await snapshot(store), before);
        assert.deepEqual(
          (await store.checkpoints('sales', 1)).map((c) => c.offset),
          [10],
        );
      });
    });

    describe('table states', () => {
      const part = (offset: number, partition = 0) => ({
        partition,
        offset,
        maxEventMs: offset * 10,
        watermarkMs: offset * 10 - 5,
      });
      const bytes = (text: string) => Buffer.from(text);
      const loaded = async (id: string) => {
        const t = await store.tables!.load(id);
        return t === null
          ? null
          : {
              ...t,
              versions: t.versions.map((v) => [
                v.key,
                v.fromMs,
                v.value === null ? null : Buffer.from(v.value).toString(),
              ]),
            };
      };

      test('a saved table loads back: versions by key then time (tombstones as null), partitions, what was pruned', async () => {
        assert.equal(await store.tables!.load('cards'), null);
        const saved = await store.tables!.save('cards', {
          keys: ['c2', 'c1'],
          versions: [
            { key: 'c2', fromMs: 5, value: bytes('{"limit":1}') },
            { key: 'c1', fromMs: 20, value: null },
            { key: 'c1', fromMs: 10.5, value: bytes('{"limit":9}') },
          ],
          partitions: [part(3), part(7, 1)],
          prunedBelowMs: -8.64e15,
        });
        assert.equal(saved, true);
        assert.deepEqual(await loaded('cards'), {
          partitions: [part(3), part(7, 1)],
          prunedBelowMs: -8.64e15,
          versions: [
            ['c1', 10.5, '{"limit":9}'],
            ['c1', 20, null],
            ['c2', 5, '{"limit":1}'],
          ],
        });
        assert.equal(await store.tables!.load('other'), null, 'tables are kept apart by id');
        await store.tables!.save('cards:x', { keys: [], versions: [], partitions: [part(1)], prunedBelowMs: 0 });
        await store.tables!.save('cardsx:y', { keys: [], versions: [], partitions: [part(1)], prunedBelowMs: 0 });
        assert.equal(
          await store.tables!.forget('cards'),
          1,
          "forget takes the tables of the topic only (ids '<topic>:…')",
        );
        assert.equal(await store.tables!.load('cards:x'), null);
        assert.notEqual(await store.tables!.load('cardsx:y'), null);
        assert.notEqual(await store.tables!.load('cards'), null, "an id without the topic's prefix is not the topic's");
      });

      test('a save replaces the versions of the keys it names only, and one behind the stored offsets changes nothing', async () => {
        const versions = [
          { key: 'a', fromMs: 1, value: bytes('a1') },
          { key: 'b', fromMs: 1, value: bytes('b1') },
        ];
        await store.tables!.save('t', { keys: ['a', 'b'], versions, partitions: [part(2)], prunedBelowMs: 0 });
        const change = {
          keys: ['a', 'b'],
          versions: [
            { key: 'a', fromMs: 1, value: bytes('a1') },
            { key: 'a', fromMs: 4, value: bytes('a2') },
          ],
          partitions: [part(5)],
          prunedBelowMs: 1,
        };
        assert.equal(await store.tables!.save('t', change), true);
        const expected = {
          partitions: [part(5)],
          prunedBelowMs: 1,
          versions: [
            ['a', 1, 'a1'],
            ['a', 4, 'a2'],
          ],
        };
        assert.deepEqual(await loaded('t'), expected, 'b, saved with no versions, is gone');
        const behind = { keys: ['a'], versions: [], partitions: [part(4)], prunedBelowMs: 1 };
        assert.equal(await store.tables!.save('t', behind), false);
        assert.deepEqual(await loaded('t'), expected);
        await assert.rejects(
          store.tables!.save('t', {
            keys: [],
            versions: [{ key: 'z', fromMs: 1, value: null }],
            partitions: [],
            prunedBelowMs: 0,
          }),
          /not among the keys saved/,
        );
      });
    });

    describe('session views', () => {
      test("a flush merges the stored sessions a delta's window touches into one row, and returns their keys as removed", async () => {
        await store.ensureVersion(visitsDef());
        const first = await store.flush(
          'visits',
          1,
          [
            { key: ['ada', 0, 50], state: [2] },
            { key: ['ada', 70, 120], state: [3] },
            { key: ['bob', 0, 10], state: [1] },
          ],
          [],
        );
        assert.deepEqual(first.removed, []);
        // [45, 75] touches both of ada's sessions: one from 0 to 120, the two old rows gone.
        const bridge = { key: ['ada', 45, 75], state: [1] };
        const second = await store.flush('visits', 1, [bridge], []);
        assert.deepEqual(bridge.key, ['ada', 0, 120], "the delta's key is its merged window");
        assert.deepEqual(second.removed.map((k) => JSON.stringify(k)).sort(), [
          JSON.stringify(['ada', 0, 50]),
          JSON.stringify(['ada', 70, 120]),
        ]);
        assert.deepEqual((await store.query('SELECT * FROM visits ORDER BY "user"')).rows, [
          { user: 'ada', window_start: 0, window_end: 120, n: 6 },
          { user: 'bob', window_start: 0, window_end: 10, n: 1 },
        ]);
      });
    });

    describe('rowsByKey', () => {
      test('reads rows by group key as the public view shows them, NULL keys included, null for a key with no row', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2025, 10, 2), sale(null, null, 4), sale('us', 2025, 1)], []);
        const rows = await store.rowsByKey('sales', 1, [
          ['eu', 2025],
          [null, null],
          ['nowhere', 1999],
        ]);
        assert.deepEqual(rows, [
          { region: 'eu', year: 2025, total: 10, orders: 2, avg_amount: 5 },
          { region: null, year: null, total: 4, orders: 1, avg_amount: 4 },
          null,
        ]);
      });

      test('reads the one row of a view without key columns, and the rows of a version that is not live', async () => {
        await store.ensureVersion(totalsDef());
        await store.flush('totals', 1, [{ key: [], state: [7] }], []);
        assert.deepEqual(await store.rowsByKey('totals', 1, [[]]), [{ events: 7 }]);
        await store.ensureVersion(salesDef());
        await store.ensureVersion(salesDef(2));
        await store.flush('sales', 2, [sale('eu', 2026, 3)], []);
        assert.deepEqual(await store.rowsByKey('sales', 2, [['eu', 2026]]), [
          { region: 'eu', year: 2026, total: 3, orders: 1, avg_amount: 3 },
        ]);
      });

      test('an unknown version is refused with KAPPA_UNKNOWN_VIEW', async () => {
        await rejectsWith(store.rowsByKey('nope', 1, [['x']]), 'KAPPA_UNKNOWN_VIEW');
      });
    });

    describe('checkpoints', () => {
      test('checkpoints are committed with the deltas and survive reopening the store', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10)], [cp(7, 0, 5_000, 3), cp(2, 1, -Infinity)]);
        const before = await snapshot(store);
        store = await h.reopen();
        assert.deepEqual(await snapshot(store), before);
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(7, 0, 5_000, 3), cp(2, 1, -Infinity)]);
        // Flushing goes on after a reopen.
        await store.flush('sales', 1, [sale('eu', 2024, 5)], [cp(9, 0, 6_000, 4)]);
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(9, 0, 6_000, 4), cp(2, 1, -Infinity)]);
        assert.equal((await snapshot(store))[0].total, 15);
      });

      test('a checkpoint can advance without deltas, and the same offset may be written again', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [], [cp(10)]);
        await store.flush('sales', 1, [], [cp(10, 0, 2_000)]);
        await store.flush('sales', 1, [], [cp(12)]);
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(12)]);
      });

      test('checkpoints belong to one version', async () => {
        await store.ensureVersion(salesDef(1));
        await store.ensureVersion(salesDef(2));
        await store.flush('sales', 1, [], [cp(50)]);
        await store.flush('sales', 2, [], [cp(3)]);
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(50)]);
        assert.deepEqual(await store.checkpoints('sales', 2), [cp(3)]);
        await rejectsWith(store.checkpoints('sales', 3), 'KAPPA_UNKNOWN_VIEW');
      });
    });

    describe('a flush is all or nothing', () => {
      async function seeded(): Promise<{ rows: Record<string, unknown>[]; cps: Checkpoint[] }> {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10), sale('us', 2024, 1)], [cp(10)]);
        return { rows: await snapshot(store), cps: await store.checkpoints('sales', 1) };
      }

      async function unchanged(before: { rows: Record<string, unknown>[]; cps: Checkpoint[] }): Promise<void> {
        assert.deepEqual(await snapshot(store), before.rows);
        assert.deepEqual(await store.checkpoints('sales', 1), before.cps);
      }

      test('a delta of the wrong arity fails the flush: neither rows nor checkpoints change', async () => {
        const before = await seeded();
        await rejectsWith(
          store.flush('sales', 1, [sale('eu', 2024, 5), { key: ['eu', 2024], state: [1] }], [cp(20)]),
          'KAPPA_INVALID_ARGUMENT',
          /Delta 1/,
        );
        await rejectsWith(
          store.flush('sales', 1, [sale('eu', 2024, 5), { key: ['eu'], state: [1, 1] }], [cp(20)]),
          'KAPPA_INVALID_ARGUMENT',
        );
        await rejectsWith(
          store.flush('sales', 1, [sale('eu', 2024, 5), sale('eu', 2024, Number.NaN)], [cp(20)]),
          'KAPPA_INVALID_ARGUMENT',
          /total/,
        );
        await rejectsWith(
          store.flush('sales', 1, [sale('eu', 2024, 5)], [{ ...cp(20), partition: -1 }]),
          'KAPPA_INVALID_ARGUMENT',
        );
        await unchanged(before);
      });

      test('a checkpoint that would go backwards fails the flush and its deltas are rolled back', async () => {
        const before = await seeded();
        await assert.rejects(
          store.flush('sales', 1, [sale('eu', 2024, 5), sale('asia', 2024, 5)], [cp(11, 1), cp(9)]),
          /backwards/,
        );
        await assert.rejects(store.flush('sales', 1, [sale('eu', 2024, 5)], [cp(12), cp(11)]), /backwards/);
        await unchanged(before);
      });

      test('a flush of thousands of rows is still one transaction: a checkpoint going backwards at its end rolls every row back', async () => {
        const before = await seeded();
        const many = Array.from({ length: 4_500 }, (_, i) => sale(`r${i}`, 2024, 1));
        await assert.rejects(store.flush('sales', 1, many, [cp(9)]), /backwards/);
        await unchanged(before);
        await store.flush('sales', 1, many, [cp(30)]);
        assert.equal((await rowsOf(store, "SELECT count(*) AS n FROM sales WHERE region LIKE 'r%'"))[0].n, 4_500);
      });

      test('an output sequence that would go backwards fails the flush', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [], [cp(5, 0, 0, 10)]);
        await assert.rejects(store.flush('sales', 1, [sale('eu', 2024, 5)], [cp(6, 0, 0, 9)]), /backwards/);
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(5, 0, 0, 10)]);
        assert.deepEqual(await snapshot(store), []);
      });

      test('a custom merge that throws midway rolls back the rows already written by that flush', async () => {
        let fail = false;
        await store.ensureVersion(
          tagsDef(() => {
            if (fail) throw new Error('merge exploded');
          }),
        );
        await store.flush('tags', 1, [{ key: [1], state: [1, ['a']] }], [cp(1)]);
        const before = { rows: await snapshot(store, 'tags'), cps: await store.checkpoints('tags', 1) };
        fail = true;
        await assert.rejects(
          store.flush(
            'tags',
            1,
            [
              { key: [2], state: [1, ['new']] },
              { key: [1], state: [1, ['b']] },
            ],
            [cp(2)],
          ),
          /merge exploded/,
        );
        assert.deepEqual(await snapshot(store, 'tags'), before.rows);
        assert.deepEqual(await store.checkpoints('tags', 1), before.cps);
      });

      test('a flush to an unknown view or version is refused with KAPPA_UNKNOWN_VIEW', async () => {
        await store.ensureVersion(salesDef());
        await rejectsWith(store.flush('nosuch', 1, [], [cp(1)]), 'KAPPA_UNKNOWN_VIEW');
        await rejectsWith(store.flush('sales', 2, [sale('eu', 2024, 1)], []), 'KAPPA_UNKNOWN_VIEW');
      });
    });

    describe('makeLive and dropVersion', () => {
      async function twoVersions(): Promise<void> {
        await store.ensureVersion(salesDef(1));
        await store.flush('sales', 1, [sale('eu', 2024, 10)], [cp(1)]);
        await store.ensureVersion(salesDef(2, { outputColumns: [{ name: 'revenue', sql: 'total * 2' }] }));
        await store.flush('sales', 2, [sale('eu', 2024, 10), sale('us', 2024, 3)], [cp(2)]);
      }

      test('makeLive repoints the public view at the new version and retires the old one', async () => {
        await twoVersions();
        await store.makeLive('sales', 2);
        assert.deepEqual(await store.query('SELECT * FROM sales ORDER BY region'), {
          columns: ['region', 'year', 'revenue'],
          rows: [
            { region: 'eu', year: 2024, revenue: 20 },
            { region: 'us', year: 2024, revenue: 6 },
          ],
        });
        const states = Object.fromEntries((await store.versions()).map((v) => [v.version, v]));
        assert.equal(states[1].state, 'retired');
        assert.equal(states[2].state, 'live');
        assert.equal(typeof states[2].liveAtMs, 'number');
        assert.equal(states[1].rows, 1, 'a retired version keeps its rows for rollback');
      });

      test('makeLive back to a retired version rolls back, and makeLive of the live version changes nothing', async () => {
        await twoVersions();
        await store.makeLive('sales', 2);
        await store.makeLive('sales', 1);
        assert.deepEqual(await snapshot(store), [{ region: 'eu', year: 2024, total: 10, orders: 1, avg_amount: 10 }]);
        const live = (await store.versions()).filter((v) => v.state === 'live');
        assert.deepEqual(
          live.map((v) => v.version),
          [1],
        );
        await store.makeLive('sales', 1);
        assert.deepEqual((await store.versions()).find((v) => v.version === 1)?.liveAtMs, live[0].liveAtMs);
      });

      test('makeLive of an unknown version is refused and the live one keeps serving', async () => {
        await twoVersions();
        await rejectsWith(store.makeLive('sales', 3), 'KAPPA_UNKNOWN_VIEW');
        await rejectsWith(store.makeLive('nosuch', 1), 'KAPPA_UNKNOWN_VIEW');
        assert.equal((await snapshot(store)).length, 1);
        const states = (await store.versions()).sort((a, b) => a.version - b.version).map((v) => v.state);
        assert.deepEqual(states, ['live', 'building']);
      });

      test('a query issued around the swap sees the old live version or the new one, whole', async () => {
        await twoVersions();
        const old = (await store.query('SELECT * FROM sales ORDER BY region')).rows;
        const reads = [store.query('SELECT * FROM sales ORDER BY region')];
        const swap = store.makeLive('sales', 2);
        reads.push(store.query('SELECT * FROM sales ORDER BY region'));
        await swap;
        const fresh = (await store.query('SELECT * FROM sales ORDER BY region')).rows;
        assert.notDeepEqual(old, fresh);
        for (const read of await Promise.all(reads)) {
          assert.ok(
            [old, fresh].some((rows) => JSON.stringify(rows) === JSON.stringify(read.rows)),
            `saw a mix: ${JSON.stringify(read.rows)}`,
          );
        }
      });

      test('the swap survives reopening the store', async () => {
        await twoVersions();
        await store.makeLive('sales', 2);
        store = await h.reopen();
        assert.deepEqual((await store.query('SELECT * FROM sales')).columns, ['region', 'year', 'revenue']);
      });

      test('dropVersion removes a version with its rows and checkpoints', async () => {
        await twoVersions();
        await store.dropVersion('sales', 2);
        assert.deepEqual(
          (await store.versions()).map((v) => v.version),
          [1],
        );
        await rejectsWith(store.checkpoints('sales', 2), 'KAPPA_UNKNOWN_VIEW');
        await rejectsWith(store.flush('sales', 2, [], []), 'KAPPA_UNKNOWN_VIEW');
        // The (name, version) is free again, and starts empty.
        const again = await store.ensureVersion(salesDef(2));
        assert.equal(again.rows, 0);
        assert.deepEqual(await store.checkpoints('sales', 2), []);
      });

      test('dropVersion refuses the live version and an unknown one', async () => {
        await twoVersions();
        await rejectsWith(store.dropVersion('sales', 1), 'KAPPA_VIEW_CONFLICT', /live/);
        await rejectsWith(store.dropVersion('sales', 9), 'KAPPA_UNKNOWN_VIEW');
        assert.equal((await snapshot(store)).length, 1);
        assert.deepEqual(await store.checkpoints('sales', 1), [cp(1)]);
      });

      test('dropView drops every version, the live one too, and the public SQL view; other views stay', async () => {
        await twoVersions();
        await store.ensureVersion(totalsDef());
        assert.deepEqual(await store.dropView('sales'), [1, 2]);
        assert.deepEqual(
          (await store.versions()).map((v) => v.name),
          ['totals'],
        );
        await assert.rejects(store.query('SELECT * FROM sales'), /sales/);
        await rejectsWith(store.checkpoints('sales', 1), 'KAPPA_UNKNOWN_VIEW');
        await rejectsWith(store.checkpoints('sales', 2), 'KAPPA_UNKNOWN_VIEW');
        // The name is free again: a new first version is live and empty, with no checkpoints.
        const again = await store.ensureVersion(salesDef(1));
        assert.equal(again.state, 'live');
        assert.equal(again.rows, 0);
        assert.deepEqual(await store.checkpoints('sales', 1), []);
        assert.deepEqual((await store.query('SELECT * FROM sales')).rows, []);
      });

      test('dropView survives reopening, and refuses an unknown or invalid name without changing anything', async () => {
        await twoVersions();
        await store.dropView('sales');
        store = await h.reopen();
        assert.deepEqual(await store.versions(), []);
        await store.ensureVersion(totalsDef());
        const before = await store.query('SELECT * FROM totals');
        await rejectsWith(store.dropView('sales'), 'KAPPA_UNKNOWN_VIEW');
        await rejectsWith(store.dropView('no such; drop'), 'KAPPA_INVALID_ARGUMENT');
        assert.deepEqual(await store.query('SELECT * FROM totals'), before);
        assert.deepEqual(
          (await store.versions()).map((v) => v.name),
          ['totals'],
        );
      });
    });

    describe('diffVersions', () => {
      /** Flushes each delta on its own, so the rows reach the table in this order, not in key order. */
      const flushEach = async (version: number, deltas: RowDelta[]): Promise<void> => {
        for (const d of deltas) await store.flush('sales', version, [d], []);
      };
      const row = (region: string | null, year: number | null, total: number, orders: number) => ({
        region,
        year,
        total,
        orders,
        avg_amount: total / orders,
      });

      test('compares two versions: row counts, totals per numeric measure, and the rows only in a, only in b or changed', async () => {
        await store.ensureVersion(salesDef(1));
        await store.ensureVersion(salesDef(2));
        await flushEach(1, [sale('us', 2024, 5), sale('eu', 2024, 10), sale(null, 2024, 3), sale('eu', 2023, 1)]);
        await flushEach(2, [
          sale(null, null, 2),
          sale('us', 2024, 5),
          sale('eu', 2024, 12, 2),
          sale(null, 2024, 3),
          sale('asia', 2024, 7),
        ]);
        assert.deepEqual(await store.diffVersions('sales', 1, 2), {
          view: 'sales',
          keyColumns: ['region', 'year'],
          measures: ['total', 'orders', 'avg_amount'],
          a: { version: 1, state: 'live', rows: 4, totals: { total: 19, orders: 4, avg_amount: 19 } },
          b: { version: 2, state: 'building', rows: 5, totals: { total: 29, orders: 6, avg_amount: 23 } },
          onlyInA: { count: 1, rows: [row('eu', 2023, 1, 1)], more: 0 },
          // Ordered by key, NULL last, whatever order the rows were written in.
          onlyInB: { count: 2, rows: [row('asia', 2024, 7, 1), row(null, null, 2, 1)], more: 0 },
          changed: {
            count: 1,
            rows: [{ key: { region: 'eu', year: 2024 }, a: row('eu', 2024, 10, 1), b: row('eu', 2024, 12, 2) }],
            more: 0,
          },
          same: false,
        });
      });

      test('lists the differing rows in key order up to the cap, with the count of the rest', async () => {
        await store.ensureVersion(salesDef(1));
        await store.ensureVersion(salesDef(2));
        const keys: [string | null, number | null][] = [
          ['b', 1],
          [null, 1],
          ['a', null],
          ['a', 2],
          ['a', 1],
        ];
        await flushEach(
          1,
          keys.map(([r, y]) => sale(r, y, 1)),
        );
        await flushEach(
          2,
          keys.map(([r, y]) => sale(r, y, 2)),
        );
        const all = await store.diffVersions('sales', 1, 2, 5);
        assert.deepEqual(
          all.changed.rows.map((c) => c.key),
          [
            { region: 'a', year: 1 },
            { region: 'a', year: 2 },
            { region: 'a', year: null },
            { region: 'b', year: 1 },
            { region: null, year: 1 },
          ],
        );
        const capped = await store.diffVersions('sales', 1, 2, 2);
        assert.deepEqual([capped.changed.count, capped.changed.rows.length, capped.changed.more], [5, 2, 3]);
        assert.deepEqual(capped.changed.rows, all.changed.rows.slice(0, 2));
        const none = await store.diffVersions('sales', 1, 2, 0);
        assert.deepEqual(none.changed, { count: 5, rows: [], more: 5 });
        assert.deepEqual(none.a.totals, { total: 5, orders: 5, avg_amount: 5 });
        assert.deepEqual(none.b.totals, { total: 10, orders: 5, avg_amount: 10 });
      });

      test('a version against itself is the same, and a view without key columns compares its one row', async () => {
        await store.ensureVersion(salesDef(1));
        await flushEach(1, [sale('eu', 2024, 10), sale(null, null, 1)]);
        const self = await store.diffVersions('sales', 1, 1);
        assert.equal(self.same, true);
        assert.deepEqual(
          [self.onlyInA.count, self.onlyInB.count, self.changed.count, self.a.rows, self.b.rows],
          [0, 0, 0, 2, 2],
        );
        await store.ensureVersion(totalsDef());
        await store.ensureVersion({ ...totalsDef(), version: 2, fingerprint: 'totals-fp-2' });
        await store.flush('totals', 1, [{ key: [], state: [3] }], []);
        await store.flush('totals', 2, [{ key: [], state: [4] }], []);
        const keyless = await store.diffVersions('totals', 1, 2);
        assert.deepEqual(keyless.keyColumns, []);
        assert.deepEqual(keyless.changed, {
          count: 1,
          rows: [{ key: {}, a: { events: 3 }, b: { events: 4 } }],
          more: 0,
        });
        assert.deepEqual([keyless.a.totals, keyless.b.totals], [{ events: 3 }, { events: 4 }]);
      });

      test('refuses an unknown view or version, versions keyed differently, and a cap out of range', async () => {
        await rejectsWith(store.diffVersions('sales', 1, 2), 'KAPPA_UNKNOWN_VIEW', /There is no view "sales"/);
        await store.ensureVersion(salesDef(1));
        await store.ensureVersion(salesDef(2, { keyColumns: [{ name: 'region', type: 'TEXT' }] }));
        await rejectsWith(
          store.diffVersions('sales', 1, 7),
          'KAPPA_UNKNOWN_VIEW',
          /View "sales" has no version 7: .*Its versions: 1 \(live\), 2 \(building\)/,
        );
        await rejectsWith(store.diffVersions('sales', 1, 2), 'KAPPA_INVALID_ARGUMENT', /keyed differently/);
        for (const rowsMax of [-1, 1001, 2.5])
          await rejectsWith(store.diffVersions('sales', 1, 1, rowsMax), 'KAPPA_INVALID_ARGUMENT', /0 to 1000/);
      });
    });

    describe('query', () => {
      test('returns the column names even when no row matches', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10)], []);
        assert.deepEqual(await store.query("SELECT region, total AS t FROM sales WHERE region = 'nowhere'"), {
          columns: ['region', 't'],
          rows: [],
        });
      });

      test('binds positional parameters', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10), sale('us', 2024, 4), sale('us', 2023, 2)], []);
        const result: QueryResult = await store.query(
          'SELECT region, year, total FROM sales WHERE region = ? AND total > ? ORDER BY year',
          ['us', 1],
        );
        assert.deepEqual(result.rows, [
          { region: 'us', year: 2023, total: 2 },
          { region: 'us', year: 2024, total: 4 },
        ]);
      });

      test('refuses every statement that would write, and nothing changes', async () => {
        await store.ensureVersion(salesDef());
        await store.flush('sales', 1, [sale('eu', 2024, 10)], [cp(1)]);
        const before = {
          rows: await snapshot(store),
          versions: await store.versions(),
          cps: await store.checkpoints('sales', 1),
        };
        const writes = [
          "INSERT INTO sales__v1 (region, year, total, orders) VALUES ('x', 1, 1, 1)",
          'UPDATE sales__v1 SET total = 0',
          'DELETE FROM sales__v1',
          'DELETE FROM kappa_checkpoints',
          "UPDATE kappa_views SET state = 'retired'",
          'DROP VIEW sales',
          'DROP TABLE sales__v1',
          'CREATE TABLE evil (x INTEGER)',
          'CREATE VIEW evil AS SELECT 1',
          'ALTER TABLE sales__v1 ADD COLUMN x INTEGER',
          ...(h.dialectWrites ?? []),
        ];
        for (const sql of writes) {
          await rejectsWith(store.query(sql), 'KAPPA_QUERY_NOT_READ_ONLY', /read-only/);
        }
        assert.deepEqual(await snapshot(store), before.rows);
        assert.deepEqual(await store.versions(), before.versions);
        assert.deepEqual(await store.checkpoints('sales', 1), before.cps);
        await rejectsWith(store.query('SELECT * FROM evil'), 'KAPPA_SQL_ERROR');
      });

      test('reports SQL errors as KAPPA_SQL_ERROR with the database’s message', async () => {
        await store.ensureVersion(salesDef());
        await rejectsWith(store.query('SELEC 1'), 'KAPPA_SQL_ERROR', /syntax/i);
        await rejectsWith(store.query('SELECT * FROM no_such_view'), 'KAPPA_SQL_ERROR', /no_such_view/);
        await rejectsWith(store.query('SELECT no_such_column FROM sales'), 'KAPPA_SQL_ERROR', /no_such_column/);
        await rejectsWith(store.query('SELECT * FROM sales WHERE region = ?'), 'KAPPA_SQL_ERROR');
      });

      test('runs exactly one statement per call', async () => {
        await store.ensureVersion(salesDef());
        await assert.rejects(store.query('SELECT 1; SELECT 2'), (err: unknown) => isKappaError(err, 'KAPPA_SQL_ERROR'));
        await assert.rejects(
          store.query('SELECT 1; DROP VIEW sales'),
          (err: unknown) => isKappaError(err, 'KAPPA_SQL_ERROR') || isKappaError(err, 'KAPPA_QUERY_NOT_READ_ONLY'),
        );
        assert.deepEqual((await store.query('SELECT 1 AS one;')).rows, [{ one: 1 }]);
        assert.deepEqual((await store.query('SELECT * FROM sales')).rows, []);
      });

      test('a query runs while the writer holds an open transaction and sees a whole committed state', async () => {
        const seenDuringFlush: Promise<QueryResult>[] = [];
        await store.ensureVersion(
          tagsDef(() => seenDuringFlush.push(store.query('SELECT user_id, events FROM tags ORDER BY user_id'))),
        );
        await store.flush('tags', 1, [{ key: [1], state: [1, ['a']] }], []);
        // The flush writes user 2, then merges user 1, which queries while the flush is uncommitted.
        await store.flush(
          'tags',
          1,
          [
            { key: [2], state: [1, ['b']] },
            { key: [1], state: [1, ['c']] },
          ],
          [],
        );
        assert.equal(seenDuringFlush.length, 1);
        const during = await seenDuringFlush[0];
        const before = [{ user_id: 1, events: 1 }];
        const after = [
          { user_id: 1, events: 2 },
          { user_id: 2, events: 1 },
        ];
        assert.ok(
          JSON.stringify(during.rows) === JSON.stringify(before) ||
            JSON.stringify(during.rows) === JSON.stringify(after),
          `saw a partial flush: ${JSON.stringify(during.rows)}`,
        );
      });
    });
  });
}

/** A session view: visits per user, window_start and window_end in its key. */
function visitsDef(): VersionTable {
  return {
    name: 'visits',
    version: 1,
    fingerprint: 'visits-fp',
    keyColumns: [
      { name: 'user', type: 'TEXT' },
      { name: 'window_start', type: 'INTEGER' },
      { name: 'window_end', type: 'INTEGER' },
    ],
    stateColumns: [{ name: 'n', type: 'INTEGER', merge: { kind: 'add' } }],
    outputColumns: [{ name: 'n', sql: 'n' }],
    session: true,
  };
}
