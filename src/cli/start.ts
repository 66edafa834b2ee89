/**
 * `kappa start`: runs every pipeline of the config over the embedded log until SIGINT or SIGTERM,
 * then flushes, checkpoints and exits 0. A task failure stops everything with exit code 1.
 * Tasks are spread over `--workers` threads (default: one per core); `--workers 0` runs them all
 * on the main thread. The config goes through `kappa check`'s type check (check.ts): type errors
 * are printed as warnings, or refuse the start with `--strict`.
 */
import { resolve } from 'node:path';
import { type Log, stderrLogger } from '../log/index.ts';
import {
  type AppDef,
  Engine,
  type EngineOptions,
  type TokenConfig,
  defaultConfigPath,
  loadApp,
} from '../stream/index.ts';
import { startWebhooks } from '../app/index.ts';
import type { KafkaListener } from '../kafka/index.ts';
import { type KappaServer, startServer } from '../server/index.ts';
import { loadErrorFrame, startChecks } from './check.ts';
import { defaultWorkers, storePath } from './defaults.ts';
import type { CliContext } from './main.ts';
import { kafkaGroups, kafkaLine, startKafka } from './kafka.ts';
import {
  type RuntimeOptions,
  type RuntimeStore,
  clusterOptions,
  describeRuntime,
  openRuntimeLog,
  openRuntimeStore,
} from './runtime.ts';

export interface StartOptions extends RuntimeOptions {
  config?: string;
  flushIntervalMs?: number;
  /** Worker threads for the tasks; 0 folds every task on the main thread. Default: one per core. */
  workers?: number;
  /** Cap on each worker thread's heap, in MB. */
  workerHeapMb?: number;
  /** The HTTP server's address (default: the config's server.host, or 127.0.0.1) and port (default: the config's, or 8080; 0 picks a free one). */
  host?: string;
  port?: number;
  /** False: run the pipelines without the HTTP server. */
  server?: boolean;
  /** Log every HTTP request (pino JSON lines on stdout). */
  httpLog?: boolean;
  /** Refuse to start when the config has type errors (they are warnings otherwise). */
  strict?: boolean;
  /** Tokens the server takes besides the config's server.tokens (`kappa demo --host 0.0.0.0` makes one). */
  tokens?: TokenConfig[];
  /** The Kafka listener: `--kafka-port` (0 picks a free port) and `--no-kafka` (kafka: false). */
  kafkaPort?: number;
  kafka?: boolean;
  /** Runs once the log is open, before the pipelines start (the demo seeds its history here). */
  prepare?: (log: Log, app: AppDef) => Promise<void>;
}

/** What runs beside the pipelines and the server (the demo's generator): started once they are up; the function it returns stops it. */
export type Companion = (running: {
  log: Log;
  engine: Engine;
  server: KappaServer | null;
  kafka: KafkaListener | null;
  app: AppDef;
}) => Promise<() => Promise<void>>;

export async function startCommand(ctx: CliContext, opts: StartOptions, companion?: Companion): Promise<void> {
  const configPath = resolve(opts.config ?? defaultConfigPath());
  let quiet = (): void => {};
  const quieted = new Promise<void>((resolve) => (quiet = resolve));
  const stopTypeCheck = await startChecks(ctx, configPath, opts.strict === true, quieted);
  try {
    return await startApp(ctx, opts, configPath, companion, quiet);
  } catch (err) {
    ctx.stderr.write(loadErrorFrame(err));
    throw err;
  } finally {
    stopTypeCheck();
  }
}

/**
 * `quiet` is called once the views have caught up with the log, or CHECK_WAIT_MS_MAX after the
 * start if they have not: the background type check waits for it (check.ts `startChecks`).
 */
