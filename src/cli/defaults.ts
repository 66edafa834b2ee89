/**
 * The defaults `kappa --help` prints, and where the data directory keeps the view store. Kept
 * apart from the commands, which are loaded only when they run (main.ts), so that the help and the
 * light commands start without loading the engine, the server or the stores.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

// Not from src/stream/index.ts, which loads the engine: this entry holds constants and imports nothing.
export { WORKER_HEAP_MB_DEFAULT } from '../stream/defaults/index.ts';

export const KAFKA_PORT_DEFAULT = 9092;

/** The history the demo seeds at its first start: this many sales over the last day. */
export const DEFAULT_HISTORY = 2_000_000;

/** `kappa start`'s worker threads when `--workers` is not given: one per core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

/** The embedded view store (SQLite) in a data directory. */
export function storePath(dataDir: string): string {
  return join(dataDir, 'views.db');
}
