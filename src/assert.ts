/**
 * Invariants that stay on in production. A broken invariant means Kappa itself is wrong (not the
 * input): the check stops the work at once, with a message that names what was expected, rather
 * than letting a wrong offset or checkpoint reach disk. Input is validated elsewhere, with
 * KappaError and a code from the catalogue; these throw a plain Error prefixed "invariant:".
 *
 * Keep the checks cheap (a comparison per batch, not per byte): they run on hot paths.
 */

export class InvariantError extends Error {
  constructor(message: string) {
    super(`invariant: ${message}`);
    this.name = 'InvariantError';
  }
}

/** Throws an InvariantError with `message` (a string, or a function that builds it only on failure) unless `condition` holds. */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'string' ? message : message());
}

/** Offsets handed out or read back must climb: `next` must be greater than `previous`. */
export function assertIncreasing(previous: number, next: number, what: string): void {
  if (!(next > previous)) throw new InvariantError(`${what}: offset ${next} does not follow ${previous}`);
}

/** A checkpoint (or any position that is saved) never moves backwards. */
export function assertNotBackwards(stored: number, next: number, what: string): void {
  if (next < stored) throw new InvariantError(`${what} would go backwards (${stored} → ${next})`);
}