async function startApp(
  ctx: CliContext,
  opts: StartOptions,
  configPath: string,
  companion: Companion | undefined,
  quiet: () => void,
): Promise<void> {
  const configLoadedAtMs = Date.now();
  const app = await loadApp(configPath);
  if (opts.tokens !== undefined && opts.tokens.length > 0)
    app.server = { ...app.server, tokens: [...(app.server.tokens ?? []), ...opts.tokens] };
  const { log, store } = await openRuntime(ctx, opts, app);
  const cluster = clusterOptions(store, opts);
  const engine = newEngine(opts, { log, store, app, configPath, configLoadedAtMs, cluster });
  let server: KappaServer | null = null;
  let kafka: KafkaListener | null = null;
  let stopCompanion: (() => Promise<void>) | null = null;
  let stopWebhooks: (() => Promise<void>) | null = null;
  let stopping: Promise<void> | null = null;
  const consumerGroups = kafkaGroups(log, store);
  // Stop taking requests (appends in flight finish and are acknowledged); the groups after the
  // listener, whose requests in flight use them.
  const stopAround = async (): Promise<void> => {
    await stopCompanion?.();
    await kafka?.close();
    consumerGroups.groups.close();
    await server?.close();
    await stopWebhooks?.();
  };
  // Then flush and checkpoint.
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await stopAround();
      await engine.stop();
    })());
  // Listening from here on: a Ctrl-C while the server, the listener or the webhooks start still
  // stops with a flush (once they are up), instead of killing the process.
  const signalled = untilSignalOrFailure(engine);
  const stopWaiting = whenCaughtUp(engine, quiet);
  try {
    await engine.start();
    if (opts.server !== false)
      server = await startServer({
        log,
        store,
        control: store,
        app,
        engine,
        host: opts.host,
        port: opts.port,
        logger: opts.httpLog ? { level: 'info' } : false,
        consumerGroups: consumerGroups.lag,
      });
    if (cluster !== undefined && server !== null) cluster.member.httpUrl = server.url; // told at the next heartbeat
    ctx.stderr.write(runningLine(ctx, opts, app, engine, server));
    // On a Kafka cluster, Kafka clients talk to the cluster itself: no listener of Kappa's own.
    if (opts.log === undefined)
      kafka = await startKafka(ctx, { log, groups: consumerGroups.groups, app, server, configPath }, opts);
    if (kafka !== null) ctx.stderr.write(kafkaLine(kafka, app));
    stopWebhooks =
      engine.cluster === null
        ? await startDeliveries(ctx, log, store, app)
        : deliverAsCoordinator(ctx, log, store, app, engine);
    if (companion !== undefined) stopCompanion = await companion({ log, engine, server, kafka, app });
    await signalled.done;
    await stop();
    ctx.stderr.write('kappa: stopped; every view is flushed and checkpointed\n');
  } finally {
    stopWaiting();
    signalled.dispose();
    // After a failure: stop the tasks and the worker threads without flushing, so the process can exit.
    if (stopping === null) {
      await stopAround();
      await engine.close();
    }
    await store.close();
    await log.close();
  }
}

/** The engine of `kappa start`, with the options the command line gives. */
function newEngine(
  opts: StartOptions,
  given: Pick<EngineOptions, 'log' | 'app' | 'configPath' | 'configLoadedAtMs' | 'cluster'> & { store: RuntimeStore },
): Engine {
  return new Engine({
    ...given,
    control: given.store,
    workers: opts.workers ?? defaultWorkers(),
    workerHeapMb: opts.workerHeapMb,
    logger: stderrLogger,
    flushIntervalMs: opts.flushIntervalMs,
    // Larger flushes while catching up pay on SQLite, whose group commit joins them into fewer,
    // larger transactions; PostgreSQL commits each on its own connection: in the scale bench
    // (by_order, 1M keys) they bought 11% at 60% more peak RSS (398 → 643 MiB), so not there.
    catchUpRowsMax: opts.store === undefined ? undefined : 0,
  });
}

/** Opens the log, runs the `prepare` hook on it, then opens the store (the log is closed again if either fails). */
async function openRuntime(
  ctx: CliContext,
  opts: StartOptions,
  app: AppDef,
): Promise<{ log: Log; store: RuntimeStore }> {
  const log = await openRuntimeLog(ctx.dataDir, opts);
  try {
    await opts.prepare?.(log, app);
    return { log, store: await openRuntimeStore(storePath(ctx.dataDir), opts) };
  } catch (err) {
    await log.close();
    throw err;
  }
}

/** The config's webhooks, delivering; returns how to stop them (null: none configured). */
async function startDeliveries(
  ctx: CliContext,
  log: Log,
  store: RuntimeStore,
  app: AppDef,
): Promise<(() => Promise<void>) | null> {
  if (app.webhooks.length === 0) return null;
  const hooks = await startWebhooks(log, store, app.webhooks, stderrLogger);
  ctx.stderr.write(`kappa: delivering ${app.webhooks.map((w) => `${w.topic ?? 'alerts'} to ${w.name}`).join(', ')}\n`);
  return () => hooks.stop();
}

