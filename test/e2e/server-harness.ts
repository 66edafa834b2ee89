/**
 * A real Kappa server for the HTTP suites: a config file in a temp dir, the FileLog, the SQLite
 * store, the engine and the server on 127.0.0.1 port 0, and small helpers to call it and to read
 * Server-Sent Events.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { type KappaServer, startServer } from '../../src/server/index.ts';
import { Engine, loadApp } from '../../src/stream/index.ts';
import { type SqliteStore, openSqliteStore } from '../../src/view/sqlite/index.ts';

export const SRC = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

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

let configs = 0;

export async function startHarness(config = salesConfig(), opts: { flushIntervalMs?: number } = {}): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), 'kappa-http-'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  const file = join(root, `kappa-${++configs}.config.ts`);
  writeFileSync(file, config);
  const dir = join(root, 'data');
  const log = await openFileLog({ dir, logger: { info() {}, warn() {} } });
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  const app = await loadApp(file);
  const engine = new Engine({ log, store, control: store, app, configPath: file, workers: 0, flushIntervalMs: opts.flushIntervalMs ?? 20, logger: { info() {}, warn() {} } });
  await engine.start();
  const server = await startServer({ log, store, control: store, app, engine, port: 0, sqlTimeoutMs: 1000 });
  return {
    url: server.url,
    log,
    store,
    engine,
    server,
    dir,
    async close() {
      await server.close();
      await engine.stop();
      await store.close();
      await log.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

export async function call(url: string, method: string, path: string, opts: { body?: string | Buffer; type?: string; token?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.type !== undefined) headers['content-type'] = opts.type;
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  const payload = typeof opts.body === 'string' || opts.body === undefined ? opts.body : new Uint8Array(opts.body);
  const res = await fetch(url + path, { method, headers, body: payload });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, for example)
  }
  return { status: res.status, headers: res.headers, body, text };
}

export const postJson = (url: string, path: string, value: unknown, token?: string): Promise<Reply> => call(url, 'POST', path, { body: JSON.stringify(value), type: 'application/json', token });

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Opens an SSE stream and collects its events until `close()`. */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<{ events: SseEvent[]; until(n: number, ms?: number): Promise<void>; close(): void; status: number }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const events: SseEvent[] = [];
  let waiters: (() => void)[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const e: SseEvent = { id: null, event: 'message', data: '' };
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') e.id = value;
            else if (field === 'event') e.event = value;
            else if (field === 'data') e.data += value;
            isEvent = true;
          }
          if (isEvent) {
            events.push(e);
            for (const w of waiters) w();
            waiters = [];
          }
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    status: res.status,
    async until(n, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (events.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${events.length} of ${n} events arrived: ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
    close: () => abort.abort(),
  };
}
