/**
 * Several Kappa processes sharing one log and one store (`kappa start --log kafka://… --store
 * postgres://…` on several machines). Each task — one (view version, source partition) or one
 * (output, source partition) — runs in exactly one process at a time, chosen through the store's
 * lease table (the TaskLeases port, src/view/leases.ts):
 *
 * - every `heartbeatMs` a process refreshes its member row and reads the live members;
 * - each task has a desired owner among them by rendezvous hashing (highest hash of member and
 *   task wins), so a member joining or leaving moves only about 1/N of the tasks;
 * - a process takes (`acquire`) each task it is the desired owner of once the task is free: its
 *   owner released it, left, or stopped renewing for `sessionTimeoutMs`. Taking it bumps the
 *   task's epoch; only then is its checkpoint read and the log sought, and every store write of
 *   the task carries that epoch (the fence), so an owner that was replaced — a paused process, a
 *   network split — cannot commit any more (KAPPA_FENCED);
 * - a task whose desired owner is another member is handed over: it stops reading, flushes what
 *   it folded (fenced), and releases its lease, which the other takes at its next tick;
 * - one more lease, `coordinator`, is held by whichever process got it first: that process makes
 *   the decisions about versions (builds, swaps, drops, requests, schedules: versions.ts,
 *   requests.ts) and checks from the checkpoints when a build has caught up
 *   (cluster-versions.ts). The others follow the store's catalog on every tick.
 */
import { createHash } from 'node:crypto';
import { isKappaError } from '../errors.ts';
import type { Log, Logger } from '../log/index.ts';
import { type Member, type MemberInfo, type TaskFence, type TaskId, type TaskLeases, taskId } from '../view/index.ts';
import type { Task } from './task-loop.ts';

/** The lease of the process that decides about versions. */
export const COORDINATOR_TASK = 'coordinator';

export interface ClusterOptions {
  leases: TaskLeases;
  /** This process, as the other members see it. */
  member: MemberInfo;
  /** How often a process heartbeats, renews its leases and rebalances. Default 1000 ms. */
  heartbeatMs?: number;
  /** A member that has not heartbeaten for this long is dead, and its leases can be taken. Default 10,000 ms. */
  sessionTimeoutMs?: number;
}

/** A task this process could run: its lease's name and how to open it once the lease is held. */
export interface Candidate {
  id: TaskId;
  open(fence: TaskFence, stop: AbortSignal): Promise<Task>;
}

interface Held {
  fence: TaskFence;
  task: Task | null;
  stop: AbortController;
}

export interface ClusterDeps {
  log: Log;
  logger: Logger;
  /** Every task the config and the current versions have, this process's or not. */
  candidates(): Promise<Candidate[]>;
  /** Starts a task once opened (the task loop's `start`). */
  start(task: Task): void;
  /** Flushes a stopped task (fenced) and forgets it. */
  handOver(task: Task): Promise<void>;
  /** Forgets a task without flushing (its lease was lost). */
  drop(task: Task): Promise<void>;
  /** Work done on every tick after the rebalance: following the catalog, and the coordinator's duties. */
  afterRebalance(coordinator: boolean): Promise<void>;
  fail(err: Error): void;
}

export class Cluster {
  private readonly held = new Map<TaskId, Held>();
  private coordinatorFence: TaskFence | null = null;
  private liveMembers: Member[] = [];
  private readonly loops: { timer: NodeJS.Timeout; running: () => Promise<void> }[] = [];
  private stopped = false;
  private storeGoneSinceMs: number | null = null;
  /** The coordinator epoch this process joined with (it planned the views then), or null. */
  joinEpoch: number | null = null;
  readonly heartbeatMs: number;
  readonly sessionTimeoutMs: number;

  constructor(
    private readonly opts: ClusterOptions,
    private readonly deps: ClusterDeps,
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.sessionTimeoutMs = opts.sessionTimeoutMs ?? 10_000;
  }

  get memberId(): string {
    return this.opts.member.id;
  }

  /** True while this process holds the coordinator lease. */
  get coordinator(): boolean {
    return this.coordinatorFence !== null;
  }

  /** The epoch of this process's coordinator lease (a new term each time it takes it), or null. */
  get coordinatorEpoch(): number | null {
    return this.coordinatorFence?.epoch ?? null;
  }

  /** The live members as of the last heartbeat. */
  get members(): Member[] {
    return this.liveMembers;
  }

  /** The tasks this process holds, with their epochs. */
  get fences(): TaskFence[] {
    return [...this.held.values()].map((h) => h.fence);
  }

  /** Registers this process and tries the coordinator lease; resolves to whether it got it (it then plans the versions). */
  async join(): Promise<boolean> {
    const { leases, member } = this.opts;
    this.liveMembers = await leases.heartbeat(member, this.sessionTimeoutMs);
    await this.tryCoordinator();
    this.joinEpoch = this.coordinatorEpoch;
    return this.coordinator;
  }

