/**
 * Flushes into a SQLite store: a task's deltas merged into a version's table and the task's
 * checkpoints upserted, in ONE transaction (see ./schema.ts for why that is what makes the
 * exactly-once promise survive a power loss).
 *
 * Invariant (checked, it throws and rolls the whole flush back): a checkpoint's offset and output
 * sequence never go backwards for the same (view, version, topic, partition). Two tasks writing
 * the same partition would break it.
 *
 * Custom merges: the stored JSON text is read inside the flush transaction, merged in JS with the
 * rule's `merge(stored, delta)`, and written back by the same upsert as every other column. A NULL
 * on either side counts as "no state yet": the other side is kept and `merge` is not called.
 */
import type Database from 'better-sqlite3';
import { InvariantError } from '../../assert.ts';
import { KappaError } from '../../errors.ts';
import { validateCheckpoints, validateDeltas } from '../definition.ts';
import { deltaCount, deltaRows, isDeltaColumns, keysBack } from '../deltas.ts';
import type { Checkpoint, DeltaColumns, Deltas, FlushResult, MergeRule, RowDelta, VersionTable } from '../types.ts';
import type { VersionCatalog, VersionHandle } from './catalog.ts';
import { NULL_KEY, quoteIdent, tableIdent } from './sql.ts';
import { type SqliteWriter, storageError } from './writer.ts';

/**
 * Rows a flush merges per step. A flush of more rows stays one transaction (rows and checkpoint
 * commit together), but between steps the event loop runs: a 10,000-row flush took 100-150 ms of
 * one synchronous call on a loaded 2-core machine, long enough to stall HTTP answers during a
 * backfill. 1,000 rows are a few ms.
 */
const FLUSH_ROWS_PER_STEP = 1000;

interface CheckpointRow {
  topic: string;
  partition: number;
  offset: number;
  watermark: number;
  output_sequence: number;
}

/**
 * A group commit takes more flushes while it holds fewer rows than this. Every commit writes each
 * page its rows touched to the WAL, and rows of a view with many keys (orders, customers) land on
 * pages spread over the whole table: ten 10,000-row commits of a 1M-key view wrote almost ten
 * times the pages of one 100,000-row commit (process bench, by_order).
 */
const GROUP_ROWS_MAX = 100_000;
/**
 * Flushes wait for each other only while a commit costs at least this share of the time spent
 * merging its rows. Grouping delays each flush's answer until the whole group is written (and a
 * task on a worker thread may be paused until then), which pays only when commits are dear: a
 * 1M-key view's commit took about a quarter of the merge time even in groups, a 10k-key view's a
 * few percent.
 */
const GROUP_COMMIT_SHARE_MIN = 0.12;

/** A flush waiting for, or in, a group commit. */
interface QueuedFlush {
  handle: VersionHandle;
  deltas: Deltas;
  checkpoints: Checkpoint[];
  apply: Apply;
  /**
   * Merged without a savepoint of its own (plain merges: nothing in them can fail but storage,
   * which fails the whole group anyway); its checkpoints are checked before its first row instead.
   */
  plain: boolean;
  /** Rows merged so far. */
  next: number;
  /** Set when this flush failed on its own (refused before its first row, or rolled back to its savepoint); the others still commit. */
  failed: unknown;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: flushes that arrive while a transaction is being written (other tasks', during a
 * catch-up) wait and are written together in the next one, and one that fails (a checkpoint that
 * would go backwards, a custom merge that throws) fails alone while the others commit. A flush of
 * plain merges (add, min, max, earliest, latest) has its checkpoints checked before its first row
 * and is then merged with no savepoint: after that only a storage error can stop it, and that ends
 * the whole transaction anyway. A savepoint costs the pages it touches copied to a sub-journal, a
 * third of the merge time of a 1M-key view (by_order in the process bench: 4.2 → 2.9 µs a row).
 * Other flushes (custom merges, session windows) run under a savepoint of their own.
 * At the head of a log, flushes are small and seldom and each commits at once; while catching up
 * they queue and commit in large groups, which writes far fewer pages per row.
 */
export class DeltaWriter {
  private readonly sql: ReturnType<typeof checkpointStatements>;
  private readonly queue: QueuedFlush[] = [];
  private writing = false;
  /** Whether flushes are grouped, from the last group's commit and merge times (GROUP_COMMIT_SHARE_MIN). */
  private grouping = true;
  /** Time spent merging rows in the group being written, in ms. */
  private mergeMs = 0;

