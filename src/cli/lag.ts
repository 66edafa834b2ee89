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
 * `--json` prints one array of rows, one per partition: the pipelines' rows (`kind: 'view'` or
 * `'output'`) as before, then the consumer groups' (`kind: 'consumer-group'`, with `group` and
 * `state`), so a script that alerts on `lag` covers both.
 */
import { existsSync } from 'node:fs';
import { KappaError } from '../errors.ts';
import { type GroupLag, groupLag } from '../kafka/index.ts';
import type { Log } from '../log/index.ts';
import type { ViewStore, ControlStore } from '../view/index.ts';
import { type SqliteStoreWithOffsets, openSqliteStore } from '../view/sqlite/index.ts';
import type { CliContext } from './main.ts';
import { openForReading, withLog } from './open.ts';
import { storePath } from './start.ts';
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

export async function lagCommand(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const path = storePath(ctx.dataDir);
  if (!existsSync(path))
    throw new KappaError(
      'KAPPA_UNKNOWN_VIEW',
      `There are no views in ${ctx.dataDir} yet. Define views in kappa.config.ts and run \`kappa start\`.`,
    );
  const store = await openSqliteStore({ path });
  try {
    await withLog(openForReading(ctx.dataDir), async (log) => {
      const pipelines = await lagRows(store, log);
      const groups = await storedGroups(store, log);
      if (opts.json) ctx.stdout.write(JSON.stringify([...pipelines, ...groupLagRows(groups)]) + '\n');
      else ctx.stdout.write(pipelinesTable(pipelines) + groupsText(groups));
    });
  } finally {
    await store.close();
  }
}

/** The groups with committed offsets, from the store: their live state is in the running `kappa start`. */
function storedGroups(store: SqliteStoreWithOffsets, log: Log): Promise<GroupLag[]> {
  return groupLag(store.consumerOffsets, log);
}

function pipelinesTable(rows: readonly LagRow[]): string {
  if (rows.length === 0) return 'No view or output pipeline has read the log yet.\n';
  return formatTable(
    ['PIPELINE', 'VERSION', 'TOPIC', 'PARTITION', 'COMMITTED', 'LOG END', 'LAG'],
    rows.map((r) => [
      r.kind === 'output' ? `${r.view} (output)` : r.view,
      r.kind === 'output' ? '-' : r.version,
      r.topic,
      r.partition,
      r.committedOffset,
      r.logEndOffset,
      r.lag,
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
