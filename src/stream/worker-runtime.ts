/**
 * Kappa's own code for the worker threads (its modules, TypeBox and ajv), bundled once and kept
 * between starts, so that a start bundles only the user's config (worker-bundle.ts). Bundling
 * Kappa's ~400 modules took esbuild 150-190 ms of every `kappa start` with workers, on the way to
 * the threads' first event; a config's few files take a few ms. Kappa's code does not change with
 * the user's logic, so a rebuild after a logic change gains as much as a restart.
 *
 * The kept bundle is trusted only while every file it was made from is byte for byte the same:
 * each start reads them all again (~400 files, a few ms) and compares a hash of their paths and
 * contents with the one recorded when it was built. The files are esbuild's inputs (Kappa's
 * modules and the packages bundled with them), the entry files of the packages it imports from
 * where they are installed, and the package.json of every package involved, so an upgrade, a
 * reinstall elsewhere or an edited source makes the next start bundle again.
 *
 * Where: one directory per user under os.tmpdir(), created private (0700). If it cannot be made or
 * is not private and ours (another user could have planted code there), nothing is kept and each
 * start bundles everything, as before. A bundle's file name carries its hash, so a file once
 * written never changes: two processes starting at once both write the same bytes, each by a
 * rename. Bundles of older hashes are removed once they are a while old.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { privateCacheDir, writeAtomically } from '../cache-dir.ts';

/** What a runtime build gives back: the code, and every file whose content it depends on. */
export interface RuntimeBuild {
  code: Uint8Array;
  files: string[];
}

export interface Runtime {
  /** The kept bundle's file URL, for an `import` from the config's bundle. */
  url: string;
  /** The files it was made from. */
  files: string[];
}

interface Manifest {
  hash: string;
  files: string[];
}

/** A file modified less than this before a build started may have changed under it. */
const MTIME_SLACK_MS = 2000;
/** A bundle of an older hash may still be loading in a process that started a moment ago. */
const STALE_AFTER_MS = 10 * 60_000;

/**
 * The kept runtime for `slot` (a hash of what shapes the build besides the files: paths, options,
 * esbuild's version), built with `build` when there is none or its files changed. Null when nothing
 * can be kept here (see the file comment): the caller bundles everything. `root`: where the cache
 * directory is made (tests).
 */
export async function cachedRuntime(
  slot: string,
  build: () => Promise<RuntimeBuild>,
  root: string = tmpdir(),
): Promise<Runtime | null> {
  const dir = privateCacheDir(root);
  if (dir === null) return null;
  const manifestPath = join(dir, `runtime-${slot}.json`);
  const kept = readManifest(manifestPath);
  if (kept !== null && hashFiles(kept.files) === kept.hash) {
    const file = bundlePath(dir, slot, kept.hash);
    if (existsSync(file)) return { url: pathToFileURL(file).href, files: kept.files };
  }
  const startedMs = Date.now();
  const built = await build();
  const files = [...new Set(built.files)].sort();
  const hash = hashFiles(files);
  if (hash === null) return null;
  const file = bundlePath(dir, slot, hash);
  writeAtomically(file, built.code);
  // A file modified while esbuild read it may not be what the code holds: use the code this once,
  // but record nothing, so the next start bundles again. Modification times come from a coarser
  // clock than Date.now() (and some file systems keep them to 2 s), hence the slack.
  if (files.every((f) => statSync(f).mtimeMs < startedMs - MTIME_SLACK_MS)) {
    writeAtomically(manifestPath, JSON.stringify({ hash, files } satisfies Manifest));
    removeOlder(dir, slot, file);
  }
  return { url: pathToFileURL(file).href, files };
}

/** A hash of the files' paths and contents, or null when one of them cannot be read. */
function hashFiles(files: string[]): string | null {
  const h = createHash('sha256');
  try {
    for (const f of files) {
      h.update(f);
      h.update('\0');
      h.update(readFileSync(f));
      h.update('\0');
    }
  } catch {
    return null;
  }
  return h.digest('hex').slice(0, 32);
}

/** The package.json of the installed package a file belongs to (…/node_modules/[@scope/]name/), or null. */
export function packageJsonOf(file: string): string | null {
  const parts = file.split(sep);
  const at = parts.lastIndexOf('node_modules');
  if (at < 0 || at + 1 >= parts.length) return null;
  const nameParts = parts[at + 1].startsWith('@') ? 2 : 1;
  const pkg = join(parts.slice(0, at + 1 + nameParts).join(sep) || sep, 'package.json');
  return existsSync(pkg) ? pkg : null;
}

function bundlePath(dir: string, slot: string, hash: string): string {
  return join(dir, `runtime-${slot}-${hash}.mjs`);
}

function readManifest(path: string): Manifest | null {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    if (typeof m.hash !== 'string' || !Array.isArray(m.files) || !m.files.every((f) => typeof f === 'string'))
      return null;
    return m;
  } catch {
    return null;
  }
}

/** Removes the slot's bundles other than `current` that are a while old. Best effort. */
function removeOlder(dir: string, slot: string, current: string): void {
  try {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (!name.startsWith(`runtime-${slot}-`) || path === current) continue;
      if (Date.now() - statSync(path).mtimeMs > STALE_AFTER_MS) rmSync(path, { force: true });
    }
  } catch {
    // left for a later start
  }
}