/**
 * In a cluster the webhooks deliver from one process, the coordinator, so a record is not posted
 * once per process. When the coordinator changes, the new one goes on from the positions the old
 * one saved (at least once: a record under way when it went may be posted again, with the same
 * Kappa-Delivery-Id). Returns how to stop it.
 */
function deliverAsCoordinator(
  ctx: CliContext,
  log: Log,
  store: RuntimeStore,
  app: AppDef,
  engine: Engine,
): (() => Promise<void>) | null {
  if (app.webhooks.length === 0) return null;
  let stopHooks: (() => Promise<void>) | null = null;
  let changing: Promise<void> = Promise.resolve();
  const follow = (): void => {
    const coordinator = engine.cluster?.coordinator === true;
    if (coordinator === (stopHooks !== null)) return;
    changing = changing.then(async () => {
      if (coordinator && stopHooks === null) stopHooks = await startDeliveries(ctx, log, store, app);
      else if (!coordinator && stopHooks !== null) {
        await stopHooks();
        stopHooks = null;
        ctx.stderr.write('kappa: no longer the coordinator: the webhooks deliver from the new one\n');
      }
    });
  };
  const timer = setInterval(follow, engine.cluster?.heartbeatMs ?? 1000);
  follow();
  return async () => {
    clearInterval(timer);
    await changing;
    await stopHooks?.();
  };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What `kappa start` says once it runs: views, tasks, threads, and where the API and dashboard are. */
function runningLine(
  ctx: CliContext,
  rt: RuntimeOptions,
  app: AppDef,
  engine: Engine,
  server: KappaServer | null,
): string {
  const tasks = engine.status().length;
  const threads = engine.threads === 0 ? 'on the main thread' : `on ${plural(engine.threads, 'worker thread')}`;
  const outputs = app.outputs.length === 0 ? '' : ` and ${plural(app.outputs.length, 'output')}`;
  const where = describeRuntime(ctx.dataDir, rt);
  let line =
    engine.cluster === null
      ? `kappa: running ${plural(app.views.length, 'view')}${outputs} as ${plural(tasks, 'task')} ${threads} over ${where} (Ctrl-C to stop)\n`
      : `kappa: running ${plural(app.views.length, 'view')}${outputs} over ${where}, sharing the tasks with the other processes on that store as ${engine.cluster.memberId}${engine.cluster.coordinator ? ' (the coordinator)' : ''}, ${threads} (Ctrl-C to stop)\n`;
  if (server !== null) {
    const tokens = (app.server.tokens ?? []).length;
    const auth = tokens === 0 ? 'no tokens configured: open to this machine only' : plural(tokens, 'token');
    line += `kappa: HTTP API on ${server.url} (${auth}); dashboard at ${server.url}/\n`;
  }
  return line;
}

/**
 * `done` resolves on SIGINT or SIGTERM and rejects if the engine fails first; `dispose` removes
 * the signal handlers (a start that throws leaves none behind).
 */
/** Longest the background type check waits for the views to catch up. */
const CHECK_WAIT_MS_MAX = 60_000;
const CAUGHT_UP_POLL_MS = 200;

/** Calls `then` once `engine` has caught up, or CHECK_WAIT_MS_MAX from now; returns how to stop waiting. */
function whenCaughtUp(engine: Engine, then: () => void): () => void {
  const startedMs = Date.now();
  const timer = setInterval(() => {
    if (!engine.caughtUp && Date.now() - startedMs < CHECK_WAIT_MS_MAX) return;
    clearInterval(timer);
    then();
  }, CAUGHT_UP_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function untilSignalOrFailure(engine: Engine): { done: Promise<void>; dispose(): void } {
  let onSignal = (): void => {};
  const dispose = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const done = new Promise<void>((resolve, reject) => {
    onSignal = (): void => {
      dispose();
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    engine.failure.catch((err) => {
      dispose();
      reject(err);
    });
  });
  done.catch(() => {}); // a failure before `await done` is rethrown there
  return { done, dispose };
}
