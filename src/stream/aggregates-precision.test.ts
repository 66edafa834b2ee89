/**
 * sum() and avg() give the correctly rounded total of what they add, however the events are split
 * into deltas and in whatever order the store merges those: no float noise (945504.3599999986)
 * in a view's rows. The amounts are 2-decimal money with refunds, as in the demo; the exact
 * answers are computed with BigInt.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openFileLog } from '../log/index.ts';
import { seededRandom } from '../random.ts';
import { Type } from '../schema/index.ts';
import type { VersionTable } from '../view/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import { type Aggregate, AggInputs, avg, sum } from './aggregates.ts';
import { defineApp, from, topic, view } from './dsl.ts';
import { Engine } from './engine.ts';

/** Amounts in cents: sales of up to 1,000.00 and about one refund in eight. */
function amountsInCents(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const cents = 1 + Math.floor(random() * 100_000);
    out[i] = random() < 0.125 ? -cents : cents;
  }
  return out;
}

/** The decimal text of `cents` / 100, as a JSON number without noise would print it. */
function decimalText(cents: bigint): string {
  const sign = cents < 0n ? '-' : '';
  const abs = cents < 0n ? -cents : cents;
  const fraction = (abs % 100n).toString().padStart(2, '0').replace(/0+$/, '');
  return `${sign}${abs / 100n}${fraction === '' ? '' : `.${fraction}`}`;
}

/** 2^90: every double from 2^-38 up (every 2-decimal amount, 1e-9) is a whole number of 2^-90. */
const SCALE = 2 ** 90;

/** The correctly rounded sum of the doubles `values` (each a multiple of 2^-90), computed exactly. */
function exactSum(values: readonly number[]): number {
  let total = 0n;
  for (const v of values) total += BigInt(v * SCALE);
  return Number(total) / SCALE;
}

/** Folds `values` into a fresh state of `agg` at slot 0, as a task's fold does. */
function fold(agg: Aggregate<number>, values: readonly number[], from = 0, to = values.length): unknown[] {
  const width = agg.stateColumns('x').length;
  const state = new Array<unknown>(width);
  agg.init(state, 0);
  const inputs = new AggInputs(1);
  for (let i = from; i < to; i++) {
    agg.prepare(state, 0, values[i], inputs, 0);
    agg.apply(state, 0, inputs, 0, 0, 0, 0);
  }
  return state;
}

/** The store's `add` merge, column by column: stored + delta, NULL on one side counting as nothing. */
function mergeAdd(stored: unknown[], delta: readonly unknown[]): void {
  for (let c = 0; c < stored.length; c++) {
    const a = stored[c] as number | null;
    const b = delta[c] as number | null;
    stored[c] = a === null ? b : b === null ? a : a + b;
  }
}

/** What the view shows for a sum's state columns: its output expression, evaluated as SQLite would. */
function shownSum(state: readonly unknown[]): number {
  return (state[0] as number) + ((state[1] as number | null) ?? 0);
}

test('a sum of 1,000,000 two-decimal amounts, refunds included, is the exact total with no float noise', () => {
  const cents = amountsInCents(1_000_000, 14);
  const amounts = cents.map((c) => c / 100);
  const exactCents = cents.reduce((a, c) => a + BigInt(c), 0n);
  const total = shownSum(
    fold(
      sum((v: number) => v),
      amounts,
    ),
  );
  assert.equal(total, exactSum(amounts), 'the correctly rounded sum of the amounts');
  assert.equal(String(total), decimalText(exactCents));
  assert.equal(JSON.stringify({ total }), `{"total":${decimalText(exactCents)}}`);
  // The plain running sum of the same amounts is off in the last digits; the test would catch it.
  let naive = 0;
  for (const a of amounts) naive += a;
  assert.notEqual(String(naive), decimalText(exactCents), 'the naive sum shows float noise');
});

