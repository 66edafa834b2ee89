/**
 * `kappa consume <topic>`: prints records as NDJSON. Values that are JSON are printed as they are
 * stored; other values are printed as JSON strings. Opens the log read-only, so it runs beside a
 * writer; `--follow` keeps printing what the writer appends until Ctrl-C or `--limit`.
 *
 * A topic whose config declares a format (Avro, Protobuf, JSON Schema: issue 17) has its values
 * decoded to JSON as its pipelines read them (a bigint as a decimal string, bytes as base64); a
 * value that does not decode is printed as `{"valueError": why, "valueBase64": its bytes}` (with
 * `--with-meta`, as the record's `value`), with the names the HTTP API's reads use. The config is the one `--config` names, else kappa.config.ts here;
 * it is loaded only when the log has a schema registry. Without a config that loads, values are
 * printed as stored (with a warning when a config is there but does not load).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { KappaError, closestNames, isKappaError } from '../errors.ts';
import type { Log, LogRecord, TopicInfo } from '../log/index.ts';
import { SCHEMAS_TOPIC } from '../registry/index.ts';
import { FormattedValues, type TopicFormat, defaultConfigPath, jsonSafe, loadApp } from '../stream/index.ts';
import type { CliContext } from './main.ts';
import { openForReading, withLog } from './open.ts';

export interface ConsumeOptions {
  from: string;
  partition?: number;
  limit?: number;
  follow?: boolean;
  withMeta?: boolean;
  /** The app config (for topics with a format); default kappa.config.ts here. */
  config?: string;
}

type From =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number }
  | { kind: 'time'; ms: number; text: string };

export function parseFrom(text: string): From {
  if (text === 'earliest' || text === 'latest') return { kind: text };
  if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text))) return { kind: 'offset', offset: Number(text) };
  if (text.startsWith('@')) {
    const ms = Date.parse(text.slice(1));
    if (Number.isFinite(ms)) return { kind: 'time', ms, text: text.slice(1) };
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `--from "${text}": "${text.slice(1)}" is not a time Kappa can read. Use an ISO time such as @2026-01-31T12:00:00Z.`,
    );
  }
  throw new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `--from "${text}" is not understood. Use earliest, latest, an offset (a whole number), or @ followed by an ISO time such as @2026-01-31T12:00:00Z.`,
  );
}

async function startOffset(log: Log, topic: string, partition: number, from: From): Promise<number> {
  const { start, end } = await log.offsets(topic, partition);
  switch (from.kind) {
    case 'earliest':
      return start;
    case 'latest':
      return end;
    case 'time':
      return log.offsetForTime(topic, partition, from.ms);
    case 'offset':
      if (from.offset < start || from.offset > end) {
        throw new KappaError(
          'KAPPA_OFFSET_OUT_OF_RANGE',
          `--from ${from.offset} is outside partition ${partition} of "${topic}", which holds offsets ${start} to ${end - 1}.`,
          {
            topic,
            partition,
            offset: from.offset,
            start,
            end,
          },
        );
      }
      return from.offset;
  }
}

/**
 * The topic's settings; for a topic that does not exist, an error that suggests the closest
 * existing names (a typo is likelier than a missing topic) and lists the topics there are.
 */
export async function topicInfo(log: Log, topic: string): Promise<TopicInfo> {
  try {
    return await log.topic(topic);
  } catch (err) {
    if (!isKappaError(err, 'KAPPA_UNKNOWN_TOPIC')) throw err;
    const names = (await log.topics()).map((t) => t.name).sort();
    const close = closestNames(topic, names);
    const there =
      names.length === 0
        ? 'There are no topics yet.'
        : `The topics here: ${names.slice(0, 20).join(', ')}${names.length > 20 ? `, and ${names.length - 20} more` : ''}.`;
    const message =
      close.length > 0
        ? `Topic "${topic}" does not exist. Did you mean ${close.map((c) => `"${c}"`).join(' or ')}? ${there}`
        : `Topic "${topic}" does not exist. ${there} Create it with \`kappa topics create ${topic}\` (or define it in the config's topics and run \`kappa start\`).`;
    throw new KappaError(
      'KAPPA_UNKNOWN_TOPIC',
      message,
      { topic, ...(close.length > 0 ? { didYouMean: close } : {}) },
      err,
    );
  }
}

/** The JSON text of a key or value: stored JSON as it is (on one line), anything else as a JSON string. */
export function jsonText(bytes: Buffer | null): string {
  if (bytes === null) return 'null';
  const text = bytes.toString('utf8');
  try {
    const parsed = JSON.parse(text) as unknown;
    return text.includes('\n') || text.includes('\r') ? JSON.stringify(parsed) : text;
  } catch {
    return JSON.stringify(text);
  }
}

