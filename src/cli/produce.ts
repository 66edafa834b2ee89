/**
 * `kappa produce <topic>`: NDJSON on stdin, one record per line. Lines are appended in batches as
 * they arrive (each stdin chunk becomes one append, so a pipe of millions of lines is batched and an
 * interactive line is sent at once). The first bad line stops the command: every line before it is
 * appended and acknowledged, nothing from it on is written, and the exit code is 1.
 */
import { KappaError, isKappaError } from '../errors.ts';
import type { Log, ProducerRecord } from '../log/index.ts';
import { topicInfo } from './consume.ts';
import type { CliContext } from './main.ts';
import { openForWriting } from './open.ts';

const BATCH_LINES_MAX = 5000;
/** Largest timestamp either way of 1970 that a JavaScript Date can hold (years -271821 to 275760). */
const TIME_MS_MAX = 8.64e15;

export interface ProduceOptions {
  keyField?: string;
  timeField?: string;
}

export function getPath(obj: unknown, path: string): unknown {
  let v = obj;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Turns one NDJSON line into a record, or throws a message that names the line and the problem. */
export function parseLine(line: string, lineNo: number, opts: ProduceOptions): ProducerRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new KappaError('KAPPA_INVALID_RECORD', `line ${lineNo} is not valid JSON (${(err as Error).message})`, {
      line: lineNo,
    });
  }
  const record: ProducerRecord = { value: line };
  if (opts.keyField) {
    const key = getPath(parsed, opts.keyField);
    if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean') {
      throw new KappaError(
        'KAPPA_INVALID_RECORD',
        `line ${lineNo} has no string or number at "${opts.keyField}" to use as the key (found ${key === undefined ? 'nothing' : JSON.stringify(key)})`,
        {
          line: lineNo,
          field: opts.keyField,
        },
      );
    }
    record.key = String(key);
  }
  if (opts.timeField) {
    const t = getPath(parsed, opts.timeField);
    const ms = typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN;
    if (!Number.isFinite(ms) || (typeof t === 'number' && !Number.isInteger(t))) {
      throw new KappaError(
        'KAPPA_INVALID_RECORD',
        `line ${lineNo} has no time at "${opts.timeField}" (need milliseconds since 1970 or an ISO time, found ${t === undefined ? 'nothing' : JSON.stringify(t)})`,
        {
          line: lineNo,
          field: opts.timeField,
        },
      );
    }
    if (Math.abs(ms) > TIME_MS_MAX) {
      throw new KappaError(
        'KAPPA_INVALID_RECORD',
        `line ${lineNo} has the time ${ms} at "${opts.timeField}", outside what a date can hold (±${TIME_MS_MAX} ms around 1970, years -271821 to 275760)`,
        {
          line: lineNo,
          field: opts.timeField,
        },
      );
    }
    record.timestamp = ms;
  }
  return record;
}

/**
 * The log, for writing. Only one process writes a data directory: while `kappa start` runs, it is
 * that process, so the error says to send the records through its HTTP API instead.
 */
async function openLogFor(ctx: CliContext, topic: string): Promise<Log> {
  try {
    return await openForWriting(ctx.dataDir);
  } catch (err) {
    if (!isKappaError(err, 'KAPPA_DATA_DIR_LOCKED')) throw err;
    const pid = err.details?.pid;
    throw new KappaError(
      'KAPPA_DATA_DIR_LOCKED',
      `kappa produce cannot write to ${ctx.dataDir}: it is in use by ${typeof pid === 'number' ? `process ${pid}` : 'another Kappa process'}, ` +
        'most likely `kappa start` or `kappa demo`, is running on it, and only one process may write a log. ' +
        'Send the records through its HTTP API instead (the address `kappa start` printed; 127.0.0.1:8080 by default):\n' +
        `  curl -s http://127.0.0.1:8080/v1/topics/${encodeURIComponent(topic)}/records -H 'content-type: application/x-ndjson' --data-binary @records.ndjson\n` +
        "(add -H 'authorization: Bearer <token>' if the config has server.tokens), or stop that process and run kappa produce again.",
      err.details,
      err,
    );
  }
}

export async function produceCommand(ctx: CliContext, topic: string, opts: ProduceOptions): Promise<void> {
  const log = await openLogFor(ctx, topic);
  let produced = 0;
  let lineNo = 0;
  let carry = '';
  let failure: KappaError | null = null;

  const send = async (records: ProducerRecord[]): Promise<void> => {
    if (records.length === 0) return;
    await log.append(topic, records);
    produced += records.length;
  };

  /** Parses complete lines and appends them; stops at the first bad line. */
  const handle = async (lines: string[]): Promise<void> => {
    let batch: ProducerRecord[] = [];
    for (const raw of lines) {
      lineNo++;
      const line = raw.trim();
      if (line === '') continue;
      try {
        batch.push(parseLine(line, lineNo, opts));
      } catch (err) {
        failure = err as KappaError;
        break;
      }
      if (batch.length >= BATCH_LINES_MAX) {
        await send(batch);
        batch = [];
      }
    }
    await send(batch);
  };

  try {
    await topicInfo(log, topic); // fail fast on an unknown topic, before reading stdin
    for await (const chunk of ctx.stdin) {
      const text = carry + (typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8'));
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      await handle(lines);
      if (failure) break;
    }
    if (!failure && carry.trim() !== '') await handle([carry]);
  } catch (err) {
    if (err instanceof KappaError && produced > 0) {
      throw new KappaError(
        err.code,
        `${err.message} (${produced} records were produced and acknowledged before this error)`,
        err.details,
        err,
      );
    }
    throw err;
  } finally {
    await log.close();
  }
  const records = `${produced} record${produced === 1 ? '' : 's'}`;
  if (failure) {
    const f = failure as KappaError;
    throw new KappaError(
      f.code,
      `${f.message}. ${records} from the lines before it ${produced === 1 ? 'was' : 'were'} produced to topic "${topic}"; nothing from line ${lineNo} on was written.`,
      f.details,
    );
  }
  ctx.stderr.write(`produced ${records} to topic "${topic}"\n`);
}
