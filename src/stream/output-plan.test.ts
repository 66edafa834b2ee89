import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { type LogRecord, RecordBatch, encodeBatch, partitionForKey, sealBatch } from '../log/index.ts';
import { count } from './aggregates.ts';
import { type AnyTopic, defineApp, from, topic, view } from './dsl.ts';
import { compileOutput } from './output-plan.ts';
import { NO_WATERMARK, type OutputRecord, type TaskState } from './task-plan.ts';
import { OutputPacker } from './worker-protocol.ts';

const T0 = Date.UTC(2026, 0, 1);
/** A task state's output records (an array on this thread). */
const outputsOf = (state: TaskState): OutputRecord[] => state.outputs as OutputRecord[];
const Payment = Type.Object({
  card: Type.String(),
  cents: Type.Integer(),
  ts: Type.Integer(),
  items: Type.Optional(Type.Array(Type.String())),
});
const Flagged = Type.Object({ card: Type.String(), cents: Type.Integer(), reason: Type.String() });

const payments = topic('payments', { partitions: 2, schema: Payment, key: (p) => p.card, time: (p) => p.ts });
const flagged = topic('flagged', { partitions: 3, schema: Flagged, key: (f) => f.card });

function records(values: unknown[], start = 0): LogRecord[] {
  return values.map((v, i) => ({
    offset: start + i,
    timestamp: T0 + i,
    key: null,
    value: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)),
    headers: [],
  }));
}

