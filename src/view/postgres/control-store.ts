/**
 * The PostgreSQL side of the `ControlStore` port (../control-store.ts): output checkpoints, saved
 * code, build records, the build history and requests between processes (layout in ./schema.ts),
 * in the same database as the views, so `dropVersion` forgets a version's code and build in the
 * transaction that drops its table (`forgetInTx`).
 *
 * View names are compared case-insensitively (stored lower-cased in the key columns), as SQLite's
 * NOCASE columns do; text is ordered bytewise (COLLATE "C"), as SQLite orders it, whatever the
 * database's locale.
 *
 * Requests between processes: `takeRequests` marks the pending rows 'taken' in one statement that
 * selects them `FOR UPDATE SKIP LOCKED`, so two engines taking at once never take the same request
 * (a row one of them has locked is skipped by the other, and taken rows are no longer pending).
 *
 * Output checkpoints never move backwards (the upsert's WHERE makes a backwards save change
 * nothing, which is then refused), and take a fence like a flush (../leases.ts).
 */
import type pg from 'pg';
import { InvariantError } from '../../assert.ts';
import { KappaError } from '../../errors.ts';
import { BUILD_HISTORY_MAX, type BuildHistoryEntry, type ControlStore } from '../control-store.ts';
import { checkVersion, checkViewName } from '../definition.ts';
import type { TaskFence } from '../leases.ts';
import type { BuildInfo, OutputCheckpoint, ViewRequest, ViewRequestAction } from '../types.ts';
import { applyFence, checkFence, prepared } from './flush.ts';
import type { Connections } from './pool.ts';

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

/** An output checkpoint's watermark when none was saved (the engine's NO_WATERMARK). */
const NO_EVENT_TIME = -8.64e15;

const SAVE_OUTPUT_CHECKPOINT =
  'INSERT INTO kappa_output_checkpoints (output, topic, "partition", "offset", sequences, watermark) ' +
  'VALUES ($1, $2, $3, $4, $5, $6) ' +
  'ON CONFLICT (output, topic, "partition") DO UPDATE SET "offset" = excluded."offset", sequences = excluded.sequences, ' +
  'watermark = excluded.watermark ' +
  'WHERE excluded."offset" >= kappa_output_checkpoints."offset"';

/** Every method of the port but `close`: the store that holds the connections closes them. */
export class PostgresControlStore implements Omit<ControlStore, 'close'> {
  constructor(
    private readonly db: Connections,
    private readonly clock: { now(): number },
  ) {}

  async saveOutputCheckpoint(output: string, cp: OutputCheckpoint, fence?: TaskFence): Promise<void> {
    this.db.checkOpen();
    checkViewName(output);
    checkOutputCheckpoint(output, cp);
    if (fence !== undefined) checkFence(fence);
    const action = `save the checkpoint of output "${output}"`;
    const save = async (c: pg.PoolClient): Promise<void> => {
      if (fence !== undefined) await applyFence(c, fence, action);
      const result = await c.query(
        prepared(SAVE_OUTPUT_CHECKPOINT, [
          output,
          cp.topic,
          cp.partition,
          cp.offset,
          cp.sequences,
          cp.watermark ?? NO_EVENT_TIME,
        ]),
      );
      if (result.rowCount === 1) return;
      const stored = await c.query<{ offset: number }>(
        'SELECT "offset" AS offset FROM kappa_output_checkpoints WHERE output = $1 AND topic = $2 AND "partition" = $3',
        [output, cp.topic, cp.partition],
      );
      throw new InvariantError(
        `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} would go backwards ` +
          `(offset ${stored.rows[0]?.offset} → ${cp.offset}). Two tasks may be writing the same partition.`,
      );
    };
    // Unlike a flush's deltas, a checkpoint saved twice is the same checkpoint: a save cut off
    // with the connection (its outcome unknown) may simply be sent again (./in-doubt.ts).
    if (fence === undefined) await this.db.withClient(this.db.writer, action, save);
    else await this.db.tx(action, save);
  }

