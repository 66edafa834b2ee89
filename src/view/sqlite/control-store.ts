/**
 * The SQLite side of the `ControlStore` port (../control-store.ts): output checkpoints, saved code,
 * build records, the build history and requests between processes, in the tables
 * `kappa_output_checkpoints`, `kappa_view_code`, `kappa_builds`, `kappa_build_history` and `kappa_requests` (layout in ./schema.ts). It shares the
 * store's writer connection, so `SqliteStore.dropVersion` forgets a version's code and build in the
 * same transaction that drops its table (`forgetInTx`).
 *
 * Requests between processes: `takeRequests` reads the pending ones and marks them 'taken' in one
 * IMMEDIATE transaction, which holds the database's write lock, so two engines (or two handles on
 * the same file) never take the same request.
 */
import type Database from 'better-sqlite3';
import { InvariantError } from '../../assert.ts';
import { KappaError } from '../../errors.ts';
import { BUILD_HISTORY_MAX, type BuildHistoryEntry, type ControlStore } from '../control-store.ts';
import { checkVersion, checkViewName } from '../definition.ts';
import type { BuildInfo, OutputCheckpoint, ViewRequest, ViewRequestAction } from '../types.ts';

/** An output checkpoint's watermark when none was saved (the engine's NO_WATERMARK). */
const NO_EVENT_TIME = -8.64e15;
import type { SqliteWriter } from './writer.ts';

interface RequestRow {
  id: number;
  view: string;
  action: ViewRequestAction;
  from_spec: string | null;
  created_at: number;
  state: ViewRequest['state'];
  message: string | null;
  version: number | null;
}

/** Every method of the port but `close`: the store that holds the connection closes it. */
export class SqliteControlStore implements Omit<ControlStore, 'close'> {
  private readonly sql: ReturnType<typeof controlStatements>;

  constructor(
    private readonly writer: SqliteWriter,
    private readonly clock: { now(): number },
  ) {
    this.sql = controlStatements(writer.db);
  }

  async saveOutputCheckpoint(output: string, cp: OutputCheckpoint): Promise<void> {
    this.writer.checkOpen();
    checkViewName(output);
    checkOutputCheckpoint(output, cp);
    await this.writer.writeWhenFree(`save the checkpoint of output "${output}"`, () => {
      const result = this.sql.saveOutputCheckpoint.run(
        output,
        cp.topic,
        cp.partition,
        cp.offset,
        JSON.stringify(cp.sequences),
        cp.watermark ?? NO_EVENT_TIME,
      );
      if (result.changes === 1) return;
      const stored = this.sql.outputCheckpoint.get(output, cp.topic, cp.partition) as { offset: number };
      throw new InvariantError(
        `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} would go backwards ` +
          `(offset ${stored.offset} → ${cp.offset}). ` +
          'Two tasks may be writing the same partition.',
      );
    });
  }