describe('to(topic): output pipelines', () => {
  const pipeline = from(payments)
    .filter((p) => p.cents >= 10_000)
    .map((p) => ({ card: p.card, cents: p.cents, reason: 'large' }))
    .to(flagged);

  test('the operators run in order and each value becomes a record of the target: JSON, keyed and partitioned by murmur2 of its key', () => {
    const plan = compileOutput(pipeline, 3);
    assert.equal(plan.name, 'payments_to_flagged');
    const state = plan.newTaskState(1, NO_WATERMARK);
    plan.process(
      records([
        { card: 'c1', cents: 50, ts: 1 },
        { card: 'c2', cents: 20_000, ts: 2 },
        { card: 'c3', cents: 10_000, ts: 3 },
      ]),
      state,
    );
    assert.deepEqual(outputsOf(state), [
      {
        partition: partitionForKey('c2', 3),
        key: 'c2',
        value: JSON.stringify({ card: 'c2', cents: 20_000, reason: 'large' }),
        timestamp: T0 + 1,
      },
      {
        partition: partitionForKey('c3', 3),
        key: 'c3',
        value: JSON.stringify({ card: 'c3', cents: 10_000, reason: 'large' }),
        timestamp: T0 + 2,
      },
    ]);
    assert.deepEqual(state.deadLetters, []);
  });

  test('processBatch over encoded bytes gives the same records as process over decoded ones, from the given offset on', () => {
    const values = Array.from({ length: 50 }, (_, i) => ({ card: `c${i % 7}`, cents: (i % 20) * 1000, ts: i }));
    const batch = encodeBatch(
      values.map((v, i) => ({ key: null, value: Buffer.from(JSON.stringify(v)), headers: [], timestamp: T0 + i })),
      { baseOffset: 100 },
    );
    const plan = compileOutput(pipeline, 3);
    const a = plan.newTaskState(0, NO_WATERMARK);
    assert.equal(plan.processBatch(batch, 110, a), 40);
    const b = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records(values.slice(10), 110).map((r, i) => ({ ...r, timestamp: T0 + 10 + i })),
      b,
    );
    const expected = values
      .map((v, i) => ({ v, i }))
      .filter(({ v, i }) => i >= 10 && v.cents >= 10_000)
      .map(({ v, i }) => ({
        partition: partitionForKey(v.card, 3),
        key: v.card,
        value: JSON.stringify({ card: v.card, cents: v.cents, reason: 'large' }),
        timestamp: T0 + i,
      }));
    assert.equal(expected.length, 20, 'the filter drops half of them');
    assert.deepEqual(a.outputs, expected);
    assert.deepEqual(b.outputs, expected);
  });

  test('a record without a key stays on its source partition number (modulo the target partitions)', () => {
    const keyless = topic('keyless', { partitions: 2 });
    const plan = compileOutput(from(payments).to(keyless), 2);
    const state = plan.newTaskState(3, NO_WATERMARK);
    plan.process(records([{ card: 'x', cents: 1, ts: 1 }]), state);
    assert.equal(outputsOf(state)[0].partition, 1);
    assert.equal(outputsOf(state)[0].key, null);
  });

  test('the target time extractor sets the record timestamp; without one the source record timestamp is kept', () => {
    const timed = topic('timed', { partitions: 1, time: (v: { at: number }) => v.at });
    const plan = compileOutput(
      from(payments)
        .map((p) => ({ at: p.ts * 1000 }))
        .to(timed),
      1,
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records([{ card: 'x', cents: 1, ts: 7 }]), state);
    assert.equal(outputsOf(state)[0].timestamp, 7000);
  });

  test('flatMap: every value a record gives is written, in order', () => {
    const items = topic('items', { partitions: 1 });
    const plan = compileOutput(
      from(payments)
        .flatMap((p) => (p.items ?? []).map((item) => ({ card: p.card, item })))
        .to(items),
      1,
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records([
        { card: 'a', cents: 1, ts: 1, items: ['x', 'y'] },
        { card: 'b', cents: 1, ts: 2 },
        { card: 'c', cents: 1, ts: 3, items: ['z'] },
      ]),
      state,
    );
    assert.deepEqual(
      outputsOf(state).map((o) => JSON.parse(o.value as string)),
      [
        { card: 'a', item: 'x' },
        { card: 'a', item: 'y' },
        { card: 'c', item: 'z' },
      ],
    );
  });

  test('bad input goes to the dead-letter list whole, with the reason; nothing of that record is written', () => {
    const items = topic('items', { partitions: 1, schema: Type.Object({ item: Type.String() }) });
    const plan = compileOutput(
      from(payments)
        .map((p) => {
          if (p.card === 'boom') throw new Error('exploded');
          return p;
        })
        .flatMap((p) => (p.items ?? []).map((item) => ({ item: item === 'bad' ? 42 : item })))
        .to(items as never),
      1,
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      records([
        'not json',
        { card: 'ok', cents: 1, ts: 1, items: ['a'] },
        { card: 'x', cents: 'lots', ts: 1 },
        { card: 'boom', cents: 1, ts: 1 },
        { card: 'half', cents: 1, ts: 1, items: ['good', 'bad'] },
        { card: 'ok2', cents: 1, ts: 1, items: ['b'] },
      ]),
      state,
    );
    assert.deepEqual(
      outputsOf(state).map((o) => JSON.parse(o.value as string)),
      [{ item: 'a' }, { item: 'b' }],
    );
    assert.deepEqual(
      state.deadLetters.map((d) => d.record.offset),
      [0, 2, 3, 4],
    );
    assert.match(state.deadLetters[0].reason, /JSON/);
    assert.match(state.deadLetters[1].reason, /schema: .*cents/);
    assert.match(state.deadLetters[2].reason, /pipeline: exploded/);
    assert.match(state.deadLetters[3].reason, /output to topic "items" does not match its schema: .*item/);
  });

  test("into a runner's OutputPacker (values written straight into batches) the records are those an array gets", () => {
    const notes = topic('notes', { partitions: 3, key: (n: { card: string }) => n.card });
    const plan = compileOutput(
      from(payments)
        .flatMap((p): { card: string; [more: string]: unknown }[] =>
          p.items !== undefined
            ? p.items.map((item) => ({ card: p.card, item })) // several values: written after the record is run
            : [
                {
                  card: p.card,
                  cents: p.cents,
                  note: 'é"x'.repeat(p.cents % 7) + 'n'.repeat((p.ts * 37) % 700),
                  skip: p.cents % 3 === 0 ? undefined : 1, // JSON.stringify leaves undefined out: not written in place
                  nested: p.cents % 5 === 0 ? { deep: [1] } : null,
                },
              ],
        )
        .to(notes),
      3,
    );
    const values = Array.from({ length: 2500 }, (_, i) =>
      i % 97 === 0
        ? { card: 'bad', cents: 'lots', ts: i }
        : { card: `c${i % 13}`, cents: i, ts: i, ...(i % 11 === 0 ? { items: ['a', 'b'] } : {}) },
    );
    const inArray = plan.newTaskState(0, NO_WATERMARK);
    const inPacker = plan.newTaskState(0, NO_WATERMARK);
    inPacker.outputs = new OutputPacker();
    plan.process(records(values), inArray);
    plan.process(records(values), inPacker);
    const packed = (inPacker.outputs as OutputPacker).take();
    const byPartition = [...packed.partitions].sort((a, b) => a.partition - b.partition);
    const fromBatches = byPartition.flatMap(({ partition, batches }) => {
      let start = 0;
      return [...batches.ends].flatMap((end) => {
        const batch = Buffer.from(batches.bytes.slice(start, end));
        start = end;
        sealBatch(batch, 1, 0, 0);
        const got = new RecordBatch(batch)
          .records()
          .map((r) => ({ partition, key: r.key!.toString(), value: r.value!.toString(), timestamp: r.timestamp }));
        // Byte for byte the batch encodeBatch makes of the same records (lengths, offset and time deltas).
        const encodable = got.map((r) => ({ key: r.key, value: r.value, timestamp: r.timestamp }));
        const expected = encodeBatch(encodable, { baseOffset: 0, producerId: 1, producerEpoch: 0, baseSequence: 0 });
        assert.ok(batch.equals(expected), `a batch of partition ${partition}`);
        return got;
      });
    });
    const fromArray = [0, 1, 2].flatMap((q) => outputsOf(inArray).filter((r) => r.partition === q));
    assert.equal(fromArray.length, 2500 - 26 + 225); // 26 dead letters; 225 records of two values
    assert.deepEqual(fromBatches, fromArray);
    assert.deepEqual(
      inPacker.deadLetters.map((d) => d.record.offset),
      inArray.deadLetters.map((d) => d.record.offset),
    );
  });

  test('a value with no JSON form (a function) goes to the dead-letter list instead of failing the flush', () => {
    const anything = topic('anything', { partitions: 1 });
    const plan = compileOutput(
      from(payments)
        .map(() => () => 1)
        .to(anything),
      1,
    );
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(records([{ card: 'x', cents: 1, ts: 1 }]), state);
    assert.deepEqual(outputsOf(state), []);
    assert.match(state.deadLetters[0].reason, /no JSON form/);
  });

  test('the fingerprint changes with the logic and the target, not with the name', () => {
    const fp = (o: ReturnType<typeof pipeline.stream.to>) => compileOutput(o, 3).fingerprint;
    assert.equal(
      fp(pipeline),
      fp(
        from(payments)
          .filter((p) => p.cents >= 10_000)
          .map((p) => ({ card: p.card, cents: p.cents, reason: 'large' }))
          .to(flagged, { name: 'other' }),
      ),
    );
    assert.notEqual(
      fp(pipeline),
      fp(
        from(payments)
          .filter((p) => p.cents >= 20_000)
          .map((p) => ({ card: p.card, cents: p.cents, reason: 'large' }))
          .to(flagged),
      ),
    );
  });

  test('defineApp refuses two pipelines with one name, and outputs that feed themselves', () => {
    const a = topic('a', {});
    const b = topic('b', {});
    assert.throws(
      () =>
        defineApp({
          topics: [a, b],
          views: [
            view(
              'a_to_b',
              from(a)
                .groupBy(() => ({ k: 1 }))
                .aggregate({ n: count() }),
            ),
          ],
          outputs: [from(a).to(b)],
        }),
      /two pipelines are named "a_to_b"/,
    );
    assert.throws(
      () =>
        defineApp({
          topics: [a, b],
          outputs: [
            from(a).to(b),
            from(a)
              .filter(() => true)
              .to(b),
          ],
        }),
      /give to\(\) a name/,
    );
    assert.throws(() => defineApp({ topics: [a], outputs: [from(a).to(a)] }), /cycle: a → a/);
    assert.throws(() => defineApp({ topics: [a, b], outputs: [from(a).to(b), from(b).to(a)] }), /cycle: a → b → a/);
    assert.throws(() => from(a).to(b, { name: 'Bad Name' }), /lower-case/);
    const app = defineApp({ topics: [a, b], outputs: [from(a).to(b)] });
    assert.deepEqual(app.views, []);
    assert.equal(app.outputs.length, 1);
  });
});

