/**
 * Evolution through replay (issue 17): a producer writes Avro sales under three versions of the
 * subject `sales-value` over time (v2 adds `channel` with a default, v3 removes `note` and widens
 * `cents` from int to long). A Kappa whose config declares v3 rebuilds its view from offset 0 and
 * gets exactly the fold the test computes: v1 records read with `channel` = its default, v3 longs
 * beyond 2^31 counted exactly. Records a task cannot read go to `sales.dlq` with the reason and
 * their original bytes; a schema the producer registers while Kappa runs is picked up by the task
 * (no dead letter); and a config whose schema breaks the subject's compatibility does not start.
 * Run on the calling thread and on a worker thread (`workers: 1`), which reads the registry itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CODECS, encodeAvro } from '../../src/formats/index.ts';
import { type Log, openFileLog } from '../../src/log/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { Engine, loadApp } from '../../src/stream/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';

type SqliteStore = Awaited<ReturnType<typeof openSqliteStore>>;
import { isKappaError } from '../../src/errors.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { KAPPA_SRC, tempDataProject } from '../support/project.ts';

const field = (name: string, type: unknown, extra: object = {}) => ({ name, type, ...extra });
const record = (fields: object[]) => JSON.stringify({ type: 'record', name: 'Sale', namespace: 'shop', fields });
const V1 = record([field('id', 'string'), field('region', 'string'), field('cents', 'int'), field('note', 'string')]);
const V2 = record([
  field('id', 'string'),
  field('region', 'string'),
  field('cents', 'int'),
  field('note', 'string'),
  field('channel', 'string', { default: 'web' }),
]);
const V3 = record([
  field('id', 'string'),
  field('region', 'string'),
  field('cents', 'long'),
  field('channel', 'string', { default: 'web' }),
]);
/** Adds a field with no default: a v3 reader of it could not read v1..v3 records. */
const BREAKING = record([
  field('id', 'string'),
  field('region', 'string'),
  field('cents', 'long'),
  field('channel', 'string', { default: 'web' }),
  field('store', 'string'),
]);

interface Sale {
  region: string;
  channel: string;
  cents: number;
}

function config(schema: string): string {
  return `
import { avro, count, defineApp, from, sum, topic, view } from ${JSON.stringify(KAPPA_SRC)};
const sales = topic('sales', { partitions: 2, format: avro(${JSON.stringify(schema)}) });
export default defineApp({
  topics: [sales],
  views: [
    view('by_channel', from(sales).groupBy((s) => ({ region: s.region, channel: s.channel })).aggregate({ n: count(), cents: sum((s) => s.cents) })),
  ],
});
`;
}

/** A producer: registers under sales-value through its own registry object, as another process would. */
async function producer(log: Log): Promise<{ write(text: string, values: object[]): Promise<Sale[]> }> {
  const registry = await Registry.open({ log, codecs: CODECS });
  return {
    async write(text, values) {
      const { id } = await registry.register('sales-value', { schemaType: 'AVRO', schema: text, references: [] });
      const schema = registry.schemaFor(id)!;
      await log.append(
        'sales',
        values.map((v, i) => ({ key: String(i), value: encodeAvro(id, schema, v) })),
      );
      return values.map((v) => {
        const s = v as { region: string; channel?: string; cents: number };
        return { region: s.region, channel: s.channel ?? 'web', cents: s.cents };
      });
    },
  };
}

function sales(n: number, version: 1 | 2 | 3, seed: number): object[] {
  const out: object[] = [];
  for (let i = 0; i < n; i++) {
    const region = ['eu', 'us', 'apac'][(i + seed) % 3];
    const base = { id: `${version}-${i}`, region };
    if (version === 1) out.push({ ...base, cents: 100 + i, note: `n${i}` });
    else if (version === 2) out.push({ ...base, cents: 200 + i, note: '', channel: i % 2 ? 'store' : 'web' });
    else out.push({ ...base, cents: 2 ** 40 + i, channel: i % 3 ? 'app' : 'web' });
  }
  return out;
}

