/**
 * `kappa lag`: how far behind the log each reader of it is. First the pipelines (each view version
 * and output, per partition of its source: the checkpoint it committed, the log's end, the lag),
 * then the Kafka consumer groups (per group, topic and partition: the offset the group committed
 * over the Kafka API, the log's end, the lag, and each group's total).
 *
 * It reads the data directory only (the log read-only, the store's checkpoints and committed
 * offsets), so it works beside a running `kappa start` and after it stopped. A group's state and
 * members live in the running process's coordinator, not on disk: here they are unknown (`state:
 * null`); `GET /v1/pipelines` and the dashboard show them.
 *
 * `--log kafka://…` and `--store postgres://…` (or KAPPA_LOG, KAPPA_STORE) read the log and store
 * several `kappa start` processes share instead: then each row also names the process that owns
 * the task (`owner`), and a table of the processes follows (cluster.ts).
 *
 * `--json` prints one array of rows, one per partition: the pipelines' rows (`kind: 'view'` or
 * `'output'`) as before, then the consumer groups' (`kind: 'consumer-group'`, with `group` and
 * `state`), so a script that alerts on `lag` covers both; on a shared store, then one row per
 * process (`kind: 'process'`).
 */
import { existsSync } from 'node:fs';
import { KappaError } from '../errors.ts';
import type { GroupLag } from '../kafka/index.ts';
import type { Log } from '../log/index.ts';
import { type ViewStore, type ControlStore, type ConsumerOffsetStore, type Member, taskId } from '../view/index.ts';
import type { CliContext } from './main.ts';
import { openForReading, withLog } from './open.ts';
import { type RuntimeStore, openRuntimeLog, openRuntimeStore, redact } from './runtime.ts';
import { storePath } from './defaults.ts';
import { formatTable } from './table.ts';

/** A pipeline's position in one partition of its source. */
export interface LagRow {
  /** 'view', or 'output' for a pipeline writing a derived topic (`to(topic)`). */
  kind: 'view' | 'output';
  /** The view's or output's name. */
  view: string;
  /** The view version (0 for an output). */
  version: number;
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  lag: number;
  /** On a shared store (`--store postgres://…`): the process that holds the task's lease, or null; absent otherwise. */
  owner?: string | null;
}

/** A Kafka consumer group's position in one partition (a row of `kappa lag --json`). */
export interface GroupLagRow {
  kind: 'consumer-group';
  group: string;
  /** The group's state in the running coordinator; null when read from the data directory (always, here). */
  state: string | null;
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  lag: number;
}

/** Where a view's or output's task stands in one partition of its source. */
type Position = { topic: string; partition: number; offset: number };

/** Every live or building view version's and every output's position, per partition, with its lag. */
export async function lagRows(store: ViewStore & ControlStore, log: Log): Promise<LagRow[]> {
  const rows: LagRow[] = [];
  // A position in a topic that was deleted (`kappa topics delete --force`) has no lag to show.
  const topics = new Set((await log.topics()).map((t) => t.name));
  const add = async (kind: LagRow['kind'], view: string, version: number, cp: Position): Promise<void> => {
    if (!topics.has(cp.topic)) return;
    const { end } = await log.offsets(cp.topic, cp.partition);
    const { topic, partition, offset } = cp;
    rows.push({
      kind,
      view,
      version,
      topic,
      partition,
      committedOffset: offset,
      logEndOffset: end,
      lag: Math.max(0, end - offset),
    });
  };
  for (const v of await store.versions()) {
    if (v.state === 'retired') continue;
    for (const cp of await store.checkpoints(v.name, v.version)) await add('view', v.name, v.version, cp);
  }
  for (const name of await store.outputs()) {
    for (const cp of await store.outputCheckpoints(name)) await add('output', name, 0, cp);
  }
  return rows;
}

/** The consumer groups' partitions as `--json` rows, group by group. */
export function groupLagRows(groups: readonly GroupLag[]): GroupLagRow[] {
  return groups.flatMap((g) =>
    g.partitions.map((p) => ({
      kind: 'consumer-group' as const,
      group: g.groupId,
      state: g.state,
      topic: p.topic,
      partition: p.partition,
      committedOffset: p.committedOffset,
      logEndOffset: p.logEndOffset,
      lag: p.lag,
    })),
  );
}

