/**
 * The PostgreSQL adapter of the `TaskLeases` port (../leases.ts), on `kappa_members` and
 * `kappa_task_leases` (layout in ./schema.ts), in the database that holds the views, so a flush's
 * fence is checked inside the flush's own transaction (./flush.ts).
 *
 * Every time is PostgreSQL's (now()), never a caller's, so processes whose clocks disagree still
 * agree on whose lease has run out and which member is dead. A member is live while
 * `heartbeat_at + ttl_ms > now()` (the TTL it gave with its last heartbeat).
 *
 * `acquire` is one INSERT … ON CONFLICT DO UPDATE … WHERE <free> RETURNING epoch, committed on its
 * own before it resolves: the task's row is locked by whichever of two racing callers gets there
 * first, the other then re-checks the WHERE against the row the first committed (now owned by a
 * live member) and gets no row back, so exactly one of them wins. A flush holding the fence's row
 * lock makes `acquire` wait for its commit, so the new owner reads every checkpoint committed
 * under the old epoch, and nothing under the old epoch commits after.
 */
import { KappaError } from '../../errors.ts';
import type { Member, MemberInfo, TaskFence, TaskId, TaskLease, TaskLeases } from '../leases.ts';
import type { Connections } from './pool.ts';

/** A lease or a TTL longer than a day is surely a unit mistake (seconds for ms). */
const DURATION_MS_MAX = 24 * 60 * 60 * 1000;
const MS = "interval '1 millisecond'";
const EPOCH_MS = (column: string): string => `(extract(epoch FROM ${column}) * 1000)::bigint`;

interface MemberRow {
  id: string;
  host: string;
  pid: number;
  http_url: string | null;
  started_at: number;
  heartbeat_ms: number;
  ttl_ms: number;
  live: boolean;
}

const MEMBER_COLUMNS = `id, host, pid, http_url, started_at, ${EPOCH_MS('heartbeat_at')} AS heartbeat_ms, ttl_ms, heartbeat_at + ttl_ms * ${MS} > now() AS live`;

export class PostgresTaskLeases implements TaskLeases {
  constructor(private readonly db: Connections) {}

  async heartbeat(member: MemberInfo, ttlMs: number): Promise<Member[]> {
    this.db.checkOpen();
    checkMember(member);
    checkDuration('ttlMs', ttlMs);
    return this.db.tx(`record the heartbeat of member ${member.id}`, async (c) => {
      await c.query(
        'INSERT INTO kappa_members (id, host, pid, http_url, started_at, ttl_ms, heartbeat_at) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (id) DO UPDATE SET host = excluded.host, ' +
          'pid = excluded.pid, http_url = excluded.http_url, started_at = excluded.started_at, ' +
          'ttl_ms = excluded.ttl_ms, heartbeat_at = excluded.heartbeat_at',
        [member.id, member.host, member.pid, member.httpUrl, member.startedAtMs, ttlMs],
      );
      const live = await c.query<MemberRow>(
        `SELECT ${MEMBER_COLUMNS} FROM kappa_members WHERE heartbeat_at + $1 * ${MS} > now() ORDER BY id COLLATE "C"`,
        [ttlMs],
      );
      return live.rows.map(memberOf);
    });
  }

  async leave(memberId: string): Promise<void> {
    this.db.checkOpen();
    checkId('member id', memberId);
    await this.db.tx(`remove member ${memberId}`, async (c) => {
      await c.query('UPDATE kappa_task_leases SET owner = NULL, expires_at = NULL WHERE owner = $1', [memberId]);
      await c.query('DELETE FROM kappa_members WHERE id = $1', [memberId]);
    });
  }

  async acquire(task: TaskId, memberId: string, leaseMs: number): Promise<number | null> {
    this.db.checkOpen();
    checkId('task', task);
    checkId('member id', memberId);
    checkDuration('leaseMs', leaseMs);
    const result = await this.db.run<{ epoch: number }>(
      `acquire task ${task} for member ${memberId}`,
      `INSERT INTO kappa_task_leases AS l (task, owner, epoch, expires_at) VALUES ($1, $2, 1, now() + $3 * ${MS}) ` +
        'ON CONFLICT (task) DO UPDATE SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at ' +
        'WHERE l.owner IS NULL OR l.owner = excluded.owner OR l.expires_at <= now() OR NOT EXISTS ' +
        `(SELECT 1 FROM kappa_members m WHERE m.id = l.owner AND m.heartbeat_at + m.ttl_ms * ${MS} > now()) ` +
        'RETURNING epoch',
      [task, memberId, leaseMs],
    );
    return result.rows[0]?.epoch ?? null;
  }

