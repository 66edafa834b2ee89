/**
 * The engine's side of a cluster (cluster.ts): what each task this process could own is (its
 * candidates), how a task is opened once its lease is taken, handed over or dropped, and the work
 * of every tick after the rebalance — following the store's catalog (cluster-versions.ts) and, in
 * the coordinator, the requests, schedules and swaps.
 */
import type { Log, Logger } from '../log/index.ts';
import type { ControlStore, ViewStore } from '../view/index.ts';
import { taskId } from '../view/index.ts';
import { type Candidate, Cluster, type ClusterOptions } from './cluster.ts';
import { buildIfLogicChanged, goLiveFromCheckpoints, reconcileView } from './cluster-versions.ts';
import type { AppDef } from './dsl.ts';
import type { Flusher } from './flush.ts';
import { type OutputTasksOptions, openOutputTask } from './outputs.ts';
import type { Requests } from './requests.ts';
import type { Task, TaskLoop } from './task-loop.ts';
import type { Versions } from './versions.ts';

export interface EngineClusterParts {
  log: Log;
  store: ViewStore;
  control: ControlStore;
  app: AppDef;
  logger: Logger;
  loop: TaskLoop;
  versions: Versions;
  flusher: Flusher;
  requests: Requests;
  outputs: OutputTasksOptions;
  fail(err: Error): void;
}

export function engineCluster(opts: ClusterOptions, parts: EngineClusterParts): Cluster {
  const { loop, flusher } = parts;
  const partitions = new Map<string, number>();
  const partitionsOf = async (topic: string): Promise<number> => {
    let n = partitions.get(topic);
    if (n === undefined) partitions.set(topic, (n = (await parts.log.topic(topic)).partitions));
    return n;
  };
  const forget = async (task: Task): Promise<void> => {
    await loop.remove([task]);
    const tasks = task.group?.tasks;
    if (tasks !== undefined && tasks.includes(task)) tasks.splice(tasks.indexOf(task), 1);
  };
  // The coordinator term whose takeover work was done (at its start, a coordinator plans as a single process does).
  let termHandled: number | null = null;
  const cluster: Cluster = new Cluster(opts, {
    log: parts.log,
    logger: parts.logger,
    async candidates() {
      const out: Candidate[] = [];
      for (const g of parts.versions.groups) {
        const topic = g.plan.source.name;
        for (let p = 0; p < (await partitionsOf(topic)); p++) {
          out.push({
            id: taskId('view', g.plan.name, g.version, topic, p),
            open: (fence, stop) => parts.versions.openTask(g, p, fence, undefined, stop),
          });
        }
      }
      for (const output of parts.app.outputs ?? []) {
        const topic = output.stream.source.name;
        for (let p = 0; p < (await partitionsOf(topic)); p++) {
          out.push({
            id: taskId('output', output.name, null, topic, p),
            open: (fence, stop) => openOutputTask(parts.outputs, output, p, fence, stop),
          });
        }
      }
      return out;
    },
    start: (task) => loop.start(task),
    async handOver(task) {
      await task.running.catch(() => {});
      try {
        await flusher.flush(task);
      } finally {
        await forget(task);
      }
    },
    drop: forget,
    async afterRebalance(coordinator) {
      const versions = await parts.store.versions();
      const builds = await parts.control.builds();
      for (const view of parts.app.views) {
        const mine = (v: { name: string }): boolean => v.name === view.name;
        await reconcileView(parts.versions, view, versions.filter(mine), builds.filter(mine));
      }
      if (!coordinator) return;
      if (cluster.coordinatorEpoch !== cluster.joinEpoch && termHandled !== cluster.coordinatorEpoch) {
        termHandled = cluster.coordinatorEpoch;
        for (const view of parts.app.views) {
          const mine = (v: { name: string }): boolean => v.name === view.name;
          await buildIfLogicChanged(parts.versions, view, versions.filter(mine), builds.filter(mine));
        }
      }
      await parts.requests.tick();
      await goLiveFromCheckpoints(parts.versions);
    },
    fail: parts.fail,
  });
  return cluster;
}
