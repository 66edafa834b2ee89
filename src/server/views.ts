/**
 * Views and SQL: `GET /v1/views` (every view, its versions and builds), `GET /v1/views/:view`
 * (the live version's rows, filtered by column=value, ordered, paged), `GET /v1/views/:view/changes`
 * (its row changes as Server-Sent Events, changes.ts) and `POST /v1/sql` (a read-only query with a
 * time limit; the store refuses writes), `GET /v1/views/:view/diff?a=1&b=2` (two versions compared:
 * row counts, totals per measure, the rows that differ). All need `query`.
 *
 * Numbers in the answers lose their binary noise (945504.3599999986 is 945504.36): fractional
 * numbers are rounded to 15 significant digits, as many as a double holds exactly in decimal, so
 * no real precision is lost. Whole numbers (counts, epoch-ms times) are untouched.
 */
import type { FastifyInstance } from 'fastify';
import { KappaError, isKappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import type { ViewStore } from '../view/index.ts';
import { headerValue, wholeNumber } from './request.ts';

export async function viewRoutes(fastify: FastifyInstance): Promise<void> {
  const { kappa } = fastify;
  const { store, control } = kappa;
  fastify.get('/v1/views', { config: { scope: 'query' } }, async () => {
    const versions = await store.versions();
    const builds = await control.builds();
    const names = [...new Set(versions.map((v) => v.name))].sort();
    const keyColumns = new Map<string, string[]>();
    for (const v of versions)
      if (v.state === 'live')
        keyColumns.set(
          v.name,
          ((await store.definition(v.name, v.version))?.keyColumns ?? []).map((c) => c.name),
        );
    return {
      views: names.map((name) => ({
        name,
        live: versions.find((v) => v.name === name && v.state === 'live')?.version ?? null,
        keyColumns: keyColumns.get(name) ?? [],
        versions: versions
          .filter((v) => v.name === name)
          .map((v) => ({
            version: v.version,
            state: v.state,
            rows: v.rows,
            fingerprint: v.fingerprint,
            createdAtMs: v.createdAtMs,
            liveAtMs: v.liveAtMs,
          })),
        builds: builds.filter((b) => b.name === name),
      })),
    };
  });

  diffRoute(fastify, store);

  fastify.get('/v1/views/:view', { config: { scope: 'query' } }, async (req) => {
    const { view } = req.params as { view: string };
    const columns = await viewColumns(store, view);
    const { sql, params, limit, offset } = viewSelect(
      view,
      columns,
      req.query as Record<string, string | string[] | undefined>,
    );
    const result = await store.query(sql, params);
    return { view, rows: withoutFloatNoise(result.rows), limit, offset };
  });

  fastify.get('/v1/views/:view/changes', { config: { scope: 'query', eventStream: true } }, async (req, reply) => {
    const { view } = req.params as { view: string };
    await viewColumns(store, view); // 404 for an unknown view
    const { hub } = kappa;
    if (hub === null)
      throw new KappaError('KAPPA_NOT_READY', 'No pipelines run in this server, so views do not change.', {});
    const last = headerValue(req, 'last-event-id');
    let unsubscribe = (): void => {};
    const stream = kappa.streams.start(req, reply, () => unsubscribe());
    unsubscribe = hub.subscribe(view, last, (e) => void stream.send(e));
    if (stream.ended()) unsubscribe();
  });

  fastify.post('/v1/sql', { config: { scope: 'query' } }, async (req) => {
    const body = req.body as { sql?: unknown; params?: unknown } | undefined;
    if (body === null || typeof body !== 'object' || typeof body.sql !== 'string')
      throw new KappaError('KAPPA_INVALID_ARGUMENT', 'Send a JSON body { "sql": "SELECT …", "params": [ … ] }.', {});
    const params = body.params ?? [];
    if (!Array.isArray(params))
      throw new KappaError('KAPPA_INVALID_ARGUMENT', '"params" must be an array of values for the ? placeholders.', {});
    let result;
    try {
      result = await store.query(body.sql, params, { timeoutMs: kappa.sqlTimeoutMs });
    } catch (err) {
      throw await topicNotView(err, kappa.log);
    }
    return { columns: result.columns, rows: withoutFloatNoise(result.rows) };
  });
}

/**
 * The SELECT for `GET /v1/views/:view?…`: `limit`, `offset` and `order` (`-col` descending) are
 * parameters, any other name filters a column by value (typed as the column); unknown columns 400.
 * Column names are only ever ones the view has, so quoting them is safe.
 */
function viewSelect(
  view: string,
  columns: Map<string, string>,
  q: Record<string, string | string[] | undefined>,
): { sql: string; params: unknown[]; limit: number; offset: number } {
  const where: string[] = [];
  const params: unknown[] = [];
  let order = '';
  let limit = 100;
  let offset = 0;
  for (const [name, raw] of Object.entries(q)) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value === undefined) continue;
    if (name === 'limit') limit = Math.min(wholeNumber(value, 'limit', 1), 10_000);
    else if (name === 'offset') offset = wholeNumber(value, 'offset', 0);
    else if (name === 'order') {
      const desc = value.startsWith('-');
      const col = desc ? value.slice(1) : value;
      if (!columns.has(col)) throw unknownColumn(view, col, columns);
      order = ` ORDER BY "${col}" ${desc ? 'DESC' : 'ASC'}`;
    } else {
      const type = columns.get(name);
      if (type === undefined) throw unknownColumn(view, name, columns);
      // Null-safe equality, in the words both SQLite (3.39+) and PostgreSQL know.
      where.push(`"${name}" IS NOT DISTINCT FROM ?`);
      params.push(typedValue(name, value, type));
    }
  }
  const sql = `SELECT * FROM "${view}"${where.length ? ` WHERE ${where.join(' AND ')}` : ''}${order} LIMIT ${limit} OFFSET ${offset}`;
  return { sql, params, limit, offset };
}