test('partial sums from many tasks, merged column by column in any order, give the same exact total', () => {
  const cents = amountsInCents(400_000, 15);
  const amounts = cents.map((c) => c / 100);
  const exactCents = cents.reduce((a, c) => a + BigInt(c), 0n);
  const agg = sum((v: number) => v);
  const random = seededRandom(16);
  // Deltas of 1 to 3,000 events each, as tasks on several threads flush them.
  const deltas: unknown[][] = [];
  for (let i = 0; i < amounts.length;) {
    const n = 1 + Math.floor(random() * 3000);
    deltas.push(fold(agg, amounts, i, Math.min(i + n, amounts.length)));
    i += n;
  }
  for (let round = 0; round < 3; round++) {
    const order = deltas.slice().sort(() => random() - 0.5);
    const stored = new Array<unknown>(2).fill(null);
    for (const d of order) mergeAdd(stored, d);
    assert.equal(String(shownSum(stored)), decimalText(exactCents), `merge order ${round}`);
  }
});

test('sums of large and tiny values stay correctly rounded as long as the total is below 2^41', () => {
  const values = [2 ** 40, 0.1, -(2 ** 40), 0.2, 1e-9, 3.3, -0.1, 1e-9, 123456789.01, -123456789.01];
  for (let rep = 0; rep < 5; rep++) values.push(...values.slice(0, 10));
  const agg = sum((v: number) => v);
  const stored = new Array<unknown>(2).fill(null);
  for (let i = 0; i < values.length; i += 3) mergeAdd(stored, fold(agg, values, i, Math.min(i + 3, values.length)));
  assert.equal(shownSum(stored), exactSum(values));
});

test('integer sums are unchanged: exact up to 2^53, the low part stays 0', () => {
  const state = fold(
    sum((v: number) => v),
    [2 ** 52, 1, 2, -3, 7],
  );
  assert.deepEqual(state, [2 ** 52 + 7, 0]);
});

/** A one-key version table holding `aggregates`, as plan.ts lays it out. */
function tableOf(aggregates: Record<string, Aggregate<number>>): VersionTable {
  const stateColumns = Object.entries(aggregates).flatMap(([name, a]) => a.stateColumns(name));
  const outputColumns = Object.entries(aggregates).map(([name, a]) => a.outputColumn(name));
  return {
    name: 'money',
    version: 1,
    fingerprint: 'fp',
    keyColumns: [{ name: 'region', type: 'TEXT' }],
    stateColumns,
    outputColumns,
  };
}

test('a view row in SQLite shows the exact total and mean after many flushes, and its JSON has no noise', async (t) => {
  const store = await openSqliteStore({ path: join(tempDir(t, 'kappa-agg-precision-'), 'views.db') });
  defer(t, () => store.close());
  const total = sum((v: number) => v);
  const mean = avg((v: number) => v);
  const def = tableOf({ total, mean });
  await store.ensureVersion(def);
  const cents = amountsInCents(200_000, 17);
  const amounts = cents.map((c) => c / 100);
  const exactCents = cents.reduce((a, c) => a + BigInt(c), 0n);
  const random = seededRandom(18);
  for (let i = 0; i < amounts.length;) {
    const n = 1 + Math.floor(random() * 400);
    const to = Math.min(i + n, amounts.length);
    const state = [...fold(total, amounts, i, to), ...fold(mean, amounts, i, to)];
    await store.flush('money', 1, [{ key: ['eu'], state }], []);
    i = to;
  }
  const { rows } = await store.query('SELECT region, total, mean FROM money');
  assert.equal(rows.length, 1);
  assert.equal(JSON.stringify(rows[0].total), decimalText(exactCents));
  assert.equal(rows[0].mean, exactSum(amounts) / amounts.length);
  // The public view keeps the columns' REAL type, so the HTTP API's filters compare them as numbers.
  const types = await store.query("SELECT name, type FROM pragma_table_info('money') ORDER BY cid");
  assert.deepEqual(types.rows, [
    { name: 'region', type: '' },
    { name: 'total', type: 'REAL' },
    { name: 'mean', type: 'REAL' },
  ]);
});

test('a stored sum without its low part (NULL) reads as a low part of 0, and merges on from there', async (t) => {
  const store = await openSqliteStore({ path: join(tempDir(t, 'kappa-agg-precision-'), 'views.db') });
  defer(t, () => store.close());
  const total = sum((v: number) => v);
  const mean = avg((v: number) => v);
  await store.ensureVersion(tableOf({ total, mean }));
  await store.flush('money', 1, [{ key: ['eu'], state: [10.25, null, 10.25, 1, null] }], []);
  let { rows } = await store.query('SELECT total, mean FROM money');
  assert.deepEqual(rows, [{ total: 10.25, mean: 10.25 }]);
  await store.flush('money', 1, [{ key: ['eu'], state: [...fold(total, [0.1, 0.2]), ...fold(mean, [0.1, 0.2])] }], []);
  ({ rows } = await store.query('SELECT total, mean FROM money'));
  assert.deepEqual(rows, [{ total: 10.55, mean: 10.55 / 3 }]);
});

