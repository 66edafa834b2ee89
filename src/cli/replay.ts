/**
 * `kappa replay <view>` and `kappa rollback <view>`: build a new version of a view by replaying
 * the log (or bring the previous version back), then follow the build with a progress bar until
 * the version is live.
 *
 * When `kappa start` is running it holds the data directory, so the command leaves a request in
 * the view store; the engine takes it within a fraction of a second, and the command follows the
 * build's progress, which the engine saves about once a second. When nothing is running, the
 * command runs the config's pipelines itself until the build is live, then stops (flushing and
 * checkpointing everything, like `kappa start` does on Ctrl-C).
 */
import { SingleBar } from 'cli-progress';
import { resolve } from 'node:path';
import { KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import { Engine, defaultConfigPath, loadApp, parseFrom } from '../stream/index.ts';
import type { BuildInfo, ControlStore, ViewRequestAction, ViewStore } from '../view/index.ts';
import { type SqliteStore, openSqliteStore } from '../view/sqlite/index.ts';
import type { CliContext } from './main.ts';
import { openForWriting } from './open.ts';
import { openRuntimeStore, redact } from './runtime.ts';
import { storePath } from './defaults.ts';

export interface ReplayOptions {
  config?: string;
  from?: string;
  cancel?: boolean;
  /** For a rollback: the version to bring back (default the previous one). */
  to?: string;
  /** Return once the build has started instead of following it until the version is live. */
  wait?: boolean;
  /** A cluster's store (`postgres://…`): the request goes to its coordinator (docs/scale-out.md). */
  store?: string;
}

/** What asking a running engine needs of a store: its requests and what they report. */
type Requestable = ViewStore & ControlStore;

/** How long a request may wait for the running engine to take it. */
const TAKE_TIMEOUT_MS = 15_000;
/** A build whose progress has not been saved for this long belongs to an engine that stopped. */
const STALE_MS = 20_000;
const POLL_MS = 200;

export function replayCommand(ctx: CliContext, view: string, opts: ReplayOptions): Promise<void> {
  if (opts.from !== undefined && opts.from !== 'earliest') parseFrom(opts.from);
  if (opts.cancel && opts.from !== undefined)
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      '--cancel and --from cannot be used together: --cancel stops the build in progress.',
    );
  return run(ctx, view, opts.cancel ? 'cancel' : 'replay', opts);
}

export function rollbackCommand(ctx: CliContext, view: string, opts: ReplayOptions): Promise<void> {
  if (opts.to !== undefined && !/^[1-9][0-9]{0,8}$/.test(opts.to))
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `--to ${opts.to} is not a version number: give a whole number such as --to 2 (\`kappa views\` lists the versions of each view), or leave --to out to roll back to the previous version.`,
      { version: opts.to },
    );
  return run(ctx, view, 'rollback', opts);
}

/** What a request to the running engine carries in `from`: where a replay starts, or the version a rollback brings back. */
function requestFrom(action: ViewRequestAction, opts: ReplayOptions): string | null {
  if (action === 'replay') return opts.from ?? 'earliest';
  if (action === 'rollback') return opts.to ?? null;
  return null;
}

async function run(ctx: CliContext, view: string, action: ViewRequestAction, opts: ReplayOptions): Promise<void> {
  if (opts.store !== undefined) return ask(ctx, view, action, opts);
  let log: Log;
  try {
    log = await openForWriting(ctx.dataDir);
  } catch (err) {
    if (err instanceof KappaError && err.code === 'KAPPA_DATA_DIR_LOCKED') return ask(ctx, view, action, opts);
    throw err;
  }
  try {
    await runHere(ctx, log, view, action, opts);
  } finally {
    await log.close();
  }
}