/** A record's value as printed: its JSON text, or for a topic with a format its decoded value. */
type ValueText = (value: Buffer | null) => string | Promise<string>;

/**
 * How values of `topic` are printed: as stored (jsonText), or decoded when the config gives the
 * topic a format. Only a log with a schema registry can hold such records, so only then is the
 * config loaded.
 */
async function valueTextOf(ctx: CliContext, log: Log, topic: string, config: string | undefined): Promise<ValueText> {
  if (!(await log.topics()).some((t) => t.name === SCHEMAS_TOPIC)) return jsonText;
  const file = resolve(config ?? defaultConfigPath());
  if (config === undefined && !existsSync(file)) return jsonText;
  let formats: Map<string, TopicFormat>;
  try {
    const app = await loadApp(file);
    formats = new Map(app.topics.flatMap((t) => (t.format === null ? [] : [[t.name, t.format] as const])));
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    ctx.stderr.write(
      `kappa: warning: values are printed as stored, not decoded with the topic's format: the config could not be loaded (${why}).\n`,
    );
    return jsonText;
  }
  if (!formats.has(topic)) return jsonText;
  const values = new FormattedValues(log, formats);
  return async (value) => {
    if (value === null) return 'null';
    const decoded = await values.decode(topic, value);
    if ('value' in decoded) return JSON.stringify(jsonSafe(decoded.value)) ?? 'null';
    return JSON.stringify({ valueError: decoded.error, valueBase64: value.toString('base64') });
  };
}

function formatRecord(topic: string, partition: number, r: LogRecord, withMeta: boolean, value: string): string {
  if (!withMeta) return value;
  const key = r.key === null ? 'null' : JSON.stringify(r.key.toString('utf8'));
  let headers = '';
  if (r.headers.length > 0) {
    const h: Record<string, string | null> = {};
    for (const { key: k, value } of r.headers) h[k] = value === null ? null : value.toString('utf8');
    headers = `,"headers":${JSON.stringify(h)}`;
  }
  return `{"topic":${JSON.stringify(topic)},"partition":${partition},"offset":${r.offset},"timestamp":${r.timestamp},"key":${key}${headers},"value":${value}}`;
}

export async function consumeCommand(ctx: CliContext, topic: string, opts: ConsumeOptions): Promise<void> {
  const from = parseFrom(opts.from);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let printed = 0;
  const limit = opts.limit ?? Infinity;
  const write = (text: string): Promise<void> =>
    new Promise((resolve) => {
      if (ctx.stdout.write(text)) resolve();
      else ctx.stdout.once('drain', resolve);
    });
  // A closed pipe (`kappa consume t | head`) ends the command quietly.
  const onPipeError = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'EPIPE') abort.abort();
  };
  ctx.stdout.on('error', onPipeError);
  try {
    await withLog(openForReading(ctx.dataDir), async (log) => {
      const info = await topicInfo(log, topic);
      if (opts.partition !== undefined && opts.partition >= info.partitions) {
        throw new KappaError(
          'KAPPA_INVALID_PARTITION',
          `Topic "${topic}" has partitions 0 to ${info.partitions - 1}; there is no partition ${opts.partition}.`,
        );
      }
      const partitions =
        opts.partition !== undefined ? [opts.partition] : Array.from({ length: info.partitions }, (_, i) => i);
      const starts = await Promise.all(partitions.map((p) => startOffset(log, topic, p, from)));
      if (limit === 0) return;
      const valueText = await valueTextOf(ctx, log, topic, opts.config);
      const readPartition = async (p: number, start: number): Promise<void> => {
        for await (const batch of log.read(topic, p, start, { follow: opts.follow, signal: abort.signal })) {
          let out = '';
          for (const r of batch.records(start)) {
            if (printed >= limit) break;
            const value = valueText(r.value);
            const text = typeof value === 'string' ? value : await value;
            out += formatRecord(topic, p, r, opts.withMeta === true, text) + '\n';
            printed++;
          }
          if (out) await write(out);
          if (printed >= limit || abort.signal.aborted) {
            abort.abort();
            return;
          }
        }
      };
      if (opts.follow) await Promise.all(partitions.map((p, i) => readPartition(p, starts[i])));
      else for (let i = 0; i < partitions.length && printed < limit; i++) await readPartition(partitions[i], starts[i]);
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.stdout.off('error', onPipeError);
  }
}