  constructor(
    private readonly writer: SqliteWriter,
    private readonly catalog: VersionCatalog,
  ) {
    this.sql = checkpointStatements(writer.db);
  }

  async flush(name: string, version: number, deltas: Deltas, checkpoints: Checkpoint[]): Promise<FlushResult> {
    this.writer.checkOpen();
    const handle = this.catalog.handle(name, version);
    validateDeltas(handle.def, deltas);
    validateCheckpoints(name, checkpoints);
    const merge = handle.selectCustom === null ? applyDeltas : applyCustomDeltas;
    const removed: RowDelta['key'][] = [];
    const apply = handle.def.session ? sessionApplier(this.writer.db, handle, merge, removed) : merge;
    const plain = apply === applyDeltas;
    // Custom merges and sessions read whole rows; a session's merged window is written back to the columns' keys.
    const queued = plain ? deltas : deltaRows(deltas);
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ handle, deltas: queued, checkpoints, apply, plain, next: 0, failed: null, resolve, reject });
      if (!this.writing) void this.writeQueued();
    });
    if (handle.def.session && isDeltaColumns(deltas)) keysBack(deltas, queued as RowDelta[]);
    return { removed };
  }

  /** Writes the queued flushes, a group per transaction, until none is left. */
  private async writeQueued(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) await this.writeGroup();
    } finally {
      this.writing = false;
    }
  }

  /**
   * One transaction: the queued flushes in order, joined by those that arrive meanwhile while the
   * group holds fewer than GROUP_ROWS_MAX rows; FLUSH_ROWS_PER_STEP rows per step.
   */
  private async writeGroup(): Promise<void> {
    const group: QueuedFlush[] = [];
    let rows = 0;
    this.mergeMs = 0;
    let current: QueuedFlush | null = null;
    const db = this.writer.db;
    const first = this.queue[0].handle.def;
    const action =
      this.queue.length === 1
        ? `flush view "${first.name}" v${first.version}`
        : `flush views (${this.queue.length} flushes)`;
    try {
      await this.writer.writeWhile(action, () => {
        if (current === null) {
          if (this.queue.length === 0 || (group.length > 0 && (!this.grouping || rows >= GROUP_ROWS_MAX))) return false;
          current = this.queue.shift()!;
          group.push(current);
          rows += deltaCount(current.deltas);
          if (!current.plain) db.exec('SAVEPOINT kappa_flush');
          else if (!this.checkpointsAhead(current)) {
            current = null;
            return true;
          }
        }
        const f: QueuedFlush = current;
        if (f.plain) {
          // No savepoint to roll back to: anything thrown here fails the whole group (writeWhile rolls it back).
          if (this.mergeStep(f)) return true;
          for (const cp of f.checkpoints) this.saveCheckpoint(f.handle.def, cp);
          current = null;
          return true;
        }
        try {
          if (this.mergeStep(f)) return true;
          for (const cp of f.checkpoints) this.saveCheckpoint(f.handle.def, cp);
          db.exec('RELEASE kappa_flush');
        } catch (err) {
          // The transaction is gone (SQLite rolled it back on a storage error): the whole group fails.
          if (!db.inTransaction) throw err;
          db.exec('ROLLBACK TO kappa_flush');
          db.exec('RELEASE kappa_flush');
          f.failed = storageError(err, `flush view "${f.handle.def.name}" v${f.handle.def.version}`);
        }
        current = null;
        return true;
      });
      this.grouping = this.writer.lastCommitMs >= GROUP_COMMIT_SHARE_MIN * this.mergeMs;
    } catch (err) {
      // No transaction could begin (the store is closed, or locked by another process for longer
      // than its busy timeout): every waiting flush fails with that, as a lone flush would.
      if (group.length === 0) group.push(...this.queue.splice(0));
      for (const f of group) if (f.failed === null) f.failed = err;
    }
    for (const f of group) {
      if (f.failed === null) f.resolve();
      else f.reject(f.failed);
    }
  }

  /** Merges the next FLUSH_ROWS_PER_STEP rows of `f`; true while rows remain. */
  private mergeStep(f: QueuedFlush): boolean {
    const count = deltaCount(f.deltas);
    const to = Math.min(count, f.next + FLUSH_ROWS_PER_STEP);
    const started = performance.now();
    f.apply(f.handle, f.deltas, f.next, to);
    this.mergeMs += performance.now() - started;
    f.next = to;
    return to < count;
  }

  /**
   * Whether every checkpoint of a plain flush moves forward (from the stored one, and from the one
   * before it in the same flush); if not, the flush fails before it writes anything.
   */
  private checkpointsAhead(f: QueuedFlush): boolean {
    const def = f.handle.def;
    const seen = new Map<string, { offset: number; output_sequence: number }>();
    for (const cp of f.checkpoints) {
      const id = `${cp.partition} ${cp.topic}`;
      const before =
        seen.get(id) ?? (this.sql.checkpoint.get(def.name, def.version, cp.topic, cp.partition) as CheckpointRow);
      if (before !== undefined && (cp.offset < before.offset || cp.outputSequence < before.output_sequence)) {
        f.failed = backwards(def, cp, before);
        return false;
      }
      seen.set(id, { offset: cp.offset, output_sequence: cp.outputSequence });
    }
    return true;
  }

  async checkpoints(name: string, version: number): Promise<Checkpoint[]> {
    // Never a checkpoint of a group commit still open (its rows not committed, the group may yet fail).
    await this.writer.settled();
    this.writer.checkOpen();
    this.catalog.checkExists(name, version);
    const rows = this.sql.checkpoints.all(name, version) as CheckpointRow[];
    return rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      watermark: r.watermark,
      outputSequence: r.output_sequence,
    }));
  }

  /** Upserts one checkpoint; refuses (throws, rolling back the flush) if it would go backwards. */
  private saveCheckpoint(def: VersionTable, cp: Checkpoint): void {
    const result = this.sql.saveCheckpoint.run(
      def.name,
      def.version,
      cp.topic,
      cp.partition,
      cp.offset,
      cp.watermark,
      cp.outputSequence,
    );
    if (result.changes === 1) return;
    throw backwards(def, cp, this.sql.checkpoint.get(def.name, def.version, cp.topic, cp.partition) as CheckpointRow);
  }
}

