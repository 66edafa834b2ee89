/**
 * Flushes into a PostgreSQL store: a task's deltas merged into a version's table and its
 * checkpoints upserted, in ONE transaction, which starts with the task's fence when one is given.
 *
 * The transaction, in order (each line one statement, all sent together: ./pool.ts `pipelined`,
 * so a flush costs one round trip; the statements are named prepared statements, parsed and
 * planned once per connection):
 *   1. the fence: `SELECT kappa_fence($task, $epoch)`, which runs `UPDATE kappa_task_leases SET
 *      flushed_at = now() WHERE task = $1 AND epoch = $2` and raises when that touches no row:
 *      another process has taken the task since, so everything behind it fails and the
 *      transaction rolls back (KAPPA_FENCED). The row lock the UPDATE takes also makes a
 *      concurrent `acquire` of the task wait for this commit, so the new owner reads the checkpoint
 *      this flush wrote (see ../leases.ts for the whole argument);
 *   2. session views only (./sessions.ts): the stored sessions the batch's sessions touch, locked,
 *      read (one round trip), deleted, and merged with the batch's into one delta list;
 *   2b. views with custom merges only: an advisory lock on the table (so two processes never merge
 *      the same row from the same stored state), and the stored custom states of the batch's keys,
 *      which the flush waits for (the one extra round trip), merges in JS, then goes on;
 *   3. `INSERT … SELECT * FROM unnest($1::type[], …) ORDER BY keys ON CONFLICT (keys) DO UPDATE SET
 *      <merge>`: the whole batch in one statement. A statement may not touch a row twice, so a
 *      batch where a key repeats goes in rounds (the n-th occurrence of each key in round n); the
 *      engine hands over deltas already aggregated per key, so that is one round;
 *   4. the checkpoints: `SELECT kappa_save_checkpoint(…)` each, which raises (the whole flush
 *      rolled back) if it would go backwards.
 * The fence and the checkpoint are functions that raise, not statements that touch no row,
 * because nothing waits for their answers before COMMIT is sent (./schema.ts defines them).
 * The upsert takes a round's rows in key order (./sql.ts), so two processes flushing overlapping
 * keys lock them in the same order (no deadlock between them; ./pool.ts retries the rare one that
 * still happens).
 *
 * Values are converted for their column types before the transaction starts (./values.ts): a
 * value a column cannot hold fails the flush before anything is sent.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { InvariantError } from '../../assert.ts';
import { KappaError } from '../../errors.ts';
import { validateCheckpoints, validateDeltas } from '../definition.ts';
import type { TaskFence } from '../leases.ts';
import { deltaRows, isDeltaColumns, keysBack } from '../deltas.ts';
import type { Checkpoint, Deltas, FlushResult, MergeRule, RowDelta, VersionTable } from '../types.ts';
import type { VersionCatalog, VersionHandle } from './catalog.ts';
import { fencedError } from './errors.ts';
import type { InDoubtWrites } from './in-doubt.ts';
import type { Connections, Send } from './pool.ts';
import { BACKWARDS_STATE, FENCED_STATE, LAYOUT_LOCK } from './schema.ts';
import { tableIdent } from './sql.ts';
import { notifyQuery } from './changes.ts';
import { mergeSessions } from './sessions.ts';
import { REFUSED, arrayLiteral, describeValue, toColumn } from './values.ts';

/** One delta with its values converted for their columns, and its key as one string (for rounds and order). */
interface Row {
  key: string;
  values: unknown[];
}

interface CheckpointRow {
  topic: string;
  partition: number;
  offset: number;
  watermark: number;
  output_sequence: number;
}

export class DeltaWriter {
  constructor(
    private readonly db: Connections,
    private readonly catalog: VersionCatalog,
    private readonly inDoubt: InDoubtWrites,
    /** This store instance, in the NOTIFY each flush with rows sends (./changes.ts). */
    private readonly source: string,
  ) {}

