/**
 * The one writer connection of a SQLite store, shared by every part of it (catalog, flushes,
 * control records): each change is one `BEGIN IMMEDIATE` transaction on it, and this class is the
 * only place that opens one.
 *
 * Thread-safety: none needed; better-sqlite3 is synchronous and the store is used from one thread.
 * Every write is one transaction run synchronously (`write`), except a flush of many rows, which
 * stays one transaction but lets the event loop run between steps (`writeInSteps`); while it holds
 * the writer, other writes wait for it (`writeWhenFree`), so no two transactions ever interleave.
 *
 * Locks held by another process: the connection's own busy timeout is 0, because SQLite's busy
 * handler sleeps on this thread and would stall the event loop. A write that finds the lock taken
 * waits between attempts with timers instead, up to `busyTimeoutMs`, then fails with
 * KAPPA_DATA_DIR_LOCKED.
 */
import Database from 'better-sqlite3';
import { KappaError, isKappaError } from '../../errors.ts';
import { InvariantError } from '../../assert.ts';

export class SqliteWriter {
  private closed = false;
  /** Set while a stepped flush holds the writer in an open transaction (see writeInSteps). */
  private steppedWrite: Promise<void> | null = null;
  /** How long the COMMIT of the last `writeWhile` took, in ms (writing its pages to the WAL, and any checkpoint). */
  lastCommitMs = 0;

  constructor(
    readonly db: Database.Database,
    private readonly busyTimeoutMs: number,
  ) {}

  checkOpen(): void {
    if (this.closed) throw new Error('The view store is closed.');
  }

  /**
   * Resolves once no stepped write holds an open transaction: reads on the writer's connection see
   * its uncommitted changes, and a group commit keeps one flush's checkpoint uncommitted while the
   * next flush of its group is merged (flush.ts), so a read that must see only committed state
   * (checkpoints) waits for this first.
   */
  async settled(): Promise<void> {
    while (this.steppedWrite !== null) await this.steppedWrite.catch(() => {});
  }

  /**
   * Marks the store closed (later calls are refused) and waits for a stepped flush under way to
   * finish (or fail) before anything closes under it. False if it was already closed.
   */
  async beginClose(): Promise<boolean> {
    if (this.closed) return false;
    this.closed = true;
    while (this.steppedWrite !== null) await this.steppedWrite.catch(() => {});
    return true;
  }

  close(): void {
    this.db.close();
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction once no stepped flush holds the writer; SQLite's storage
   * errors become typed. The check and the write run in one turn of the event loop, so no other
   * write can slip in between.
   */
  async writeWhenFree<T>(action: string, fn: () => T): Promise<T> {
    const startedMs = Date.now();
    for (let attempt = 0; ; attempt++) {
      while (this.steppedWrite !== null) await this.steppedWrite;
      this.checkOpen();
      try {
        return this.write(action, fn);
      } catch (err) {
        await this.backOffIfLocked(err, attempt, startedMs);
      }
    }
  }

  /**
   * Runs `step(0) … step(steps - 1)` in one IMMEDIATE transaction, letting the event loop run
   * between steps; other writes wait for it (`writeWhenFree`). A throw rolls everything back; a
   * crash mid-way leaves an uncommitted transaction that SQLite discards.
   */
  async writeInSteps(action: string, steps: number, step: (i: number) => void): Promise<void> {
    if (steps === 1) return this.writeWhenFree(action, () => step(0));
    let i = 0;
    return this.writeWhile(action, () => {
      step(i++);
      return i < steps;
    });
  }

  /**
   * Like `writeInSteps` for a number of steps not known in advance: in one IMMEDIATE transaction,
   * `step()` does one part and says whether more remain; the event loop runs between parts.
   */
  async writeWhile(action: string, step: () => boolean): Promise<void> {
    const release = await this.beginWhenFree(action);
    try {
      try {
        for (let i = 0; ; i++) {
          if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          if (!step()) break;
        }
        const started = performance.now();
        this.db.exec('COMMIT');
        this.lastCommitMs = performance.now() - started;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      throw storageError(err, action);
    } finally {
      this.steppedWrite = null;
      release();
    }
  }

  /**
   * Opens the IMMEDIATE transaction of a stepped write, waiting for other writes and other
   * processes, and marks the writer held in the same turn of the event loop (so no write can join
   * the open transaction). Returns what ends the hold.
   */
  private async beginWhenFree(action: string): Promise<() => void> {
    const startedMs = Date.now();
    for (let attempt = 0; ; attempt++) {
      while (this.steppedWrite !== null) await this.steppedWrite;
      this.checkOpen();
      try {
        this.db.exec('BEGIN IMMEDIATE');
        let release!: () => void;
        this.steppedWrite = new Promise<void>((resolve) => (release = resolve));
        return release;
      } catch (err) {
        await this.backOffIfLocked(storageError(err, action), attempt, startedMs);
      }
    }
  }

  private write<T>(action: string, fn: () => T): T {
    // A write inside a stepped flush would join its transaction (better-sqlite3 nests it as a savepoint).
    if (this.steppedWrite !== null)
      throw new InvariantError(`${action} was attempted while a flush holds the writer (use writeWhenFree)`);
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw storageError(err, action);
    }
  }

  /**
   * After a write found the write lock held by another process (nothing was written): rethrows
   * once `busyTimeoutMs` has passed since the first attempt, else waits a little longer each time
   * (5 ms doubling up to 200 ms) without blocking the event loop. Any other error is rethrown.
   */
  private async backOffIfLocked(err: unknown, attempt: number, startedMs: number): Promise<void> {
    if (!isKappaError(err, 'KAPPA_DATA_DIR_LOCKED') || Date.now() - startedMs >= this.busyTimeoutMs) throw err;
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt)));
  }
}

/** SQLite's storage failures as typed errors; anything else passes unchanged. */
export function storageError(err: unknown, action: string): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const details = { sqliteCode: err.code };
  if (err.code === 'SQLITE_FULL') {
    return new KappaError(
      'KAPPA_DISK_FULL',
      `The disk is full: could not ${action}. Free some space and retry; nothing was changed.`,
      details,
      err,
    );
  }
  if (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED')) {
    return new KappaError(
      'KAPPA_DATA_DIR_LOCKED',
      `Could not ${action}: another process holds the view store's write lock (${err.message}).`,
      details,
      err,
    );
  }
  if (err.code.startsWith('SQLITE_CORRUPT') || err.code === 'SQLITE_NOTADB') {
    return new KappaError(
      'KAPPA_CORRUPT_DATA',
      `Could not ${action}: the view store is damaged (${err.message}). Views can be rebuilt from the log.`,
      details,
      err,
    );
  }
  if (
    err.code.startsWith('SQLITE_IOERR') ||
    err.code.startsWith('SQLITE_CANTOPEN') ||
    err.code.startsWith('SQLITE_READONLY')
  ) {
    return new KappaError('KAPPA_IO_ERROR', `Could not ${action}: ${err.message}`, details, err);
  }
  return err;
}
