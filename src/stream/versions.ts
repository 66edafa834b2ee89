/**
 * Version management: which versions of each view run, and their lives. At start, `planView`
 * picks them from the catalog, the builds in progress and the config. A version is built beside
 * the live one (`replay`, a logic change, a schedule), goes live once each of its tasks has caught
 * up with the head of its partition (`maybeGoLive`: one store transaction swaps it in), and the
 * retired versions beyond `keepVersions` are dropped. `rollback` makes a retired version catch up
 * from its checkpoints, then swaps it in the same way; `cancel` stops a build or rollback. While a
 * version builds, its progress (offsets done, events/s, ETA) is saved in the control store for
 * other processes (`kappa replay` following a build, the server's metrics and dashboard).
 *
 * A version's tasks are the task loop's (task-loop.ts); this file makes and retires them by group.
 * Fault model: every step that crosses stores (a swap, then forgetting its build) may be cut by a
 * crash; `planView` at the next start finishes or undoes what was left.
 */
import { setMaxListeners } from 'node:events';
import { crashPoint } from '../crash-point.ts';
import { KappaError } from '../errors.ts';
import type { Log, Logger } from '../log/index.ts';
import type { BuildInfo, BuildReason, Checkpoint, ControlStore, ViewStore, ViewVersionInfo } from '../view/index.ts';
import type { TaskFence } from '../view/index.ts';
import { chosenVersion, previousVersion } from './rollback-target.ts';
import { BuildHistory } from './build-history.ts';
import type { ChangeFeed } from './change-feed.ts';
import type { AppDef, ViewDef } from './dsl.ts';
import { type ViewPlan, compileView } from './plan.ts';
import { NO_WATERMARK } from './task-plan.ts';
import { describeChange } from './view-fingerprint.ts';
import { committedCheckpoints, saveProgress } from './build-progress.ts';
import type { Task, TaskLoop } from './task-loop.ts';
import { bundleConfig, loadBundledApp } from './worker-bundle.ts';

/** What a replay, rollback or cancel request did. */
export interface RequestResult {
  version: number;
  message: string;
}

export interface VersionsOptions {
  log: Log;
  store: ViewStore;
  control: ControlStore;
  app: AppDef;
  logger: Logger;
  /** The config file, bundled as the code each new version keeps; none: versions keep no code. */
  configPath?: string;
  loop: TaskLoop;
  changes: ChangeFeed;
  /**
   * Several processes share the work (cluster.ts): a group's tasks are opened only in the process
   * that holds their lease (`openTask`), and a build goes live when the store's checkpoints say so
   * (`goLiveFromCheckpoints`, run by the coordinator), not when this process's tasks caught up.
   */
  distributed?: boolean;
}

/**
 * The tasks of one view version. A view has one group for its live version and, while a new
 * version is built (or a retired one catches up for a rollback), a second one. A group's logic is
 * the config's, or, for a version whose logic the config no longer has, the version's stored code
 * (the config bundled when the version was made, see worker-bundle.ts); those groups run on this
 * thread, since the worker threads only load the config.
 */
export interface ViewGroup {
  plan: ViewPlan;
  version: number;
  fromConfig: boolean;
  /** Set while the version is being built, or caught up for a rollback: its progress record. */
  build: BuildInfo | null;
  /** Offsets done at the last progress update, for events/s. */
  lastProgress: { done: number; atMs: number } | null;
  /** Whether the version's code is known to be stored (checked at its first flush). */
  codeSaved: boolean;
  abort: AbortController;
  /** Set once the version's table exists (it is created at the first row, which fixes the key column types). */
  ensured: Promise<ViewVersionInfo> | null;
  keyNames: string[] | null;
  live: boolean;
  tasks: Task[];
  /**
   * For a build or rollback: the end of each source partition (by partition number) when its tasks
   * were made. The version goes live only once every task has committed up to it (see maybeGoLive).
   */
  headOffsets: number[] | null;
}

