/**
 * The file-system operations the log uses, gathered in one injectable object so tests can put a
 * faulty disk (failing fsync, ENOSPC) under a real `FileLog`. The default is Node's `fs`.
 */
import * as nodeFs from 'node:fs';
import { dirname } from 'node:path';

export type LogFs = Pick<
  typeof nodeFs,
  | 'openSync'
  | 'closeSync'
  | 'readSync'
  | 'writeSync'
  | 'writevSync'
  | 'fsync'
  | 'fsyncSync'
  | 'read'
  | 'fstatSync'
  | 'ftruncateSync'
  | 'mkdirSync'
  | 'readdirSync'
  | 'renameSync'
  | 'unlinkSync'
  | 'existsSync'
  | 'readFileSync'
  | 'statSync'
  | 'rmSync'
  | 'linkSync'
>;

export const defaultFs: LogFs = nodeFs;

/**
 * Node's `fs` with reads done at once (readSync): for a thread that only reads and processes one
 * batch after another (an engine worker thread), a read from the page cache costs less than its
 * round trip through libuv's thread pool (Nexmark q0: +4% events per core). A read that must wait
 * for the disk holds the thread, which had nothing else to do. The callback still comes in a later
 * turn of the event loop (setImmediate), as an asynchronous read's does: a thread's tasks and
 * messages take turns between reads. (Called at once, one task's reads ran on in microtasks while
 * the others waited; a stream–stream join's table, pruned by its slowest task, outgrew its limit.)
 * Only fs.read's positional form is served: (fd, buffer, offset, length, position, callback), the
 * one `readAsync` uses.
 */
export const syncReadFs: LogFs = {
  ...nodeFs,
  read: ((
    fd: number,
    buf: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (err: NodeJS.ErrnoException | null, n: number) => void,
  ): void => {
    let n: number;
    try {
      n = nodeFs.readSync(fd, buf, offset, length, position);
    } catch (err) {
      setImmediate(callback, err as NodeJS.ErrnoException, 0);
      return;
    }
    setImmediate(callback, null, n);
  }) as LogFs['read'],
};

/** fsync a directory so that a create, rename or unlink inside it survives a power loss. */
export function fsyncDir(fs: LogFs, dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `path` with `data` so that after a crash at any step the file holds either the old or
 * the new contents, never a mix: write a temporary file, fsync it (its bytes are on disk), rename
 * it over the target (atomic on POSIX), fsync the directory (the rename itself is on disk).
 */
export function writeFileAtomic(fs: LogFs, path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path);
  fsyncDir(fs, dirname(path));
}

export function fsyncAsync(fs: LogFs, fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

export function readAsync(fs: LogFs, fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** Reads exactly `length` bytes at `position` (fewer only at end of file). */
export function readFully(fs: LogFs, fd: number, buf: Buffer, length: number, position: number): number {
  let total = 0;
  while (total < length) {
    const n = fs.readSync(fd, buf, total, length - total, position + total);
    if (n === 0) break;
    total += n;
  }
  return total;
}
