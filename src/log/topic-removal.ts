/**
 * Removing a topic's directory so that a crash at any step leaves either the whole topic or
 * nothing of it, never a topic with some partitions or segments missing.
 *
 * On disk: `<dir>/topics/<topic>` is first renamed to `<dir>/deleted-topics/<topic>.<ms>` (one
 * rename, atomic on POSIX; both directories are fsynced so the rename survives a power loss), and
 * only then removed file by file. A crash before the rename leaves the topic as it was; a crash
 * after it leaves a directory under `deleted-topics/`, which readers never look at and which the
 * next writer to open the log removes (`removeDeletedTopics`).
 */
import { join } from 'node:path';
import { crashPoint } from '../crash-point.ts';
import { type LogFs, fsyncDir } from './fs.ts';

const DELETED_DIR = 'deleted-topics';

/** Moves the topic's directory out of `topics/` in one rename, then removes it. */
export function removeTopicDir(fs: LogFs, dataDir: string, topic: string, nowMs: number): void {
  const trash = join(dataDir, DELETED_DIR);
  fs.mkdirSync(trash, { recursive: true });
  const from = join(dataDir, 'topics', topic);
  const to = join(trash, `${topic}.${nowMs}`);
  fs.rmSync(to, { recursive: true, force: true });
  crashPoint('delete-topic-before-rename');
  fs.renameSync(from, to);
  // Both directory entries changed: fsync both, so after a power loss the topic is either still
  // under topics/ or already under deleted-topics/, never in neither.
  fsyncDir(fs, join(dataDir, 'topics'));
  fsyncDir(fs, trash);
  crashPoint('delete-topic-after-rename');
  fs.rmSync(to, { recursive: true, force: true });
}

/** Finishes deletions a crash interrupted: removes whatever is left under `deleted-topics/`. */
export function removeDeletedTopics(fs: LogFs, dataDir: string): void {
  const trash = join(dataDir, DELETED_DIR);
  if (!fs.existsSync(trash)) return;
  for (const name of fs.readdirSync(trash)) fs.rmSync(join(trash, name), { recursive: true, force: true });
}
