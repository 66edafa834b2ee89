/**
 * Whether a view's task that catches up should go on gathering its rows (task-loop.ts `step`):
 * holding more rows before a flush pays when the events it folds find rows it holds, each a row
 * write saved. Keys spread over a large key space (orders, customers, devices, in any order) find
 * more of their rows the more of them the task holds, so the share of events that make a new row
 * falls as it gathers; keys that move on with time (auctions, windows, sessions) make as many new
 * rows however many are held, and holding those only costs memory and the garbage collector's
 * time (Nexmark q4-q6 ran 20-25% slower when every task gathered for 30 s).
 *
 * So the share of new rows per event is taken over every `windowEvents` events the task folds
 * (counts, not time: the same decision on a fast machine and a slow one), and gathering goes on
 * while each window's share is below FALL × the window before's, or no new row came at all.
 */

/** A task's gathering since its last flush, as of the end of its last whole window. */
export interface Gathering {
  /** The task's last flush when this gathering began (a flush starts a new one). */
  since: number;
  /** The task's offset and rows at the end of the last window. */
  offset: number;
  rows: number;
  /** New rows per event in the last window (null: no whole window yet). */
  newRowsPerEvent: number | null;
  /** Whether to go on gathering. */
  paying: boolean;
}

/**
 * Each window must make new rows for at most this share of what the window before did per event.
 * The process bench's 1M-key view (250,000 keys a task, windows of 40,000 events) falls by about
 * 15% a window; keys that move on with time stay level within a few percent.
 */
export const FALL = 0.97;

/** The task's gathering after folding up to `offset` with `rows` rows held; `since` names its last flush. */
export function gatherStep(
  g: Gathering | null,
  since: number,
  offset: number,
  rows: number,
  windowEvents: number,
): Gathering {
  if (g === null || g.since !== since) return { since, offset, rows, newRowsPerEvent: null, paying: true };
  const events = offset - g.offset;
  if (events < windowEvents) return g;
  const share = Math.max(0, rows - g.rows) / events;
  const paying = share === 0 || g.newRowsPerEvent === null || share < g.newRowsPerEvent * FALL;
  return { since, offset, rows, newRowsPerEvent: share, paying };
}
