/** How CLI commands open the data directory. */
import { type FileLog, openFileLog } from '../log/index.ts';

/** Read-only: never takes the writer's lock, so it works beside a running `kappa start` or `produce`. */
export function openForReading(dataDir: string): Promise<FileLog> {
  return openFileLog({ dir: dataDir, readOnly: true });
}

export function openForWriting(dataDir: string): Promise<FileLog> {
  return openFileLog({ dir: dataDir });
}

export async function withLog<T>(open: Promise<FileLog>, fn: (log: FileLog) => Promise<T>): Promise<T> {
  const log = await open;
  try {
    return await fn(log);
  } finally {
    await log.close();
  }
}
