/**
 * A build's progress (offsets done / to the head of the log, events/s, ETA), saved about once a
 * second in the control store for other processes (`kappa replay` following a build, the server's
 * metrics and dashboard). In a cluster a build's tasks run in several processes, so its progress
 * is read from the committed checkpoints instead of this process's tasks.
 */
import type { Log } from '../log/index.ts';
import type { Checkpoint, ControlStore, ViewStore } from '../view/index.ts';
import type { ViewGroup } from './versions.ts';

/** The version's checkpoints as committed (none while it has no table yet). */
export async function committedCheckpoints(store: ViewStore, group: ViewGroup): Promise<Checkpoint[]> {
  if ((await store.definition(group.plan.name, group.version)) === null) return [];
  return store.checkpoints(group.plan.name, group.version);
}

/** Offsets done / to the head of the log, events/s (smoothed) and ETA of a build; saved for other processes. */
export async function saveProgress(
  opts: { log: Log; store: ViewStore; control: ControlStore; distributed?: boolean },
  group: ViewGroup,
  now: number,
): Promise<void> {
  const build = group.build!;
  let done = 0;
  let total = 0;
  const reached = opts.distributed ? await committedCheckpoints(opts.store, group) : group.tasks;
  const topic = group.plan.source.name;
  const { partitions } = await opts.log.topic(topic);
  for (let p = 0; p < partitions; p++) {
    const from = build.fromOffsets.find((f) => f.topic === topic && f.partition === p)?.offset ?? 0;
    const end = (await opts.log.offsets(topic, p)).end;
    const at = reached.find((t) => t.topic === topic && t.partition === p)?.offset ?? from;
    done += Math.max(0, Math.min(at, end) - from);
    total += Math.max(0, end - from);
  }
  const last = group.lastProgress;
  if (last !== null && now > last.atMs) {
    const rate = ((done - last.done) * 1000) / (now - last.atMs);
    build.eventsPerSecond = build.eventsPerSecond === 0 ? rate : 0.5 * build.eventsPerSecond + 0.5 * rate;
  }
  group.lastProgress = { done, atMs: now };
  build.offsetsDone = done;
  build.offsetsTotal = total;
  build.etaSeconds = build.eventsPerSecond > 0 ? (total - done) / build.eventsPerSecond : null;
  build.updatedAtMs = now;
  if (group.build === build) await opts.control.saveBuild(build);
}
