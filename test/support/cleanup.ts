/**
 * What a test leaves behind is undone when it ends, pass or fail, in the reverse order it was made.
 *
 *   defer(t, fn)      runs `fn` when test (or suite) `t` ends, after everything deferred later
 *   tempDir(t, prefix) a fresh directory under the OS temp dir, removed when `t` ends
 *
 * node:test runs `t.after` hooks first-registered-first: a temp dir registered before the log that
 * lives in it would be removed while the log is still open. So everything here goes through one
 * after-hook per owner that runs the deferred work last-in-first-out (a stack, like `defer` in Go):
 * the log opened in the temp dir is closed before the dir is removed. Every step runs even if an
 * earlier one throws; the first error is rethrown at the end.
 *
 * An owner is a test's context `t`, or for a whole suite an object holding node:test's `after`
 * (`const suite = { after }` in the describe body, passed as the same object every time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What owns a resource: a test context (node:test's `t`), whose `after` hooks run when it ends. */
export interface Owner {
  after(fn: () => unknown): void;
}

const stacks = new WeakMap<Owner, (() => unknown)[]>();

/** Runs `fn` when `t` ends, before anything deferred earlier on the same owner. */
export function defer(t: Owner, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (stack === undefined) {
    const mine: (() => unknown)[] = [];
    stack = mine;
    stacks.set(t, mine);
    t.after(() => unwind(mine));
  }
  stack.push(fn);
}

async function unwind(stack: (() => unknown)[]): Promise<void> {
  let first: unknown = null;
  while (stack.length > 0) {
    try {
      await stack.pop()!();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== null) throw first;
}

/** A fresh directory, removed (with everything in it) when `t` ends, after whatever was deferred later. */
export function tempDir(t: Owner, prefix = 'kappa-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