  async outputCheckpoints(output: string): Promise<OutputCheckpoint[]> {
    this.writer.checkOpen();
    checkViewName(output);
    const rows = this.sql.outputCheckpoints.all(output) as {
      topic: string;
      partition: number;
      offset: number;
      sequences: string;
      watermark: number;
    }[];
    return rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      sequences: JSON.parse(r.sequences) as number[],
      ...(r.watermark === NO_EVENT_TIME ? {} : { watermark: r.watermark }),
    }));
  }

  async outputs(): Promise<string[]> {
    this.writer.checkOpen();
    return (this.sql.outputs.all() as { output: string }[]).map((r) => r.output);
  }

  async resetOutputSource(output: string, topic: string): Promise<void> {
    this.writer.checkOpen();
    checkViewName(output);
    await this.writer.writeWhenFree(`reset the position of output "${output}" in topic "${topic}"`, () =>
      this.sql.resetOutputSource.run(output, topic),
    );
  }

  async saveCode(name: string, version: number, code: string): Promise<void> {
    this.writer.checkOpen();
    checkViewName(name);
    checkVersion(version);
    if (typeof code !== 'string' || code.length === 0) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `The code of view "${name}" v${version} must be a non-empty string.`,
        { view: name, version },
      );
    }
    await this.writer.writeWhenFree(`save the code of view "${name}" v${version}`, () =>
      this.sql.saveCode.run(name, version, code),
    );
  }

  async code(name: string, version: number): Promise<string | null> {
    this.writer.checkOpen();
    checkViewName(name);
    checkVersion(version);
    return (this.sql.code.get(name, version) as { code: string } | undefined)?.code ?? null;
  }

  async saveBuild(build: BuildInfo): Promise<void> {
    this.writer.checkOpen();
    checkViewName(build.name);
    checkVersion(build.version);
    const action = `save the build of view "${build.name}" v${build.version}`;
    await this.writer.writeWhenFree(action, () =>
      this.sql.saveBuild.run(build.name, build.version, JSON.stringify(build)),
    );
  }

  async builds(): Promise<BuildInfo[]> {
    this.writer.checkOpen();
    return (this.sql.builds.all() as { info_json: string }[]).map((r) => JSON.parse(r.info_json) as BuildInfo);
  }

  async deleteBuild(name: string, version: number): Promise<void> {
    this.writer.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.writer.writeWhenFree(`delete the build of view "${name}" v${version}`, () =>
      this.sql.deleteBuild.run(name, version),
    );
  }

  async recordBuild(entry: BuildHistoryEntry): Promise<void> {
    this.writer.checkOpen();
    checkViewName(entry.name);
    checkVersion(entry.version);
    if (!['live', 'cancelled', 'failed'].includes(entry.result))
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `A build ends live, cancelled or failed, not "${String(entry.result)}".`,
        { view: entry.name, version: entry.version },
      );
    await this.writer.writeWhenFree(`record the build of view "${entry.name}" v${entry.version}`, () => {
      this.sql.recordBuild.run(entry.name, JSON.stringify(entry));
      this.sql.trimBuildHistory.run(entry.name, entry.name, BUILD_HISTORY_MAX);
    });
  }

  async buildHistory(name: string): Promise<BuildHistoryEntry[]> {
    this.writer.checkOpen();
    checkViewName(name);
    return (this.sql.buildHistory.all(name) as { entry_json: string }[]).map(
      (r) => JSON.parse(r.entry_json) as BuildHistoryEntry,
    );
  }

  async forgetVersion(name: string, version: number): Promise<void> {
    this.writer.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.writer.writeWhenFree(`forget the code and build of view "${name}" v${version}`, () =>
      this.forgetInTx(name, version),
    );
  }

  /** Deletes a version's code and build record inside the caller's transaction. */
  forgetInTx(name: string, version: number): void {
    this.sql.deleteCode.run(name, version);
    this.sql.deleteBuild.run(name, version);
  }

  async addRequest(view: string, action: ViewRequestAction, from: string | null): Promise<number> {
    this.writer.checkOpen();
    checkViewName(view);
    if (!['replay', 'rollback', 'cancel'].includes(action)) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `Unknown request "${String(action)}": use replay, rollback or cancel.`,
        { action },
      );
    }
    return this.writer.writeWhenFree(`request ${action} of view "${view}"`, () =>
      Number(this.sql.addRequest.run(view, action, from, this.clock.now()).lastInsertRowid),
    );
  }

  async takeRequests(): Promise<ViewRequest[]> {
    this.writer.checkOpen();
    // Most polls find nothing: look before taking the write lock.
    if (this.sql.anyPending.get() === undefined) return [];
    return this.writer.writeWhenFree('take the pending requests', () => {
      const rows = this.sql.pending.all() as RequestRow[];
      for (const r of rows) this.sql.answer.run('taken', null, null, r.id);
      return rows.map((r) => requestOf({ ...r, state: 'taken' }));
    });
  }

  async answerRequest(id: number, state: 'done' | 'failed', message: string, version: number | null): Promise<void> {
    this.writer.checkOpen();
    await this.writer.writeWhenFree(`answer request ${id}`, () => this.sql.answer.run(state, message, version, id));
  }

  async request(id: number): Promise<ViewRequest | null> {
    this.writer.checkOpen();
    const row = this.sql.request.get(id) as RequestRow | undefined;
    return row === undefined ? null : requestOf(row);
  }
}