export class Versions {
  /** The groups running in this process (read by cluster-versions.ts). */
  readonly groups: ViewGroup[] = [];
  readonly store: ViewStore;
  /** Per view, when its live version went live (for scheduled rebuilds). */
  private readonly liveSince = new Map<string, number>();
  /** The config bundled once (the code a new version keeps); null without a config path or when bundling failed. */
  private configCodePromise: Promise<string | null> | null = null;

  private readonly history: BuildHistory;

  constructor(private readonly opts: VersionsOptions) {
    this.store = opts.store;
    this.history = new BuildHistory(opts.control, opts.logger);
  }

  /**
   * Decides which versions of a view run, from the catalog, the builds in progress and the config:
   * - no version yet: version 1, from the config (it is live from its first rows);
   * - the live version's logic is the config's: it runs; a build of that logic (kappa replay, a
   *   schedule) resumes from its checkpoints; a build of other logic is dropped;
   * - the logic changed: the live version keeps running from its stored code while a new version
   *   replays the log (rebuild 'auto'), or only when asked (`manual`); after a rollback to it the
   *   config's logic (the retired newer version's) is not built again until asked;
   * - a rollback in progress resumes catching up.
   */
  async planView(view: ViewDef, mine: ViewVersionInfo[], builds: BuildInfo[]): Promise<void> {
    const { store, logger } = this.opts;
    const plan = compileView(view);
    const live = mine.find((v) => v.state === 'live');
    if (live === undefined) {
      const same = mine.find((v) => v.fingerprint === plan.fingerprint);
      await this.addGroup(plan, same?.version ?? nextVersion(view.name, mine, builds), true, same ?? null, null);
      return;
    }
    this.liveSince.set(view.name, live.liveAtMs ?? live.createdAtMs);
    let building: ViewGroup | null = null;
    const unfinished = [
      ...new Set([
        ...mine.filter((v) => v.state === 'building').map((v) => v.version),
        ...builds.map((b) => b.version),
      ]),
    ].sort((a, b) => a - b);
    for (const n of unfinished) {
      const info = mine.find((v) => v.version === n) ?? null;
      const build = builds.find((b) => b.version === n) ?? null;
      if (info?.state === 'live' || (info?.state === 'retired' && build?.reason !== 'rollback')) {
        await this.opts.control.deleteBuild(view.name, n); // the process stopped between a swap and forgetting the build
        continue;
      }
      if (build?.reason === 'rollback' && info !== null && building === null) {
        const target = await this.planOf(view, plan, info);
        if (target !== null) {
          building = await this.addGroup(target.plan, n, target.fromConfig, info, build);
          logger.info(`view ${view.name}: resuming the rollback to version ${n}`);
          continue;
        }
      }
      const fingerprint = info?.fingerprint ?? build?.fingerprint;
      if (fingerprint === plan.fingerprint && building === null && build?.reason !== 'rollback') {
        const resumed = build ?? this.newBuildInfo(view.name, n, plan.fingerprint, 'logic changed', 'earliest', []);
        building = await this.addGroup(plan, n, true, info, resumed);
        if (build === null) await this.opts.control.saveBuild(resumed);
        logger.info(`view ${view.name}: resuming the build of version ${n} from its checkpoints`);
        continue;
      }
      logger.info(
        `view ${view.name}: dropping unfinished version ${n}: ${build?.reason === 'rollback' ? 'its rollback cannot resume' : "its logic is not the config's any more"}`,
      );
      if (info !== null) await store.dropVersion(view.name, n);
      await this.opts.control.forgetVersion(view.name, n);
    }

    const liveFromConfig = live.fingerprint === plan.fingerprint;
    const liveCode = liveFromConfig ? { plan, fromConfig: true } : await this.planOf(view, plan, live);
    if (!liveFromConfig && building === null) {
      const rolledBackFrom = mine.find(
        (v) => v.state === 'retired' && v.version > live.version && v.fingerprint === plan.fingerprint,
      );
      if (rolledBackFrom !== undefined) {
        logger.info(
          `view ${view.name}: version ${live.version} is live because it was rolled back to; the config's logic (version ${rolledBackFrom.version}'s) is not built again until you run \`kappa replay ${view.name}\``,
        );
      } else if (view.rebuild.onChange === 'auto') {
        const version = nextVersion(view.name, mine, builds);
        const what = await this.describeChange(view, liveCode?.plan.view ?? null);
        logger.info(
          `view ${view.name}: its logic changed (${what}; fingerprint ${live.fingerprint} → ${plan.fingerprint}); building version ${version} from the start of the log while version ${live.version} keeps serving`,
        );
        this.history.noteChange(view.name, version, what);
        building = await this.newBuild(view, plan, version, 'logic changed', 'earliest');
      } else {
        logger.info(
          `view ${view.name}: its logic changed (fingerprint ${live.fingerprint} → ${plan.fingerprint}); rebuild is 'manual', so version ${live.version} keeps its logic until you run \`kappa replay ${view.name}\``,
        );
      }
    }
    // A process that stopped between a swap and this cleanup left older versions behind.
    await this.dropOldVersions(view);
    if (liveCode !== null) await this.addGroup(liveCode.plan, live.version, liveCode.fromConfig, live, null);
    else {
      logger.warn(
        `view ${view.name}: version ${live.version} keeps serving its rows as they are, without new events: its logic is no longer in the config and its code was not kept (it was built by an older Kappa, or without a config file)` +
          (building !== null ? `; version ${building.version} replaces it once built` : ''),
      );
    }
  }