function backwards(def: VersionTable, cp: Checkpoint, stored: Pick<CheckpointRow, 'offset' | 'output_sequence'>) {
  return new InvariantError(
    `checkpoint of view "${def.name}" v${def.version} for ${cp.topic}/${cp.partition} would go backwards ` +
      `(offset ${stored.offset} → ${cp.offset}, output sequence ${stored.output_sequence} → ${cp.outputSequence}); ` +
      'the flush was rolled back. ' +
      'Two tasks may be writing the same partition.',
  );
}

function checkpointStatements(db: Database.Database) {
  return {
    checkpoints: db.prepare(
      'SELECT topic, "partition", "offset", watermark, output_sequence FROM kappa_checkpoints ' +
        'WHERE view = ? AND version = ? ORDER BY topic, "partition"',
    ),
    checkpoint: db.prepare(
      'SELECT "offset", output_sequence FROM kappa_checkpoints WHERE view = ? AND version = ? AND topic = ? AND "partition" = ?',
    ),
    // The WHERE makes a backwards checkpoint change nothing (changes = 0), which saveCheckpoint refuses.
    saveCheckpoint: db.prepare(
      'INSERT INTO kappa_checkpoints (view, version, topic, "partition", "offset", watermark, output_sequence) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (view, version, topic, "partition") DO UPDATE SET "offset" = excluded."offset", ' +
        'watermark = excluded.watermark, output_sequence = excluded.output_sequence ' +
        'WHERE excluded."offset" >= kappa_checkpoints."offset" ' +
        'AND excluded.output_sequence >= kappa_checkpoints.output_sequence',
    ),
  };
}

/**
 * The common case, no custom merges: one prepared single-row upsert per delta. (Multi-row VALUES
 * statements were measured: up to 1.5x faster when most rows already exist and 8 rows per
 * statement, but slower from 16 rows on and slower for mostly-new rows, so not worth the code.)
 */
function applyDeltas(h: VersionHandle, deltas: Deltas, from: number, to: number): void {
  if (isDeltaColumns(deltas)) return applyColumns(h, deltas, from, to);
  const nk = h.def.keyColumns.length;
  const ns = h.def.stateColumns.length;
  const params = h.params;
  const upsert = h.upsert;
  for (let i = from; i < to; i++) {
    fillRow(params, deltas[i], nk, ns);
    upsert.run(params);
  }
}

