/**
 * Poison records against a real `kappa start`: schema-valid records on which a view's or an
 * output's logic fails (an event time past the last date, a NaN / Infinity / object group key, a
 * throwing groupBy, a throwing aggregate extractor, a NaN aggregate input, a throwing output map,
 * an output value JSON cannot encode) are planted in the log among good records. Before, the first
 * of them stopped its task, `kappa start` exited 1, and did so again at every restart, since the
 * record stays in the log.
 *
 * The process is started three times over the same data directory: SIGKILLed after the first run
 * (more records produced while it is down), SIGKILLed again in the second right after records
 * arrive over HTTP (so the third run processes them again from the checkpoint), then stopped with
 * SIGTERM. Each time it must keep running; at the end every view must equal the fold of its good
 * records, the derived topic must hold each good record once, and `sales.dlq` must hold each
 * poison record exactly once per pipeline that refused it, with its reason and provenance.
 */
import assert from 'node:assert/strict';
import { type TestContext, after, describe, test } from 'node:test';
import { type OwnedChild, runKappa, startKappa, waitFor } from '../support/processes.ts';
import { KAPPA_SRC as SRC, tempDataProject } from '../support/project.ts';

/**
 * The sales example's AGGREGATED SALES view, a view whose key and aggregate fail on chosen records,
 * and an output whose map fails on others. `kind` picks the failure; good records have kind 'good'.
 */
const CONFIG = (src: string): string => `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(src)};
const Sale = Type.Object({ orderId: Type.String(), region: Type.String(), amount: Type.Number(), ts: Type.Integer(), kind: Type.String() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts });
const copies = topic('copies', { partitions: 2, key: (c) => c.orderId });
const fail = (why) => { throw new Error(why); };
const bucketOf = (s) =>
  s.kind === 'nan-key' ? Number.NaN
  : s.kind === 'infinity-key' ? Number.POSITIVE_INFINITY
  : s.kind === 'object-key' ? { bucket: 1 }
  : s.kind === 'throwing-groupby' ? fail('no bucket for ' + s.orderId)
  : Math.floor(s.amount / 100);
const amountOf = (s) => (s.kind === 'throwing-aggregate' ? fail('no amount for ' + s.orderId) : s.kind === 'nan-aggregate' ? Number.NaN : s.amount);
export default defineApp({
  topics: [sales, copies],
  views: [
    view('aggregated_sales', from(sales).filter((s) => s.amount > 0).groupBy((s) => ({ region: s.region, year: new Date(s.ts).getUTCFullYear() })).aggregate({ total: sum((s) => s.amount), orders: count() })),
    view('by_bucket', from(sales).groupBy((s) => ({ region: s.region, bucket: bucketOf(s) })).aggregate({ total: sum(amountOf), orders: count() })),
  ],
  outputs: [
    from(sales).map((s) => (s.kind === 'throwing-map' ? fail('cannot copy ' + s.orderId) : s.kind === 'bigint-value' ? { ...s, big: 10n } : s)).to(copies, { name: 'copy_sales' }),
  ],
});
`;

interface Sale {
  orderId: string;
  region: string;
  amount: number;
  ts: number;
  kind: string;
}

/** Which pipelines refuse a record of each poison kind, and the reason each gives. */
const POISON: Record<string, Record<string, RegExp>> = {
  'far-future': {
    aggregated_sales: /^the time extractor's event time is \d+, outside the range of dates/,
    by_bucket: /^the time extractor's event time is \d+, outside the range of dates/,
    copy_sales: /^the time extractor's event time is \d+, outside the range of dates/,
  },
  'nan-key': {
    by_bucket: /^pipeline: group key bucket is NaN; group keys must be strings, finite numbers, booleans or null$/,
  },
  'infinity-key': { by_bucket: /^pipeline: group key bucket is Infinity;/ },
  'object-key': { by_bucket: /^pipeline: group key bucket is an object \{"bucket":1\};/ },
  'throwing-groupby': { by_bucket: /^pipeline: no bucket for p-/ },
  'throwing-aggregate': { by_bucket: /^pipeline: aggregate total: no amount for p-/ },
  'nan-aggregate': { by_bucket: /^pipeline: aggregate total: sum\(\) got NaN, not a finite number$/ },
  'throwing-map': { copy_sales: /^pipeline: cannot copy p-/ },
  'bigint-value': {
    copy_sales:
      /^pipeline: the value written to\(\) cannot be encoded as JSON \(Do not know how to serialize a BigInt\)$/,
  },
};