  /** The logic of an existing version: the config's if the fingerprints match, else its stored code (null, logged, if that cannot run). */
  async planOf(
    view: ViewDef,
    configPlan: ViewPlan,
    info: ViewVersionInfo,
  ): Promise<{ plan: ViewPlan; fromConfig: boolean } | null> {
    if (info.fingerprint === configPlan.fingerprint) return { plan: configPlan, fromConfig: true };
    const code = await this.opts.control.code(view.name, info.version);
    if (code === null) return null;
    try {
      const stored = (await loadBundledApp(code)).views.find((v) => v.name === view.name);
      if (stored === undefined) throw new Error(`it does not define view "${view.name}"`);
      return { plan: compileView(stored, { fingerprint: info.fingerprint }), fromConfig: false };
    } catch (err) {
      this.opts.logger.warn(
        `view ${view.name}: the stored code of version ${info.version} does not load (${(err as Error).message})`,
      );
      return null;
    }
  }

  /** What changed between a version's stored logic and the config's, compared bundled to bundled. */
  private async describeChange(view: ViewDef, before: ViewDef | null): Promise<string> {
    if (before === null) return "what changed cannot be told: the live version's code was not kept";
    const code = await this.configCode();
    const after =
      code === null
        ? undefined
        : (await loadBundledApp(code).catch(() => null))?.views.find((v) => v.name === view.name);
    return after === undefined ? 'changed' : `${describeChange(before, after)} changed`;
  }

  /** The config as one module (kept with each version it builds); bundled once, on first need. */
  configCode(): Promise<string | null> {
    const path = this.opts.configPath;
    this.configCodePromise ??=
      path === undefined
        ? Promise.resolve(null)
        : bundleConfig(path, { logKind: this.opts.log.descriptor.kind }).catch((err: Error) => {
            this.opts.logger.warn(
              `the config could not be bundled, so new view versions do not keep their code (a rollback to them after a logic change is not possible): ${err.message.split('\n')[0]}`,
            );
            return null;
          });
    return this.configCodePromise;
  }

  private newBuildInfo(
    name: string,
    version: number,
    fingerprint: string,
    reason: BuildReason,
    from: string,
    fromOffsets: BuildInfo['fromOffsets'],
  ): BuildInfo {
    const now = Date.now();
    const progress = { offsetsDone: 0, offsetsTotal: 0, eventsPerSecond: 0, etaSeconds: null, updatedAtMs: now };
    return { name, version, fingerprint, reason, from, fromOffsets, startedAtMs: now, ...progress };
  }

