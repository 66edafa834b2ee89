/**
 * Helpers of HTTP ingestion (ingest.ts): a request's bad records (listed in its 400, or kept to be
 * dead-lettered with headers saying where they came from and why), and the spool's text form of
 * the values of topics with a format (base64 of their bytes).
 */
import type { RecordHeader } from '../log/index.ts';
import type { Checked, RecordError, TopicIngest } from './record-check.ts';
import { Spool } from './spool.ts';

/** Bad records listed in a 400 at most (the count is always given). */
const ERRORS_LISTED_MAX = 100;

/** The headers of a dead letter: the reason (`error` is JSON [path, reason]) and where the record came from. */
export function provenance(topic: string, index: number, error: string): RecordHeader[] {
  const [path, reason] = JSON.parse(error) as [string, string];
  // "cents is not valid JSON"; a reason that is a sentence of its own (a format's encoder) follows "cents: ".
  const at = path === '' ? '' : /^[A-Z]/.test(reason) ? `${path}: ` : `${path} `;
  return [
    { key: 'kappa.error', value: Buffer.from(`${at}${reason}`) },
    { key: 'kappa.source', value: Buffer.from('http') },
    { key: 'kappa.source.topic', value: Buffer.from(topic) },
    { key: 'kappa.request.index', value: Buffer.from(String(index)) },
  ];
}

/** A request's bad records: counted, the first ERRORS_LISTED_MAX listed, and kept (spooled) only to dead-letter them. */
export class BadRecords {
  count = 0;
  readonly listed: RecordError[] = [];
  readonly spool: Spool | null;

  constructor(readonly dlq: boolean) {
    this.spool = dlq ? new Spool() : null;
  }

  add(e: RecordError, value: string): Promise<void> | undefined {
    this.count++;
    if (this.listed.length < ERRORS_LISTED_MAX) this.listed.push(e);
    return this.spool?.add({
      index: e.index,
      key: null,
      timestamp: Date.now(),
      value,
      error: JSON.stringify([e.path, e.reason]),
    });
  }

  dispose(): void {
    this.spool?.dispose();
  }
}

/** Spooled values of a topic with a format are base64 (the spool holds text): its records' bytes again. */
export function unspooled(batch: Checked[], binary: boolean): Checked[] {
  return binary ? batch.map((c) => ({ ...c, value: Buffer.from(c.value as string, 'base64') })) : batch;
}

/** A bad record's JSON as the spool keeps it: base64 for a topic with a format (see unspooled). */
export function asStored(topic: TopicIngest, json: string): string {
  return topic.codec === null ? json : Buffer.from(json, 'utf8').toString('base64');
}

export function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? 'null';
  } catch {
    return String(v);
  }
}
