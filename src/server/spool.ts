/**
 * The ingest spool: checked records of one request, held until the whole request has been checked
 * (all or nothing), then handed to the log in order, in batches of APPEND_BATCH. Records stay in
 * memory up to SPOOL_MEMORY_BYTES and go to a temporary file past that, so an NDJSON body of any
 * size is never held whole.
 *
 * File format: one line per record, `<JSON [index, key, timestamp, error]>\t<the record's JSON>\n`
 * (a record's JSON holds no raw newline, so '\n' ends it; it may hold '\r'). The file lives in its
 * own temporary directory, removed by dispose(); nothing in it outlives the request.
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KappaError } from '../errors.ts';
import { lines } from './lines.ts';
import type { Checked } from './record-check.ts';

/** Checked NDJSON lines kept in memory before they spill to a temporary file. */
const SPOOL_MEMORY_BYTES = 8 * 1024 * 1024;
/** Records per append call. */
const APPEND_BATCH = 2000;

/** Checked records in memory, then (past SPOOL_MEMORY_BYTES) in a temporary file; read back in order by `drain`. */
export class Spool {
  /** Records added. */
  size = 0;
  private memory: Checked[] = [];
  private memoryBytes = 0;
  private dir: string | null = null;
  private file: WriteStream | null = null;
  private error: Error | null = null;

  /** Adds a record; returns a promise only when the caller must wait (the spool spills or the file is busy). */
  add(c: Checked): Promise<void> | undefined {
    this.size++;
    if (this.file === null) {
      this.memory.push(c);
      this.memoryBytes += c.value.length + 64;
      return this.memoryBytes > SPOOL_MEMORY_BYTES ? this.spill() : undefined;
    }
    return this.write(c);
  }

  private async write(c: Checked): Promise<void> {
    const f = this.file!;
    if (this.error !== null) throw spoolError(this.error);
    f.write(`${JSON.stringify([c.index, c.key, c.timestamp ?? null, c.error ?? null])}\t`);
    f.write(c.value);
    if (!f.write('\n')) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          f.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          f.off('drain', onDrain);
          reject(spoolError(err));
        };
        f.once('drain', onDrain);
        f.once('error', onError);
      });
    }
  }

  private async spill(): Promise<void> {
    try {
      this.dir = mkdtempSync(join(tmpdir(), 'kappa-ingest-'));
    } catch (err) {
      throw spoolError(err as Error);
    }
    this.file = createWriteStream(join(this.dir, 'spool'));
    // A write error shows when the file is ended in drain(); after dispose() nobody waits for it.
    this.file.on('error', (err) => (this.error ??= err));
    const pending = this.memory;
    this.memory = [];
    this.size -= pending.length;
    for (const c of pending) {
      this.size++;
      await this.write(c);
    }
  }

  /** Hands every record to `append`, in order, in batches. */
  async drain(append: (batch: Checked[]) => Promise<void>): Promise<void> {
    if (this.file === null) {
      for (let i = 0; i < this.memory.length; i += APPEND_BATCH) await append(this.memory.slice(i, i + APPEND_BATCH));
      return;
    }
    await new Promise<void>((resolve, reject) =>
      this.file!.end((err?: Error | null) =>
        err || this.error ? reject(spoolError((err ?? this.error)!)) : resolve(),
      ),
    );
    let batch: Checked[] = [];
    // Split on '\n' only: a record may hold a '\r' (JSON allows one between tokens).
    for await (const chunk of lines(createReadStream(join(this.dir!, 'spool')), Infinity)) {
      for (const bytes of chunk) {
        const line = bytes.toString('utf8');
        const tab = line.indexOf('\t');
        const [index, key, timestamp, error] = JSON.parse(line.slice(0, tab)) as [
          number,
          string | null,
          number | null,
          string | null,
        ];
        batch.push({
          index,
          key,
          timestamp: timestamp ?? undefined,
          value: line.slice(tab + 1),
          ...(error === null ? {} : { error }),
        });
        if (batch.length === APPEND_BATCH) {
          await append(batch);
          batch = [];
        }
      }
    }
    if (batch.length > 0) await append(batch);
  }

  dispose(): void {
    this.file?.destroy();
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A failure of the temporary spool file as the catalogue's error (a full temporary disk is a 503 to retry). */
function spoolError(err: Error): KappaError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new KappaError(
      'KAPPA_DISK_FULL',
      `The disk holding the temporary directory is full, so the request could not be spooled; nothing was appended.`,
      {},
      err,
    );
  return new KappaError(
    'KAPPA_IO_ERROR',
    `The request could not be spooled to a temporary file (${err.message}); nothing was appended.`,
    {},
    err,
  );
}