  /** A new version of `view` built by replaying the log from `from` ('earliest' or '@<ISO time>'). */
  private async newBuild(
    view: ViewDef,
    plan: ViewPlan,
    version: number,
    reason: BuildReason,
    from: string,
  ): Promise<ViewGroup> {
    const { log } = this.opts;
    const topic = plan.source.name;
    const { partitions } = await log.topic(topic);
    const timeMs = from === 'earliest' ? null : parseFrom(from);
    const fromOffsets: BuildInfo['fromOffsets'] = [];
    for (let p = 0; p < partitions; p++) {
      fromOffsets.push({
        topic,
        partition: p,
        offset: timeMs === null ? (await log.offsets(topic, p)).start : await log.offsetForTime(topic, p, timeMs),
      });
    }
    const build = this.newBuildInfo(view.name, version, plan.fingerprint, reason, from, fromOffsets);
    await this.opts.control.saveBuild(build);
    return this.addGroup(plan, version, true, null, build);
  }

  /**
   * A version's tasks, one per source partition, each from its checkpoint (else from where its
   * build started, else the start of the log); opened on this thread, not yet running.
   */
  async addGroup(
    plan: ViewPlan,
    version: number,
    fromConfig: boolean,
    info: ViewVersionInfo | null,
    build: BuildInfo | null,
  ): Promise<ViewGroup> {
    const { log, store } = this.opts;
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const group: ViewGroup = {
      plan,
      version,
      fromConfig,
      build,
      lastProgress: null,
      codeSaved: false,
      abort,
      ensured: null,
      keyNames: null,
      live: info?.state === 'live',
      tasks: [],
      headOffsets: null,
    };
    if (info !== null) await this.adoptTable(group);
    const checkpoints = info !== null ? await store.checkpoints(plan.name, version) : [];
    const topic = plan.source.name;
    const { partitions } = await log.topic(topic);
    if (build !== null) group.headOffsets = [];
    for (let p = 0; p < partitions; p++) group.headOffsets?.push((await log.offsets(topic, p)).end);
    // In a cluster, cluster.ts opens each task in the process that takes its lease.
    if (!this.opts.distributed) for (let p = 0; p < partitions; p++) await this.openTask(group, p, null, checkpoints);
    this.groups.push(group);
    return group;
  }

  /** Takes the key columns of the version's existing table (if it has one) and registers the version with the store. */
  async adoptTable(group: ViewGroup): Promise<void> {
    const { plan, version } = group;
    const stored = await this.opts.store.definition(plan.name, version);
    if (!stored) return;
    group.keyNames = stored.keyColumns
      .map((c) => c.name)
      .filter((n) => !(plan.windowed && (n === 'window_start' || n === 'window_end')));
    // Idempotent; re-registers what a store cannot keep across restarts (custom merge functions).
    group.ensured = Promise.resolve(
      await this.opts.store.ensureVersion(plan.definition(version, stored.keyColumns, group.keyNames)),
    );
  }

  /**
   * Opens the group's task for partition `p` from its checkpoint (else from where its build
   * started, else the start of the log), not yet running. In a cluster this runs after the lease
   * was taken, so the checkpoint read is one no earlier owner can move any more.
   */
  async openTask(
    group: ViewGroup,
    p: number,
    fence: TaskFence | null,
    checkpoints?: Checkpoint[],
    stop?: AbortSignal,
  ): Promise<Task> {
    const { log, store } = this.opts;
    const { plan, build } = group;
    const topic = plan.source.name;
    if (checkpoints === undefined) {
      // In a cluster another process may have made the table and moved the checkpoint since the
      // group was planned; and a flush of another of this group's tasks may be making it right now.
      if (group.ensured === null) await this.adoptTable(group);
      else await group.ensured.catch(() => {});
      checkpoints = await committedCheckpoints(store, group);
    }
    const cp = checkpoints.find((c) => c.topic === topic && c.partition === p);
    const offset =
      cp?.offset ??
      build?.fromOffsets.find((f) => f.topic === topic && f.partition === p)?.offset ??
      (await log.offsets(topic, p)).start;
    const task = this.opts.loop.add({
      plan,
      group,
      producer: null,
      partition: p,
      offset,
      watermarkMs: cp ? cp.watermark : NO_WATERMARK,
      keyNames: group.keyNames,
      pooled: group.fromConfig,
      fence,
      stop,
    });
    group.tasks.push(task);
    return task;
  }