  async flush(
    name: string,
    version: number,
    given: Deltas,
    checkpoints: Checkpoint[],
    fence?: TaskFence,
  ): Promise<FlushResult> {
    this.db.checkOpen();
    const handle = await this.catalog.handle(name, version);
    validateDeltas(handle.def, given);
    const deltas = deltaRows(given);
    validateCheckpoints(name, checkpoints);
    if (fence !== undefined) checkFence(fence);
    const rows = convertRows(handle, deltas);
    const action = `flush view "${name}" v${version}`;
    if (fence !== undefined) await this.inDoubt.settle(fence, action);
    let removed: RowDelta['key'][] = [];
    try {
      await this.db.pipelined(action, async (send) => {
        if (fence !== undefined) send(fenceQuery(fence));
        let merged = deltas;
        let mergedRows = rows;
        if (handle.def.session && deltas.length > 0) {
          ({ deltas: merged, removed } = await mergeSessions(send, handle, deltas));
          mergedRows = convertRows(handle, merged);
        }
        if (handle.selectCustom !== null && mergedRows.length > 0)
          await mergeCustomColumns(send, handle, merged, mergedRows);
        for (const round of rounds(mergedRows)) send(prepared(handle.upsert, columnArrays(handle, round)));
        for (const cp of checkpoints) send(checkpointQuery(handle.def, cp));
        if (deltas.length > 0) {
          const keys = [...merged.map((d) => d.key), ...removed];
          send(notifyQuery(this.source, { kind: 'rows', view: handle.def.name, version, keys }));
        }
      });
    } catch (err) {
      const failure = await this.flushError(err, name, version, action, fence);
      if (rows.length > 0) this.inDoubt.note(failure, fence);
      throw failure;
    }
    if (isDeltaColumns(given)) keysBack(given, deltas); // a session's merged windows
    return { removed };
  }

  /** What a failed flush says: fenced, backwards, or the version gone (another process dropped it). */
  private async flushError(
    err: unknown,
    name: string,
    version: number,
    action: string,
    fence?: TaskFence,
  ): Promise<unknown> {
    const e = err as { code?: unknown; message?: string };
    if (e?.code === FENCED_STATE && fence !== undefined) return fencedError(fence.task, fence.epoch, action);
    if (e?.code === BACKWARDS_STATE) {
      return new InvariantError(
        `checkpoint of view "${name}" v${version} would go backwards (${e.message}); the flush was rolled back. ` +
          'Two tasks may be writing the same partition.',
      );
    }
    if (e?.code === '42P01') {
      this.catalog.forget(name, version);
      await this.catalog.checkExists(name, version);
    }
    return err;
  }

  async checkpoints(name: string, version: number): Promise<Checkpoint[]> {
    this.db.checkOpen();
    await this.catalog.checkExists(name, version);
    const rows = await this.db.run<CheckpointRow>(
      `read the checkpoints of view "${name}" v${version}`,
      'SELECT topic, "partition" AS partition, "offset" AS offset, watermark, output_sequence FROM kappa_checkpoints ' +
        'WHERE view = $1 AND version = $2 ORDER BY topic COLLATE "C", "partition"',
      [name.toLowerCase(), version],
    );
    return rows.rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      watermark: r.watermark,
      outputSequence: r.output_sequence,
    }));
  }
}

/** A query config that runs as a named prepared statement (named by its text, so a name never has two texts). */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  return { name: `kappa_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`, text, values };
}

export function checkFence(fence: TaskFence): void {
  if (
    fence === null ||
    typeof fence !== 'object' ||
    typeof fence.task !== 'string' ||
    fence.task.length === 0 ||
    !Number.isSafeInteger(fence.epoch) ||
    fence.epoch < 1
  ) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      'A fence needs a task name and the epoch its owner acquired (a whole number from 1).',
      { fence },
    );
  }
}

/** The first statement of a fenced transaction: raises FENCED_STATE when the task's epoch has moved on (see the file comment). */
export function fenceQuery(fence: TaskFence): pg.QueryConfig {
  return prepared('SELECT kappa_fence($1, $2)', [fence.task, fence.epoch]);
}

/** Runs the fence on `c` in its open transaction; throws KAPPA_FENCED when the task's epoch has moved on. */
export async function applyFence(c: pg.PoolClient, fence: TaskFence, action: string): Promise<void> {
  try {
    await c.query(fenceQuery(fence));
  } catch (err) {
    if ((err as { code?: unknown })?.code === FENCED_STATE) throw fencedError(fence.task, fence.epoch, action);
    throw err;
  }
}

/** Every delta's key and values converted for their columns; refuses the whole batch on the first value that cannot be stored. */
function convertRows(h: VersionHandle, deltas: readonly RowDelta[]): Row[] {
  const { keyColumns, stateColumns } = h.def;
  const custom = stateColumns.map((c) => c.merge.kind === 'custom');
  const rows = new Array<Row>(deltas.length);
  for (let i = 0; i < deltas.length; i++) {
    const values = new Array<unknown>(keyColumns.length + stateColumns.length);
    let key = '';
    for (let k = 0; k < keyColumns.length; k++) {
      const v = toColumn(keyColumns[k].type, deltas[i].key[k]);
      if (v === REFUSED) throw refused(h.def, i, keyColumns[k].name, keyColumns[k].type, deltas[i].key[k]);
      values[k] = v;
      key += v === null ? '\u0001n' : `\u0001${typeof v}:${String(v)}`;
    }
    for (let s = 0; s < stateColumns.length; s++) {
      if (custom[s]) continue; // merged in JS in the transaction
      const v = toColumn(stateColumns[s].type, deltas[i].state[s]);
      if (v === REFUSED) throw refused(h.def, i, stateColumns[s].name, stateColumns[s].type, deltas[i].state[s]);
      values[keyColumns.length + s] = v;
    }
    rows[i] = { key, values };
  }
  return rows;
}

