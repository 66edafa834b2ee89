import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { type LogRecord, RecordBatch, encodeBatch } from '../log/index.ts';
import { aggregate, avg, count, first, last, max, min, sum } from './aggregates.ts';
import { type TopicDef, from, topic, view } from './dsl.ts';
import { compileView } from './plan.ts';
import { NO_WATERMARK, type TaskState } from './task-plan.ts';
import { validateDeltas } from '../view/definition.ts';
import type { RowDelta } from '../view/types.ts';
import { hopping, tumbling, windowStarts } from './windows.ts';

interface Sale {
  region: string;
  amount: number;
  ts: number;
  items?: string[];
}

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1);

function records(values: unknown[], startOffset = 0): LogRecord[] {
  return values.map((v, i) => ({
    offset: startOffset + i,
    timestamp: T0,
    key: null,
    value: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)),
    headers: [],
  }));
}

/** Rows of a task state as plain objects keyed by their group key, for readable assertions. */
function rows(state: TaskState): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const r of state.dirty.values()) out[r.key.join('|')] = r.state;
  return out;
}

const sales = topic<Sale>('sales', { partitions: 1, time: (s) => s.ts });

/** A view counting the records of `source` by region. */
function countsByRegion<T extends { region: string }>(source: TopicDef<T>) {
  return compileView(
    view(
      'v',
      from(source)
        .groupBy((s) => ({ region: s.region }))
        .aggregate({ n: count() }),
    ),
  );
}