function applyColumns(h: VersionHandle, deltas: DeltaColumns, from: number, to: number): void {
  const { keys, states } = deltas;
  const nk = keys.length;
  const ns = states.length;
  const params = h.params;
  const upsert = h.upsert;
  for (let i = from; i < to; i++) {
    for (let k = 0; k < nk; k++) params[k] = keys[k][i] ?? NULL_KEY;
    for (let s = 0; s < ns; s++) params[nk + s] = states[s][i];
    upsert.run(params);
  }
}

function fillRow(params: unknown[], delta: RowDelta, nk: number, ns: number): void {
  const key = delta.key;
  const state = delta.state;
  for (let k = 0; k < nk; k++) params[k] = key[k] ?? NULL_KEY;
  for (let s = 0; s < ns; s++) params[nk + s] = state[s];
}

/** Views with custom merges: per row, read the stored custom state, merge in JS, then upsert. */
function applyCustomDeltas(h: VersionHandle, d: Deltas, from: number, to: number): void {
  const deltas = d as RowDelta[]; // flush() turned columns into rows
  const nk = h.def.keyColumns.length;
  const ns = h.def.stateColumns.length;
  const selectCustom = h.selectCustom as Database.Statement<unknown[]>;
  for (let i = from; i < to; i++) {
    const delta = deltas[i];
    for (let k = 0; k < nk; k++) h.keyParams[k] = delta.key[k] ?? NULL_KEY;
    const stored = selectCustom.get(h.keyParams) as unknown[] | undefined;
    fillRow(h.params, delta, nk, ns);
    for (let j = 0; j < h.customIndexes.length; j++) {
      const s = h.customIndexes[j];
      const column = h.def.stateColumns[s];
      const storedJson = stored === undefined ? null : (stored[j] as string | null);
      h.params[nk + s] = mergeCustom(h.def, column.name, column.merge, storedJson, delta.state[s]);
    }
    h.upsert.run(h.params);
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

type Apply = (h: VersionHandle, deltas: Deltas, from: number, to: number) => void;

/**
 * Session views (VersionTable.session): before a delta is merged, the stored sessions of its group
 * that touch or overlap its window are read, removed, and merged into it under one window spanning
 * them all: their states are applied as deltas of that window, then the delta itself (so every
 * merge rule, custom ones included, combines them as it combines any two deltas). Stored sessions
 * never touch each other, so one look finds all a delta joins. The delta's key is changed in place
 * to the merged window, so what the flush reports as changed names the row that exists; the keys of
 * the stored rows merged away go to `removed`.
 */
function sessionApplier(db: Database.Database, h: VersionHandle, merge: Apply, removed: RowDelta['key'][]): Apply {
  const keys = h.def.keyColumns.map((c) => quoteIdent(c.name));
  const groups = keys.slice(0, -2);
  const [start, end] = keys.slice(-2);
  const columns = [...keys, ...h.def.stateColumns.map((c) => quoteIdent(c.name))].join(', ');
  const overlap = db
    .prepare(
      `SELECT ${columns} FROM ${tableIdent(h.def)} WHERE ${[...groups.map((g) => `${g} = ?`), `${start} <= ?`, `${end} >= ?`].join(' AND ')}`,
    )
    .raw();
  const remove = db.prepare(`DELETE FROM ${tableIdent(h.def)} WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`);
  const nk = keys.length;
  const ng = nk - 2;
  const custom = new Set(h.customIndexes);
  return (handle, d, from, to) => {
    const deltas = d as RowDelta[]; // flush() turned columns into rows
    for (let i = from; i < to; i++) {
      const delta = deltas[i];
      const params: unknown[] = delta.key.slice(0, ng).map((v) => v ?? NULL_KEY);
      let s = delta.key[ng] as number;
      let e = delta.key[ng + 1] as number;
      const stored = overlap.all(...params, e, s) as unknown[][];
      const merged: RowDelta[] = [];
      for (const row of stored) {
        s = Math.min(s, row[ng] as number);
        e = Math.max(e, row[ng + 1] as number);
        remove.run(...row.slice(0, nk));
        const state = row.slice(nk).map((v, c) => (custom.has(c) && typeof v === 'string' ? JSON.parse(v) : v));
        merged.push({ key: delta.key, state });
      }
      for (const row of stored)
        if (row[ng] !== s || row[ng + 1] !== e)
          removed.push(row.slice(0, nk).map((v) => (v === NULL_KEY ? null : v)) as RowDelta['key']);
      delta.key[ng] = s;
      delta.key[ng + 1] = e;
      merged.push(delta);
      merge(handle, merged, 0, merged.length);
    }
  };
}
