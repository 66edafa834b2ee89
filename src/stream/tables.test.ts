/**
 * Tables from topics (tables.ts) on a real log: versions by event time, tombstones, late updates,
 * retention, the key limit, the readiness rule a join waits on, and the configuration errors.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defer, tempDir } from '../../test/support/cleanup.ts';
import { quietLogger as quiet } from '../../test/support/loggers.ts';
import { type FileLog, openFileLog } from '../log/index.ts';
import { count, defineApp, from, topic, view } from './dsl-api/index.ts';
import { fingerprintOf } from './view-fingerprint.ts';
import { SharedTable, type TableDef, TaskTables, table, windowSide } from './tables.ts';

interface Card {
  card: string;
  limit: number;
  ts: number;
}

const cards = topic<Card>('cards', { partitions: 2, key: (c) => c.card, time: (c) => c.ts });
const payments = topic<{ card: string }>('payments', { partitions: 2 });

async function openLog(t: Parameters<typeof tempDir>[0]): Promise<FileLog> {
  const log = await openFileLog({ dir: tempDir(t, 'kappa-tables-'), logger: quiet });
  defer(t, () => log.close());
  await log.createTopic('cards', { partitions: 2 });
  return log;
}

async function put(log: FileLog, c: Card | { card: string; ts: number; deleted: true }): Promise<void> {
  const value = 'deleted' in c ? null : JSON.stringify(c);
  await log.append('cards', [{ key: c.card, value, timestamp: c.ts }]);
}

/** The table read to its end on a fresh thread's view (a new SharedTable per test: `def` is new each time). */
async function readAll(log: FileLog, def: TableDef<unknown>): Promise<SharedTable> {
  const shared = SharedTable.of(log, def, -Infinity);
  await shared.advance(null, Number.MAX_SAFE_INTEGER);
  return shared;
}

