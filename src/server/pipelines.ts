/**
 * Pipelines and builds: `GET /v1/pipelines` (each task's offset, lag, events/s and checkpoint age,
 * every build, and the Kafka consumer groups with their state, members and lag per partition;
 * needs `query`; when several processes share the work, also `cluster`: the processes, their
 * health and what each owns, see `clusterSection`), and the build commands `POST /v1/views/:view/replay` (a new
 * version built from the log), `/rollback` (a retired version live again: `?version=N`, or
 * by default the previous one) and `/cancel` (stop a
 * build), which need `admin` and a running engine (503 without one); `GET /v1/views/:view/builds` (the
 * builds in progress and the finished ones, newest first: reason, what changed, events, duration,
 * result; needs `query`).
 */
import type { FastifyInstance } from 'fastify';
import { KappaError } from '../errors.ts';
import { type ClusterStatus, parseFrom } from '../stream/index.ts';
import { type TaskLease, taskId } from '../view/index.ts';
import { needEngine } from './context.ts';

/** A task's events processed at a moment, and the rate since the sample before it. */
interface Sample {
  events: number;
  atMs: number;
  rate: number | null;
}

export async function pipelineRoutes(fastify: FastifyInstance): Promise<void> {
  const { kappa } = fastify;
  const { log, control } = kappa;
  /** Each task's events processed, sampled at most once a second, for its events/s. */
  const samples = new Map<string, Sample>();
  fastify.get('/v1/pipelines', { config: { scope: 'query' } }, async () => {
    const now = Date.now();
    const tasks = [];
    const cluster = (await kappa.engine?.clusterStatus()) ?? null;
    const leaseOf = new Map((cluster?.leases ?? []).map((l) => [l.task, l]));
    for (const t of kappa.engine?.status() ?? []) {
      const { end } = await log.offsets(t.topic, t.partition);
      const id = `${t.view}/${t.version}/${t.topic}/${t.partition}`;
      const last = samples.get(id);
      if (last === undefined) samples.set(id, { events: t.eventsProcessed, atMs: now, rate: null });
      else if (now - last.atMs >= 1000)
        samples.set(id, {
          events: t.eventsProcessed,
          atMs: now,
          rate: ((t.eventsProcessed - last.events) * 1000) / (now - last.atMs),
        });
      tasks.push({
        ...t,
        lag: Math.max(0, end - t.committedOffset),
        logEndOffset: end,
        eventsPerSecond: samples.get(id)!.rate,
        checkpointAgeSeconds: t.lastFlushAtMs > 0 ? (now - t.lastFlushAtMs) / 1000 : null,
        // In a cluster: the process holding the task's lease, and the lease's epoch (the fence).
        ...(cluster === null ? {} : ownerOf(leaseOf.get(taskOf(t)))),
      });
    }
    const answer = { tasks, builds: await control.builds(), consumerGroups: await kappa.consumerGroups() };
    return cluster === null ? answer : { ...answer, cluster: clusterSection(cluster, now) };
  });

  fastify.get('/v1/views/:view/builds', { config: { scope: 'query' } }, async (req) => {
    const { view } = req.params as { view: string };
    const known = (await kappa.store.versions()).some((v) => v.name.toLowerCase() === view.toLowerCase());
    if (!known)
      throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${view}": GET /v1/views lists the views.`, {
        view,
      });
    const running = (await control.builds()).filter((b) => b.name.toLowerCase() === view.toLowerCase());
    return { view, running, history: await control.buildHistory(view) };
  });

  fastify.post('/v1/views/:view/replay', { config: { scope: 'admin' } }, async (req, reply) => {
    const { view } = req.params as { view: string };
    const body = (req.body ?? {}) as { from?: unknown };
    const from = body.from === undefined ? 'earliest' : String(body.from);
    if (from !== 'earliest') parseFrom(from);
    const r = await needEngine(kappa).replay(view, from);
    reply.code(202);
    return { view, version: r.version, message: r.message };
  });
  fastify.post('/v1/views/:view/rollback', { config: { scope: 'admin' } }, async (req, reply) => {
    const { view } = req.params as { view: string };
    const r = await needEngine(kappa).rollback(view, versionParam(req.query));
    reply.code(202);
    return { view, version: r.version, message: r.message };
  });
  fastify.post('/v1/views/:view/cancel', { config: { scope: 'admin' } }, async (req) => {
    const { view } = req.params as { view: string };
    const r = await needEngine(kappa).cancel(view);
    return { view, version: r.version, message: r.message };
  });
}

