/**
 * The gathering rule (gathering.ts) on event sequences made the way real keys arrive: spread over
 * a key space (the share of new rows falls as the task holds more), moving on with time (the
 * share stays level), and all held (no new rows).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../random.ts';
import { type Gathering, gatherStep } from './gathering.ts';

const WINDOW = 4_000;

/**
 * Feeds `keyOf(i)` for i in [0, events) to a task that flushed at time 1 and returns how many
 * events it folded before the rule said to stop gathering (or `events` if it never did).
 */
function gatheredFor(events: number, keyOf: (i: number) => string | number): number {
  const held = new Set<string | number>();
  let g: Gathering | null = null;
  for (let i = 0; i < events; i++) {
    held.add(keyOf(i));
    // A step every 50 events, as after each batch.
    if ((i + 1) % 50 === 0) {
      g = gatherStep(g, 1, i + 1, held.size, WINDOW);
      if (!g.paying) return i + 1;
    }
  }
  return events;
}

test('keys spread over a key space: gathering goes on while the events keep finding held rows', () => {
  const random = seededRandom(7);
  // 25,000 keys (6 windows of events), as the process bench's 1M-key view has 250,000 a task for
  // windows of 40,000: each window makes about 15% fewer new rows than the one before. Gathering
  // goes on at least until nine in ten keys are held (57,500 events); past that a window's few
  // new rows are noisy, and a stop only flushes the rows, nearly all of the keys.
  const stopped = gatheredFor(200_000, () => Math.floor(random() * 25_000));
  assert.ok(stopped >= 57_500, `stopped after ${stopped} events`);
});

test('keys that move on with time: gathering stops within a few windows', () => {
  const random = seededRandom(8);
  // An auction id that counts up: each event's key is one of the 100 newest, as Nexmark's bids.
  const stopped = gatheredFor(200_000, (i) => Math.floor(i / 20) + Math.floor(random() * 100));
  // The first window also makes the first 100 keys, so its share is higher; the next ones are level.
  assert.ok(stopped <= 4 * WINDOW + 50, `stopped after ${stopped} events`);
});

test('every key already held: no new rows, gathering goes on', () => {
  let g: Gathering | null = null;
  for (let offset = 0; offset <= 10 * WINDOW; offset += 100) {
    g = gatherStep(g, 1, offset, 5_000, WINDOW);
    assert.equal(g.paying, true, `at offset ${offset}`);
  }
});

test('a flush starts a new gathering, and a window is counted in events, however often asked', () => {
  let g = gatherStep(null, 1, 0, 100, WINDOW);
  g = gatherStep(g, 1, WINDOW, 1_100, WINDOW); // 0.25 new rows per event
  g = gatherStep(g, 1, 2 * WINDOW, 2_100, WINDOW); // 0.25 again: level
  assert.equal(g.paying, false);
  assert.equal(gatherStep(g, 1, 2 * WINDOW + 10, 2_110, WINDOW), g, 'mid-window: the same decision');
  const fresh = gatherStep(g, 2, 2 * WINDOW + 10, 30, WINDOW);
  assert.deepEqual(fresh, { since: 2, offset: 2 * WINDOW + 10, rows: 30, newRowsPerEvent: null, paying: true });
  const falling = gatherStep(gatherStep(fresh, 2, 3 * WINDOW + 10, 1_030, WINDOW), 2, 4 * WINDOW + 10, 1_800, WINDOW);
  assert.equal(falling.paying, true, '0.25 then 0.19 new rows per event');
});