describe('tables from topics', () => {
  test('a lookup finds the version current at the event time; a tombstone deletes', async (t) => {
    const log = await openLog(t);
    await put(log, { card: 'a', limit: 100, ts: 1000 });
    await put(log, { card: 'a', limit: 200, ts: 2000 });
    await put(log, { card: 'b', limit: 5, ts: 1500 });
    await put(log, { card: 'a', ts: 3000, deleted: true });
    await put(log, { card: 'a', limit: 300, ts: 4000 });
    const shared = await readAll(log, table(cards) as TableDef<unknown>);
    const limit = (key: string, at: number) => (shared.lookup(key, at) as Card | undefined)?.limit;
    assert.equal(limit('a', 999), undefined, 'before its first version');
    assert.equal(limit('a', 1000), 100);
    assert.equal(limit('a', 1999), 100);
    assert.equal(limit('a', 2000), 200);
    assert.equal(limit('a', 3000), undefined, 'deleted at 3000');
    assert.equal(limit('a', 5000), 300);
    assert.equal(limit('b', 1_000_000), 5);
    assert.equal(limit('zz', 5000), undefined);
  });

  test('an update later than the out-of-orderness takes effect from the watermark; within it, from its time', async (t) => {
    const log = await openLog(t);
    await put(log, { card: 'a', limit: 1, ts: 10_000 });
    await put(log, { card: 'a', limit: 2, ts: 9_500 }); // within 1 s: takes effect at 9,500
    await put(log, { card: 'a', limit: 3, ts: 5_000 }); // 4 s late: takes effect at the watermark, 9,000
    const shared = await readAll(log, table(cards, { outOfOrderness: '1s' }) as TableDef<unknown>);
    const limit = (at: number) => (shared.lookup('a', at) as Card | undefined)?.limit;
    assert.equal(limit(5_000), undefined);
    assert.equal(limit(9_000), 3);
    assert.equal(limit(9_500), 2);
    assert.equal(limit(10_000), 1);
  });

  test('versions superseded longer than the retention ago are dropped', async (t) => {
    const log = await openLog(t);
    const hour = 3_600_000;
    await put(log, { card: 'a', limit: 1, ts: 0 });
    await put(log, { card: 'a', limit: 2, ts: hour });
    await put(log, { card: 'a', limit: 3, ts: 3 * hour });
    await put(log, { card: 'b', limit: 9, ts: 5 * hour }); // moves the watermark of its partition
    await put(log, { card: 'a', limit: 4, ts: 5 * hour });
    const def = table(cards, { retention: '90m' }) as TableDef<unknown>;
    // A joining task that has reached 6 h: the table drops behind the slower of it and its watermark.
    const tables = new TaskTables(log, [def], 0, 6 * hour);
    await tables.advance(6 * hour);
    const limit = (at: number) => (tables.lookup(def, 'a', at) as Card | undefined)?.limit;
    assert.equal(limit(30 * 60_000), undefined, 'the version of 0 was superseded before 5 h - 90 min');
    assert.equal(limit(2 * hour), undefined, 'so was the version of 1 h');
    assert.equal(limit(4 * hour), 3, 'the version current at the floor is kept');
    assert.equal(limit(6 * hour), 4);
  });

  test('a task that needs what the shared table dropped reads its own: a rebuild beside the live version', async (t) => {
    const log = await openLog(t);
    const hour = 3_600_000;
    await put(log, { card: 'a', limit: 1, ts: 0 });
    await put(log, { card: 'a', limit: 2, ts: 3 * hour });
    await put(log, { card: 'b', limit: 9, ts: 5 * hour }); // the watermark moves to 5 h
    await put(log, { card: 'a', limit: 3, ts: 5 * hour + 1 }); // 'a' superseded at 3 h, before 5 h - 1 h: dropped
    const def = table(cards, { retention: '1h' }) as TableDef<unknown>;
    const live = new TaskTables(log, [def], 0, 5 * hour);
    await live.advance(6 * hour);
    assert.equal(live.lookup(def, 'a', hour), undefined, 'the live tasks dropped the version of 0');
    const rebuild = new TaskTables(log, [def], 0);
    await rebuild.advance(hour);
    assert.equal((rebuild.lookup(def, 'a', hour) as Card).limit, 1, 'a new version replaying from 0 finds it');
    const without = table(cards) as TableDef<unknown>;
    const forever = new TaskTables(log, [without], 0, 5 * hour);
    await forever.advance(6 * hour);
    assert.equal((forever.lookup(without, 'a', hour) as Card).limit, 1, 'no retention: every version is kept');
  });

  test('a table past its maxKeys stops the read with an error that says what to do', async (t) => {
    const log = await openLog(t);
    for (let i = 0; i < 5; i++) await put(log, { card: `k${i}`, limit: i, ts: i });
    const shared = SharedTable.of(log, table(cards, { maxKeys: 4 }) as TableDef<unknown>, -Infinity);
    await assert.rejects(shared.advance(null, 100), (err: Error) => {
      assert.match(err.message, /table "cards" holds more than 4 keys, its maxKeys/);
      assert.match(err.message, /raise maxKeys in table\(\)|partitioned: true/);
      return true;
    });
  });

  test("a window join's other side drops what no join can match before refusing a key past maxKeys", async (t) => {
    const log = await openLog(t);
    const side = () =>
      windowSide(cards, { within: '1s', key: (c: Card) => c.card, outOfOrderness: 0, maxKeys: 5 }) as TableDef<unknown>;
    // Two tasks of the stream (partitions 0 and 1) on one thread, one key a second: a 1 s window holds about 3.
    const def = side();
    const tasks = [new TaskTables(log, [def], 0), new TaskTables(log, [def], 1)];
    for (let i = 0; i < 30; i++) {
      await put(log, { card: `k${i}`, limit: i, ts: i * 1000 });
      for (const task of tasks) await task.advance(i * 1000);
      assert.deepEqual(tasks[0].within(def, `k${i}`, i * 1000), [{ card: `k${i}`, limit: i, ts: i * 1000 }]);
    }
    // A task of the stream that has had no event holds every event back: the refusal says so.
    const held = side();
    const one = new TaskTables(log, [held], 0);
    new TaskTables(log, [held], 1); // never advances: its partition gets no events
    await assert.rejects(one.advance(0), (err: Error) => {
      assert.match(err.message, /table "cards" holds more than 5 keys, its maxKeys/);
      assert.match(err.message, /a task joining it has had no event yet \(partition 1 of its stream\)/);
      return true;
    });
  });

  test('a join waits until the table is past its event time or read to its end since the batch began', async (t) => {
    const log = await openLog(t);
    await put(log, { card: 'a', limit: 1, ts: 1000 });
    const def = table(cards) as TableDef<unknown>;
    const tables = new TaskTables(log, [def], 0);
    assert.equal(tables.ready(0), false, 'nothing read yet');
    await tables.advance(5000);
    assert.equal(tables.ready(5000), true, 'every partition was read to its end just now');
    tables.stale();
    assert.equal(tables.ready(0), false, 'partition 1 is empty: its watermark holds every time back');
    await put(log, { card: 'd', limit: 1, ts: 1000 }); // partition 1
    await tables.advance(0);
    tables.stale();
    assert.equal(tables.ready(999), true);
    assert.equal(tables.ready(1000), false, 'a new batch looks at the ends again');
    await put(log, { card: 'a', limit: 2, ts: 2000 });
    await tables.advance(1500);
    assert.equal((tables.lookup(def, 'a', 2000) as Card).limit, 2);
  });

  test("a window join waits for the other topic's event time, or with idleAfter for it to go quiet", async (t) => {
    const log = await openLog(t);
    await put(log, { card: 'a', limit: 1, ts: 1000 });
    await put(log, { card: 'd', limit: 1, ts: 1000 }); // partition 1
    const strict = windowSide(cards, { within: '1s', key: () => null, outOfOrderness: 0 }) as TableDef<unknown>;
    const waits = new TaskTables(log, [strict], 0);
    await waits.advance(500);
    assert.equal(waits.ready(500), false, 'read to its end, but its event time (1000) is not past 500 + 1000');
    assert.equal(waits.ready(-1), true);
    const idle = windowSide(cards, {
      within: '1s',
      key: () => null,
      outOfOrderness: 0,
      idleAfter: '100ms',
    }) as TableDef<unknown>;
    const quiet = new TaskTables(log, [idle], 0);
    await quiet.advance(500);
    assert.equal(quiet.ready(500), false, 'data was just read');
    await new Promise((r) => setTimeout(r, 150));
    quiet.stale();
    await quiet.advance(500);
    assert.equal(quiet.ready(500), true, 'nothing new for 100 ms: the join goes on');
    assert.deepEqual(quiet.within(idle, 'a', 500), [{ card: 'a', limit: 1, ts: 1000 }]);
  });

  test('configuration errors are clear', () => {
    assert.doesNotThrow(() =>
      from(payments).join(
        table(cards, { partitioned: true }),
        (p) => p.card,
        (p) => p,
      ),
    );
    const p3 = topic<{ card: string }>('p3', { partitions: 3 });
    assert.throws(
      () =>
        from(p3).join(
          table(cards, { partitioned: true }),
          (p) => p.card,
          (p) => p,
        ),
      /table "cards" is partitioned \(co-partitioned with the stream that joins it\), so it needs as many partitions as topic "p3": it has 2, "p3" has 3/,
    );
    // A stream may join a table of its own topic (one topic of several kinds of events, as Nexmark's).
    assert.doesNotThrow(() =>
      from(cards).join(
        table(cards),
        (c) => c.card,
        (c) => c,
      ),
    );
    assert.throws(() => table(cards, { maxKeys: 0 }), /maxKeys of table "cards" must be a whole number/);
    const v = view(
      'v',
      from(payments)
        .join(
          table(cards),
          (p) => p.card,
          (p, c) => ({ ...p, limit: c.limit }),
        )
        .groupBy((p) => ({ card: p.card }))
        .aggregate({ n: count() }),
    );
    assert.throws(
      () => defineApp({ topics: [payments], views: [v] }),
      /view "v" joins a table of topic "cards", which is not among the app's topics; add it to defineApp\(\{ topics \}\)/,
    );
  });

  test("the fingerprint covers the join's key, function and table", () => {
    const make = (key: (c: Card) => string, retention: string, fn: (p: { card: string }, c: Card) => unknown) =>
      fingerprintOf(
        view(
          'v',
          from(payments)
            .join(table(cards, { key, retention: retention as '1d' }), (p) => p.card, fn)
            .groupBy(() => ({}))
            .aggregate({ n: count() }),
        ),
      );
    const base = make(
      (c) => c.card,
      '1d',
      (p, c) => c.limit,
    );
    assert.equal(
      make(
        (c) => c.card,
        '1d',
        (p, c) => c.limit,
      ),
      base,
    );
    assert.notEqual(
      make(
        (c) => c.card.toLowerCase(),
        '1d',
        (p, c) => c.limit,
      ),
      base,
    );
    assert.notEqual(
      make(
        (c) => c.card,
        '2d',
        (p, c) => c.limit,
      ),
      base,
    );
    assert.notEqual(
      make(
        (c) => c.card,
        '1d',
        (p, c) => c.limit + 1,
      ),
      base,
    );
  });
});