  /**
   * Starts two loops, each every `heartbeatMs`: the heartbeat (membership, lease renewals, the
   * coordinator lease), and the work (rebalance, then the catalog work). They are apart so that
   * opening tasks, which reads checkpoints and the log, can never hold a renewal back: on a loaded
   * machine a slow rebalance cost a process its leases.
   */
  start(): void {
    this.loops.push(
      this.every(() => this.beat()),
      this.every(() => this.tick()),
    );
  }

  /** Runs `fn` every heartbeat, never two at once; a store out of reach skips a turn, anything else fails the engine. */
  private every(fn: () => Promise<void>): { timer: NodeJS.Timeout; running: () => Promise<void> } {
    let running: Promise<void> | null = null;
    const run = (): void => {
      if (running !== null || this.stopped) return;
      running = fn()
        .then(() => this.storeBack())
        .catch((err: Error) => {
          if (this.stopped) return;
          if (isKappaError(err, 'KAPPA_STORE_UNAVAILABLE') || isKappaError(err, 'KAPPA_LOG_UNAVAILABLE'))
            return this.storeGone(err);
          this.deps.fail(err);
        })
        .finally(() => (running = null));
    };
    const timer = setInterval(run, this.heartbeatMs);
    run();
    return { timer, running: () => running ?? Promise.resolve() };
  }

  /**
   * The store (or the log: the coordinator reads it to decide about versions) cannot be reached:
   * this tick is skipped, and the next ones try again. Meanwhile the leases may run out; the tasks
   * go on folding, and once the store is back, renewing tells which of them another process took
   * (they stop) — their writes would be fenced anyway.
   */
  private storeGone(err: Error): void {
    if (this.storeGoneSinceMs !== null) return;
    this.storeGoneSinceMs = Date.now();
    const what = isKappaError(err, 'KAPPA_LOG_UNAVAILABLE') ? 'log' : 'store';
    this.deps.logger.warn(`the cluster's ${what} cannot be reached; retrying every heartbeat: ${err.message}`);
  }

  private storeBack(): void {
    if (this.storeGoneSinceMs === null) return;
    const s = ((Date.now() - this.storeGoneSinceMs) / 1000).toFixed(1);
    this.storeGoneSinceMs = null;
    this.deps.logger.info(`the cluster's store and log are back after ${s} s`);
  }

  /** Stops ticking, hands every task over (flushed, released) and leaves the membership. */
  async stop(flush: boolean): Promise<void> {
    this.stopped = true;
    for (const l of this.loops) clearInterval(l.timer);
    for (const l of this.loops) await l.running();
    // Best effort: a store out of reach keeps the leases, which run out after the session timeout.
    for (const [id, h] of [...this.held])
      await this.giveUp(id, h, flush).catch((err: Error) => this.stopFailed(id, err));
    await this.opts.leases.leave(this.opts.member.id).catch(() => {});
    this.coordinatorFence = null;
  }

  private stopFailed(id: TaskId, err: Error): void {
    this.deps.logger.warn(
      `task ${id} was not handed over (${err.message}); the other processes take it once its lease runs out`,
    );
  }

  /** The heartbeat: membership, renewals (a lease lost stops its task), and the coordinator lease when free. */
  private async beat(): Promise<void> {
    const { leases, member } = this.opts;
    this.liveMembers = await leases.heartbeat(member, this.sessionTimeoutMs);
    const renewing = this.fences.concat(this.coordinatorFence ?? []);
    const lost = new Set(await leases.renew(member.id, renewing, this.sessionTimeoutMs));
    if (this.coordinatorFence !== null && lost.has(COORDINATOR_TASK)) {
      this.deps.logger.warn(
        `this process is no longer the coordinator (another process took the lease after ${this.sessionTimeoutMs / 1000} s without a renewal)`,
      );
      this.coordinatorFence = null;
    }
    for (const [id, h] of [...this.held]) if (lost.has(id)) await this.lose(id, h);
    if (this.coordinatorFence === null) await this.tryCoordinator();
  }

  /** The work: tasks taken and handed over, then following the catalog (and the coordinator's duties). */
  private async tick(): Promise<void> {
    await this.rebalance();
    if (!this.stopped) await this.deps.afterRebalance(this.coordinator);
  }

  private async tryCoordinator(): Promise<void> {
    const epoch = await this.opts.leases.acquire(COORDINATOR_TASK, this.opts.member.id, this.sessionTimeoutMs);
    if (epoch === null) return;
    this.coordinatorFence = { task: COORDINATOR_TASK, epoch };
    this.deps.logger.info(`this process (${this.opts.member.id}) is the coordinator (epoch ${epoch})`);
  }

