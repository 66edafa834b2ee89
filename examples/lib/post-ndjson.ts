/**
 * The loop the examples' generators share: every 100 ms, POST a tenth of `--rate` records as NDJSON
 * to a running `kappa start` (`--url`), for `--seconds` seconds (0: until Ctrl-C), and report on
 * stderr how many were sent. Each generator says how one record is made.
 */
import { parseArgs } from 'node:util';

export interface GeneratorSpec {
  /** The topic the records go to. */
  topic: string;
  /** What the records are called in the progress lines ("sent 300 readings"). */
  noun: string;
  /** Records a second when `--rate` is not given. */
  rateDefault: number;
  /** How the script is run, for its usage line (`examples/iot/generate.ts`). */
  script: string;
  /** One record, made at `now` (ms since the epoch). */
  make(now: number): object;
  /** Records POSTed once before the loop, to another topic (the fraud example's card profiles). */
  first?: { topic: string; noun: string; records: (now: number) => object[] };
}

const TICK_MS = 100;

export function usage(spec: GeneratorSpec): string {
  return (
    `usage: node --import tsx ${spec.script} [--url <url>] [--rate <n>] [--seconds <n>]\n\n` +
    `POSTs ${spec.noun} to the "${spec.topic}" topic of a running \`kappa start\`, as NDJSON, until Ctrl-C.\n\n` +
    '  --url <url>      the server (default http://127.0.0.1:8080)\n' +
    `  --rate <n>       ${spec.noun} a second (default ${spec.rateDefault})\n` +
    '  --seconds <n>    stop after this many seconds (default 0: run until Ctrl-C)\n' +
    '  -h, --help       show this help\n'
  );
}

/** The options, or null after printing the usage (for --help, or a mistake, with exit code 1). */
function options(spec: GeneratorSpec): { url: string; rate: number; seconds: number } | null {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8080' },
        rate: { type: 'string', default: String(spec.rateDefault) },
        seconds: { type: 'string', default: '0' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage(spec)}`);
    process.exitCode = 1;
    return null;
  }
  if (values.help) {
    process.stdout.write(usage(spec));
    return null;
  }
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const bad = !Number.isFinite(rate) || rate <= 0 ? `--rate must be a positive number, not "${values.rate}"` : '';
  const badSeconds =
    !Number.isFinite(seconds) || seconds < 0 ? `--seconds must be 0 or more, not "${values.seconds}"` : '';
  if (bad || badSeconds) {
    process.stderr.write(`${bad || badSeconds}\n\n${usage(spec)}`);
    process.exitCode = 1;
    return null;
  }
  return { url: values.url.replace(/\/+$/, ''), rate, seconds };
}

export async function postNdjson(spec: GeneratorSpec): Promise<void> {
  const opts = options(spec);
  if (opts === null) return;
  const { rate, seconds } = opts;
  if (spec.first && !(await post(opts.url, spec.first.topic, spec.first.noun, spec.first.records(Date.now())))) return;
  const started = Date.now();
  let sent = 0;
  for (;;) {
    const now = Date.now();
    if (seconds > 0 && now - started >= seconds * 1000) break;
    const n = Math.max(1, Math.round(rate / (1000 / TICK_MS)));
    const records = Array.from({ length: n }, () => spec.make(now));
    if (!(await post(opts.url, spec.topic, spec.noun, records))) return;
    sent += n;
    if (sent % (rate * 10) < n) process.stderr.write(`sent ${sent} ${spec.noun}\n`);
    await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - now))));
  }
  process.stderr.write(`sent ${sent} ${spec.noun}\n`);
}

/** POSTs `records` to `topic` as NDJSON; false (after saying why on stderr, exit code 1) when that failed. */
async function post(base: string, topic: string, noun: string, records: object[]): Promise<boolean> {
  const body = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
  let res: Response;
  try {
    res = await fetch(`${base}/v1/topics/${topic}/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
  } catch (err) {
    const why = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
    process.stderr.write(
      `cannot reach ${base} (${why}): is \`kappa start\` running there? Start it first, or pass --url.\n`,
    );
    process.exitCode = 1;
    return false;
  }
  if (!res.ok) {
    process.stderr.write(`the server refused the ${noun} (${res.status}): ${await res.text()}\n`);
    process.exitCode = 1;
    return false;
  }
  return true;
}