describe('poison records in an output pipeline: the record is a dead letter, the pipeline goes on', () => {
  interface Ev {
    id: number;
    ts: number;
    poison?: string;
  }
  const events = topic<Ev>('events', { partitions: 1, time: (e) => e.ts });
  const good: Ev[] = [
    { id: 1, ts: T0 },
    { id: 2, ts: T0 + 1 },
  ];
  const encode = (e: Ev): LogRecord => ({
    offset: 0,
    timestamp: T0,
    key: null,
    value: Buffer.from(JSON.stringify(e)),
    headers: [],
  });

  /** Runs good, poison, good through `to` and checks the poison record is the one dead letter and the good ones are written. */
  function poisoned(make: (e: Ev) => unknown, target: AnyTopic, poison: LogRecord, reason: RegExp): void {
    const plan = compileOutput(
      from(events)
        .map((e) => (e.poison !== undefined ? make(e) : { id: e.id, at: e.ts }))
        .to(target),
      1,
    );
    const [a, b] = good.map(encode);
    const input = [
      { ...a, offset: 0 },
      { ...poison, offset: 1 },
      { ...b, offset: 2 },
    ];
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(input, state);
    assert.deepEqual(
      outputsOf(state).map((o) => JSON.parse(o.value as string) as unknown),
      [
        { id: 1, at: T0 },
        { id: 2, at: T0 + 1 },
      ],
    );
    // The same into a runner's OutputPacker, where values are written straight into batches.
    const packing = plan.newTaskState(0, NO_WATERMARK);
    packing.outputs = new OutputPacker();
    plan.process(input, packing);
    assert.equal((packing.outputs as OutputPacker).take().records, 2);
    for (const s of [state, packing]) {
      assert.deepEqual(
        s.deadLetters.map((d) => d.record.offset),
        [1],
      );
      assert.match(s.deadLetters[0].reason, reason);
    }
  }

  const plain = topic('plain', { partitions: 1 });
  const p = (poison: string, ts = T0): LogRecord => encode({ id: 9, ts, poison });

  test('a map that throws (an Error, null or a string)', () => {
    poisoned(
      () => {
        throw new Error('map failed');
      },
      plain,
      p('x'),
      /^pipeline: map failed$/,
    );
    poisoned(
      () => {
        throw null;
      },
      plain,
      p('x'),
      /^pipeline: null$/,
    );
    poisoned(
      () => {
        throw 'text';
      },
      plain,
      p('x'),
      /^pipeline: text$/,
    );
  });

  test('a value JSON cannot encode: a bigint, a cycle, a function, undefined', () => {
    poisoned(
      () => ({ id: 10n }),
      plain,
      p('x'),
      /^pipeline: the value written to\(\) cannot be encoded as JSON \(Do not know how to serialize a BigInt\)$/,
    );
    poisoned(
      () => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      },
      plain,
      p('x'),
      /cannot be encoded as JSON \(Converting circular structure/,
    );
    poisoned(() => () => 1, plain, p('x'), /has no JSON form \(a function\)/);
    const throwing = {
      get id(): number {
        throw new Error('boom');
      },
    };
    poisoned(() => throwing, plain, p('x'), /^pipeline: the value written to\(\) cannot be encoded as JSON \(boom\)$/);
    poisoned(() => undefined, plain, p('x'), /the value written to\(\) is undefined/);
  });

  test("an event time outside the range of dates, from the source's time extractor or the record timestamp", () => {
    poisoned(
      () => ({ id: 9 }),
      plain,
      p('x', 8_640_000_000_000_001),
      /^the time extractor's event time is 8640000000000001, outside the range of dates/,
    );
    poisoned(() => ({ id: 9 }), plain, p('x', Number.MAX_SAFE_INTEGER), /event time is 9007199254740991, outside/);
    const untimed = topic<Ev>('untimed', { partitions: 1 });
    const plan = compileOutput(from(untimed).to(plain), 1);
    const state = plan.newTaskState(0, NO_WATERMARK);
    plan.process(
      [
        { ...encode(good[0]), offset: 0, timestamp: 2 ** 60 },
        { ...encode(good[1]), offset: 1 },
      ],
      state,
    );
    assert.equal(outputsOf(state).length, 1);
    assert.match(
      state.deadLetters[0].reason,
      /^the record timestamp is 1152921504606847000, outside the range of dates/,
    );
  });

  test("the target's time extractor: a time outside the range of dates (which the log could not encode at flush), NaN, or a throw", () => {
    const timed = topic('timed', {
      partitions: 1,
      time: (v: { id: number; at: number; when?: unknown }) => (v.when === undefined ? v.at : (v.when as number)),
    });
    poisoned(
      () => ({ id: 9, at: 0, when: 1e300 }),
      timed,
      p('x'),
      /^the time extractor of topic "timed" returned a time that is 1e\+300, outside the range of dates/,
    );
    poisoned(() => ({ id: 9, at: 0, when: 'soon' }), timed, p('x'), /returned a time that is "soon", not a time in ms/);
    const throwing = topic('throwing', {
      partitions: 1,
      time: (v: { at: number; id: number }) => {
        if (v.id === 9) throw new Error('no time');
        return v.at;
      },
    });
    poisoned(() => ({ id: 9, at: 0 }), throwing, p('x'), /^the time extractor of topic "throwing" threw: no time$/);
  });

  test("the target's key extractor: a function, a symbol, an object, or a throw", () => {
    const keyed = topic('keyed', {
      partitions: 4,
      key: (v: { id: number; k?: unknown }) => (v.k === undefined ? String(v.id) : (v.k as string)),
    });
    poisoned(
      () => ({ id: 9, k: () => 1 }),
      keyed,
      p('x'),
      /^the key extractor of topic "keyed" returned a function; keys must be strings, numbers or booleans$/,
    );
    poisoned(() => ({ id: 9, k: Symbol('s') }), keyed, p('x'), /returned a symbol \(s\)/);
    poisoned(() => ({ id: 9, k: { a: 1 } }), keyed, p('x'), /returned an object \{"a":1\}/);
    const throwing = topic('throwing', {
      partitions: 4,
      key: (v: { id: number }) => {
        if (v.id === 9) throw new Error('no key');
        return String(v.id);
      },
    });
    poisoned(() => ({ id: 9 }), throwing, p('x'), /^the key extractor of topic "throwing" threw: no key$/);
  });
});
