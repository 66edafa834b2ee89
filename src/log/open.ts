/**
 * Opens a log from its serialisable descriptor (`Log.descriptor`): how a worker thread or another
 * process opens "the same log" as its parent, whatever the adapter.
 */
import { KappaError } from '../errors.ts';
import { openFileLog } from './file-log.ts';
import { syncReadFs } from './fs.ts';
import type { Log, LogDescriptor, Logger } from './types.ts';

export interface OpenLogOptions {
  /** Open for reading only: another process owns the log and appends to it. */
  readOnly?: boolean;
  logger?: Logger;
  /** A file log reads with readSync (fs.ts `syncReadFs`): for an engine worker thread. */
  syncReads?: boolean;
}

export function openLog(descriptor: LogDescriptor, opts: OpenLogOptions = {}): Promise<Log> {
  switch (descriptor.kind) {
    case 'file':
      return openFileLog({
        dir: descriptor.dir,
        readOnly: opts.readOnly,
        logger: opts.logger,
        fs: opts.syncReads ? syncReadFs : undefined,
      });
    case 'kafka':
      // Loaded on demand: a FileLog process (and its worker threads) never loads the Kafka client.
      return import('./kafka/index.ts').then((m) => m.openKafkaLog(descriptor, { readOnly: opts.readOnly }));
    default:
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `There is no log adapter called "${(descriptor as { kind: string }).kind}".`,
      );
  }
}
