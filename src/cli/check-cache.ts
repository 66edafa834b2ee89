/**
 * A config's type check, kept between starts. The check costs 3-4 s of CPU (the compiler loads the
 * config's whole import graph, Kappa's ~400 modules and Node's types included), and `kappa start`
 * runs it at every start: a restart with the same config, or several processes of a cluster on one
 * machine, would each pay it again for the same answer. Each check records what it saw: every file
 * the compiler read (a hash of the text it got) and every path it looked for (there or not). A
 * later start reuses the findings only while all of that is the same: each file read again and
 * hashed (~550 files, 7 MB: a few tens of ms), each path looked up again, so an edit anywhere in
 * the import graph, a package installed or removed, a new file where resolution looked, makes the
 * next start check again.
 *
 * The record's name is a hash of the config's path and of what else shapes the answer: the checker
 * itself (check.ts, whose text holds the compiler options), the TypeScript version, the export
 * conditions and the `@types` folder used. It lives in Kappa's private cache directory
 * (cache-dir.ts); without one, nothing is kept. A record not used for two days is removed.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { privateCacheDir, writeAtomically } from '../cache-dir.ts';
import type { ConfigDiagnostic } from './check.ts';

/** A record not used for this long is removed (each is about 150 KB). */
const UNUSED_MS = 2 * 24 * 3600_000;

/** What a check saw: the text of every file read (undefined: not there), every path looked for. */
export interface CheckFootprint {
  reads: Map<string, string | undefined>;
  files: Map<string, boolean>;
  directories: Map<string, boolean>;
}

interface Kept {
  /** [path, hash of its text, or null for a file that was not there]. */
  reads: [string, string | null][];
  /** [path, whether it was there]. */
  files: [string, boolean][];
  directories: [string, boolean][];
  diagnostics: ConfigDiagnostic[];
}

export function emptyFootprint(): CheckFootprint {
  return { reads: new Map(), files: new Map(), directories: new Map() };
}

/** The findings kept for `key` if nothing the check saw has changed since; else null. */
export function keptCheck(key: string, root?: string): ConfigDiagnostic[] | null {
  const dir = privateCacheDir(root);
  if (dir === null) return null;
  let kept: Kept;
  try {
    kept = JSON.parse(readFileSync(join(dir, `check-${key}.json`), 'utf8')) as Kept;
  } catch {
    return null; // none, or unreadable: check again
  }
  if (!Array.isArray(kept.reads) || !Array.isArray(kept.files) || !Array.isArray(kept.directories)) return null;
  if (!Array.isArray(kept.diagnostics)) return null;
  for (const [path, hash] of kept.reads) if (hashOf(readText(path)) !== hash) return null;
  for (const [path, there] of kept.files)
    if ((statSync(path, { throwIfNoEntry: false })?.isFile() ?? false) !== there) return null;
  for (const [path, there] of kept.directories)
    if ((statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false) !== there) return null;
  touch(join(dir, `check-${key}.json`));
  return kept.diagnostics;
}

/** Keeps `diagnostics` for `key`, with what the check saw. Best effort: a failure keeps nothing. */
export function keepCheck(key: string, seen: CheckFootprint, diagnostics: ConfigDiagnostic[], root?: string): void {
  const dir = privateCacheDir(root);
  if (dir === null) return;
  const kept: Kept = {
    reads: [...seen.reads].map(([path, text]) => [path, hashOf(text)]),
    files: [...seen.files],
    directories: [...seen.directories],
    diagnostics,
  };
  try {
    writeAtomically(join(dir, `check-${key}.json`), JSON.stringify(kept));
  } catch {
    // a full disk, say: the next start checks again
  }
  removeUnused(dir);
}

/** Marks a record used (its age is the time since its last use). */
function touch(path: string): void {
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch {
    // removed meanwhile: the next start checks again
  }
}

/**
 * Removes the records not used for UNUSED_MS: those of configs that are gone (a project deleted,
 * a test's temporary config) or of an older checker. Best effort.
 */
function removeUnused(dir: string): void {
  try {
    for (const name of readdirSync(dir)) {
      if (!name.startsWith('check-')) continue;
      const path = join(dir, name);
      if (Date.now() - statSync(path).mtimeMs > UNUSED_MS) rmSync(path, { force: true });
    }
  } catch {
    // left for a later check
  }
}

/** The record name for a check of `file`, from everything besides the files that shapes its answer. */
export function checkKey(file: string, shapedBy: string[]): string {
  const h = createHash('sha256');
  for (const part of [file, ...shapedBy]) h.update(part).update('\0');
  return h.digest('hex').slice(0, 32);
}

/** A file's text as the compiler reads it (UTF-8, without a byte-order mark); undefined if it is not there. */
export function readText(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function hashOf(text: string | undefined): string | null {
  return text === undefined ? null : createHash('sha256').update(text).digest('hex').slice(0, 32);
}
