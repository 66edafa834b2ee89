/**
 * Live changes across processes: a client subscribed to a view's change stream
 * (`GET /v1/views/:view/changes`, SSE) on one process hears the rows another process's flushes
 * commit. With one source partition there is one view task and one output task, so each of two
 * processes gets one (bounded loads): the process without the view task flushes no row of the
 * view itself, and everything its stream says came from the other through PostgreSQL's NOTIFY.
 * Then the view answers from PostgreSQL over HTTP, by key and compared between versions (`/diff`,
 * and `kappa views diff --store`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../support/cleanup.ts';
import { postgresForFile } from '../support/postgres.ts';
import { runKappa } from '../support/processes.ts';
import { ClusterFixture, type Member, startProducer, stopMember, waitUntil, writeConfig } from './support.ts';

const postgres = postgresForFile();

test("a process's change stream carries the rows another process committed", { timeout: 180_000 }, async (t) => {
  const cluster = await ClusterFixture.start(t, await (await postgres()).freshDatabase(), 1);
  const config = writeConfig(t, 1, 1);
  for (const name of ['a', 'b']) await cluster.member(name, config);
  let watcher: Member | undefined;
  await waitUntil('the view task owned by one process and the output task by the other', async () => {
    const { rows } = await cluster.db.query<{ task: string; owner: string | null }>(
      'SELECT task, owner FROM kappa_task_leases WHERE expires_at > now()',
    );
    const view = rows.find((r) => r.task.startsWith('view:'))?.owner;
    const output = rows.find((r) => r.task.startsWith('output:'))?.owner;
    if (view == null || output == null || view === output) return false;
    watcher = cluster.members.find((m) => output.includes(`/${m.child.pid}/`));
    return watcher !== undefined;
  });

  // The view exists from its first rows on.
  const producer = startProducer(cluster.broker.bootstrap);
  t.after(() => producer.stop());
  await waitUntil('the view live', async () => (await cluster.liveVersion()) === 1);
  const abort = new AbortController();
  t.after(() => abort.abort());
  const res = await fetch(`${watcher!.url}/v1/views/region_totals/changes`, {
    headers: { accept: 'text/event-stream' },
    signal: abort.signal,
  });
  assert.equal(res.status, 200, res.status === 200 ? '' : await res.text());
  let text = '';
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
  })().catch(() => {});

  await waitUntil('row events on the stream of the process without the view task', async () => {
    return (text.match(/^event: row$/gm) ?? []).length >= 5;
  });
  await producer.stop();
  const row = /^event: row\ndata: (.*)$/m.exec(text);
  const data = JSON.parse(row![1]) as { view: string; version: number; row: { region: string; n: number } };
  assert.equal(data.view, 'region_totals');
  assert.equal(data.version, 1);
  assert.ok(data.row.n > 0);
  abort.abort();
  await reading;
  // And the view answers over HTTP from PostgreSQL, filtered by a key, on either process.
  const res2 = await fetch(`${watcher!.url}/v1/views/region_totals?region=north`);
  const text2 = await res2.text();
  assert.equal(res2.status, 200, text2);
  const one = JSON.parse(text2) as { rows: { region: string; n: number }[] };
  assert.equal(one.rows.length, 1);
  assert.equal(one.rows[0].region, 'north');
  assert.ok(one.rows[0].n > 0);
  // Two versions compared on PostgreSQL (here the live one against itself), over HTTP and by the CLI.
  const res3 = await fetch(`${watcher!.url}/v1/views/region_totals/diff?a=1&b=1`);
  const text3 = await res3.text();
  assert.equal(res3.status, 200, text3);
  const diff = JSON.parse(text3) as {
    keyColumns: string[];
    a: { version: number; rows: number };
    b: { version: number };
  };
  assert.deepEqual([diff.keyColumns, diff.a.version, diff.b.version], [['region'], 1, 1]);
  assert.ok(diff.a.rows > 0, text3);
  const emptyDir = tempDir(t, 'kappa-changes-cli-');
  const cli = await runKappa([
    '--data-dir',
    emptyDir,
    'views',
    'diff',
    'region_totals',
    '1',
    '1',
    '--store',
    cluster.storeUrl,
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /view region_totals: version 1 \(live\) against version 1 \(live\); rows matched by region/);
  for (const m of cluster.members) await stopMember(m);
  cluster.passed();
});
