/**
 * The `TaskLeases` port: which Kappa process runs which task when several share one log and one
 * store (`kappa start --log kafka://… --store postgres://…` on several machines), and the fence
 * that keeps a replaced owner from committing. Adapter: PostgreSQL (`view/postgres/task-leases.ts`,
 * the store's `leases`), in the same database as the views and checkpoints, so the fence is checked
 * in the flush transaction itself. The embedded default (one process holding the data dir's lock)
 * needs none. Every time (heartbeats, lease ends) is the store's clock, never a caller's, so
 * processes whose clocks disagree still agree on who is live and whose lease ran out.
 * Contract suite: `test/contract/task-leases.contract.ts`.
 *
 * A task is one (view version, source partition) or one (output, source partition), named by a
 * `TaskId` string the engine builds (`taskId` below). Each task has one row: its owner, its
 * epoch, and the time its lease runs out. Members (processes) have rows too, refreshed by
 * `heartbeat`; a member whose heartbeat is older than its TTL is dead for everyone.
 *
 * The fencing argument: a process that takes a task bumps the task's epoch in its own committed
 * transaction (`acquire`), and only then reads the task's checkpoint and seeks the log. Every
 * flush of the task runs, inside its one store transaction, `UPDATE … WHERE task = $t AND epoch =
 * $mine` first, and rolls back (KAPPA_FENCED) when that touches no row. So once a new owner has
 * its epoch, nothing the old owner does can commit — a zombie after a long GC pause or a network
 * split included — and the new owner starts from a checkpoint no later commit can move.
 *
 * Promises every adapter keeps:
 * - `acquire` succeeds only when the task has no owner, its owner is the caller, its owner's lease
 *   ran out, or its owner is no longer a live member; it then returns an epoch larger than any the
 *   task had, committed before it resolves;
 * - two callers racing for the same task: exactly one gets it;
 * - `renew` extends only leases whose epoch still matches, and reports the others as lost;
 * - `release` gives a task up only for the owner at that epoch (the next `acquire` by anyone succeeds);
 * - `leave` removes the member and releases every task it owned;
 * - a fence (see `TaskFence`) given to a store write fails that write whole (KAPPA_FENCED) once
 *   the task's epoch has moved past it.
 */

/** A task's name: `view:<name>:<version>:<topic>:<partition>` or `output:<name>:<topic>:<partition>`. */
export type TaskId = string;

export function taskId(
  kind: 'view' | 'output',
  name: string,
  version: number | null,
  topic: string,
  partition: number,
): TaskId {
  return kind === 'view' ? `view:${name}:${version}:${topic}:${partition}` : `output:${name}:${topic}:${partition}`;
}

/** Given to a store write (a flush, an output checkpoint) so it commits only while the caller still owns the task. */
export interface TaskFence {
  task: TaskId;
  epoch: number;
}

/** One Kappa process sharing the work. */
export interface Member {
  /** Unique per process run (host, pid and a random suffix). */
  id: string;
  host: string;
  pid: number;
  /** The process's HTTP API, for `kappa lag` and the dashboard to show (null when it has none). */
  httpUrl: string | null;
  startedAtMs: number;
  /** Last heartbeat, ms since the epoch (set by the store's clock on `heartbeat`). */
  heartbeatAtMs: number;
  /** The session timeout the member runs with (the TTL of its last heartbeat), ms. */
  ttlMs: number;
  /** Whether its last heartbeat is within its TTL, by the store's clock (what every member goes by). */
  live: boolean;
}

/** A member as it introduces itself on `heartbeat` (the store sets the rest). */
export type MemberInfo = Omit<Member, 'heartbeatAtMs' | 'ttlMs' | 'live'>;

/** A task's row. */
export interface TaskLease {
  task: TaskId;
  /** The member that holds it, or null when released or never taken. */
  owner: string | null;
  epoch: number;
  /** When the owner's lease runs out, ms since the epoch (0 when there is no owner). */
  expiresAtMs: number;
}

export interface TaskLeases {
  /**
   * Registers the member or refreshes its heartbeat; resolves to the live members (heartbeat
   * within `ttlMs` of the store's clock), sorted by id, this one included.
   */
  heartbeat(member: MemberInfo, ttlMs: number): Promise<Member[]>;
  /** Removes the member and releases every task it owns. */
  leave(memberId: string): Promise<void>;
  /**
   * Takes the task for `memberId` for `leaseMs` if it is free (see the promises above); resolves
   * to the new epoch, or null when another live member holds it.
   */
  acquire(task: TaskId, memberId: string, leaseMs: number): Promise<number | null>;
  /** Extends the leases the member holds at these epochs; resolves to the tasks it no longer holds. */
  renew(memberId: string, held: readonly TaskFence[], leaseMs: number): Promise<TaskId[]>;
  /**
   * Gives the task up (only if `memberId` holds it at `epoch`); resolves to whether it did, false
   * when another member (or a later epoch) holds it.
   */
  release(task: TaskId, memberId: string, epoch: number): Promise<boolean>;
  /** Every task row, sorted by task. */
  leases(): Promise<TaskLease[]>;
  /** Every member row, live or not, sorted by id (for `kappa lag` and the dashboard). */
  members(): Promise<Member[]>;
}
