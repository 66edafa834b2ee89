/**
 * How CLI commands open the data directory: the one place (with `kappa start`, `replay` and `demo`,
 * which call it) that picks the log's adapter, the embedded file log. Commands see only the `Log` port.
 */
import { type Log, openFileLog } from '../log/index.ts';

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
