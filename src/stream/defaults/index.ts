/**
 * Defaults the CLI shows in its help. This module imports nothing, so that `kappa --help` can read
 * them without loading the engine.
 */

/**
 * Default cap on a worker's old generation. A worker's live data is small and bounded (its tasks'
 * dirty rows, at most `dirtyRowsMax` each, and the code), but V8 sizes its collection schedule by
 * the heap limit: with the default limit (a share of the machine's memory) each worker's heap grew
 * to about 60 MB of rows already sent, waiting for a major GC. Capped at 256 MB, peak RSS on the
 * process bench's 10,000-key view with 2 workers fell from 321-348 MiB to about 265, at the same
 * events/s (160 MB: 259 MiB; 512 MB: 273 MiB). A worker that truly needs more fails with
 * KAPPA_WORKER_FAILED saying so; `kappa start --worker-heap-mb` raises the cap.
 */
export const WORKER_HEAP_MB_DEFAULT = 256;
