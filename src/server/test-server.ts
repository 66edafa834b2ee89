/**
 * A server for the plugin tests (src/server/*.test.ts), called with `fastify.inject()`, no socket:
 * a real FileLog and a real SQLite store in a temp dir, the sales app (a `sales` topic with a
 * schema, keyed by region, a `sales_totals` view, and an `events` topic that dead-letters bad
 * records), and optionally a running engine and tokens.
 * Everything it opens is closed, and the temp dir removed, in one `t.after`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Type } from '@sinclair/typebox';
import { type FileLog, openFileLog } from '../log/index.ts';
import { type AppDef, Engine, count, defineApp, from, sum, topic, view } from '../stream/index.ts';
import { openSqliteStore, type SqliteStore } from '../view/sqlite/index.ts';
import { hashToken } from './auth.ts';
import { buildServer } from './server.ts';

/** Tokens the server knows when a test asks for them, by the scopes they carry. */
export const TOKENS = { admin: 'kp_admin', query: 'kp_query', producer: 'kp_producer' } as const;

export function salesApp(withTokens: boolean): AppDef {
  const Sale = Type.Object({ region: Type.String({ minLength: 1 }), cents: Type.Integer() });
  const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.region });
  const events = topic('events', { partitions: 1, schema: Type.Object({ kind: Type.String() }), onInvalid: 'dlq' });
  const totals = view(
    'sales_totals',
    from(sales)
      .groupBy((s) => ({ region: s.region }))
      .aggregate({ cents: sum((s) => s.cents), n: count() }),
  );
  const tokens = [
    { name: 'admin', sha256: hashToken(TOKENS.admin), scopes: ['admin'] },
    { name: 'query', sha256: hashToken(TOKENS.query), scopes: ['query'] },
    { name: 'producer', sha256: hashToken(TOKENS.producer), scopes: ['produce:sales'] },
  ];
  return defineApp({ topics: [sales, events], views: [totals], server: withTokens ? { tokens } : {} });
}

export interface TestServer {
  fastify: FastifyInstance;
  log: FileLog;
  store: SqliteStore;
  engine: Engine | null;
}

/**
 * Opens the log, the store, the engine when `engine` is set (it creates the topics; without it
 * they are created here) and the server; closes them all in one `t.after`.
 */
export async function openTestServer(
  t: { after(fn: () => unknown): void },
  opts: { engine?: boolean; tokens?: boolean } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-server-'));
  const quiet = { info() {}, warn() {} };
  let log: FileLog | null = null;
  let store: SqliteStore | null = null;
  let engine: Engine | null = null;
  let fastify: FastifyInstance | null = null;
  t.after(async () => {
    await fastify?.close();
    await engine?.stop();
    await store?.close();
    await log?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const app = salesApp(opts.tokens ?? false);
  log = await openFileLog({ dir: join(dir, 'log'), logger: quiet });
  store = await openSqliteStore({ path: join(dir, 'views.db') });
  if (opts.engine) {
    engine = new Engine({ log, store, control: store, app, workers: 0, flushIntervalMs: 20, logger: quiet });
    await engine.start();
  } else {
    for (const def of app.topics) await log.createTopic(def.name, { partitions: def.partitions });
  }
  fastify = await buildServer({ log, store, control: store, app, engine, sqlTimeoutMs: 1000 });
  return { fastify, log, store, engine };
}

/** The headers of a request to the loopback server, with a bearer token when one is given. */
export function headers(token?: string, more: Record<string, string> = {}): Record<string, string> {
  return { host: '127.0.0.1', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...more };
}

/** The catalogue's error code of an answer ('' when it is not an error). */
export function errorCode(res: LightMyRequestResponse): string {
  return (res.json() as { error?: { code: string } }).error?.code ?? '';
}

/** The content types the tests send. */
export const JSON_TYPE = { 'content-type': 'application/json' };
export const NDJSON = { 'content-type': 'application/x-ndjson' };

/** A POST to the server, as JSON unless `type` says otherwise, with a bearer token when one is given. */
export function post(
  fastify: FastifyInstance,
  url: string,
  payload: string,
  type: Record<string, string> = JSON_TYPE,
  token?: string,
): Promise<LightMyRequestResponse> {
  return fastify.inject({ method: 'POST', url, headers: headers(token, type), payload });
}