  async outputCheckpoints(output: string): Promise<OutputCheckpoint[]> {
    this.db.checkOpen();
    checkViewName(output);
    const rows = await this.db.run<OutputCheckpoint>(
      `read the checkpoints of output "${output}"`,
      'SELECT topic, "partition" AS partition, "offset" AS offset, sequences, watermark FROM kappa_output_checkpoints ' +
        'WHERE output = $1 ORDER BY topic COLLATE "C", "partition"',
      [output],
    );
    return rows.rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      sequences: r.sequences,
      ...(r.watermark === NO_EVENT_TIME ? {} : { watermark: r.watermark }),
    }));
  }

  async outputs(): Promise<string[]> {
    this.db.checkOpen();
    const rows = await this.db.run<{ output: string }>(
      'list the outputs',
      'SELECT output FROM kappa_output_checkpoints GROUP BY output ORDER BY output COLLATE "C"',
    );
    return rows.rows.map((r) => r.output);
  }

  async resetOutputSource(output: string, topic: string): Promise<void> {
    this.db.checkOpen();
    checkViewName(output);
    await this.db.run(
      `reset the position of output "${output}" in topic "${topic}"`,
      `UPDATE kappa_output_checkpoints SET "offset" = 0, watermark = ${NO_EVENT_TIME} WHERE output = $1 AND topic = $2`,
      [output, topic],
    );
  }

  async saveCode(name: string, version: number, code: string): Promise<void> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    if (typeof code !== 'string' || code.length === 0) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `The code of view "${name}" v${version} must be a non-empty string.`,
        { view: name, version },
      );
    }
    await this.db.run(
      `save the code of view "${name}" v${version}`,
      'INSERT INTO kappa_view_code (name, version, code) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (name, version) DO UPDATE SET code = excluded.code',
      [name.toLowerCase(), version, code],
    );
  }

  async code(name: string, version: number): Promise<string | null> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    const rows = await this.db.run<{ code: string }>(
      `read the code of view "${name}" v${version}`,
      'SELECT code FROM kappa_view_code WHERE name = $1 AND version = $2',
      [name.toLowerCase(), version],
    );
    return rows.rows[0]?.code ?? null;
  }

  async saveBuild(build: BuildInfo): Promise<void> {
    this.db.checkOpen();
    checkViewName(build.name);
    checkVersion(build.version);
    await this.db.run(
      `save the build of view "${build.name}" v${build.version}`,
      'INSERT INTO kappa_builds (name, version, info_json) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (name, version) DO UPDATE SET info_json = excluded.info_json',
      [build.name.toLowerCase(), build.version, JSON.stringify(build)],
    );
  }

  async builds(): Promise<BuildInfo[]> {
    this.db.checkOpen();
    const rows = await this.db.run<{ info_json: string }>(
      'list the builds',
      'SELECT info_json FROM kappa_builds ORDER BY name COLLATE "C", version',
    );
    return rows.rows.map((r) => JSON.parse(r.info_json) as BuildInfo);
  }

  async deleteBuild(name: string, version: number): Promise<void> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.db.run(
      `delete the build of view "${name}" v${version}`,
      'DELETE FROM kappa_builds WHERE name = $1 AND version = $2',
      [name.toLowerCase(), version],
    );
  }

  async recordBuild(entry: BuildHistoryEntry): Promise<void> {
    this.db.checkOpen();
    checkViewName(entry.name);
    checkVersion(entry.version);
    if (!['live', 'cancelled', 'failed'].includes(entry.result))
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `A build ends live, cancelled or failed, not "${String(entry.result)}".`,
        {
          view: entry.name,
          version: entry.version,
        },
      );
    const name = entry.name.toLowerCase();
    await this.db.tx(`record the build of view "${entry.name}" v${entry.version}`, async (c) => {
      await c.query('INSERT INTO kappa_build_history (name, entry_json) VALUES ($1, $2)', [
        name,
        JSON.stringify(entry),
      ]);
      await c.query(
        'DELETE FROM kappa_build_history WHERE name = $1 AND id NOT IN ' +
          '(SELECT id FROM kappa_build_history WHERE name = $1 ORDER BY id DESC LIMIT $2)',
        [name, BUILD_HISTORY_MAX],
      );
    });
  }

  async buildHistory(name: string): Promise<BuildHistoryEntry[]> {
    this.db.checkOpen();
    checkViewName(name);
    const rows = await this.db.run<{ entry_json: string }>(
      `read the build history of view "${name}"`,
      'SELECT entry_json FROM kappa_build_history WHERE name = $1 ORDER BY id DESC',
      [name.toLowerCase()],
    );
    return rows.rows.map((r) => JSON.parse(r.entry_json) as BuildHistoryEntry);
  }

  async forgetVersion(name: string, version: number): Promise<void> {
    this.db.checkOpen();
    checkViewName(name);
    checkVersion(version);
    await this.db.tx(`forget the code and build of view "${name}" v${version}`, (c) =>
      this.forgetInTx(c, name, version),
    );
  }

  /** Deletes a version's code and build record inside the caller's transaction. */
  async forgetInTx(c: pg.PoolClient, name: string, version: number): Promise<void> {
    await c.query('DELETE FROM kappa_view_code WHERE name = $1 AND version = $2', [name.toLowerCase(), version]);
    await c.query('DELETE FROM kappa_builds WHERE name = $1 AND version = $2', [name.toLowerCase(), version]);
  }

  async addRequest(view: string, action: ViewRequestAction, from: string | null): Promise<number> {
    this.db.checkOpen();
    checkViewName(view);
    if (!['replay', 'rollback', 'cancel'].includes(action)) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `Unknown request "${String(action)}": use replay, rollback or cancel.`,
        {
          action,
        },
      );
    }
    const rows = await this.db.run<{ id: number }>(
      `request ${action} of view "${view}"`,
      "INSERT INTO kappa_requests (view, action, from_spec, created_at, state) VALUES ($1, $2, $3, $4, 'pending') RETURNING id",
      [view, action, from, this.clock.now()],
    );
    return rows.rows[0].id;
  }

  async takeRequests(): Promise<ViewRequest[]> {
    this.db.checkOpen();
    const rows = await this.db.run<RequestRow>(
      'take the pending requests',
      "UPDATE kappa_requests SET state = 'taken' WHERE id IN " +
        "(SELECT id FROM kappa_requests WHERE state = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING *",
    );
    return rows.rows.map(requestOf).sort((a, b) => a.id - b.id);
  }

  async answerRequest(id: number, state: 'done' | 'failed', message: string, version: number | null): Promise<void> {
    this.db.checkOpen();
    await this.db.run(
      `answer request ${id}`,
      'UPDATE kappa_requests SET state = $1, message = $2, version = $3 WHERE id = $4',
      [state, message, version, id],
    );
  }

  async request(id: number): Promise<ViewRequest | null> {
    this.db.checkOpen();
    if (!Number.isSafeInteger(id)) return null;
    const rows = await this.db.run<RequestRow>(`read request ${id}`, 'SELECT * FROM kappa_requests WHERE id = $1', [
      id,
    ]);
    return rows.rows[0] === undefined ? null : requestOf(rows.rows[0]);
  }
}

function checkOutputCheckpoint(output: string, cp: OutputCheckpoint): void {
  if (!Number.isSafeInteger(cp.offset) || cp.offset < 0 || !Number.isInteger(cp.partition) || cp.partition < 0) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} has an invalid offset ${cp.offset}`,
    );
  }
  if (!Array.isArray(cp.sequences) || !cp.sequences.every((q) => Number.isInteger(q) && q >= 0 && q < 2 ** 31)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `checkpoint of output "${output}" for ${cp.topic}/${cp.partition} has invalid sequences ` +
        JSON.stringify(cp.sequences),
    );
  }
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
