/**
 * How CLI commands open the data directory: the one place (with `kappa start`, `replay` and `demo`,
 * which call it) that picks the log's adapter, the embedded file log. Commands see only the `Log` port.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KappaError } from '../errors.ts';
import { type Log, openFileLog } from '../log/index.ts';
import type { CliContext } from './main.ts';

/** Read-only: never takes the writer's lock, so it works beside a running `kappa start` or `produce`. */
export function openForReading(dataDir: string): Promise<Log> {
  return openFileLog({ dir: dataDir, readOnly: true });
}

export function openForWriting(dataDir: string): Promise<Log> {
  return openFileLog({ dir: dataDir });
}

export async function withLog<T>(open: Promise<Log>, fn: (log: Log) => Promise<T>): Promise<T> {
  const log = await open;
  try {
    return await fn(log);
  } finally {
    await log.close();
  }
}

/**
 * Opens the log for writing, which takes the data directory's lock, so no `kappa start` runs while
 * a lifecycle command changes the data (and none can start half way). Held: a clear refusal.
 */
export async function holdDataDir(ctx: CliContext, what: string, command: string): Promise<Log> {
  // Opening for writing would create the directory: a mistyped --data-dir must change nothing.
  if (!existsSync(join(ctx.dataDir, 'topics')))
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `Cannot ${what}: there is no Kappa data directory at ${ctx.dataDir} (pass the one \`kappa start\` uses with --data-dir).`,
      { dir: ctx.dataDir },
    );
  try {
    return await openForWriting(ctx.dataDir);
  } catch (err) {
    if (!(err instanceof KappaError) || err.code !== 'KAPPA_DATA_DIR_LOCKED') throw err;
    const pid = err.details?.pid;
    throw new KappaError(
      'KAPPA_DATA_DIR_LOCKED',
      `Cannot ${what} while Kappa is running on ${ctx.dataDir}` +
        `${pid === undefined ? '' : ` (process ${String(pid)}, probably \`kappa start\`)`}: nothing was changed. ` +
        `Stop it first (Ctrl-C in its terminal), then run \`${command}\` again.`,
      err.details,
      err,
    );
  }
}