/** A `kappa start` holds the data directory: ask its engine through the store and follow the build. */
async function ask(ctx: CliContext, view: string, action: ViewRequestAction, opts: ReplayOptions): Promise<void> {
  const store: Requestable =
    opts.store !== undefined
      ? await openRuntimeStore(storePath(ctx.dataDir), { store: opts.store })
      : await openSqliteStore({ path: storePath(ctx.dataDir) });
  try {
    if (action !== 'cancel') {
      const running = (await store.builds()).find((b) => b.name === view);
      if (running !== undefined) {
        ctx.stderr.write(
          `kappa: ${describeBuild(running)} is already in progress; following it (Ctrl-C stops following, not the build; \`kappa replay ${view} --cancel\` cancels it)\n`,
        );
        if (opts.wait !== false)
          await follow(ctx, view, running.version, buildSteps(store, view, running.version), () => null);
        return;
      }
    }
    const id = await store.addRequest(view, action, requestFrom(action, opts));
    const deadline = Date.now() + TAKE_TIMEOUT_MS;
    for (;;) {
      const r = await store.request(id);
      if (r?.state === 'failed')
        throw new KappaError('KAPPA_VIEW_CONFLICT', r.message ?? 'The request failed.', { view });
      if (r?.state === 'done') {
        ctx.stderr.write(`kappa: ${r.message}\n`);
        if (action !== 'cancel' && opts.wait !== false)
          await follow(ctx, view, r.version!, buildSteps(store, view, r.version!), () => null);
        return;
      }
      if (r?.state === 'pending' && Date.now() > deadline) {
        throw new KappaError(
          'KAPPA_TIMEOUT',
          opts.store !== undefined
            ? `No \`kappa start\` on ${redact(opts.store)} took the ${action} request within ${TAKE_TIMEOUT_MS / 1000} s: none is running, or its coordinator is stuck. The request stays queued (number ${id}) and runs when one runs.`
            : `Another process holds ${ctx.dataDir}, but it did not take the ${action} request within ${TAKE_TIMEOUT_MS / 1000} s: it is not \`kappa start\`, or it is stuck. The request stays queued (number ${id}) and runs when \`kappa start\` next runs over this directory.`,
          { view, request: id },
        );
      }
      await sleep(POLL_MS);
    }
  } finally {
    await store.close();
  }
}

/** Nothing is running: run the config's pipelines here until the build is live, then stop them. */
async function runHere(
  ctx: CliContext,
  log: Log,
  view: string,
  action: ViewRequestAction,
  opts: ReplayOptions,
): Promise<void> {
  const store = await openSqliteStore({ path: storePath(ctx.dataDir) });
  try {
    if (action === 'cancel') {
      ctx.stderr.write(`kappa: ${await cancelStopped(store, view)}\n`);
      return;
    }
    const configPath = resolve(opts.config ?? defaultConfigPath());
    const app = await loadApp(configPath);
    const logger = {
      info: (m: string) => void ctx.stderr.write(`kappa: ${m}\n`),
      warn: (m: string) => void ctx.stderr.write(`kappa: warning: ${m}\n`),
    };
    const engine = new Engine({ log, store, control: store, app, configPath, logger });
    let stopped = false;
    try {
      const hadLive = (await store.versions()).some((v) => v.name === view && v.state === 'live');
      await engine.start();
      const running = engine.builds().find((b) => b.name === view);
      let version: number;
      let steps: () => Promise<Step>;
      const def = app.views.find((v) => v.name === view);
      if (!hadLive && action === 'replay' && def !== undefined) {
        // Never built: its first version is being built from the start of the log by the start above.
        version = engine.status().find((t) => t.view === view)!.version;
        steps = firstBuildSteps(store, log, view, version, def.aggregation.stream.source.name, () => engine.caughtUp);
        ctx.stderr.write(
          `kappa: view ${view} has no version yet: building version ${version} from the start of the log (it serves its rows as they come)${opts.from !== undefined && opts.from !== 'earliest' ? '; --from applies only to later versions' : ''}\n`,
        );
      } else if (running !== undefined) {
        version = running.version;
        steps = buildSteps(store, view, version);
        ctx.stderr.write(`kappa: ${describeBuild(running)} was already due; following it instead\n`);
      } else {
        const result =
          action === 'replay'
            ? await engine.replay(view, opts.from ?? 'earliest')
            : await engine.rollback(view, opts.to === undefined ? undefined : Number(opts.to));
        version = result.version; // the engine has logged what it does
        steps = buildSteps(store, view, version);
      }
      if (opts.wait === false) {
        ctx.stderr.write(
          'kappa: no `kappa start` is running, so the build runs only while this command does; it goes on from its checkpoints at the next `kappa start`\n',
        );
      } else {
        let failure: Error | null = null;
        engine.failure.catch((err: Error) => (failure = err));
        ctx.stderr.write(
          'kappa: no `kappa start` is running: the pipelines run here until the version is live (Ctrl-C stops; the build goes on from its checkpoints later)\n',
        );
        const interrupted = await withInterrupt((signal) => follow(ctx, view, version, steps, () => failure, signal));
        if (interrupted)
          ctx.stderr.write(
            'kappa: stopping; the build goes on from its checkpoints at the next `kappa start` or `kappa replay`\n',
          );
      }
      await engine.stop();
      stopped = true;
    } finally {
      if (!stopped) await engine.close();
    }
  } finally {
    await store.close();
  }
}

