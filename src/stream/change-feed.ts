/**
 * The engine's change feed: who is told, after each commit, what changed in the serving layer
 * (the server's change streams listen here). A listener that throws is logged and the others are
 * still told: a commit has happened whatever a listener does.
 */
import type { Logger } from '../log/index.ts';

/**
 * What changed in the serving layer, told after it committed: rows of a live version (by group
 * key; read them from the store), or a version going live (the public view now reads another table).
 */
export type ViewChange =
  | { kind: 'rows'; view: string; version: number; keyNames: string[]; keys: (string | number | null)[][] }
  | { kind: 'live'; view: string; version: number };

export class ChangeFeed {
  private readonly listeners = new Set<(change: ViewChange) => void>();

  constructor(private readonly logger: Logger) {}

  /** Whether anyone listens: a flush builds the list of changed keys only then. */
  get listening(): boolean {
    return this.listeners.size > 0;
  }

  /** Calls `listener` after each commit that changes what queries see; returns the unsubscribe function. */
  subscribe(listener: (change: ViewChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: ViewChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.logger.warn(`a change listener failed: ${(err as Error).message}`);
      }
    }
  }
}
