/**
 * Group commit (./flush.ts): flushes that arrive while another is being written are committed
 * together, and one that fails (checked before its rows, or rolled back to its savepoint) fails alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cp, sale, salesDef, snapshot, tagsDef } from '../test-helpers.ts';
import { SqliteTestStores } from './test-helpers.ts';

const stores = new SqliteTestStores();

test('flushes that arrive together commit together; one going backwards fails alone, its rows rolled back', async () => {
  const h = await stores.open();
  try {
    const store = h.store;
    await store.ensureVersion(salesDef());
    await store.flush('sales', 1, [sale('eu', 2024, 1)], [cp(10, 0)]);
    const many = Array.from({ length: 2_500 }, (_, i) => sale(`r${i}`, 2024, 1));
    const results = await Promise.allSettled([
      store.flush('sales', 1, many, [cp(5, 1)]),
      store.flush('sales', 1, [sale('eu', 2024, 100), sale('us', 2024, 7)], [cp(9, 0)]), // backwards
      store.flush('sales', 1, [sale('eu', 2024, 2)], [cp(20, 2)]),
      store.flush('sales', 1, [sale('asia', 2024, 3)], [cp(4, 3)]),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /backwards/);
    const rows = await snapshot(store);
    assert.equal(rows.length, 2_500 + 2);
    assert.deepEqual(
      rows.filter((r) => !String(r.region).startsWith('r')).map((r) => [r.region, r.total]),
      [
        ['asia', 3],
        ['eu', 3],
      ],
    );
    assert.deepEqual(
      (await store.checkpoints('sales', 1)).map((c) => [c.partition, c.offset]),
      [
        [0, 10],
        [1, 5],
        [2, 20],
        [3, 4],
      ],
    );
  } finally {
    await h.cleanup();
  }
});

test('a flush whose own checkpoints go backwards (12, then 11) fails alone in a group, none of its rows written', async () => {
  const h = await stores.open();
  try {
    const store = h.store;
    await store.ensureVersion(salesDef());
    const results = await Promise.allSettled([
      store.flush('sales', 1, [sale('eu', 2024, 1)], [cp(5, 0)]),
      store.flush('sales', 1, [sale('us', 2024, 2)], [cp(12, 1), cp(11, 1)]), // backwards within the flush
      store.flush('sales', 1, [sale('eu', 2024, 4)], [cp(7, 0)]),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /offset 12 → 11/);
    assert.deepEqual(
      (await snapshot(store)).map((r) => [r.region, r.total]),
      [['eu', 5]],
    );
    assert.deepEqual(
      (await store.checkpoints('sales', 1)).map((c) => [c.partition, c.offset]),
      [[0, 7]],
    );
  } finally {
    await h.cleanup();
  }
});

test('a custom merge that throws in a group rolls back only its own flush', async () => {
  const h = await stores.open();
  try {
    const store = h.store;
    let fail = false;
    await store.ensureVersion(
      tagsDef(() => {
        if (fail) throw new Error('merge exploded');
      }),
    );
    await store.flush('tags', 1, [{ key: [1], state: [1, ['a']] }], [cp(1, 0)]);
    fail = true;
    const results = await Promise.allSettled([
      store.flush('tags', 1, [{ key: [2], state: [1, ['b']] }], [cp(1, 1)]), // a new row: no merge
      store.flush('tags', 1, [{ key: [1], state: [1, ['c']] }], [cp(2, 0)]), // merges: throws
      store.flush('tags', 1, [{ key: [3], state: [1, ['d']] }], [cp(1, 2)]),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(
      (await snapshot(store, 'tags')).map((r) => [r.user_id, r.tags]),
      [
        [1, '["a"]'],
        [2, '["b"]'],
        [3, '["d"]'],
      ],
    );
    assert.deepEqual(
      (await store.checkpoints('tags', 1)).map((c) => [c.partition, c.offset]),
      [
        [0, 1],
        [1, 1],
        [2, 1],
      ],
    );
  } finally {
    await h.cleanup();
  }
});
