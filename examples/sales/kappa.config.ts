/**
 * The sales example: the AGGREGATED SALES view (totals by region and year since the first event)
 * and per-minute windows. Run it with `kappa start --config examples/sales/kappa.config.ts`.
 */
import { Type, alertsTopic, avg, count, defineApp, from, sum, threshold, topic, tumbling, view } from 'kappa';

const Sale = Type.Object({
  orderId: Type.String(),
  storeId: Type.String(),
  region: Type.String(),
  sku: Type.String(),
  amount: Type.Number(),
  ts: Type.Integer(),
});

export const sales = topic('sales', { partitions: 4, schema: Sale, key: (s) => s.storeId, time: (s) => s.ts });

const alerts = alertsTopic();

/** Its rows are typed: `InferRow<typeof aggregatedSales>` is { region: string; year: number; total: number; orders: number }. */
export const aggregatedSales = view(
  'aggregated_sales',
  from(sales)
    .filter((s) => s.amount > 0)
    .groupBy((s) => ({ region: s.region, year: new Date(s.ts).getUTCFullYear() }))
    .aggregate({ total: sum((s) => s.amount), orders: count() }),
);

export default defineApp({
  topics: [sales, alerts],
  views: [
    aggregatedSales,
    view(
      'sales_per_minute',
      from(sales)
        .window(tumbling('1m', { outOfOrderness: '5s', allowedLateness: '1m' }))
        .groupBy((s) => ({ region: s.region }))
        .aggregate({ total: sum((s) => s.amount), avg: avg((s) => s.amount) }),
    ),
  ],
  outputs: [
    // Large refunds are worth a look: an alert each (the dashboard lists the recent ones).
    threshold('large_refund', from(sales), {
      key: (s) => s.storeId,
      when: (s) => s.amount < -300,
      value: (s) => s.amount,
      message: (s, store) => `store ${store} refunded ${(-s.amount).toFixed(2)} (order ${s.orderId})`,
      to: alerts,
    }),
  ],
});
