/**
 * Fenced flushes whose outcome is unknown, and how the store ends the doubt.
 *
 * A flush that fails because the connection was lost or the server stopped answering
 * (KAPPA_STORE_UNAVAILABLE) may still have committed: its statements, COMMIT included, were sent
 * together (./pool.ts `pipelined`), and a server that was only paused or cut off reads and commits
 * them when it comes back, after the client gave up. Sending the same flush again under the same
 * epoch could then apply its deltas twice (an `add` merge counts them again, and a checkpoint may
 * be written at the same offset again).
 *
 * So the store remembers the task and epoch of such a write, and the next fenced write of that
 * task first moves the task's epoch past it (`UPDATE kappa_task_leases SET epoch = epoch + 1
 * WHERE task = $1 AND epoch = $doubtful`): from then on the lost transaction cannot commit (its
 * fence fails), if it has not already. That next write then fails as fenced itself, so its caller
 * does what it does for any fenced task: takes the task again (a new epoch) and rereads its
 * checkpoint, which holds the lost write or not, for good. The bump waits for the lost
 * transaction if the server is still running it (its fence holds the lease row's lock), which the
 * server's idle_in_transaction_session_timeout bounds (./pool.ts).
 *
 * Only flushes with deltas are in doubt this way: a flush of checkpoints alone, or an output's
 * checkpoint, written twice is the same position, so sending it again is safe. Flushes without a
 * fence (a store used by one process without leases) have no epoch to move: a caller that sends
 * one again after KAPPA_STORE_UNAVAILABLE may apply its deltas twice.
 */
import { KappaError } from '../../errors.ts';
import type { TaskFence, TaskId } from '../leases.ts';
import { FENCED_STATE } from './schema.ts';
import type { Connections } from './pool.ts';

export class InDoubtWrites {
  /** Task → the epoch of its write whose outcome is unknown. */
  private readonly epochs = new Map<TaskId, number>();

  constructor(private readonly db: Connections) {}

  /** Remembers `fence`'s flush (one with deltas) as in doubt when `err` says the connection was lost. */
  note(err: unknown, fence: TaskFence | undefined): void {
    if (fence !== undefined && err instanceof KappaError && err.code === 'KAPPA_STORE_UNAVAILABLE')
      this.epochs.set(fence.task, fence.epoch);
  }

  /**
   * Before a fenced write: if an earlier write of the task under this epoch is in doubt, moves the
   * epoch past it and throws KAPPA_FENCED (see the file comment); otherwise does nothing.
   */
  async settle(fence: TaskFence, action: string): Promise<void> {
    const doubtful = this.epochs.get(fence.task);
    if (doubtful === undefined) return;
    if (doubtful !== fence.epoch) {
      // The caller already took the task again: the doubt was ended by that acquire's new epoch.
      this.epochs.delete(fence.task);
      return;
    }
    await this.db.run(
      `end the doubt about a lost write of task ${fence.task}`,
      'UPDATE kappa_task_leases SET epoch = epoch + 1 WHERE task = $1 AND epoch = $2',
      [fence.task, doubtful],
    );
    this.epochs.delete(fence.task);
    throw new KappaError(
      'KAPPA_FENCED',
      `Could not ${action}: an earlier write of task ${fence.task} (epoch ${fence.epoch}) was cut off with the ` +
        'connection to PostgreSQL and may have committed, so the task moved to a new epoch and this write was not ' +
        'made. Take the task again and continue from its checkpoint, which says whether the lost write committed.',
      { task: fence.task, epoch: fence.epoch, sqlState: FENCED_STATE },
    );
  }
}