/** sum() as Kappa built it before the two-part state: one REAL column, summed as plain floats. */
function oneColumnSum<T>(fn: (value: T) => number): Aggregate<T> {
  return {
    kind: 'sum',
    signature: `sum(${fn.toString()})`,
    stateColumns: (name) => [{ name, type: 'REAL', merge: { kind: 'add' } }],
    outputColumn: (name) => ({ name, sql: `"${name}"` }),
    init: (state, slot) => {
      state[slot] = 0;
    },
    prepare: (_state, _slot, value, inputs, i) => {
      inputs.num[i] = fn(value);
    },
    apply: (state, slot, inputs, i) => {
      state[slot] = (state[slot] as number) + inputs.num[i];
    },
  };
}

const quiet = { info() {}, warn() {} };

async function until<V>(what: string, get: () => Promise<V | undefined>): Promise<V> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test(
  'a data dir whose view was built with the one-column sum still starts: it serves on, and the view is rebuilt exact',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t, 'kappa-agg-precision-');
    const log = await openFileLog({ dir, logger: quiet });
    defer(t, () => log.close());
    const store = await openSqliteStore({ path: join(dir, 'views.db') });
    defer(t, () => store.close());
    await log.createTopic('payments', { partitions: 2 });
    const cents = amountsInCents(20_000, 19);
    const exactCents = cents.reduce((a, c) => a + BigInt(c), 0n);
    await log.append(
      'payments',
      cents.map((c, i) => ({ key: `k${i % 7}`, value: JSON.stringify({ amount: c / 100 }) })),
    );
    const Payment = Type.Object({ amount: Type.Number() });
    const appWith = (total: Aggregate<{ amount: number }>) => {
      const payments = topic('payments', { partitions: 2, schema: Payment });
      const totals = from(payments)
        .groupBy(() => ({ all: 'all' }))
        .aggregate({ total });
      return defineApp({ topics: [payments], views: [view('totals', totals)] });
    };
    const flushIntervalMs = 5;
    // Undefined until the view's first flush has made its table.
    const shown = async () =>
      (await store.query('SELECT total FROM totals').catch(() => ({ rows: [] }))).rows[0]?.total as number | undefined;

    // The old Kappa builds version 1 with one column per sum.
    const old = new Engine({
      log,
      store,
      control: store,
      app: appWith(oneColumnSum((p) => p.amount)),
      logger: quiet,
      flushIntervalMs,
      dirtyRowsMax: 50,
    });
    await old.start();
    await until('version 1 to hold every payment', async () => {
      const total = await shown();
      return total !== undefined && Math.round(total * 100) === Number(exactCents) ? total : undefined;
    });
    await old.stop();
    assert.equal((await store.definition('totals', 1))?.stateColumns.length, 1);

    // This Kappa starts on the same data dir: version 1 keeps serving, version 2 is built exact.
    const engine = new Engine({
      log,
      store,
      control: store,
      app: appWith(sum((p) => p.amount)),
      logger: quiet,
      flushIntervalMs,
      dirtyRowsMax: 50,
    });
    await engine.start();
    defer(t, () => engine.stop());
    assert.notEqual(await shown(), undefined, 'version 1 still serves');
    await until('version 2 to go live', async () =>
      (await store.versions()).find((v) => v.name === 'totals' && v.version === 2 && v.state === 'live'),
    );
    // Version 2 holds every payment once its tasks have flushed them all.
    const total = await until('version 2 to hold every payment', async () => {
      const shownTotal = await shown();
      return shownTotal !== undefined && Math.round(shownTotal * 100) === Number(exactCents) ? shownTotal : undefined;
    });
    assert.equal(JSON.stringify(total), decimalText(exactCents));
    assert.equal((await store.definition('totals', 2))?.stateColumns.length, 2);
  },
);
