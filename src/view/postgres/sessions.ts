/**
 * Session views in a PostgreSQL store (VersionTable.session): inside the flush's transaction,
 * before the batch upsert, each delta's session is merged with the others of the batch and with the
 * stored sessions of its group that touch it, into one window spanning them all. The stored rows
 * found are locked (FOR UPDATE, behind the table's flush lock), deleted, and come back as deltas of
 * the merged window, so the upsert's merge rules (custom ones included) combine them as any deltas.
 *
 * Why one look is enough: stored sessions of a group never touch each other (every flush keeps it
 * so), so a stored row that touches the merged window touches a delta's window, and was found.
 */
import type pg from 'pg';
import type { RowDelta } from '../types.ts';
import type { VersionHandle } from './catalog.ts';
import type { Send } from './pool.ts';
import { LAYOUT_LOCK } from './schema.ts';
import { quoteIdent, tableIdent } from './sql.ts';
import { toColumn } from './values.ts';

/** A run of touching windows of one group, and the states merged into it. */
interface Span {
  group: RowDelta['key'];
  start: number;
  end: number;
  states: unknown[][];
  /** The batch's deltas in the span: their keys are set to the merged window (what the flush reports changed). */
  deltas: RowDelta[];
}

/**
 * The deltas of a session view's flush with every touching session merged (stored ones deleted), as
 * deltas of the merged windows; each given delta's key is changed in place to its merged window.
 * `removed`: the keys of the stored sessions merged into a wider one.
 */
export async function mergeSessions(
  send: Send,
  h: VersionHandle,
  deltas: readonly RowDelta[],
): Promise<{ deltas: RowDelta[]; removed: RowDelta['key'][] }> {
  const def = h.def;
  const ng = def.keyColumns.length - 2;
  const table = tableIdent(def);
  send({ text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))', values: [LAYOUT_LOCK, `flush:${table}`] });
  const spans = touching(
    deltas.map((d) => ({
      group: d.key.slice(0, ng),
      start: d.key[ng] as number,
      end: d.key[ng + 1] as number,
      states: [d.state],
      deltas: [d],
    })),
  );
  const keys = def.keyColumns.map((c) => quoteIdent(c.name));
  const columns = [...keys, ...def.stateColumns.map((c) => quoteIdent(c.name))].join(', ');
  const where = [...keys.slice(0, ng).map((k, i) => `${k} IS NOT DISTINCT FROM $${i + 1}`)];
  const select =
    `SELECT ${columns} FROM ${table} WHERE ${where.join(' AND ')}${where.length > 0 ? ' AND ' : ''}` +
    `${keys[ng]} <= $${ng + 1} AND ${keys[ng + 1]} >= $${ng + 2} FOR UPDATE`;
  const found = await Promise.all(
    spans.map((s) =>
      send({
        text: select,
        values: [...s.group.map((v, i) => toColumn(def.keyColumns[i].type, v)), s.end, s.start],
        rowMode: 'array',
      } as pg.QueryConfig),
    ),
  );
  const remove = `DELETE FROM ${table} WHERE ${keys.map((k, i) => `${k} IS NOT DISTINCT FROM $${i + 1}`).join(' AND ')}`;
  const stored = new Map<string, Span>();
  for (const result of found) {
    for (const row of result.rows as unknown[][]) {
      const key = row.slice(0, ng + 2).map((v, i) => fromColumn(h, i, v, true)) as RowDelta['key'];
      const id = JSON.stringify(key);
      if (stored.has(id)) continue; // touches two spans of the batch: found by both
      send({ text: remove, values: key.map((v, i) => toColumn(def.keyColumns[i].type, v)) });
      stored.set(id, {
        group: key.slice(0, ng),
        start: key[ng] as number,
        end: key[ng + 1] as number,
        states: [row.slice(ng + 2).map((v, s) => fromColumn(h, s, v, false))],
        deltas: [],
      });
    }
  }
  const merged = touching([...spans, ...stored.values()]);
  const kept = new Set(merged.map((s) => JSON.stringify([...s.group, s.start, s.end])));
  return {
    deltas: merged.flatMap((s) => {
      const key = [...s.group, s.start, s.end];
      for (const d of s.deltas) d.key = key.slice();
      return s.states.map((state) => ({ key, state }));
    }),
    removed: [...stored.keys()].filter((id) => !kept.has(id)).map((id) => JSON.parse(id) as RowDelta['key']),
  };
}

/** A stored value as a delta carries it: bigint text as a number, a custom state's JSON parsed (jsonb comes parsed). */
function fromColumn(h: VersionHandle, index: number, value: unknown, key: boolean): unknown {
  if (value === null) return null;
  const column = key ? h.def.keyColumns[index] : h.def.stateColumns[index];
  if (column.type === 'INTEGER') return Number(value);
  if (!key && h.def.stateColumns[index].merge.kind === 'custom' && typeof value === 'string') return JSON.parse(value);
  return value;
}

/** The spans merged where they touch, by group (a group's spans sorted by start, then swept). */
function touching(spans: Span[]): Span[] {
  const byGroup = new Map<string, Span[]>();
  for (const s of spans) {
    const id = JSON.stringify(s.group);
    const list = byGroup.get(id);
    if (list === undefined) byGroup.set(id, [s]);
    else list.push(s);
  }
  const out: Span[] = [];
  for (const list of byGroup.values()) {
    list.sort((a, b) => a.start - b.start);
    let cur: Span | null = null;
    for (const s of list) {
      if (cur !== null && s.start <= cur.end) {
        cur.end = Math.max(cur.end, s.end);
        cur.states.push(...s.states);
        cur.deltas.push(...s.deltas);
      } else
        out.push((cur = { group: s.group, start: s.start, end: s.end, states: [...s.states], deltas: [...s.deltas] }));
    }
  }
  return out;
}