  async renew(memberId: string, held: readonly TaskFence[], leaseMs: number): Promise<TaskId[]> {
    this.db.checkOpen();
    checkId('member id', memberId);
    checkDuration('leaseMs', leaseMs);
    if (!Array.isArray(held)) throw invalid('held must be an array of { task, epoch }.');
    for (const f of held) {
      checkId('task', f?.task);
      if (!Number.isSafeInteger(f.epoch) || f.epoch < 1)
        throw invalid(`The epoch of task ${f.task} must be a whole number from 1.`);
    }
    if (held.length === 0) return [];
    const renewed = await this.db.run<{ task: string }>(
      `renew the leases of member ${memberId}`,
      `UPDATE kappa_task_leases AS l SET expires_at = now() + $2 * ${MS} ` +
        'FROM unnest($3::text[], $4::bigint[]) AS h(task, epoch) ' +
        'WHERE l.task = h.task AND l.epoch = h.epoch AND l.owner = $1 RETURNING l.task',
      [memberId, leaseMs, held.map((f) => f.task), held.map((f) => f.epoch)],
    );
    const kept = new Set(renewed.rows.map((r) => r.task));
    return [...new Set(held.map((f) => f.task))].filter((t) => !kept.has(t));
  }

  async release(task: TaskId, memberId: string, epoch: number): Promise<boolean> {
    this.db.checkOpen();
    checkId('task', task);
    checkId('member id', memberId);
    const released = await this.db.run(
      `release task ${task}`,
      'UPDATE kappa_task_leases SET owner = NULL, expires_at = NULL WHERE task = $1 AND owner = $2 AND epoch = $3',
      [task, memberId, epoch],
    );
    return released.rowCount === 1;
  }

  async leases(): Promise<TaskLease[]> {
    this.db.checkOpen();
    const rows = await this.db.run<{ task: string; owner: string | null; epoch: number; expires_ms: number | null }>(
      'list the task leases',
      `SELECT task, owner, epoch, ${EPOCH_MS('expires_at')} AS expires_ms FROM kappa_task_leases ORDER BY task COLLATE "C"`,
    );
    return rows.rows.map((r) => ({
      task: r.task,
      owner: r.owner,
      epoch: r.epoch,
      expiresAtMs: r.owner === null ? 0 : (r.expires_ms ?? 0),
    }));
  }

  async members(): Promise<Member[]> {
    this.db.checkOpen();
    const rows = await this.db.run<MemberRow>(
      'list the members',
      `SELECT ${MEMBER_COLUMNS} FROM kappa_members ORDER BY id COLLATE "C"`,
    );
    return rows.rows.map(memberOf);
  }
}

function memberOf(r: MemberRow): Member {
  return {
    id: r.id,
    host: r.host,
    pid: r.pid,
    httpUrl: r.http_url,
    startedAtMs: r.started_at,
    heartbeatAtMs: r.heartbeat_ms,
    ttlMs: r.ttl_ms,
    live: r.live,
  };
}

function checkMember(m: MemberInfo): void {
  if (m === null || typeof m !== 'object') throw invalid('A member must be an object.');
  checkId('member id', m.id);
  if (typeof m.host !== 'string') throw invalid(`The host of member ${m.id} must be a string.`);
  if (!Number.isSafeInteger(m.pid) || m.pid < 0 || m.pid > 0x7fffffff)
    throw invalid(`The pid of member ${m.id} must be a whole number.`);
  if (m.httpUrl !== null && typeof m.httpUrl !== 'string')
    throw invalid(`The HTTP URL of member ${m.id} must be a string or null.`);
  if (!Number.isSafeInteger(m.startedAtMs))
    throw invalid(`The start time of member ${m.id} must be ms since the epoch.`);
}

function checkId(what: string, id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 512 || id.includes('\u0000'))
    throw invalid(`A ${what} must be a non-empty string of at most 512 characters (got ${JSON.stringify(id)}).`);
}

function checkDuration(what: string, ms: unknown): void {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1 || ms > DURATION_MS_MAX)
    throw invalid(`${what} must be a whole number of ms from 1 to ${DURATION_MS_MAX} (got ${String(ms)}).`);
}

function invalid(message: string): KappaError {
  return new KappaError('KAPPA_INVALID_ARGUMENT', message, {});
}