  /** Takes the tasks this process is the desired owner of, and hands over those it is not. */
  private async rebalance(): Promise<void> {
    const candidates = await this.deps.candidates();
    const owners = assignTasks(
      candidates.map((c) => c.id),
      this.liveMembers.map((m) => m.id),
    );
    const mine = new Map<TaskId, Candidate>();
    for (const c of candidates) if (owners.get(c.id) === this.opts.member.id) mine.set(c.id, c);
    const known = new Set(candidates.map((c) => c.id));
    for (const [id, h] of [...this.held]) {
      if (!known.has(id))
        await this.giveUp(id, h, false); // its version stopped here: nothing to flush
      else if (!mine.has(id)) await this.giveUp(id, h, true);
    }
    // A task that fails to open does not keep the others from opening; the first failure ends the tick after them.
    const failures: unknown[] = [];
    for (const [id, c] of mine) {
      if (this.held.has(id) || this.stopped) continue;
      const epoch = await this.opts.leases.acquire(id, this.opts.member.id, this.sessionTimeoutMs);
      if (epoch === null) continue; // its owner still holds it; it hands it over and releases it
      await this.take(id, c, epoch).catch((err: unknown) => failures.push(err));
    }
    if (failures.length > 0) throw failures[0];
  }

  /** Opens and starts a task whose lease this process just took at `epoch`. */
  private async take(id: TaskId, c: Candidate, epoch: number): Promise<void> {
    const h: Held = { fence: { task: id, epoch }, task: null, stop: new AbortController() };
    this.held.set(id, h);
    let task: Task;
    try {
      task = await c.open(h.fence, h.stop.signal);
    } catch (err) {
      // Opening reads the store and the log, either of which may be out of reach. Held with no
      // task, the lease would be renewed by every heartbeat while the partition ran nowhere.
      await this.abandon(id, h);
      throw err;
    }
    if (this.held.get(id) !== h) {
      // Its lease was lost (the heartbeat) or given up while it opened: it must not run here.
      await this.deps.drop(task);
      return;
    }
    h.task = task;
    this.deps.start(task);
  }

  /** Stops a task this process holds: flushed (fenced) when `flush`, then its lease released. */
  private async giveUp(id: TaskId, h: Held, flush: boolean): Promise<void> {
    if (this.held.get(id) !== h) return; // lost meanwhile (the heartbeat loop)
    this.held.delete(id);
    h.stop.abort();
    let fenced = false;
    if (h.task !== null) {
      try {
        if (flush) await this.deps.handOver(h.task);
        else await this.deps.drop(h.task);
      } catch (err) {
        if (!isKappaError(err, 'KAPPA_FENCED')) throw err;
        fenced = true;
        await this.deps.drop(h.task);
      }
    }
    // False when another process took the lease (this one was paused, or cut off, past its session).
    const released = await this.opts.leases.release(id, this.opts.member.id, h.fence.epoch);
    if (fenced || !released) this.sayMoved(id);
  }

  /**
   * A task whose opening failed: forgotten, and its lease given back (or left to run out when the
   * store cannot be reached either), so that the next rebalance, here or in another process, takes
   * it again.
   */
  private async abandon(id: TaskId, h: Held): Promise<void> {
    if (this.held.get(id) === h) this.held.delete(id);
    h.stop.abort();
    await this.opts.leases.release(id, this.opts.member.id, h.fence.epoch).catch(() => {});
  }

  /** A task whose lease another process took: stopped without a flush (its writes would be fenced anyway). */
  private async lose(id: TaskId, h: Held): Promise<void> {
    if (this.held.get(id) !== h) return; // given up meanwhile (the work loop)
    this.held.delete(id);
    h.stop.abort();
    if (h.task !== null) await this.deps.drop(h.task);
    this.sayMoved(id);
  }

  private sayMoved(id: TaskId): void {
    this.deps.logger.warn(
      `task ${id} moved to another process (this one did not renew its lease within ${this.sessionTimeoutMs / 1000} s); it stopped here without committing`,
    );
  }

  /** A task whose store write was fenced (see TaskLoopOptions.lost). */
  async fenced(task: Task): Promise<void> {
    for (const [id, h] of this.held) {
      if (h.task !== task) continue;
      await this.lose(id, h);
      return;
    }
  }
}

/**
 * Which member each task belongs on: rendezvous hashing with bounded loads. Each task ranks the
 * members by a hash of (member, task) and goes to the highest-ranked one that has fewer than
 * ceil(tasks / members) tasks, the tasks taken in a fixed order. Every member computes the same
 * answer from the same member list; a member joining or leaving moves few tasks; and no member
 * gets more than its share (plain rendezvous hashing put all 4 tasks of a 2-process cluster on
 * one process in 1 start of 8).
 */
export function assignTasks(tasks: readonly TaskId[], members: readonly string[]): Map<TaskId, string> {
  const owners = new Map<TaskId, string>();
  if (members.length === 0) return owners;
  const cap = Math.ceil(tasks.length / members.length);
  const load = new Map(members.map((m) => [m, 0]));
  for (const task of [...tasks].sort()) {
    const ranked = members
      .map((m) => ({ m, score: createHash('sha1').update(m).update('\0').update(task).digest('hex') }))
      .sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : 0));
    const owner = ranked.find((r) => load.get(r.m)! < cap)!.m;
    load.set(owner, load.get(owner)! + 1);
    owners.set(task, owner);
  }
  return owners;
}

export { taskId };