/** The public view's columns and their SQLite types; 404 when no version of the view is live. */
async function viewColumns(store: ViewStore, view: string): Promise<Map<string, string>> {
  const live = (await store.versions()).find((v) => v.name === view && v.state === 'live');
  if (live === undefined)
    throw new KappaError(
      'KAPPA_UNKNOWN_VIEW',
      `There is no view "${view}" (or it has no rows yet). GET /v1/views lists the views.`,
      { view },
    );
  const def = (await store.definition(view, live.version))!;
  const columns = new Map<string, string>();
  for (const c of def.keyColumns) columns.set(c.name, c.type);
  // The public view's other columns are its output columns, computed from the state columns; one
  // named after a state column has its type (count, sum, min, max), the others none that filters
  // could rely on. (From the definition, not the database's catalog, which SQLite and PostgreSQL
  // describe each their own way.)
  for (const o of def.outputColumns)
    if (!columns.has(o.name)) columns.set(o.name, def.stateColumns.find((c) => c.name === o.name)?.type ?? 'ANY');
  return columns;
}

function unknownColumn(view: string, name: string, columns: Map<string, string>): KappaError {
  return new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `View "${view}" has no column "${name.slice(0, 100)}". Its columns: ${[...columns.keys()].join(', ')}. (limit, offset and order are the other parameters.)`,
    {
      view,
      column: name.slice(0, 100),
    },
  );
}

/** A query-string filter value as the column's type: numbers for INTEGER/REAL columns, `null` for NULL. */
function typedValue(name: string, value: string, type: string): unknown {
  if (value === 'null') return null;
  const t = type.toUpperCase();
  if (t === 'INTEGER' || t === 'REAL') {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (t === 'INTEGER' && !Number.isSafeInteger(n))) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `Column "${name}" holds ${t === 'INTEGER' ? 'whole numbers' : 'numbers'}; "${value.slice(0, 50)}" is not one.`,
        { column: name },
      );
    }
    return n;
  }
  return value;
}

/** Significant digits a double holds exactly in decimal (DBL_DIG). */
const FLOAT_DIGITS = 15;

/** `rows` with every fractional number rounded to FLOAT_DIGITS significant digits (in place). */
export function withoutFloatNoise(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  for (const row of rows)
    for (const key in row) {
      const v = row[key];
      if (typeof v === 'number' && !Number.isInteger(v) && Number.isFinite(v))
        row[key] = Number(v.toPrecision(FLOAT_DIGITS));
    }
  return rows;
}

/** A query that names a topic as if it were a view ("no such table: sales") says so plainly. */
async function topicNotView(err: unknown, log: Log): Promise<unknown> {
  if (!isKappaError(err, 'KAPPA_SQL_ERROR') || typeof err.details?.table !== 'string') return err;
  const table = err.details.table;
  const topics = await log.topics().catch(() => []);
  if (!topics.some((t) => t.name === table)) return err;
  const views = Array.isArray(err.details.views) ? (err.details.views as string[]) : [];
  return new KappaError(
    'KAPPA_SQL_ERROR',
    `"${table}" is a topic, not a view: SQL reads only views. ` +
      (views.length > 0 ? `The views: ${views.join(', ')}. ` : 'There are no views yet. ') +
      `Query a view defined over "${table}" in the config, or read its records with GET /v1/topics/${table}/records.`,
    { ...err.details, topic: table },
    err,
  );
}

/** `GET /v1/views/:view/diff?a=1&b=2[&limit=20]`: two versions compared (see view/diff.ts). */
function diffRoute(fastify: FastifyInstance, store: ViewStore): void {
  fastify.get('/v1/views/:view/diff', { config: { scope: 'query' } }, async (req) => {
    const { view } = req.params as { view: string };
    const q = req.query as Record<string, string | undefined>;
    if (q.a === undefined || q.b === undefined)
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `Say which two versions of view "${view}" to compare: ?a=1&b=2 (GET /v1/views lists the versions).`,
        { view },
      );
    const a = wholeNumber(q.a, 'a', 1);
    const b = wholeNumber(q.b, 'b', 1);
    const limit = q.limit === undefined ? undefined : wholeNumber(q.limit, 'limit', 0);
    const diff = await store.diffVersions(view, a, b, limit);
    withoutFloatNoise([...diff.onlyInA.rows, ...diff.onlyInB.rows, ...diff.changed.rows.flatMap((c) => [c.a, c.b])]);
    return diff;
  });
}