  /** Starts the tasks of a group made after `start` (a replay, a rollback, a scheduled rebuild). */
  private startGroup(group: ViewGroup): void {
    for (const t of group.tasks) this.opts.loop.start(t);
  }

  /** Stops a group's tasks (its version was retired or its build cancelled) and forgets them; nothing more is flushed. */
  async stopGroup(group: ViewGroup): Promise<void> {
    if (!this.groups.includes(group)) return;
    this.groups.splice(this.groups.indexOf(group), 1);
    group.abort.abort();
    await this.opts.loop.remove(group.tasks);
  }

  /** Keeps the config's code with a version built from it, once (see ViewGroup). */
  async saveCode(group: ViewGroup): Promise<void> {
    group.codeSaved = true;
    if (!group.fromConfig) return;
    const name = group.plan.view.name;
    if ((await this.opts.control.code(name, group.version)) !== null) return;
    const code = await this.configCode();
    if (code !== null) await this.opts.control.saveCode(name, group.version, code);
  }

  /**
   * A building version goes live once every one of its tasks has reached the head of its partition
   * (or been idle there) and committed its rows at least up to where the head was when the build
   * started: one store transaction repoints the public SQL view and the catalog (the live version
   * becomes retired), then the retired version's tasks stop, and retired versions beyond
   * `keepVersions` are dropped.
   *
   * Why the second condition: a task says it reached the head when a read waited a whole flush
   * interval for nothing, and on a busy event loop (many tasks folding on this thread) the interval's
   * timer can fire before a read of data that is there; the version then went live with part of
   * the log, a total that filled in a moment later. A task that says so while it has not committed
   * up to the head it had to reach is not caught up: it says so again when it really is. Events
   * that arrive during the build do not hold the swap back (the bound is fixed when it starts),
   * so a steady stream cannot keep a version from ever going live.
   */
  async maybeGoLive(group: ViewGroup | null): Promise<void> {
    if (this.opts.distributed) return; // the coordinator decides from the checkpoints (cluster-versions.ts)
    if (group === null || group.live || group.ensured === null || !group.tasks.every((t) => t.caughtUp)) return;
    if (group.abort.signal.aborted) return; // cancelled (or retired) while its last task caught up
    const behind = group.tasks.filter((t) => t.committedOffset < (group.headOffsets?.[t.partition] ?? 0));
    if (behind.length > 0) {
      for (const t of behind) t.caughtUp = false;
      return;
    }
    await this.swapIn(group);
  }

  /**
   * Swaps a caught-up version in: one store transaction makes it live (the live one retired),
   * then its build record is forgotten, the other groups of the view stop, and retired versions
   * beyond `keepVersions` are dropped.
   */
  async swapIn(group: ViewGroup): Promise<void> {
    const { store, logger } = this.opts;
    const view = group.plan.view;
    group.live = true; // before any await: the other tasks of the group find it swapping
    await store.makeLive(view.name, group.version);
    crashPoint('swap-after-commit');
    this.opts.changes.emit({ kind: 'live', view: view.name, version: group.version });
    this.liveSince.set(view.name, Date.now());
    const build = group.build;
    group.build = null;
    const took =
      build === null
        ? ''
        : ` (${build.reason === 'rollback' ? 'rolled back' : 'built'} in ${((Date.now() - build.startedAtMs) / 1000).toFixed(1)} s)`;
    logger.info(`view ${view.name}: version ${group.version} caught up with the log and is now live${took}`);
    if (build !== null) await this.opts.control.deleteBuild(view.name, group.version);
    if (build !== null) await this.history.ended(build, 'live', group.tasks, null);
    for (const other of this.groups.filter((g) => g !== group && g.plan.view.name === view.name))
      await this.stopGroup(other);
    await this.dropOldVersions(view);
  }

  /** Keeps the newest `keepVersions` retired versions of a view for rollback; drops the older ones (not one being rolled back to). */
  async dropOldVersions(view: ViewDef): Promise<void> {
    const { store, logger } = this.opts;
    const running = new Set(this.groups.filter((g) => g.plan.view.name === view.name).map((g) => g.version));
    const retired = (await store.versions())
      .filter((v) => v.name === view.name && v.state === 'retired')
      .sort((a, b) => (b.liveAtMs ?? 0) - (a.liveAtMs ?? 0) || b.version - a.version);
    for (const old of retired.slice(view.keepVersions)) {
      if (running.has(old.version)) continue;
      await store.dropVersion(view.name, old.version);
      await this.opts.control.forgetVersion(view.name, old.version);
      logger.info(`view ${view.name}: dropped retired version ${old.version} (keepVersions ${view.keepVersions})`);
    }
  }