describe('operators and aggregates', () => {
  test('filter, map and flatMap run in order before grouping', () => {
    const plan = compileView(
      view(
        'v',
        from(sales)
          .filter((s) => s.amount > 0)
          .map((s) => ({ ...s, amount: s.amount * 2 }))
          .flatMap((s) => (s.items ?? ['none']).map((item) => ({ item, amount: s.amount })))
          .groupBy((x) => ({ item: x.item }))
          .aggregate({ n: count(), total: sum((x) => x.amount) }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records([
        { region: 'n', amount: 5, ts: T0, items: ['a', 'b'] },
        { region: 'n', amount: -1, ts: T0, items: ['a'] },
        { region: 's', amount: 1, ts: T0 },
        { region: 's', amount: 3, ts: T0, items: ['a'] },
      ]),
      state,
    );
    assert.deepEqual(rows(state), { a: [2, 16, 0], b: [1, 10, 0], none: [1, 2, 0] });
  });

  test('count, sum, min, max, avg, first, last and a custom aggregate fold per group', () => {
    const distinct = aggregate<Sale, number[]>({
      init: () => [],
      add: (s, v) => (s.includes(v.amount) ? s : [...s, v.amount].sort((a, b) => a - b)),
      merge: (a, b) => [...new Set([...a, ...b])].sort((x, y) => x - y),
    });
    const plan = compileView(
      view(
        'v',
        from(sales)
          .groupBy((s) => ({ region: s.region }))
          .aggregate({
            n: count(),
            total: sum((s) => s.amount),
            lo: min((s) => s.amount),
            hi: max((s) => s.amount),
            mean: avg((s) => s.amount),
            firstAmount: first((s) => s.amount),
            lastAmount: last((s) => s.amount),
            amounts: distinct,
          }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    // Event times out of log order: first/last follow event time, not arrival.
    plan.process(
      records([
        { region: 'n', amount: 10, ts: T0 + 2000 },
        { region: 'n', amount: 4, ts: T0 },
        { region: 'n', amount: 7, ts: T0 + 5000 },
        { region: 'n', amount: 4, ts: T0 + 1000 },
      ]),
      state,
    );
    // Slots: n, total (high and low part), lo, hi, mean (sum, count, low part of the sum), first and last
    // (value, time, partition, offset: the event's place in the order they pick by), amounts.
    assert.deepEqual(rows(state).n, [4, 25, 0, 4, 10, 25, 4, 0, 4, T0, 0, 1, 7, T0 + 5000, 0, 2, [4, 7, 10]]);
  });

  test('group keys keep their types, and a boolean key is stored as 0/1', () => {
    const plan = compileView(
      view(
        'v',
        from(sales)
          .groupBy((s) => ({ region: s.region, big: s.amount > 5, year: new Date(s.ts).getUTCFullYear() }))
          .aggregate({ n: count() }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records([{ region: 'n', amount: 9, ts: T0 }]), state);
    const [row] = [...state.dirty.values()];
    assert.deepEqual(row.key, ['n', 1, 2026]);
    assert.deepEqual(state.keyNames, ['region', 'big', 'year']);
    const def = plan.definition(1, row, state.keyNames!);
    assert.deepEqual(def.keyColumns, [
      { name: 'region', type: 'TEXT' },
      { name: 'big', type: 'INTEGER' },
      { name: 'year', type: 'INTEGER' },
    ]);
    assert.deepEqual(
      def.stateColumns.map((c) => c.name),
      ['n'],
    );
  });

  test('splitting the same records into different batches gives the same rows', () => {
    const plan = compileView(
      view(
        'v',
        from(sales)
          .groupBy((s) => ({ region: s.region }))
          .aggregate({ total: sum((s) => s.amount), n: count() }),
      ),
    );
    const values = Array.from({ length: 200 }, (_, i) => ({ region: ['n', 's', 'e'][i % 3], amount: i, ts: T0 + i }));
    const whole = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records(values), whole);
    const pieces = plan.newTaskState(0, NO_WATERMARK);
    for (let i = 0; i < values.length; i += 7) plan.process(records(values.slice(i, i + 7), i), pieces);
    assert.deepEqual(rows(pieces), rows(whole));
  });
});

describe('bad records go to the dead-letter list and change nothing', () => {
  const Strict = Type.Object({ region: Type.String(), amount: Type.Number({ minimum: 0 }), ts: Type.Integer() });
  const strict = topic('strict', { schema: Strict, time: (s) => s.ts });

  test('schema violations and non-JSON values are dead letters naming the field', () => {
    const plan = countsByRegion(strict);
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records([
        { region: 'n', amount: 1, ts: T0 },
        { region: 'n', amount: -5, ts: T0 },
        'not json',
        { region: 'n', ts: T0 },
      ]),
      state,
    );
    assert.deepEqual(rows(state), { n: [1] });
    assert.equal(state.deadLetters.length, 3);
    assert.deepEqual(
      state.deadLetters.map((d) => d.record.offset),
      [1, 2, 3],
    );
    assert.match(state.deadLetters[0].reason, /amount must be at least 0/);
    assert.match(state.deadLetters[1].reason, /not valid JSON/);
    assert.match(state.deadLetters[2].reason, /amount is required/);
  });

  test('a throwing time extractor, operator or key function sends the record to the dead letters without touching rows', () => {
    const bad = topic<{ region: string; t?: number; boom?: boolean }>('bad', {
      time: (r) => {
        if (r.t === undefined) throw new Error('no t');
        return r.t;
      },
    });
    const plan = compileView(
      view(
        'v',
        from(bad)
          .flatMap((r) => [r, r])
          .map((r) => {
            if (r.boom) throw new Error('boom');
            return r;
          })
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ n: count() }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records([{ region: 'n', t: T0 }, { region: 'n' }, { region: 'n', t: T0, boom: true }]), state);
    assert.deepEqual(rows(state), { n: [2] });
    assert.deepEqual(
      state.deadLetters.map((d) => d.reason),
      ['no t', 'pipeline: boom'],
    );
  });
});

describe('poison records: whatever the logic gives for one record, that record is a dead letter and the view goes on', () => {
  interface Rec {
    region: string;
    amount: number;
    ts: number;
    note?: unknown;
  }
  const recs = topic<Rec>('recs', { partitions: 1, time: (r) => r.ts });
  const good = [
    { region: 'n', amount: 1, ts: T0 },
    { region: 's', amount: 2, ts: T0 + 1 },
    { region: 'n', amount: 3, ts: T0 + 2 },
  ];

  /** Folds the good records with `poison` after the first one; the rows must be the good records' fold and the poison record the one dead letter. */
  function foldsAroundPoison(
    v: ReturnType<typeof view>,
    poison: LogRecord,
    reason: RegExp,
    extraGood: Rec[] = [],
  ): TaskState {
    const plan = compileView(v);
    // The good records at the offsets they have around the poison (first() and last() keep an event's offset).
    const [first, ...rest] = records([...good, ...extraGood], 1);
    const around = [{ ...first, offset: 0 }, ...rest.map((r) => ({ ...r, offset: r.offset + 1 }))];
    const clean = plan.newTaskState(0, NO_WATERMARK);
    plan.process(around, clean);
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process([around[0], { ...poison, offset: 1 }, ...around.slice(1)], state);
    assert.deepEqual(
      state.deadLetters.map((d) => d.record.offset),
      [1],
      'the poison record is the one dead letter',
    );
    assert.match(state.deadLetters[0].reason, reason);
    assert.deepEqual(rows(state), rows(clean), 'the rows are the fold of the good records');
    assert.deepEqual(state.keyNames, clean.keyNames);
    assert.equal(state.watermarkMs, clean.watermarkMs, 'a dead letter does not move the watermark');
    // What the task hands the store passes the store's check (which is now an invariant).
    validateDeltas(plan.definition(1, state.dirty.values()[0], state.keyNames!), state.dirty.values() as RowDelta[]);
    return state;
  }

  const poison = (value: unknown, timestamp = T0): LogRecord => ({
    offset: 0,
    timestamp,
    key: null,
    value: Buffer.from(JSON.stringify(value)),
    headers: [],
  });

  test('a group key that is NaN, infinite, an object, an array, undefined, a bigint, a symbol or a function', () => {
    const cases: [unknown, RegExp][] = [
      [Number.NaN, /^pipeline: group key year is NaN; group keys must be strings, finite numbers, booleans or null$/],
      [Number.POSITIVE_INFINITY, /group key year is Infinity/],
      [Number.NEGATIVE_INFINITY, /group key year is -Infinity/],
      [{ y: 1 }, /group key year is an object \{"y":1\}/],
      [[2026], /group key year is an array \[2026\]/],
      [undefined, /group key year is undefined/],
      [5n, /group key year is the bigint 5n/],
      [Symbol('y'), /group key year is a symbol \(y\)/],
      [() => 1, /group key year is a function/],
    ];
    for (const [bad, reason] of cases) {
      const v = view(
        'v',
        from(recs)
          .groupBy((r) => ({
            region: r.region,
            year: (r.note === 'poison' ? bad : new Date(r.ts).getUTCFullYear()) as number,
          }))
          .aggregate({ n: count(), total: sum((r) => r.amount) }),
      );
      foldsAroundPoison(v, poison({ region: 'n', amount: 5, ts: T0, note: 'poison' }), reason);
    }
  });

  test('the sales example: a schema-valid ts past the last date is a dead letter, not a NaN year that stops the view', () => {
    const v = view(
      'aggregated_sales',
      from(recs)
        .filter((s) => s.amount > 0)
        .groupBy((s) => ({ region: s.region, year: new Date(s.ts).getUTCFullYear() }))
        .aggregate({ total: sum((s) => s.amount), orders: count() }),
    );
    for (const ts of [8_640_000_000_000_001, Number.MAX_SAFE_INTEGER, -8_640_000_000_000_001]) {
      foldsAroundPoison(
        v,
        poison({ region: 'n', amount: 5, ts }),
        new RegExp(`^the time extractor's event time is ${ts}, outside the range of dates`),
      );
    }
    // Without a time extractor the same year comes out NaN: the group key check catches it.
    const untimed = topic<Rec>('untimed', { partitions: 1 });
    const u = view(
      'aggregated_sales',
      from(untimed)
        .groupBy((s) => ({ region: s.region, year: new Date(s.ts).getUTCFullYear() }))
        .aggregate({ total: sum((s) => s.amount) }),
    );
    foldsAroundPoison(u, poison({ region: 'n', amount: 5, ts: 8_640_000_000_000_001 }), /group key year is NaN/);
  });

  test('a groupBy that throws, returns no object, or names a field that cannot be a column', () => {
    for (const [fn, reason] of [
      [
        () => {
          throw new Error('no key');
        },
        /^pipeline: no key$/,
      ],
      [() => null, /groupBy\(\) must return an object of key fields, got null/],
      [() => ({ other: 'n' }), /group key region is undefined/],
      [
        () => {
          throw null;
        },
        /^pipeline: null$/,
      ],
      [
        () => {
          throw 'plain text';
        },
        /^pipeline: plain text$/,
      ],
    ] as [(r: Rec) => Record<string, string>, RegExp][]) {
      const v = view(
        'v',
        from(recs)
          .groupBy((r) => (r.note === 'poison' ? fn(r) : { region: r.region }))
          .aggregate({ n: count() }),
      );
      foldsAroundPoison(v, poison({ region: 'n', amount: 5, ts: T0, note: 'poison' }), reason);
    }
  });

  test('a dead-lettered first record does not fix the key names', () => {
    const v = view(
      'v',
      from(recs)
        .groupBy((r) =>
          r.note === 'poison' ? ({ other: 1, bad: Number.NaN } as unknown as { region: string }) : { region: r.region },
        )
        .aggregate({ n: count() }),
    );
    const plan = compileView(v);
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process([poison({ region: 'n', amount: 1, ts: T0, note: 'poison' }), ...records(good, 1)], state);
    assert.deepEqual(state.keyNames, ['region']);
    assert.deepEqual(rows(state), { n: [2], s: [1] });
    const names = compileView(
      view(
        'v',
        from(recs)
          .groupBy((r) =>
            r.note === 'poison' ? ({ 'bad name': 1 } as unknown as { region: string }) : { region: r.region },
          )
          .aggregate({ n: count() }),
      ),
    );
    const s2 = names.newTaskState(0, NO_WATERMARK);
    names.process([poison({ region: 'n', amount: 1, ts: T0, note: 'poison' }), ...records(good, 1)], s2);
    assert.deepEqual(
      s2.deadLetters.map((d) => d.reason),
      ['pipeline: group key field "bad name" is not usable as a column name'],
    );
    assert.deepEqual(s2.keyNames, ['region']);
  });

  test('key names the table cannot have (a repeated column, too long, reserved) are the dead letter of the record that brings them', () => {
    for (const [names, reason] of [
      [
        { total: 'x' },
        /^pipeline: the group key fields \(total\) cannot be columns of the view: Column "total" appears twice/,
      ],
      [{ Region: 'x', region: 'y' }, /Column "region" appears twice .* \(names are case-insensitive\)/],
      [{ ['k'.repeat(64)]: 'x' }, /column name "k+" is not a valid name: use 1-63 letters/],
      [{ kappa_region: 'x' }, /Column "kappa_region" .* reserved for the store/],
    ] as [Record<string, string>, RegExp][]) {
      const plan = compileView(
        view(
          'v',
          from(recs)
            .groupBy((r) => (r.note === 'poison' ? names : { region: r.region }))
            .aggregate({ total: sum((r) => r.amount) }),
        ),
      );
      const state = plan.newTaskState(0, NO_WATERMARK);
      plan.process([poison({ region: 'n', amount: 1, ts: T0, note: 'poison' }), ...records(good, 1)], state);
      assert.equal(state.deadLetters.length, 1);
      assert.match(state.deadLetters[0].reason, reason);
      assert.deepEqual(state.keyNames, ['region']);
      assert.deepEqual(rows(state), { n: [4, 0], s: [2, 0] });
    }
  });

  test('an aggregate extractor that throws, or gives NaN, Infinity or a non-number, leaves every aggregate of the row as it was', () => {
    const cases: [(r: Rec) => number, RegExp][] = [
      [
        () => {
          throw new Error('no amount');
        },
        /^pipeline: aggregate total: no amount$/,
      ],
      [() => Number.NaN, /^pipeline: aggregate total: sum\(\) got NaN, not a finite number$/],
      [() => Number.POSITIVE_INFINITY, /sum\(\) got Infinity, not a finite number/],
      [() => '12' as unknown as number, /sum\(\) got "12", not a finite number/],
      [() => undefined as unknown as number, /sum\(\) got undefined/],
    ];
    for (const [fn, reason] of cases) {
      // count() comes first, so a fold that applied aggregates one by one would have counted the record.
      const v = view(
        'v',
        from(recs)
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ n: count(), total: sum((r) => (r.note === 'poison' ? fn(r) : r.amount)) }),
      );
      foldsAroundPoison(v, poison({ region: 'n', amount: 5, ts: T0, note: 'poison' }), reason);
    }
    for (const [name, agg] of [
      ['avg', avg((r: Rec) => (r.note === 'poison' ? Number.NaN : r.amount))],
      ['min', min((r: Rec) => (r.note === 'poison' ? Number.NaN : r.amount))],
      ['max', max((r: Rec) => (r.note === 'poison' ? Number.NEGATIVE_INFINITY : r.amount))],
    ] as const) {
      const v = view(
        'v',
        from(recs)
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ n: count(), x: agg }),
      );
      foldsAroundPoison(
        v,
        poison({ region: 'n', amount: 5, ts: T0, note: 'poison' }),
        new RegExp(`aggregate x: ${name}\\(\\) got -?(NaN|Infinity)`),
      );
    }
  });

  test('first() and last() take strings, finite numbers, booleans and null; anything else is a dead letter, even when the event would not win', () => {
    for (const [bad, reason] of [
      [undefined, /aggregate note: last\(\) got a value that is undefined/],
      [{ a: 1 }, /last\(\) got a value that is an object/],
      [Number.NaN, /last\(\) got a value that is NaN/],
    ] as [unknown, RegExp][]) {
      const v = view(
        'v',
        from(recs)
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ n: count(), note: last((r) => (r.note === 'poison' ? bad : r.amount) as number) }),
      );
      // The poison record is the oldest in event time, so last() would not take its value: it is checked all the same.
      foldsAroundPoison(v, poison({ region: 'n', amount: 5, ts: T0 - 1000, note: 'poison' }), reason);
    }
  });

  test('a custom aggregate whose add throws after changing its state in place, or returns what JSON cannot hold, leaves the row as it was', () => {
    const cases: [(s: number[], r: Rec) => number[], RegExp][] = [
      [
        (s) => {
          s.push(999);
          throw new Error('half done');
        },
        /^pipeline: aggregate seen: half done$/,
      ],
      [
        (s) => [...s, 10n as unknown as number],
        /aggregate seen: the custom aggregate's add\(\) returned a state that cannot be stored as JSON \(Do not know how to serialize a BigInt\)/,
      ],
      [
        (s) => {
          const c: unknown[] = [...s];
          c.push(c);
          return c as number[];
        },
        /cannot be stored as JSON \(Converting circular structure/,
      ],
      [() => undefined as unknown as number[], /returned a state that is undefined, which has no JSON form/],
    ];
    for (const [add, reason] of cases) {
      const seen = aggregate<Rec, number[]>({
        init: () => [],
        add: (s, r) => (r.note === 'poison' ? add(s, r) : [...s, r.amount]),
        merge: (a, b) => [...a, ...b],
      });
      const state = foldsAroundPoison(
        view(
          'v',
          from(recs)
            .groupBy((r) => ({ region: r.region }))
            .aggregate({ n: count(), seen }),
        ),
        poison({ region: 'n', amount: 5, ts: T0, note: 'poison' }),
        reason,
      );
      assert.deepEqual(rows(state).n, [2, [1, 3]]);
    }
  });

  test("a custom aggregate's row keeps the state's JSON form, which the store keeps and the engine's threads can copy", () => {
    const odd = aggregate<Rec, { n: number; f?: unknown; lo?: unknown }>({
      init: () => ({ n: 0 }),
      add: (s, r) => ({ n: s.n + r.amount, f: () => 1, lo: Number.POSITIVE_INFINITY }),
      merge: (a, b) => ({ n: a.n + b.n }),
    });
    const plan = compileView(
      view(
        'v',
        from(recs)
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ odd }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records(good), state);
    assert.deepEqual(rows(state), { n: [{ n: 4, lo: null }], s: [{ n: 2, lo: null }] });
    assert.doesNotThrow(() => structuredClone(state.dirty.values()));
  });

  test('a custom aggregate in a flatMap gives the sequential fold when two outputs of one record share a row, and none of it when one of them fails', () => {
    const seen = aggregate<{ region: string; amount: number }, number[]>({
      init: () => [],
      add: (s, x) => {
        if (x.amount < 0) throw new Error('negative');
        s.push(x.amount); // in place: it gets a copy
        return s;
      },
      merge: (a, b) => [...a, ...b],
    });
    const v = view(
      'v',
      from(recs)
        .flatMap((r) => [
          { region: r.region, amount: r.amount },
          { region: r.region, amount: r.note === 'poison' ? -1 : r.amount * 10 },
        ])
        .groupBy((x) => ({ region: x.region }))
        .aggregate({ n: count(), seen }),
    );
    const plan = compileView(v);
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      [...records(good), poison({ region: 'n', amount: 7, ts: T0, note: 'poison' })].map((r, offset) => ({
        ...r,
        offset,
      })),
      state,
    );
    assert.deepEqual(rows(state), { n: [4, [1, 10, 3, 30]], s: [2, [2, 20]] });
    assert.deepEqual(
      state.deadLetters.map((d) => [d.record.offset, d.reason]),
      [[3, 'pipeline: aggregate seen: negative']],
    );
  });

  test('an event time outside the range of dates, from the extractor or the record timestamp, neither folds nor moves the watermark', () => {
    const perMinute = (source: TopicDef<Rec>) =>
      view(
        'v',
        from(source)
          .window(tumbling('1m'))
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ n: count() }),
      );
    foldsAroundPoison(
      perMinute(recs),
      poison({ region: 'n', amount: 5, ts: 1e16 }),
      /^the time extractor's event time is 10000000000000000, outside the range of dates/,
    );
    const untimed = topic<Rec>('untimed', { partitions: 1 });
    const plan = compileView(perMinute(untimed));
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process([poison({ region: 'n', amount: 5, ts: 0 }, 2 ** 60), ...records(good, 1)], state);
    assert.match(
      state.deadLetters[0].reason,
      /^the record timestamp is 1152921504606847000, outside the range of dates/,
    );
    assert.equal(state.late.length, 0, 'the good records that follow are not late');
    assert.deepEqual(rows(state), { [`n|${T0}|${T0 + MIN}`]: [2], [`s|${T0}|${T0 + MIN}`]: [1] });
  });

  test('a window that would reach outside the range of dates is a dead letter (tumbling and hopping)', () => {
    for (const w of [tumbling('1m'), hopping('2m', '1m')]) {
      const v = view(
        'v',
        from(recs)
          .window(w)
          .groupBy((r) => ({ region: r.region }))
          .aggregate({ n: count() }),
      );
      // 8.64e15 is the last valid date, but its window would end a minute after it.
      foldsAroundPoison(
        v,
        poison({ region: 'n', amount: 5, ts: 8.64e15 }),
        /^event time 8640000000000000: its window \[\d+, 8640000000060000\) reaches outside the range of dates/,
      );
    }
  });

  test('a reason is cut to a bounded length', () => {
    const v = view(
      'v',
      from(recs)
        .map((r) => {
          if (r.note === 'poison') throw new Error('x'.repeat(100_000));
          return r;
        })
        .groupBy((r) => ({ region: r.region }))
        .aggregate({ n: count() }),
    );
    const state = foldsAroundPoison(
      v,
      poison({ region: 'n', amount: 5, ts: T0, note: 'poison' }),
      /^pipeline: x+\.\.\.$/,
    );
    assert.ok(state.deadLetters[0].reason.length <= 1003);
  });
});