function checkOutputCheckpoint(output: string, cp: OutputCheckpoint): void {
  if (!Number.isSafeInteger(cp.offset) || cp.offset < 0 || !Number.isInteger(cp.partition) || cp.partition < 0) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} has an invalid offset ${cp.offset}`,
    );
  }
  if (!cp.sequences.every((q) => Number.isInteger(q) && q >= 0 && q < 2 ** 31)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} has invalid sequences ` +
        JSON.stringify(cp.sequences),
    );
  }
}

function controlStatements(db: Database.Database) {
  return {
    saveCode: db.prepare(
      'INSERT INTO kappa_view_code (name, version, code) VALUES (?, ?, ?) ' +
        'ON CONFLICT (name, version) DO UPDATE SET code = excluded.code',
    ),
    code: db.prepare('SELECT code FROM kappa_view_code WHERE name = ? AND version = ?'),
    deleteCode: db.prepare('DELETE FROM kappa_view_code WHERE name = ? AND version = ?'),
    saveBuild: db.prepare(
      'INSERT INTO kappa_builds (name, version, info_json) VALUES (?, ?, ?) ' +
        'ON CONFLICT (name, version) DO UPDATE SET info_json = excluded.info_json',
    ),
    builds: db.prepare('SELECT info_json FROM kappa_builds ORDER BY name, version'),
    deleteBuild: db.prepare('DELETE FROM kappa_builds WHERE name = ? AND version = ?'),
    recordBuild: db.prepare('INSERT INTO kappa_build_history (name, entry_json) VALUES (?, ?)'),
    trimBuildHistory: db.prepare(
      'DELETE FROM kappa_build_history WHERE name = ? AND id NOT IN ' +
        '(SELECT id FROM kappa_build_history WHERE name = ? ORDER BY id DESC LIMIT ?)',
    ),
    buildHistory: db.prepare('SELECT entry_json FROM kappa_build_history WHERE name = ? ORDER BY id DESC'),
    addRequest: db.prepare(
      "INSERT INTO kappa_requests (view, action, from_spec, created_at, state) VALUES (?, ?, ?, ?, 'pending')",
    ),
    anyPending: db.prepare("SELECT 1 FROM kappa_requests WHERE state = 'pending' LIMIT 1"),
    pending: db.prepare("SELECT * FROM kappa_requests WHERE state = 'pending' ORDER BY id"),
    answer: db.prepare('UPDATE kappa_requests SET state = ?, message = ?, version = ? WHERE id = ?'),
    request: db.prepare('SELECT * FROM kappa_requests WHERE id = ?'),
    outputCheckpoints: db.prepare(
      'SELECT topic, "partition", "offset", sequences, watermark FROM kappa_output_checkpoints ' +
        'WHERE output = ? ORDER BY topic, "partition"',
    ),
    outputs: db.prepare('SELECT DISTINCT output FROM kappa_output_checkpoints ORDER BY output'),
    outputCheckpoint: db.prepare(
      'SELECT "offset" FROM kappa_output_checkpoints WHERE output = ? AND topic = ? AND "partition" = ?',
    ),
    resetOutputSource: db.prepare(
      `UPDATE kappa_output_checkpoints SET "offset" = 0, watermark = ${NO_EVENT_TIME} WHERE output = ? AND topic = ?`,
    ),
    // The WHERE makes a backwards checkpoint change nothing (changes = 0), which is then refused.
    saveOutputCheckpoint: db.prepare(
      'INSERT INTO kappa_output_checkpoints (output, topic, "partition", "offset", sequences, watermark) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (output, topic, "partition") ' +
        'DO UPDATE SET "offset" = excluded."offset", sequences = excluded.sequences, watermark = excluded.watermark ' +
        'WHERE excluded."offset" >= kappa_output_checkpoints."offset"',
    ),
  };
}

function requestOf(r: RequestRow): ViewRequest {
  return {
    id: r.id,
    view: r.view,
    action: r.action,
    from: r.from_spec,
    createdAtMs: r.created_at,
    state: r.state,
    message: r.message,
    version: r.version,
  };
}
