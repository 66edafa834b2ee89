/**
 * Fraud detection: card transactions scored in real time against each card's own behaviour and
 * its holder's profile. A transaction far above what the card usually spends, over the card's
 * limit (from the `cards` profile table, as the profile was when the transaction was made), or
 * very large, is written to the `suspicious` topic (and, with a webhook configured, POSTed to it);
 * views show spend per card, per country, and abroad (outside the holder's home country). Run: `kappa --data-dir .kappa-fraud start --config examples/fraud/kappa.config.ts`, then
 * `node --import tsx examples/fraud/generate.ts`.
 */
import { Type, alertsTopic, anomaly, count, defineApp, from, max, sum, table, threshold, topic, view } from 'kappa';

const Transaction = Type.Object({
  txId: Type.String(),
  card: Type.String(),
  merchant: Type.String(),
  country: Type.String({ minLength: 2, maxLength: 2 }),
  amount: Type.Number({ exclusiveMinimum: 0 }),
  ts: Type.Integer(),
});

export const transactions = topic('transactions', {
  partitions: 4,
  schema: Transaction,
  key: (t) => t.card,
  time: (t) => t.ts,
});
const suspicious = alertsTopic('suspicious', { partitions: 2 });

/** Card profiles: a card's holder, home country and limit; a new record for a card replaces its profile from its `ts` on. */
const Card = Type.Object({
  card: Type.String(),
  holder: Type.String(),
  homeCountry: Type.String({ minLength: 2, maxLength: 2 }),
  limit: Type.Number({ exclusiveMinimum: 0 }),
  ts: Type.Integer(),
});
export const cards = topic('cards', { partitions: 2, schema: Card, key: (c) => c.card, time: (c) => c.ts });
/** The profile of each card as it was at any moment (every version kept), for the joins below. */
const profiles = table(cards);

/** Each transaction with its card's profile at the transaction's time (transactions of unknown cards are dropped). */
const withProfile = from(transactions).join(
  profiles,
  (t) => t.card,
  (t, card) => ({ ...t, limit: card.limit, homeCountry: card.homeCountry }),
);

const webhook = process.env.KAPPA_FRAUD_WEBHOOK;

export default defineApp({
  topics: [transactions, cards, suspicious],
  views: [
    view(
      'card_spend',
      from(transactions)
        .groupBy((t) => ({ card: t.card }))
        .aggregate({ spent: sum((t) => t.amount), transactions: count(), largest: max((t) => t.amount) }),
    ),
    view(
      'spend_by_country',
      from(transactions)
        .groupBy((t) => ({ country: t.country }))
        .aggregate({ spent: sum((t) => t.amount), transactions: count() }),
    ),
    view(
      'spend_abroad',
      withProfile
        .filter((t) => t.country !== t.homeCountry)
        .groupBy((t) => ({ card: t.card, home: t.homeCountry }))
        .aggregate({ spent: sum((t) => t.amount), transactions: count() }),
    ),
    view(
      'suspicious_by_card',
      from(suspicious)
        .groupBy((a) => ({ card: a.key, rule: a.rule }))
        .aggregate({ flagged: count(), largest: max((a) => a.value ?? 0) }),
    ),
  ],
  outputs: [
    anomaly('unusual_amount', from(transactions), {
      key: (t) => t.card,
      value: (t) => t.amount,
      method: 'ewma',
      alpha: 0.05,
      threshold: 6,
      minSamples: 15,
      severity: 'critical',
      message: (t, card, score) =>
        `card ${card}: ${t.amount.toFixed(2)} at ${t.merchant} (${t.country}) is ${score.toFixed(1)} deviations above its usual spend`,
      to: suspicious,
    }),
    threshold('over_limit', withProfile, {
      key: (t) => t.card,
      when: (t) => t.amount > t.limit,
      value: (t) => t.amount,
      severity: 'critical',
      message: (t, card) => `card ${card}: ${t.amount.toFixed(2)} at ${t.merchant} is over its limit of ${t.limit}`,
      to: suspicious,
    }),
    threshold('large_transaction', from(transactions), {
      key: (t) => t.card,
      when: (t) => t.amount > 5000,
      value: (t) => t.amount,
      severity: 'warning',
      to: suspicious,
    }),
  ],
  webhooks: webhook ? [{ name: 'fraud_team', url: webhook, topic: 'suspicious' }] : [],
});