describe('event time, windows and late data', () => {
  test('window starts align to the epoch: one for tumbling, size/advance for hopping', () => {
    assert.deepEqual(windowStarts(tumbling('1m'), T0 + 61_000), [T0 + MIN]);
    assert.deepEqual(windowStarts(hopping('3m', '1m'), T0 + 61_000), [T0 - MIN, T0, T0 + MIN]);
    assert.deepEqual(
      windowStarts(hopping('10s', '4s'), 9_000),
      [0, 4000, 8000].filter((s) => 9_000 < s + 10_000),
    );
  });

  test('tumbling windows give rows with window_start and window_end', () => {
    const plan = compileView(
      view(
        'v',
        from(sales)
          .window(tumbling('1m'))
          .groupBy((s) => ({ region: s.region }))
          .aggregate({ total: sum((s) => s.amount) }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records([
        { region: 'n', amount: 1, ts: T0 + 1000 },
        { region: 'n', amount: 2, ts: T0 + 59_999 },
        { region: 'n', amount: 4, ts: T0 + MIN },
      ]),
      state,
    );
    assert.deepEqual(rows(state), { [`n|${T0}|${T0 + MIN}`]: [3, 0], [`n|${T0 + MIN}|${T0 + 2 * MIN}`]: [4, 0] });
    const def = plan.definition(1, [...state.dirty.values()][0], state.keyNames!);
    assert.deepEqual(
      def.keyColumns.map((c) => c.name),
      ['region', 'window_start', 'window_end'],
    );
  });

  test('hopping windows count an event in every window that contains it', () => {
    const plan = compileView(view('v', from(sales).window(hopping('2m', '1m')).aggregate({ n: count() })));
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records([{ region: 'n', amount: 1, ts: T0 + 90_000 }]), state);
    assert.deepEqual(Object.keys(rows(state)).sort(), [`${T0}|${T0 + 2 * MIN}`, `${T0 + MIN}|${T0 + 3 * MIN}`]);
  });

  test('the watermark trails the newest event time by the out-of-orderness and never goes back', () => {
    const plan = compileView(
      view(
        'v',
        from(sales)
          .window(tumbling('1m', { outOfOrderness: '10s' }))
          .aggregate({ n: count() }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records([{ region: 'n', amount: 1, ts: T0 + 30_000 }]), state);
    assert.equal(state.watermarkMs, T0 + 20_000);
    plan.process(records([{ region: 'n', amount: 1, ts: T0 + 5_000 }], 1), state);
    assert.equal(state.watermarkMs, T0 + 20_000);
  });

  test('events within the allowed lateness still count; later ones go to the late list, never dropped', () => {
    const plan = compileView(
      view(
        'v',
        from(sales)
          .window(tumbling('1m', { outOfOrderness: '5s', allowedLateness: '30s' }))
          .aggregate({ n: count() }),
      ),
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records([
        { region: 'n', amount: 1, ts: T0 + 10_000 }, // window [T0, T0+1m)
        { region: 'n', amount: 1, ts: T0 + MIN + 80_000 }, // window [T0+2m, T0+3m); watermark → T0 + 2m15s
        { region: 'n', amount: 1, ts: T0 + 50_000 }, // window ended at T0+1m; +30s lateness = T0+1m30s < watermark: late
        { region: 'n', amount: 1, ts: T0 + MIN + 10_000 }, // window [T0+1m, T0+2m) + 30s = T0+2m30s > watermark: counts
      ]),
      state,
    );
    assert.deepEqual(rows(state), {
      [`${T0}|${T0 + MIN}`]: [1],
      [`${T0 + MIN}|${T0 + 2 * MIN}`]: [1],
      [`${T0 + 2 * MIN}|${T0 + 3 * MIN}`]: [1],
    });
    assert.equal(state.late.length, 1);
    assert.equal(state.late[0].record.offset, 2);
    assert.equal(state.late[0].eventTimeMs, T0 + 50_000);
    assert.equal(state.late[0].watermarkMs, T0 + MIN + 75_000);
  });

  test('a view restarted from a checkpoint keeps the checkpointed watermark', () => {
    const plan = compileView(view('v', from(sales).window(tumbling('1m')).aggregate({ n: count() })));
    const state = plan.newTaskState(0, T0 + 5 * MIN);
    plan.process(records([{ region: 'n', amount: 1, ts: T0 }]), state);
    assert.equal(state.late.length, 1);
    assert.equal(state.watermarkMs, T0 + 5 * MIN);
  });
});

describe('fingerprints', () => {
  test('change with the logic and stay the same for the same definition', () => {
    /** The same definition each call: totals by region, of the sales `keep` lets through (all, without it). */
    const totals = (keep?: (s: Sale) => boolean) =>
      compileView(
        view(
          'v',
          (keep ? from(sales).filter(keep) : from(sales))
            .groupBy((s) => ({ region: s.region }))
            .aggregate({ total: sum((s) => s.amount) }),
        ),
      );
    const a = totals();
    const b = totals();
    const c = totals((s) => s.amount > 0);
    assert.equal(a.fingerprint, b.fingerprint);
    assert.notEqual(a.fingerprint, c.fingerprint);
  });
});

describe('folding whole batches', () => {
  const Strict = Type.Object({ region: Type.String(), amount: Type.Number({ minimum: 0 }), ts: Type.Integer() });
  const strict = topic('strict', { partitions: 1, schema: Strict, time: (s) => s.ts });
  const loose = topic<Sale>('loose', { partitions: 1, time: (s) => s.ts });

  /** Values that take every path: valid, schema-invalid, not JSON, not UTF-8, a BOM, a real U+FFFD, no value, late, a throwing key. */
  function values(): (string | Buffer | null)[] {
    const out: (string | Buffer | null)[] = [];
    for (let i = 0; i < 200; i++)
      out.push(
        JSON.stringify({
          region: ['n', 's', 'e'][i % 3],
          amount: i,
          ts: T0 + i * 7_000,
          items: i % 4 === 0 ? ['a', 'b'] : [],
        }),
      );
    out.push(JSON.stringify({ region: 'n', amount: -1, ts: T0 }));
    out.push('{"region": "n", "amount": 1,');
    out.push(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    out.push(
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(JSON.stringify({ region: 'bom', amount: 1, ts: T0 + 10 * MIN })),
      ]),
    );
    out.push(JSON.stringify({ region: 'n\uFFFD', amount: 2, ts: T0 + 10 * MIN }));
    out.push(null);
    out.push(JSON.stringify({ region: 'late', amount: 3, ts: T0 - 60 * MIN }));
    out.push(JSON.stringify({ region: 'boom', amount: 4, ts: T0 + 10 * MIN }));
    return out;
  }

  function state(plan: ReturnType<typeof compileView>): TaskState {
    return plan.newTaskState(0, NO_WATERMARK);
  }

  for (const [name, make] of [
    [
      'schema, grouped',
      () =>
        view(
          'v',
          from(strict)
            .groupBy((s) => {
              if (s.region === 'boom') throw new Error('no boom');
              return { region: s.region };
            })
            .aggregate({ n: count(), total: sum((s) => s.amount) }),
        ),
    ],
    [
      'no schema, tumbling window',
      () =>
        view(
          'v',
          from(loose)
            .window(tumbling('1m'))
            .groupBy((s) => ({ region: s.region }))
            .aggregate({ n: count(), mean: avg((s) => s.amount) }),
        ),
    ],
    [
      'no schema, hopping window and flatMap',
      () =>
        view(
          'v',
          from(loose)
            .window(hopping('2m', '1m'))
            .flatMap((s) => (s.items ?? []).map((item) => ({ item, amount: s.amount })))
            .groupBy((x) => ({ item: x.item }))
            .aggregate({ n: count() }),
        ),
    ],
  ] as const) {
    test(`processBatch gives the rows, dead letters and late events that process gives (${name})`, () => {
      const plan = compileView(make());
      const encodable = values().map((value, i) => ({
        key: `k${i}`,
        value,
        timestamp: T0 + i,
        headers: i % 50 === 0 ? [{ key: 'h', value: Buffer.from('v') }] : [],
      }));
      const bytes = encodeBatch(encodable, { baseOffset: 100 });
      for (const from of [100, 137]) {
        const a = state(plan);
        const b = state(plan);
        plan.process(new RecordBatch(bytes).records(from), a);
        assert.equal(plan.processBatch(bytes, from, b), encodable.length - (from - 100));
        assert.deepEqual(b.dirty.values(), a.dirty.values());
        assert.deepEqual(b.deadLetters, a.deadLetters);
        assert.deepEqual(b.late, a.late);
        assert.equal(b.watermarkMs, a.watermarkMs);
        assert.ok(
          a.dirty.size > 0 && a.deadLetters.length > 0 && (a.late.length > 0 || !plan.windowed),
          'every path was taken',
        );
      }
    });
  }

  test('decodes values the way the schema does: bad UTF-8 refused, a BOM skipped, a real U+FFFD kept', () => {
    const plan = countsByRegion(strict);
    const s = plan.newTaskState(0, NO_WATERMARK);
    plan.processBatch(
      encodeBatch(
        values()
          .slice(200)
          .map((value) => ({ key: null, value, timestamp: T0 })),
        { baseOffset: 0 },
      ),
      0,
      s,
    );
    assert.deepEqual(
      s.deadLetters.map((d) => d.reason),
      [
        'schema: amount must be at least 0',
        s.deadLetters[1].reason,
        s.deadLetters[2].reason,
        'the record has no value',
      ],
    );
    assert.match(s.deadLetters[1].reason, /not valid JSON/);
    assert.match(s.deadLetters[2].reason, /not valid UTF-8/);
    assert.deepEqual(new Set(s.dirty.values().map((r) => r.key[0])), new Set(['bom', 'n\uFFFD', 'late', 'boom']));
  });
});