/** The lease name of a task row: an output's has no version. */
function taskOf(t: {
  kind: 'view' | 'output';
  view: string;
  version: number;
  topic: string;
  partition: number;
}): string {
  return taskId(t.kind, t.view, t.kind === 'output' ? null : t.version, t.topic, t.partition);
}

function ownerOf(lease: TaskLease | undefined): { owner: string | null; epoch: number | null } {
  return { owner: lease?.owner ?? null, epoch: lease?.epoch ?? null };
}

/** The lease that makes its holder the coordinator (builds, swaps, rollbacks); not a task of its own. */
const COORDINATOR_LEASE = 'coordinator';

/**
 * `cluster` of `GET /v1/pipelines`: this process (`memberId`, `coordinator`), every process the
 * store knows (live when its last heartbeat is within the session timeout; `tasks`: the leases it
 * holds, the coordinator's not counted), and every lease in the cluster, the tasks other processes
 * run included (`kind`, `name`, `version`, `topic`, `partition` read from the task's id), so any
 * process's answer shows the whole cluster. Heartbeats are the store's clock, ages this process's.
 */
export function clusterSection(status: ClusterStatus, nowMs: number): object {
  const coordinatorLease = status.leases.find((l) => l.task === COORDINATOR_LEASE);
  const tasks = status.leases.filter((l) => l.task !== COORDINATOR_LEASE);
  return {
    memberId: status.memberId,
    coordinator: status.coordinator,
    sessionTimeoutMs: status.sessionTimeoutMs,
    members: status.members.map((m) => {
      const heartbeatAgeMs = Math.max(0, nowMs - m.heartbeatAtMs);
      return {
        ...m,
        heartbeatAgeMs,
        // By the store's clock and the member's own session timeout, as the other members judge it.
        live: m.live,
        self: m.id === status.memberId,
        coordinator: coordinatorLease?.owner === m.id,
        tasks: tasks.filter((l) => l.owner === m.id).length,
      };
    }),
    leases: tasks.map((l) => ({ ...parseTaskId(l.task), ...l })),
  };
}

/** What a task id names: `view:<name>:<version>:<topic>:<partition>` or `output:<name>:<topic>:<partition>`. */
export function parseTaskId(task: string): {
  kind: string;
  name: string;
  version: number | null;
  topic: string;
  partition: number | null;
} {
  const parts = task.split(':');
  const partition = Number(parts.at(-1));
  const kind = parts[0];
  const withVersion = kind === 'view';
  return {
    kind,
    name: parts[1] ?? task,
    version: withVersion ? Number(parts[2]) : null,
    topic: parts.slice(withVersion ? 3 : 2, -1).join(':'),
    partition: Number.isInteger(partition) ? partition : null,
  };
}

/** `?version=N` of a rollback (absent: the previous version); anything but a whole number is refused. */
function versionParam(query: unknown): number | undefined {
  const raw = (query as { version?: unknown } | undefined)?.version;
  if (raw === undefined || raw === '') return undefined;
  const text = String(raw);
  if (!/^[1-9][0-9]{0,8}$/.test(text)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `?version=${text} is not a version number: give a whole number such as ?version=2 (\`GET /v1/views\` lists the versions), or leave it out to roll back to the previous version.`,
      { version: text },
    );
  }
  return Number(text);
}