const T0 = Date.UTC(2025, 11, 31, 23, 0); // an hour before 2026: the records span two years
const REGIONS = ['north', 'south', 'east'];

/** `n` good records and, unless `kinds` is empty, one poison record of each kind; `farFutureTs` is the far-future one's ts. */
function batch(name: string, n: number, kinds: string[], farFutureTs: number): Sale[] {
  const out: Sale[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      orderId: `${name}-${i}`,
      region: REGIONS[i % 3],
      amount: i % 7 === 0 ? -5 : 10 + ((i * 37) % 400),
      ts: T0 + i * 150_000,
      kind: 'good',
    });
    const kind = kinds[i];
    if (kind !== undefined)
      out.push({
        orderId: `p-${name}-${kind}`,
        region: REGIONS[i % 3],
        amount: 50 + i,
        ts: kind === 'far-future' ? farFutureTs : T0 + i * 1000,
        kind,
      });
  }
  return out;
}

function refusedBy(s: Sale, pipeline: string): boolean {
  return POISON[s.kind]?.[pipeline] !== undefined;
}

/**
 * Sums `amount` and counts orders per region and group (`field`: what `groupOf` gives) over the sales
 * that `keep` lets through, sorted by region, then group.
 */
function foldSales(all: Sale[], field: string, groupOf: (s: Sale) => number, keep: (s: Sale) => boolean): unknown[] {
  const rows = new Map<string, { region: string; total: number; orders: number; [group: string]: string | number }>();
  for (const s of all) {
    if (!keep(s)) continue;
    const group = groupOf(s);
    const k = `${s.region}|${group}`;
    const row = rows.get(k) ?? { region: s.region, [field]: group, total: 0, orders: 0 };
    row.total += s.amount;
    row.orders += 1;
    rows.set(k, row);
  }
  return [...rows.values()].sort(
    (a, b) => a.region.localeCompare(b.region) || (a[field] as number) - (b[field] as number),
  );
}

/** What aggregated_sales must hold: the sales example's fold of the records it does not refuse. */
function expectedAggregatedSales(all: Sale[]): unknown[] {
  return foldSales(
    all,
    'year',
    (s) => new Date(s.ts).getUTCFullYear(),
    (s) => !refusedBy(s, 'aggregated_sales') && s.amount > 0,
  );
}

function expectedByBucket(all: Sale[]): unknown[] {
  return foldSales(
    all,
    'bucket',
    (s) => Math.floor(s.amount / 100),
    (s) => !refusedBy(s, 'by_bucket'),
  );
}

interface Consumed {
  partition: number;
  offset: number;
  headers?: Record<string, string>;
  value: Sale;
}

async function consume(d: string[], topic: string): Promise<Consumed[]> {
  const c = await runKappa([...d, 'consume', topic, '--with-meta']);
  if (c.code !== 0) return [];
  return c.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Consumed);
}

async function query(d: string[], sql: string): Promise<unknown[] | null> {
  const q = await runKappa([...d, 'query', sql, '--json']);
  return q.code === 0 ? (JSON.parse(q.stdout) as unknown[]) : null;
}

