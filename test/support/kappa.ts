/**
 * A whole Kappa in this process, wired the way `kappa start` wires it: the file log, the SQLite view
 * store (also the control store), the engine, and optionally the HTTP server on 127.0.0.1 port 0.
 *
 *   openKappa(opts): Promise<Kappa>
 *
 * One `close()` undoes it all, in order: server, engine (`stop`, which flushes, or `close` when
 * opts.engineEnd is 'close'), store, log. It is idempotent, and with opts.t it also runs when that
 * test ends, pass or fail, before the test's temp dirs are removed (see cleanup.ts).
 *
 *   test('…', async (t) => {
 *     const project = tempProject(t, 'kappa-x-');
 *     const k = await openKappa({ t, dir: project.dataDir('data'), configPath: project.writeConfig(totalsConfig()) });
 *     await k.log.append('sales', [...]);
 *   });
 */
import { join } from 'node:path';
import { type FileLog, type Logger, openFileLog } from '../../src/log/index.ts';
import { type KappaServer, type ServerOptions, startServer } from '../../src/server/index.ts';
import { type AppDef, Engine, type EngineOptions, loadApp } from '../../src/stream/index.ts';
import { type SqliteStore, openSqliteStore } from '../../src/view/sqlite/index.ts';
import { type Owner, defer } from './cleanup.ts';
import { quietLogger } from './loggers.ts';

export interface OpenKappaOptions {
  /** The data directory (the log's files, and views.db). */
  dir: string;
  /** The config file; its app is loaded from it unless `app` is given. */
  configPath: string;
  app?: AppDef;
  /** Default 0: the pipelines run on the main thread. */
  workers?: number;
  /** Default 20 ms, so tests see flushed rows soon. */
  flushIntervalMs?: number;
  /** For the engine and the log; default quiet. */
  logger?: Logger;
  /** Any other engine options (they win over the ones above). */
  engine?: Partial<EngineOptions>;
  /** Start the engine (default true). */
  start?: boolean;
  /** Also start the HTTP server on port 0, with these options. */
  server?: Partial<ServerOptions>;
  /** 'stop' (default) flushes on close; 'close' stops without flushing. */
  engineEnd?: 'stop' | 'close';
  /** Close everything when this test ends. */
  t?: Owner;
}

export interface Kappa {
  log: FileLog;
  store: SqliteStore;
  engine: Engine;
  /** Null unless opts.server was given. */
  server: KappaServer | null;
  /** The server's URL ('' without a server). */
  url: string;
  dir: string;
  configPath: string;
  close(): Promise<void>;
}

export async function openKappa(opts: OpenKappaOptions): Promise<Kappa> {
  const logger = opts.logger ?? quietLogger;
  const log = await openFileLog({ dir: opts.dir, logger });
  const store = await openSqliteStore({ path: join(opts.dir, 'views.db') });
  const app = opts.app ?? (await loadApp(opts.configPath));
  const { configPath } = opts;
  const workers = opts.workers ?? 0;
  const flushIntervalMs = opts.flushIntervalMs ?? 20;
  const engine = new Engine({
    log,
    store,
    control: store,
    app,
    configPath,
    workers,
    flushIntervalMs,
    logger,
    ...opts.engine,
  });
  let server: KappaServer | null = null;
  let closing: Promise<void> | null = null;
  const closeAll = async (): Promise<void> => {
    try {
      await server?.close();
      await (opts.engineEnd === 'close' ? engine.close() : engine.stop());
    } finally {
      await store.close();
      await log.close();
    }
  };
  const close = (): Promise<void> => (closing ??= closeAll());
  const kappa: Kappa = { log, store, engine, server, url: '', dir: opts.dir, configPath, close };
  if (opts.t) defer(opts.t, () => kappa.close());
  try {
    if (opts.start !== false) await engine.start();
    if (opts.server) {
      server = await startServer({ log, store, control: store, app, engine, port: 0, ...opts.server });
      Object.assign(kappa, { server, url: server.url });
    }
  } catch (error) {
    if (!opts.t) await kappa.close().catch(() => {});
    throw error;
  }
  return kappa;
}

/**
 * Waits until `version` of `view` is live, no build runs, and its tasks have committed at least
 * `records` offsets in all (summed over partitions); fails after `timeoutMs`.
 */
export async function untilLive(
  kappa: Kappa,
  view: string,
  version: number,
  records: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = (await kappa.store.versions()).find((v) => v.name === view && v.state === 'live');
    const done = kappa.engine
      .status()
      .filter((t) => t.version === version)
      .reduce((n, t) => n + t.committedOffset, 0);
    if (live?.version === version && kappa.engine.builds().length === 0 && done >= records) return;
    if (Date.now() > deadline) throw new Error(`version ${version} did not go live`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Resolves once every task of `engine` has committed up to the end of its partition (within
 * `timeoutMs`); fails with the engine's failure, or with the tasks still behind.
 */
export async function engineCaughtUp(engine: Engine, log: FileLog, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind: string[] = [];
    for (const t of engine.status()) {
      const { end } = await log.offsets(t.topic, t.partition);
      if (t.committedOffset < end)
        behind.push(`${t.view}/${t.partition}: committed ${t.committedOffset}, read ${t.offset}, end ${end}`);
    }
    if (behind.length === 0) return;
    if (Date.now() > deadline) throw new Error(`the engine did not catch up: ${behind.join('; ')}`);
    await Promise.race([engine.failure, new Promise((r) => setTimeout(r, 20))]);
  }
}