function fold(all: Sale[]): { region: string; channel: string; n: number; cents: number }[] {
  const rows = new Map<string, { region: string; channel: string; n: number; cents: number }>();
  for (const s of all) {
    const k = `${s.region}/${s.channel}`;
    const row = rows.get(k) ?? { region: s.region, channel: s.channel, n: 0, cents: 0 };
    row.n++;
    row.cents += s.cents;
    rows.set(k, row);
  }
  return [...rows.values()].sort((a, b) => (a.region + a.channel < b.region + b.channel ? -1 : 1));
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function deadLetters(log: Log): Promise<{ reason: string; value: Buffer }[]> {
  const out: { reason: string; value: Buffer }[] = [];
  for (let p = 0; p < 2; p++)
    for await (const batch of log.read('sales.dlq', p, 0))
      for (const r of batch.records()) {
        const reason = r.headers.find((h) => h.key === 'kappa.error')?.value?.toString() ?? '';
        out.push({ reason, value: r.value! });
      }
  return out;
}

for (const workers of [0, 1]) {
  test(
    `a view rebuilt from offset 0 reads records of schema v1, v2 and v3 (workers: ${workers})`,
    { timeout: 120_000 },
    async (t) => {
      const project = tempDataProject(t, 'kappa-evolution-');
      const log = await openFileLog({ dir: project.dir, logger: quiet });
      const store = await openSqliteStore({ path: `${project.dir}/views.db` });
      try {
        await rebuildCase(log, store, project.writeConfig(config(V3)), workers);
      } finally {
        await store.close();
        await log.close();
      }
    },
  );
}

async function rebuildCase(log: Log, store: SqliteStore, configPath: string, workers: number): Promise<void> {
  await log.createTopic('sales', { partitions: 2 });
  const p = await producer(log);
  const expected: Sale[] = [];
  expected.push(...(await p.write(V1, sales(300, 1, 0))));
  expected.push(...(await p.write(V2, sales(300, 2, 1))));
  expected.push(...(await p.write(V3, sales(300, 3, 2))));
  // Two records no task can read: not Confluent-framed, and a schema id nobody registered.
  const unframed = Buffer.from('{"region":"eu"}');
  const unknownId = Buffer.from([0, 0, 0, 0x27, 0x0f, 2, 0x61]);
  await log.append('sales', [
    { key: 'x', value: unframed },
    { key: 'y', value: unknownId },
  ]);

  const app = await loadApp(configPath);
  const engine = new Engine({
    log,
    store,
    control: store,
    app,
    configPath,
    workers,
    logger: quiet,
    flushIntervalMs: 20,
  });
  await engine.start();
  try {
    const rows = async () =>
      (await store.query('SELECT region, channel, n, cents FROM by_channel ORDER BY region || channel')).rows;
    const settled = async (want: number) => {
      await until(`the view holds ${want} sales`, async () => {
        const got = await rows().catch(() => []); // no table until the first flush
        return got.reduce((s, r) => s + Number((r as { n: number }).n), 0) >= want;
      });
    };
    await settled(expected.length);
    assert.deepEqual(await rows(), fold(expected));

    // While it runs, the producer registers a v4 (an optional field added) and writes with it:
    // the task reads the registry for the new id instead of dead-lettering the records.
    const v4 = record([
      field('id', 'string'),
      field('region', 'string'),
      field('cents', 'long'),
      field('channel', 'string', { default: 'web' }),
      field('coupon', ['null', 'string'], { default: null }),
    ]);
    expected.push(
      ...(await p.write(
        v4,
        sales(50, 3, 0).map((s) => ({ ...s, coupon: 'XMAS' })),
      )),
    );
    await settled(expected.length);
    assert.deepEqual(await rows(), fold(expected));

    const dead = await deadLetters(log);
    assert.equal(dead.length, 2, dead.map((d) => d.reason).join('\n'));
    const byValue = (v: Buffer) => dead.find((d) => d.value.equals(v));
    assert.match(byValue(unframed)?.reason ?? '', /magic byte/);
    assert.match(byValue(unknownId)?.reason ?? '', /schema id 9999/);
  } finally {
    await engine.stop();
  }
}

test('a config whose schema breaks the subject compatibility does not start, naming the field', async (t) => {
  const project = tempDataProject(t, 'kappa-evolution-');
  const log = await openFileLog({ dir: project.dir, logger: quiet });
  const store = await openSqliteStore({ path: `${project.dir}/views.db` });
  try {
    await refusedCase(log, store, project.writeConfig(config(BREAKING)));
  } finally {
    await store.close();
    await log.close();
  }
});

async function refusedCase(log: Log, store: SqliteStore, configPath: string): Promise<void> {
  await log.createTopic('sales', { partitions: 2 });
  const p = await producer(log);
  await p.write(V3, sales(10, 3, 0));
  const app = await loadApp(configPath);
  const engine = new Engine({ log, store, control: store, app, logger: quiet });
  await assert.rejects(engine.start(), (err) => {
    assert.ok(isKappaError(err) && err.code === 'KAPPA_CONFIG_INVALID', String(err));
    assert.match(err.message, /Topic "sales"/);
    assert.match(err.message, /store/);
    return true;
  });
  await engine.close();
  const registry = await Registry.open({ log, codecs: CODECS });
  assert.deepEqual(await registry.versions('sales-value'), [1], 'the refused schema was not registered');
}