  /** Builds a new version of `viewName` by replaying the log from `from` ('earliest' or '@<ISO time>'), beside the live one. */
  async replay(viewName: string, from = 'earliest', reason: BuildReason = 'replay'): Promise<RequestResult> {
    const view = this.configView(viewName);
    if (from !== 'earliest') parseFrom(from);
    this.refuseIfBuilding(viewName);
    const versions = (await this.opts.store.versions()).filter((v) => v.name === viewName);
    if (!versions.some((v) => v.state === 'live'))
      throw new KappaError(
        'KAPPA_VIEW_CONFLICT',
        `View "${viewName}" has no live version yet: it is being built for the first time.`,
        { view: viewName },
      );
    const version = Math.max(
      nextVersion(viewName, versions, await this.opts.control.builds()),
      ...this.groups.filter((g) => g.plan.view.name === viewName).map((g) => g.version + 1),
    );
    const plan = compileView(view);
    const same = versions.some((v) => v.state === 'live' && v.fingerprint === plan.fingerprint);
    this.history.noteChange(viewName, version, same ? 'none: the same logic, replayed' : "the config's logic");
    const group = await this.newBuild(view, plan, version, reason, from);
    this.startGroup(group);
    const message = `building version ${version} of view ${viewName} by replaying ${plan.source.name} from ${from === 'earliest' ? 'the start of the log' : from.slice(1)}; the live version keeps serving until it has caught up`;
    this.opts.logger.info(`view ${viewName}: ${reason === 'scheduled' ? 'scheduled rebuild: ' : ''}${message}`);
    return { version, message };
  }

  /**
   * Makes a retired version of `viewName` live again: `toVersion`, or by default the previous one (the
   * retired one live most recently). It first catches up from its own checkpoints, with its own logic,
   * then the swap is the same as a build's.
   */
  async rollback(viewName: string, toVersion?: number): Promise<RequestResult> {
    const view = this.configView(viewName);
    this.refuseIfBuilding(viewName);
    const versions = (await this.opts.store.versions()).filter((v) => v.name === viewName);
    const target =
      toVersion === undefined ? previousVersion(viewName, versions) : chosenVersion(viewName, versions, toVersion);
    const code = await this.planOf(view, compileView(view), target);
    if (code === null) {
      throw new KappaError(
        'KAPPA_VIEW_CONFLICT',
        `Version ${target.version} of view "${viewName}" cannot run: its logic is not the config's and its code was not kept (it was built by an older Kappa or without a config file).`,
        {
          view: viewName,
          version: target.version,
        },
      );
    }
    const fromOffsets = (await this.opts.store.checkpoints(viewName, target.version)).map((c) => ({
      topic: c.topic,
      partition: c.partition,
      offset: c.offset,
    }));
    const build = this.newBuildInfo(
      viewName,
      target.version,
      target.fingerprint,
      'rollback',
      'checkpoints',
      fromOffsets,
    );
    await this.opts.control.saveBuild(build);
    const group = await this.addGroup(code.plan, target.version, code.fromConfig, target, build);
    this.startGroup(group);
    const message = `rolling back view ${viewName} to version ${target.version}: it catches up from its checkpoints, then goes live`;
    this.opts.logger.info(message);
    return { version: target.version, message };
  }

