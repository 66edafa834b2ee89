/**
 * Card transactions for the fraud example, POSTed to a running `kappa start` as NDJSON:
 * `node --import tsx examples/fraud/generate.ts [--url http://127.0.0.1:8080] [--rate 300] [--seconds 0]`.
 * First the 500 cards' profiles (holder, home country, limit: 15 times the card's usual spend) to
 * the `cards` topic, then transactions: each card spends around its usual amount at home; now and
 * then a card is "stolen" and spends 20-50 times its usual amount abroad, which the `unusual_amount`
 * detector flags, and the `over_limit` one when it is over the card's limit.
 */
import { postNdjson } from '../lib/post-ndjson.ts';

const random = Math.random;
const CARDS = 500;
const COUNTRIES = ['DE', 'FR', 'NL', 'ES', 'IT', 'GB', 'US'];
const MERCHANTS = ['grocer', 'fuel', 'cafe', 'books', 'travel', 'electronics', 'pharmacy'];
const usual = Array.from({ length: CARDS }, () => 10 + random() * 90);
const home = Array.from({ length: CARDS }, () => COUNTRIES[Math.floor(random() * 5)]);
let tx = 0;
const cardId = (c: number) => `card-${String(c).padStart(3, '0')}`;

function profiles(now: number): object[] {
  return usual.map((u, c) => ({
    card: cardId(c),
    holder: `holder ${c}`,
    homeCountry: home[c],
    limit: Math.round(u * 15),
    ts: now,
  }));
}

function transaction(now: number): object {
  const c = Math.floor(random() * CARDS);
  const stolen = random() < 0.001;
  const amount = Math.round(usual[c] * (stolen ? 20 + random() * 30 : 0.5 + random()) * 100) / 100;
  return {
    txId: `tx-${now.toString(36)}-${tx++}`,
    card: cardId(c),
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
  first: { topic: 'cards', noun: 'card profiles', records: profiles },
});
