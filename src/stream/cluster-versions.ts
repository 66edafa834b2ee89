/**
 * Version management when several processes share the work (cluster.ts). One process, the
 * coordinator (the holder of the `coordinator` lease), makes every decision about versions, as a
 * single process does (versions.ts: plan at start, builds, swaps, drops, requests, schedules).
 * The others follow what the store says:
 *
 * - `followView` plans a view without changing anything: the live version, and each build in
 *   progress whose logic it can run (the coordinator drops the others);
 * - `reconcileView`, on every tick, brings this process's groups in line with the catalog and
 *   the build records: a build the coordinator started is added, a version it swapped in is
 *   marked live, a group whose version was retired, cancelled or dropped stops;
 * - `goLiveFromCheckpoints` (coordinator only) swaps a build in once every source partition's
 *   committed checkpoint has reached the head the build had to reach: the tasks run in several
 *   processes, so the store's checkpoints, not this process's tasks, say when it caught up.
 */
import type { BuildInfo, ViewVersionInfo } from '../view/index.ts';
import type { ViewDef } from './dsl.ts';
import { committedCheckpoints } from './build-progress.ts';
import { compileView } from './plan.ts';
import { type ViewGroup, type Versions, nextVersion } from './versions.ts';

/** Plans `view` from the catalog and the build records alone (a process that is not the coordinator). */
export async function followView(
  versions: Versions,
  view: ViewDef,
  mine: ViewVersionInfo[],
  builds: BuildInfo[],
): Promise<void> {
  const plan = compileView(view);
  const live = mine.find((v) => v.state === 'live');
  if (live === undefined) {
    // No version yet: version 1 (or the one of this logic), exactly as the coordinator plans it.
    const same = mine.find((v) => v.fingerprint === plan.fingerprint);
    if (!builds.some((b) => b.version === (same?.version ?? nextVersion(view.name, mine, builds))))
      await versions.addGroup(plan, same?.version ?? nextVersion(view.name, mine, builds), true, same ?? null, null);
  } else {
    const code = await versions.planOf(view, plan, live);
    if (code !== null) await versions.addGroup(code.plan, live.version, code.fromConfig, live, null);
  }
  for (const b of builds) await followBuild(versions, view, mine, b);
}

/** Adds the group of a build in progress, if its logic can run here (the config's, or its stored code for a rollback). */
async function followBuild(
  versions: Versions,
  view: ViewDef,
  mine: ViewVersionInfo[],
  build: BuildInfo,
): Promise<void> {
  const info = mine.find((v) => v.version === build.version) ?? null;
  if (info?.state === 'live' || (info?.state === 'retired' && build.reason !== 'rollback')) return;
  const plan = compileView(view);
  if (build.reason === 'rollback') {
    if (info === null) return;
    const target = await versions.planOf(view, plan, info);
    if (target !== null) await versions.addGroup(target.plan, build.version, target.fromConfig, info, { ...build });
    return;
  }
  if (build.fingerprint === plan.fingerprint) await versions.addGroup(plan, build.version, true, info, { ...build });
}

/**
 * Brings this process's groups of `view` in line with the catalog (`mine`) and the build records:
 * what another process (the coordinator) did to the view's versions since the last tick.
 */
export async function reconcileView(
  versions: Versions,
  view: ViewDef,
  mine: ViewVersionInfo[],
  builds: BuildInfo[],
): Promise<void> {
  const groups = versions.groups.filter((g) => g.plan.view.name === view.name);
  const live = mine.find((v) => v.state === 'live');
  for (const g of groups) {
    const info = mine.find((v) => v.version === g.version);
    const build = builds.find((b) => b.version === g.version);
    if (info?.state === 'live') {
      g.live = true;
      g.build = null;
      continue;
    }
    if (g.build !== null && build !== undefined) {
      g.build.offsetsDone = build.offsetsDone; // the coordinator's progress, for this process's status
      continue;
    }
    // Not live and not building: retired by a swap, cancelled, or dropped. (A first version not yet
    // in the catalog keeps running until a version of the view is live.)
    if (live !== undefined || g.build !== null) await versions.stopGroup(g);
  }
  const running = new Set(versions.groups.filter((g) => g.plan.view.name === view.name).map((g) => g.version));
  if (live !== undefined && !running.has(live.version)) {
    const code = await versions.planOf(view, compileView(view), live);
    if (code !== null) await versions.addGroup(code.plan, live.version, code.fromConfig, live, null);
  }
  for (const b of builds) if (!running.has(b.version)) await followBuild(versions, view, mine, b);
}

/**
 * Coordinator only, when it has just become the coordinator (not at its start, where it planned
 * the views as a single process does): starts the build a logic change calls for, which the
 * previous coordinator, running the older config, did not. As at a start: only with rebuild
 * 'auto', no build or rollback in progress, and not after a rollback away from this logic.
 */
export async function buildIfLogicChanged(
  versions: Versions,
  view: ViewDef,
  mine: ViewVersionInfo[],
  builds: BuildInfo[],
): Promise<void> {
  const live = mine.find((v) => v.state === 'live');
  const plan = compileView(view);
  if (live === undefined || live.fingerprint === plan.fingerprint || builds.length > 0) return;
  if (view.rebuild.onChange !== 'auto') return;
  if (mine.some((v) => v.state === 'retired' && v.version > live.version && v.fingerprint === plan.fingerprint)) return;
  await versions.replay(view.name, 'earliest', 'logic changed');
}

/**
 * Coordinator only: swaps in each build whose every source partition has committed up to the head
 * it had to reach (`headOffsets`, fixed when the build was planned here), wherever its tasks run.
 */
export async function goLiveFromCheckpoints(versions: Versions): Promise<void> {
  for (const g of [...versions.groups]) {
    if (g.build === null || g.live || g.abort.signal.aborted || g.headOffsets === null) continue;
    if (!(await caughtUp(versions, g))) continue;
    if (g.ensured === null) await versions.adoptTable(g);
    if (g.ensured === null) continue;
    await versions.swapIn(g);
  }
}

async function caughtUp(versions: Versions, g: ViewGroup): Promise<boolean> {
  const committed = await committedCheckpoints(versions.store, g);
  if (committed.length === 0) return false; // no table yet: no row was folded, as a single process waits too
  const topic = g.plan.source.name;
  return g.headOffsets!.every((head, p) => {
    const at =
      committed.find((c) => c.topic === topic && c.partition === p)?.offset ??
      g.build!.fromOffsets.find((f) => f.topic === topic && f.partition === p)?.offset ??
      0;
    return at >= head;
  });
}
