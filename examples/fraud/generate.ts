/**
 * Card transactions for the fraud example, POSTed to a running `kappa start` as NDJSON:
 * `node --import tsx examples/fraud/generate.ts [--url http://127.0.0.1:8080] [--rate 300] [--seconds 0]`.
 * 500 cards, each with its own usual spend; now and then a card is "stolen" and spends 20-50 times
 * its usual amount abroad, which the `unusual_amount` detector flags.
 */
import { parseArgs } from 'node:util';
import { seededRandom } from '../../src/random.ts';

const { values } = parseArgs({ options: { url: { type: 'string', default: 'http://127.0.0.1:8080' }, rate: { type: 'string', default: '300' }, seconds: { type: 'string', default: '0' } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const random = seededRandom(Date.now());
const CARDS = 500;
const COUNTRIES = ['DE', 'FR', 'NL', 'ES', 'IT', 'GB', 'US'];
const MERCHANTS = ['grocer', 'fuel', 'cafe', 'books', 'travel', 'electronics', 'pharmacy'];
const usual = Array.from({ length: CARDS }, () => 10 + random() * 90);
const home = Array.from({ length: CARDS }, () => COUNTRIES[Math.floor(random() * 5)]);
let tx = 0;

function transaction(now: number): object {
  const c = Math.floor(random() * CARDS);
  const stolen = random() < 0.001;
  const amount = Math.round(usual[c] * (stolen ? 20 + random() * 30 : 0.5 + random()) * 100) / 100;
  return { txId: `tx-${now.toString(36)}-${tx++}`, card: `card-${String(c).padStart(3, '0')}`, merchant: MERCHANTS[Math.floor(random() * MERCHANTS.length)], country: stolen ? 'US' : home[c], amount, ts: now };
}

const started = Date.now();
let sent = 0;
for (;;) {
  const now = Date.now();
  if (seconds > 0 && now - started >= seconds * 1000) break;
  const n = Math.max(1, Math.round(rate / 10));
  const body = Array.from({ length: n }, () => JSON.stringify(transaction(now))).join('\n') + '\n';
  const res = await fetch(`${values.url}/v1/topics/transactions/records`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  if (!res.ok) throw new Error(`the server answered ${res.status}: ${await res.text()}`);
  sent += n;
  await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - now))));
}
process.stderr.write(`sent ${sent} transactions\n`);