export async function lagCommand(ctx: CliContext, opts: { json?: boolean } & ReadRuntime): Promise<void> {
  await withReadRuntime(ctx, opts, async (store, log) => {
    const cluster = await clusterInfo(store);
    const pipelines = withOwners(await lagRows(store, log), cluster);
    const groups = await storedGroups(store, log);
    if (opts.json) {
      const processes: ProcessRow[] = cluster?.processes ?? [];
      ctx.stdout.write(JSON.stringify([...pipelines, ...groupLagRows(groups), ...processes]) + '\n');
    } else
      ctx.stdout.write(
        pipelinesTable(pipelines, cluster) + groupsText(groups) + (cluster ? processesText(cluster) : ''),
      );
  });
}

/** On a shared store, each row with the process that owns its task (null: none does). */
export function withOwners(rows: LagRow[], cluster: ClusterInfo | null): LagRow[] {
  if (cluster === null) return rows;
  return rows.map((r) => ({
    ...r,
    owner: cluster.ownerOf(r.kind, r.view, r.kind === 'output' ? null : r.version, r.topic, r.partition),
  }));
}

/** The groups with committed offsets, from the store: their live state is in the running `kappa start`. */
async function storedGroups(store: { consumerOffsets: ConsumerOffsetStore }, log: Log): Promise<GroupLag[]> {
  // Loaded here, not with the module: the Kafka package (listener, protocol, formats) is large, and
  // `kappa views` and `lag` need only this function of it.
  const { groupLag } = await import('../kafka/index.ts');
  return groupLag(store.consumerOffsets, log);
}

function pipelinesTable(rows: readonly LagRow[], cluster: ClusterInfo | null): string {
  const owners = cluster !== null;
  if (rows.length === 0) return 'No view or output pipeline has read the log yet.\n';
  return formatTable(
    ['PIPELINE', 'VERSION', 'TOPIC', 'PARTITION', 'COMMITTED', 'LOG END', 'LAG', ...(owners ? ['OWNER'] : [])],
    rows.map((r) => [
      r.kind === 'output' ? `${r.view} (output)` : r.view,
      r.kind === 'output' ? '-' : r.version,
      r.topic,
      r.partition,
      r.committedOffset,
      r.logEndOffset,
      r.lag,
      ...(cluster === null ? [] : [ownerLabel(cluster, r.owner ?? null)]),
    ]),
  );
}

/**
 * The consumer groups' table: a row per partition, then a row with the group's total lag. Nothing
 * when no group has committed offsets (most apps use no Kafka clients).
 */
export function groupsText(groups: readonly GroupLag[]): string {
  if (groups.length === 0) return '';
  const rows: (string | number)[][] = [];
  for (const g of groups) {
    for (const p of g.partitions)
      rows.push([g.groupId, p.topic, p.partition, p.committedOffset, p.logEndOffset, p.lag]);
    const topics = new Set(g.partitions.map((p) => p.topic)).size;
    // Offsets committed only in topics deleted since have no lag to show.
    const over = g.partitions.length === 0 ? 'no topic left' : topics === 1 ? '1 topic' : `${topics} topics`;
    rows.push([g.groupId, `total (${over})`, '-', '-', '-', g.lag]);
  }
  return (
    '\nKafka consumer groups: the offsets each group committed over the Kafka API (lag = log end - committed).\n' +
    'Their state and members are known only to the running kappa start: GET /v1/pipelines and the dashboard show them.\n' +
    formatTable(['GROUP', 'TOPIC', 'PARTITION', 'COMMITTED', 'LOG END', 'LAG'], rows)
  );
}

// ---- a log and a store shared by several processes (`--log`, `--store`) ---------------------------

/** `--log` and `--store` of `kappa lag` and `kappa views` (read-only looks). */
export interface ReadRuntime {
  log?: string;
  store?: string;
}

/**
 * Runs `fn` on the store and the log, read-only, then closes them: the embedded ones of the data
 * dir (the log never takes the writer's lock, so this works beside a running `kappa start`; no
 * SQLite file yet is a clear error), or the Kafka cluster and PostgreSQL database of `--log`/`--store`.
 */
