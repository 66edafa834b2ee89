/**
 * A real Kappa server for the HTTP suites: a config file in a temp dir, the FileLog, the SQLite
 * store, the engine and the server on 127.0.0.1 port 0, and small helpers to call it and to read
 * Server-Sent Events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileLog } from '../../src/log/index.ts';
import type { KappaServer } from '../../src/server/index.ts';
import type { Engine } from '../../src/stream/index.ts';
import type { SqliteStore } from '../../src/view/sqlite/index.ts';
import { openKappa } from '../support/kappa.ts';
import { KAPPA_SRC as SRC, projectIn } from '../support/project.ts';

export { SRC };
export { type RawReply, type Reply, type SseEvent, call, openSse, postJson, rawRequest } from '../support/http.ts';

/** Sales with a schema (region, cents, refund, ts), a `sales_totals` view by region, and an `events` topic that dead-letters bad records. */
export function salesConfig(serverJson = '{}'): string {
  return `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC)};
const Sale = Type.Object({ region: Type.String({ minLength: 1 }), cents: Type.Integer(), refund: Type.Optional(Type.Boolean()), ts: Type.Optional(Type.Integer()) });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.region });
const events = topic('events', { partitions: 1, schema: Type.Object({ kind: Type.String() }), onInvalid: 'dlq' });
export default defineApp({
  topics: [sales, events],
  views: [view('sales_totals', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ cents: sum((s) => s.cents), n: count() }))],
  server: ${serverJson},
});
`;
}

export interface Harness {
  url: string;
  log: FileLog;
  store: SqliteStore;
  engine: Engine;
  server: KappaServer;
  dir: string;
  close(): Promise<void>;
}

export async function startHarness(config = salesConfig(), opts: { flushIntervalMs?: number } = {}): Promise<Harness> {
  const project = projectIn(mkdtempSync(join(tmpdir(), 'kappa-http-')));
  const dir = project.dataDir('data');
  const kappa = await openKappa({
    dir,
    configPath: project.writeConfig(config),
    flushIntervalMs: opts.flushIntervalMs ?? 20,
    server: { sqlTimeoutMs: 1000 },
  });
  return {
    url: kappa.url,
    log: kappa.log,
    store: kappa.store,
    engine: kappa.engine,
    server: kappa.server!,
    dir,
    async close() {
      await kappa.close();
      rmSync(project.root, { recursive: true, force: true });
    },
  };
}

/** The end offset of each partition of `topicName`: what the tests compare to see that nothing was appended. */
export async function ends(h: Harness, topicName: string): Promise<number[]> {
  const out = [];
  for (let p = 0; p < (await h.log.topic(topicName)).partitions; p++) out.push((await h.log.offsets(topicName, p)).end);
  return out;
}