  /** Stops the build (or rollback) in progress for `viewName`; a new version built so far is dropped. */
  async cancel(viewName: string): Promise<RequestResult> {
    this.configView(viewName);
    // A group already swapping in (live set before its first await) is past cancelling.
    const group = this.groups.find((g) => g.plan.view.name === viewName && g.build !== null && !g.live);
    if (group === undefined)
      throw new KappaError('KAPPA_VIEW_CONFLICT', `View "${viewName}" has no build in progress to cancel.`, {
        view: viewName,
      });
    const build = group.build!;
    const rollback = build.reason === 'rollback';
    group.build = null;
    await this.stopGroup(group);
    const { store } = this.opts;
    const exists = (await store.versions()).some((v) => v.name === viewName && v.version === group.version);
    if (exists && !rollback) {
      await store.dropVersion(viewName, group.version);
      await this.opts.control.forgetVersion(viewName, group.version);
    } else await this.opts.control.deleteBuild(viewName, group.version);
    const message = rollback
      ? `cancelled the rollback of view ${viewName} to version ${group.version}; it stays retired`
      : `cancelled the build of version ${group.version} of view ${viewName} and dropped what it had built`;
    await this.history.ended(build, 'cancelled', group.tasks, message);
    this.opts.logger.info(message);
    return { version: group.version, message };
  }

  /** Records every build in progress as failed, with why (the engine failed); its own errors are logged. */
  async buildsFailed(message: string): Promise<void> {
    for (const g of this.groups) if (g.build !== null) await this.history.ended(g.build, 'failed', g.tasks, message);
  }

  /** The builds in progress, with their progress as of the last update (about once a second). */
  builds(): BuildInfo[] {
    return this.groups.filter((g) => g.build !== null).map((g) => ({ ...g.build! }));
  }

  private configView(name: string): ViewDef {
    const view = this.opts.app.views.find((v) => v.name === name);
    if (view === undefined) {
      throw new KappaError(
        'KAPPA_UNKNOWN_VIEW',
        `There is no view "${name}" in the config (it has ${this.opts.app.views.map((v) => v.name).join(', ') || 'none'}).`,
        { view: name },
      );
    }
    return view;
  }

  private refuseIfBuilding(name: string): void {
    const building = this.groups.find((g) => g.plan.view.name === name && g.build !== null);
    if (building !== undefined) {
      const what =
        building.build!.reason === 'rollback'
          ? `a rollback to version ${building.version}`
          : `version ${building.version} is being built`;
      throw new KappaError(
        'KAPPA_VIEW_CONFLICT',
        `View "${name}": ${what}. Wait for it, or cancel it with \`kappa replay ${name} --cancel\`.`,
        { view: name, version: building.version },
      );
    }
  }

  /** Saves the progress of every build in progress (see saveProgress). */
  async saveBuildProgress(now: number): Promise<void> {
    for (const g of this.groups) if (g.build !== null) await saveProgress(this.opts, g, now);
  }

  /** Starts the scheduled rebuild (`rebuild.everyMs`) of each view whose live version is old enough, unless it is building. */
  async rebuildWhenDue(now: number): Promise<void> {
    for (const view of this.opts.app.views) {
      const every = view.rebuild.everyMs;
      if (every !== null && !this.liveSince.has(view.name)) {
        // A first version goes live with its first rows, without a swap.
        const live = (await this.opts.store.versions()).find((v) => v.name === view.name && v.state === 'live');
        if (live !== undefined) this.liveSince.set(view.name, live.liveAtMs ?? live.createdAtMs);
      }
      const since = this.liveSince.get(view.name);
      if (every === null || since === undefined || now - since < every) continue;
      if (this.groups.some((g) => g.plan.view.name === view.name && g.build !== null)) continue;
      await this.replay(view.name, 'earliest', 'scheduled');
    }
  }
}

/** The next version number of a view: past every version in the catalog and every build. */
export function nextVersion(name: string, versions: ViewVersionInfo[], builds: BuildInfo[]): number {
  const mine = (v: { name: string }): boolean => v.name.toLowerCase() === name.toLowerCase();
  return Math.max(0, ...versions.filter(mine).map((v) => v.version), ...builds.filter(mine).map((b) => b.version)) + 1;
}

/** The time of a replay's `--from @<ISO time>`. */
export function parseFrom(from: string): number {
  const ms = from.startsWith('@') ? Date.parse(from.slice(1)) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `--from "${from}" is not understood. Use earliest, or @ followed by an ISO time such as @2026-01-31T12:00:00Z.`,
      { from },
    );
  }
  return ms;
}
