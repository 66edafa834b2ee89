/**
 * App configs for the dashboard's tests (written into a temp project, see project.ts):
 *
 *   manyViewsConfig(opts) shop sales (region, store, cents, ts; 2 partitions) with NINE views of every
 *                       kind the dashboard draws (grouped, windowed by group, windowed without a
 *                       group, one row, many rows) and an alert topic `alerts` with 2 partitions
 *                       fed by a threshold rule (a sale of ALERT_CENTS or more). More views and alert
 *                       partitions than a browser has connections per host (six). Invalid sales go
 *                       to `sales.dlq`.
 *   shopSales(n, t0)    n sales for it: STORES stores in 5 regions, one sale a second from t0
 *   readingsAlertsConfig(outputs) device readings (device, temperature, ts; 2 partitions keyed by
 *                       device) and an alert topic, with the given alert outputs (source text)
 */
import { KAPPA_SRC } from './project.ts';

export const STORES = 300;
export const ALERT_CENTS = 9_900;
export const MANY_VIEWS = [
  'by_region',
  'by_store',
  'by_region_store',
  'per_minute',
  'per_minute_total',
  'per_hour',
  'largest_by_region',
  'grand_total',
  'alerts_by_rule',
];

/** Each view of manyViewsConfig, by name: its definition as source. */
const MANY_VIEW_SOURCES: Record<string, string> = {
  by_region: `from(sales).groupBy((s) => ({ region: s.region })).aggregate(money)`,
  by_store: `from(sales).groupBy((s) => ({ store: s.store })).aggregate(money)`,
  by_region_store: `from(sales).groupBy((s) => ({ region: s.region, store: s.store })).aggregate(money)`,
  per_minute: `from(sales).window(tumbling('1m')).groupBy((s) => ({ region: s.region })).aggregate(money)`,
  per_minute_total: `from(sales).window(tumbling('1m')).groupBy(() => ({})).aggregate(money)`,
  per_hour: `from(sales).window(tumbling('1h')).groupBy((s) => ({ region: s.region })).aggregate(money)`,
  largest_by_region: `from(sales).groupBy((s) => ({ region: s.region })).aggregate({ largest: max((s) => s.cents) })`,
  grand_total: `from(sales).groupBy(() => ({})).aggregate(money)`,
  alerts_by_rule: `from(alerts).groupBy((a) => ({ rule: a.rule })).aggregate({ fired: count() })`,
};

/**
 * The app; `leaveOut` names views the config does not declare (a later config that dropped them);
 * `tokenSha256` gives the server one token, `dashboard`, with the scopes the dashboard needs (and produce:*).
 */
export function manyViewsConfig(opts: { leaveOut?: string[]; tokenSha256?: string } = {}): string {
  const server =
    opts.tokenSha256 === undefined
      ? ''
      : `  server: { tokens: [{ name: 'dashboard', sha256: '${opts.tokenSha256}', scopes: ['query', 'consume:*', 'produce:*'] }] },\n`;
  const views = MANY_VIEWS.filter((name) => !(opts.leaveOut ?? []).includes(name))
    .map((name) => `    view('${name}', ${MANY_VIEW_SOURCES[name]}),`)
    .join('\n');
  return `
import { Type, alertsTopic, count, defineApp, from, max, sum, threshold, topic, tumbling, view } from ${JSON.stringify(KAPPA_SRC)};
const Sale = Type.Object({ region: Type.String(), store: Type.String(), cents: Type.Integer(), ts: Type.Integer() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.store, time: (s) => s.ts, onInvalid: 'dlq' });
const alerts = alertsTopic('alerts', { partitions: 2 });
const money = { cents: sum((s) => s.cents), sales: count() };
export default defineApp({
  topics: [sales, alerts],
  outputs: [threshold('big_sale', from(sales), { key: (s) => s.store, when: (s) => s.cents >= ${ALERT_CENTS}, value: (s) => s.cents, to: alerts })],
  views: [
${views}
  ],
${server}});
`;
}

const REGIONS = ['north', 'south', 'east', 'west', 'central'];

/** `n` sales, one a second from `t0`, round-robin over STORES stores; every 97th is an alert-sized sale. */
export function shopSales(n: number, t0: number, first = 0): object[] {
  return Array.from({ length: n }, (_, j) => {
    const i = first + j;
    const store = i % STORES;
    return {
      region: REGIONS[store % REGIONS.length],
      store: `store-${String(store).padStart(3, '0')}`,
      cents: i % 97 === 0 ? ALERT_CENTS + (i % 50) : 100 + ((i * 37) % 5000),
      ts: t0 + i * 1000,
    };
  });
}

/** Device readings and an alert topic; `outputs` is the source of the outputs array's entries. */
export function readingsAlertsConfig(outputs: string): string {
  const SRC = KAPPA_SRC;
  return `
import { Type, alertsTopic, anomaly, defineApp, from, threshold, topic } from ${JSON.stringify(SRC)};
const Reading = Type.Object({ device: Type.String(), temperature: Type.Number(), ts: Type.Integer() });
const readings = topic('readings', { partitions: 2, schema: Reading, key: (r) => r.device, time: (r) => r.ts });
const alerts = alertsTopic();
export default defineApp({
  topics: [readings, alerts],
  outputs: [
${outputs}
  ],
});
`;
}
