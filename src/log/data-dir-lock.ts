/**
 * The writer's lock on a data directory: `<dir>/.lock` holds the pid of the one process that has the
 * log open for writing. Readers (`kappa consume`, `kappa verify`) take no lock. A lock whose process
 * is gone (crashed or killed) is stale and is taken over.
 *
 * Crash behaviour: the lock file is created whole (hard link of a private file that already holds
 * the pid), so a crash never leaves an empty lock that another process would misread as stale.
 */
import { join } from 'node:path';
import { KappaError, isKappaError } from '../errors.ts';
import type { LogFs } from './fs.ts';

export function acquireLock(fs: LogFs, dir: string): void {
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    // The pid goes into a private file first, which is then hard-linked to .lock: link() creates the
    // name atomically with its contents, so another process never reads a half-written (empty) lock
    // and mistakes it for a stale one.
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, String(process.pid));
    fs.closeSync(fd);
    try {
      fs.linkSync(tmp, path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.unlinkSync(tmp);
    }
    const pid = Number(fs.readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) {
      throw new KappaError(
        'KAPPA_DATA_DIR_LOCKED',
        `The data directory ${dir} is in use by process ${pid}${pid === process.pid ? ' (this process)' : ''}. Stop that process first, or point --data-dir elsewhere.`,
        { dir, pid },
      );
    }
    // The process that held the lock is gone (crashed or killed): take the lock over.
    fs.unlinkSync(path);
  }
  throw new KappaError('KAPPA_DATA_DIR_LOCKED', `Could not lock the data directory ${dir}.`, { dir });
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function releaseLock(fs: LogFs, dir: string): void {
  try {
    fs.unlinkSync(join(dir, '.lock'));
  } catch (err) {
    if (!isKappaError(err) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
