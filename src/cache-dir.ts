/**
 * Kappa's cache directory: one per user under os.tmpdir(), created private (0700), for what a
 * start can reuse from an earlier one (the worker threads' bundle of Kappa's code, a config's type
 * check). If it cannot be made, or is not private and ours (another user could have planted files
 * there), nothing is kept and nothing is read from it.
 */
import { lstatSync, mkdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** This user's cache directory under `root`, private; null if it cannot be made so. */
export function privateCacheDir(root: string = tmpdir()): string | null {
  const uid = process.getuid?.() ?? null;
  const dir = join(root, `kappa-cache-${uid ?? 'user'}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) return null;
    if (uid !== null && (st.uid !== uid || (st.mode & 0o077) !== 0)) return null;
    return dir;
  } catch {
    return null;
  }
}

/** Writes `path` by a rename, so that a reader never sees it half written. */
export function writeAtomically(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}
