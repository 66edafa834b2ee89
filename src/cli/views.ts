/**
 * `kappa views` and `kappa query`: read-only looks at the serving layer, beside a running
 * `kappa start`; and `kappa views drop`, which changes it, so it holds the data directory.
 * `kappa views --log kafka://… --store postgres://…` looks at the views several processes share:
 * each version also names the processes that own its tasks, and a table of the processes follows.
 */
import { existsSync } from 'node:fs';
import { KappaError } from '../errors.ts';
import { type BuildInfo, type ControlStore, type ViewStore, type ViewVersionInfo } from '../view/index.ts';
import { type SqliteStore, openSqliteStore } from '../view/sqlite/index.ts';
import type { CliContext } from './main.ts';
import { holdDataDir, withLog } from './open.ts';
import { openRuntimeStore } from './runtime.ts';
import { storePath } from './defaults.ts';
import {
  type ClusterInfo,
  type LagRow,
  type ReadRuntime,
  clusterInfo,
  lagRows,
  ownerLabel,
  processesText,
  withOwners,
  withReadRuntime,
} from './lag.ts';
import { cellText, formatTable } from './table.ts';

/** Runs `fn` on the data dir's view store (refused, clearly, when there is none yet), then closes it. */
export async function withStore<T>(ctx: CliContext, fn: (store: SqliteStore) => Promise<T>): Promise<T> {
  const path = storePath(ctx.dataDir);
  if (!existsSync(path))
    throw new KappaError(
      'KAPPA_UNKNOWN_VIEW',
      `There are no views in ${ctx.dataDir} yet. Define views in kappa.config.ts and run \`kappa start\`.`,
    );
  const store = await openSqliteStore({ path });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Runs `fn` on the views' store, read-only, then closes it: the PostgreSQL database of `--store`
 * (or KAPPA_STORE) when given, else the data dir's SQLite file (as `withStore`).
 */
export async function withViewStore<T>(
  ctx: CliContext,
  rt: { store?: string },
  fn: (store: ViewStore & ControlStore) => Promise<T>,
): Promise<T> {
  if (rt.store === undefined) return withStore(ctx, fn);
  const store = await openRuntimeStore(storePath(ctx.dataDir), { store: rt.store });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** What `kappa views --json` shows of a build in progress (null when the version is not being built). */
export interface BuildProgress {
  reason: BuildInfo['reason'];
  from: string;
  offsetsDone: number;
  offsetsTotal: number;
  /** 0-100, one decimal. */
  percent: number;
  eventsPerSecond: number;
  etaSeconds: number | null;
  startedAtMs: number;
  updatedAtMs: number;
}

function progress(b: BuildInfo): BuildProgress {
  const percent =
    b.offsetsTotal === 0 ? 0 : Math.floor((1000 * Math.min(b.offsetsDone, b.offsetsTotal)) / b.offsetsTotal) / 10;
  return {
    reason: b.reason,
    from: b.from,
    offsetsDone: b.offsetsDone,
    offsetsTotal: b.offsetsTotal,
    percent,
    eventsPerSecond: Math.round(b.eventsPerSecond),
    etaSeconds: b.etaSeconds === null ? null : Math.round(b.etaSeconds),
    startedAtMs: b.startedAtMs,
    updatedAtMs: b.updatedAtMs,
  };
}

/** How long ago `ms` was, for people: "12s ago", "5m ago", "3h ago", "2d ago". */
function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** A view's newest finished build in a few words: "last: v2 logic changed, live, took 1.2 s, 3m ago". */
export function lastBuildText(e: BuildHistoryEntry, nowMs: number): string {
  return `last: v${e.version} ${e.reason}, ${e.result}, took ${(e.durationMs / 1000).toFixed(1)} s, ${ago(e.endedAtMs, nowMs)}`;
}

/** One finished build of a view, as the control store keeps it. */
type BuildHistoryEntry = Awaited<ReturnType<ControlStore['buildHistory']>>[number];

const buildText = (b: BuildProgress | null): string =>
  b === null
    ? ''
    : `${b.reason === 'rollback' ? 'rolling back' : b.reason}: ${b.percent}% (${b.offsetsDone}/${b.offsetsTotal}), ${b.eventsPerSecond} events/s, ETA ${b.etaSeconds === null ? '-' : `${b.etaSeconds}s`}`;

type ViewRow = ViewVersionInfo & {
  lag: number;
  build: BuildProgress | null;
  lastBuild: BuildHistoryEntry | null;
  /** On a shared store: each task of the version (one per source partition) and the process that owns it. */
  owners?: { topic: string; partition: number; owner: string | null }[];
};

/** The OWNERS column: the processes owning a version's tasks, with how many each ("—": none). */
function ownersText(r: ViewRow, cluster: ClusterInfo): string {
  const count = new Map<string, number>();
  for (const o of r.owners ?? []) if (o.owner !== null) count.set(o.owner, (count.get(o.owner) ?? 0) + 1);
  if (count.size === 0) return '—';
  return [...count].map(([owner, n]) => `${ownerLabel(cluster, owner)}: ${n}`).join(', ');
}

/** A version's tasks and their owners, from the lag rows of a shared store (absent on the embedded one). */
function ownersOf(v: ViewVersionInfo, lags: readonly LagRow[], cluster: ClusterInfo | null): ViewRow['owners'] {
  if (cluster === null) return undefined;
  return lags
    .filter((l) => l.kind === 'view' && l.view === v.name && l.version === v.version)
    .map((l) => ({ topic: l.topic, partition: l.partition, owner: l.owner ?? null }));
}

/**
 * The BUILD column: a build in progress on its version's row; the view's newest finished build
 * (why, how it ended, how long, when) on its live row (or its first row while none is live), so a
 * rebuild that happened, and how it ended, shows at a glance (`kappa views builds <view>`: all).
 */
function buildColumn(rows: ViewRow[], nowMs: number): string[] {
  return rows.map((r) => {
    if (r.build !== null) return buildText(r.build);
    const ofView = rows.filter((x) => x.name === r.name);
    const home = ofView.find((x) => x.state === 'live') ?? ofView[0];
    return home === r && r.lastBuild !== null ? lastBuildText(r.lastBuild, nowMs) : '';
  });
}

export async function viewsCommand(ctx: CliContext, opts: { json?: boolean } & ReadRuntime): Promise<void> {
  await withReadRuntime(ctx, opts, async (store, log) => {
    const versions = await store.versions();
    const builds = await store.builds();
    const cluster = await clusterInfo(store);
    const lags = withOwners(await lagRows(store, log), cluster);
    const buildOf = (name: string, version: number): BuildProgress | null => {
      const b = builds.find((x) => x.name === name && x.version === version);
      return b === undefined ? null : progress(b);
    };
    // A build that has not written its first rows has no catalog row yet.
    const unstarted: ViewVersionInfo[] = builds
      .filter((b) => !versions.some((v) => v.name === b.name && v.version === b.version))
      .map((b) => ({
        name: b.name,
        version: b.version,
        state: 'building',
        fingerprint: b.fingerprint,
        createdAtMs: b.startedAtMs,
        liveAtMs: null,
        rows: 0,
      }));
    const all = [...versions, ...unstarted];
    const lastBuilds = new Map<string, BuildHistoryEntry | null>();
    for (const name of new Set(all.map((v) => v.name)))
      lastBuilds.set(name, (await store.buildHistory(name))[0] ?? null);
    const rows: ViewRow[] = all
      .sort((a, b) => (a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1))
      .map((v) => ({
        ...v,
        lag: lags.filter((l) => l.view === v.name && l.version === v.version).reduce((s, l) => s + l.lag, 0),
        build: buildOf(v.name, v.version),
        lastBuild: lastBuilds.get(v.name) ?? null,
        ...(cluster === null ? {} : { owners: ownersOf(v, lags, cluster) }),
      }));
    if (opts.json) {
      // On a shared store the processes follow the views, as rows with `kind: 'process'`.
      ctx.stdout.write(JSON.stringify([...rows, ...(cluster?.processes ?? [])]) + '\n');
      return;
    }
    const processes = cluster === null ? '' : processesText(cluster);
    if (rows.length === 0) {
      ctx.stdout.write('no views yet (they appear once `kappa start` has processed their first event)\n' + processes);
      return;
    }
    const column = buildColumn(rows, Date.now());
    const owners = cluster === null ? [] : ['OWNERS'];
    ctx.stdout.write(
      formatTable(
        ['VIEW', 'VERSION', 'STATE', 'ROWS', 'LAG', ...owners, 'BUILD'],
        rows.map((r, i) => [
          r.name,
          r.version,
          r.state,
          r.rows,
          r.lag,
          ...(cluster === null ? [] : [ownersText(r, cluster)]),
          column[i],
        ]),
      ) + processes,
    );
  });
}

export async function queryCommand(ctx: CliContext, sql: string, opts: { json?: boolean }): Promise<void> {
  await withStore(ctx, async (store) => {
    const result = await store.query(sql);
    if (opts.json) {
      ctx.stdout.write(JSON.stringify(result.rows) + '\n');
      return;
    }
    ctx.stdout.write(
      formatTable(
        result.columns.map((c) => c.toUpperCase()),
        result.rows.map((r) => result.columns.map((c) => cellText(c, r[c]))),
      ),
    );
    ctx.stdout.write(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})\n`);
  });
}

/**
 * `kappa views drop <view> --yes`: drops every version of a view (tables, checkpoints, catalog,
 * saved code and builds, the public SQL view). Refused while `kappa start` holds the data
 * directory. Without `--yes` it only says what would be dropped, and exits 1 (no prompt, so it
 * behaves the same in a script).
 */
export async function viewsDrop(ctx: CliContext, name: string, opts: { yes?: boolean }): Promise<void> {
  const command = `kappa views drop ${name} --yes`;
  await withLog(holdDataDir(ctx, `drop view "${name}"`, command), () =>
    withStore(ctx, async (store) => {
      const all = await store.versions();
      const versions = all.filter((v) => v.name.toLowerCase() === name.toLowerCase());
      const building = (await store.builds()).filter((b) => b.name.toLowerCase() === name.toLowerCase());
      if (versions.length === 0 && building.length === 0) {
        const names = [...new Set(all.map((v) => v.name))];
        throw new KappaError(
          'KAPPA_UNKNOWN_VIEW',
          `There is no view "${name}" in ${ctx.dataDir}` +
            (names.length === 0 ? '.' : `; its views are: ${names.join(', ')}.`),
          { view: name },
        );
      }
      const what = versions.map((v) => `v${v.version} ${v.state}, ${v.rows} row${v.rows === 1 ? '' : 's'}`);
      const summary = `view "${name}" (${[...what, ...building.map((b) => `v${b.version} building`)].join('; ')})`;
      if (!opts.yes)
        throw new KappaError(
          'KAPPA_INVALID_ARGUMENT',
          `This would drop ${summary}: every version, its rows and its SQL view. Nothing was dropped; ` +
            `run \`${command}\` to drop it.`,
          { view: name },
        );
      await store.dropView(name);
      ctx.stdout.write(
        `dropped ${summary}\n` +
          'if the config still defines it, the next `kappa start` builds it again from the start of its topic\n',
      );
    }),
  );
}
