/**
 * Idempotency-Key across restarts and crashes: the key is kept in the log with the append it
 * answers (src/server/idempotency.ts), so a retry after the server was killed gets the first
 * answer and appends nothing. First the real thing (`kappa start` SIGKILLed), then, in process, the
 * cases a restart must get right: big requests whose offsets the log no longer remembers, a reused
 * key, dead letters and keyless records.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Type, defineApp, topic } from '../../src/index.ts';
import { openFileLog } from '../../src/log/index.ts';
import { startServer } from '../../src/server/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { type Owner, tempDir } from '../support/cleanup.ts';
import { type OwnedChild, startKappa } from '../support/processes.ts';
import { type Reply, call } from './server-harness.ts';

const SRC = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

interface Ack {
  index: number;
  partition: number;
  offset: number;
}

const acksOf = (r: Reply): Ack[] => (r.body as { records: Ack[] }).records;
const codeOf = (r: Reply): string | undefined => (r.body as { error?: { code?: string } }).error?.code;

/** Removed when the test ends, after the `kappa start` it ran is killed (cleanup.ts runs them last-in-first-out). */
const tempRoot = (t: Owner): string => tempDir(t, 'kappa-idem-');

function ndjson(n: number, from = 0, extra: Record<string, unknown> = {}): string {
  return (
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        orderId: `o${from + i}`,
        region: ['north', 'south', 'east'][(from + i) % 3],
        cents: from + i,
        ts: 1_700_000_000_000 + from + i,
        ...extra,
      }),
    ).join('\n') + '\n'
  );
}

describe('Idempotency-Key across a SIGKILL of kappa start', () => {
  const CONFIG = `
import { Type, defineApp, topic } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ orderId: Type.String(), region: Type.String(), cents: Type.Integer(), ts: Type.Integer() });
export default defineApp({ topics: [topic('sales', { partitions: 3, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts })] });
`;

  async function start(t: Parameters<typeof startKappa>[0], root: string): Promise<{ child: OwnedChild; url: string }> {
    const child = startKappa(t, [
      '--data-dir',
      join(root, 'data'),
      '--config',
      join(root, 'kappa.config.ts'),
      'start',
      '--port',
      '0',
    ]);
    const [, url] = await child.waitForOutput(/HTTP API on (http:\/\/\S+)/, { timeoutMs: 30_000, stream: 'stderr' });
    return { child, url };
  }

  async function kill(child: OwnedChild): Promise<void> {
    child.kill('SIGKILL');
    assert.equal((await child.exited).signal, 'SIGKILL');
  }

  async function records(url: string): Promise<number> {
    // Once more if the first try fails: a pooled connection may have just been closed as idle.
    const r = await call(url, 'GET', '/v1/topics/sales').catch(() => call(url, 'GET', '/v1/topics/sales'));
    assert.equal(r.status, 200, r.text);
    return (r.body as { records: number }).records;
  }

  function setUp(t: { after(fn: () => void): void }): string {
    const root = tempRoot(t);
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(root, 'kappa.config.ts'), CONFIG);
    return root;
  }

  test(
    'a retry after SIGKILL and restart gets the same partitions and offsets and appends nothing; another body with the key is a 422',
    { timeout: 120_000 },
    async (t) => {
      const root = setUp(t);
      const body = ndjson(2000);
      const post = (url: string, b = body): Promise<Reply> =>
        call(url, 'POST', '/v1/topics/sales/records', {
          body: b,
          type: 'application/x-ndjson',
          headers: { 'idempotency-key': 'order-batch-7' },
        });

      let { child, url } = await start(t, root);
      const first = await post(url);
      assert.equal(first.status, 200, first.text);
      assert.equal(acksOf(first).length, 2000);
      assert.equal(await records(url), 2000);
      await kill(child);

      ({ child, url } = await start(t, root));
      const retry = await post(url);
      assert.equal(retry.status, 200, retry.text);
      assert.deepEqual(acksOf(retry), acksOf(first), 'the first answer: same partitions and offsets');
      assert.equal(await records(url), 2000, 'nothing appended twice');

      const other = await post(url, ndjson(5, 9000));
      assert.equal(other.status, 422, other.text);
      assert.equal(codeOf(other), 'KAPPA_IDEMPOTENCY_KEY_REUSED');
      assert.equal(await records(url), 2000, 'nothing of the other body appended');
      await kill(child);
    },
  );

  test(
    'a request killed midway: its retry after restart appends exactly what is missing, each record once',
    { timeout: 120_000 },
    async (t) => {
      const root = setUp(t);
      const n = 60_000;
      const body = ndjson(n);
      const post = (url: string): Promise<Response> =>
        fetch(`${url}/v1/topics/sales/records`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': 'big-1' },
          body,
        });

      let { child, url } = await start(t, root);
      const inFlight = post(url).catch(() => null); // cut off by the kill, or answered just before it
      // Kill as soon as the first appends show, wherever the request is then.
      const deadline = Date.now() + 20_000;
      while ((await records(url)) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await kill(child);
      await inFlight;

      ({ child, url } = await start(t, root));
      const before = await records(url);
      assert.ok(before > 0 && before <= n, `${before} records survived the kill`);
      const retry = await post(url);
      assert.equal(retry.status, 200);
      const acks = ((await retry.json()) as { records: Ack[] }).records;
      assert.equal(acks.length, n);
      assert.equal(await records(url), n, 'each record of the request exactly once');
      // Every acknowledged offset holds the record it acknowledges.
      const byPartition = new Map<number, Map<number, string>>();
      for (let p = 0; p < 3; p++) {
        const seen = new Map<number, string>();
        for (let from = 0; ;) {
          const page = await call(url, 'GET', `/v1/topics/sales/records?partition=${p}&from=${from}&limit=10000`);
          const got = (page.body as { records: { offset: number; value: { orderId: string } }[]; next: number })
            .records;
          for (const r of got) seen.set(r.offset, r.value.orderId);
          if (got.length < 10_000) break;
          from = (page.body as { next: number }).next;
        }
        byPartition.set(p, seen);
      }
      for (const a of acks)
        assert.equal(byPartition.get(a.partition)!.get(a.offset), `o${a.index}`, `record ${a.index}`);
      await kill(child);
    },
  );
});