function refused(def: VersionTable, index: number, column: string, type: string, value: unknown): KappaError {
  return new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `Delta ${index} of view "${def.name}" v${def.version}: column "${column}" (${type}) cannot hold ${describeValue(value)} ` +
      'in PostgreSQL, whose columns are strictly typed; nothing was written. ' +
      'A key whose type changes between records needs a view that converts it (for example to text).',
    { view: def.name, version: def.version, delta: index, column },
  );
}

/** The rows in rounds where no key repeats (the n-th occurrence of a key in round n). */
function rounds(rows: Row[]): Row[][] {
  const seen = new Map<string, number>();
  const out: Row[][] = [];
  for (const row of rows) {
    const n = seen.get(row.key) ?? 0;
    seen.set(row.key, n + 1);
    (out[n] ??= []).push(row);
  }
  return out;
}

/** One array literal per stored column (key columns, unless the view has none, then state columns), for the upsert's unnest. */
function columnArrays(h: VersionHandle, rows: readonly Row[]): string[] {
  const columns = [...h.def.keyColumns, ...h.def.stateColumns];
  return columns.map((column, c) => arrayLiteral(column.type, rows, c));
}

/**
 * Views with custom merges: reads the stored custom states of the batch's keys (locking those
 * rows, and the table's flushes through an advisory lock), merges each delta in JS in the order
 * given, and puts the merged JSON in each delta's row, so the last round writes the full merge.
 * A NULL on either side counts as "no state yet": the other side is kept and `merge` not called.
 */
async function mergeCustomColumns(send: Send, h: VersionHandle, deltas: RowDelta[], rows: Row[]): Promise<void> {
  const nk = h.def.keyColumns.length;
  send({ text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))', values: [LAYOUT_LOCK, `flush:${tableIdent(h.def)}`] });
  const firsts = rounds(rows)[0] ?? [];
  const keyArrays = Array.from({ length: nk }, (_, k) => firsts.map((r) => r.values[k]));
  const stored = await send({ text: h.selectCustom as string, values: keyArrays, rowMode: 'array' } as pg.QueryConfig);
  // The running state of each key: what is stored, then each delta merged into it in turn.
  const state = new Map<string, (string | null)[]>();
  for (const row of stored.rows as unknown[][])
    state.set(firsts[Number(row[0]) - 1].key, row.slice(1) as (string | null)[]);
  for (let i = 0; i < deltas.length; i++) {
    const running = state.get(rows[i].key) ?? h.customIndexes.map(() => null);
    for (let j = 0; j < h.customIndexes.length; j++) {
      const s = h.customIndexes[j];
      const column = h.def.stateColumns[s];
      running[j] = mergeCustom(h.def, column.name, column.merge, running[j], deltas[i].state[s]);
      rows[i].values[nk + s] = running[j];
    }
    state.set(rows[i].key, running);
  }
}

/** Merges one custom column: stored JSON text + a delta value → JSON text (NULL = no state yet). */
function mergeCustom(
  def: VersionTable,
  column: string,
  rule: MergeRule,
  stored: string | null,
  delta: unknown,
): string | null {
  if (delta === null || delta === undefined) return stored;
  const merged =
    stored === null ? delta : (rule as Extract<MergeRule, { kind: 'custom' }>).merge(JSON.parse(stored), delta);
  if (merged === null || merged === undefined) return null;
  try {
    return JSON.stringify(merged);
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `The custom state of column "${column}" of view "${def.name}" v${def.version} cannot be stored as JSON: ` +
        (err as Error).message,
      { view: def.name, column },
      err,
    );
  }
}

/** Upserts one checkpoint; raises BACKWARDS_STATE (failing the flush whole) if it would go backwards. */
function checkpointQuery(def: VersionTable, cp: Checkpoint): pg.QueryConfig {
  return prepared('SELECT kappa_save_checkpoint($1, $2, $3, $4, $5, $6, $7)', [
    def.name.toLowerCase(),
    def.version,
    cp.topic,
    cp.partition,
    cp.offset,
    cp.watermark,
    cp.outputSequence,
  ]);
}
