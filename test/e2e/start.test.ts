/**
 * `kappa start` end to end: a real config file, the real command as a child process, the real log
 * and SQLite file; `kappa query`, `views`, `lag` and `consume <topic>.dlq` look at the result.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type RunResult, runKappa, startKappa, waitFor } from '../support/processes.ts';
import { KAPPA_SRC as SRC, tempDataProject } from '../support/project.ts';

/** The CLI as a child process, with `stdin` as its standard input. */
function kappa(args: string[], stdin = ''): Promise<RunResult> {
  return runKappa(args, { input: stdin, timeoutMs: 60_000 });
}

export const CONFIG = (src: string): string => `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(src)};
const Sale = Type.Object({ orderId: Type.String(), region: Type.String(), amount: Type.Number(), ts: Type.Integer() });
const sales = topic('sales', { partitions: 3, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts });
export default defineApp({
  topics: [sales],
  views: [
    view('by_region', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ total: sum((s) => s.amount), orders: count() })),
  ],
});
`;

/** How long, and how often, a test polls the CLI for what `kappa start` has done. */
const POLL = { timeoutMs: 20_000, intervalMs: 200 };

describe('kappa start', () => {
  // The configs below are ES modules, as in a user's project with "type": "module". The tests share the config.
  const { root, dir, config } = tempDataProject({ after }, 'kappa-start-', CONFIG(SRC));

  test(
    'processes the log into a SQL view, sends invalid records to the DLQ, and stops cleanly on SIGTERM',
    { timeout: 120_000 },
    async (t) => {
      const d = ['--data-dir', dir, '--config', config];
      assert.equal((await kappa([...d, 'topics', 'create', 'sales', '--partitions', '3'])).code, 0);
      const lines = [];
      for (let i = 0; i < 300; i++)
        lines.push(
          JSON.stringify({ orderId: `o${i}`, region: ['north', 'south'][i % 2], amount: i, ts: 1_700_000_000_000 + i }),
        );
      lines.push(JSON.stringify({ orderId: 'bad', region: 'north', amount: 'lots', ts: 1 }));
      const produced = await kappa([...d, 'produce', 'sales', '--key-field', 'orderId'], lines.join('\n') + '\n');
      assert.equal(produced.code, 0, produced.stderr);

      const child = startKappa(t, [...d, 'start', '--port', '0', '--flush-interval-ms', '100']);
      try {
        const rows = await waitFor(
          'the view to hold all 300 orders',
          async () => {
            const q = await kappa([
              ...d,
              'query',
              'SELECT region, total, orders FROM by_region ORDER BY region',
              '--json',
            ]);
            if (q.code !== 0) return null;
            const r = JSON.parse(q.stdout) as { region: string; total: number; orders: number }[];
            return r.reduce((s, x) => s + x.orders, 0) === 300 ? r : null;
          },
          POLL,
        );
        const expected = (parity: number): number =>
          Array.from({ length: 300 }, (_, i) => i)
            .filter((i) => i % 2 === parity)
            .reduce((s, i) => s + i, 0);
        assert.deepEqual(rows, [
          { region: 'north', total: expected(0), orders: 150 },
          { region: 'south', total: expected(1), orders: 150 },
        ]);
        const views = await kappa([...d, 'views', '--json']);
        assert.equal(views.code, 0, views.stderr);
        const [v] = JSON.parse(views.stdout);
        assert.equal(v.name, 'by_region');
        assert.equal(v.state, 'live');
        assert.equal(v.rows, 2);
        const lag = await kappa([...d, 'lag', '--json']);
        assert.equal(lag.code, 0, lag.stderr);
        const lagRows = JSON.parse(lag.stdout) as { partition: number; lag: number }[];
        assert.equal(lagRows.length, 3);
        assert.ok(
          lagRows.every((r) => r.lag === 0),
          lag.stdout,
        );
        const dlq = await waitFor(
          'the dead letter',
          async () => {
            const c = await kappa([...d, 'consume', 'sales.dlq', '--with-meta']);
            return c.stdout.trim() ? c : null;
          },
          POLL,
        );
        const [dead] = dlq.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        assert.equal(dead.value.orderId, 'bad');
        assert.equal(dead.headers['kappa.view'], 'by_region');
        assert.equal(dead.headers['kappa.source.topic'], 'sales');
        assert.match(dead.headers['kappa.error'], /amount must be a number/);
        assert.equal(
          dead.headers['kappa.source.offset'],
          String(
            JSON.parse(
              (await kappa([...d, 'consume', 'sales', '--with-meta'])).stdout
                .trim()
                .split('\n')
                .map((l) => JSON.parse(l))
                .find((r: { value: { orderId: string } }) => r.value.orderId === 'bad').offset,
            ),
          ),
        );
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal((await child.exited).code, 0, child.stderr);
      assert.match(child.stderr, /flushed and checkpointed/);
    },
  );

  test(
    'SIGTERM during an ingestion: the request in flight is answered and durable, new ones are refused, and start exits 0',
    { timeout: 120_000 },
    async (t) => {
      const graceful = join(root, 'graceful');
      const child = startKappa(t, ['--data-dir', graceful, '--config', config, 'start', '--port', '0']);
      let stopping = false;
      try {
        const [, url] = await child.waitForOutput(/HTTP API on (http:\/\/\S+)/, {
          timeoutMs: 30_000,
          stream: 'stderr',
        });
        const n = 200_000;
        const body =
          Array.from({ length: n }, (_, i) =>
            JSON.stringify({ orderId: `g${i}`, region: 'north', amount: 1, ts: 1_700_000_000_000 + i }),
          ).join('\n') + '\n';
        const inFlight = fetch(`${url}/v1/topics/sales/records`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson' },
          body,
        });
        await new Promise((r) => setTimeout(r, 150));
        child.kill('SIGTERM');
        stopping = true;
        const res = await inFlight;
        assert.equal(res.status, 200);
        const acks = ((await res.json()) as { records: unknown[] }).records;
        assert.equal(acks.length, n);
        await assert.rejects(fetch(`${url}/healthz`), 'no new connections once stopping');
      } finally {
        if (!stopping) child.kill('SIGTERM'); // a second SIGTERM would stop it at once
      }
      assert.equal((await child.exited).code, 0, child.stderr);
      const topics = await kappa(['--data-dir', graceful, 'topics', 'describe', 'sales', '--json']);
      const described = JSON.parse(topics.stdout) as { partitionDetails: { records: number }[] };
      assert.equal(
        described.partitionDetails.reduce((s, p) => s + p.records, 0),
        200_000,
        'every acknowledged record is in the log',
      );
    },
  );

  test('a read-only query refuses writes with a clear error', { timeout: 60_000 }, async () => {
    for (const sql of ['DELETE FROM by_region__v1', 'DROP VIEW by_region', 'UPDATE by_region__v1 SET total = 0']) {
      const res = await kappa(['--data-dir', dir, 'query', sql]);
      assert.equal(res.code, 1, sql);
      assert.match(res.stderr, /read-only/i, sql);
    }
    const still = await kappa(['--data-dir', dir, 'query', 'SELECT sum(orders) AS n FROM by_region', '--json']);
    assert.deepEqual(JSON.parse(still.stdout), [{ n: 300 }]);
  });

  test(
    'a config that does not compile or names an unknown topic stops start with the file, line and reason',
    { timeout: 60_000 },
    async () => {
      const broken = join(root, 'broken.config.ts');
      writeFileSync(
        broken,
        `import { defineApp } from ${JSON.stringify(SRC)};\nexport default defineApp({ topics: [], views: [ ]\n`,
      );
      const res = await kappa(['--data-dir', join(root, 'd2'), '--config', broken, 'start']);
      assert.equal(res.code, 1);
      assert.match(
        res.stderr,
        new RegExp(
          `${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: the config does not load: syntax error`,
        ),
      );

      const unknown = join(root, 'unknown.config.ts');
      writeFileSync(
        unknown,
        `import { count, defineApp, from, topic, view } from ${JSON.stringify(SRC)};\nconst a = topic('a');\nconst b = topic('b');\nexport default defineApp({ topics: [a], views: [view('v', from(b).groupBy((x) => ({ k: 1 })).aggregate({ n: count() }))] });\n`,
      );
      const res2 = await kappa(['--data-dir', join(root, 'd3'), '--config', unknown, 'start']);
      assert.equal(res2.code, 1);
      assert.match(res2.stderr, /view "v" reads topic "b", which is not in topics/);
    },
  );
});