describe('Idempotency-Key across a restart of the server (in process)', () => {
  const Sale = Type.Object({ orderId: Type.Optional(Type.String()), region: Type.String(), cents: Type.Integer() });
  const app = defineApp({
    topics: [
      topic('sales', { partitions: 2, schema: Sale, key: (s: { orderId?: string }) => s.orderId ?? null }),
      topic('one', { partitions: 1, schema: Sale }),
      topic('events', { partitions: 2, schema: Type.Object({ kind: Type.String() }), onInvalid: 'dlq' }),
    ],
  });

  interface Served {
    /** The server's address (a new one after each restart). */
    readonly url: string;
    ends(topic: string): Promise<number[]>;
    /** Closes everything and opens it again over the same data: the in-memory keys are gone. */
    restart(): Promise<void>;
    close(): Promise<void>;
  }

  /** A server over a temp data directory, removed when `t` ends. */
  async function serve(t: Owner): Promise<Served> {
    const dir = join(tempRoot(t), 'data');
    let open = await openServer(dir);
    return {
      get url() {
        return open.url;
      },
      ends: (topic) => open.ends(topic),
      async restart() {
        await open.close();
        open = await openServer(dir);
      },
      close: () => open.close(),
    };
  }

  async function openServer(dir: string): Promise<Omit<Served, 'restart'>> {
    const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
    for (const t of app.topics)
      if (!(await log.topics()).some((x) => x.name === t.name))
        await log.createTopic(t.name, { partitions: t.partitions });
    const store = await openSqliteStore({ path: join(dir, 'views.db') });
    const server = await startServer({ log, store, control: store, app, engine: null, port: 0 });
    return {
      url: server.url,
      async ends(topic) {
        const out = [];
        for (let p = 0; p < (await log.topic(topic)).partitions; p++) out.push((await log.offsets(topic, p)).end);
        return out;
      },
      async close() {
        await server.close();
        await store.close();
        await log.close();
      },
    };
  }

  const post = (url: string, topic: string, body: string, key: string, type = 'application/x-ndjson'): Promise<Reply> =>
    call(url, 'POST', `/v1/topics/${topic}/records`, { body, type, headers: { 'idempotency-key': key } });

  test(
    'a request of 12,000 records on one partition: the retry gets every original offset, also those older than the five batches the log remembers',
    { timeout: 60_000 },
    async (t) => {
      const s = await serve(t);
      // Other appends in between, so the originals are not simply the first offsets.
      assert.equal((await post(s.url, 'one', ndjson(10, 0), 'warm-up')).status, 200);
      const body = ndjson(12_000, 100);
      const first = await post(s.url, 'one', body, 'big');
      assert.equal(first.status, 200, first.text);
      assert.equal((await post(s.url, 'one', ndjson(10, 50_000), 'after')).status, 200);
      const ends = await s.ends('one');

      await s.restart();
      try {
        const retry = await post(s.url, 'one', body, 'big');
        assert.equal(retry.status, 200, retry.text);
        assert.deepEqual(acksOf(retry), acksOf(first));
        assert.ok(acksOf(retry).every((a) => a.offset >= 0));
        assert.deepEqual(await s.ends('one'), ends, 'nothing appended');
        // The same body as JSON is another body: its key is refused, nothing appended.
        const json = `[${body.trim().split('\n').join(',')}]`;
        const reused = await post(s.url, 'one', json, 'big', 'application/json');
        assert.equal(reused.status, 422, reused.text);
        assert.deepEqual(await s.ends('one'), ends);
      } finally {
        await s.close();
      }
    },
  );

  /** Two sales without an orderId, so without a key, under one idempotency key. */
  const postKeyless = (url: string): Promise<Reply> =>
    post(
      url,
      'sales',
      JSON.stringify([
        { region: 'n', cents: 1 },
        { region: 's', cents: 2 },
      ]),
      'keyless',
      'application/json',
    );
  const allEnds = async (s: Served): Promise<Record<'events' | 'dlq' | 'sales', number[]>> => ({
    events: await s.ends('events'),
    dlq: await s.ends('events.dlq'),
    sales: await s.ends('sales'),
  });

  test(
    'JSON bodies, keyless records and dead letters: the retry after a restart gets the 207 answer again and appends nothing to the topic or its DLQ',
    { timeout: 60_000 },
    async (t) => {
      const s = await serve(t);
      const body = JSON.stringify([{ kind: 'a' }, { kind: 1 }, { kind: 'b' }, { nope: true }, { kind: 'c' }]);
      const first = await post(s.url, 'events', body, 'mixed', 'application/json');
      assert.equal(first.status, 207, first.text);
      const answer = first.body as {
        records: Ack[];
        deadLettered: { index: number; partition: number; offset: number }[];
      };
      assert.equal(answer.records.length, 3);
      assert.equal(answer.deadLettered.length, 2);
      assert.equal(
        new Set(answer.records.map((a) => a.partition)).size,
        1,
        "a keyed request's keyless records go to one partition",
      );
      const keyless = await postKeyless(s.url);
      assert.equal(keyless.status, 200, keyless.text);
      const ends = await allEnds(s);

      await s.restart();
      try {
        const retry = await post(s.url, 'events', body, 'mixed', 'application/json');
        assert.equal(retry.status, 207, retry.text);
        assert.deepEqual(retry.body, first.body);
        const keylessRetry = await postKeyless(s.url);
        assert.deepEqual(keylessRetry.body, keyless.body);
        assert.deepEqual(await allEnds(s), ends, 'nothing appended anywhere');
        // A new key is a new request.
        const fresh = await post(s.url, 'events', body, 'mixed-2', 'application/json');
        assert.equal(fresh.status, 207);
        assert.deepEqual(
          await s.ends('events.dlq').then((e) => e.reduce((a, b) => a + b, 0)),
          ends.dlq.reduce((a, b) => a + b, 0) + 2,
        );
      } finally {
        await s.close();
      }
    },
  );

  test(
    'the first record of a keyed request carries the body digest in a kappa.idempotency header',
    { timeout: 30_000 },
    async (t) => {
      const s = await serve(t);
      try {
        const body = ndjson(3);
        const r = await post(s.url, 'one', body, 'digest');
        const [a] = acksOf(r);
        const read = await call(s.url, 'GET', `/v1/topics/one/records?partition=0&from=${a.offset}&limit=2`);
        const [rec, next] = (read.body as { records: { headers: Record<string, string> }[] }).records;
        const { createHash } = await import('node:crypto');
        assert.equal(rec.headers['kappa.idempotency'], createHash('sha256').update(body).digest('hex'));
        assert.equal(next.headers['kappa.idempotency'], undefined, 'only the first');
      } finally {
        await s.close();
      }
    },
  );
});
