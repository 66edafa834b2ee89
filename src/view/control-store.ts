/**
 * The `ControlStore` port: what the engine keeps about its own work, apart from view rows, and how
 * other processes talk to a running engine. Adapters: SQLite (the same database file as the view
 * store, `view/sqlite/`); PostgreSQL later. Contract suite: `test/contract/control-store.contract.ts`.
 *
 * Promises every adapter keeps:
 * - code saved for a version is returned unchanged until the version is forgotten;
 * - a build record is upserted by (view, version), listed until deleted, and survives a restart;
 * - a request is taken by exactly one caller of `takeRequests` (taken in the same transaction that
 *   reads it), oldest first, and then answered once;
 * - an output checkpoint never moves backwards (a save with a smaller offset is refused), except
 *   through `resetOutputSource`, the one deliberate way back to offset 0 (its sequences are kept);
 * - the build history of a view lists recorded builds newest first, at most BUILD_HISTORY_MAX.
 */
import type { TaskFence } from './leases.ts';
import type { BuildInfo, BuildReason, OutputCheckpoint, ViewRequest, ViewRequestAction } from './types.ts';

/** How many finished builds are kept per view; older ones are forgotten as new ones are recorded. */
export const BUILD_HISTORY_MAX = 50;

/**
 * One finished build of a view: how it ended, how long it took, and why it was made. Kept (the
 * newest BUILD_HISTORY_MAX per view) so `kappa views`, `GET /v1/views/:view/builds` and the
 * dashboard can show what happened after the build record itself is gone.
 */
export interface BuildHistoryEntry {
  name: string;
  version: number;
  reason: BuildReason;
  /** Where the replay started: 'earliest', '@' and an ISO time, or 'checkpoints' (a rollback). */
  from: string;
  /** What changed in the logic, in words ('the filter changed', 'none: the same logic, replayed'); null if not known. */
  change: string | null;
  /** Records read by the build, summed over the source partitions. */
  events: number;
  startedAtMs: number;
  endedAtMs: number;
  durationMs: number;
  /** 'live': the version went live; 'cancelled': stopped by a cancel; 'failed': the engine failed during the build. */
  result: 'live' | 'cancelled' | 'failed';
  message: string | null;
}

export interface ControlStore {
  /**
   * Upserts an output pipeline's checkpoint (outputs have no table); refused if its offset would go
   * backwards. With a `fence` (./leases.ts), it commits only while the task's epoch is still the
   * fence's, else fails with KAPPA_FENCED and changes nothing. The SQLite adapter ignores it: one
   * process owns an embedded data dir, so there is no other owner to fence out.
   */
  saveOutputCheckpoint(output: string, checkpoint: OutputCheckpoint, fence?: TaskFence): Promise<void>;
  /** Every checkpoint of an output pipeline, by source topic and partition. */
  outputCheckpoints(output: string): Promise<OutputCheckpoint[]>;
  /** Names of the output pipelines that have saved a checkpoint. */
  outputs(): Promise<string[]>;
  /**
   * Moves an output's position in `topic` back to offset 0 in every partition (after the topic was
   * deleted, so a topic created again under that name is read from its first record), keeping the
   * sequences: the output's next records continue its numbering in the target topic, so the log
   * does not take them for re-sent ones. Changes nothing if the output has no position in `topic`.
   * Async like every method of the port (a PostgreSQL adapter cannot answer synchronously).
   */
  resetOutputSource(output: string, topic: string): Promise<void>;
  /** Keeps the code a version's logic came from (the bundled config), so it can run again after the config changed. */
  saveCode(name: string, version: number, code: string): Promise<void>;
  /** The code saved for a version; null if none was (versions made before Kappa kept it). */
  code(name: string, version: number): Promise<string | null>;
  /** Upserts a build's record (see BuildInfo). */
  saveBuild(build: BuildInfo): Promise<void>;
  builds(): Promise<BuildInfo[]>;
  deleteBuild(name: string, version: number): Promise<void>;
  /** Saves a pending request for the engine; returns its id. */
  addRequest(view: string, action: ViewRequestAction, from: string | null): Promise<number>;
  /** The pending requests, oldest first, marked 'taken' in the same transaction (so one engine takes each). */
  takeRequests(): Promise<ViewRequest[]>;
  answerRequest(id: number, state: 'done' | 'failed', message: string, version: number | null): Promise<void>;
  request(id: number): Promise<ViewRequest | null>;
  /** Records a finished build; the oldest beyond BUILD_HISTORY_MAX for that view are forgotten in the same transaction. */
  recordBuild(entry: BuildHistoryEntry): Promise<void>;
  /** The finished builds of a view, newest first. */
  buildHistory(name: string): Promise<BuildHistoryEntry[]>;
  /** Forgets what is kept for a version (its code and build record); nothing happens if there is none. */
  forgetVersion(name: string, version: number): Promise<void>;
  close(): Promise<void>;
}
