import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { partitionForKey } from './partitioner.ts';
import type { RecordBatch } from './record-batch.ts';
import { openTestLog, readRecords, useTestLog } from './test-helpers.ts';

describe('choosing partitions on append', () => {
  const ctx = useTestLog({ options: () => ({ fsync: 'never' }), topic: { name: 't', partitions: 5 } });

  async function batchesOf(partition: number): Promise<RecordBatch[]> {
    const out = [];
    for await (const b of ctx.log.read('t', partition, 0)) out.push(b);
    return out;
  }

  test("sends keyed records to the murmur2 partition of their key, as Kafka's default partitioner would", async () => {
    const keys = Array.from({ length: 200 }, (_, i) =>
      i % 3 === 0 ? `user-${i}` : i % 3 === 1 ? `ключ-${i}-😀` : `${i}`,
    );
    const metas = await ctx.log.append(
      't',
      keys.map((key) => ({ key, value: `v-${key}` })),
    );
    const used = new Set<number>();
    metas.forEach((m, i) => {
      assert.equal(m.partition, partitionForKey(keys[i], 5), `partition of ${keys[i]}`);
      used.add(m.partition);
    });
    assert.equal(used.size, 5, 'keys spread over every partition');
    for (let p = 0; p < 5; p++) {
      const records = await readRecords(ctx.log, 't', p);
      for (const r of records) assert.equal(partitionForKey(r.key!, 5), p);
      assert.equal(records.length, metas.filter((m) => m.partition === p).length);
    }
  });

  test('sends a Buffer key to the same partition as the same key as a string', async () => {
    const [a] = await ctx.log.append('t', [{ key: 'same-key', value: '1' }]);
    const [b] = await ctx.log.append('t', [{ key: Buffer.from('same-key'), value: '2' }]);
    assert.equal(a.partition, b.partition);
    assert.equal(b.offset, a.offset + 1);
  });

  test('sends all keyless records of one append call to one partition, and the next call to the next partition', async () => {
    const partitions = [];
    for (let call = 0; call < 7; call++) {
      const metas = await ctx.log.append(
        't',
        Array.from({ length: 3 }, (_, i) => ({ value: `c${call}-${i}` })),
      );
      assert.equal(new Set(metas.map((m) => m.partition)).size, 1, `call ${call} used one partition`);
      assert.deepEqual(
        metas.map((m) => m.offset - metas[0].offset),
        [0, 1, 2],
      );
      partitions.push(metas[0].partition);
    }
    assert.deepEqual(partitions, [0, 1, 2, 3, 4, 0, 1]);
    // One call, one partition: one batch.
    const batches = await batchesOf(0);
    assert.deepEqual(
      batches.map((b) => b.count),
      [3, 3],
    );
  });

  test('a call with only keyed records does not advance the round-robin', async () => {
    assert.equal((await ctx.log.append('t', [{ value: 'a' }]))[0].partition, 0);
    await ctx.log.append('t', [{ key: 'k', value: 'keyed' }]);
    assert.equal((await ctx.log.append('t', [{ value: 'b' }]))[0].partition, 1);
  });

  test('honours an explicit partition over the key', async () => {
    const key = 'some-key';
    const other = (partitionForKey(key, 5) + 1) % 5;
    const [meta] = await ctx.log.append('t', [{ key, value: 'x', partition: other }]);
    assert.equal(meta.partition, other);
    assert.equal((await readRecords(ctx.log, 't', other))[0].key!.toString(), key);
  });

  test('returns metadata in input order for a call that spans partitions', async () => {
    const input = [
      { key: 'a', value: '0' },
      { value: '1' },
      { key: 'b', value: '2' },
      { value: '3', partition: 4 },
      { key: 'a', value: '4' },
      { value: '5' },
    ];
    const metas = await ctx.log.append('t', input);
    assert.equal(metas.length, input.length);
    for (let i = 0; i < input.length; i++) {
      const m = metas[i];
      assert.equal(m.topic, 't');
      const records = await readRecords(ctx.log, 't', m.partition, m.offset);
      assert.equal(records[0].value!.toString(), String(i), `metadata ${i} points at record ${i}`);
    }
    assert.equal(metas[1].partition, metas[5].partition, 'keyless records of one call share a partition');
    assert.equal(metas[4].partition, metas[0].partition, 'same key, same partition');
    assert.ok(metas[4].offset > metas[0].offset, 'in input order');
  });

  test('stamps records without a timestamp with the clock and keeps explicit ones', async () => {
    await ctx.log.close();
    ctx.log = await openTestLog(ctx.dir, { fsync: 'never', clock: { now: () => 1234 } });
    const metas = await ctx.log.append('t', [
      { value: 'a', partition: 0 },
      { value: 'b', partition: 0, timestamp: 99 },
    ]);
    assert.deepEqual(
      metas.map((m) => m.timestamp),
      [1234, 99],
    );
    assert.deepEqual(
      (await readRecords(ctx.log, 't', 0)).map((r) => r.timestamp),
      [1234, 99],
    );
  });

  test('stores headers given as an object or as an array', async () => {
    await ctx.log.append('t', [
      { value: 'a', partition: 0, headers: { trace: 'abc', bin: Buffer.from([1, 2]), none: null } },
      { value: 'b', partition: 0, headers: [{ key: 'k', value: Buffer.from('v') }] },
    ]);
    const [a, b] = await readRecords(ctx.log, 't', 0);
    assert.deepEqual(a.headers, [
      { key: 'trace', value: Buffer.from('abc') },
      { key: 'bin', value: Buffer.from([1, 2]) },
      { key: 'none', value: null },
    ]);
    assert.deepEqual(b.headers, [{ key: 'k', value: Buffer.from('v') }]);
  });

  test('refuses a call with a bad record before appending any of it', async () => {
    const bad: unknown[] = [
      [
        { key: 'a', value: 'fine' },
        { value: 'x', partition: 5 },
      ],
      [
        { key: 'a', value: 'fine' },
        { value: 'x', partition: -1 },
      ],
      [
        { key: 'a', value: 'fine' },
        { value: 'x', partition: 1.5 },
      ],
      [
        { key: 'a', value: 'fine' },
        { value: 'x', timestamp: Number.NaN },
      ],
      [
        { key: 'a', value: 'fine' },
        { value: 'x', timestamp: 1.5 },
      ],
      [{ key: 'a', value: 'fine' }, { value: 42 }],
      [
        { key: 'a', value: 'fine' },
        { key: 42, value: 'x' },
      ],
    ];
    const codes = [];
    for (const records of bad) {
      const err = await ctx.log.append('t', records as never).then(
        () => null,
        (e: { code?: string }) => e,
      );
      assert.ok(err, `${JSON.stringify(records)} was accepted`);
      codes.push(err.code);
    }
    assert.deepEqual(codes, [
      'KAPPA_INVALID_PARTITION',
      'KAPPA_INVALID_PARTITION',
      'KAPPA_INVALID_PARTITION',
      'KAPPA_INVALID_RECORD',
      'KAPPA_INVALID_RECORD',
      'KAPPA_INVALID_RECORD',
      'KAPPA_INVALID_RECORD',
    ]);
    for (let p = 0; p < 5; p++)
      assert.deepEqual(await ctx.log.offsets('t', p), { start: 0, end: 0 }, `partition ${p} is untouched`);
  });

  test('an empty append call appends nothing and returns no metadata', async () => {
    assert.deepEqual(await ctx.log.append('t', []), []);
    assert.equal((await ctx.log.append('t', [{ value: 'x' }]))[0].partition, 0, 'and does not advance the round-robin');
  });

  test('a single-partition topic takes every key', async () => {
    await ctx.log.createTopic('one', { partitions: 1 });
    const metas = await ctx.log.append(
      'one',
      ['a', 'b', 'c', null].map((key) => ({ key, value: 'v' })),
    );
    assert.deepEqual(
      metas.map((m) => [m.partition, m.offset]),
      [
        [0, 0],
        [0, 1],
        [0, 2],
        [0, 3],
      ],
    );
  });
});