describe('poison records', () => {
  // The configs below are ES modules, as in a user's project with "type": "module".
  const { dir, config } = tempDataProject({ after }, 'kappa-poison-', CONFIG(SRC));

  test(
    'each goes to sales.dlq once with its reason and provenance; kappa start keeps running through two restarts, and the views equal the fold of the good records',
    { timeout: 300_000 },
    async (t: TestContext) => {
      const d = ['--data-dir', dir, '--config', config];
      const kinds = Object.keys(POISON);
      const keyAndOutputKinds = kinds.filter((k) => k !== 'far-future');
      const produce = async (records: Sale[]): Promise<void> => {
        const r = await runKappa([...d, 'produce', 'sales', '--key-field', 'orderId'], {
          input: records.map((s) => JSON.stringify(s)).join('\n') + '\n',
        });
        assert.equal(r.code, 0, r.stderr);
      };
      assert.equal((await runKappa([...d, 'topics', 'create', 'sales', '--partitions', '2'])).code, 0);

      const produced: Sale[] = [];
      /** Waits until the views, the derived topic and the dead letters reflect every record produced so far, then checks them exactly. */
      const settled = async (start: OwnedChild): Promise<void> => {
        const wantAggregated = expectedAggregatedSales(produced);
        const wantBuckets = expectedByBucket(produced);
        const wantCopies = produced.filter((s) => !refusedBy(s, 'copy_sales')).length;
        const wantDead = produced.reduce((n, s) => n + Object.keys(POISON[s.kind] ?? {}).length, 0);
        await waitFor(
          'the views, the copies and the dead letters',
          async () => {
            const a = await query(d, 'SELECT region, year, total, orders FROM aggregated_sales ORDER BY region, year');
            const b = await query(d, 'SELECT region, bucket, total, orders FROM by_bucket ORDER BY region, bucket');
            const done =
              JSON.stringify(a) === JSON.stringify(wantAggregated) && JSON.stringify(b) === JSON.stringify(wantBuckets);
            return done &&
              (await consume(d, 'copies')).length >= wantCopies &&
              (await consume(d, 'sales.dlq')).length >= wantDead
              ? true
              : null;
          },
          { timeoutMs: 60_000, intervalMs: 250, child: start },
        );
        assert.ok(start.running, 'kappa start is still running');

        // The derived topic: each record the output does not refuse, once.
        const copies = (await consume(d, 'copies')).map((c) => c.value.orderId).sort();
        assert.deepEqual(
          copies,
          produced
            .filter((s) => !refusedBy(s, 'copy_sales'))
            .map((s) => s.orderId)
            .sort(),
        );

        // The dead letters: each poison record once per pipeline that refused it, with reason and provenance.
        const offsets = new Map((await consume(d, 'sales')).map((r) => [r.value.orderId, r]));
        const dead = await consume(d, 'sales.dlq');
        const seen = dead.map((x) => `${x.headers?.['kappa.view']} ${x.value.orderId}`).sort();
        const want = produced.flatMap((s) => Object.keys(POISON[s.kind] ?? {}).map((p) => `${p} ${s.orderId}`)).sort();
        assert.deepEqual(seen, want, 'each poison record is a dead letter exactly once per pipeline that refused it');
        for (const x of dead) {
          const h = x.headers!;
          const source = offsets.get(x.value.orderId)!;
          assert.match(
            h['kappa.error'],
            POISON[x.value.kind][h['kappa.view']],
            `the reason for ${x.value.orderId} in ${h['kappa.view']}`,
          );
          assert.equal(h['kappa.source.topic'], 'sales');
          assert.equal(h['kappa.source.partition'], String(source.partition));
          assert.equal(h['kappa.source.offset'], String(source.offset));
          assert.equal(x.partition, source.partition, 'a dead letter sits on its source partition number');
          assert.deepEqual(x.value, source.value, 'the dead letter is the source record as it was');
        }
      };

      // Run 1, tasks on the main thread: the far-future ts of the issue (1 ms past the last date).
      produced.push(...batch('a', 60, kinds, 8_640_000_000_000_001));
      await produce(produced);
      const first = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '100', '--workers', '0']);
      await settled(first);
      first.kill('SIGKILL');
      await first.exited;

      // Run 2, on a worker thread: more poison (Number.MAX_SAFE_INTEGER as ts) produced while it was down.
      const b = batch('b', 60, kinds, Number.MAX_SAFE_INTEGER);
      produced.push(...b);
      await produce(b);
      const second = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '60000', '--workers', '1']);
      const [, url] = await second.waitForOutput(/HTTP API on (http:\/\/\S+)/, { timeoutMs: 30_000 });
      // Reaching the end of the log flushes once; after that nothing is flushed for a minute.
      await settled(second);
      const c = batch('c', 30, keyAndOutputKinds, 0);
      const res = await fetch(`${url}/v1/topics/sales/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: c.map((s) => JSON.stringify(s)).join('\n') + '\n',
      });
      assert.equal(res.status, 200, await res.text());
      produced.push(...c);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(second.running, 'kappa start is still running after the records sent over HTTP');
      second.kill('SIGKILL');
      await second.exited;

      // Run 3: processes batch c again from the checkpoint; nothing may be counted or dead-lettered twice.
      const third = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '100']);
      await settled(third);
      const stopped = await third.stop();
      assert.equal(stopped.code, 0, third.stderr);
      assert.doesNotMatch(third.stderr, /stopped:/, 'no task stopped');
    },
  );
});
