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
 * - an output checkpoint never moves backwards (a save with a smaller offset is refused).
 */
import type { BuildInfo, OutputCheckpoint, ViewRequest, ViewRequestAction } from './types.ts';

export interface ControlStore {
  /** Upserts an output pipeline's checkpoint (outputs have no table); refused if its offset would go backwards. */
  saveOutputCheckpoint(output: string, checkpoint: OutputCheckpoint): Promise<void>;
  /** Every checkpoint of an output pipeline, by source topic and partition. */
  outputCheckpoints(output: string): Promise<OutputCheckpoint[]>;
  /** Names of the output pipelines that have saved a checkpoint. */
  outputs(): Promise<string[]>;
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
  /** Forgets what is kept for a version (its code and build record); nothing happens if there is none. */
  forgetVersion(name: string, version: number): Promise<void>;
  close(): Promise<void>;
}
