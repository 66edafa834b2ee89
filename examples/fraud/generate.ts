/**
 * Card transactions for the fraud example, POSTed to a running `kappa start` as NDJSON:
 * `node --import tsx examples/fraud/generate.ts [--url http://127.0.0.1:8080] [--rate 300] [--seconds 0]`.
 * 500 cards, each with its own usual spend; now and then a card is "stolen" and spends 20-50 times
 * its usual amount abroad, which the `unusual_amount` detector flags.
 */
import { postNdjson } from '../lib/post-ndjson.ts';

const random = Math.random;
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
  return {
    txId: `tx-${now.toString(36)}-${tx++}`,
    card: `card-${String(c).padStart(3, '0')}`,
    merchant: MERCHANTS[Math.floor(random() * MERCHANTS.length)],
    country: stolen ? 'US' : home[c],
    amount,
    ts: now,
  };
}

await postNdjson({
  topic: 'transactions',
  noun: 'transactions',
  rateDefault: 300,
  script: 'examples/fraud/generate.ts',
  make: transaction,
});