/** Cancels a build left by an engine that is no longer running (nothing else can be running it). */
async function cancelStopped(store: SqliteStore, view: string): Promise<string> {
  const build = (await store.builds()).find((b) => b.name === view);
  if (build === undefined)
    throw new KappaError('KAPPA_VIEW_CONFLICT', `View "${view}" has no build in progress to cancel.`, { view });
  const exists = (await store.versions()).some((v) => v.name === view && v.version === build.version);
  if (build.reason === 'rollback' || !exists) {
    await store.deleteBuild(view, build.version);
  } else {
    await store.dropVersion(view, build.version);
  }
  if (build.reason === 'rollback')
    return `cancelled the rollback of view ${view} to version ${build.version}; it stays retired`;
  const again =
    build.reason === 'logic changed'
      ? " With rebuild: 'auto' (the default), the next `kappa start` builds the changed logic again; set rebuild: 'manual' on the view to keep the current version."
      : '';
  return `cancelled the build of version ${build.version} of view ${view} and dropped what it had built.${again}`;
}

function describeBuild(b: BuildInfo): string {
  return b.reason === 'rollback'
    ? `the rollback of view ${b.name} to version ${b.version}`
    : `a build of version ${b.version} of view ${b.name} (${b.reason})`;
}

/** One look at a build: its progress, or that its version is live. */
type Step =
  | { done: number; total: number; eventsPerSecond: number | null; etaSeconds: number | null }
  | { live: true; rows: number; empty?: boolean };

/** The progress the engine saves for a build, until the version is live. */
function buildSteps(store: Requestable, view: string, version: number): () => Promise<Step> {
  return async () => {
    const build = (await store.builds()).find((b) => b.name === view && b.version === version);
    if (build !== undefined) {
      if (Date.now() - build.updatedAtMs > STALE_MS) {
        throw new KappaError(
          'KAPPA_TIMEOUT',
          `The build of version ${version} of view ${view} has made no progress for ${STALE_MS / 1000} s: \`kappa start\` has probably stopped. The build goes on from its checkpoints when it runs again.`,
          { view, version },
        );
      }
      return {
        done: build.offsetsDone,
        total: build.offsetsTotal,
        eventsPerSecond: build.eventsPerSecond,
        etaSeconds: build.etaSeconds,
      };
    }
    const v = (await store.versions()).find((x) => x.name === view && x.version === version);
    if (v?.state === 'live') return { live: true, rows: v.rows };
    throw new KappaError(
      'KAPPA_VIEW_CONFLICT',
      `The build of version ${version} of view ${view} stopped before it went live: it was cancelled, or the engine failed (see the \`kappa start\` output).`,
      { view, version },
    );
  };
}