export async function withReadRuntime<T>(
  ctx: CliContext,
  rt: ReadRuntime,
  fn: (store: RuntimeStore, log: Log) => Promise<T>,
): Promise<T> {
  const path = storePath(ctx.dataDir);
  if (rt.store === undefined && !existsSync(path))
    throw new KappaError(
      'KAPPA_UNKNOWN_VIEW',
      `There are no views in ${ctx.dataDir} yet. Define views in kappa.config.ts and run \`kappa start\`` +
        ' (or give --store and --log as given to kappa start when the views live in PostgreSQL).',
    );
  const store = await openRuntimeStore(path, { store: rt.store });
  try {
    const log = rt.log === undefined ? openForReading(ctx.dataDir) : openRuntimeLog(ctx.dataDir, { log: rt.log });
    return await withLog(log, async (l) => {
      // Views in PostgreSQL read from a Kafka log, looked at without --log: every lag would be missing.
      const shared = rt.log === undefined ? rt.store : undefined;
      if (shared !== undefined && (await l.topics()).length === 0 && (await store.versions()).length > 0)
        throw new KappaError(
          'KAPPA_INVALID_ARGUMENT',
          `The views in ${redact(shared)} were read from a log that ${ctx.dataDir} does not hold: ` +
            'give the --log kafka://host:port the kappa start processes run with (or set KAPPA_LOG).',
        );
      return fn(store, l);
    });
  } finally {
    await store.close();
  }
}

/** A process sharing the work, as `kappa lag --json` and `kappa views --json` show it. */
export interface ProcessRow extends Member {
  kind: 'process';
  /** How long ago its last heartbeat was (the store's clock against this machine's). */
  heartbeatAgeMs: number;
  /** A heartbeat within the session timeout: the others leave its tasks to it. */
  live: boolean;
  /** The tasks whose lease it holds. */
  tasks: number;
  /** It holds the coordinator's lease (it decides builds, swaps and rollbacks). */
  coordinator: boolean;
}

/** On a shared store: the processes, and who owns each task. */
export interface ClusterInfo {
  processes: ProcessRow[];
  ownerOf(
    kind: 'view' | 'output',
    name: string,
    version: number | null,
    topic: string,
    partition: number,
  ): string | null;
}

/** The lease that makes its holder the coordinator; not a task. */
const COORDINATOR_LEASE = 'coordinator';

/** The processes and leases of a shared store; null for the embedded one (one process, no leases). */
export async function clusterInfo(store: RuntimeStore): Promise<ClusterInfo | null> {
  if (store.leases === undefined) return null;
  const members = await store.leases.members();
  const leases = await store.leases.leases();
  const owner = new Map(leases.map((l) => [l.task, l.owner]));
  const coordinator = owner.get(COORDINATOR_LEASE) ?? null;
  const now = Date.now();
  const processes = members.map((m): ProcessRow => {
    const heartbeatAgeMs = Math.max(0, now - m.heartbeatAtMs);
    return {
      kind: 'process',
      ...m,
      heartbeatAgeMs,
      live: m.live, // by the store's clock and the member's own session timeout
      tasks: leases.filter((l) => l.task !== COORDINATOR_LEASE && l.owner === m.id).length,
      coordinator: coordinator === m.id,
    };
  });
  return {
    processes,
    ownerOf: (kind, name, version, topic, partition) =>
      owner.get(taskId(kind, name, version, topic, partition)) ?? null,
  };
}

/** An owner for a table: its process id, marked when that process is dead (its tasks are about to move); "—" for none. */
export function ownerLabel(cluster: ClusterInfo, owner: string | null): string {
  if (owner === null) return '—';
  return cluster.processes.some((p) => p.id === owner && p.live) ? owner : `${owner} (dead)`;
}

/** The processes' table, after the pipelines. */
export function processesText(cluster: ClusterInfo): string {
  const intro =
    '\nProcesses sharing the work (dead: no heartbeat for longer than its session timeout, the --session-timeout-ms it was started with):\n';
  if (cluster.processes.length === 0) return intro + 'none: no kappa start has joined this store yet.\n';
  return (
    intro +
    formatTable(
      ['PROCESS', 'HOST:PID', 'HTTP', 'HEARTBEAT', 'SESSION TIMEOUT', 'STATE', 'TASKS', 'COORDINATOR'],
      cluster.processes.map((p) => [
        p.id,
        `${p.host}:${p.pid}`,
        p.httpUrl ?? '—',
        `${(p.heartbeatAgeMs / 1000).toFixed(1)} s ago`,
        `${p.ttlMs / 1000} s`,
        p.live ? 'live' : 'dead',
        p.tasks,
        p.coordinator ? 'yes' : '',
      ]),
    )
  );
}
