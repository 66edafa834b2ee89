/**
 * The HTTP server end to end on a real server (port 0), a real log and a real SQLite store:
 * ingestion → view → SSE change; validation that changes nothing; the DLQ mode; NDJSON;
 * idempotent retries; view queries and SQL; topics and records; pipelines, replay and rollback;
 * metrics and health; the start-up refusal of a public address without tokens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../src/server/index.ts';
import { KAPPA_SRC } from '../support/project.ts';
import { type Harness, call, openSse, postJson, startHarness } from './server-harness.ts';

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('HTTP server', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const ends = async (topic: string): Promise<number[]> => {
    const info = await h.log.topic(topic);
    return Promise.all(Array.from({ length: info.partitions }, async (_, p) => (await h.log.offsets(topic, p)).end));
  };

  test('POST records → the view row is updated → the SSE change arrives', async () => {
    const sse = await openSse(`${h.url}/v1/views/sales_totals/changes`).catch(() => null);
    // The view exists once its first rows are committed; before that the stream is a 404.
    assert.equal(sse?.status ?? 404, 404);
    sse?.close();
    let r = await postJson(h.url, '/v1/topics/sales/records', { region: 'north', cents: 100 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.body as { records: unknown[] }).records.length, 1);
    await until(
      'the view has north',
      async () =>
        (await call(h.url, 'GET', '/v1/views/sales_totals?region=north')).status === 200 &&
        ((await call(h.url, 'GET', '/v1/views/sales_totals?region=north')).body as { rows: unknown[] }).rows.length ===
          1,
    );

    const changes = await openSse(`${h.url}/v1/views/sales_totals/changes`);
    assert.equal(changes.status, 200);
    r = await postJson(h.url, '/v1/topics/sales/records', [
      { region: 'north', cents: 50 },
      { region: 'south', cents: 7 },
    ]);
    assert.equal(r.status, 200, r.text);
    const acks = (r.body as { records: { index: number; partition: number; offset: number }[] }).records;
    assert.deepEqual(
      acks.map((a) => a.index),
      [0, 1],
    );
    await until('both rows changed', async () => {
      const rows = changes.events.filter((e) => e.event === 'row').map((e) => JSON.parse(e.data).row);
      return (
        rows.some((x) => x.region === 'north' && x.cents === 150 && x.n === 2) &&
        rows.some((x) => x.region === 'south' && x.cents === 7)
      );
    });
    const ids = changes.events.map((e) => e.id);
    assert.ok(ids.every((id) => id !== null));

    // Reconnecting with Last-Event-ID replays what came after it.
    const firstId = changes.events[0].id!;
    changes.close();
    const again = await openSse(`${h.url}/v1/views/sales_totals/changes`, { 'last-event-id': firstId });
    await again.until(changes.events.length - 1);
    assert.deepEqual(
      again.events.map((e) => e.id),
      ids.slice(1),
    );
    again.close();
    const unknown = await openSse(`${h.url}/v1/views/sales_totals/changes`, { 'last-event-id': 'old-1' });
    await unknown.until(1);
    assert.equal(unknown.events[0].event, 'reset');
    unknown.close();
  });

  test('invalid records: 400 with index, path and reason per record, and the log is untouched', async () => {
    const before = await ends('sales');
    const r = await postJson(h.url, '/v1/topics/sales/records', [
      { region: 'east', cents: 1 },
      { region: 'east', cents: 'lots' },
      { cents: 3 },
      { region: '', cents: 2 },
    ]);
    assert.equal(r.status, 400);
    const err = (
      r.body as {
        error: {
          code: string;
          message: string;
          details: { records: { index: number; path: string; reason: string }[]; invalid: number };
        };
      }
    ).error;
    assert.equal(err.code, 'KAPPA_SCHEMA_VIOLATION');
    assert.equal(err.details.invalid, 3);
    assert.deepEqual(
      err.details.records.map((x) => [x.index, x.path]),
      [
        [1, 'cents'],
        [2, 'region'],
        [3, 'region'],
      ],
    );
    assert.match(err.details.records[0].reason, /integer/);
    assert.match(err.message, /nothing was appended/);
    assert.deepEqual(await ends('sales'), before);

    for (const [body, type, status, code] of [
      ['{"region":', 'application/json', 400, 'KAPPA_INVALID_RECORD'],
      ['', 'application/json', 400, 'KAPPA_INVALID_RECORD'],
      ['region=north', 'text/plain', 415, 'KAPPA_UNSUPPORTED_MEDIA_TYPE'],
      [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'application/json', 400, 'KAPPA_INVALID_RECORD'],
    ] as const) {
      const bad = await call(h.url, 'POST', '/v1/topics/sales/records', { body, type });
      assert.equal(bad.status, status, bad.text);
      assert.equal((bad.body as { error: { code: string } }).error.code, code);
    }
    const missing = await postJson(h.url, '/v1/topics/nosuch/records', { a: 1 });
    assert.equal(missing.status, 404);
    assert.equal((missing.body as { error: { code: string } }).error.code, 'KAPPA_UNKNOWN_TOPIC');
    assert.deepEqual(await ends('sales'), before);
  });

  test("a topic with onInvalid 'dlq' appends the good records and dead-letters the others with provenance", async () => {
    const r = await call(h.url, 'POST', '/v1/topics/events/records', {
      body: '{"kind":"a"}\n{"kind":5}\nnot json\n{"kind":"b"}\n',
      type: 'application/x-ndjson',
    });
    assert.equal(r.status, 207, r.text);
    const body = r.body as {
      records: { index: number }[];
      deadLettered: { index: number; topic: string; reason: string }[];
    };
    assert.deepEqual(
      body.records.map((x) => x.index),
      [0, 3],
    );
    assert.deepEqual(
      body.deadLettered.map((x) => [x.index, x.topic]),
      [
        [1, 'events.dlq'],
        [2, 'events.dlq'],
      ],
    );
    const dead = await call(h.url, 'GET', '/v1/topics/events.dlq/records?partition=0');
    const records = (dead.body as { records: { value: unknown; headers: Record<string, string> }[] }).records;
    assert.equal(records.length, 2);
    assert.equal(records[0].headers['kappa.source'], 'http');
    assert.equal(records[0].headers['kappa.request.index'], '1');
    assert.match(records[0].headers['kappa.error'], /kind must be a string/);
    assert.equal(records[1].value, 'not json');
  });

  test('NDJSON streams in, every record acknowledged with its offset; an Idempotency-Key retry appends nothing', async () => {
    const before = await ends('sales');
    const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ region: `r${i % 10}`, cents: i }));
    const body = lines.join('\n') + '\n';
    const first = await call(h.url, 'POST', '/v1/topics/sales/records', {
      body,
      type: 'application/x-ndjson',
      headers: { 'idempotency-key': 'batch-1' },
    });
    assert.equal(first.status, 200, first.text);
    const acks = (first.body as { records: { index: number; partition: number; offset: number }[] }).records;
    assert.equal(acks.length, 5000);
    const after1 = await ends('sales');
    assert.equal(after1.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0), 5000);
    const retry = await call(h.url, 'POST', '/v1/topics/sales/records', {
      body,
      type: 'application/x-ndjson',
      headers: { 'idempotency-key': 'batch-1' },
    });
    assert.equal(retry.status, 200);
    assert.deepEqual((retry.body as { records: unknown[] }).records, acks, 'the original offsets');
    assert.deepEqual(await ends('sales'), after1, 'nothing appended twice');
    const other = await call(h.url, 'POST', '/v1/topics/sales/records', {
      body: lines[0],
      type: 'application/x-ndjson',
      headers: { 'idempotency-key': 'batch-1' },
    });
    assert.equal(other.status, 422);
    assert.equal((other.body as { error: { code: string } }).error.code, 'KAPPA_IDEMPOTENCY_KEY_REUSED');
    // The records are readable back in order.
    const p0 = acks.filter((a) => a.partition === 0);
    const read = await call(h.url, 'GET', `/v1/topics/sales/records?partition=0&from=${p0[0].offset}&limit=3`);
    const rs = (read.body as { records: { offset: number; value: { cents: number } }[]; next: number }).records;
    assert.deepEqual(
      rs.map((x) => x.offset),
      p0.slice(0, 3).map((a) => a.offset),
    );
    assert.equal(rs[0].value.cents, JSON.parse(lines[p0[0].index]).cents);
  });

  test('an NDJSON body larger than the in-memory spool goes through a temporary file, all or nothing', async () => {
    const before = await ends('sales');
    const line = (i: number): string =>
      JSON.stringify({ region: `big${i % 7}`, cents: i, ts: 1_700_000_000_000 + i, refund: i % 2 === 0 });
    const n = 180_000; // about 12 MB, past the 8 MiB kept in memory
    const body = Array.from({ length: n }, (_, i) => line(i)).join('\n') + '\n';
    assert.ok(body.length > 9 * 1024 * 1024);
    // A bad last line refuses the whole body, spooled part included.
    const refused = await call(h.url, 'POST', '/v1/topics/sales/records', {
      body: body + '{"region":"x","cents":"no"}\n',
      type: 'application/x-ndjson',
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(
      (refused.body as { error: { details: { records: { index: number }[] } } }).error.details.records[0].index,
      n,
    );
    assert.deepEqual(await ends('sales'), before);
    const ok = await call(h.url, 'POST', '/v1/topics/sales/records', { body, type: 'application/x-ndjson' });
    assert.equal(ok.status, 200);
    const acks = (ok.body as { records: { index: number; partition: number; offset: number }[] }).records;
    assert.equal(acks.length, n);
    assert.deepEqual(
      acks.slice(0, 3).map((a) => a.index),
      [0, 1, 2],
    );
    const after = await ends('sales');
    assert.equal(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0), n);
    const last = acks[n - 1];
    const read = await call(
      h.url,
      'GET',
      `/v1/topics/sales/records?partition=${last.partition}&from=${last.offset}&limit=1`,
    );
    assert.deepEqual((read.body as { records: { value: unknown }[] }).records[0].value, JSON.parse(line(n - 1)));
  });

  test('views: list, typed filters, order, paging; unknown columns and bad values are 400; SQL is read-only', async () => {
    await until(
      'the view has r3',
      async () =>
        ((await call(h.url, 'GET', '/v1/views/sales_totals?region=r3')).body as { rows?: unknown[] }).rows?.length ===
        1,
    );
    const list = await call(h.url, 'GET', '/v1/views');
    const v = (list.body as { views: { name: string; live: number }[] }).views.find((x) => x.name === 'sales_totals');
    assert.equal(v?.live, 1);
    const top = await call(h.url, 'GET', '/v1/views/sales_totals?order=-cents&limit=2');
    const rows = (top.body as { rows: { cents: number }[] }).rows;
    assert.equal(rows.length, 2);
    assert.ok(rows[0].cents >= rows[1].cents);
    const byN = await call(h.url, 'GET', '/v1/views/sales_totals?n=500&order=region');
    assert.ok((byN.body as { rows: { n: number }[] }).rows.every((x) => x.n === 500));
    for (const q of ['nosuch=1', 'order=nosuch', 'n=abc', 'limit=0', 'offset=-1']) {
      const bad = await call(h.url, 'GET', `/v1/views/sales_totals?${q}`);
      assert.equal(bad.status, 400, `${q}: ${bad.text}`);
      assert.equal((bad.body as { error: { code: string } }).error.code, 'KAPPA_INVALID_ARGUMENT');
    }
    assert.equal((await call(h.url, 'GET', '/v1/views/nosuch')).status, 404);

    const ok = await postJson(h.url, '/v1/sql', {
      sql: 'SELECT count(*) AS n FROM sales_totals WHERE cents > ?',
      params: [0],
    });
    assert.equal(ok.status, 200, ok.text);
    assert.ok((ok.body as { rows: { n: number }[] }).rows[0].n > 0);
    for (const sql of [
      'DELETE FROM sales_totals__v1',
      'INSERT INTO kappa_views VALUES (1)',
      'UPDATE sales_totals__v1 SET cents = 0',
      'DROP VIEW sales_totals',
      'CREATE TABLE x (a)',
      "ATTACH DATABASE '/tmp/x.db' AS x",
      'PRAGMA journal_mode = DELETE',
      'PRAGMA user_version = 5',
      'SELECT 1; DELETE FROM sales_totals__v1',
      'BEGIN',
    ]) {
      const refused = await postJson(h.url, '/v1/sql', { sql });
      assert.equal(refused.status, 400, `${sql}: ${refused.text}`);
      assert.match(
        (refused.body as { error: { code: string } }).error.code,
        /KAPPA_QUERY_NOT_READ_ONLY|KAPPA_SQL_ERROR/,
        sql,
      );
    }
    assert.ok(
      (
        (await postJson(h.url, '/v1/sql', { sql: 'SELECT count(*) AS n FROM sales_totals' })).body as {
          rows: { n: number }[];
        }
      ).rows[0].n > 0,
      'nothing was deleted',
    );
    // A query that would run forever is stopped at the time limit; the server keeps answering meanwhile.
    const started = Date.now();
    const forever = postJson(h.url, '/v1/sql', {
      sql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c',
    });
    assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    const stopped = await forever;
    assert.equal(stopped.status, 400, stopped.text);
    assert.equal((stopped.body as { error: { code: string } }).error.code, 'KAPPA_QUERY_TIMEOUT');
    assert.ok(Date.now() - started < 5000);
    assert.equal((await postJson(h.url, '/v1/sql', { sql: 'SELECT 2 AS two' })).status, 200, 'the next query runs');
  });

  test('topics, records from a time, an SSE tail of a partition', async () => {
    const topics = await call(h.url, 'GET', '/v1/topics');
    assert.ok((topics.body as { topics: { name: string }[] }).topics.some((t) => t.name === 'sales'));
    const one = await call(h.url, 'GET', '/v1/topics/sales');
    assert.equal((one.body as { partitions: unknown[] }).partitions.length, 2);
    assert.equal((await call(h.url, 'GET', '/v1/topics/sales/records?partition=9')).status, 400);
    assert.equal((await call(h.url, 'GET', '/v1/topics/sales/records?from=99999999')).status, 416);
    const latest = await call(h.url, 'GET', '/v1/topics/events/records?from=latest');
    assert.deepEqual((latest.body as { records: unknown[] }).records, []);

    const tail = await openSse(`${h.url}/v1/topics/events/records?partition=0&from=latest`);
    await postJson(h.url, '/v1/topics/events/records', [{ kind: 'x' }, { kind: 'y' }]);
    await tail.until(2);
    assert.deepEqual(
      tail.events.map((e) => JSON.parse(e.data).value.kind),
      ['x', 'y'],
    );
    tail.close();
    // A reconnecting tail resumes after its Last-Event-ID (the offset), whatever `from` says.
    await postJson(h.url, '/v1/topics/events/records', [{ kind: 'z' }]);
    const resumed = await openSse(`${h.url}/v1/topics/events/records?partition=0&from=latest`, {
      'last-event-id': tail.events[1].id!,
    });
    await resumed.until(1);
    assert.equal(JSON.parse(resumed.events[0].data).value.kind, 'z');
    resumed.close();
    // Without tokens, only requests addressed to this machine are answered (DNS rebinding).
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${h.url}/v1/views`, { headers: { host: 'attacker.example:8080' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
  });

  /** The live version of view sales_totals, as GET /v1/views says. */
  const liveVersion = async (): Promise<number | undefined> =>
    ((await call(h.url, 'GET', '/v1/views')).body as { views: { name: string; live: number }[] }).views.find(
      (x) => x.name === 'sales_totals',
    )?.live;

  test('pipelines, replay and rollback over HTTP; metrics; health', async () => {
    const p = await call(h.url, 'GET', '/v1/pipelines');
    const tasks = (p.body as { tasks: { view: string; lag: number }[] }).tasks;
    assert.equal(tasks.filter((t) => t.view === 'sales_totals').length, 2);
    const changes = await openSse(`${h.url}/v1/views/sales_totals/changes`);
    const replay = await postJson(h.url, '/v1/views/sales_totals/replay', {});
    assert.equal(replay.status, 202, replay.text);
    assert.equal((replay.body as { version: number }).version, 2);
    await until('version 2 is live', async () => (await liveVersion()) === 2);
    await until('the swap reached the stream', async () => changes.events.some((e) => e.event === 'reset'));
    changes.close();
    const again = await postJson(h.url, '/v1/views/sales_totals/replay', { from: 'yesterday' });
    assert.equal(again.status, 400);
    const back = await postJson(h.url, '/v1/views/sales_totals/rollback', {});
    assert.equal(back.status, 202, back.text);
    await until('version 1 is live again', async () => (await liveVersion()) === 1);

    const m = await call(h.url, 'GET', '/metrics');
    assert.equal(m.status, 200);
    for (const name of [
      'kappa_ingest_records_total',
      'kappa_append_seconds',
      'kappa_fsync_seconds',
      'kappa_task_lag_records',
      'kappa_flush_seconds',
      'kappa_view_rows',
      'kappa_http_requests_total',
      'kappa_build_progress_ratio',
    ]) {
      assert.match(m.text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.match(m.text, /kappa_ingest_records_total\{topic="sales"\} \d+/);
    assert.match(
      m.text,
      /kappa_http_requests_total\{method="POST",route="\/v1\/topics\/:topic\/records",status="400"\} \d+/,
    );
    assert.equal((await call(h.url, 'GET', '/healthz')).status, 200);
    assert.equal((await call(h.url, 'GET', '/readyz')).status, 200);
    const nf = await call(h.url, 'GET', '/v1/nosuch');
    assert.equal(nf.status, 404);
    assert.equal((nf.body as { error: { code: string } }).error.code, 'KAPPA_NOT_FOUND');
  });

  test('listening beyond this machine without tokens is refused at start', async () => {
    await assert.rejects(
      startServer({
        log: h.log,
        store: h.store,
        control: h.store,
        app: { topics: [], views: [], outputs: [], server: {}, webhooks: [] },
        engine: null,
        host: '0.0.0.0',
        port: 0,
      }),
      /without any token/,
    );
  });
});

test('an app of topics only, with nothing to catch up, is ready once started', async (t) => {
  const h = await startHarness(`
import { defineApp, topic } from ${JSON.stringify(KAPPA_SRC)};
export default defineApp({ topics: [topic('sales')] });
`);
  t.after(() => h.close());
  assert.equal(h.engine.caughtUp, true);
  assert.equal((await call(h.url, 'GET', '/readyz')).status, 200);
});