/** A view's first version is live from its first rows; it is done once its checkpoints reach the head of every partition of its source. */
function firstBuildSteps(
  store: SqliteStore,
  log: Log,
  view: string,
  version: number,
  topic: string,
  engineCaughtUp: () => boolean,
): () => Promise<Step> {
  return async () => {
    const info = (await store.versions()).find((v) => v.name === view && v.version === version);
    const checkpoints = info === undefined ? [] : await store.checkpoints(view, version);
    let done = 0;
    let total = 0;
    let caughtUp = true;
    for (let p = 0; p < (await log.topic(topic)).partitions; p++) {
      const { start, end } = await log.offsets(topic, p);
      const at = checkpoints.find((c) => c.topic === topic && c.partition === p)?.offset ?? start;
      done += Math.max(0, at - start);
      total += Math.max(0, end - start);
      caughtUp &&= at >= end;
    }
    if (caughtUp && info?.state === 'live')
      return { live: true, rows: (await store.versions()).find((v) => v.name === view && v.version === version)!.rows };
    // A version is created with its first row: a log with nothing that makes a row never creates one.
    if (info === undefined && engineCaughtUp()) return { live: true, rows: 0, empty: true };
    return { done, total, eventsPerSecond: null, etaSeconds: null };
  };
}

/**
 * Shows a build's progress until its version is live. On a terminal, a bar redrawn in place;
 * otherwise (a pipe, a CI log) one line a second.
 */
async function follow(
  ctx: CliContext,
  view: string,
  version: number,
  step: () => Promise<Step>,
  failure: () => Error | null,
  signal?: AbortSignal,
): Promise<void> {
  const stream = ctx.stderr as NodeJS.WriteStream;
  const bar = new SingleBar({
    stream,
    format: `${view} v${version} [{bar}] {percentage}% | {value}/{total} offsets | {eps} events/s | ETA {etaText}`,
    noTTYOutput: !stream.isTTY,
    notTTYSchedule: 1000,
    hideCursor: true,
    barsize: 30,
  });
  bar.start(1, 0, { eps: '-', etaText: '-' });
  let last: { done: number; atMs: number } | null = null;
  let rate = 0;
  try {
    for (;;) {
      const err = failure();
      if (err !== null) throw err;
      if (signal?.aborted) return;
      const s = await step();
      if ('live' in s) {
        bar.update(bar.getTotal(), { etaText: '0s' });
        bar.stop();
        ctx.stderr.write(
          s.empty
            ? `kappa: view ${view} has caught up with the log, but nothing in it makes a row yet; the view appears with its first row\n`
            : `kappa: version ${version} of view ${view} is live (${s.rows} row${s.rows === 1 ? '' : 's'}) and caught up with the log; queries now read it\n`,
        );
        return;
      }
      // Without a rate from the engine, measure it here.
      const now = Date.now();
      if (last !== null && now > last.atMs && s.done > last.done)
        rate =
          rate === 0
            ? ((s.done - last.done) * 1000) / (now - last.atMs)
            : 0.7 * rate + (0.3 * (s.done - last.done) * 1000) / (now - last.atMs);
      if (last === null || s.done !== last.done) last = { done: s.done, atMs: now };
      const eps = s.eventsPerSecond ?? rate;
      const eta = s.etaSeconds ?? (rate > 0 ? (s.total - s.done) / rate : null);
      bar.setTotal(Math.max(1, s.total));
      bar.update(Math.min(s.done, s.total), {
        eps: eps > 0 ? Math.round(eps).toLocaleString('en-US') : '-',
        etaText: eta === null ? '-' : formatSeconds(eta),
      });
      await sleep(POLL_MS);
    }
  } finally {
    bar.stop();
  }
}

/** Runs `fn` until it settles or SIGINT/SIGTERM arrives; true if interrupted. */
async function withInterrupt(fn: (signal: AbortSignal) => Promise<void>): Promise<boolean> {
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await fn(abort.signal);
    return abort.signal.aborted;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function formatSeconds(s: number): string {
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
