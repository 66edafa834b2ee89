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
  /** One record, made at `now` (ms since the epoch). */
  make(now: number): object;
}

const TICK_MS = 100;

export async function postNdjson(spec: GeneratorSpec): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      rate: { type: 'string', default: String(spec.rateDefault) },
      seconds: { type: 'string', default: '0' },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const started = Date.now();
  let sent = 0;
  for (;;) {
    const now = Date.now();
    if (seconds > 0 && now - started >= seconds * 1000) break;
    const n = Math.max(1, Math.round(rate / (1000 / TICK_MS)));
    const body = Array.from({ length: n }, () => JSON.stringify(spec.make(now))).join('\n') + '\n';
    const headers = { 'content-type': 'application/x-ndjson' };
    const res = await fetch(`${values.url}/v1/topics/${spec.topic}/records`, { method: 'POST', headers, body });
    if (!res.ok) throw new Error(`the server answered ${res.status}: ${await res.text()}`);
    sent += n;
    if (sent % (rate * 10) < n) process.stderr.write(`sent ${sent} ${spec.noun}\n`);
    await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - now))));
  }
  process.stderr.write(`sent ${sent} ${spec.noun}\n`);
}
