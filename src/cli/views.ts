/** `kappa views`, `kappa query`, `kappa lag`: read-only looks at the serving layer, beside a running `kappa start`. */
import { existsSync } from 'node:fs';
import { KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import { type BuildInfo, type ViewVersionInfo } from '../view/index.ts';
import { type SqliteStore, openSqliteStore } from '../view/sqlite/index.ts';
import type { CliContext } from './main.ts';
import { openForReading, withLog } from './open.ts';
import { storePath } from './start.ts';
import { formatTable } from './table.ts';

async function withStore<T>(ctx: CliContext, fn: (store: SqliteStore) => Promise<T>): Promise<T> {
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

async function lagRows(store: SqliteStore, log: Log): Promise<LagRow[]> {
  const rows: LagRow[] = [];
  for (const v of await store.versions()) {
    if (v.state === 'retired') continue;
    for (const cp of await store.checkpoints(v.name, v.version)) {
      const { end } = await log.offsets(cp.topic, cp.partition);
      rows.push({
        kind: 'view',
        view: v.name,
        version: v.version,
        topic: cp.topic,
        partition: cp.partition,
        committedOffset: cp.offset,
        logEndOffset: end,
        lag: Math.max(0, end - cp.offset),
      });
    }
  }
  for (const name of await store.outputs()) {
    for (const cp of await store.outputCheckpoints(name)) {
      const { end } = await log.offsets(cp.topic, cp.partition);
      rows.push({
        kind: 'output',
        view: name,
        version: 0,
        topic: cp.topic,
        partition: cp.partition,
        committedOffset: cp.offset,
        logEndOffset: end,
        lag: Math.max(0, end - cp.offset),
      });
    }
  }
  return rows;
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

export async function viewsCommand(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  await withStore(ctx, (store) =>
    withLog(openForReading(ctx.dataDir), async (log) => {
      const versions = await store.versions();
      const builds = await store.builds();
      const lags = await lagRows(store, log);
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
      const rows = [...versions, ...unstarted]
        .sort((a, b) => (a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1))
        .map((v) => ({
          ...v,
          lag: lags.filter((l) => l.view === v.name && l.version === v.version).reduce((s, l) => s + l.lag, 0),
          build: buildOf(v.name, v.version),
        }));
      if (opts.json) {
        ctx.stdout.write(JSON.stringify(rows) + '\n');
        return;
      }
      if (rows.length === 0) {
        ctx.stdout.write('no views yet (they appear once `kappa start` has processed their first event)\n');
        return;
      }
      const buildText = (b: BuildProgress | null): string =>
        b === null
          ? ''
          : `${b.reason === 'rollback' ? 'rolling back' : b.reason}: ${b.percent}% (${b.offsetsDone}/${b.offsetsTotal}), ${b.eventsPerSecond} events/s, ETA ${b.etaSeconds === null ? '-' : `${b.etaSeconds}s`}`;
      ctx.stdout.write(
        formatTable(
          ['VIEW', 'VERSION', 'STATE', 'ROWS', 'LAG', 'BUILD'],
          rows.map((r) => [r.name, r.version, r.state, r.rows, r.lag, buildText(r.build)]),
        ),
      );
    }),
  );
}

export async function lagCommand(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  await withStore(ctx, (store) =>
    withLog(openForReading(ctx.dataDir), async (log) => {
      const rows = await lagRows(store, log);
      if (opts.json) ctx.stdout.write(JSON.stringify(rows) + '\n');
      else
        ctx.stdout.write(
          formatTable(
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
          ),
        );
    }),
  );
}

export async function queryCommand(ctx: CliContext, sql: string, opts: { json?: boolean }): Promise<void> {
  await withStore(ctx, async (store) => {
    const result = await store.query(sql);
    if (opts.json) {
      ctx.stdout.write(JSON.stringify(result.rows) + '\n');
      return;
    }
    const cell = (v: unknown): string =>
      v === null || v === undefined
        ? 'NULL'
        : typeof v === 'number' && !Number.isInteger(v)
          ? String(Math.round(v * 1e6) / 1e6)
          : String(v);
    ctx.stdout.write(
      formatTable(
        result.columns.map((c) => c.toUpperCase()),
        result.rows.map((r) => result.columns.map((c) => cell(r[c]))),
      ),
    );
    ctx.stdout.write(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})\n`);
  });
}
