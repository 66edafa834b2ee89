/**
 * `kappa views diff <view> <a> <b>`: what changed between two versions of a view, read from the
 * store beside a running `kappa start` (read-only; the data dir's, or the PostgreSQL database of
 * `--store`): row counts, the total of each numeric measure,
 * and the rows that differ by key (only in a, only in b, changed values), the first `--limit` of
 * each with "N more". What to look at after a replay, and before a rollback.
 *
 * `kappa views builds <view>`: the view's build history, newest first (reason, what changed in
 * the logic, records read, duration, result), and the build in progress if there is one (also
 * from the PostgreSQL database of `--store`).
 */
import { KappaError } from '../errors.ts';
import type { CliContext } from './main.ts';
import { cellText, formatTable } from './table.ts';
import { withViewStore } from './views.ts';
import type { VersionDiff } from '../view/index.ts';

export interface DiffOptions {
  json?: boolean;
  limit?: string;
  /** `--store postgres://…` of `kappa views` (or KAPPA_STORE): the views several processes share. */
  store?: string;
}

type Diff = VersionDiff;
type Row = Record<string, unknown>;

export async function viewsBuilds(ctx: CliContext, view: string, opts: DiffOptions): Promise<void> {
  return withViewStore(ctx, opts, async (store) => {
    if (!(await store.versions()).some((v) => v.name.toLowerCase() === view.toLowerCase()))
      throw new KappaError('KAPPA_UNKNOWN_VIEW', `There is no view "${view}": \`kappa views\` lists the views.`, {
        view,
      });
    const running = (await store.builds()).filter((b) => b.name.toLowerCase() === view.toLowerCase());
    const history = await store.buildHistory(view);
    if (opts.json) {
      ctx.stdout.write(`${JSON.stringify({ view, running, history }, null, 2)}\n`);
      return;
    }
    let out = running
      .map(
        (b) => `in progress: version ${b.version} (${b.reason}), ${b.offsetsDone} of ${b.offsetsTotal} records read\n`,
      )
      .join('');
    if (history.length === 0)
      out += `View ${view} has no finished builds yet (its first version is not counted: it is built as it serves).\n`;
    else
      out += formatTable(
        ['version', 'reason', 'result', 'records', 'took', 'ended', 'what changed'],
        history.map((e) => [
          e.version,
          e.reason,
          e.result,
          e.events,
          `${(e.durationMs / 1000).toFixed(1)} s`,
          new Date(e.endedAtMs).toISOString(),
          e.change ?? '-',
        ]),
      );
    ctx.stdout.write(out);
  });
}

export async function viewsDiff(ctx: CliContext, view: string, a: string, b: string, opts: DiffOptions): Promise<void> {
  const va = versionArg(a, 'first');
  const vb = versionArg(b, 'second');
  const limit = opts.limit === undefined ? undefined : limitArg(opts.limit);
  return withViewStore(ctx, opts, async (store) => {
    const diff = await store.diffVersions(view, va, vb, limit);
    ctx.stdout.write(opts.json ? `${JSON.stringify(diff, null, 2)}\n` : diffText(diff));
  });
}

function versionArg(text: string, which: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text))
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The ${which} version, "${text}", is not a version number: give whole numbers, such as \`kappa views diff sales_totals 1 2\` (\`kappa views\` lists the versions).`,
      { version: text },
    );
  return Number(text);
}

function limitArg(text: string): number {
  if (!/^[0-9]{1,4}$/.test(text))
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `--limit ${text} is not a whole number from 0 to 1000.`, {
      limit: text,
    });
  return Number(text);
}

/** The diff as a person reads it: a summary table, then each kind of differing row. */
export function diffText(d: Diff): string {
  const A = `version ${d.a.version} (${d.a.state})`;
  const B = `version ${d.b.version} (${d.b.state})`;
  const num = (n: number): string => cellText('', n);
  const delta = (x: number, y: number): string => (y - x > 0 ? '+' : '') + num(Number((y - x).toPrecision(12)));
  const summary = [
    ['rows', d.a.rows, d.b.rows, delta(d.a.rows, d.b.rows)],
    ...d.measures.map((m) => [
      `total ${m}`,
      num(d.a.totals[m]),
      num(d.b.totals[m]),
      delta(d.a.totals[m], d.b.totals[m]),
    ]),
  ];
  let out = `view ${d.view}: ${A} against ${B}; rows matched by ${d.keyColumns.join(', ') || 'their single row (no key)'}\n\n`;
  out += formatTable(['', `v${d.a.version}`, `v${d.b.version}`, 'change'], summary as (string | number)[][]);
  if (d.same) return `${out}\nThe two versions hold the same rows with the same values.\n`;
  const columns = [...d.keyColumns, ...new Set([...d.onlyInA.rows, ...d.onlyInB.rows].flatMap(Object.keys))].filter(
    (c, i, all) => all.indexOf(c) === i,
  );
  out += rowsSection(`only in version ${d.a.version}`, d.onlyInA, columns);
  out += rowsSection(`only in version ${d.b.version}`, d.onlyInB, columns);
  out += changedSection(d);
  return out;
}

function rowsSection(title: string, part: Diff['onlyInA'], columns: string[]): string {
  let out = `\n${title}: ${part.count} row${part.count === 1 ? '' : 's'}\n`;
  if (part.rows.length === 0) return out;
  out += formatTable(
    columns,
    part.rows.map((r: Row) => columns.map((c) => cellText(c, r[c]))),
  );
  return part.more > 0 ? `${out}… and ${part.more} more\n` : out;
}

function changedSection(d: Diff): string {
  const { changed } = d;
  let out = `\nchanged: ${changed.count} row${changed.count === 1 ? '' : 's'} (values in v${d.a.version} → v${d.b.version})\n`;
  if (changed.rows.length === 0) return out;
  const valueColumns = [...new Set(changed.rows.flatMap((c) => [...Object.keys(c.a), ...Object.keys(c.b)]))].filter(
    (c) => !d.keyColumns.includes(c),
  );
  const rows = changed.rows.map((c) => [
    ...d.keyColumns.map((k) => cellText(k, c.key[k])),
    ...valueColumns.map((col) =>
      Object.is(c.a[col] ?? null, c.b[col] ?? null)
        ? cellText(col, c.a[col])
        : `${cellText(col, c.a[col])} → ${cellText(col, c.b[col])}`,
    ),
  ]);
  out += formatTable([...d.keyColumns, ...valueColumns], rows);
  return changed.more > 0 ? `${out}… and ${changed.more} more\n` : out;
}
